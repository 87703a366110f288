"""Dirty page-cache pages and the dirty limits (models ``mm/page-writeback.c``, v6.16).

A write dirties a page-cache folio (:func:`folio_mark_dirty`); writeback cleans it
(:func:`folio_clear_dirty_for_io`) before the device stores it; truncation cleans it without
writing (:func:`folio_cancel_dirty`). Each keeps the kernel's counters: NR_FILE_DIRTY and
NR_DIRTIED per node, NR_ZONE_WRITE_PENDING per zone. :func:`global_dirty_limits` gives the
background and throttling thresholds that ``balance_dirty_pages`` and the flusher work to.

Named simplifications: no memory cgroups or per-bdi limits (one global domain), no
``dirty_bytes``/``dirty_background_bytes`` (the ratios only), no real-time boost, and no
highmem (``vm_highmem_is_dirtyable`` is moot on 64-bit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = [
    "DIRTY_BACKGROUND_RATIO",
    "VM_DIRTY_RATIO",
    "folio_cancel_dirty",
    "folio_clear_dirty_for_io",
    "folio_mark_dirty",
    "global_dirty_limits",
    "global_dirtyable_memory",
]

#: ``vm.dirty_ratio`` and ``vm.dirty_background_ratio`` defaults (percent).
VM_DIRTY_RATIO = 20
DIRTY_BACKGROUND_RATIO = 10

_DIRTY = 1 << pf.PG_dirty


def global_dirtyable_memory(m: Machine) -> int:
    """Pages that may be dirty: free (less the reserves) plus the file LRU lists.

    Models ``global_dirtyable_memory``; v4.8 reads the same sums (``NR_FREE_PAGES`` less
    ``totalreserve_pages``, plus NR_INACTIVE_FILE and NR_ACTIVE_FILE).
    """
    free = sum(int(z.vm_stat[vs.NR_FREE_PAGES]) for z in m.zones)
    free -= min(free, sum(pgdat.totalreserve_pages for pgdat in m.nodes))
    file = sum(int(p.vm_stat[vs.NR_INACTIVE_FILE] + p.vm_stat[vs.NR_ACTIVE_FILE])
               for p in m.nodes)
    return free + file


def global_dirty_limits(m: Machine, dirty_ratio: int = VM_DIRTY_RATIO,
                        background_ratio: int = DIRTY_BACKGROUND_RATIO) -> tuple[int, int]:
    """Return (background threshold, dirty threshold) in pages (``global_dirty_limits``).

    Both are percentages of :func:`global_dirtyable_memory`; a background ratio at or above
    the dirty ratio is halved below it, as ``domain_dirty_limits`` does.
    """
    available = global_dirtyable_memory(m)
    thresh = dirty_ratio * available // 100
    bg_thresh = background_ratio * available // 100
    if bg_thresh >= thresh:
        bg_thresh = thresh // 2
    return bg_thresh, thresh


def _account(m: Machine, pfn: int, delta: int, dirtied: int = 0) -> None:
    zone = m.page_zone(pfn)
    node_stat = m.nodes[zone.node].vm_stat
    node_stat[vs.NR_FILE_DIRTY] += delta
    node_stat[vs.NR_DIRTIED] += dirtied
    zone.vm_stat[vs.NR_ZONE_WRITE_PENDING] += delta


def folio_mark_dirty(m: Machine, pfn: int) -> bool:
    """Dirty a page-cache folio; True if it was clean (``folio_mark_dirty``).

    ``folio_account_dirtied`` counts NR_FILE_DIRTY, NR_ZONE_WRITE_PENDING and NR_DIRTIED.
    """
    flags = m.mem.flags_mv
    if flags[pfn] & _DIRTY:
        return False
    flags[pfn] = flags[pfn] | _DIRTY
    _account(m, pfn, 1, dirtied=1)
    return True


def folio_clear_dirty_for_io(m: Machine, pfn: int) -> bool:
    """Clean a folio that writeback is about to write; True if it was dirty.

    Models ``folio_clear_dirty_for_io`` (the page tables are not write-protected again: the
    model's page-cache writes go through ``write()``, never a shared mapping).
    """
    flags = m.mem.flags_mv
    if not flags[pfn] & _DIRTY:
        return False
    flags[pfn] = flags[pfn] & ~_DIRTY
    _account(m, pfn, -1)
    return True


def folio_cancel_dirty(m: Machine, pfn: int) -> None:
    """Clean a folio that will never be written, as truncation does (``folio_cancel_dirty``).

    ``folio_account_cleaned`` takes back NR_FILE_DIRTY and NR_ZONE_WRITE_PENDING.
    """
    folio_clear_dirty_for_io(m, pfn)
