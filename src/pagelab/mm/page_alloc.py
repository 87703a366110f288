"""The buddy allocator: free lists, coalescing, fallbacks, per-CPU lists and watermarks.

Models ``mm/page_alloc.c`` of mainline v6.16 (x86-64), function by function, with the
kernel's names. Every function takes the zone (or the machine) explicitly; pfns stand for
``struct page *``. A failed allocation returns ``-1`` internally and ``None`` at the public
boundary, where the kernel returns NULL.

Locks are not taken here: Core I runs one CPU at a time, so ``zone->lock`` and the pcp lock
are implicit. The schedule explorer (a later layer) adds preemption points at the places the
kernel takes them; the functions below are already cut at those places.

Named simplifications, each with its reason:

* ``check_new_pages`` and the debug-only ``check_free_page`` do not run on every call (they are
  CONFIG_DEBUG_VM checks); ``check_state()`` verifies the same invariants for all pages.
* No page reporting, no shuffling (``shuffle_pick_tail``), no debug guard pages, no
  unaccepted memory, no memory tiering (WMARK_PROMO is computed but not used): these are off
  by default on the reference machine.
* ``decay_pcp_high`` (vmstat-refresh work that lowers ``pcp->high`` over time) is not run; a
  pcp's high moves only in the allocation and free paths.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from math import isqrt
from typing import TYPE_CHECKING

import numpy as np

from pagelab.errors import InvalidArgument, ModelBug
from pagelab.mm import gfp as G
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.internal import (
    ALLOC_CMA,
    ALLOC_CPUSET,
    ALLOC_HIGHATOMIC,
    ALLOC_KSWAPD,
    ALLOC_MIN_RESERVE,
    ALLOC_NO_WATERMARKS,
    ALLOC_NOFRAGMENT,
    ALLOC_NON_BLOCK,
    ALLOC_OOM,
    ALLOC_RESERVES,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MASK,
    ALLOC_WMARK_MIN,
    COMPACT_PRIORITY_NAMES,
    FPI_NONE,
    FPI_TO_TAIL,
    MAX_COMPACT_RETRIES,
    MAX_RECLAIM_RETRIES,
    MIN_PERCPU_PAGELIST_HIGH_FRACTION,
    RMQUEUE_CLAIM,
    RMQUEUE_CMA,
    RMQUEUE_NORMAL,
    RMQUEUE_STEAL,
    SWAP_CLUSTER_MAX,
    CompactPriority,
    fallbacks,
)
from pagelab.mm.mmzone import (
    MAX_NR_ZONES,
    MAX_PAGE_ORDER,
    MIGRATE_CMA,
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE,
    MIGRATE_TYPES,
    MIGRATE_UNMOVABLE,
    MIGRATETYPE_MASK,
    NR_LOWORDER_PCP_LISTS,
    NR_PAGE_ORDERS,
    NR_PCP_LISTS,
    PAGE_ALLOC_COSTLY_ORDER,
    PAGE_SHIFT,
    PB_ISOLATE_BIT,
    PB_SKIP_BIT,
    PCP_BATCH_SCALE_MAX,
    PCPF_FREE_HIGH_BATCH,
    PCPF_PREV_FREE_HIGH_ORDER,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    WMARK_PROMO,
    ZONE_BELOW_HIGH,
    ZONE_BOOSTED_WATERMARK,
    ZONE_RECLAIM_ACTIVE,
    PerCpuPages,
    Zone,
    ZoneType,
    migratetype_is_mergeable,
    pageblock_nr_pages,
    pageblock_order,
)

if TYPE_CHECKING:
    from pagelab.machine import Machine

_BUDDY = pf.PAGE_TYPE_BUDDY
_PGTY_BUDDY = pf.PGTY_buddy
_ISOLATE = MIGRATE_ISOLATE

# ================================================================================================
# pageblock bits (get_pfnblock_flags_mask / set_pfnblock_flags_mask)
# ================================================================================================


def get_pageblock_migratetype(m: Machine, pfn: int) -> int:
    """Return the migratetype of the pageblock holding ``pfn`` (``get_pfnblock_migratetype``).

    An isolated block reads as MIGRATE_ISOLATE whatever type lies underneath (v6.17+).
    """
    bits = m.pageblock_flags_mv[pfn >> pageblock_order]
    return _ISOLATE if bits & PB_ISOLATE_BIT else bits & MIGRATETYPE_MASK


def set_pageblock_migratetype(m: Machine, pfn: int, migratetype: int) -> None:
    """Set the type of the pageblock holding ``pfn``, clearing its isolate bit.

    Models ``set_pageblock_migratetype()`` (v6.18): with mobility grouping disabled every
    pcp type is stored as UNMOVABLE; MIGRATE_ISOLATE is refused (use
    :func:`set_pageblock_isolate`).
    """
    if migratetype == _ISOLATE:
        raise ModelBug("set_pageblock_migratetype(MIGRATE_ISOLATE): use set_pageblock_isolate")
    if m.page_group_by_mobility_disabled and migratetype < MIGRATE_PCPTYPES:
        migratetype = MIGRATE_UNMOVABLE
    pb = m.pageblock_flags_mv
    idx = pfn >> pageblock_order
    pb[idx] = (pb[idx] & ~(MIGRATETYPE_MASK | PB_ISOLATE_BIT)) | migratetype


def set_pageblock_isolate(m: Machine, pfn: int) -> None:
    """Set PB_migrate_isolate on the pageblock holding ``pfn``, keeping its type."""
    m.pageblock_flags_mv[pfn >> pageblock_order] |= PB_ISOLATE_BIT


def clear_pageblock_isolate(m: Machine, pfn: int) -> None:
    """Clear PB_migrate_isolate on the pageblock holding ``pfn``."""
    m.pageblock_flags_mv[pfn >> pageblock_order] &= ~PB_ISOLATE_BIT


def get_pageblock_skip(m: Machine, pfn: int) -> bool:
    """Return ``PB_migrate_skip`` of the pageblock holding ``pfn``."""
    return bool(m.pageblock_flags_mv[pfn >> pageblock_order] & PB_SKIP_BIT)


def set_pageblock_skip(m: Machine, pfn: int) -> None:
    """Set ``PB_migrate_skip`` for the pageblock holding ``pfn``."""
    pb = m.pageblock_flags_mv
    pb[pfn >> pageblock_order] |= PB_SKIP_BIT


def clear_pageblock_skip(m: Machine, pfn: int) -> None:
    """Clear ``PB_migrate_skip`` for the pageblock holding ``pfn``."""
    pb = m.pageblock_flags_mv
    pb[pfn >> pageblock_order] &= ~PB_SKIP_BIT


def change_pageblock_range(m: Machine, pfn: int, start_order: int, migratetype: int) -> None:
    """Set the migratetype of every pageblock covered by a block of ``start_order``."""
    nr_pageblocks = 1 << (start_order - pageblock_order)
    for i in range(nr_pageblocks):
        set_pageblock_migratetype(m, pfn + i * pageblock_nr_pages, migratetype)


# ================================================================================================
# free lists
# ================================================================================================


def account_freepages(zone: Zone, nr_pages: int, migratetype: int) -> None:
    """Account free pages of ``migratetype`` in the zone counters (``account_freepages``)."""
    if migratetype == _ISOLATE:
        return
    zone.vm_stat[vs.NR_FREE_PAGES] += nr_pages
    if migratetype == MIGRATE_CMA:
        zone.vm_stat[vs.NR_FREE_CMA_PAGES] += nr_pages
    elif migratetype == MIGRATE_HIGHATOMIC:
        zone.nr_free_highatomic += nr_pages


def set_buddy_order(zone: Zone, pfn: int, order: int) -> None:
    """Mark ``pfn`` as the head of a free block of ``order`` (``set_buddy_order``)."""
    mem = zone.mem
    mem.private_mv[pfn] = order
    mem.mapcount_mv[pfn] = _BUDDY


def __add_to_free_list(zone: Zone, pfn: int, order: int, migratetype: int, tail: bool) -> None:
    """Link a free block into ``free_area[order].free_list[migratetype]``.

    The list's type is recorded in the free page's ``index`` (v4.8 kept the pcp migratetype
    there): since v6.10 it always equals the pageblock's type, but v4.8's fallback left free
    blocks on the requester's list inside a pageblock of another type, and the per-list
    counts must follow the list a block is really on.
    """
    mem = zone.mem
    head = mem.nr_pfns + zone.list_head_base + order * MIGRATE_TYPES + migratetype
    if tail:
        mem.list_add_tail(pfn, head)
    else:
        mem.list_add(pfn, head)
    mem.index_mv[pfn] = migratetype
    zone.nr_free[order] += 1
    zone.free_count[order][migratetype] += 1
    if order >= pageblock_order and migratetype != _ISOLATE:
        zone.vm_stat[vs.NR_FREE_PAGES_BLOCKS] += 1 << order


def __del_page_from_free_list(zone: Zone, pfn: int, order: int, migratetype: int) -> None:
    """Unlink a free block and clear its buddy marking (``__del_page_from_free_list``)."""
    mem = zone.mem
    mem.list_del(pfn)
    mem.mapcount_mv[pfn] = pf.MAPCOUNT_NONE
    mem.private_mv[pfn] = 0
    zone.nr_free[order] -= 1
    zone.free_count[order][mem.index_mv[pfn]] -= 1  # the list it was on
    mem.index_mv[pfn] = 0
    if order >= pageblock_order and migratetype != _ISOLATE:
        zone.vm_stat[vs.NR_FREE_PAGES_BLOCKS] -= 1 << order


def del_page_from_free_list(zone: Zone, pfn: int, order: int, migratetype: int) -> None:
    """Unlink a free block and account it as no longer free (``del_page_from_free_list``)."""
    __del_page_from_free_list(zone, pfn, order, migratetype)
    account_freepages(zone, -(1 << order), migratetype)


def move_to_free_list(zone: Zone, pfn: int, order: int, old_mt: int, new_mt: int) -> None:
    """Move a free block to the tail of another migratetype's list (``move_to_free_list``)."""
    mem = zone.mem
    head = mem.nr_pfns + zone.list_head_base + order * MIGRATE_TYPES + new_mt
    mem.list_move_tail(pfn, head)
    zone.free_count[order][mem.index_mv[pfn]] -= 1
    zone.free_count[order][new_mt] += 1
    mem.index_mv[pfn] = new_mt
    account_freepages(zone, -(1 << order), old_mt)
    account_freepages(zone, 1 << order, new_mt)
    if order >= pageblock_order and (old_mt == _ISOLATE) != (new_mt == _ISOLATE):
        sign = 1 if old_mt == _ISOLATE else -1
        zone.vm_stat[vs.NR_FREE_PAGES_BLOCKS] += sign * (1 << order)


def page_is_buddy(zone: Zone, pfn: int, buddy: int, order: int) -> bool:
    """Return whether ``buddy`` is a free block of ``order`` in pfn's zone (``page_is_buddy``)."""
    mem = zone.mem
    if (mem.mapcount_mv[buddy] >> 24) & 0xFF != _PGTY_BUDDY:
        return False
    if mem.private_mv[buddy] != order:
        return False
    # page_zone_id(): zone and node bits of page->flags.
    return mem.flags_mv[pfn] >> pf.NODES_PGSHIFT == mem.flags_mv[buddy] >> pf.NODES_PGSHIFT


def find_buddy_page_pfn(zone: Zone, pfn: int, order: int) -> int:
    """Return the pfn of the free buddy of the block at ``pfn``, or -1 (``find_buddy_page_pfn``)."""
    buddy = pfn ^ (1 << order)
    if buddy >= zone.mem.nr_pfns:
        return -1
    if page_is_buddy(zone, pfn, buddy, order):
        return buddy
    return -1


def buddy_merge_likely(zone: Zone, pfn: int, buddy_pfn: int, order: int) -> bool:
    """Return whether the next-larger buddy is free, so the block may merge soon.

    Models ``buddy_merge_likely()``: such a block goes to the tail of its free list.
    """
    if order >= MAX_PAGE_ORDER - 1:
        return False
    higher_page_pfn = buddy_pfn & pfn
    return find_buddy_page_pfn(zone, higher_page_pfn, order + 1) >= 0


def __free_one_page(zone: Zone, pfn: int, order: int, migratetype: int, fpi_flags: int) -> None:
    """Free a block to the buddy lists, merging with free buddies (``__free_one_page``).

    Caller holds zone->lock. Merging stops at MAX_PAGE_ORDER, at a buddy that is not free,
    and across a pageblock boundary whose types cannot merge (ISOLATE, CMA, HIGHATOMIC with
    another type). A merged buddy of another type takes this block's type, so that a later
    ``expand()`` puts the pieces on the right lists (v6.10+).
    """
    m = zone.machine
    mem = zone.mem
    mapcount = mem.mapcount_mv
    private = mem.private_mv
    flags = mem.flags_mv
    account_freepages(zone, 1 << order, migratetype)
    zone_id = flags[pfn] >> pf.NODES_PGSHIFT
    buddy_pfn = pfn ^ (1 << order)
    while order < MAX_PAGE_ORDER:
        buddy_mt = migratetype
        buddy_pfn = pfn ^ (1 << order)
        # find_buddy_page_pfn() / page_is_buddy(), inlined: this loop is the free hot path.
        if (
            (mapcount[buddy_pfn] >> 24) & 0xFF != _PGTY_BUDDY
            or private[buddy_pfn] != order
            or flags[buddy_pfn] >> pf.NODES_PGSHIFT != zone_id
        ):
            break
        if order >= pageblock_order:
            buddy_mt = get_pageblock_migratetype(m, buddy_pfn)
            if migratetype != buddy_mt and (
                not migratetype_is_mergeable(migratetype) or not migratetype_is_mergeable(buddy_mt)
            ):
                break
        __del_page_from_free_list(zone, buddy_pfn, order, buddy_mt)
        if buddy_mt != migratetype:
            # Match buddy type, so that a later expand() puts the pieces on the right lists.
            # Both types are mergeable ones, which are accounted alike.
            set_pageblock_migratetype(m, buddy_pfn, migratetype)
        pfn &= buddy_pfn
        order += 1
    set_buddy_order(zone, pfn, order)
    if fpi_flags & FPI_TO_TAIL:
        to_tail = True
    else:
        to_tail = buddy_merge_likely(zone, pfn, buddy_pfn, order)
    __add_to_free_list(zone, pfn, order, migratetype, to_tail)


def split_large_buddy(zone: Zone, pfn: int, order: int, fpi_flags: int) -> None:
    """Free a block pageblock by pageblock, each with its own type (``split_large_buddy``)."""
    m = zone.machine
    end = pfn + (1 << order)
    if order > pageblock_order:
        order = pageblock_order
    while True:
        mt = get_pageblock_migratetype(m, pfn)
        __free_one_page(zone, pfn, order, mt, fpi_flags)
        pfn += 1 << order
        if pfn == end:
            break


def free_one_page(zone: Zone, pfn: int, order: int, fpi_flags: int) -> None:
    """Free a block straight to the buddy under zone->lock and count PGFREE (``free_one_page``)."""
    split_large_buddy(zone, pfn, order, fpi_flags)
    zone.machine.vm_events[vs.PGFREE] += 1 << order


def expand(zone: Zone, pfn: int, low: int, high: int, migratetype: int) -> int:
    """Give back the upper halves of a split block to the free lists (``expand``).

    Returns the number of pages put back on the lists.
    """
    size = 1 << high
    nr_added = 0
    while high > low:
        high -= 1
        size >>= 1
        __add_to_free_list(zone, pfn + size, high, migratetype, False)
        set_buddy_order(zone, pfn + size, high)
        nr_added += size
    return nr_added


def page_del_and_expand(zone: Zone, pfn: int, low: int, high: int, migratetype: int) -> None:
    """Take a free block off its list and split it down to ``low`` (``page_del_and_expand``)."""
    nr_pages = 1 << high
    __del_page_from_free_list(zone, pfn, high, migratetype)
    nr_pages -= expand(zone, pfn, low, high, migratetype)
    account_freepages(zone, -nr_pages, migratetype)


def __rmqueue_smallest(zone: Zone, order: int, migratetype: int) -> int:
    """Take the smallest free block of ``migratetype`` that fits (``__rmqueue_smallest``)."""
    mem = zone.mem
    base = mem.nr_pfns + zone.list_head_base
    free_count = zone.free_count
    for current_order in range(order, NR_PAGE_ORDERS):
        if not free_count[current_order][migratetype]:
            continue
        pfn = mem.lru_next_mv[base + current_order * MIGRATE_TYPES + migratetype] >> 1
        page_del_and_expand(zone, pfn, order, current_order, migratetype)
        return pfn
    return -1


def should_try_claim_block(order: int, start_mt: int, mobility_disabled: bool) -> bool:
    """Return whether a fallback at ``order`` should try to claim the whole pageblock."""
    if order >= pageblock_order:
        return True
    if order >= pageblock_order // 2:
        return True
    if start_mt in (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE):
        return True
    # Movable pages do not fragment for good, so steal single pages rather than claim.
    return mobility_disabled


def find_suitable_fallback(zone: Zone, order: int, migratetype: int, claimable: bool) -> int:
    """Return a fallback migratetype with free blocks at ``order``, -1 if none.

    Models ``find_suitable_fallback()`` (v6.15+): -2 means "too low an order to claim"
    when ``claimable`` asks for claimable blocks only.
    """
    if claimable and not should_try_claim_block(
        order, migratetype, zone.machine.page_group_by_mobility_disabled
    ):
        return -2
    if zone.nr_free[order] == 0:
        return -1
    counts = zone.free_count[order]
    for fallback_mt in fallbacks[migratetype]:
        if counts[fallback_mt]:
            return fallback_mt
    return -1


def prep_move_freepages_block(zone: Zone, pfn: int) -> tuple[int, int, int] | None:
    """Count free and movable pages in the pageblock of ``pfn`` (``prep_move_freepages_block``).

    Returns ``(start_pfn, free_pages, movable_pages)``, or None when the block straddles the
    zone's edges (the caller only holds this zone's lock).
    """
    start = pfn & ~(pageblock_nr_pages - 1)
    end = start + pageblock_nr_pages
    if not zone.zone_spans_pfn(start) or not zone.zone_spans_pfn(end - 1):
        return None
    mem = zone.mem
    mapcount = mem.mapcount_mv
    free_pages = 0
    movable_pages = 0
    cur = start
    while cur < end:
        if (mapcount[cur] >> 24) & 0xFF == _PGTY_BUDDY:
            nr = 1 << mem.private_mv[cur]
            free_pages += nr
            cur += nr
            continue
        # Pages that could be isolated for migration count as movable, without trying.
        if pf.PageLRU(mem, cur) or pf.__PageMovable(mem, cur):
            movable_pages += 1
        cur += 1
    return start, free_pages, movable_pages


def __move_freepages_block(zone: Zone, start_pfn: int, old_mt: int, new_mt: int) -> int:
    """Move every free block of a pageblock to ``new_mt``'s lists; return pages moved."""
    mem = zone.mem
    mapcount = mem.mapcount_mv
    pfn = start_pfn
    end = start_pfn + pageblock_nr_pages
    pages_moved = 0
    while pfn < end:
        if (mapcount[pfn] >> 24) & 0xFF != _PGTY_BUDDY:
            pfn += 1
            continue
        order = mem.private_mv[pfn]
        move_to_free_list(zone, pfn, order, old_mt, new_mt)
        pfn += 1 << order
        pages_moved += 1 << order
    return pages_moved


def move_freepages_block(zone: Zone, pfn: int, old_mt: int, new_mt: int) -> int:
    """Convert a pageblock to ``new_mt`` with its free pages; -1 if it straddles the zone.

    Since v6.10 (``move_freepages_block`` after "mm: page_alloc: fix freelist movement during
    block conversion") this also sets the pageblock's migratetype.
    """
    prep = prep_move_freepages_block(zone, pfn)
    if prep is None:
        return -1
    moved = __move_freepages_block(zone, prep[0], old_mt, new_mt)
    set_pageblock_migratetype(zone.machine, prep[0], new_mt)
    return moved


def boost_watermark(zone: Zone) -> bool:
    """Raise the zone's watermark boost after a fragmenting fallback (``boost_watermark``)."""
    m = zone.machine
    if not m.profile.watermark_boost or not m.watermark_boost_factor:
        return False
    # Zones too small to satisfy a boost are left alone (small machines, kdump).
    if pageblock_nr_pages * 4 > zone.managed_pages:
        return False
    max_boost = zone._watermark[WMARK_HIGH] * m.watermark_boost_factor // 10000
    # High watermark may be uninitialised; boosting is then pointless.
    if not max_boost:
        return False
    max_boost = max(pageblock_nr_pages, max_boost)
    zone.watermark_boost = min(zone.watermark_boost + pageblock_nr_pages, max_boost)
    return True


def boost_watermark_after_fallback(zone: Zone, alloc_flags: int) -> None:
    """Boost the watermarks and, if the request may wake kswapd, mark the zone for it.

    The two lines v5.0's ``steal_suitable_fallback`` and v6.15's ``try_to_claim_block`` run
    before taking from another migratetype's pageblock: kswapd is woken now, as the node may
    be balanced overall and would not wake on its own.
    """
    if boost_watermark(zone) and alloc_flags & ALLOC_KSWAPD:
        zone.flags |= 1 << ZONE_BOOSTED_WATERMARK


def try_to_claim_block(
    zone: Zone, pfn: int, current_order: int, order: int, start_type: int, block_type: int,
    alloc_flags: int,
) -> int:
    """Claim the pageblock of a fallback block for ``start_type`` if enough of it is free.

    Models ``try_to_claim_block()`` (v6.15). Whole pageblocks and larger are always taken;
    otherwise the block's free pages plus its pages "alike" the request must reach half a
    pageblock. Returns the allocated pfn, or -1.
    """
    m = zone.machine
    if current_order >= pageblock_order:
        del_page_from_free_list(zone, pfn, current_order, block_type)
        change_pageblock_range(m, pfn, current_order, start_type)
        nr_added = expand(zone, pfn, order, current_order, start_type)
        account_freepages(zone, nr_added, start_type)
        return pfn
    boost_watermark_after_fallback(zone, alloc_flags)
    prep = prep_move_freepages_block(zone, pfn)
    if prep is None:
        return -1
    start_pfn, free_pages, movable_pages = prep
    if start_type == MIGRATE_MOVABLE:
        alike_pages = movable_pages
    elif block_type == MIGRATE_MOVABLE:
        # An unmovable/reclaimable request in a movable block: the pages that are not free
        # and not movable must be of a type compatible with the request.
        alike_pages = pageblock_nr_pages - (free_pages + movable_pages)
    else:
        alike_pages = 0
    if free_pages + alike_pages >= (1 << (pageblock_order - 1)) or (
        m.page_group_by_mobility_disabled
    ):
        __move_freepages_block(zone, start_pfn, block_type, start_type)
        set_pageblock_migratetype(m, start_pfn, start_type)
        return __rmqueue_smallest(zone, order, start_type)
    return -1


def _trace_extfrag(zone: Zone, pfn: int, order: int, fallback_order: int, start_mt: int,
                   fallback_mt: int) -> None:
    m = zone.machine
    if m.trace is None:
        return
    change_ownership = get_pageblock_migratetype(m, pfn) == start_mt
    # TP_STRUCT__entry fields only: TP_printk derives page and fragmenting from them.
    m.trace.emit(
        "mm_page_alloc_extfrag",
        pfn=pfn, alloc_order=order, fallback_order=fallback_order,
        alloc_migratetype=start_mt, fallback_migratetype=fallback_mt,
        change_ownership=int(change_ownership),
    )


def __rmqueue_claim(zone: Zone, order: int, start_migratetype: int, alloc_flags: int) -> int:
    """Fall back to another type's block, largest first, claiming its pageblock.

    Models ``__rmqueue_claim()`` (v6.15). With ALLOC_NOFRAGMENT only whole pageblocks may
    be taken.
    """
    min_order = order
    if order < pageblock_order and alloc_flags & ALLOC_NOFRAGMENT:
        min_order = pageblock_order
    mem = zone.mem
    base = mem.nr_pfns + zone.list_head_base
    for current_order in range(MAX_PAGE_ORDER, min_order - 1, -1):
        fallback_mt = find_suitable_fallback(zone, current_order, start_migratetype, True)
        if fallback_mt == -1:
            continue
        if fallback_mt == -2:
            break
        pfn = mem.lru_next_mv[base + current_order * MIGRATE_TYPES + fallback_mt] >> 1
        got = try_to_claim_block(zone, pfn, current_order, order, start_migratetype,
                                 fallback_mt, alloc_flags)
        if got >= 0:
            _trace_extfrag(zone, got, order, current_order, start_migratetype, fallback_mt)
            return got
    return -1


def __rmqueue_steal(zone: Zone, order: int, start_migratetype: int) -> int:
    """Take the smallest fallback block without claiming its pageblock (``__rmqueue_steal``)."""
    mem = zone.mem
    base = mem.nr_pfns + zone.list_head_base
    for current_order in range(order, NR_PAGE_ORDERS):
        fallback_mt = find_suitable_fallback(zone, current_order, start_migratetype, False)
        if fallback_mt == -1:
            continue
        pfn = mem.lru_next_mv[base + current_order * MIGRATE_TYPES + fallback_mt] >> 1
        page_del_and_expand(zone, pfn, order, current_order, fallback_mt)
        _trace_extfrag(zone, pfn, order, current_order, start_migratetype, fallback_mt)
        return pfn
    return -1


def __rmqueue_fallback_v48(zone: Zone, order: int, start_mt: int, alloc_flags: int = 0) -> int:
    """Fall back as v4.8's ``__rmqueue_fallback()`` did: largest block first, steal-or-take.

    Used by profiles with ``rmqueue_claim_steal=False``. A stealable block moves its whole
    pageblock's free pages to ``start_mt`` and claims the block when at least half of it was
    free; the remainder of the split lands on ``start_mt``'s lists either way. With
    ``profile.fallback_smallest`` (v4.13), a movable request that cannot claim the block
    splits the smallest suitable block instead of the largest. With ``profile.watermark_boost``
    every fallback below pageblock order boosts the zone's watermarks first, as v5.0's
    ``steal_suitable_fallback`` did (1c30844d2dfe), and asks for kswapd when the request may
    wake it.
    """
    m = zone.machine
    mem = zone.mem
    base = mem.nr_pfns + zone.list_head_base
    for current_order in range(MAX_PAGE_ORDER, order - 1, -1):
        fallback_mt = find_suitable_fallback(zone, current_order, start_mt, False)
        if fallback_mt < 0:
            continue
        can_claim = should_try_claim_block(current_order, start_mt,
                                           m.page_group_by_mobility_disabled)
        if (not can_claim and start_mt == MIGRATE_MOVABLE and current_order > order
                and m.profile.fallback_smallest):
            current_order, fallback_mt = _smallest_fallback(zone, order, start_mt)
        pfn = mem.lru_next_mv[base + current_order * MIGRATE_TYPES + fallback_mt] >> 1
        if current_order < pageblock_order:
            boost_watermark_after_fallback(zone, alloc_flags)
        if can_claim:
            if current_order >= pageblock_order:
                change_pageblock_range(m, pfn, current_order, start_mt)
                del_page_from_free_list(zone, pfn, current_order, fallback_mt)
                account_freepages(zone, expand(zone, pfn, order, current_order, start_mt),
                                  start_mt)
                _trace_extfrag(zone, pfn, order, current_order, start_mt, fallback_mt)
                return pfn
            prep = prep_move_freepages_block(zone, pfn)
            if prep is not None:
                moved = __move_freepages_block(zone, prep[0], fallback_mt, start_mt)
                if moved >= 1 << (pageblock_order - 1) or m.page_group_by_mobility_disabled:
                    set_pageblock_migratetype(m, pfn, start_mt)
                fallback_mt = start_mt
        del_page_from_free_list(zone, pfn, current_order, fallback_mt)
        account_freepages(zone, expand(zone, pfn, order, current_order, start_mt), start_mt)
        _trace_extfrag(zone, pfn, order, current_order, start_mt, fallback_mt)
        return pfn
    return -1


def _smallest_fallback(zone: Zone, order: int, start_mt: int) -> tuple[int, int]:
    """The smallest order with a fallback block (v4.13's ``find_smallest`` loop)."""
    for current_order in range(order, MAX_PAGE_ORDER + 1):
        fallback_mt = find_suitable_fallback(zone, current_order, start_mt, False)
        if fallback_mt >= 0:
            return current_order, fallback_mt
    raise ModelBug("VM_BUG_ON(current_order == MAX_ORDER) in __rmqueue_fallback: the largest "
                   "fallback block found a moment ago is gone")


def __rmqueue_cma_fallback(zone: Zone, order: int) -> int:
    """Allocate from the CMA lists (``__rmqueue_cma_fallback``)."""
    return __rmqueue_smallest(zone, order, MIGRATE_CMA)


def __rmqueue(zone: Zone, order: int, migratetype: int, alloc_flags: int,
              mode: list[int]) -> int:
    """Remove a block from the free lists, falling back as needed (``__rmqueue``, v6.15).

    ``mode`` is a one-element list standing for ``enum rmqueue_mode *``: the fallback level
    that worked last, remembered across the calls of one ``rmqueue_bulk``.
    """
    if alloc_flags & ALLOC_CMA and (
        zone.vm_stat[vs.NR_FREE_CMA_PAGES] > zone.vm_stat[vs.NR_FREE_PAGES] // 2
    ):
        pfn = __rmqueue_cma_fallback(zone, order)
        if pfn >= 0:
            return pfn
    if not zone.machine.profile.rmqueue_claim_steal:
        pfn = __rmqueue_smallest(zone, order, migratetype)
        if pfn < 0 and migratetype == MIGRATE_MOVABLE and alloc_flags & ALLOC_CMA:
            pfn = __rmqueue_cma_fallback(zone, order)
        if pfn < 0:
            pfn = __rmqueue_fallback_v48(zone, order, migratetype, alloc_flags)
        return pfn
    level = mode[0]
    if level <= RMQUEUE_NORMAL:
        pfn = __rmqueue_smallest(zone, order, migratetype)
        if pfn >= 0:
            return pfn
    if level <= RMQUEUE_CMA and alloc_flags & ALLOC_CMA:
        pfn = __rmqueue_cma_fallback(zone, order)
        if pfn >= 0:
            mode[0] = RMQUEUE_CMA
            return pfn
    if level <= RMQUEUE_CLAIM:
        pfn = __rmqueue_claim(zone, order, migratetype, alloc_flags)
        if pfn >= 0:
            mode[0] = RMQUEUE_NORMAL  # the preferred list was replenished
            return pfn
    if level <= RMQUEUE_STEAL and not alloc_flags & ALLOC_NOFRAGMENT:
        pfn = __rmqueue_steal(zone, order, migratetype)
        if pfn >= 0:
            mode[0] = RMQUEUE_STEAL
            return pfn
    return -1


def rmqueue_bulk(zone: Zone, order: int, count: int, pcp_list: deque[int], migratetype: int,
                 alloc_flags: int) -> int:
    """Move up to ``count`` blocks to a pcp list, in pfn order at its tail (``rmqueue_bulk``)."""
    mode = [RMQUEUE_NORMAL]
    allocated = 0
    for _ in range(count):
        pfn = __rmqueue(zone, order, migratetype, alloc_flags, mode)
        if pfn < 0:
            break
        pcp_list.append(pfn)
        allocated += 1
    return allocated


# ================================================================================================
# per-CPU pagesets
# ================================================================================================


def nr_pcp_alloc(pcp: PerCpuPages, zone: Zone, order: int) -> int:
    """Return how many blocks to move to an empty pcp list (``nr_pcp_alloc``)."""
    base_batch = pcp.batch
    high_min = pcp.high_min
    high_max = pcp.high_max
    high = pcp.high = min(max(pcp.high, high_min), high_max)
    if high < base_batch:
        return 1
    batch = base_batch if order else base_batch << pcp.alloc_factor
    # Grow pcp->high while the zone is above its high watermark and the pcp runs empty.
    if high_min != high_max and not zone.flags & (1 << ZONE_BELOW_HIGH):
        high = pcp.high = min(high + batch, high_max)
    if not order:
        max_nr_alloc = max(high - pcp.count - base_batch, base_batch)
        if batch <= max_nr_alloc and pcp.alloc_factor < PCP_BATCH_SCALE_MAX:
            pcp.alloc_factor += 1
        batch = min(batch, max_nr_alloc)
    if batch > 1:
        batch = max(batch >> order, 2)
    return batch


def nr_pcp_free(pcp: PerCpuPages, batch: int, high: int, free_high: bool) -> int:
    """Return how many pages a full pcp gives back to the buddy (``nr_pcp_free``)."""
    if free_high:
        return min(pcp.count, batch << PCP_BATCH_SCALE_MAX)
    if high < batch:
        return 1
    # Leave at least batch pages; free more after a run of frees, to cut lock round trips.
    return min(max(pcp.free_count, batch), high - batch)


def nr_pcp_high(pcp: PerCpuPages, zone: Zone, batch: int, free_high: bool) -> int:
    """Return the count above which the pcp is trimmed, adapting ``pcp->high`` (``nr_pcp_high``)."""
    high_min = pcp.high_min
    high_max = pcp.high_max
    high = pcp.high = min(max(pcp.high, high_min), high_max)
    if not high:
        return 0
    if free_high:
        pcp.high = max(high - (batch << PCP_BATCH_SCALE_MAX), high_min)
        return 0
    if zone.flags & (1 << ZONE_RECLAIM_ACTIVE):
        free_count = max(pcp.free_count, batch)
        pcp.high = max(high - free_count, high_min)
        return min(batch << 2, pcp.high)
    if high_min == high_max:
        return high
    if zone.flags & (1 << ZONE_BELOW_HIGH):
        free_count = max(pcp.free_count, batch)
        pcp.high = max(high - free_count, high_min)
        high = max(pcp.count, high_min)
    elif pcp.count >= high:
        need_high = pcp.free_count + batch
        if pcp.high < need_high:
            pcp.high = min(max(need_high, high_min), high_max)
    return high


def free_pcppages_bulk(zone: Zone, count: int, pcp: PerCpuPages, pindex: int) -> None:
    """Return ``count`` pages from a pcp to the buddy, list by list, tails first.

    Models ``free_pcppages_bulk()``: the requested list is drained first, then the others
    round-robin; each page goes back with its pageblock's current type.
    """
    m = zone.machine
    count = min(pcp.count, count)
    pindex -= 1
    lists = pcp.lists
    while count > 0:
        while True:
            pindex += 1
            if pindex > NR_PCP_LISTS - 1:
                pindex = 0
            pcp_list = lists[pindex]
            if pcp_list:
                break
        order = pageblock_order if pindex >= NR_LOWORDER_PCP_LISTS else pindex // MIGRATE_PCPTYPES
        nr_pages = 1 << order
        pb = m.pageblock_flags_mv
        while True:
            pfn = pcp_list.pop()
            bits = pb[pfn >> pageblock_order]
            mt = _ISOLATE if bits & PB_ISOLATE_BIT else bits & MIGRATETYPE_MASK
            count -= nr_pages
            pcp.count -= nr_pages
            __free_one_page(zone, pfn, order, mt, FPI_NONE)
            if count <= 0 or not pcp_list:
                break


def drain_pages_zone(cpu: int, zone: Zone) -> None:
    """Empty one CPU's pcp for ``zone`` (``drain_pages_zone``)."""
    pcp = zone.per_cpu_pageset[cpu]
    count = pcp.count
    while count:
        to_drain = min(count, pcp.batch << PCP_BATCH_SCALE_MAX)
        free_pcppages_bulk(zone, to_drain, pcp, 0)
        count = pcp.count


def drain_local_pages(m: Machine, zone: Zone | None) -> None:
    """Drain the current CPU's pcps, of one zone or of all (``drain_local_pages``)."""
    zones = [zone] if zone is not None else m.populated_zones()
    for z in zones:
        drain_pages_zone(m.cpu, z)


def drain_all_pages(m: Machine, zone: Zone | None) -> None:
    """Drain every CPU's pcps, of one zone or of all (``drain_all_pages``)."""
    zones = [zone] if zone is not None else m.populated_zones()
    for z in zones:
        for cpu in range(m.nr_cpus):
            drain_pages_zone(cpu, z)


# ================================================================================================
# watermarks
# ================================================================================================


def __zone_watermark_unusable_free(zone: Zone, order: int, alloc_flags: int) -> int:
    """Return free pages a request may not use (``__zone_watermark_unusable_free``)."""
    unusable_free = (1 << order) - 1
    if not alloc_flags & ALLOC_RESERVES:
        unusable_free += zone.nr_free_highatomic
    if not alloc_flags & ALLOC_CMA:
        unusable_free += zone.vm_stat[vs.NR_FREE_CMA_PAGES]
    return unusable_free


def __zone_watermark_ok(zone: Zone, order: int, mark: int, highest_zoneidx: int,
                        alloc_flags: int, free_pages: int) -> bool:
    """Return whether ``zone`` stays above ``mark`` after an allocation of ``order``.

    Models ``__zone_watermark_ok()`` (v6.16): reserves scale ``min`` down for __GFP_HIGH,
    non-blocking and OOM requests; a high-order request also needs a free block of a type it
    may use.
    """
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
        counts = zone.free_count[o]
        if counts[MIGRATE_UNMOVABLE] or counts[MIGRATE_MOVABLE] or counts[MIGRATE_RECLAIMABLE]:
            return True
        if alloc_flags & ALLOC_CMA and counts[MIGRATE_CMA]:
            return True
        if alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM) and counts[MIGRATE_HIGHATOMIC]:
            return True
    return False


def zone_watermark_ok(zone: Zone, order: int, mark: int, highest_zoneidx: int,
                      alloc_flags: int) -> bool:
    """Return ``__zone_watermark_ok`` against the zone's NR_FREE_PAGES (``zone_watermark_ok``)."""
    return __zone_watermark_ok(zone, order, mark, highest_zoneidx, alloc_flags,
                               zone.vm_stat[vs.NR_FREE_PAGES])


def zone_watermark_fast(zone: Zone, order: int, mark: int, highest_zoneidx: int,
                        alloc_flags: int) -> bool:
    """Return the allocator's watermark verdict with an order-0 shortcut (zone_watermark_fast)."""
    free_pages = zone.vm_stat[vs.NR_FREE_PAGES]
    if not order:
        # __zone_watermark_unusable_free(zone, 0, alloc_flags), inlined.
        reserved = 0 if alloc_flags & ALLOC_RESERVES else zone.nr_free_highatomic
        if not alloc_flags & ALLOC_CMA:
            reserved += zone.vm_stat[vs.NR_FREE_CMA_PAGES]
        usable_free = free_pages - min(free_pages, reserved)
        if usable_free > mark + zone.lowmem_reserve[highest_zoneidx]:
            return True
    if __zone_watermark_ok(zone, order, mark, highest_zoneidx, alloc_flags, free_pages):
        return True
    # __GFP_HIGH order-0 requests ignore the boost when checking the min watermark.
    if (not order and alloc_flags & ALLOC_MIN_RESERVE and zone.watermark_boost
            and alloc_flags & ALLOC_WMARK_MASK == WMARK_MIN):
        return __zone_watermark_ok(zone, order, zone._watermark[WMARK_MIN], highest_zoneidx,
                                   alloc_flags, free_pages)
    return False


def calculate_min_free_kbytes(m: Machine) -> int:
    """Return the boot default of ``min_free_kbytes`` (``calculate_min_free_kbytes``, v6.16).

    ``int_sqrt(lowmem_kbytes * 16)`` clamped to [128, 262144], where lowmem is what
    ``nr_free_buffer_pages()`` counts at boot: managed pages of zones up to ZONE_NORMAL.
    """
    lowmem_pages = sum(z.managed_pages for z in m.zones if z.idx <= ZoneType.ZONE_NORMAL)
    lowmem_kbytes = lowmem_pages * (1 << (PAGE_SHIFT - 10))
    return min(max(isqrt(lowmem_kbytes * 16), 128), 262144)


def set_recommended_min_free_kbytes(m: Machine, min_free_kbytes: int) -> int:
    """Return ``min_free_kbytes`` raised as khugepaged does when THP is enabled.

    Models mm/khugepaged.c ``set_recommended_min_free_kbytes()``: two free pageblocks per
    zone up to ZONE_NORMAL, plus MIGRATE_PCPTYPES² per zone for fallbacks, capped at 5 % of
    lowmem.
    """
    nr_zones = sum(1 for z in m.populated_zones() if z.idx <= ZoneType.ZONE_NORMAL)
    recommended = pageblock_nr_pages * nr_zones * 2
    recommended += pageblock_nr_pages * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES
    recommended = min(recommended, nr_free_buffer_pages(m) // 20) << (PAGE_SHIFT - 10)
    return max(recommended, min_free_kbytes)


def nr_free_buffer_pages(m: Machine) -> int:
    """Return managed pages above the high watermark in zones up to ZONE_NORMAL.

    Models ``nr_free_buffer_pages()`` (``nr_free_zone_pages(gfp_zone(GFP_USER))``).
    """
    total = 0
    for zone in m.zones:
        if zone.idx <= ZoneType.ZONE_NORMAL:
            high = zone.high_wmark_pages()
            if zone.managed_pages > high:
                total += zone.managed_pages - high
    return total


def __setup_per_zone_wmarks(m: Machine) -> None:
    """Set every zone's min/low/high/promo watermarks (``__setup_per_zone_wmarks``).

    With Android's ``vm.extra_free_kbytes`` (Rik van Riel's "add extra free kbytes
    tunable", never merged upstream, carried by Android's common kernels; read as posted to
    linux-mm, 2011 and 2013, and in a later Android kernel's version with
    ``watermark_scale_factor``), each zone's share of the extra pages is added to its low
    and high watermarks, min unchanged. Simplified: the share is taken of all managed pages;
    Android divides by ``vm_total_pages`` (later ``nr_free_zone_pages(GFP_HIGHUSER_MOVABLE)``),
    which leaves out the high watermarks, a fraction of a percent.
    """
    pages_min = m.min_free_kbytes >> (PAGE_SHIFT - 10)
    pages_low = m.extra_free_kbytes >> (PAGE_SHIFT - 10)
    lowmem_pages = sum(z.managed_pages for z in m.zones if z.idx != ZoneType.ZONE_MOVABLE
                       and z.idx != ZoneType.ZONE_DEVICE)
    total_pages = sum(z.managed_pages for z in m.zones)
    for zone in m.zones:
        low = pages_low * zone.managed_pages // total_pages if total_pages else 0
        tmp = pages_min * zone.managed_pages // lowmem_pages if lowmem_pages else 0
        if zone.idx == ZoneType.ZONE_MOVABLE:
            # __GFP_HIGH and PF_MEMALLOC rarely need movable pages: a small fixed minimum.
            zone._watermark[WMARK_MIN] = min(max(zone.managed_pages // 1024, SWAP_CLUSTER_MAX),
                                             128)
        else:
            zone._watermark[WMARK_MIN] = tmp
        tmp = max(tmp >> 2, zone.managed_pages * m.watermark_scale_factor // 10000)
        zone.watermark_boost = 0
        zone._watermark[WMARK_LOW] = zone._watermark[WMARK_MIN] + low + tmp
        zone._watermark[WMARK_HIGH] = zone._watermark[WMARK_LOW] + tmp
        zone._watermark[WMARK_PROMO] = zone._watermark[WMARK_HIGH] + tmp
    calculate_totalreserve_pages(m)


def setup_per_zone_lowmem_reserve(m: Machine) -> None:
    """Set ``lowmem_reserve[]`` (zoneinfo's "protection") from the ratios."""
    for pgdat in m.nodes:
        zones = pgdat.node_zones
        for i in range(MAX_NR_ZONES - 1):
            zone = zones[i]
            ratio = m.lowmem_reserve_ratio[i]
            clear = not ratio or not zone.managed_pages
            managed = 0
            for j in range(i + 1, MAX_NR_ZONES):
                managed += zones[j].managed_pages
                zone.lowmem_reserve[j] = 0 if clear else managed // ratio
    calculate_totalreserve_pages(m)


def calculate_totalreserve_pages(m: Machine) -> None:
    """Sum per node the pages kept back from userspace (``calculate_totalreserve_pages``)."""
    for pgdat in m.nodes:
        total = 0
        for zone in pgdat.node_zones:
            max_reserve = max(zone.lowmem_reserve, default=0)
            reserve = max_reserve + zone._watermark[WMARK_HIGH]
            total += min(reserve, zone.managed_pages)
        pgdat.totalreserve_pages = total


def zone_batchsize(zone: Zone) -> int:
    """Return the pcp batch for ``zone``: ~0.025 % of it, at most 256 KiB, as 2^n − 1 (v6.18)."""
    batch = min(zone.managed_pages >> 12, (256 << 10) >> PAGE_SHIFT)
    if batch <= 1:
        return 1
    value = batch + batch // 2
    return (1 << (value.bit_length() - 1)) - 1


def zone_highsize(m: Machine, zone: Zone, batch: int, cpu_online: int, high_fraction: int) -> int:
    """Return a pcp high limit: low watermark (or managed/fraction) split over the node's CPUs."""
    if not high_fraction:
        total_pages = zone.low_wmark_pages()
    else:
        total_pages = zone.managed_pages // high_fraction
    nr_split_cpus = len(m.node_cpus[zone.node]) + cpu_online
    if not nr_split_cpus:
        nr_split_cpus = m.nr_cpus
    high = total_pages // nr_split_cpus
    return max(high, batch << 2)


def zone_set_pageset_high_and_batch(m: Machine, zone: Zone, cpu_online: int = 0) -> None:
    """Set batch, high_min and high_max of every CPU's pcp for ``zone``."""
    new_batch = max(1, zone_batchsize(zone))
    if m.percpu_pagelist_high_fraction:
        new_high_min = zone_highsize(m, zone, new_batch, cpu_online,
                                     m.percpu_pagelist_high_fraction)
        new_high_max = new_high_min
    else:
        new_high_min = zone_highsize(m, zone, new_batch, cpu_online, 0)
        new_high_max = zone_highsize(m, zone, new_batch, cpu_online,
                                     MIN_PERCPU_PAGELIST_HIGH_FRACTION)
    for pcp in zone.per_cpu_pageset:
        pcp.batch = new_batch
        pcp.high_min = new_high_min
        pcp.high_max = new_high_max
    if not m.profile.pcp_high_order:
        for pcp in zone.per_cpu_pageset:
            pcp.high_max = pcp.high_min


def setup_per_zone_wmarks(m: Machine) -> None:
    """Recompute watermarks and pcp limits after a sysctl change (``setup_per_zone_wmarks``)."""
    __setup_per_zone_wmarks(m)
    for zone in m.populated_zones():
        zone_set_pageset_high_and_batch(m, zone)


# ================================================================================================
# HIGHATOMIC reserve
# ================================================================================================


def reserve_highatomic_pageblock(m: Machine, pfn: int, order: int, zone: Zone) -> None:
    """Reserve the pageblock of a high-order atomic allocation (``reserve_highatomic_pageblock``).

    The reserve is limited to about 1 % of the zone (v4.8: 1 % plus one pageblock).
    """
    if zone.managed_pages // 100 < pageblock_nr_pages:
        return
    # ALIGN(managed / 100, pageblock_nr_pages): roughly 1 % of the zone.
    max_managed = -(-(zone.managed_pages // 100) // pageblock_nr_pages) * pageblock_nr_pages
    if zone.nr_reserved_highatomic >= max_managed:
        return
    mt = get_pageblock_migratetype(m, pfn)
    if not migratetype_is_mergeable(mt):
        return
    if order < pageblock_order:
        if move_freepages_block(zone, pfn, mt, MIGRATE_HIGHATOMIC) == -1:
            return
        zone.nr_reserved_highatomic += pageblock_nr_pages
    else:
        change_pageblock_range(m, pfn, order, MIGRATE_HIGHATOMIC)
        zone.nr_reserved_highatomic += 1 << order


def unreserve_highatomic_pageblock(m: Machine, ac: AllocContext, force: bool) -> bool:
    """Give HIGHATOMIC pageblocks back to the requester's type before failing.

    Models ``unreserve_highatomic_pageblock()``: at most one pageblock per zone, and one
    pageblock stays reserved unless ``force``.
    """
    for zone in ac.zonelist:
        if not force and zone.nr_reserved_highatomic <= pageblock_nr_pages:
            continue
        for order in range(NR_PAGE_ORDERS):
            if not zone.free_count[order][MIGRATE_HIGHATOMIC]:
                continue
            pfn = zone.mem.list_first(zone.free_list(order, MIGRATE_HIGHATOMIC))
            size = max(pageblock_nr_pages, 1 << order)
            size = min(size, zone.nr_reserved_highatomic)
            zone.nr_reserved_highatomic -= size
            if order < pageblock_order:
                ret = move_freepages_block(zone, pfn, MIGRATE_HIGHATOMIC, ac.migratetype)
            else:
                move_to_free_list(zone, pfn, order, MIGRATE_HIGHATOMIC, ac.migratetype)
                change_pageblock_range(m, pfn, order, ac.migratetype)
                ret = 1
            if ret > 0:
                return True
    return False


# ================================================================================================
# allocation
# ================================================================================================


@dataclass
class AllocContext:
    """``struct alloc_context``: where an allocation may look, and for what type."""

    zonelist: list[Zone]
    migratetype: int
    highest_zoneidx: int
    preferred_nid: int


def prep_compound_page(zone: Zone, pfn: int, order: int) -> None:
    """Make ``pfn`` the head of a compound page of ``order`` (``prep_compound_page``).

    Head: PG_head. Tails: ``mapping = TAIL_MAPPING``, ``compound_head = head | 1``. The first
    tail keeps the folio order in its flags' low byte and, in the word that aliases
    ``mapping``, ``_entire_mapcount`` (-1: not PMD-mapped) — the union the review worried
    about (v4.8 had ``compound_mapcount`` there).
    """
    mem = zone.mem
    mem.flags[pfn] |= 1 << pf.PG_head
    nr = 1 << order
    tail_link = (pfn << 1) | 1
    mem.mapping[pfn + 1: pfn + nr] = pf.TAIL_MAPPING
    mem.lru_next[pfn + 1: pfn + nr] = tail_link
    mem.private[pfn + 1: pfn + nr] = 0
    mem.flags[pfn + 1] = (int(mem.flags[pfn + 1]) & ~0xFF) | order
    mem.mapping[pfn + 1] = -1  # _entire_mapcount
    mem.lru_prev[pfn + 1] = -2  # _large_mapcount = -1 (kept even: it aliases a link word)


def post_alloc_hook(zone: Zone, pfn: int, order: int, gfp: int, migratetype: int) -> None:
    """Give a just-allocated block its first reference (``post_alloc_hook``)."""
    mem = zone.mem
    mem.private_mv[pfn] = 0
    mem.refcount_mv[pfn] = 1
    if order == 0:
        mem.alloc_mt_mv[pfn] = migratetype
    else:
        mem.alloc_mt[pfn: pfn + (1 << order)] = migratetype


def prep_new_page(zone: Zone, pfn: int, order: int, gfp: int, migratetype: int) -> None:
    """Prepare an allocated block for its caller (``prep_new_page``)."""
    post_alloc_hook(zone, pfn, order, gfp, migratetype)
    if order and gfp & G.__GFP_COMP:
        prep_compound_page(zone, pfn, order)


def _count_alloc(zone: Zone, preferred_zone: Zone, order: int) -> None:
    """Count an allocation: ``__count_zid_vm_events(PGALLOC, ...)`` and ``zone_statistics()``."""
    m = zone.machine
    m.vm_events[vs.PGALLOC_DMA + zone.idx] += 1 << order
    # zone_statistics(): NUMA_HIT on the zone used, NUMA_MISS/FOREIGN when not preferred.
    stat = zone.vm_numa_event
    if zone.node == preferred_zone.node:
        stat[vs.NUMA_HIT] += 1
    else:
        stat[vs.NUMA_MISS] += 1
        preferred_zone.vm_numa_event[vs.NUMA_FOREIGN] += 1
    if zone.node == m.cpu_node:
        stat[vs.NUMA_LOCAL] += 1
    else:
        stat[vs.NUMA_OTHER] += 1


def __rmqueue_pcplist(zone: Zone, order: int, migratetype: int, alloc_flags: int,
                      pcp: PerCpuPages, pcp_list: deque[int]) -> int:
    """Take a block from a pcp list, refilling it from the buddy when empty."""
    if not pcp_list:
        batch = nr_pcp_alloc(pcp, zone, order)
        allocated = rmqueue_bulk(zone, order, batch, pcp_list, migratetype, alloc_flags)
        pcp.count += allocated << order
        if not pcp_list:
            return -1
    pfn = pcp_list.popleft()
    pcp.count -= 1 << order
    return pfn


def rmqueue_pcplist(preferred_zone: Zone, zone: Zone, order: int, migratetype: int,
                    alloc_flags: int) -> int:
    """Allocate through this CPU's pcp for ``zone`` (``rmqueue_pcplist``)."""
    pcp = zone.per_cpu_pageset[zone.machine.cpu]
    pcp.free_count >>= 1
    if order > PAGE_ALLOC_COSTLY_ORDER:
        pindex = NR_LOWORDER_PCP_LISTS + (migratetype == MIGRATE_MOVABLE)
    else:
        pindex = MIGRATE_PCPTYPES * order + migratetype
    pfn = __rmqueue_pcplist(zone, order, migratetype, alloc_flags, pcp, pcp.lists[pindex])
    if pfn >= 0:
        _count_alloc(zone, preferred_zone, order)
    return pfn


def rmqueue_buddy(preferred_zone: Zone, zone: Zone, order: int, alloc_flags: int,
                  migratetype: int) -> int:
    """Allocate straight from the buddy under zone->lock (``rmqueue_buddy``)."""
    pfn = -1
    if alloc_flags & ALLOC_HIGHATOMIC:
        pfn = __rmqueue_smallest(zone, order, MIGRATE_HIGHATOMIC)
    if pfn < 0:
        pfn = __rmqueue(zone, order, migratetype, alloc_flags, [RMQUEUE_NORMAL])
        # Failing now is worse than failing a high-order atomic request later.
        if pfn < 0 and alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK):
            pfn = __rmqueue_smallest(zone, order, MIGRATE_HIGHATOMIC)
        if pfn < 0:
            return -1
    _count_alloc(zone, preferred_zone, order)
    return pfn


def rmqueue(preferred_zone: Zone, zone: Zone, order: int, gfp: int, alloc_flags: int,
            migratetype: int) -> int:
    """Allocate a block of ``order`` from ``zone`` (``rmqueue``)."""
    pfn = -1
    if zone.machine.pcp_orders[order]:
        pfn = rmqueue_pcplist(preferred_zone, zone, order, migratetype, alloc_flags)
    if pfn < 0:
        pfn = rmqueue_buddy(preferred_zone, zone, order, alloc_flags, migratetype)
    if alloc_flags & ALLOC_KSWAPD and zone.flags & (1 << ZONE_BOOSTED_WATERMARK):
        zone.flags &= ~(1 << ZONE_BOOSTED_WATERMARK)
        zone.machine.wakeup_kswapd(zone, 0, 0, zone.idx)
    return pfn


def alloc_flags_nofragment(m: Machine, zone: Zone, gfp: int) -> int:
    """Return ALLOC_NOFRAGMENT (and ALLOC_KSWAPD) for a request preferring ``zone``.

    Models ``alloc_flags_nofragment()``: when the preferred zone is ZONE_NORMAL and a DMA32
    zone exists below it, fragmenting fallbacks are first avoided by trying other zones.
    """
    alloc_flags = ALLOC_KSWAPD if gfp & G.__GFP_KSWAPD_RECLAIM else 0
    if not m.profile.alloc_nofragment:
        return alloc_flags
    if zone.idx != ZoneType.ZONE_NORMAL:
        return alloc_flags
    lower = m.nodes[zone.node].node_zones[ZoneType.ZONE_DMA32]
    if len(m.nodes) > 1 and not lower.populated():
        return alloc_flags
    return alloc_flags | ALLOC_NOFRAGMENT


def get_page_from_freelist(m: Machine, gfp: int, order: int, alloc_flags: int,
                           ac: AllocContext) -> int:
    """Walk the zonelist for a zone that passes its watermark and allocate there.

    Models ``get_page_from_freelist()`` (v6.16): the high-watermark probe that sets
    ZONE_BELOW_HIGH, the request's own watermark, ``rmqueue``, ``prep_new_page``, the
    HIGHATOMIC reservation, and the retry without ALLOC_NOFRAGMENT. ``node_reclaim`` is off
    (node_reclaim_mode 0).
    """
    while True:
        no_fallback = alloc_flags & ALLOC_NOFRAGMENT
        preferred = ac.zonelist[0]
        for zone in ac.zonelist:
            if no_fallback and len(m.nodes) > 1 and zone.node != preferred.node:
                # Fragmenting the local node beats spilling to a remote one.
                break
            wmark_ok = False
            if not zone.flags & (1 << ZONE_BELOW_HIGH):
                if zone_watermark_fast(zone, order, zone.high_wmark_pages(), ac.highest_zoneidx,
                                       alloc_flags):
                    wmark_ok = True
                else:
                    zone.flags |= 1 << ZONE_BELOW_HIGH
            if not wmark_ok:
                mark = zone.wmark_pages(alloc_flags & ALLOC_WMARK_MASK)
                if not alloc_flags & ALLOC_NO_WATERMARKS and not zone_watermark_fast(
                    zone, order, mark, ac.highest_zoneidx, alloc_flags
                ):
                    continue
            pfn = rmqueue(preferred, zone, order, gfp, alloc_flags, ac.migratetype)
            if pfn >= 0:
                prep_new_page(zone, pfn, order, gfp, ac.migratetype)
                if alloc_flags & ALLOC_HIGHATOMIC:
                    reserve_highatomic_pageblock(m, pfn, order, zone)
                return pfn
        if no_fallback:
            alloc_flags &= ~ALLOC_NOFRAGMENT
            continue
        return -1


def gfp_to_alloc_flags(gfp: int, order: int) -> int:
    """Return the slow path's alloc_flags for ``gfp`` (``gfp_to_alloc_flags``)."""
    alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET
    if gfp & G.__GFP_HIGH:
        alloc_flags |= ALLOC_MIN_RESERVE
    alloc_flags |= gfp & G.__GFP_KSWAPD_RECLAIM  # ALLOC_KSWAPD has the same value
    if not gfp & G.__GFP_DIRECT_RECLAIM:
        # Non-blocking: may dip further into reserves; high-order __GFP_HIGH requests also
        # into the HIGHATOMIC reserve (v6.18: only with __GFP_HIGH).
        if not gfp & G.__GFP_NOMEMALLOC:
            alloc_flags |= ALLOC_NON_BLOCK
            if order > 0 and alloc_flags & ALLOC_MIN_RESERVE:
                alloc_flags |= ALLOC_HIGHATOMIC
        if alloc_flags & ALLOC_MIN_RESERVE:
            alloc_flags &= ~ALLOC_CPUSET
    if G.gfp_migratetype(gfp) == MIGRATE_MOVABLE:
        alloc_flags |= ALLOC_CMA
    return alloc_flags


def __alloc_pages_slowpath(m: Machine, gfp: int, order: int, ac: AllocContext) -> int:
    """The allocator's slow path, with the hooks where reclaim and compaction belong.

    Models the order of ``__alloc_pages_slowpath()`` (v6.16): wake kswapd, retry with the
    min watermark and reserves, direct compaction first for costly orders (and, since
    v4.12, non-movable ones: ``profile.compact_same_migratetype``), then direct reclaim
    (whose failure path unreserves HIGHATOMIC and drains all pcps before one more try), then
    compaction after reclaim. Reclaim and compaction are hooks on the machine
    (``m.direct_reclaim``, ``m.direct_compact``) filled in by :mod:`pagelab.mm.vmscan` and
    :mod:`pagelab.mm.compaction`. A task already reclaiming (PF_MEMALLOC) allocates from the
    reserves and never recurses. ``__GFP_NORETRY`` stops after one round of reclaim and
    compaction, costly orders without ``__GFP_RETRY_MAYFAIL`` too; other requests retry while
    ``should_reclaim_retry`` or, when reclaim made progress, :func:`should_compact_retry`
    says so. Named simplification: the OOM killer is not modelled (the request fails
    instead).
    """
    alloc_flags = gfp_to_alloc_flags(gfp, order)
    if alloc_flags & ALLOC_KSWAPD:
        for zone in ac.zonelist:
            m.wakeup_kswapd(zone, gfp, order, ac.highest_zoneidx)
    pfn = get_page_from_freelist(m, gfp, order, alloc_flags, ac)
    if pfn >= 0:
        return pfn
    can_direct_reclaim = bool(gfp & G.__GFP_DIRECT_RECLAIM)
    costly_order = order > PAGE_ALLOC_COSTLY_ORDER
    # __gfp_pfmemalloc_flags: a task that is reclaiming (PF_MEMALLOC) may use every reserve.
    pfmemalloc = (m.pf_memalloc or m.in_direct_compaction) and not gfp & G.__GFP_NOMEMALLOC
    # Non-movable orders 1..3 compact first only since v4.12 (compact_same_migratetype).
    compact_first = costly_order or (order > 0 and ac.migratetype != MIGRATE_MOVABLE
                                     and m.profile.compact_same_migratetype)
    compact_priority = CompactPriority.DEF_COMPACT_PRIORITY
    if can_direct_reclaim and compact_first and not pfmemalloc:
        pfn = m.direct_compact(gfp, order, alloc_flags, ac, "async")
        if pfn >= 0:
            return pfn
        if costly_order and gfp & G.__GFP_NORETRY:
            give_up = (("skipped", "deferred") if m.profile.compact_same_migratetype
                       else ("deferred",))  # v4.8 gave up only on a deferred zone
            if m.last_compact_result in give_up:
                return -1  # compaction cannot help and reclaim would not do much either
            compact_priority = CompactPriority.INIT_COMPACT_PRIORITY  # sync: too costly
    # retry: the kernel tries the freelists once more before giving up or reclaiming.
    if pfmemalloc:
        alloc_flags = (ALLOC_NO_WATERMARKS | (alloc_flags & (ALLOC_KSWAPD | ALLOC_CMA)))
    pfn = get_page_from_freelist(m, gfp, order, alloc_flags, ac)
    if pfn >= 0:
        return pfn
    if not can_direct_reclaim:
        return -1
    if m.pf_memalloc or m.in_direct_compaction:
        return -1  # avoid recursion of direct reclaim
    no_progress_loops = 0
    retry = CompactRetry(compact_priority)
    while True:
        pfn, progress = __alloc_pages_direct_reclaim(m, gfp, order, alloc_flags, ac)
        if pfn >= 0:
            return pfn
        pfn = m.direct_compact(gfp, order, alloc_flags, ac,
                               COMPACT_PRIORITY_NAMES[retry.priority])
        if pfn >= 0 or gfp & G.__GFP_NORETRY:
            return pfn
        if costly_order and not gfp & G.__GFP_RETRY_MAYFAIL:
            return -1
        if progress and not costly_order:
            no_progress_loops = 0
        else:
            no_progress_loops += 1
        if should_reclaim_retry(m, order, ac, alloc_flags, no_progress_loops):
            continue
        # Retrying for compaction needs reclaim's progress: compaction needs free pages.
        if progress and should_compact_retry(m, ac, order, alloc_flags,
                                             m.last_compact_result, retry):
            continue
        return -1  # the kernel would now consider the OOM killer (not modelled)


@dataclass
class CompactRetry:
    """The slow path's compaction retry state: ``compact_priority``, ``compaction_retries``."""

    priority: int
    retries: int = 0
    #: Stop-gap retries taken (the model's bound on v4.8's open-ended retrying).
    stopgap_retries: int = 0


def should_compact_retry(m: Machine, ac: AllocContext, order: int, alloc_flags: int,
                         compact_result: str, retry: CompactRetry) -> bool:
    """Retry reclaim and compaction for a non-costly order? (``should_compact_retry``).

    Mainline (v4.9+, ``profile.compact_retry_feedback``): never for order 0; after SKIPPED
    (no free pages for the copies) only if reclaim could make room
    (``compaction_zonelist_suitable``); after SUCCESS (a block was made but taken) up to
    ``MAX_COMPACT_RETRIES`` times (a quarter for costly orders); otherwise raise the priority
    one step, down to SYNC_FULL (SYNC_LIGHT for costly orders), resetting the retries.

    v4.8 and 4.7-stable carried a stop-gap instead: orders 1..3 retry as long as some zone of
    the zonelist keeps its order-0 min watermark, whatever compaction said. Named
    simplification: the kernel retries that way for as long as reclaim makes progress; the
    model stops after ``MAX_COMPACT_RETRIES`` such retries in one allocation, where a real
    kernel would go on thrashing (and then meet the OOM killer, which is not modelled).
    """
    if not order:
        return False
    if not m.profile.compact_retry_feedback:
        if order > PAGE_ALLOC_COSTLY_ORDER or retry.stopgap_retries >= MAX_COMPACT_RETRIES:
            return False
        retry.stopgap_retries += 1
        return any(zone_watermark_ok(zone, 0, zone.min_wmark_pages(), ac.highest_zoneidx,
                                     alloc_flags) for zone in ac.zonelist)
    if compact_result == "skipped":
        # compaction.c imports this module, so the import waits until it is needed.
        from pagelab.mm.compaction import compaction_zonelist_suitable

        return compaction_zonelist_suitable(m, ac, order, alloc_flags)
    if compact_result == "success":
        max_retries = MAX_COMPACT_RETRIES
        if order > PAGE_ALLOC_COSTLY_ORDER:
            max_retries //= 4
        retry.retries += 1
        if retry.retries <= max_retries:
            return True
    min_priority = (CompactPriority.MIN_COMPACT_COSTLY_PRIORITY
                    if order > PAGE_ALLOC_COSTLY_ORDER else CompactPriority.MIN_COMPACT_PRIORITY)
    if retry.priority > min_priority:
        retry.priority -= 1
        retry.retries = 0
        return True
    return False


def should_reclaim_retry(m: Machine, order: int, ac: AllocContext, alloc_flags: int,
                         no_progress_loops: int) -> bool:
    """Is another round of direct reclaim worth it? (``should_reclaim_retry``, v6.x).

    Gives up after ``MAX_RECLAIM_RETRIES`` rounds without progress; otherwise retries
    if some zone would pass its min watermark with all its reclaimable pages freed.
    """
    # vmscan.py imports this module, so the import waits until it is needed.
    from pagelab.mm.vmscan import zone_reclaimable_pages

    if no_progress_loops > MAX_RECLAIM_RETRIES:
        return False
    for zone in ac.zonelist:
        available = zone_reclaimable_pages(m, zone) + zone.vm_stat[vs.NR_FREE_PAGES]
        if __zone_watermark_ok(zone, order, zone.min_wmark_pages(), ac.highest_zoneidx,
                               alloc_flags, available):
            return True
    return False


def __alloc_pages_direct_reclaim(m: Machine, gfp: int, order: int, alloc_flags: int,
                                 ac: AllocContext) -> tuple[int, int]:
    """Reclaim, then retry; on failure unreserve HIGHATOMIC and drain all pcps once.

    Returns (pfn or -1, pages reclaimed).
    """
    progress = m.direct_reclaim(gfp, order, ac)
    drained = False
    while True:
        pfn = get_page_from_freelist(m, gfp, order, alloc_flags, ac)
        if pfn >= 0 or drained:
            return pfn, progress
        unreserve_highatomic_pageblock(m, ac, False)
        drain_all_pages(m, None)
        drained = True


def prepare_alloc_pages(m: Machine, gfp: int, order: int, preferred_nid: int) -> tuple[
        AllocContext, int]:
    """Build the alloc context and fast-path flags (``prepare_alloc_pages``)."""
    highest_zoneidx = G.gfp_zone(gfp)
    zonelist = m.zonelist(preferred_nid, highest_zoneidx)
    if gfp & G.__GFP_THISNODE:
        # ZONELIST_NOFALLBACK: the preferred node's zones only.
        zonelist = [z for z in zonelist if z.node == preferred_nid]
    if not zonelist:
        raise InvalidArgument(
            f"no populated zone at or below {ZoneType(highest_zoneidx).name} on node "
            f"{preferred_nid}; use a gfp mask whose zone exists on this machine"
        )
    migratetype = G.gfp_migratetype(gfp, m.page_group_by_mobility_disabled)
    ac = AllocContext(zonelist, migratetype, highest_zoneidx, preferred_nid)
    alloc_flags = ALLOC_WMARK_LOW
    if migratetype == MIGRATE_MOVABLE:
        alloc_flags |= ALLOC_CMA
    return ac, alloc_flags


def __alloc_pages(m: Machine, gfp: int, order: int, preferred_nid: int) -> int:
    """Allocate ``2**order`` pages: the fast path, then the slow path (``__alloc_pages``).

    Returns the first pfn, or -1 where the kernel returns NULL.
    """
    if order > MAX_PAGE_ORDER:
        raise InvalidArgument(f"order {order} is above MAX_PAGE_ORDER ({MAX_PAGE_ORDER})")
    # prepare_alloc_pages() and alloc_flags_nofragment() depend only on (gfp, node) and on
    # which zones are populated, which is fixed after boot: compute them once per pair.
    key = (gfp, preferred_nid)
    prepared = m.alloc_prep_cache.get(key)
    if prepared is None:
        ac, alloc_flags = prepare_alloc_pages(m, gfp, order, preferred_nid)
        alloc_flags |= alloc_flags_nofragment(m, ac.zonelist[0], gfp)
        prepared = m.alloc_prep_cache[key] = (ac, alloc_flags)
    ac, alloc_flags = prepared
    pfn = get_page_from_freelist(m, gfp, order, alloc_flags, ac)
    if pfn >= 0:
        return pfn
    return __alloc_pages_slowpath(m, gfp, order, ac)


# ================================================================================================
# freeing
# ================================================================================================


def _bad_page(m: Machine, pfn: int, reason: str) -> None:
    raise ModelBug(f"bad_page: BUG: Bad page state: {reason}: {m.mem.dump_page(pfn)}")


def page_bad_reason(m: Machine, pfn: int, flags_mask: int) -> str | None:
    """Return why a page may not be freed, or None (``page_bad_reason``).

    The kernel evaluates every reason and the last one that applies wins, so the checks run
    here from last to first.
    """
    mem = m.mem
    if mem.flags_mv[pfn] & flags_mask:
        if flags_mask == pf.PAGE_FLAGS_CHECK_AT_FREE:
            return "PAGE_FLAGS_CHECK_AT_FREE flag(s) set"
        return "PAGE_FLAGS_CHECK_AT_PREP flag(s) set"
    if mem.refcount_mv[pfn] != 0:
        return "nonzero _refcount"
    if mem.mapping_mv[pfn] != 0:
        return "non-NULL mapping"
    if mem.mapcount_mv[pfn] != pf.MAPCOUNT_NONE:
        return "nonzero mapcount"
    return None


_NOT_PREP = np.uint64(~pf.PAGE_FLAGS_CHECK_AT_PREP & (1 << 64) - 1)
_FAST_FREE_FLAGS = pf.PAGE_FLAGS_CHECK_AT_FREE | 1 << pf.PG_head


def _check_free_range(m: Machine, start: int, end: int) -> None:
    """Run ``page_bad_reason`` over the sub-pages of a non-compound block, vectorised."""
    mem = m.mem
    bad = (
        (mem.mapcount[start:end] != pf.MAPCOUNT_NONE)
        | (mem.mapping[start:end] != 0)
        | (mem.refcount[start:end] != 0)
        | ((mem.flags[start:end] & np.uint64(pf.PAGE_FLAGS_CHECK_AT_FREE)) != 0)
    )
    if bad.any():
        sub = start + int(np.argmax(bad))
        _bad_page(m, sub, page_bad_reason(m, sub, pf.PAGE_FLAGS_CHECK_AT_FREE) or "bad page")


def free_tail_page_prepare(m: Machine, head: int, pfn: int) -> None:
    """Check and clear one tail page of a compound page being freed."""
    mem = m.mem
    if pfn == head + 1:
        if mem.lru_prev_mv[pfn] != -2:
            _bad_page(m, pfn, "nonzero large_mapcount")
        if mem.mapping_mv[pfn] != -1:
            _bad_page(m, pfn, "nonzero entire_mapcount")
        mem.mapping_mv[pfn] = pf.TAIL_MAPPING
    if mem.mapping_mv[pfn] != pf.TAIL_MAPPING:
        _bad_page(m, pfn, "corrupted mapping in tail page")
    if mem.lru_next_mv[pfn] != (head << 1) | 1:
        _bad_page(m, pfn, "compound_head not consistent")
    mem.mapping_mv[pfn] = 0
    mem.lru_next_mv[pfn] = pfn << 1
    mem.lru_prev_mv[pfn] = pfn << 1


def free_pages_prepare(m: Machine, pfn: int, order: int) -> bool:
    """Check and reset a block about to be freed (``free_pages_prepare``, v6.16).

    Drops the mapping when it carries PAGE_MAPPING_* bits (anon, KSM, or the bare 0x2 that
    ``__ClearPageMovable`` leaves); resets a page type; then refuses a page with a non-NULL
    plain mapping, a mapcount, a reference or a flag from PAGE_FLAGS_CHECK_AT_FREE — the
    kernel's ``bad_page()``, which the model raises as :class:`ModelBug`. Finally clears
    PAGE_FLAGS_CHECK_AT_PREP, which includes PG_isolated.
    """
    mem = m.mem
    flags = mem.flags_mv[pfn]
    if not order and not flags & _FAST_FREE_FLAGS:
        # Order-0 fast path: the same checks as below, read once.
        if mem.mapping_mv[pfn] & pf.PAGE_MAPPING_FLAGS:
            mem.mapping_mv[pfn] = 0
        mapcount = mem.mapcount_mv[pfn]
        if mapcount != pf.MAPCOUNT_NONE and mapcount < pf.PAGE_TYPE_LIMIT:
            mem.mapcount_mv[pfn] = pf.MAPCOUNT_NONE
        elif mapcount != pf.MAPCOUNT_NONE or mem.mapping_mv[pfn] or mem.refcount_mv[pfn]:
            _bad_page(m, pfn, page_bad_reason(m, pfn, pf.PAGE_FLAGS_CHECK_AT_FREE) or "bad")
        mem.flags_mv[pfn] = flags & ~pf.PAGE_FLAGS_CHECK_AT_PREP
        mem.alloc_mt_mv[pfn] = -1
        return True
    compound = bool(flags >> pf.PG_head & 1)
    if compound:
        if pf.compound_order(mem, pfn) != order:
            _bad_page(m, pfn, f"compound order {pf.compound_order(mem, pfn)} != {order}")
        for tail in range(pfn + 1, pfn + (1 << order)):
            free_tail_page_prepare(m, pfn, tail)
            if mem.mapcount_mv[tail] != pf.MAPCOUNT_NONE:
                _bad_page(m, tail, "nonzero mapcount")
        mem.flags[pfn + 1: pfn + (1 << order)] &= np.uint64(~pf.PAGEFLAGS_MASK & (1 << 64) - 1)
        mem.flags_mv[pfn] = mem.flags_mv[pfn] & ~(1 << pf.PG_head)
    elif order:
        _check_free_range(m, pfn + 1, pfn + (1 << order))
        mem.flags[pfn + 1: pfn + (1 << order)] &= _NOT_PREP
    if mem.mapping_mv[pfn] & pf.PAGE_MAPPING_FLAGS:
        mem.mapping_mv[pfn] = 0
    if pf.page_has_type(mem, pfn):
        mem.mapcount_mv[pfn] = pf.MAPCOUNT_NONE
    reason = page_bad_reason(m, pfn, pf.PAGE_FLAGS_CHECK_AT_FREE)
    if reason is not None:
        _bad_page(m, pfn, reason)
    mem.flags_mv[pfn] = mem.flags_mv[pfn] & ~pf.PAGE_FLAGS_CHECK_AT_PREP
    if order == 0:
        mem.alloc_mt_mv[pfn] = -1
    else:
        mem.alloc_mt[pfn: pfn + (1 << order)] = -1
    return True


def free_frozen_page_commit(zone: Zone, pcp: PerCpuPages, pfn: int, migratetype: int,
                            order: int, fpi_flags: int) -> None:
    """Put a freed block on the pcp and trim the pcp when it is full (v6.16)."""
    m = zone.machine
    pcp.alloc_factor >>= 1
    m.vm_events[vs.PGFREE] += 1 << order
    if order > PAGE_ALLOC_COSTLY_ORDER:
        pindex = NR_LOWORDER_PCP_LISTS + (migratetype == MIGRATE_MOVABLE)
    else:
        pindex = MIGRATE_PCPTYPES * order + migratetype
    pcp.lists[pindex].appendleft(pfn)
    pcp.count += 1 << order
    batch = pcp.batch
    free_high = False
    if order and order <= PAGE_ALLOC_COSTLY_ORDER:
        free_high = (
            pcp.free_count >= batch + pcp.high_min // 2
            and bool(pcp.flags & PCPF_PREV_FREE_HIGH_ORDER)
            and (not pcp.flags & PCPF_FREE_HIGH_BATCH or pcp.count >= batch)
        )
        pcp.flags |= PCPF_PREV_FREE_HIGH_ORDER
    elif pcp.flags & PCPF_PREV_FREE_HIGH_ORDER:
        pcp.flags &= ~PCPF_PREV_FREE_HIGH_ORDER
    if pcp.free_count < batch << PCP_BATCH_SCALE_MAX:
        pcp.free_count += 1 << order
    high = nr_pcp_high(pcp, zone, batch, free_high)
    if pcp.count >= high:
        free_pcppages_bulk(zone, nr_pcp_free(pcp, batch, high, free_high), pcp, pindex)
        if zone.flags & (1 << ZONE_BELOW_HIGH) and zone_watermark_ok(
            zone, 0, zone.high_wmark_pages(), ZoneType.ZONE_MOVABLE, 0
        ):
            zone.flags &= ~(1 << ZONE_BELOW_HIGH)


def __free_pages_ok(m: Machine, pfn: int, order: int, fpi_flags: int) -> None:
    """Free a block straight to the buddy (``__free_pages_ok``)."""
    zone = m.page_zone(pfn)
    if free_pages_prepare(m, pfn, order):
        free_one_page(zone, pfn, order, fpi_flags)


def __free_frozen_pages(m: Machine, pfn: int, order: int, fpi_flags: int) -> None:
    """Free a block whose refcount reached zero (``__free_frozen_pages``, v6.15).

    Orders the pcp holds go to this CPU's pcp, except ISOLATE blocks, which go straight to
    the buddy; HIGHATOMIC and CMA blocks are cached on the MOVABLE list.
    """
    if not m.pcp_orders[order]:
        __free_pages_ok(m, pfn, order, fpi_flags)
        return
    if not free_pages_prepare(m, pfn, order):
        return
    zone = m.page_zone(pfn)
    bits = m.pageblock_flags_mv[pfn >> pageblock_order]
    migratetype = _ISOLATE if bits & PB_ISOLATE_BIT else bits & MIGRATETYPE_MASK
    if migratetype >= MIGRATE_PCPTYPES:
        if migratetype == MIGRATE_ISOLATE:
            free_one_page(zone, pfn, order, fpi_flags)
            return
        migratetype = MIGRATE_MOVABLE
    free_frozen_page_commit(zone, zone.per_cpu_pageset[m.cpu], pfn, migratetype, order,
                            fpi_flags)


def put_page_testzero(m: Machine, pfn: int) -> bool:
    """Drop a reference and return whether it was the last (``put_page_testzero``)."""
    refcount = m.mem.refcount_mv
    value = refcount[pfn] - 1
    if value < 0:
        raise ModelBug(
            f"VM_BUG_ON_PAGE(page_ref_count(page) == 0) at pfn {pfn:#x}: "
            f"{m.mem.dump_page(pfn)}"
        )
    refcount[pfn] = value
    return value == 0


def ___free_pages(m: Machine, pfn: int, order: int, fpi_flags: int) -> None:
    """Drop a reference on a block and free it, or its unreferenced tail halves.

    Models ``___free_pages()``: a non-compound high-order block whose first page is still
    referenced elsewhere gives back all but its first page.
    """
    mem = m.mem
    head = mem.flags_mv[pfn] >> pf.PG_head & 1
    refcount = mem.refcount_mv[pfn] - 1  # put_page_testzero(), inlined on this hot path
    if refcount < 0:
        put_page_testzero(m, pfn)  # raises the kernel's VM_BUG_ON_PAGE
    mem.refcount_mv[pfn] = refcount
    if not refcount:
        __free_frozen_pages(m, pfn, order, fpi_flags)
    elif not head:
        while order > 0:
            order -= 1
            __free_frozen_pages(m, pfn + (1 << order), order, fpi_flags)


def __free_pages(m: Machine, pfn: int, order: int) -> None:
    """Free a block allocated with ``alloc_pages`` (``__free_pages``)."""
    ___free_pages(m, pfn, order, FPI_NONE)


def free_pages(m: Machine, pfn: int, order: int) -> None:
    """Free a block by its first pfn (``free_pages``, which takes an address in the kernel)."""
    ___free_pages(m, pfn, order, FPI_NONE)


def alloc_pages_node(m: Machine, nid: int, gfp: int, order: int) -> int:
    """Allocate from node ``nid`` first (``alloc_pages_node``); -1 where the kernel has NULL."""
    return __alloc_pages(m, gfp, order, nid)


def __free_pages_core(m: Machine, pfn: int, order: int) -> None:
    """Hand a block of boot memory to the buddy, at the tail of its list (``__free_pages_core``).

    Clears PG_reserved, zeroes the refcounts, adds the pages to ``managed_pages`` and frees
    through ``__free_pages_ok`` with FPI_TO_TAIL (so PGFREE counts boot memory, as it does on
    a real machine).
    """
    zone = m.page_zone(pfn)
    nr = 1 << order
    mem = m.mem
    mem.flags[pfn: pfn + nr] &= np.uint64(~(1 << pf.PG_reserved) & (1 << 64) - 1)
    mem.refcount[pfn: pfn + nr] = 0
    zone.managed_pages += nr
    __free_pages_ok(m, pfn, order, FPI_TO_TAIL)


def memblock_free_pages(m: Machine, pfn: int, order: int) -> None:
    """Release one naturally aligned block of boot memory (``memblock_free_pages``)."""
    __free_pages_core(m, pfn, order)


__all__ = [
    name for name in dir()
    if not name.startswith("_") or (name.startswith("__") and not name.endswith("__"))
]


def free_frozen_pages(m: Machine, pfn: int, order: int) -> None:
    """Free a block whose refcount is already zero (``free_frozen_pages``)."""
    __free_frozen_pages(m, pfn, order, FPI_NONE)


def __isolate_free_page(m: Machine, pfn: int, order: int) -> int:
    """Take a free block off the buddy lists for compaction (``__isolate_free_page``, v6.10+).

    Unless the block is isolated (MIGRATE_ISOLATE), the zone must keep its min watermark
    (unboosted) plus ``2**order`` order-0 pages, counting CMA pages. The block leaves its free
    list with its pages accounted as no longer free, and is no longer PageBuddy. A block of at
    least half a pageblock converts every mergeable pageblock it touches to MOVABLE, moving
    any other free pages there with it (``move_freepages_block``). Returns the pages taken
    (``2**order``), or 0.
    """
    zone = m.page_zone(pfn)
    mt = get_pageblock_migratetype(m, pfn)
    if mt != MIGRATE_ISOLATE:
        # Obey watermarks as if the page was being allocated: a raised order-0 watermark
        # stands for the high-order check, since the high-order page is known to exist.
        watermark = zone._watermark[WMARK_MIN] + (1 << order)
        if not zone_watermark_ok(zone, 0, watermark, 0, ALLOC_CMA):
            return 0
    del_page_from_free_list(zone, pfn, order, mt)
    if order >= pageblock_order - 1:
        endpage = pfn + (1 << order) - 1
        page = pfn
        while page < endpage:
            block_mt = get_pageblock_migratetype(m, page)
            # Only change normal pageblocks (i.e., they can merge with others).
            if migratetype_is_mergeable(block_mt):
                move_freepages_block(zone, page, block_mt, MIGRATE_MOVABLE)
            page += pageblock_nr_pages
    return 1 << order


def decay_pcp_high(zone: Zone, pcp: PerCpuPages) -> bool:
    """Lower an idle pcp's ``high`` by an eighth and free what is above it (``decay_pcp_high``).

    Models v6.18: ``high = max3(count - (batch << PCP_BATCH_SCALE_MAX), high - high / 8,
    high_min)``; the pages above the new high go back to the buddy. Run by the vmstat worker
    every second (:func:`refresh_cpu_vm_stats`). Returns whether there is more to decay.
    """
    if pcp.high > pcp.high_min:
        pcp.high = max(pcp.count - (pcp.batch << PCP_BATCH_SCALE_MAX),
                       pcp.high - (pcp.high >> 3), pcp.high_min)
    to_drain = pcp.count - pcp.high
    if to_drain > 0:
        free_pcppages_bulk(zone, to_drain, pcp, 0)
    return pcp.high > pcp.high_min or to_drain > 0


def refresh_cpu_vm_stats(m: Machine, cpu: int) -> None:
    """The vmstat worker's pass over one CPU's zones (mm/vmstat.c ``refresh_cpu_vm_stats``).

    The model's counters are always exact, so of this worker only the pcp decay remains.
    """
    for zone in m.populated_zones():
        decay_pcp_high(zone, zone.per_cpu_pageset[cpu])
