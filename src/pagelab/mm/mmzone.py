"""Nodes, zones, free areas, per-CPU pagesets and pageblock bits.

Models ``include/linux/mmzone.h`` and ``include/linux/pageblock-flags.h`` of mainline v6.16 on
x86-64 (CONFIG_ZONE_DMA, CONFIG_ZONE_DMA32, CONFIG_TRANSPARENT_HUGEPAGE, no HIGHMEM).

``zone->free_area[order].free_list[mt]`` are intrusive lists over the memmap's ``lru`` links
(see :mod:`pagelab.mm.memmap`); ``nr_free`` and the per-list lengths are kept as plain Python
lists because the allocator updates them on every call.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pagelab.machine import Machine
    from pagelab.mm.memmap import MemMap

# --- orders and pageblocks (v6.8+ names: MAX_PAGE_ORDER is inclusive) ---------------------
MAX_PAGE_ORDER = 10
NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1
MAX_ORDER_NR_PAGES = 1 << MAX_PAGE_ORDER
PAGE_ALLOC_COSTLY_ORDER = 3
pageblock_order = 9  # HUGETLB_PAGE_ORDER on x86-64
pageblock_nr_pages = 1 << pageblock_order
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
#: SPARSEMEM section size on x86-64 (SECTION_SIZE_BITS = 27): pfn_valid() has this granularity.
PFN_SECTION_SHIFT = 27 - PAGE_SHIFT
PAGES_PER_SECTION = 1 << PFN_SECTION_SHIFT


class MigrateType(IntEnum):
    """``enum migratetype`` as numbered with CONFIG_CMA=y.

    With CONFIG_CMA=n (this project's reference machine) the kernel numbers ISOLATE 4; the
    model always keeps the CMA=y numbering internally and leaves CMA out of every rendered
    file when the profile has no CMA, which is exactly what such a kernel prints.
    """

    MIGRATE_UNMOVABLE = 0
    MIGRATE_MOVABLE = 1
    MIGRATE_RECLAIMABLE = 2
    MIGRATE_HIGHATOMIC = 3
    MIGRATE_CMA = 4
    MIGRATE_ISOLATE = 5


MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
MIGRATE_PCPTYPES = 3
MIGRATE_HIGHATOMIC = MIGRATE_PCPTYPES
MIGRATE_CMA = 4
MIGRATE_ISOLATE = 5
MIGRATE_TYPES = 6

#: ``migratetype_names[]`` as printed in /proc/pagetypeinfo.
migratetype_names = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate")

# Pageblock bits (v6.18, NR_PAGEBLOCK_BITS = 8 with CONFIG_MEMORY_ISOLATION): 3 migratetype
# bits, PB_compact_skip (v4.8..v6.17: PB_migrate_skip) and PB_migrate_isolate, a standalone bit
# since v6.17 so that an isolated block keeps its type underneath.
PB_migratetype_bits = 3
MIGRATETYPE_MASK = (1 << PB_migratetype_bits) - 1
PB_migrate_skip = 3
PB_compact_skip = PB_migrate_skip
PB_SKIP_BIT = 1 << PB_migrate_skip
PB_migrate_isolate = 4
PB_ISOLATE_BIT = 1 << PB_migrate_isolate


def is_migrate_movable(mt: int) -> bool:
    """Return whether pages of ``mt`` can be migrated (MOVABLE or CMA)."""
    return mt in (MIGRATE_MOVABLE, MIGRATE_CMA)


def migratetype_is_mergeable(mt: int) -> bool:
    """Return whether free blocks of ``mt`` may merge with other types (``mt < PCPTYPES``)."""
    return mt < MIGRATE_PCPTYPES


# --- zones -------------------------------------------------------------------------------------


class ZoneType(IntEnum):
    """``enum zone_type`` on x86-64 with ZONE_DMA, ZONE_DMA32, ZONE_MOVABLE and ZONE_DEVICE."""

    ZONE_DMA = 0
    ZONE_DMA32 = 1
    ZONE_NORMAL = 2
    ZONE_MOVABLE = 3
    ZONE_DEVICE = 4


MAX_NR_ZONES = 5
zone_names = ("DMA", "DMA32", "Normal", "Movable", "Device")
#: End pfns of the DMA zones on x86-64 (MAX_DMA_PFN = 16 MiB, MAX_DMA32_PFN = 4 GiB).
MAX_DMA_PFN = (16 << 20) >> PAGE_SHIFT
MAX_DMA32_PFN = (4 << 30) >> PAGE_SHIFT

# enum zone_watermarks
WMARK_MIN = 0
WMARK_LOW = 1
WMARK_HIGH = 2
WMARK_PROMO = 3
NR_WMARK = 4

# enum zone_flags (bit numbers in zone->flags)
ZONE_BOOSTED_WATERMARK = 0
ZONE_RECLAIM_ACTIVE = 1
ZONE_BELOW_HIGH = 2

# --- per-CPU pagesets -------------------------------------------------------------------------
#: Orders cached on pcp lists: 0..PAGE_ALLOC_COSTLY_ORDER per pcp migratetype, plus two lists
#: for pageblock_order (THP) pages: one movable, one shared by unmovable and reclaimable.
NR_PCP_THP = 2
NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + NR_PCP_THP
PCPF_PREV_FREE_HIGH_ORDER = 1 << 0
PCPF_FREE_HIGH_BATCH = 1 << 1
#: CONFIG_PCP_BATCH_SCALE_MAX default.
PCP_BATCH_SCALE_MAX = 5


def pcp_allowed_order(order: int) -> bool:
    """Return whether pages of ``order`` go through the per-CPU lists (v6.16)."""
    return order <= PAGE_ALLOC_COSTLY_ORDER or order == pageblock_order


def order_to_pindex(migratetype: int, order: int) -> int:
    """Return the pcp list index for ``(migratetype, order)`` (``order_to_pindex``)."""
    if order > PAGE_ALLOC_COSTLY_ORDER:
        return NR_LOWORDER_PCP_LISTS + (migratetype == MIGRATE_MOVABLE)
    return MIGRATE_PCPTYPES * order + migratetype


def pindex_to_order(pindex: int) -> int:
    """Return the order of pages on pcp list ``pindex`` (``pindex_to_order``)."""
    if pindex >= NR_LOWORDER_PCP_LISTS:
        return pageblock_order
    return pindex // MIGRATE_PCPTYPES


@dataclass(eq=False)
class PerCpuPages:
    """``struct per_cpu_pages``: one CPU's cache of free pages for one zone.

    Simplification (named): the lists are deques of pfns — left end = list head, where frees
    are added and allocations taken; right end = tail, where ``free_pcppages_bulk`` takes
    pages. The kernel threads them through ``page->pcp_list``; the model does not write those
    links. Order and semantics are the kernel's.
    """

    batch: int
    high_min: int
    high_max: int
    high: int = 0
    count: int = 0
    free_count: int = 0
    alloc_factor: int = 0
    flags: int = 0
    lists: list[deque[int]] = field(default_factory=lambda: [deque() for _ in range(NR_PCP_LISTS)])


class Zone:
    """``struct zone``: one zone of one node, with its free area and per-CPU pagesets."""

    def __init__(
        self,
        machine: Machine,
        node_id: int,
        zone_idx: int,
        zone_start_pfn: int,
        spanned_pages: int,
        list_head_base: int,
        nr_cpus: int,
    ) -> None:
        self.machine = machine
        self.mem: MemMap = machine.mem
        self.node = node_id
        self.idx = zone_idx
        self.name = zone_names[zone_idx]
        self.zone_start_pfn = zone_start_pfn
        self.spanned_pages = spanned_pages
        self.present_pages = 0
        self.managed_pages = 0
        self.cma_pages = 0
        self._watermark = [0] * NR_WMARK
        self.watermark_boost = 0
        self.nr_reserved_highatomic = 0
        self.nr_free_highatomic = 0
        self.lowmem_reserve = [0] * MAX_NR_ZONES
        self.flags = 0
        self.contiguous = False
        # free_area[order]: nr_free, and the length of each free_list[mt] (kept in step with
        # the lists themselves; check_state recounts them).
        self.list_head_base = list_head_base
        self.nr_free = [0] * NR_PAGE_ORDERS
        self.free_count = [[0] * MIGRATE_TYPES for _ in range(NR_PAGE_ORDERS)]
        self.vm_stat: list[int] = []  # filled by Machine with len(ZONE_STAT_ITEMS) zeros
        self.vm_numa_event: list[int] = []  # NUMA_HIT ... (zone->vm_numa_event)
        self.per_cpu_pageset: list[PerCpuPages] = [
            PerCpuPages(batch=1, high_min=0, high_max=0) for _ in range(nr_cpus)
        ]
        # Compaction state (struct zone, CONFIG_COMPACTION; used by mm/compaction.py): cached
        # scanner positions ([0] async, [1] sync) and deferral. Zero, as in the kernel's
        # zero-filled struct zone.
        self.compact_cached_free_pfn = 0
        self.compact_cached_migrate_pfn = [0, 0]
        self.compact_init_migrate_pfn = 0
        self.compact_init_free_pfn = 0
        self.compact_considered = 0
        self.compact_defer_shift = 0
        self.compact_order_failed = 0
        self.compact_blockskip_flush = False

    # kernel helper names -------------------------------------------------------------------

    @property
    def zone_end_pfn(self) -> int:
        """Return the first pfn past the zone (``zone_end_pfn``)."""
        return self.zone_start_pfn + self.spanned_pages

    def zone_spans_pfn(self, pfn: int) -> bool:
        """Return whether ``pfn`` lies in the zone's span (``zone_spans_pfn``)."""
        return self.zone_start_pfn <= pfn < self.zone_start_pfn + self.spanned_pages

    def populated(self) -> bool:
        """Return whether the zone has present pages (``populated_zone``)."""
        return self.present_pages > 0

    def free_list(self, order: int, mt: int) -> int:
        """Return the list-head index of ``free_area[order].free_list[mt]``."""
        return self.mem.nr_pfns + self.list_head_base + order * MIGRATE_TYPES + mt

    def min_wmark_pages(self) -> int:
        """Return ``min_wmark_pages(zone)``: the min watermark plus the current boost."""
        return self._watermark[WMARK_MIN] + self.watermark_boost

    def low_wmark_pages(self) -> int:
        """Return ``low_wmark_pages(zone)``."""
        return self._watermark[WMARK_LOW] + self.watermark_boost

    def high_wmark_pages(self) -> int:
        """Return ``high_wmark_pages(zone)``."""
        return self._watermark[WMARK_HIGH] + self.watermark_boost

    def wmark_pages(self, which: int) -> int:
        """Return ``wmark_pages(zone, which)``."""
        return self._watermark[which] + self.watermark_boost

    def __repr__(self) -> str:
        return (
            f"Zone(node={self.node}, {self.name}, start_pfn={self.zone_start_pfn:#x}, "
            f"spanned={self.spanned_pages}, present={self.present_pages}, "
            f"managed={self.managed_pages}, free={self.vm_stat[0] if self.vm_stat else 0})"
        )


class PglistData:
    """``pg_data_t``: one NUMA node, its zones and node-level counters."""

    def __init__(self, node_id: int, node_start_pfn: int, node_spanned_pages: int) -> None:
        self.node_id = node_id
        self.node_start_pfn = node_start_pfn
        self.node_spanned_pages = node_spanned_pages
        self.node_present_pages = 0
        self.node_zones: list[Zone] = []
        self.vm_stat: list[int] = []
        self.totalreserve_pages = 0
        # pgdat->nr_zones and the kcompactd request (mm/compaction.py sets them at boot);
        # kcompactd_woken stands for a pending wake_up of the kcompactd thread.
        self.nr_zones = 0
        self.kcompactd_max_order = 0
        self.kcompactd_highest_zoneidx = 0
        self.kcompactd_woken = False
        self.proactive_compact_trigger = False
        # kswapd's request and state (mm/vmscan.py): kswapd_woken stands for a pending wake-up
        # of the thread, kswapd_nap_until for the end of its 100 ms nap before sleeping.
        self.kswapd_order = 0
        self.kswapd_highest_zoneidx = MAX_NR_ZONES  # no request pending
        self.kswapd_failures = 0
        self.kswapd_woken = False
        self.kswapd_running = False
        self.kswapd_nap_until = 0
        #: Workingset activations (anon, file) at the last ``snapshot_refaults``.
        self.refaults = [0, 0]

    def __repr__(self) -> str:
        return (
            f"Node({self.node_id}, start_pfn={self.node_start_pfn:#x}, "
            f"present={self.node_present_pages})"
        )


# --- pageblock bits (mm/page_alloc.c get_pfnblock_flags_mask & co) ---------------------------


def pageblock_migratetype(bits: int) -> int:
    """Return the migratetype stored in a pageblock's bits (MIGRATE_ISOLATE if isolated)."""
    return MIGRATE_ISOLATE if bits & PB_ISOLATE_BIT else bits & MIGRATETYPE_MASK


__all__ = [name for name in dir() if not name.startswith("_")]
