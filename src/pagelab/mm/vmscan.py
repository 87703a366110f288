"""LRU isolation and putback (models ``mm/vmscan.c`` and ``mm/swap.c``, v6.16).

Reclaim itself (kswapd, direct reclaim, aging) belongs to a later layer; this module has what
migration and compaction need: taking a folio off the LRU with a reference, and putting it
back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pagelab.errors import ModelBug
from pagelab.mm import page_flags as pf
from pagelab.mm import swap

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["folio_isolate_lru", "folio_putback_lru", "isolate_lru_page", "node_page_state",
           "putback_lru_page"]

_LRU = 1 << pf.PG_lru


def folio_isolate_lru(m: Machine, pfn: int) -> bool:
    """Take a folio off its LRU list, with a reference (``folio_isolate_lru``).

    Caller holds a reference. Returns False if the folio is not on an LRU list (someone
    else isolated it first: PG_lru is test-and-cleared).
    """
    mem = m.mem
    if mem.refcount_mv[pfn] == 0:
        raise ModelBug(f"VM_BUG_ON_FOLIO(!folio_ref_count(folio)) in folio_isolate_lru at pfn "
                       f"{pfn:#x}: {mem.dump_page(pfn)}")
    flags = mem.flags_mv
    if not flags[pfn] & _LRU:
        return False
    flags[pfn] = flags[pfn] & ~_LRU
    mem.refcount_mv[pfn] += 1
    if m.preempt is not None:
        m.preempt("lru_lock", pfn)
    swap.lruvec_del_folio(m, pfn)
    return True


isolate_lru_page = folio_isolate_lru


def folio_putback_lru(m: Machine, pfn: int) -> None:
    """Put an isolated folio back on the LRU and drop the isolation reference."""
    swap.folio_add_lru(m, pfn)
    swap.put_page(m, pfn)


putback_lru_page = folio_putback_lru


def node_page_state(m: Machine, nid: int, item: int) -> int:
    """Return a node counter (``node_page_state``)."""
    return m.nodes[nid].vm_stat[item]

