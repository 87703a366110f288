"""A slow, obviously-correct reference buddy allocator: Linux 6.18 ``mm/page_alloc.c``.

This is the oracle that property tests compare :mod:`pagelab.mm.page_alloc` against
(DESIGN.md, principle 10). It is written to be read next to the kernel source, not to be
fast: plain dicts and Python lists, one function per kernel function, same names, same order
of decisions. Nothing here imports the model's logic; :meth:`Buddy.from_machine` only *copies*
the state of a freshly built (or carved) :class:`~pagelab.machine.Machine`: zone spans,
present/managed pages, watermarks, lowmem_reserve, pcp batch/high_min/high_max, pageblock
types and the free lists (boot is not re-implemented).

Representation (``struct page`` is replaced by pfns):

* ``zone.free_area[(order, mt)]`` is a Python list; index 0 is the list head. ``list_add``
  inserts at 0, ``list_add_tail`` appends, ``get_page_from_free_area`` reads index 0,
  ``list_move_tail`` (``move_to_free_list``) removes and appends.
* ``zone.free[pfn] = (order, mt)``: PageBuddy + ``buddy_order`` + the list it is on.
* ``b.pageblock[pfn >> pageblock_order]``: the pageblock migratetype.
* ``pcp.lists[pindex]``: Python lists, index 0 = head (frees and allocations at the head,
  ``rmqueue_bulk`` appends, ``free_pcppages_bulk`` pops the tail).

Scope: the mainline profile (CONFIG_CMA=n, THP on, ZONE_DMA32, mobility grouping as the
machine has it), one CPU running at a time (locks always succeed). Not covered: page
isolation (MIGRATE_ISOLATE), CMA, shuffling, page reporting, guard pages, compaction
capture, the remote-node pcp expiry of the vmstat worker (drain_zone_pages), memory hotplug, cpusets, __GFP_MEMALLOC / OOM, and
v4.8's __rmqueue_fallback. kswapd never runs (the machine runs it only from
``run_background``, which these tests do not call), so watermark boosts stay until then. Pages allocated here are never PageLRU or movable_ops, so
``prep_move_freepages_block`` counts no movable pages. Direct reclaim frees nothing (no LRU
pages), so the slow path retries it as ``should_reclaim_retry`` allows and then fails where
the kernel would call the OOM killer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# --- constants, with the kernel's values (x86-64, CONFIG_CMA=n numbering kept as the model) --
MAX_PAGE_ORDER = 10
NR_PAGE_ORDERS = 11
PAGE_ALLOC_COSTLY_ORDER = 3
pageblock_order = 9
pageblock_nr_pages = 512
HPAGE_PMD_ORDER = 9

UNMOVABLE, MOVABLE, RECLAIMABLE, HIGHATOMIC, CMA, ISOLATE = range(6)
MIGRATE_PCPTYPES = 3
MIGRATE_TYPES = 6
fallbacks = {UNMOVABLE: (RECLAIMABLE, MOVABLE),
             MOVABLE: (RECLAIMABLE, UNMOVABLE),
             RECLAIMABLE: (UNMOVABLE, MOVABLE)}

ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE = 0, 1, 2, 3
WMARK_MIN, WMARK_LOW, WMARK_HIGH = 0, 1, 2

ALLOC_WMARK_MIN, ALLOC_WMARK_LOW, ALLOC_WMARK_HIGH = 0, 1, 2
ALLOC_NO_WATERMARKS = 0x04
ALLOC_WMARK_MASK = 0x03
ALLOC_OOM = 0x08
ALLOC_NON_BLOCK = 0x10
ALLOC_MIN_RESERVE = 0x20
ALLOC_CPUSET = 0x40
ALLOC_CMA = 0x80
ALLOC_NOFRAGMENT = 0x100
ALLOC_HIGHATOMIC = 0x200
ALLOC_KSWAPD = 0x800
ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM

__GFP_DMA = 0x01
__GFP_HIGHMEM = 0x02
__GFP_DMA32 = 0x04
__GFP_MOVABLE = 0x08
__GFP_RECLAIMABLE = 0x10
__GFP_HIGH = 0x20
__GFP_DIRECT_RECLAIM = 0x400
__GFP_RETRY_MAYFAIL = 1 << 14
__GFP_NORETRY = 1 << 16
MAX_RECLAIM_RETRIES = 16
__GFP_KSWAPD_RECLAIM = 0x800
__GFP_NOMEMALLOC = 0x80000

FPI_NONE = 0
FPI_TO_TAIL = 2

NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + 2
PCPF_PREV_FREE_HIGH_ORDER = 1
PCPF_FREE_HIGH_BATCH = 2
CONFIG_PCP_BATCH_SCALE_MAX = 5

RMQUEUE_NORMAL, RMQUEUE_CMA, RMQUEUE_CLAIM, RMQUEUE_STEAL = range(4)

ZONE_FLAG_BITS = {"ZONE_BOOSTED_WATERMARK": 0, "ZONE_RECLAIM_ACTIVE": 1, "ZONE_BELOW_HIGH": 2}


# --- state ------------------------------------------------------------------------------------


@dataclass
class PerCpuPages:
    """``struct per_cpu_pages``; ``lists[pindex][0]`` is the list head."""

    batch: int
    high_min: int
    high_max: int
    high: int = 0
    count: int = 0
    free_count: int = 0
    alloc_factor: int = 0
    flags: int = 0
    lists: list[list[int]] = field(default_factory=lambda: [[] for _ in range(NR_PCP_LISTS)])


@dataclass
class Zone:
    """``struct zone``: span, watermarks, counters, free area and per-CPU pagesets."""

    index: int  # position in Machine.zones
    node: int
    idx: int  # zone_idx()
    start_pfn: int
    end_pfn: int
    present_pages: int
    managed_pages: int
    watermark: list[int]
    watermark_boost: int
    lowmem_reserve: list[int]
    nr_reserved_highatomic: int = 0
    nr_free_highatomic: int = 0
    flags: set[str] = field(default_factory=set)
    free_area: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    free: dict[int, tuple[int, int]] = field(default_factory=dict)
    nr_free: list[int] = field(default_factory=lambda: [0] * NR_PAGE_ORDERS)
    NR_FREE_PAGES: int = 0
    NR_FREE_PAGES_BLOCKS: int = 0
    NR_FREE_CMA_PAGES: int = 0
    pcp: list[PerCpuPages] = field(default_factory=list)
    numa: dict[str, int] = field(default_factory=dict)

    def zone_spans_pfn(self, pfn: int) -> bool:
        """zone_spans_pfn()."""
        return self.start_pfn <= pfn < self.end_pfn

    def wmark_pages(self, i: int) -> int:
        """wmark_pages(): the watermark plus the current boost."""
        return self.watermark[i] + self.watermark_boost


@dataclass
class AllocContext:
    """struct alloc_context (no nodemask, no cpusets, no dirty spreading)."""

    zonelist: list[Zone]
    migratetype: int
    highest_zoneidx: int

    @property
    def preferred_zone(self) -> Zone:
        """zonelist_zone(ac->preferred_zoneref)."""
        return self.zonelist[0]


class Buddy:
    """The whole reference machine: zones, pageblock types, CPUs and event counters."""

    def __init__(self) -> None:
        self.zones: list[Zone | None] = []
        self.node_zones: list[dict[int, Zone]] = []
        self.pageblock: dict[int, int] = {}
        self.cpu = 0
        self.nr_cpus = 1
        self.cpu_to_node: list[int] = []
        self.page_group_by_mobility_disabled = False
        self.watermark_boost_factor = 15000
        self.PGFREE = 0
        self.PGALLOC = [0] * 5
        self.allocated: dict[int, int] = {}

    # -- building from a machine (copy, never re-derive) --------------------------------------

    @classmethod
    def from_machine(cls, m: Any) -> Buddy:
        """Copy a Machine's allocator state (mainline profile only)."""
        from pagelab.mm import vmstat as vs

        prof = m.profile
        if not (prof.pcp_high_order and prof.alloc_nofragment and prof.rmqueue_claim_steal
                and not prof.config_cma):
            raise NotImplementedError(f"the oracle models mainline only, not {prof.name}")
        if m.direct_reclaim_hook is not None or m.direct_compact_hook is not None:
            raise NotImplementedError("the oracle has no reclaim or compaction")
        b = cls()
        b.nr_cpus = m.nr_cpus
        b.cpu = m.cpu
        b.cpu_to_node = [next(n for n, cpus in enumerate(m.node_cpus) if c in cpus)
                         for c in range(m.nr_cpus)]
        b.page_group_by_mobility_disabled = m.page_group_by_mobility_disabled
        b.watermark_boost_factor = m.watermark_boost_factor if prof.watermark_boost else 0
        b.PGFREE = m.vm_events[vs.PGFREE]
        b.PGALLOC = [m.vm_events[vs.PGALLOC_DMA + i] for i in range(5)]
        b.allocated = dict(m.allocations())
        for i, raw in enumerate(m.pageblock_flags.tolist()):
            b.pageblock[i] = ISOLATE if raw & 0x10 else raw & 0x7
        numa_names = ("NUMA_HIT", "NUMA_MISS", "NUMA_FOREIGN", "NUMA_INTERLEAVE_HIT",
                      "NUMA_LOCAL", "NUMA_OTHER")
        b.node_zones = [{} for _ in m.nodes]
        for i, mz in enumerate(m.zones):
            if not mz.spanned_pages:
                b.zones.append(None)
                continue
            z = Zone(index=i, node=mz.node, idx=mz.idx, start_pfn=mz.zone_start_pfn,
                     end_pfn=mz.zone_start_pfn + mz.spanned_pages,
                     present_pages=mz.present_pages, managed_pages=mz.managed_pages,
                     watermark=list(mz._watermark), watermark_boost=mz.watermark_boost,
                     lowmem_reserve=list(mz.lowmem_reserve),
                     nr_reserved_highatomic=mz.nr_reserved_highatomic,
                     nr_free_highatomic=mz.nr_free_highatomic,
                     flags={n for n, bit in ZONE_FLAG_BITS.items() if mz.flags >> bit & 1},
                     nr_free=list(mz.nr_free),
                     NR_FREE_PAGES=mz.vm_stat[vs.NR_FREE_PAGES],
                     NR_FREE_PAGES_BLOCKS=mz.vm_stat[vs.NR_FREE_PAGES_BLOCKS],
                     NR_FREE_CMA_PAGES=mz.vm_stat[vs.NR_FREE_CMA_PAGES],
                     numa=dict(zip(numa_names, mz.vm_numa_event, strict=True)))
            for order in range(NR_PAGE_ORDERS):
                for mt in range(MIGRATE_TYPES):
                    entries = list(m.mem.list_entries(mz.free_list(order, mt)))
                    z.free_area[(order, mt)] = entries
                    for pfn in entries:
                        z.free[pfn] = (order, mt)
            for p in mz.per_cpu_pageset:
                z.pcp.append(PerCpuPages(batch=p.batch, high_min=p.high_min,
                                         high_max=p.high_max, high=p.high, count=p.count,
                                         free_count=p.free_count, alloc_factor=p.alloc_factor,
                                         flags=p.flags, lists=[list(lst) for lst in p.lists]))
            b.zones.append(z)
            b.node_zones[mz.node][mz.idx] = z
        return b

    # -- the operations the tests drive ---------------------------------------------------------

    def alloc_pages(self, order: int, gfp: int, nid: int | None = None) -> int | None:
        """alloc_pages_node(numa_node_id() or nid, gfp, order); None where the kernel has NULL."""
        preferred_nid = self.cpu_to_node[self.cpu] if nid is None else nid
        pfn = alloc_pages_node(self, preferred_nid, gfp, order)
        if pfn is not None:
            self.allocated[pfn] = order
        return pfn

    def free_pages(self, pfn: int, order: int) -> None:
        """__free_pages() of a block whose only reference is the caller's."""
        assert self.allocated.pop(pfn) == order
        free_frozen_pages(self, pfn, order)

    def drain_all_pages(self) -> None:
        """drain_all_pages(NULL)."""
        drain_all_pages(self, None)

    def populated_zones(self) -> list[Zone]:
        """for_each_populated_zone()."""
        return [z for z in self.zones if z is not None and z.present_pages]

    def page_zone(self, pfn: int) -> Zone:
        """page_zone(): the one zone whose span holds pfn."""
        found = [z for z in self.zones if z is not None and z.zone_spans_pfn(pfn)]
        assert len(found) == 1, f"pfn {pfn:#x} in {len(found)} zones"
        return found[0]

    def zonelist(self, nid: int, highest_zoneidx: int) -> list[Zone]:
        """build_zonelists() node order (local node, then the next ones) filtered by zone index."""
        nr = len(self.node_zones)
        out = []
        for n in [(nid + d) % nr for d in range(nr)]:
            for idx in range(highest_zoneidx, -1, -1):
                z = self.node_zones[n].get(idx)
                if z is not None and z.present_pages:
                    out.append(z)
        return out

    def free_blocks(self) -> list[tuple[int, int, int, int]]:
        """Every free block as (zone index, order, migratetype, pfn), in list order."""
        return [(z.index, order, mt, pfn)
                for z in self.zones if z is not None
                for order in range(NR_PAGE_ORDERS)
                for mt in range(MIGRATE_TYPES)
                for pfn in z.free_area[(order, mt)]]


# --- pageblock bits ------------------------------------------------------------------------


def get_pfnblock_migratetype(b: Buddy, pfn: int) -> int:
    """get_pfnblock_migratetype()."""
    return b.pageblock[pfn >> pageblock_order]


def set_pageblock_migratetype(b: Buddy, pfn: int, mt: int) -> None:
    """set_pageblock_migratetype(): mobility disabled stores pcp types as UNMOVABLE."""
    assert mt != ISOLATE
    if b.page_group_by_mobility_disabled and mt < MIGRATE_PCPTYPES:
        mt = UNMOVABLE
    b.pageblock[pfn >> pageblock_order] = mt


def change_pageblock_range(b: Buddy, pfn: int, start_order: int, mt: int) -> None:
    """change_pageblock_range(): every pageblock covered by a block of start_order."""
    for i in range(1 << (start_order - pageblock_order)):
        set_pageblock_migratetype(b, pfn + i * pageblock_nr_pages, mt)


def migratetype_is_mergeable(mt: int) -> bool:
    """migratetype_is_mergeable()."""
    return mt < MIGRATE_PCPTYPES


# --- free lists ------------------------------------------------------------------------------


def account_freepages(zone: Zone, nr_pages: int, mt: int) -> None:
    """account_freepages()."""
    if mt == ISOLATE:
        return
    zone.NR_FREE_PAGES += nr_pages
    if mt == CMA:
        zone.NR_FREE_CMA_PAGES += nr_pages
    elif mt == HIGHATOMIC:
        zone.nr_free_highatomic += nr_pages


def __add_to_free_list(b: Buddy, zone: Zone, pfn: int, order: int, mt: int, tail: bool) -> None:
    """__add_to_free_list() (+ set_buddy_order: the block becomes PageBuddy of order)."""
    assert get_pfnblock_migratetype(b, pfn) == mt, "free list type != pageblock type"
    assert pfn not in zone.free
    if tail:
        zone.free_area[(order, mt)].append(pfn)
    else:
        zone.free_area[(order, mt)].insert(0, pfn)
    zone.free[pfn] = (order, mt)
    zone.nr_free[order] += 1
    if order >= pageblock_order and mt != ISOLATE:
        zone.NR_FREE_PAGES_BLOCKS += 1 << order


def __del_page_from_free_list(b: Buddy, zone: Zone, pfn: int, order: int, mt: int) -> None:
    """__del_page_from_free_list(): list_del, clear PageBuddy."""
    assert get_pfnblock_migratetype(b, pfn) == mt, "free list type != pageblock type"
    assert zone.free[pfn] == (order, mt)
    zone.free_area[(order, mt)].remove(pfn)
    del zone.free[pfn]
    zone.nr_free[order] -= 1
    if order >= pageblock_order and mt != ISOLATE:
        zone.NR_FREE_PAGES_BLOCKS -= 1 << order


def del_page_from_free_list(b: Buddy, zone: Zone, pfn: int, order: int, mt: int) -> None:
    """del_page_from_free_list()."""
    __del_page_from_free_list(b, zone, pfn, order, mt)
    account_freepages(zone, -(1 << order), mt)


def move_to_free_list(b: Buddy, zone: Zone, pfn: int, order: int, old_mt: int,
                      new_mt: int) -> None:
    """move_to_free_list(): list_move_tail onto new_mt's list (before the type update)."""
    assert get_pfnblock_migratetype(b, pfn) == old_mt
    zone.free_area[(order, old_mt)].remove(pfn)
    zone.free_area[(order, new_mt)].append(pfn)
    zone.free[pfn] = (order, new_mt)
    account_freepages(zone, -(1 << order), old_mt)
    account_freepages(zone, 1 << order, new_mt)
    if order >= pageblock_order and (old_mt == ISOLATE) != (new_mt == ISOLATE):
        zone.NR_FREE_PAGES_BLOCKS += (1 << order) * (1 if old_mt == ISOLATE else -1)


def find_buddy_page_pfn(zone: Zone, pfn: int, order: int) -> int | None:
    """find_buddy_page_pfn() / page_is_buddy(): free, of this order, in this zone."""
    buddy = pfn ^ (1 << order)
    got = zone.free.get(buddy)
    return buddy if got is not None and got[0] == order else None


def buddy_merge_likely(zone: Zone, pfn: int, buddy_pfn: int, order: int) -> bool:
    """buddy_merge_likely(): is the buddy of the order+1 parent free at order+1?"""
    if order >= MAX_PAGE_ORDER - 1:
        return False
    higher_page_pfn = buddy_pfn & pfn
    return find_buddy_page_pfn(zone, higher_page_pfn, order + 1) is not None


def __free_one_page(b: Buddy, zone: Zone, pfn: int, order: int, mt: int, fpi: int) -> None:
    """__free_one_page(): account, merge upwards, place at head or tail."""
    account_freepages(zone, 1 << order, mt)
    buddy_pfn = pfn ^ (1 << order)
    while order < MAX_PAGE_ORDER:
        buddy_mt = mt
        buddy_pfn = pfn ^ (1 << order)  # find_buddy_page_pfn sets *buddy_pfn even on failure
        if find_buddy_page_pfn(zone, pfn, order) is None:
            break
        if order >= pageblock_order:
            buddy_mt = get_pfnblock_migratetype(b, buddy_pfn)
            if mt != buddy_mt and (not migratetype_is_mergeable(mt)
                                   or not migratetype_is_mergeable(buddy_mt)):
                break
        __del_page_from_free_list(b, zone, buddy_pfn, order, buddy_mt)
        if buddy_mt != mt:
            set_pageblock_migratetype(b, buddy_pfn, mt)
        pfn = buddy_pfn & pfn
        order += 1
    if fpi & FPI_TO_TAIL:
        to_tail = True
    else:
        to_tail = buddy_merge_likely(zone, pfn, buddy_pfn, order)
    __add_to_free_list(b, zone, pfn, order, mt, to_tail)


def split_large_buddy(b: Buddy, zone: Zone, pfn: int, order: int, fpi: int) -> None:
    """split_large_buddy(): free pageblock by pageblock, each with its own type."""
    end = pfn + (1 << order)
    order = min(order, pageblock_order)
    while True:
        __free_one_page(b, zone, pfn, order, get_pfnblock_migratetype(b, pfn), fpi)
        pfn += 1 << order
        if pfn == end:
            break


def free_one_page(b: Buddy, zone: Zone, pfn: int, order: int, fpi: int) -> None:
    """free_one_page(): to the buddy under zone->lock; PGFREE."""
    split_large_buddy(b, zone, pfn, order, fpi)
    b.PGFREE += 1 << order


def expand(b: Buddy, zone: Zone, pfn: int, low: int, high: int, mt: int) -> int:
    """expand(): upper halves to the list heads; returns pages put back."""
    size = 1 << high
    nr_added = 0
    while high > low:
        high -= 1
        size >>= 1
        __add_to_free_list(b, zone, pfn + size, high, mt, False)
        nr_added += size
    return nr_added


def page_del_and_expand(b: Buddy, zone: Zone, pfn: int, low: int, high: int, mt: int) -> None:
    """page_del_and_expand()."""
    nr_pages = 1 << high
    __del_page_from_free_list(b, zone, pfn, high, mt)
    nr_pages -= expand(b, zone, pfn, low, high, mt)
    account_freepages(zone, -nr_pages, mt)


def __rmqueue_smallest(b: Buddy, zone: Zone, order: int, mt: int) -> int | None:
    """__rmqueue_smallest(): the head of the smallest non-empty list of mt."""
    for current_order in range(order, NR_PAGE_ORDERS):
        area = zone.free_area[(current_order, mt)]
        if not area:
            continue
        pfn = area[0]
        page_del_and_expand(b, zone, pfn, order, current_order, mt)
        return pfn
    return None


# --- fallbacks -----------------------------------------------------------------------------


def should_try_claim_block(b: Buddy, order: int, start_mt: int) -> bool:
    """should_try_claim_block()."""
    if order >= pageblock_order:
        return True
    if order >= pageblock_order // 2:
        return True
    if start_mt in (RECLAIMABLE, UNMOVABLE):
        return True
    return b.page_group_by_mobility_disabled


def find_suitable_fallback(b: Buddy, zone: Zone, order: int, mt: int, claimable: bool) -> int:
    """find_suitable_fallback(): -2 too small to claim, -1 nothing, else the fallback type."""
    if claimable and not should_try_claim_block(b, order, mt):
        return -2
    if zone.nr_free[order] == 0:
        return -1
    for fallback_mt in fallbacks[mt]:
        if zone.free_area[(order, fallback_mt)]:
            return fallback_mt
    return -1


def prep_move_freepages_block(b: Buddy, zone: Zone, pfn: int) -> tuple[int, int, int] | None:
    """prep_move_freepages_block(): (start_pfn, free pages, movable pages) or None."""
    start = pfn & ~(pageblock_nr_pages - 1)
    end = start + pageblock_nr_pages
    if not zone.zone_spans_pfn(start) or not zone.zone_spans_pfn(end - 1):
        return None
    num_free = 0
    cur = start
    while cur < end:
        if cur in zone.free:
            num_free += 1 << zone.free[cur][0]
            cur += 1 << zone.free[cur][0]
        else:
            cur += 1  # never PageLRU or movable_ops here: num_movable stays 0
    return start, num_free, 0


def __move_freepages_block(b: Buddy, zone: Zone, start_pfn: int, old_mt: int,
                           new_mt: int) -> int:
    """__move_freepages_block(): move every free block of the pageblock."""
    pfn = start_pfn
    moved = 0
    while pfn < start_pfn + pageblock_nr_pages:
        if pfn not in zone.free:
            pfn += 1
            continue
        order = zone.free[pfn][0]
        move_to_free_list(b, zone, pfn, order, old_mt, new_mt)
        pfn += 1 << order
        moved += 1 << order
    return moved


def move_freepages_block(b: Buddy, zone: Zone, pfn: int, old_mt: int, new_mt: int) -> int:
    """move_freepages_block(): move, then set the pageblock type; -1 across the zone edge."""
    prep = prep_move_freepages_block(b, zone, pfn)
    if prep is None:
        return -1
    moved = __move_freepages_block(b, zone, prep[0], old_mt, new_mt)
    set_pageblock_migratetype(b, prep[0], new_mt)
    return moved


def boost_watermark(b: Buddy, zone: Zone) -> bool:
    """boost_watermark()."""
    if not b.watermark_boost_factor:
        return False
    if pageblock_nr_pages * 4 > zone.managed_pages:
        return False
    max_boost = zone.watermark[WMARK_HIGH] * b.watermark_boost_factor // 10000
    if not max_boost:
        return False
    max_boost = max(pageblock_nr_pages, max_boost)
    zone.watermark_boost = min(zone.watermark_boost + pageblock_nr_pages, max_boost)
    return True


def try_to_claim_block(b: Buddy, zone: Zone, pfn: int, current_order: int, order: int,
                       start_type: int, block_type: int, alloc_flags: int) -> int | None:
    """try_to_claim_block()."""
    if current_order >= pageblock_order:
        del_page_from_free_list(b, zone, pfn, current_order, block_type)
        change_pageblock_range(b, pfn, current_order, start_type)
        nr_added = expand(b, zone, pfn, order, current_order, start_type)
        account_freepages(zone, nr_added, start_type)
        return pfn
    if boost_watermark(b, zone) and alloc_flags & ALLOC_KSWAPD:
        zone.flags.add("ZONE_BOOSTED_WATERMARK")
    prep = prep_move_freepages_block(b, zone, pfn)
    if prep is None:
        return None
    start_pfn, free_pages, movable_pages = prep
    if start_type == MOVABLE:
        alike_pages = movable_pages
    elif block_type == MOVABLE:
        alike_pages = pageblock_nr_pages - (free_pages + movable_pages)
    else:
        alike_pages = 0
    if (free_pages + alike_pages >= (1 << (pageblock_order - 1))
            or b.page_group_by_mobility_disabled):
        __move_freepages_block(b, zone, start_pfn, block_type, start_type)
        set_pageblock_migratetype(b, start_pfn, start_type)
        return __rmqueue_smallest(b, zone, order, start_type)
    return None


def __rmqueue_claim(b: Buddy, zone: Zone, order: int, start_mt: int,
                    alloc_flags: int) -> int | None:
    """__rmqueue_claim(): largest fallback block first; whole pageblocks under NOFRAGMENT."""
    min_order = order
    if order < pageblock_order and alloc_flags & ALLOC_NOFRAGMENT:
        min_order = pageblock_order
    for current_order in range(MAX_PAGE_ORDER, min_order - 1, -1):
        fallback_mt = find_suitable_fallback(b, zone, current_order, start_mt, True)
        if fallback_mt == -1:
            continue
        if fallback_mt == -2:
            break
        pfn = zone.free_area[(current_order, fallback_mt)][0]
        got = try_to_claim_block(b, zone, pfn, current_order, order, start_mt, fallback_mt,
                                 alloc_flags)
        if got is not None:
            return got
    return None


def __rmqueue_steal(b: Buddy, zone: Zone, order: int, start_mt: int) -> int | None:
    """__rmqueue_steal(): smallest fallback block, split on the fallback type's lists."""
    for current_order in range(order, NR_PAGE_ORDERS):
        fallback_mt = find_suitable_fallback(b, zone, current_order, start_mt, False)
        if fallback_mt == -1:
            continue
        pfn = zone.free_area[(current_order, fallback_mt)][0]
        page_del_and_expand(b, zone, pfn, order, current_order, fallback_mt)
        return pfn
    return None


def __rmqueue(b: Buddy, zone: Zone, order: int, mt: int, alloc_flags: int,
              mode: list[int]) -> int | None:
    """__rmqueue(): NORMAL, CMA, CLAIM, STEAL, falling through from *mode (CONFIG_CMA=n)."""
    if mode[0] <= RMQUEUE_NORMAL:
        pfn = __rmqueue_smallest(b, zone, order, mt)
        if pfn is not None:
            return pfn
    # RMQUEUE_CMA: __rmqueue_cma_fallback() is NULL without CONFIG_CMA.
    if mode[0] <= RMQUEUE_CLAIM:
        pfn = __rmqueue_claim(b, zone, order, mt, alloc_flags)
        if pfn is not None:
            mode[0] = RMQUEUE_NORMAL
            return pfn
    if not alloc_flags & ALLOC_NOFRAGMENT:
        pfn = __rmqueue_steal(b, zone, order, mt)
        if pfn is not None:
            mode[0] = RMQUEUE_STEAL
            return pfn
    return None


def rmqueue_bulk(b: Buddy, zone: Zone, order: int, count: int, pcp_list: list[int], mt: int,
                 alloc_flags: int) -> int:
    """rmqueue_bulk(): up to count blocks, list_add_tail each; returns how many."""
    mode = [RMQUEUE_NORMAL]
    for i in range(count):
        pfn = __rmqueue(b, zone, order, mt, alloc_flags, mode)
        if pfn is None:
            return i
        pcp_list.append(pfn)
    return count


# --- per-CPU pagesets -------------------------------------------------------------------------


def pcp_allowed_order(order: int) -> bool:
    """pcp_allowed_order()."""
    return order <= PAGE_ALLOC_COSTLY_ORDER or order == HPAGE_PMD_ORDER


def order_to_pindex(mt: int, order: int) -> int:
    """order_to_pindex()."""
    if order > PAGE_ALLOC_COSTLY_ORDER:
        return NR_LOWORDER_PCP_LISTS + (mt == MOVABLE)
    return MIGRATE_PCPTYPES * order + mt


def pindex_to_order(pindex: int) -> int:
    """pindex_to_order()."""
    return HPAGE_PMD_ORDER if pindex >= NR_LOWORDER_PCP_LISTS else pindex // MIGRATE_PCPTYPES


def clamp(val: int, lo: int, hi: int) -> int:
    """clamp(): min(max(val, lo), hi)."""
    return min(max(val, lo), hi)


def nr_pcp_alloc(pcp: PerCpuPages, zone: Zone, order: int) -> int:
    """nr_pcp_alloc(): blocks of this order to move to an empty pcp list."""
    base_batch = pcp.batch
    high = pcp.high = clamp(pcp.high, pcp.high_min, pcp.high_max)
    if high < base_batch:
        return 1
    batch = base_batch if order else base_batch << pcp.alloc_factor
    if pcp.high_min != pcp.high_max and "ZONE_BELOW_HIGH" not in zone.flags:
        high = pcp.high = min(high + batch, pcp.high_max)
    if not order:
        max_nr_alloc = max(high - pcp.count - base_batch, base_batch)
        if batch <= max_nr_alloc and pcp.alloc_factor < CONFIG_PCP_BATCH_SCALE_MAX:
            pcp.alloc_factor += 1
        batch = min(batch, max_nr_alloc)
    if batch > 1:
        batch = max(batch >> order, 2)
    return batch


def nr_pcp_free(pcp: PerCpuPages, batch: int, high: int, free_high: bool) -> int:
    """nr_pcp_free()."""
    if free_high:
        return min(pcp.count, batch << CONFIG_PCP_BATCH_SCALE_MAX)
    if high < batch:
        return 1
    return clamp(pcp.free_count, batch, high - batch)


def nr_pcp_high(pcp: PerCpuPages, zone: Zone, batch: int, free_high: bool) -> int:
    """nr_pcp_high()."""
    high = pcp.high = clamp(pcp.high, pcp.high_min, pcp.high_max)
    if not high:
        return 0
    if free_high:
        pcp.high = max(high - (batch << CONFIG_PCP_BATCH_SCALE_MAX), pcp.high_min)
        return 0
    if "ZONE_RECLAIM_ACTIVE" in zone.flags:
        free_count = max(pcp.free_count, batch)
        pcp.high = max(high - free_count, pcp.high_min)
        return min(batch << 2, pcp.high)
    if pcp.high_min == pcp.high_max:
        return high
    if "ZONE_BELOW_HIGH" in zone.flags:
        free_count = max(pcp.free_count, batch)
        pcp.high = max(high - free_count, pcp.high_min)
        high = max(pcp.count, pcp.high_min)
    elif pcp.count >= high:
        need_high = pcp.free_count + batch
        if pcp.high < need_high:
            pcp.high = clamp(need_high, pcp.high_min, pcp.high_max)
    return high


def free_pcppages_bulk(b: Buddy, zone: Zone, count: int, pcp: PerCpuPages, pindex: int) -> None:
    """free_pcppages_bulk(): requested list first, then round-robin; tails first."""
    count = min(pcp.count, count)
    pindex -= 1
    while count > 0:
        while True:
            pindex += 1
            if pindex > NR_PCP_LISTS - 1:
                pindex = 0
            if pcp.lists[pindex]:
                break
        order = pindex_to_order(pindex)
        nr_pages = 1 << order
        lst = pcp.lists[pindex]
        while True:
            pfn = lst.pop()  # list_last_entry
            mt = get_pfnblock_migratetype(b, pfn)
            count -= nr_pages
            pcp.count -= nr_pages
            __free_one_page(b, zone, pfn, order, mt, FPI_NONE)
            if not (count > 0 and lst):
                break


def decay_pcp_high(b: Buddy, zone: Zone, pcp: PerCpuPages) -> bool:
    """decay_pcp_high(): lower an idle pcp's high by 1/8 and free what is above it."""
    todo = False
    if pcp.high > pcp.high_min:
        pcp.high = max(pcp.count - (pcp.batch << CONFIG_PCP_BATCH_SCALE_MAX),
                       pcp.high - (pcp.high >> 3), pcp.high_min)
        if pcp.high > pcp.high_min:
            todo = True
    to_drain = pcp.count - pcp.high
    if to_drain > 0:
        free_pcppages_bulk(b, zone, to_drain, pcp, 0)
        todo = True
    return todo


def refresh_cpu_vm_stats(b: Buddy, cpu: int) -> None:
    """refresh_cpu_vm_stats() (mm/vmstat.c): of the vmstat worker, only the pcp decay."""
    for zone in b.populated_zones():
        decay_pcp_high(b, zone, zone.pcp[cpu])


def drain_pages_zone(b: Buddy, cpu: int, zone: Zone) -> None:
    """drain_pages_zone()."""
    pcp = zone.pcp[cpu]
    count = pcp.count
    while count:
        to_drain = min(count, pcp.batch << CONFIG_PCP_BATCH_SCALE_MAX)
        free_pcppages_bulk(b, zone, to_drain, pcp, 0)
        count = pcp.count


def drain_all_pages(b: Buddy, zone: Zone | None) -> None:
    """__drain_all_pages(zone, false): each CPU with pcps, then drain_pages (every zone)."""
    for cpu in range(b.nr_cpus):
        zones = [zone] if zone is not None else b.populated_zones()
        if any(z.pcp[cpu].count for z in zones):
            for z in zones:
                drain_pages_zone(b, cpu, z)


def free_frozen_page_commit(b: Buddy, zone: Zone, pcp: PerCpuPages, pfn: int, mt: int,
                            order: int, fpi: int) -> None:
    """free_frozen_page_commit()."""
    pcp.alloc_factor >>= 1
    b.PGFREE += 1 << order
    pindex = order_to_pindex(mt, order)
    pcp.lists[pindex].insert(0, pfn)  # list_add
    pcp.count += 1 << order
    batch = pcp.batch
    free_high = False
    if order and order <= PAGE_ALLOC_COSTLY_ORDER:
        free_high = (pcp.free_count >= batch + pcp.high_min // 2
                     and bool(pcp.flags & PCPF_PREV_FREE_HIGH_ORDER)
                     and (not pcp.flags & PCPF_FREE_HIGH_BATCH or pcp.count >= batch))
        pcp.flags |= PCPF_PREV_FREE_HIGH_ORDER
    elif pcp.flags & PCPF_PREV_FREE_HIGH_ORDER:
        pcp.flags &= ~PCPF_PREV_FREE_HIGH_ORDER
    if pcp.free_count < batch << CONFIG_PCP_BATCH_SCALE_MAX:
        pcp.free_count += 1 << order
    high = nr_pcp_high(pcp, zone, batch, free_high)
    if pcp.count < high:
        return
    free_pcppages_bulk(b, zone, nr_pcp_free(pcp, batch, high, free_high), pcp, pindex)
    if "ZONE_BELOW_HIGH" in zone.flags and zone_watermark_ok(
            zone, 0, zone.wmark_pages(WMARK_HIGH), ZONE_MOVABLE, 0):
        zone.flags.discard("ZONE_BELOW_HIGH")


def __free_pages_ok(b: Buddy, pfn: int, order: int, fpi: int) -> None:
    """__free_pages_ok(): straight to the buddy."""
    free_one_page(b, b.page_zone(pfn), pfn, order, fpi)


def free_frozen_pages(b: Buddy, pfn: int, order: int) -> None:
    """__free_frozen_pages(page, order, FPI_NONE)."""
    if not pcp_allowed_order(order):
        __free_pages_ok(b, pfn, order, FPI_NONE)
        return
    zone = b.page_zone(pfn)
    mt = get_pfnblock_migratetype(b, pfn)
    if mt >= MIGRATE_PCPTYPES:
        if mt == ISOLATE:
            free_one_page(b, zone, pfn, order, FPI_NONE)
            return
        mt = MOVABLE
    free_frozen_page_commit(b, zone, zone.pcp[b.cpu], pfn, mt, order, FPI_NONE)


# --- watermarks -------------------------------------------------------------------------------


def __zone_watermark_unusable_free(zone: Zone, order: int, alloc_flags: int) -> int:
    """__zone_watermark_unusable_free() (CONFIG_CMA=n)."""
    unusable_free = (1 << order) - 1
    if not alloc_flags & ALLOC_RESERVES:
        unusable_free += zone.nr_free_highatomic
    return unusable_free


def __zone_watermark_ok(zone: Zone, order: int, mark: int, highest_zoneidx: int,
                        alloc_flags: int, free_pages: int) -> bool:
    """__zone_watermark_ok()."""
    minimum = mark
    free_pages -= __zone_watermark_unusable_free(zone, order, alloc_flags)
    if alloc_flags & ALLOC_RESERVES:
        if alloc_flags & ALLOC_MIN_RESERVE:
            minimum -= minimum // 2
            if alloc_flags & ALLOC_NON_BLOCK:
                minimum -= minimum // 4
        if alloc_flags & ALLOC_OOM:
            minimum -= minimum // 2
    if free_pages <= minimum + zone.lowmem_reserve[highest_zoneidx]:
        return False
    if not order:
        return True
    for o in range(order, NR_PAGE_ORDERS):
        if not zone.nr_free[o]:
            continue
        if any(zone.free_area[(o, mt)] for mt in range(MIGRATE_PCPTYPES)):
            return True
        if alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM) and zone.free_area[(o, HIGHATOMIC)]:
            return True
    return False


def zone_watermark_ok(zone: Zone, order: int, mark: int, highest_zoneidx: int,
                      alloc_flags: int) -> bool:
    """zone_watermark_ok()."""
    return __zone_watermark_ok(zone, order, mark, highest_zoneidx, alloc_flags,
                               zone.NR_FREE_PAGES)


def zone_watermark_fast(zone: Zone, order: int, mark: int, highest_zoneidx: int,
                        alloc_flags: int) -> bool:
    """zone_watermark_fast()."""
    free_pages = zone.NR_FREE_PAGES
    if not order:
        usable_free = free_pages
        reserved = __zone_watermark_unusable_free(zone, 0, alloc_flags)
        usable_free -= min(usable_free, reserved)
        if usable_free > mark + zone.lowmem_reserve[highest_zoneidx]:
            return True
    if __zone_watermark_ok(zone, order, mark, highest_zoneidx, alloc_flags, free_pages):
        return True
    if (not order and alloc_flags & ALLOC_MIN_RESERVE and zone.watermark_boost
            and alloc_flags & ALLOC_WMARK_MASK == WMARK_MIN):
        return __zone_watermark_ok(zone, order, zone.watermark[WMARK_MIN], highest_zoneidx,
                                   alloc_flags, free_pages)
    return False


# --- HIGHATOMIC reserve -----------------------------------------------------------------------


def reserve_highatomic_pageblock(b: Buddy, pfn: int, order: int, zone: Zone) -> None:
    """reserve_highatomic_pageblock(): at most ALIGN(managed / 100, pageblock) pages."""
    if zone.managed_pages // 100 < pageblock_nr_pages:
        return
    max_managed = -(-(zone.managed_pages // 100) // pageblock_nr_pages) * pageblock_nr_pages
    if zone.nr_reserved_highatomic >= max_managed:
        return
    mt = get_pfnblock_migratetype(b, pfn)
    if not migratetype_is_mergeable(mt):
        return
    if order < pageblock_order:
        if move_freepages_block(b, zone, pfn, mt, HIGHATOMIC) == -1:
            return
        zone.nr_reserved_highatomic += pageblock_nr_pages
    else:
        change_pageblock_range(b, pfn, order, HIGHATOMIC)
        zone.nr_reserved_highatomic += 1 << order


def unreserve_highatomic_pageblock(b: Buddy, ac: AllocContext, force: bool) -> bool:
    """unreserve_highatomic_pageblock(): give one reserved block back to ac->migratetype."""
    for zone in ac.zonelist:
        if not force and zone.nr_reserved_highatomic <= pageblock_nr_pages:
            continue
        for order in range(NR_PAGE_ORDERS):
            area = zone.free_area[(order, HIGHATOMIC)]
            if not area:
                continue
            pfn = area[0]
            size = min(max(pageblock_nr_pages, 1 << order), zone.nr_reserved_highatomic)
            zone.nr_reserved_highatomic -= size
            if order < pageblock_order:
                ret = move_freepages_block(b, zone, pfn, HIGHATOMIC, ac.migratetype)
            else:
                move_to_free_list(b, zone, pfn, order, HIGHATOMIC, ac.migratetype)
                change_pageblock_range(b, pfn, order, ac.migratetype)
                ret = 1
            if ret > 0:
                return True
    return False


# --- allocation -------------------------------------------------------------------------------


def zone_statistics(b: Buddy, preferred_zone: Zone, z: Zone) -> None:
    """zone_statistics(): NUMA_HIT/MISS/FOREIGN and LOCAL/OTHER."""
    local = "NUMA_LOCAL" if z.node == b.cpu_to_node[b.cpu] else "NUMA_OTHER"
    if z.node == preferred_zone.node:
        z.numa["NUMA_HIT"] += 1
    else:
        z.numa["NUMA_MISS"] += 1
        preferred_zone.numa["NUMA_FOREIGN"] += 1
    z.numa[local] += 1


def wakeup_kswapd(b: Buddy, zone: Zone, gfp: int, order: int, highest_zoneidx: int) -> None:
    """wakeup_kswapd(): records a wake-up the allocator never sees the effect of here.

    balance_pgdat() would work off the boosts when kswapd runs, which in the machine happens
    only in ``run_background``; the allocator state is unchanged by the wake-up itself.
    """


def wake_all_kswapds(b: Buddy, order: int, gfp: int, ac: AllocContext) -> None:
    """wake_all_kswapds(): once per node of the zonelist."""
    last_node = None
    for zone in ac.zonelist:
        if zone.node == last_node:
            continue
        wakeup_kswapd(b, zone, gfp, order, ac.highest_zoneidx)
        last_node = zone.node


def rmqueue_buddy(b: Buddy, preferred_zone: Zone, zone: Zone, order: int, alloc_flags: int,
                  mt: int) -> int | None:
    """rmqueue_buddy()."""
    pfn = None
    if alloc_flags & ALLOC_HIGHATOMIC:
        pfn = __rmqueue_smallest(b, zone, order, HIGHATOMIC)
    if pfn is None:
        pfn = __rmqueue(b, zone, order, mt, alloc_flags, [RMQUEUE_NORMAL])
        if pfn is None and alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK):
            pfn = __rmqueue_smallest(b, zone, order, HIGHATOMIC)
        if pfn is None:
            return None
    b.PGALLOC[zone.idx] += 1 << order
    zone_statistics(b, preferred_zone, zone)
    return pfn


def __rmqueue_pcplist(b: Buddy, zone: Zone, order: int, mt: int, alloc_flags: int,
                      pcp: PerCpuPages, lst: list[int]) -> int | None:
    """__rmqueue_pcplist(): refill an empty list with rmqueue_bulk, take the head."""
    if not lst:
        batch = nr_pcp_alloc(pcp, zone, order)
        alloced = rmqueue_bulk(b, zone, order, batch, lst, mt, alloc_flags)
        pcp.count += alloced << order
        if not lst:
            return None
    pfn = lst.pop(0)
    pcp.count -= 1 << order
    return pfn


def rmqueue_pcplist(b: Buddy, preferred_zone: Zone, zone: Zone, order: int, mt: int,
                    alloc_flags: int) -> int | None:
    """rmqueue_pcplist()."""
    pcp = zone.pcp[b.cpu]
    pcp.free_count >>= 1
    lst = pcp.lists[order_to_pindex(mt, order)]
    pfn = __rmqueue_pcplist(b, zone, order, mt, alloc_flags, pcp, lst)
    if pfn is not None:
        b.PGALLOC[zone.idx] += 1 << order
        zone_statistics(b, preferred_zone, zone)
    return pfn


def rmqueue(b: Buddy, preferred_zone: Zone, zone: Zone, order: int, gfp: int, alloc_flags: int,
            mt: int) -> int | None:
    """rmqueue(): pcp orders through the pcp, then the buddy."""
    pfn = None
    if pcp_allowed_order(order):
        pfn = rmqueue_pcplist(b, preferred_zone, zone, order, mt, alloc_flags)
    if pfn is None:
        pfn = rmqueue_buddy(b, preferred_zone, zone, order, alloc_flags, mt)
    if alloc_flags & ALLOC_KSWAPD and "ZONE_BOOSTED_WATERMARK" in zone.flags:
        zone.flags.discard("ZONE_BOOSTED_WATERMARK")
        wakeup_kswapd(b, zone, 0, 0, zone.idx)
    return pfn


def gfp_zone(gfp: int) -> int:
    """gfp_zone() from GFP_ZONE_TABLE on x86-64 (no HIGHMEM)."""
    table = {0: ZONE_NORMAL, __GFP_DMA: ZONE_DMA, __GFP_HIGHMEM: ZONE_NORMAL,
             __GFP_DMA32: ZONE_DMA32, __GFP_MOVABLE: ZONE_NORMAL,
             __GFP_MOVABLE | __GFP_DMA: ZONE_DMA, __GFP_MOVABLE | __GFP_HIGHMEM: ZONE_MOVABLE,
             __GFP_MOVABLE | __GFP_DMA32: ZONE_DMA32}
    return table[gfp & (__GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE)]


def gfp_migratetype(b: Buddy, gfp: int) -> int:
    """gfp_migratetype()."""
    if b.page_group_by_mobility_disabled:
        return UNMOVABLE
    return (gfp & (__GFP_RECLAIMABLE | __GFP_MOVABLE)) >> 3


def alloc_flags_nofragment(b: Buddy, zone: Zone, gfp: int) -> int:
    """alloc_flags_nofragment(): ALLOC_KSWAPD, and NOFRAGMENT when preferring ZONE_NORMAL."""
    alloc_flags = gfp & __GFP_KSWAPD_RECLAIM  # == ALLOC_KSWAPD
    if zone.idx != ZONE_NORMAL:
        return alloc_flags
    dma32 = b.node_zones[zone.node].get(ZONE_DMA32)
    if len(b.node_zones) > 1 and (dma32 is None or not dma32.present_pages):
        return alloc_flags
    return alloc_flags | ALLOC_NOFRAGMENT


def get_page_from_freelist(b: Buddy, gfp: int, order: int, alloc_flags: int,
                           ac: AllocContext) -> int | None:
    """get_page_from_freelist() (node_reclaim off, kswapd never running, no cpusets)."""
    while True:  # retry:
        no_fallback = alloc_flags & ALLOC_NOFRAGMENT
        goto_retry = False
        for zone in ac.zonelist:
            if (no_fallback and len(b.node_zones) > 1 and zone is not ac.preferred_zone
                    and zone.node != ac.preferred_zone.node):
                alloc_flags &= ~ALLOC_NOFRAGMENT  # locality beats fragmentation avoidance
                goto_retry = True
                break
            try_this_zone = False
            if "ZONE_BELOW_HIGH" not in zone.flags:
                if zone_watermark_fast(zone, order, zone.wmark_pages(WMARK_HIGH),
                                       ac.highest_zoneidx, alloc_flags):
                    try_this_zone = True
                else:
                    zone.flags.add("ZONE_BELOW_HIGH")
            if not try_this_zone:  # check_alloc_wmark:
                mark = zone.wmark_pages(alloc_flags & ALLOC_WMARK_MASK)
                if (not zone_watermark_fast(zone, order, mark, ac.highest_zoneidx, alloc_flags)
                        and not alloc_flags & ALLOC_NO_WATERMARKS):
                    continue  # (node_reclaim is off)
            pfn = rmqueue(b, ac.preferred_zone, zone, order, gfp, alloc_flags, ac.migratetype)
            if pfn is not None:
                if alloc_flags & ALLOC_HIGHATOMIC:
                    reserve_highatomic_pageblock(b, pfn, order, zone)
                return pfn
        if goto_retry:
            continue
        if no_fallback:
            alloc_flags &= ~ALLOC_NOFRAGMENT
            continue
        return None


def gfp_to_alloc_flags(gfp: int, order: int) -> int:
    """gfp_to_alloc_flags() (CONFIG_CMA=n, no RT tasks, defrag_mode off)."""
    alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET
    alloc_flags |= gfp & (__GFP_HIGH | __GFP_KSWAPD_RECLAIM)  # == MIN_RESERVE | KSWAPD
    if not gfp & __GFP_DIRECT_RECLAIM:
        if not gfp & __GFP_NOMEMALLOC:
            alloc_flags |= ALLOC_NON_BLOCK
            if order > 0 and alloc_flags & ALLOC_MIN_RESERVE:
                alloc_flags |= ALLOC_HIGHATOMIC
        if alloc_flags & ALLOC_MIN_RESERVE:
            alloc_flags &= ~ALLOC_CPUSET
    return alloc_flags


def __alloc_pages_direct_reclaim(b: Buddy, gfp: int, order: int, alloc_flags: int,
                                 ac: AllocContext) -> int | None:
    """__alloc_pages_direct_reclaim() with a reclaim that 'progresses' but frees nothing."""
    pfn = get_page_from_freelist(b, gfp, order, alloc_flags, ac)
    if pfn is None:
        unreserve_highatomic_pageblock(b, ac, False)
        drain_all_pages(b, None)
        pfn = get_page_from_freelist(b, gfp, order, alloc_flags, ac)
    return pfn


def __alloc_pages_slowpath(b: Buddy, gfp: int, order: int, ac: AllocContext) -> int | None:
    """__alloc_pages_slowpath(): direct reclaim (that frees nothing) retried as the kernel
    retries it; no compaction."""
    alloc_flags = gfp_to_alloc_flags(gfp, order)
    # restart:
    if alloc_flags & ALLOC_KSWAPD:
        wake_all_kswapds(b, order, gfp, ac)
    pfn = get_page_from_freelist(b, gfp, order, alloc_flags, ac)
    if pfn is not None:
        return pfn
    # Direct compaction would run here for costly or non-movable high orders: none here.
    # retry: (no cpuset/zonelist change, no __GFP_MEMALLOC/PF_MEMALLOC reserve flags)
    if alloc_flags & ALLOC_KSWAPD:
        wake_all_kswapds(b, order, gfp, ac)
    pfn = get_page_from_freelist(b, gfp, order, alloc_flags, ac)
    if pfn is not None:
        return pfn
    if not gfp & __GFP_DIRECT_RECLAIM:
        return None
    no_progress_loops = 0
    while True:
        pfn = __alloc_pages_direct_reclaim(b, gfp, order, alloc_flags, ac)
        if pfn is not None or gfp & __GFP_NORETRY:
            return pfn
        if order > PAGE_ALLOC_COSTLY_ORDER and not gfp & __GFP_RETRY_MAYFAIL:
            return None
        no_progress_loops += 1  # reclaim frees nothing here
        if not should_reclaim_retry(b, order, ac, alloc_flags, no_progress_loops):
            return None


def should_reclaim_retry(b: Buddy, order: int, ac: AllocContext, alloc_flags: int,
                         no_progress_loops: int) -> bool:
    """should_reclaim_retry() with nothing reclaimable: free pages alone against min."""
    if no_progress_loops > MAX_RECLAIM_RETRIES:
        return False
    return any(__zone_watermark_ok(z, order, z.wmark_pages(WMARK_MIN), ac.highest_zoneidx,
                                   alloc_flags, z.NR_FREE_PAGES) for z in ac.zonelist)


def alloc_pages_node(b: Buddy, nid: int, gfp: int, order: int) -> int | None:
    """__alloc_frozen_pages_noprof(): prepare_alloc_pages, fast path, slow path."""
    assert 0 <= order <= MAX_PAGE_ORDER
    highest_zoneidx = gfp_zone(gfp)
    ac = AllocContext(b.zonelist(nid, highest_zoneidx), gfp_migratetype(b, gfp),
                      highest_zoneidx)
    alloc_flags = ALLOC_WMARK_LOW
    alloc_flags |= alloc_flags_nofragment(b, ac.preferred_zone, gfp)
    pfn = get_page_from_freelist(b, gfp, order, alloc_flags, ac)
    if pfn is None:
        pfn = __alloc_pages_slowpath(b, gfp, order, ac)
    return pfn
