"""LRU lists and the final ``put_page`` (models ``mm/swap.c`` and ``include/linux/mm_inline.h``,
v6.16, without MGLRU).

Each node has five LRU lists threaded through ``page->lru`` — the same link words the buddy
free lists use, so a page is on at most one list of either kind, as in the kernel. Counts are
kept per node (NR_INACTIVE_ANON ...) and per zone (NR_ZONE_INACTIVE_ANON ...).

Named simplification: pages go straight onto the LRU (no per-CPU ``folio_batch`` in
``folio_add_lru``), so ``lru_add_drain()`` has nothing to drain. The kernel's batches hold at
most 31 pages per CPU; compaction drains them before scanning anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pagelab.errors import ModelBug
from pagelab.mm import page_alloc as pa
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = [
    "LRU_ACTIVE_ANON",
    "LRU_ACTIVE_FILE",
    "LRU_INACTIVE_ANON",
    "LRU_INACTIVE_FILE",
    "LRU_UNEVICTABLE",
    "folio_add_lru",
    "folio_lru_list",
    "folio_mark_accessed",
    "folio_rotate_reclaimable",
    "lru_add_drain",
    "lruvec_add_folio",
    "lruvec_del_folio",
    "put_page",
]

# enum lru_list
LRU_INACTIVE_ANON = 0
LRU_ACTIVE_ANON = 1
LRU_INACTIVE_FILE = 2
LRU_ACTIVE_FILE = 3
LRU_UNEVICTABLE = 4
lru_names = ("inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")

_LRU = 1 << pf.PG_lru


def folio_nr_pages(m: Machine, pfn: int) -> int:
    """Return the number of pages of the folio headed by ``pfn``."""
    return 1 << pf.compound_order(m.mem, pfn)


def folio_lru_list(m: Machine, pfn: int) -> int:
    """Return which LRU list a folio belongs on (``folio_lru_list``)."""
    flags = m.mem.flags_mv[pfn]
    if flags >> pf.PG_unevictable & 1:
        return LRU_UNEVICTABLE
    lru = LRU_INACTIVE_ANON if flags >> pf.PG_swapbacked & 1 else LRU_INACTIVE_FILE
    if flags >> pf.PG_active & 1:
        lru += 1
    return lru


def _account_lru(m: Machine, pfn: int, lru: int, nr: int) -> None:
    zone = m.page_zone(pfn)
    m.nodes[zone.node].vm_stat[vs.NR_INACTIVE_ANON + lru] += nr
    zone.vm_stat[vs.NR_ZONE_INACTIVE_ANON + lru] += nr


def lruvec_add_folio(m: Machine, pfn: int) -> None:
    """Put a folio at the head of its node's LRU list (``lruvec_add_folio``)."""
    lru = folio_lru_list(m, pfn)
    node = m.page_zone(pfn).node
    m.mem.list_add(pfn, m.lru_list_head(node, lru))
    _account_lru(m, pfn, lru, folio_nr_pages(m, pfn))


def lruvec_del_folio(m: Machine, pfn: int) -> None:
    """Take a folio off its LRU list (``lruvec_del_folio``)."""
    lru = folio_lru_list(m, pfn)
    m.mem.list_del(pfn)
    _account_lru(m, pfn, lru, -folio_nr_pages(m, pfn))


def folio_add_lru(m: Machine, pfn: int) -> None:
    """Add a folio to the LRU and set PG_lru (``folio_add_lru``); lru lock held inside."""
    flags = m.mem.flags_mv
    if flags[pfn] & _LRU:
        raise ModelBug(f"VM_BUG_ON_FOLIO(folio_test_lru(folio)) in folio_add_lru at pfn "
                       f"{pfn:#x}: {m.mem.dump_page(pfn)}")
    if m.preempt is not None:
        m.preempt("lru_lock", pfn)
    flags[pfn] = flags[pfn] | _LRU
    lruvec_add_folio(m, pfn)


def folio_mark_accessed(m: Machine, pfn: int) -> None:
    """Note a use of a page-cache folio that no page table saw (``folio_mark_accessed``).

    The first use sets PG_referenced; a second one, on an inactive evictable folio, activates
    it (``folio_activate``, counting ``pgactivate``) and clears the bit. A folio not on the LRU
    yet only keeps PG_referenced (the kernel activates it in its LRU batch).
    """
    mem = m.mem
    flags = mem.flags_mv
    value = flags[pfn]
    if not value >> pf.PG_referenced & 1:
        flags[pfn] = value | 1 << pf.PG_referenced
        return
    if value >> pf.PG_active & 1 or value >> pf.PG_unevictable & 1 or not value & _LRU:
        return
    lruvec_del_folio(m, pfn)
    flags[pfn] = (value | 1 << pf.PG_active) & ~(1 << pf.PG_referenced)
    lruvec_add_folio(m, pfn)
    m.vm_events[vs.PGACTIVATE] += folio_nr_pages(m, pfn)


def folio_rotate_reclaimable(m: Machine, pfn: int) -> None:
    """Move a folio whose writeback reclaim waited for to the inactive tail (``pgrotated``).

    Models ``folio_rotate_reclaimable``: only a clean, unlocked, evictable, inactive folio on
    the LRU moves, so that the next reclaim pass frees it first.
    """
    value = m.mem.flags_mv[pfn]
    if (value & (1 << pf.PG_locked | 1 << pf.PG_dirty | 1 << pf.PG_unevictable
                 | 1 << pf.PG_active) or not value & _LRU):
        return
    node = m.page_zone(pfn).node
    m.mem.list_del(pfn)
    m.mem.list_add_tail(pfn, m.lru_list_head(node, folio_lru_list(m, pfn)))
    m.vm_events[vs.PGROTATED] += folio_nr_pages(m, pfn)


def lru_add_drain(m: Machine) -> None:
    """Flush this CPU's LRU add batches (``lru_add_drain``); the model keeps none."""


def page_cache_release(m: Machine, pfn: int) -> None:
    """Take a dying folio off the LRU (``page_cache_release``), under the lru lock."""
    flags = m.mem.flags_mv
    if flags[pfn] & _LRU:
        lruvec_del_folio(m, pfn)
        flags[pfn] = flags[pfn] & ~_LRU
    if flags[pfn] >> pf.PG_mlocked & 1:
        flags[pfn] = flags[pfn] & ~(1 << pf.PG_mlocked)
        m.page_zone(pfn).vm_stat[vs.NR_MLOCK] -= folio_nr_pages(m, pfn)


def __folio_put(m: Machine, pfn: int) -> None:
    """Free a folio whose last reference went (``__folio_put``)."""
    page_cache_release(m, pfn)
    order = pf.compound_order(m.mem, pfn)
    flags = m.mem.flags_mv
    flags[pfn] = flags[pfn] & ~(1 << pf.PG_unevictable | 1 << pf.PG_active)
    pa.free_frozen_pages(m, pfn, order)


def put_page(m: Machine, pfn: int) -> None:
    """Drop a reference on the head page and free the folio at zero (``put_page``)."""
    if m.preempt is not None:
        m.preempt("put_page", pfn)
    head = pf.compound_head(m.mem, pfn)
    ref = m.mem.refcount_mv
    value = ref[head] - 1
    if value < 0:
        raise ModelBug(f"VM_BUG_ON_PAGE(page_ref_count(page) == 0) in put_page at pfn "
                       f"{head:#x}: {m.mem.dump_page(head)}")
    ref[head] = value
    if value == 0:
        __folio_put(m, head)
