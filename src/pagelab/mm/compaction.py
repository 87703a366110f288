"""Memory compaction: the two scanners, suitability, deferral, kcompactd and proactive mode.

Models ``mm/compaction.c`` of mainline Linux 6.18 (with its ``struct compact_control`` from
``mm/internal.h``), function by function under the kernel's names. Which source was read:

* the whole of ``mm/compaction.c`` at torvalds/linux commit 0003e2a4146 (≈v6.7: folios,
  ``struct movable_operations``, ``fast_isolate_freepages``, ``fast_find_migrateblock``,
  ``finish_pageblock``, ``mapping_unmovable``);
* and the later mainline changes, read as the merged patches and as v6.18.38 excerpts:
  per-order ``cc->freepages[NR_PAGE_ORDERS]`` with ``compaction_alloc`` splitting free chunks
  on demand and ``compaction_free`` taking a page back only when its refcount drops to zero
  (Zi Yan, "mm/compaction: add support for >0 order folio memory compaction" and "optimize >0
  order folio compaction with free page split", v6.10); ``skip_isolation_on_order()`` (v6.10);
  ``MAX_PAGE_ORDER``/``NR_PAGE_ORDERS`` loops (v6.8); ``compaction_suit_allocation_order()``
  (Kemeng Shi, v6.8) with ``ALLOC_CMA`` in compact_node and kcompactd (v6.13, "mm: compaction:
  use the proper flag to determine watermarks"); the watermark pushed into
  ``compaction_suitable()`` callers and the costly-order boost ``low - min`` (Johannes Weiner,
  "mm: compaction: push watermark into compaction_suitable() callers", v6.15);
  ``compact_node(pgdat, proactive)`` replacing ``proactive_compact_node`` (v6.10); the bound
  check on compound skips in ``isolate_freepages_block`` (v6.18.38 excerpt).

The seed's non-LRU movable protocol (v4.8 names: ``__PageMovable``, ``PageIsolated``,
``isolate_movable_page``) stands where 6.17+ says ``page_has_movable_ops`` and
``isolate_movable_ops_page``; the order of the checks is the same.

Conventions: pfns stand for ``struct page *`` (-1 for NULL); list heads come from
``Machine.alloc_list_head``; kernel outcomes are return values. Counters are the kernel's
``/proc/vmstat`` items, counted where the kernel counts them; tracepoints are emitted only when
``m.trace`` is set, with the kernel's ``TP_STRUCT__entry`` field names. When the machine has a
virtual clock (``m.clock`` and ``m.cost``), compaction charges it with the calibrated costs of
``pagelab.sched.clock.CostModel`` per pfn scanned, page isolated, batch and page migrated.

Profiles (``m.profile``):

* ``non_lru_movable=False`` (v3.8..v4.7): the generic non-LRU path is absent; balloon pages
  still move through the v3.8 special case, tested before the compound check as in the v4.7
  scanner, through ``m.balloon_isolate_hook`` (contract below). ``balloon_compaction=False``:
  the hook is never called.
* ``nr_isolated_v48``: v4.8 counted every isolated page, LRU or not, in NR_ISOLATED_ANON/FILE
  (``acct_isolated``); mainline counts LRU pages at isolation time only.
* v4.8's compaction, as kernel-reference §4 describes it and as the patches that changed it
  show (Vlastimil Babka's series merged in v4.12, read as posted to linux-mm, v3 of
  2017-03-07: "remove redundant watermark check in compact_finished()", "change
  migrate_async_suitable() to suitable_migration_source()", "restrict async compaction to
  pageblocks of same migratetype", "finish whole pageblock to reduce fragmentation"; "restrict
  fragindex to costly orders", v4.9; Mel Gorman's v5.1 scanner series):
  ``compact_same_migratetype=False``: every ASYNC compactor migrates from MOVABLE/CMA blocks
  only (and the allocator compacts before reclaim only for costly orders);
  ``compact_finish_pageblock=False``: :func:`__compact_finished` in v4.8's order (contention
  first, the order's low watermark before the free lists, no pageblock finished first), and
  async direct compaction skips the rest of a failed order-aligned block;
  ``fragindex_costly_only=False``: the fragmentation index gates every order;
  ``compaction_fast_search=False``: no free-list searches for source or target blocks, no
  async sampling stride, kcompactd ignores skip hints. The rest of compaction stays v6.18's
  in every profile (watermarks in ``compaction_suitable``, ``__reset_isolation_pfn``'s
  selective skip-hint reset, kcompactd's draining); those change how much is scanned rather
  than what is allowed to move where.

``m.balloon_isolate_hook`` contract (the hook is installed by
:mod:`pagelab.mm.balloon_compaction` when a balloon is created under a pre-4.8 profile):
``None`` without a balloon; otherwise ``hook(m, pfn, isolate_mode) -> bool`` standing for
v3.8..v4.7's ``balloon_page_movable(page) && balloon_page_isolate(page)``. Compaction calls
it only for pages that are not PageLRU (after the PageBuddy test, before the compound test),
only when the profile has ``non_lru_movable=False`` and ``balloon_compaction=True``. It
returns False, touching nothing, unless it isolated ``pfn``. On True the page is off the
balloon's list and carries the isolation reference, owned by compaction, which links it onto
``cc->migratepages`` and raises NR_ISOLATED for it exactly when the migration core will lower
it (``nr_isolated_v48``, or the page is not ``__PageMovable`` — the v4.7 balloon page is not,
so it is counted, as v4.7's ``acct_isolated`` counted every page); ``migrate.py`` moves and
puts back such pages through its v4.7 balloon special cases.

``m.direct_compact_hook`` (installed by :func:`compaction_init`): ``hook(gfp, order,
alloc_flags, ac, prio) -> pfn | -1``, where ``prio`` is ``"async"``, ``"sync_light"``,
``"sync_full"`` or a :class:`CompactPriority`; it runs :func:`__alloc_pages_direct_compact`
with ``m.in_direct_compaction`` set (PF_MEMALLOC) around :func:`try_to_compact_pages`.

Named simplifications (each keeps every counter's meaning):

* One CPU runs at a time: ``zone->lock`` and the LRU lock are never contended, so async
  compaction never records contention (``cc->contended`` stays False), there are no fatal
  signals, and ``need_resched()`` is false; lock sites are preemption points (``m.preempt``).
* ``compaction_capture`` is omitted (a page freed during direct compaction is not handed
  straight to the compactor; the allocation finds it on the free lists afterwards).
* ``too_many_isolated``: where the kernel throttles (``reclaim_throttle``) and re-checks, a
  sequential run can never make progress, so the model gives up with -EINTR as a task killed
  while throttled would, and records a warning.
* ``vm.defrag_mode`` is 0 (the default); hugetlb ``alloc_contig`` isolation and CMA's
  ``isolate_freepages_range``/``isolate_migratepages_range`` are not modelled.
* ``kswapd_is_running`` reads ``pgdat.kswapd_running`` (set by :mod:`pagelab.mm.vmscan`).
* kcompactd is not a thread: :func:`wakeup_kcompactd` records the wake-up and
  :func:`kcompactd_run` runs one wake-up's work when the machine calls it.
* Vectorised pre-filters (identical results): a migration-scanner pageblock with no page that
  could be isolated is accounted without the per-pfn walk; the free scanner (stride 1) jumps
  between PageBuddy heads found with numpy. Both are described where they are.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from pagelab.errors import InvalidArgument, ModelBug
from pagelab.mm import gfp as G
from pagelab.mm import migrate, swap
from pagelab.mm import page_alloc as pa
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import trylock_page, unlock_page
from pagelab.mm.internal import (
    ALLOC_CMA,
    ALLOC_WMARK_MASK,
    ALLOC_WMARK_MIN,
    COMPACT_PRIORITY_NAMES,
    SWAP_CLUSTER_MAX,
    CompactPriority,
)
from pagelab.mm.migrate import (
    ISOLATE_ASYNC_MIGRATE,
    ISOLATE_UNEVICTABLE,
    MigrateMode,
    MigrateReason,
)
from pagelab.mm.mmzone import (
    MAX_PAGE_ORDER,
    MIGRATE_CMA,
    MIGRATE_MOVABLE,
    NR_PAGE_ORDERS,
    PAGE_ALLOC_COSTLY_ORDER,
    PAGES_PER_SECTION,
    PB_SKIP_BIT,
    PFN_SECTION_SHIFT,
    PglistData,
    Zone,
    is_migrate_movable,
    pageblock_nr_pages,
    pageblock_order,
)
from pagelab.mm.rmap import AddressSpace
from pagelab.mm.vmscan import zone_reclaimable_pages

if TYPE_CHECKING:
    from pagelab.machine import Machine
    from pagelab.mm.page_alloc import AllocContext

__all__ = [
    "COMPACTION_HPAGE_ORDER",
    "COMPACT_CLUSTER_MAX",
    "COMPACT_MAX_DEFER_SHIFT",
    "HPAGE_FRAG_CHECK_INTERVAL_MSEC",
    "CompactControl",
    "CompactPriority",
    "CompactResult",
    "compact_memory",
    "compact_node",
    "compact_nodes",
    "compact_zone",
    "compact_zone_order",
    "compaction_defer_reset",
    "compaction_deferred",
    "compaction_init",
    "compaction_restarting",
    "compaction_suitable",
    "compaction_zonelist_suitable",
    "defer_compaction",
    "kcompactd_do_work",
    "kcompactd_node_suitable",
    "kcompactd_run",
    "proactive_compact_node",
    "reset_isolation_suitable",
    "sysctl_compaction_handler",
    "try_to_compact_pages",
    "wakeup_kcompactd",
]

# ================================================================================================
# constants
# ================================================================================================

#: ``COMPACT_CLUSTER_MAX`` = ``SWAP_CLUSTER_MAX``: pages isolated per round.
COMPACT_CLUSTER_MAX = SWAP_CLUSTER_MAX
#: "Do not skip compaction more than 64 times".
COMPACT_MAX_DEFER_SHIFT = 6
#: Fragmentation score check interval for proactive compaction (ms).
HPAGE_FRAG_CHECK_INTERVAL_MSEC = 500
#: ``COMPACTION_HPAGE_ORDER`` = ``HPAGE_PMD_ORDER`` with CONFIG_TRANSPARENT_HUGEPAGE.
COMPACTION_HPAGE_ORDER = vs.COMPACTION_HPAGE_ORDER

# isolate_migrate_t
ISOLATE_ABORT = 0
ISOLATE_NONE = 1
ISOLATE_SUCCESS = 2

EAGAIN = errno.EAGAIN
EINTR = errno.EINTR
ENOMEM = errno.ENOMEM
EINVAL = errno.EINVAL

_PB_MASK = pageblock_nr_pages - 1
_LRU = 1 << pf.PG_lru
_HEAD = 1 << pf.PG_head
_ISOLATED = 1 << pf.PG_isolated
_UNEVICTABLE = 1 << pf.PG_unevictable
_WRITEBACK = 1 << pf.PG_writeback
_DIRTY = 1 << pf.PG_dirty
_PGTY_BUDDY = pf.PGTY_buddy
_BUDDY_LO = pf.PAGE_TYPE_BUDDY
_BUDDY_HI = pf.PAGE_TYPE_BUDDY + (1 << 24)
_LRU64 = np.uint64(_LRU)
_HEAD64 = np.uint64(_HEAD)

#: Use the exact vectorised shortcuts of the two scanners (tests turn them off to prove that
#: the per-pfn walks give the same results).
USE_SHORTCUTS = True


class CompactResult(IntEnum):
    """``enum compact_result`` (include/linux/compaction.h, mainline).

    The numeric order matters: ``try_to_compact_pages`` combines zones with ``max()``.
    """

    COMPACT_NOT_SUITABLE_ZONE = 0
    COMPACT_SKIPPED = 1
    COMPACT_DEFERRED = 2
    COMPACT_NO_SUITABLE_PAGE = 3
    COMPACT_CONTINUE = 4
    COMPACT_COMPLETE = 5
    COMPACT_PARTIAL_SKIPPED = 6
    COMPACT_CONTENDED = 7
    COMPACT_SUCCESS = 8

    @property
    def trace_name(self) -> str:
        """Return the ``COMPACTION_STATUS`` string tracepoints print for this result."""
        return _COMPACTION_STATUS[self]


#: ``COMPACTION_STATUS`` (include/trace/events/mmflags.h).
_COMPACTION_STATUS = {
    CompactResult.COMPACT_SKIPPED: "skipped",
    CompactResult.COMPACT_DEFERRED: "deferred",
    CompactResult.COMPACT_CONTINUE: "continue",
    CompactResult.COMPACT_SUCCESS: "success",
    CompactResult.COMPACT_PARTIAL_SKIPPED: "partial_skipped",
    CompactResult.COMPACT_COMPLETE: "complete",
    CompactResult.COMPACT_NO_SUITABLE_PAGE: "no_suitable_page",
    CompactResult.COMPACT_NOT_SUITABLE_ZONE: "not_suitable_zone",
    CompactResult.COMPACT_CONTENDED: "contended",
}

_NOT_SUITABLE_ZONE = CompactResult.COMPACT_NOT_SUITABLE_ZONE
_SKIPPED = CompactResult.COMPACT_SKIPPED
_DEFERRED = CompactResult.COMPACT_DEFERRED
_NO_SUITABLE_PAGE = CompactResult.COMPACT_NO_SUITABLE_PAGE
_CONTINUE = CompactResult.COMPACT_CONTINUE
_COMPLETE = CompactResult.COMPACT_COMPLETE
_PARTIAL_SKIPPED = CompactResult.COMPACT_PARTIAL_SKIPPED
_CONTENDED = CompactResult.COMPACT_CONTENDED
_SUCCESS = CompactResult.COMPACT_SUCCESS


#: The compaction hook's priority names (``"async"`` ...), as priorities.
_PRIO_NAMES = {name: CompactPriority(prio) for prio, name in enumerate(COMPACT_PRIORITY_NAMES)}


def compaction_made_progress(result: int) -> bool:
    """Model of include/linux/compaction.h:compaction_made_progress() (v6.x)."""
    return result == _SUCCESS


def compaction_failed(result: int) -> bool:
    """Model of include/linux/compaction.h:compaction_failed() (v6.x): scanners met."""
    return result == _COMPLETE


def compaction_needs_reclaim(result: int) -> bool:
    """Model of include/linux/compaction.h:compaction_needs_reclaim() (v6.x)."""
    return result == _SKIPPED


def compaction_withdrawn(result: int) -> bool:
    """Model of include/linux/compaction.h:compaction_withdrawn() (v6.x)."""
    return result in (_DEFERRED, _CONTENDED, _PARTIAL_SKIPPED)


# ================================================================================================
# struct compact_control
# ================================================================================================


@dataclass(slots=True, kw_only=True)
class CompactControl:
    """``struct compact_control`` (mm/internal.h, v6.18), one compaction run's state.

    ``freepages`` holds ``NR_PAGE_ORDERS`` list heads (free chunks isolated by the free
    scanner, by order) and ``migratepages`` one (pages isolated for migration); both are
    allocated by :func:`compact_zone` for the run and are -1 outside it. ``zone`` is
    required at construction (callers that walk zones reassign it, as the kernel reuses one
    ``cc`` across zones).
    """

    zone: Zone
    freepages: list[int] = field(default_factory=lambda: [-1] * NR_PAGE_ORDERS)
    migratepages: int = -1
    nr_freepages: int = 0
    nr_migratepages: int = 0
    free_pfn: int = 0
    migrate_pfn: int = 0
    fast_start_pfn: int = 0
    total_migrate_scanned: int = 0
    total_free_scanned: int = 0
    fast_search_fail: int = 0
    search_order: int = 0
    gfp_mask: int = 0
    order: int = 0
    migratetype: int = 0
    alloc_flags: int = 0
    highest_zoneidx: int = 0
    mode: MigrateMode = MigrateMode.MIGRATE_ASYNC
    ignore_skip_hint: bool = False
    no_set_skip_hint: bool = False
    ignore_block_suitable: bool = False
    direct_compaction: bool = False
    proactive_compaction: bool = False
    whole_zone: bool = False
    contended: bool = False
    finish_pageblock: bool = False
    alloc_contig: bool = False

    @property
    def rescan(self) -> bool:
        """``cc->rescan``: the name of ``finish_pageblock`` before v6.2."""
        return self.finish_pageblock

    @rescan.setter
    def rescan(self, value: bool) -> None:
        self.finish_pageblock = value


# ================================================================================================
# helpers: counters, tracepoints, virtual time, pfn arithmetic
# ================================================================================================


def count_compact_event(m: Machine, item: int) -> None:
    """Model of mm/compaction.c:count_compact_event() (v6.x)."""
    m.vm_events[item] += 1


def count_compact_events(m: Machine, item: int, delta: int) -> None:
    """Model of mm/compaction.c:count_compact_events() (v6.x)."""
    m.vm_events[item] += delta


def _charge(m: Machine, ns: float) -> None:
    """Advance the machine's virtual clock by ``ns`` when it has one (no kernel counterpart).

    Periodic kernel work that falls due meanwhile (the vmstat worker's pcp decay) runs too.
    """
    clock = getattr(m, "clock", None)
    if clock is not None and ns > 0:
        clock.advance(round(ns))
        m.timer_tick()


def _cost(m: Machine) -> Any:
    return getattr(m, "cost", None) if getattr(m, "clock", None) is not None else None


def _trace(m: Machine, event: str, **fields: Any) -> None:
    trace = m.trace
    if trace is not None:
        trace.emit(event, **fields)


def block_start_pfn(pfn: int, order: int) -> int:
    """Model of mm/compaction.c:block_start_pfn() (v6.x): ``round_down(pfn, 1 << order)``."""
    return pfn & ~((1 << order) - 1)


def block_end_pfn(pfn: int, order: int) -> int:
    """Model of mm/compaction.c:block_end_pfn() (v6.x): ``ALIGN(pfn + 1, 1 << order)``."""
    size = 1 << order
    return (pfn + size) & ~(size - 1)


def pageblock_start_pfn(pfn: int) -> int:
    """Model of include/linux/pageblock-flags.h:pageblock_start_pfn() (v6.x)."""
    return pfn & ~_PB_MASK


def pageblock_end_pfn(pfn: int) -> int:
    """Model of include/linux/pageblock-flags.h:pageblock_end_pfn() (v6.x)."""
    return (pfn + pageblock_nr_pages) & ~_PB_MASK


def pageblock_aligned(pfn: int) -> bool:
    """Model of include/linux/pageblock-flags.h:pageblock_aligned() (v6.x)."""
    return not pfn & _PB_MASK


def compact_gap(order: int) -> int:
    """Model of mm/internal.h:compact_gap() (v6.x): room for the migration targets."""
    return 2 << order


def is_via_compact_memory(order: int) -> bool:
    """Model of mm/compaction.c:is_via_compact_memory() (v6.x): order -1 compacts everything."""
    return order == -1


def fatal_signal_pending(m: Machine) -> bool:
    """Model of include/linux/sched/signal.h:fatal_signal_pending(): never, in the model."""
    return False


def _zone_bits(zone: Zone) -> int:
    return (zone.idx << pf.NODES_WIDTH) | zone.node


def pageblock_pfn_to_page(m: Machine, start_pfn: int, end_pfn: int, zone: Zone) -> int:
    """Model of mm/internal.h:pageblock_pfn_to_page() (v6.x): the block's first pfn, or -1.

    A contiguous zone needs no checks; otherwise both ends must have struct pages in this
    zone (``__pageblock_pfn_to_page``).
    """
    if zone.contiguous:
        return start_pfn
    end_pfn -= 1
    if not m.pfn_valid(end_pfn) or not m.pfn_valid(start_pfn):
        return -1
    flags = m.mem.flags_mv
    bits = _zone_bits(zone)
    if flags[start_pfn] >> pf.NODES_PGSHIFT != bits or flags[end_pfn] >> pf.NODES_PGSHIFT != bits:
        return -1
    return start_pfn


def skip_offline_sections(m: Machine, start_pfn: int) -> int:
    """Model of mm/compaction.c:skip_offline_sections() (v6.x, SPARSEMEM).

    The first pfn of the next online section when ``start_pfn`` is in an offline one, else 0.
    """
    nr = start_pfn >> PFN_SECTION_SHIFT
    valid = m.section_valid
    if valid[nr]:
        return 0
    nr += 1
    while nr < len(valid):
        if valid[nr]:
            return nr << PFN_SECTION_SHIFT
        nr += 1
    return 0


def skip_offline_sections_reverse(m: Machine, start_pfn: int) -> int:
    """Model of mm/compaction.c:skip_offline_sections_reverse() (v6.x, SPARSEMEM).

    The end pfn of the previous online section when ``start_pfn`` is in an offline one, else 0.
    """
    nr = start_pfn >> PFN_SECTION_SHIFT
    valid = m.section_valid
    if not nr or valid[nr]:
        return 0
    while nr > 0:
        nr -= 1
        if valid[nr]:
            return (nr << PFN_SECTION_SHIFT) + PAGES_PER_SECTION
    return 0


def kswapd_is_running(pgdat: PglistData) -> bool:
    """Model of mm/compaction.c:kswapd_is_running() (v6.x).

    Reads ``pgdat.kswapd_running``, which a reclaim layer sets while kswapd works; False
    while the model has no kswapd thread.
    """
    return bool(getattr(pgdat, "kswapd_running", False))


# ================================================================================================
# per-zone and per-node state
# ================================================================================================


def compaction_init(m: Machine) -> None:
    """Set up compaction for a freshly booted machine (no single kernel counterpart).

    What the kernel does at boot and in ``kcompactd()``'s prologue: each node's
    ``kcompactd_max_order = 0`` and ``kcompactd_highest_zoneidx = nr_zones - 1``
    (``pgdat->nr_zones`` is one past the highest populated zone); zone compaction state is
    zero, as in the kernel's zero-filled ``struct zone``. Also installs
    ``m.direct_compact_hook`` (when no other layer has) so that the allocator's slow path
    compacts.
    """
    for pgdat in m.nodes:
        populated = [z.idx for z in pgdat.node_zones if z.present_pages]
        pgdat.nr_zones = (max(populated) + 1) if populated else 0
        pgdat.kcompactd_max_order = 0
        pgdat.kcompactd_highest_zoneidx = max(pgdat.nr_zones - 1, 0)
    if m.direct_compact_hook is None:
        m.direct_compact_hook = functools.partial(direct_compact_hook, m)


# ================================================================================================
# deferral (mm/compaction.c)
# ================================================================================================


def _trace_defer(zone: Zone, event: str, order: int) -> None:
    trace = zone.machine.trace
    if trace is not None:
        trace.emit(event, nid=zone.node, idx=zone.idx, order=order,
                   considered=zone.compact_considered, defer_shift=zone.compact_defer_shift,
                   order_failed=zone.compact_order_failed)


def defer_compaction(zone: Zone, order: int) -> None:
    """Model of mm/compaction.c:defer_compaction() (v6.x).

    Compaction failed for ``order``: skip the next ``1 << compact_defer_shift`` attempts (at
    most 64) for this and higher orders.
    """
    zone.compact_considered = 0
    zone.compact_defer_shift += 1
    if order < zone.compact_order_failed:
        zone.compact_order_failed = order
    if zone.compact_defer_shift > COMPACT_MAX_DEFER_SHIFT:
        zone.compact_defer_shift = COMPACT_MAX_DEFER_SHIFT
    _trace_defer(zone, "mm_compaction_defer_compaction", order)


def compaction_deferred(zone: Zone, order: int) -> bool:
    """Model of mm/compaction.c:compaction_deferred() (v6.x): skip compaction this time?"""
    defer_limit = 1 << zone.compact_defer_shift
    if order < zone.compact_order_failed:
        return False
    zone.compact_considered += 1
    if zone.compact_considered >= defer_limit:
        zone.compact_considered = defer_limit
        return False
    _trace_defer(zone, "mm_compaction_deferred", order)
    return True


def compaction_defer_reset(zone: Zone, order: int, alloc_success: bool) -> None:
    """Model of mm/compaction.c:compaction_defer_reset() (v6.x).

    Called when an allocation of ``order`` succeeded (``alloc_success``) or is expected to.
    """
    if alloc_success:
        zone.compact_considered = 0
        zone.compact_defer_shift = 0
    if order >= zone.compact_order_failed:
        zone.compact_order_failed = order + 1
    _trace_defer(zone, "mm_compaction_defer_reset", order)


def compaction_restarting(zone: Zone, order: int) -> bool:
    """Model of mm/compaction.c:compaction_restarting() (v6.x): retry after many failures?"""
    if order < zone.compact_order_failed:
        return False
    return (zone.compact_defer_shift == COMPACT_MAX_DEFER_SHIFT
            and zone.compact_considered >= 1 << zone.compact_defer_shift)


# ================================================================================================
# skip hints and cached scanner positions
# ================================================================================================


def isolation_suitable(cc: CompactControl, pfn: int) -> bool:
    """Model of mm/compaction.c:isolation_suitable() (v6.x): scan this pageblock?"""
    if cc.ignore_skip_hint:
        return True
    return not pa.get_pageblock_skip(cc.zone.machine, pfn)


def reset_cached_positions(zone: Zone) -> None:
    """Model of mm/compaction.c:reset_cached_positions() (v6.x): scanners back to the ends."""
    zone.compact_cached_migrate_pfn[0] = zone.zone_start_pfn
    zone.compact_cached_migrate_pfn[1] = zone.zone_start_pfn
    zone.compact_cached_free_pfn = pageblock_start_pfn(zone.zone_end_pfn - 1)


def pageblock_skip_persistent(m: Machine, pfn: int) -> bool:
    """Model of mm/compaction.c:pageblock_skip_persistent() (v6.x).

    A compound page of at least pageblock order keeps its block useless to compaction.
    """
    mem = m.mem
    if not pf.PageCompound(mem, pfn):
        return False
    head = pf.compound_head(mem, pfn)
    return pf.compound_order(mem, head) >= pageblock_order


def __reset_isolation_pfn(zone: Zone, pfn: int, check_source: bool, check_target: bool) -> bool:
    """Model of mm/compaction.c:__reset_isolation_pfn() (v6.x).

    Clears the skip hint of ``pfn``'s pageblock if a sample of it (every 8th page) shows an
    LRU page (a migration source) or a free page (a target). The sample is read with numpy:
    the verdict is "any sampled page qualifies", which does not depend on the order in which
    the kernel's loop looks at them.
    """
    m = zone.machine
    mem = m.mem
    if not m.pfn_valid(pfn):  # pfn_to_online_page()
        return False
    if mem.flags_mv[pfn] >> pf.NODES_PGSHIFT != _zone_bits(zone):
        return False
    if pageblock_skip_persistent(m, pfn):
        return False
    if check_source and check_target and not pa.get_pageblock_skip(m, pfn):
        return True
    if (not check_source and check_target
            and pa.get_pageblock_migratetype(m, pfn) != MIGRATE_MOVABLE):
        return False
    block_pfn = max(pageblock_start_pfn(pfn), zone.zone_start_pfn)
    if m.pfn_valid(block_pfn):
        pfn = block_pfn
    block_pfn = min(pageblock_end_pfn(pfn) - 1, zone.zone_end_pfn - 1)
    if not m.pfn_valid(block_pfn):
        return False
    samples = np.arange(pfn, block_pfn + 1, 1 << PAGE_ALLOC_COSTLY_ORDER)
    hit = np.zeros(len(samples), dtype=np.bool_)
    if check_source:
        links = mem.lru_next[samples]
        heads = np.where(links & 1, links >> 1, samples)
        hit |= (mem.flags[heads] & _LRU64) != 0
    if check_target:
        hit |= ((mem.mapcount[samples] >> 24) & 0xFF) == _PGTY_BUDDY
    if hit.any():
        pa.clear_pageblock_skip(m, pfn)
        return True
    return False


def __reset_isolation_suitable(zone: Zone) -> None:
    """Model of mm/compaction.c:__reset_isolation_suitable() (v6.x).

    Only when ``compact_blockskip_flush`` is set: walk the zone from both ends, clearing skip
    hints of blocks that look like sources (from the bottom) or targets (from the top), and
    restart the scanners at the first such blocks.
    """
    migrate_pfn = zone.zone_start_pfn
    free_pfn = zone.zone_end_pfn - 1
    reset_migrate = free_pfn
    reset_free = migrate_pfn
    source_set = False
    free_set = False
    if not zone.compact_blockskip_flush:
        return
    zone.compact_blockskip_flush = False
    while migrate_pfn < free_pfn:
        if __reset_isolation_pfn(zone, migrate_pfn, True, source_set) and (
                migrate_pfn < reset_migrate):
            source_set = True
            reset_migrate = migrate_pfn
            zone.compact_init_migrate_pfn = reset_migrate
            zone.compact_cached_migrate_pfn[0] = reset_migrate
            zone.compact_cached_migrate_pfn[1] = reset_migrate
        if __reset_isolation_pfn(zone, free_pfn, free_set, True) and free_pfn > reset_free:
            free_set = True
            reset_free = free_pfn
            zone.compact_init_free_pfn = reset_free
            zone.compact_cached_free_pfn = reset_free
        migrate_pfn += pageblock_nr_pages
        free_pfn -= pageblock_nr_pages
    # Leave no distance if no suitable block was reset.
    if reset_migrate >= reset_free:
        zone.compact_cached_migrate_pfn[0] = migrate_pfn
        zone.compact_cached_migrate_pfn[1] = migrate_pfn
        zone.compact_cached_free_pfn = free_pfn


def reset_isolation_suitable(m: Machine, pgdat: PglistData) -> None:
    """Model of mm/compaction.c:reset_isolation_suitable() (v6.x).

    kswapd calls it before sleeping: flush the skip hints of zones where a direct compactor's
    scanners met since the last flush.
    """
    for zone in pgdat.node_zones:
        if not zone.present_pages:
            continue
        if zone.compact_blockskip_flush:
            __reset_isolation_suitable(zone)


def test_and_set_skip(cc: CompactControl, pfn: int) -> bool:
    """Model of mm/compaction.c:test_and_set_skip() (v6.x): was the hint already set?"""
    if cc.ignore_skip_hint:
        return False
    m = cc.zone.machine
    skip = pa.get_pageblock_skip(m, pfn)
    if not skip and not cc.no_set_skip_hint:
        pa.set_pageblock_skip(m, pfn)
    return skip


def update_cached_migrate(cc: CompactControl, pfn: int) -> None:
    """Model of mm/compaction.c:update_cached_migrate() (v6.x).

    Raise where async (and, for sync modes, sync) compaction restarts to the end of ``pfn``'s
    pageblock.
    """
    zone = cc.zone
    if cc.no_set_skip_hint:
        return
    pfn = pageblock_end_pfn(pfn)
    cached = zone.compact_cached_migrate_pfn
    if pfn > cached[0]:
        cached[0] = pfn
    if cc.mode != MigrateMode.MIGRATE_ASYNC and pfn > cached[1]:
        cached[1] = pfn


def update_pageblock_skip(cc: CompactControl, page: int, pfn: int) -> None:
    """Model of mm/compaction.c:update_pageblock_skip() (v6.x), free scanner side.

    Mark the fully scanned block skipped and lower the cached free scanner position.
    """
    zone = cc.zone
    if cc.no_set_skip_hint:
        return
    pa.set_pageblock_skip(zone.machine, page)
    if pfn < zone.compact_cached_free_pfn:
        zone.compact_cached_free_pfn = pfn


# ================================================================================================
# locks (sequential model: never contended)
# ================================================================================================


def compact_lock_irqsave(m: Machine, lock: str, pfn: int, cc: CompactControl) -> bool:
    """Model of mm/compaction.c:compact_lock_irqsave() (v6.x).

    Async compaction trylocks and records contention before spinning; one CPU runs at a time
    in the model, so the lock is always free. Returns True, as the kernel does.
    """
    if m.preempt is not None:
        m.preempt(lock, pfn)
    return True


def compact_unlock_should_abort(m: Machine, cc: CompactControl) -> bool:
    """Model of mm/compaction.c:compact_unlock_should_abort() (v6.x).

    Drops the lock and aborts on a fatal signal (never pending in the model).
    """
    if fatal_signal_pending(m):
        cc.contended = True
        return True
    return False


# ================================================================================================
# the free scanner
# ================================================================================================


def isolate_freepages_block(cc: CompactControl, start_pfn: int, end_pfn: int,
                            freelist: list[int], stride: int, strict: bool) -> tuple[int, int]:
    """Model of mm/compaction.c:isolate_freepages_block() (v6.18).

    Isolates free buddy chunks from ``[start_pfn, end_pfn)`` onto ``freelist[order]`` (whole
    chunks, ``page_private`` = order), stopping once ``nr_freepages`` covers
    ``nr_migratepages`` unless ``strict``. Returns ``(total_isolated, pfn reached)`` — the
    kernel returns the first and writes the second through ``*start_pfn``. Counts
    COMPACTISOLATED; traces ``mm_compaction_isolate_freepages``.

    Exact shortcut for ``stride == 1``: the scan visits every pfn until a PageBuddy head, and a
    compound page is skipped with ``nr_scanned`` raised by the pages it jumps, so the pfns
    between two buddy heads always count one each. The model finds the heads of the block
    with numpy (isolating a chunk creates no new heads) and walks only those.
    """
    zone = cc.zone
    m = zone.machine
    mem = m.mem
    nr_scanned = 0
    total_isolated = 0
    blockpfn = start_pfn
    private = mem.private_mv
    held = m.held_chunks
    list_add_tail = mem.list_add_tail
    locked = False
    if strict:
        stride = 1
    if stride == 1 and not strict and blockpfn < end_pfn and USE_SHORTCUTS:
        seg = mem.mapcount[blockpfn:end_pfn]
        heads = np.flatnonzero((seg >= _BUDDY_LO) & (seg < _BUDDY_HI))
        pos = blockpfn
        done = False
        for off in heads.tolist():
            pfn = blockpfn + off
            if pfn < pos:
                continue
            nr_scanned += pfn - pos + 1
            if not locked:
                locked = compact_lock_irqsave(m, "zone_lock", pfn, cc)
            order = private[pfn]
            isolated = pa.__isolate_free_page(m, pfn, order)
            if not isolated:
                pos = pfn
                done = True
                break
            private[pfn] = order
            held[pfn] = order
            nr_scanned += isolated - 1
            total_isolated += isolated
            cc.nr_freepages += isolated
            list_add_tail(pfn, freelist[order])
            pos = pfn + isolated
            if cc.nr_migratepages <= cc.nr_freepages:
                done = True
                break
        if not done and pos < end_pfn:
            nr_scanned += end_pfn - pos
            pos = end_pfn
        blockpfn = pos
    else:
        flags = mem.flags_mv
        lru_next = mem.lru_next_mv
        mapcount = mem.mapcount_mv
        while blockpfn < end_pfn:
            if not blockpfn % COMPACT_CLUSTER_MAX and compact_unlock_should_abort(m, cc):
                break
            nr_scanned += 1
            if flags[blockpfn] & _HEAD or lru_next[blockpfn] & 1:
                order = flags[blockpfn + 1] & 0xFF if flags[blockpfn] & _HEAD else 0
                if order <= MAX_PAGE_ORDER and blockpfn + (1 << order) <= end_pfn:
                    blockpfn += (1 << order) - 1
                    nr_scanned += (1 << order) - 1
                if strict:
                    break
                blockpfn += stride
                continue
            if (mapcount[blockpfn] >> 24) & 0xFF != _PGTY_BUDDY:
                if strict:
                    break
                blockpfn += stride
                continue
            if not locked:
                locked = compact_lock_irqsave(m, "zone_lock", blockpfn, cc)
            order = private[blockpfn]
            isolated = pa.__isolate_free_page(m, blockpfn, order)
            if not isolated:
                break
            private[blockpfn] = order
            held[blockpfn] = order
            nr_scanned += isolated - 1
            total_isolated += isolated
            cc.nr_freepages += isolated
            list_add_tail(blockpfn, freelist[order])
            if not strict and cc.nr_migratepages <= cc.nr_freepages:
                blockpfn += isolated
                break
            blockpfn += isolated - 1 + stride
    # There is a tiny chance that we have read bogus compound_order(): stay in the block.
    if blockpfn > end_pfn:
        blockpfn = end_pfn
    _trace(m, "mm_compaction_isolate_freepages", start_pfn=start_pfn, end_pfn=blockpfn,
           nr_scanned=nr_scanned, nr_taken=total_isolated)
    if strict and blockpfn < end_pfn:
        total_isolated = 0
    cc.total_free_scanned += nr_scanned
    if total_isolated:
        count_compact_events(m, vs.COMPACTISOLATED, total_isolated)
    cost = _cost(m)
    if cost is not None:
        _charge(m, cost.free_scan_pfn * nr_scanned)
    return total_isolated, blockpfn


def suitable_migration_source(cc: CompactControl, pfn: int) -> bool:
    """Model of mm/compaction.c:suitable_migration_source() (v6.x).

    Async direct compaction only takes blocks of the request's migratetype (MOVABLE or CMA
    for a movable request); every other mode takes any block without a huge page. Before
    v4.12 (``profile.compact_same_migratetype`` False: v4.8's ``migrate_async_suitable``
    test in ``isolate_migratepages``) every ASYNC compactor, whatever the request, took
    only MOVABLE and CMA blocks.
    """
    m = cc.zone.machine
    if pageblock_skip_persistent(m, pfn):
        return False
    if not m.profile.compact_same_migratetype:
        return (cc.mode != MigrateMode.MIGRATE_ASYNC
                or is_migrate_movable(pa.get_pageblock_migratetype(m, pfn)))
    if cc.mode != MigrateMode.MIGRATE_ASYNC or not cc.direct_compaction:
        return True
    block_mt = pa.get_pageblock_migratetype(m, pfn)
    if cc.migratetype == MIGRATE_MOVABLE:
        return is_migrate_movable(block_mt)
    return block_mt == cc.migratetype


def suitable_migration_target(cc: CompactControl, pfn: int) -> bool:
    """Model of mm/compaction.c:suitable_migration_target() (v6.x).

    Never split a free block of pageblock order or more; otherwise only MOVABLE/CMA blocks
    (unless ``ignore_block_suitable``).
    """
    m = cc.zone.machine
    mem = m.mem
    if (mem.mapcount_mv[pfn] >> 24) & 0xFF == _PGTY_BUDDY and (
            mem.private_mv[pfn] >= pageblock_order):
        return False
    if cc.ignore_block_suitable:
        return True
    return is_migrate_movable(pa.get_pageblock_migratetype(m, pfn))


def freelist_scan_limit(cc: CompactControl) -> int:
    """Model of mm/compaction.c:freelist_scan_limit() (v6.x)."""
    return (COMPACT_CLUSTER_MAX >> min(63, cc.fast_search_fail)) + 1


def compact_scanners_met(cc: CompactControl) -> bool:
    """Model of mm/compaction.c:compact_scanners_met() (v6.x).

    The free scanner reached the migration scanner's pageblock (or a lower one).
    """
    return (cc.free_pfn >> pageblock_order) <= (cc.migrate_pfn >> pageblock_order)


def move_freelist_head(m: Machine, freelist: int, freepage: int) -> None:
    """Model of mm/compaction.c:move_freelist_head() (v6.x).

    Rotate ``freelist`` so that ``freepage`` is first (the entries before it move to the
    tail, in order): ``list_cut_before`` + ``list_splice_tail``. Done in O(1) by moving the
    list head itself to just before ``freepage``.
    """
    mem = m.mem
    if mem.lru_next_mv[freelist] >> 1 != freepage:
        mem.list_del(freelist)
        mem.list_add_tail(freelist, freepage)


def move_freelist_tail(m: Machine, freelist: int, freepage: int) -> None:
    """Model of mm/compaction.c:move_freelist_tail() (v6.x).

    Rotate ``freelist`` so that ``freepage`` is last (``list_cut_position`` +
    ``list_splice_tail``), in O(1) by moving the list head to just after ``freepage``.
    """
    mem = m.mem
    if mem.lru_prev_mv[freelist] >> 1 != freepage:
        mem.list_del(freelist)
        mem.list_add(freelist, freepage)


def fast_isolate_around(cc: CompactControl, pfn: int) -> None:
    """Model of mm/compaction.c:fast_isolate_around() (v6.x).

    After the fast search found a free page, isolate more from its pageblock (sync modes and
    kcompactd only) and mark the block skipped if the scan went through it.
    """
    zone = cc.zone
    m = zone.machine
    if cc.nr_freepages >= cc.nr_migratepages:
        return
    if cc.direct_compaction and cc.mode == MigrateMode.MIGRATE_ASYNC:
        return
    start_pfn = max(pageblock_start_pfn(pfn), zone.zone_start_pfn)
    end_pfn = min(pageblock_end_pfn(pfn), zone.zone_end_pfn)
    page = pageblock_pfn_to_page(m, start_pfn, end_pfn, zone)
    if page < 0:
        return
    _, start_pfn = isolate_freepages_block(cc, start_pfn, end_pfn, cc.freepages, 1, False)
    if start_pfn == end_pfn and not cc.no_set_skip_hint:
        pa.set_pageblock_skip(m, page)


def next_search_order(cc: CompactControl, order: int) -> int:
    """Model of mm/compaction.c:next_search_order() (v6.x): round-robin over orders."""
    order -= 1
    if order < 0:
        order = cc.order - 1
    if order == cc.search_order:
        cc.search_order -= 1
        if cc.search_order < 0:
            cc.search_order = cc.order - 1
        return -1
    return order


def fast_isolate_freepages(cc: CompactControl) -> None:
    """Model of mm/compaction.c:fast_isolate_freepages() (v6.18).

    Before the linear free scan, search the MOVABLE free lists of orders below ``cc->order``
    (round-robin from ``search_order``, from the tail) for a page in the top quarter of the
    remaining range (the top half will do), isolate it, then isolate around it. Counts
    COMPACTISOLATED; traces ``mm_compaction_fast_isolate_freepages``.
    """
    zone = cc.zone
    m = zone.machine
    mem = m.mem
    limit = max(1, freelist_scan_limit(cc) >> 1)
    nr_scanned = 0
    total_isolated = 0
    highest = 0
    page = -1
    scan_start = False
    if cc.order <= 0:
        return
    if cc.free_pfn >= zone.compact_init_free_pfn:
        limit = pageblock_nr_pages >> 1
        scan_start = True
    distance = cc.free_pfn - cc.migrate_pfn
    low_pfn = pageblock_start_pfn(cc.free_pfn - (distance >> 2))
    min_pfn = pageblock_start_pfn(cc.free_pfn - (distance >> 1))
    if min_pfn > low_pfn:
        m.warn_once("fast_isolate_freepages", "WARN_ON_ONCE(min_pfn > low_pfn) in "
                    "fast_isolate_freepages")
        low_pfn = min_pfn
    cc.search_order = min(cc.order - 1, cc.search_order)
    lru_prev = mem.lru_prev_mv
    order = cc.search_order
    while page < 0 and order >= 0:
        if zone.nr_free[order]:
            freelist = zone.free_list(order, MIGRATE_MOVABLE)
            order_scanned = 0
            high_pfn = 0
            freepage = -1
            cur = lru_prev[freelist] >> 1
            while cur != freelist:
                freepage = cur
                order_scanned += 1
                nr_scanned += 1
                pfn = cur
                if pfn >= highest:
                    highest = max(pageblock_start_pfn(pfn), zone.zone_start_pfn)
                if pfn >= low_pfn:
                    cc.fast_search_fail = 0
                    cc.search_order = order
                    page = freepage
                    break
                if pfn >= min_pfn and pfn > high_pfn:
                    high_pfn = pfn
                    limit >>= 1
                if order_scanned >= limit:
                    break
                cur = lru_prev[cur] >> 1
            if page < 0 and high_pfn:
                page = high_pfn
                freepage = page
            if freepage >= 0:
                move_freelist_head(m, freelist, freepage)
            if page >= 0:
                if pa.__isolate_free_page(m, page, order):
                    mem.private_mv[page] = order
                    m.held_chunks[page] = order
                    nr_isolated = 1 << order
                    nr_scanned += nr_isolated - 1
                    total_isolated += nr_isolated
                    cc.nr_freepages += nr_isolated
                    mem.list_add_tail(page, cc.freepages[order])
                    count_compact_events(m, vs.COMPACTISOLATED, nr_isolated)
                else:
                    # If isolation fails, abort the search.
                    order = cc.search_order + 1
                    page = -1
            if cc.nr_freepages >= cc.nr_migratepages:
                break
            if order_scanned >= limit:
                limit = max(1, limit >> 1)
        order = next_search_order(cc, order)
    _trace(m, "mm_compaction_fast_isolate_freepages", start_pfn=min_pfn, end_pfn=cc.free_pfn,
           nr_scanned=nr_scanned, nr_taken=total_isolated)
    if page < 0:
        cc.fast_search_fail += 1
        if scan_start:
            if highest >= min_pfn:
                page = highest
                cc.free_pfn = highest
            elif cc.direct_compaction and m.pfn_valid(min_pfn):
                page = pageblock_pfn_to_page(
                    m, min_pfn, min(pageblock_end_pfn(min_pfn), zone.zone_end_pfn), zone)
                cc.free_pfn = min_pfn
    if highest and highest >= zone.compact_cached_free_pfn:
        highest -= pageblock_nr_pages
        zone.compact_cached_free_pfn = highest
    cc.total_free_scanned += nr_scanned
    cost = _cost(m)
    if cost is not None:
        _charge(m, cost.free_scan_pfn * nr_scanned)
    if page < 0:
        return
    fast_isolate_around(cc, page)


def isolate_freepages(cc: CompactControl) -> None:
    """Model of mm/compaction.c:isolate_freepages() (v6.18).

    The free scanner: after :func:`fast_isolate_freepages`, walk pageblocks down from
    ``cc->free_pfn`` to the end of the migration scanner's block, isolating free chunks from
    suitable, not-skipped blocks until ``nr_freepages >= nr_migratepages``. Async compaction
    starts with a stride of 32 pfns, doubling over empty blocks. Records where to restart in
    ``cc->free_pfn``.
    """
    zone = cc.zone
    m = zone.machine
    freelist = cc.freepages
    fast_search = m.profile.compaction_fast_search
    if fast_search:  # v5.1+; v4.8 only had the linear scan, visiting every pfn
        fast_isolate_freepages(cc)
        if cc.nr_freepages:
            return
    isolate_start_pfn = cc.free_pfn
    block_start = pageblock_start_pfn(isolate_start_pfn)
    block_end = min(block_start + pageblock_nr_pages, zone.zone_end_pfn)
    low_pfn = pageblock_end_pfn(cc.migrate_pfn)
    sampling = fast_search and cc.mode == MigrateMode.MIGRATE_ASYNC
    stride = COMPACT_CLUSTER_MAX if sampling else 1
    while block_start >= low_pfn:
        page = pageblock_pfn_to_page(m, block_start, block_end, zone)
        if page < 0:
            next_pfn = skip_offline_sections_reverse(m, block_start)
            if next_pfn:
                block_start = max(next_pfn, low_pfn)
        elif suitable_migration_target(cc, page) and isolation_suitable(cc, page):
            nr_isolated, isolate_start_pfn = isolate_freepages_block(
                cc, isolate_start_pfn, block_end, freelist, stride, False)
            # Update the skip hint if the full pageblock was scanned.
            if isolate_start_pfn == block_end:
                update_pageblock_skip(cc, page, block_start - pageblock_nr_pages)
            if cc.nr_freepages >= cc.nr_migratepages:
                if isolate_start_pfn >= block_end:
                    # Restart at previous pageblock if more freepages can be isolated.
                    isolate_start_pfn = block_start - pageblock_nr_pages
                break
            if isolate_start_pfn < block_end:
                # If isolation failed early, do not continue needlessly.
                break
            if nr_isolated or not sampling:
                stride = 1
            else:
                stride = min(COMPACT_CLUSTER_MAX, stride << 1)
        block_end = block_start
        block_start -= pageblock_nr_pages
        isolate_start_pfn = block_start
    cc.free_pfn = isolate_start_pfn


def compaction_alloc(cc: CompactControl, src: int) -> int:
    """Model of mm/compaction.c:compaction_alloc_noprof() (v6.18), migrate_pages' allocator.

    Take a target of the source folio's order from ``cc->freepages``, splitting a larger
    chunk (the upper halves go back on the lists), running the free scanner once when no
    chunk is big enough. The target gets ``post_alloc_hook`` state and one reference
    (``set_page_refcounted``); ``nr_freepages`` and ``nr_migratepages`` drop by its size.
    Returns -1 (NULL) when the free scanner found nothing.
    """
    zone = cc.zone
    m = zone.machine
    mem = m.mem
    flags = mem.flags_mv
    order = flags[src + 1] & 0xFF if flags[src] & _HEAD else 0  # folio_order(src)
    has_isolated_pages = False
    lru_next = mem.lru_next_mv
    freepages = cc.freepages
    while True:
        start_order = order
        while start_order < NR_PAGE_ORDERS:
            head = freepages[start_order]
            if lru_next[head] != head << 1:
                break
            start_order += 1
        if start_order < NR_PAGE_ORDERS:
            break
        if has_isolated_pages:
            return -1
        isolate_freepages(cc)
        has_isolated_pages = True
    freepage = lru_next[freepages[start_order]] >> 1
    size = 1 << start_order
    mem.list_del(freepage)
    held = m.held_chunks
    del held[freepage]
    while start_order > order:
        start_order -= 1
        size >>= 1
        mem.list_add(freepage + size, freepages[start_order])
        mem.private_mv[freepage + size] = start_order
        held[freepage + size] = start_order
    pa.post_alloc_hook(zone, freepage, order, G.__GFP_MOVABLE, MIGRATE_MOVABLE)
    if order:
        pa.prep_compound_page(zone, freepage, order)
    cc.nr_freepages -= 1 << order
    cc.nr_migratepages -= 1 << order
    return freepage


def compaction_free(cc: CompactControl, dst: int) -> None:
    """Model of mm/compaction.c:compaction_free() (v6.10+), migrate_pages' "free" callback.

    An unused target goes back on ``cc->freepages[order]`` if its reference was the last
    one (``folio_put_testzero`` + ``free_pages_prepare``); either way its pages count again
    as still to be migrated.
    """
    m = cc.zone.machine
    order = pf.compound_order(m.mem, dst)
    if pa.put_page_testzero(m, dst):
        pa.free_pages_prepare(m, dst, order)
        m.mem.list_add(dst, cc.freepages[order])
        m.held_chunks[dst] = order
        cc.nr_freepages += 1 << order
    cc.nr_migratepages += 1 << order


def release_free_list(m: Machine, freepages: list[int]) -> int:
    """Model of mm/compaction.c:release_free_list() (v6.10+).

    Free every chunk still on the lists (``mark_allocated`` + ``__free_pages``) and return
    the highest pfn freed.
    """
    mem = m.mem
    high_pfn = 0
    held = m.held_chunks
    for order in range(NR_PAGE_ORDERS):
        head = freepages[order]
        for pfn in list(mem.list_entries(head)):
            mem.list_del(pfn)
            del held[pfn]
            pa.post_alloc_hook(m.page_zone(pfn), pfn, order, G.__GFP_MOVABLE, MIGRATE_MOVABLE)
            pa.__free_pages(m, pfn, order)
            if pfn > high_pfn:
                high_pfn = pfn
    return high_pfn


# ================================================================================================
# the migration scanner
# ================================================================================================


def too_many_isolated(cc: CompactControl) -> bool:
    """Model of mm/compaction.c:too_many_isolated() (v6.x).

    Isolated pages (NR_ISOLATED_ANON + FILE) above half the node's LRU pages; GFP_FS
    compactors compare against 1/8 of the LRU (GFP_NOFS ones may go past that limit).
    """
    stat = cc.zone.machine.nodes[cc.zone.node].vm_stat
    inactive = stat[vs.NR_INACTIVE_FILE] + stat[vs.NR_INACTIVE_ANON]
    active = stat[vs.NR_ACTIVE_FILE] + stat[vs.NR_ACTIVE_ANON]
    isolated = stat[vs.NR_ISOLATED_FILE] + stat[vs.NR_ISOLATED_ANON]
    if cc.gfp_mask & G.__GFP_FS:
        inactive >>= 3
        active >>= 3
    return isolated > (inactive + active) // 2


def skip_isolation_on_order(order: int, target_order: int) -> bool:
    """Model of mm/compaction.c:skip_isolation_on_order() (v6.10+).

    Skip a folio at least as large as the target order (unless compacting everything), and
    always one of pageblock order or more.
    """
    if not is_via_compact_memory(target_order) and order >= target_order:
        return True
    return order >= pageblock_order


def _no_isolation_candidates(m: Machine, lo: int, hi: int) -> bool:
    """Return whether no page of ``[lo, hi)`` could be isolated by the migration scanner.

    A page can only be isolated if its own flags have PG_lru (tail pages fail
    ``folio_get_nontail_page``) or its own ``mapping`` has the movable type bits.
    """
    mem = m.mem
    if (mem.flags[lo:hi] & _LRU64).any():
        return False
    return not (m.profile.non_lru_movable
                and ((mem.mapping[lo:hi] & 3) == pf.PAGE_MAPPING_MOVABLE).any())


def _scan_end_without_candidates(m: Machine, lo: int, hi: int, target_order: int) -> int:
    """Return where the per-pfn walk of a block without candidates stops, before clamping.

    The walk moves one pfn at a time except over free blocks (order > 0) and skipped
    compound pages, which it jumps. Neither can start inside another, so the walk stops at
    ``hi`` unless the last block it jumps reaches past ``hi``.
    """
    mem = m.mem
    end = hi
    seg = mem.mapcount[lo:hi]
    idx = np.flatnonzero((seg >= _BUDDY_LO) & (seg < _BUDDY_HI))
    if len(idx):
        orders = mem.private[lo + idx]
        ok = (orders > 0) & (orders <= MAX_PAGE_ORDER)
        if ok.any():
            ends = lo + idx[ok] + (np.int64(1) << orders[ok].astype(np.int64))
            end = max(end, int(ends.max()))
    cidx = np.flatnonzero(mem.flags[lo:hi] & _HEAD64)
    for off in cidx.tolist():
        head = lo + off
        order = int(mem.flags_mv[head + 1] & 0xFF)
        if skip_isolation_on_order(order, target_order) and order <= MAX_PAGE_ORDER:
            end = max(end, head + (1 << order))
    return end


def reclaim_throttle(m: Machine, pgdat: PglistData) -> None:
    """Model of mm/vmscan.c:reclaim_throttle(pgdat, VMSCAN_THROTTLE_ISOLATED) (v6.x).

    Sleeps until isolated pages are put back or a timeout; a preemption point in the model.
    """
    if m.preempt is not None:
        m.preempt("reclaim_throttle", -1)


def isolate_migratepages_block(cc: CompactControl, low_pfn: int, end_pfn: int,
                               mode: int) -> int:
    """Model of mm/compaction.c:isolate_migratepages_block() (v6.18).

    Isolate movable pages of ``[low_pfn, end_pfn)`` (one pageblock) onto
    ``cc->migratepages``, at most ``COMPACT_CLUSTER_MAX`` per call. Per pfn, in the kernel's
    order: the block's skip hint at its first pfn; PageBuddy (jump the free block, not a
    failure); (pre-4.8 profiles) the balloon special case; compound pages that are too large
    to migrate (jump, fail); non-LRU pages: ``__PageMovable`` and not PG_isolated →
    ``isolate_movable_page`` (v4.8+ profiles), anything else fails; LRU folios: a reference
    unless zero, pinned anon (refcount − 1 > mapcount) fails, GFP_NOFS only takes anon,
    PG_lru re-checked, unevictable/writeback/dirty rules of the isolate mode, test-and-clear
    PG_lru, the LRU lock (first time: test-and-set the block's skip hint, abort if it was
    set; re-check folio size), ``lruvec_del_folio`` and NR_ISOLATED.

    Async direct compaction gives up an order-aligned block at the first failure
    (``skip_on_failure``), putting back what it isolated there. A fully scanned block that
    yielded nothing gets its skip hint and advances the cached migrate pfn. Sets
    ``cc->migrate_pfn`` to where the scan stopped; returns 0, -EAGAIN (too many isolated) or
    -EINTR. Counts COMPACTISOLATED; ``nr_scanned`` includes jumped pages, as mainline counts.

    Exact shortcut: when the block holds no page that could be isolated (no PG_lru, no
    movable mapping) and no failure can jump the scan (not ``skip_on_failure``; no balloon
    hook), the walk can only step or jump, so it is accounted without walking: it stops at
    the block end (or past it, if the last free block or huge page it jumps reaches beyond),
    and ``nr_scanned`` is the distance travelled.
    """
    zone = cc.zone
    m = zone.machine
    mem = m.mem
    pgdat = m.nodes[zone.node]
    profile = m.profile
    nr_scanned = 0
    nr_isolated = 0
    locked = False
    valid_page = -1
    start_pfn = low_pfn
    skip_on_failure = False
    next_skip_pfn = 0
    skip_updated = False
    abort_folio = -1
    ret = 0
    cc.migrate_pfn = low_pfn
    while too_many_isolated(cc):
        if cc.nr_migratepages:
            return -EAGAIN
        if cc.mode == MigrateMode.MIGRATE_ASYNC:
            return -EAGAIN
        reclaim_throttle(m, pgdat)
        if m.preempt is None and too_many_isolated(cc):
            m.warn_once("too_many_isolated", "isolate_migratepages_block: too many pages "
                        "isolated and no other CPU can put them back; compaction gives up "
                        "(-EINTR) where the kernel would keep throttling")
            return -EINTR
        if fatal_signal_pending(m):
            return -EINTR
    if cc.direct_compaction and cc.mode == MigrateMode.MIGRATE_ASYNC:
        skip_on_failure = True
        next_skip_pfn = block_end_pfn(low_pfn, cc.order)

    balloon_hook = None
    if not profile.non_lru_movable and profile.balloon_compaction:
        balloon_hook = m.balloon_isolate_hook
    zone_start = zone.zone_start_pfn
    aborted = False

    if (USE_SHORTCUTS and not skip_on_failure and balloon_hook is None and low_pfn < end_pfn
            and _no_isolation_candidates(m, low_pfn, end_pfn)):
        if (not low_pfn & _PB_MASK or low_pfn == zone_start):
            if not isolation_suitable(cc, low_pfn):
                nr_scanned = 1
                low_pfn = end_pfn
                aborted = True
            else:
                valid_page = low_pfn
        if not aborted:
            stop = _scan_end_without_candidates(m, low_pfn, end_pfn, cc.order)
            nr_scanned = stop - low_pfn
            low_pfn = stop
    else:
        flags = mem.flags_mv
        refcount = mem.refcount_mv
        mapcount = mem.mapcount_mv
        mapping_mv = mem.mapping_mv
        private = mem.private_mv
        lru_next = mem.lru_next_mv
        pb = m.pageblock_flags_mv
        target_order = cc.order
        alloc_contig = cc.alloc_contig
        ignore_skip_hint = cc.ignore_skip_hint
        non_lru = profile.non_lru_movable
        v48 = profile.nr_isolated_v48
        gfp_fs = cc.gfp_mask & G.__GFP_FS
        migratepages = cc.migratepages
        list_add = mem.list_add
        preempt = m.preempt
        node_stat = pgdat.vm_stat
        lruvec_del_folio = swap.lruvec_del_folio
        unevictable_ok = mode & ISOLATE_UNEVICTABLE
        async_mode = mode & ISOLATE_ASYNC_MIGRATE
        while low_pfn < end_pfn:
            if skip_on_failure and low_pfn >= next_skip_pfn:
                # Migrate what the previous order-aligned block gave before going on.
                if nr_isolated:
                    break
                next_skip_pfn = block_end_pfn(low_pfn, target_order)
            if not low_pfn % COMPACT_CLUSTER_MAX:
                # Drop the lock regularly; abort on a fatal signal (never, in the model).
                locked = False
                if fatal_signal_pending(m):
                    cc.contended = True
                    ret = -EINTR
                    break
            nr_scanned += 1
            if valid_page < 0 and (not low_pfn & _PB_MASK or low_pfn == zone_start):
                if not ignore_skip_hint and pb[low_pfn >> pageblock_order] & PB_SKIP_BIT:
                    low_pfn = end_pfn
                    aborted = True
                    break
                valid_page = low_pfn
            mc = mapcount[low_pfn]
            if (mc >> 24) & 0xFF == _PGTY_BUDDY:
                # Free: jump the block (the order is read without the zone lock).
                freepage_order = private[low_pfn]
                if 0 < freepage_order <= MAX_PAGE_ORDER:
                    low_pfn += (1 << freepage_order) - 1
                    nr_scanned += (1 << freepage_order) - 1
                low_pfn += 1
                continue
            f = flags[low_pfn]
            link = lru_next[low_pfn]
            head = link >> 1 if link & 1 else low_pfn
            outcome = 0  # 0 fail, 1 fail after taking a reference, 2 isolated
            folio = -1
            nr_pages = 1
            while True:  # one pass; 'break' jumps to the outcome's label
                # v3.8..v4.7: balloon pages, before the compound check.
                if (balloon_hook is not None and not flags[head] & _LRU
                        and balloon_hook(m, low_pfn, mode)):
                    folio = low_pfn
                    if v48 or not pf.__PageMovable(mem, low_pfn):
                        migrate.mod_isolated(m, low_pfn, 1)
                    outcome = 2
                    break
                if (f & _HEAD or link & 1) and not alloc_contig:
                    corder = flags[low_pfn + 1] & 0xFF if f & _HEAD else 0
                    if skip_isolation_on_order(corder, target_order):
                        if corder <= MAX_PAGE_ORDER:
                            low_pfn += (1 << corder) - 1
                            nr_scanned += (1 << corder) - 1
                        break
                if not flags[head] & _LRU:
                    if (non_lru and mapping_mv[low_pfn] & 3 == pf.PAGE_MAPPING_MOVABLE
                            and not f & _ISOLATED):
                        locked = False
                        if migrate.isolate_movable_page(m, low_pfn, mode):
                            folio = low_pfn
                            if v48:
                                migrate.mod_isolated(m, low_pfn, 1)
                            outcome = 2
                    break
                # folio_get_nontail_page(): tail pages have no references of their own.
                if preempt is not None:
                    preempt("get_page_unless_zero", low_pfn)
                if link & 1 or refcount[low_pfn] == 0:
                    break
                refcount[low_pfn] += 1
                folio = low_pfn
                outcome = 1
                ff = flags[folio]
                if ff & _HEAD:
                    nr_pages = 1 << (flags[folio + 1] & 0xFF)
                # folio_mapping(): NULL for anon folios.
                word = mapping_mv[folio]
                mapping = 0 if word & pf.PAGE_MAPPING_ANON else pf.page_mapping(mem, folio)
                # Pinned anon: migration would fail, do not bother.
                if not mapping and refcount[folio] - 1 > pf.page_mapcount(mem, folio):
                    break
                # GFP_NOFS: anon only (no fs locks needed).
                if not gfp_fs and mapping:
                    break
                if not ff & _LRU:
                    break
                is_unevictable = ff & _UNEVICTABLE
                if not unevictable_ok and is_unevictable:
                    break
                if async_mode and ff & _WRITEBACK:
                    break
                is_dirty = ff & _DIRTY
                if (async_mode and is_dirty) or (mapping and is_unevictable):
                    if not trylock_page(m, folio):
                        break
                    mapping = pf.page_mapping(mem, folio)
                    owner = m.mappings.get(mapping) if mapping else None
                    migrate_dirty = True
                    if async_mode and is_dirty:
                        migrate_dirty = not mapping or _mapping_has_migrate_folio(owner)
                    is_unmovable = bool(mapping) and bool(getattr(owner, "unmovable", False))
                    unlock_page(m, folio)
                    if not migrate_dirty or is_unmovable:
                        break
                # folio_test_clear_lru()
                ff = flags[folio]
                if not ff & _LRU:
                    break
                flags[folio] = ff & ~_LRU
                if not locked:
                    locked = compact_lock_irqsave(m, "lru_lock", folio, cc)
                    if not skip_updated and valid_page >= 0:
                        skip_updated = True
                        if test_and_set_skip(cc, valid_page) and not cc.finish_pageblock:
                            low_pfn = end_pfn
                            abort_folio = folio
                            aborted = True
                            break
                    # The folio became large since the unlocked check.
                    corder = flags[folio + 1] & 0xFF if flags[folio] & _HEAD else 0
                    if skip_isolation_on_order(corder, target_order) and not alloc_contig:
                        low_pfn += nr_pages - 1
                        nr_scanned += nr_pages - 1
                        flags[folio] = flags[folio] | _LRU
                        break
                if nr_pages > 1:
                    low_pfn += nr_pages - 1
                lruvec_del_folio(m, folio)
                # node_stat_mod_folio(NR_ISOLATED_ANON + folio_is_file_lru(folio), nr)
                if flags[folio] >> pf.PG_swapbacked & 1:
                    node_stat[vs.NR_ISOLATED_ANON] += nr_pages
                else:
                    node_stat[vs.NR_ISOLATED_FILE] += nr_pages
                outcome = 2
                break
            if aborted:
                break
            if outcome == 2:
                list_add(folio, migratepages)
                cc.nr_migratepages += nr_pages
                nr_isolated += nr_pages
                nr_scanned += nr_pages - 1
                # Enough for one round, unless this block must be finished.
                if (cc.nr_migratepages >= COMPACT_CLUSTER_MAX and not cc.finish_pageblock
                        and not cc.contended):
                    low_pfn += 1
                    break
                low_pfn += 1
                continue
            if outcome == 1:
                # Avoid freeing a page under the LRU lock.
                locked = False
                swap.put_page(m, folio)
            # isolate_fail:
            if not skip_on_failure:
                low_pfn += 1
                continue
            # Something failed in this order-aligned block: it cannot become free, so put
            # back what it gave and move to the next one.
            if nr_isolated:
                locked = False
                migrate.putback_movable_pages(m, cc.migratepages)
                cc.nr_migratepages = 0
                nr_isolated = 0
            if low_pfn < next_skip_pfn:
                low_pfn = next_skip_pfn - 1
                next_skip_pfn += 1 << target_order
            low_pfn += 1
    if not aborted and low_pfn > end_pfn:
        # The PageBuddy() check could have brought us outside the range.
        low_pfn = end_pfn

    # isolate_abort:
    if abort_folio >= 0:
        flags_mv = mem.flags_mv
        flags_mv[abort_folio] = flags_mv[abort_folio] | _LRU
        swap.put_page(m, abort_folio)
    # Update the cached scanner pfn once the pageblock has been scanned; mark it skipped if
    # it yielded nothing (or is being rescanned to the end).
    if low_pfn == end_pfn and (not nr_isolated or cc.finish_pageblock):
        if not cc.no_set_skip_hint and valid_page >= 0 and not skip_updated:
            pa.set_pageblock_skip(m, valid_page)
        update_cached_migrate(cc, low_pfn)
    _trace(m, "mm_compaction_isolate_migratepages", start_pfn=start_pfn, end_pfn=low_pfn,
           nr_scanned=nr_scanned, nr_taken=nr_isolated)
    # fatal_pending:
    cc.total_migrate_scanned += nr_scanned
    if nr_isolated:
        count_compact_events(m, vs.COMPACTISOLATED, nr_isolated)
    cost = _cost(m)
    if cost is not None:
        _charge(m, cost.migrate_scan_pfn * nr_scanned + cost.isolate_page * nr_isolated)
    cc.migrate_pfn = low_pfn
    return ret


def _mapping_has_migrate_folio(owner: object) -> bool:
    """Return whether a page-cache mapping has ``->migrate_folio`` (can move dirty folios).

    The model migrates every page-cache folio with the generic ``migrate_folio`` (as
    filesystems that set ``filemap_migrate_folio`` do), unless an owner says otherwise with
    ``owner.migrate_folio = None``.
    """
    if not isinstance(owner, AddressSpace):
        return True
    return getattr(owner, "migrate_folio", True) is not None


def update_fast_start_pfn(cc: CompactControl, pfn: int) -> None:
    """Model of mm/compaction.c:update_fast_start_pfn() (v6.x)."""
    if cc.fast_start_pfn == _ULONG_MAX:
        return
    if not cc.fast_start_pfn:
        cc.fast_start_pfn = pfn
    cc.fast_start_pfn = min(cc.fast_start_pfn, pfn)


_ULONG_MAX = (1 << 64) - 1


def reinit_migrate_pfn(cc: CompactControl) -> int:
    """Model of mm/compaction.c:reinit_migrate_pfn() (v6.x)."""
    if not cc.fast_start_pfn or cc.fast_start_pfn == _ULONG_MAX:
        return cc.migrate_pfn
    cc.migrate_pfn = cc.fast_start_pfn
    cc.fast_start_pfn = _ULONG_MAX
    return cc.migrate_pfn


def fast_find_migrateblock(cc: CompactControl) -> int:
    """Model of mm/compaction.c:fast_find_migrateblock() (v6.x).

    For costly orders, pick a source pageblock that already has free pages: search the
    MOVABLE free lists of orders ``cc->order - 1`` down to 3 for a page in the first half
    (at the start) or eighth of the range. Returns the pfn to start the linear scan from.
    """
    zone = cc.zone
    m = zone.machine
    mem = m.mem
    limit = freelist_scan_limit(cc)
    nr_scanned = 0
    pfn = cc.migrate_pfn
    found_block = False
    if cc.ignore_skip_hint or not m.profile.compaction_fast_search:
        return pfn  # (before v5.1 the scanner always went on from where it was)
    if cc.finish_pageblock:
        return pfn
    # A continuation of a scan stopped at COMPACT_CLUSTER_MAX: carry on.
    if pfn != zone.zone_start_pfn and pfn != pageblock_start_pfn(pfn):
        return pfn
    if cc.order <= PAGE_ALLOC_COSTLY_ORDER:
        return pfn
    # Only kcompactd and movable direct requests may clear out a movable block quickly.
    if cc.direct_compaction and cc.migratetype != MIGRATE_MOVABLE:
        return pfn
    distance = (cc.free_pfn - cc.migrate_pfn) >> 1
    if cc.migrate_pfn != zone.zone_start_pfn:
        distance >>= 2
    high_pfn = pageblock_start_pfn(cc.migrate_pfn + distance)
    lru_next = mem.lru_next_mv
    order = cc.order - 1
    while order >= PAGE_ALLOC_COSTLY_ORDER and not found_block and nr_scanned < limit:
        if zone.nr_free[order]:
            freelist = zone.free_list(order, MIGRATE_MOVABLE)
            cur = lru_next[freelist] >> 1
            while cur != freelist:
                freepage = cur
                nxt = lru_next[cur] >> 1
                scanned_before = nr_scanned
                nr_scanned += 1
                if scanned_before >= limit:
                    move_freelist_tail(m, freelist, freepage)
                    break
                free_pfn = freepage
                if free_pfn < high_pfn:
                    # Avoid a block skipped recently.
                    if pa.get_pageblock_skip(m, freepage):
                        cur = nxt
                        continue
                    move_freelist_tail(m, freelist, freepage)
                    update_fast_start_pfn(cc, free_pfn)
                    pfn = pageblock_start_pfn(free_pfn)
                    if pfn < zone.zone_start_pfn:
                        pfn = zone.zone_start_pfn
                    cc.fast_search_fail = 0
                    found_block = True
                    break
                cur = nxt
        order -= 1
    cc.total_migrate_scanned += nr_scanned
    if not found_block:
        cc.fast_search_fail += 1
        pfn = reinit_migrate_pfn(cc)
    return pfn


def isolate_migratepages(cc: CompactControl) -> int:
    """Model of mm/compaction.c:isolate_migratepages() (v6.x).

    The migration scanner: from the fast-search result or ``cc->migrate_pfn``, walk whole
    pageblocks up (never past the free scanner) to the first one that is present, not
    skipped (checked at the block's first pfn unless the fast search chose it) and a
    suitable source, and isolate from it. Returns ISOLATE_ABORT, ISOLATE_NONE or
    ISOLATE_SUCCESS.
    """
    zone = cc.zone
    m = zone.machine
    isolate_mode = ((ISOLATE_UNEVICTABLE if m.compact_unevictable_allowed else 0)
                    | (ISOLATE_ASYNC_MIGRATE if cc.mode != MigrateMode.MIGRATE_SYNC else 0))
    low_pfn = fast_find_migrateblock(cc)
    block_start = pageblock_start_pfn(low_pfn)
    if block_start < zone.zone_start_pfn:
        block_start = zone.zone_start_pfn
    fast_find_block = low_pfn != cc.migrate_pfn and not cc.fast_search_fail
    block_end = pageblock_end_pfn(low_pfn)
    while block_end <= cc.free_pfn:
        page = pageblock_pfn_to_page(m, block_start, block_end, zone)
        if page < 0:
            next_pfn = skip_offline_sections(m, block_start)
            if next_pfn:
                block_end = min(next_pfn, cc.free_pfn)
        elif ((pageblock_aligned(low_pfn) or low_pfn == zone.zone_start_pfn)
              and not fast_find_block and not isolation_suitable(cc, page)):
            pass
        elif not suitable_migration_source(cc, page):
            if m.profile.compaction_fast_search:  # v4.8 just moved on
                update_cached_migrate(cc, block_end)
        else:
            if isolate_migratepages_block(cc, low_pfn, block_end, isolate_mode):
                return ISOLATE_ABORT
            # Either we isolated something and proceed with migration, or we failed and
            # compact_zone() decides whether to go on.
            break
        fast_find_block = False
        cc.migrate_pfn = low_pfn = block_end
        block_start = block_end
        block_end += pageblock_nr_pages
    return ISOLATE_SUCCESS if cc.nr_migratepages else ISOLATE_NONE


# ================================================================================================
# suitability and termination
# ================================================================================================


def fragmentation_score_zone(zone: Zone) -> int:
    """Model of mm/compaction.c:fragmentation_score_zone() (v6.x): 0..100."""
    return vs.fragmentation_score_zone(zone.nr_free)


def fragmentation_score_zone_weighted(zone: Zone) -> int:
    """Model of mm/compaction.c:fragmentation_score_zone_weighted() (v6.x)."""
    pgdat = zone.machine.nodes[zone.node]
    return vs.fragmentation_score_zone_weighted(zone.nr_free, zone.present_pages,
                                                pgdat.node_present_pages)


def fragmentation_score_node(pgdat: PglistData) -> int:
    """Model of mm/compaction.c:fragmentation_score_node() (v6.x)."""
    return vs.fragmentation_score_node(
        [(z.nr_free, z.present_pages) for z in pgdat.node_zones if z.present_pages],
        pgdat.node_present_pages)


def fragmentation_score_wmark(m: Machine, low: bool) -> int:
    """Model of mm/compaction.c:fragmentation_score_wmark() (v6.x)."""
    return vs.fragmentation_score_wmark(low, m.compaction_proactiveness)


def should_proactive_compact_node(m: Machine, pgdat: PglistData) -> bool:
    """Model of mm/compaction.c:should_proactive_compact_node() (v6.x)."""
    if not m.compaction_proactiveness or kswapd_is_running(pgdat):
        return False
    wmark_high = fragmentation_score_wmark(m, False)
    return fragmentation_score_node(pgdat) > wmark_high


def __compact_finished(cc: CompactControl) -> CompactResult:
    """Model of mm/compaction.c:__compact_finished() (v6.18).

    In order: scanners met (reset cached positions; a direct compactor flags the zone for a
    skip-hint flush) → COMPLETE for a whole-zone run else PARTIAL_SKIPPED; proactive mode:
    PARTIAL_SKIPPED while kswapd runs, CONTINUE while the zone's score is above the low mark,
    else SUCCESS; order -1 → CONTINUE; mid-pageblock → CONTINUE (finish the block first);
    a free block of ``order..MAX_PAGE_ORDER`` on the request's list (or CMA for movable, or a
    claimable fallback) → SUCCESS; else NO_SUITABLE_PAGE. Contention overrides the result
    (checked last).

    Without ``profile.compact_finish_pageblock`` this is v4.8's order of checks: contention
    first; scanners met; order -1; the request's watermark (low) must hold for ``cc->order``
    before the free lists are looked at; no pageblock is finished first.
    """
    zone = cc.zone
    m = zone.machine
    migratetype = cc.migratetype
    v48 = not m.profile.compact_finish_pageblock
    if v48 and (cc.contended or fatal_signal_pending(m)):
        return _CONTENDED
    if compact_scanners_met(cc):
        reset_cached_positions(zone)
        if cc.direct_compaction:
            zone.compact_blockskip_flush = True
        return _COMPLETE if cc.whole_zone else _PARTIAL_SKIPPED
    if cc.proactive_compaction:
        if kswapd_is_running(m.nodes[zone.node]):
            return _PARTIAL_SKIPPED
        score = fragmentation_score_zone(zone)
        wmark_low = fragmentation_score_wmark(m, True)
        ret = _CONTINUE if score > wmark_low else _SUCCESS
    else:
        if is_via_compact_memory(cc.order):
            return _CONTINUE
        if v48:
            if not pa.zone_watermark_ok(zone, cc.order, zone.low_wmark_pages(),
                                        cc.highest_zoneidx, cc.alloc_flags):
                return _CONTINUE
        elif not pageblock_aligned(cc.migrate_pfn):
            return _CONTINUE
        ret = _NO_SUITABLE_PAGE
        cma = m.profile.config_cma
        for order in range(cc.order, NR_PAGE_ORDERS):
            counts = zone.free_count[order]
            if counts[migratetype]:
                return _SUCCESS
            if cma and migratetype == MIGRATE_MOVABLE and counts[MIGRATE_CMA]:
                return _SUCCESS
            # An allocation that would claim a fallback block also succeeds.
            if pa.find_suitable_fallback(zone, order, migratetype, True) >= 0:
                return _SUCCESS
    if cc.contended or fatal_signal_pending(m):
        ret = _CONTENDED
    return ret


def compact_finished(cc: CompactControl) -> CompactResult:
    """Model of mm/compaction.c:compact_finished() (v6.x).

    Traces the raw result (``mm_compaction_finished``) and maps NO_SUITABLE_PAGE to
    CONTINUE.
    """
    ret = __compact_finished(cc)
    zone = cc.zone
    _trace(zone.machine, "mm_compaction_finished", nid=zone.node, idx=zone.idx,
           order=cc.order, ret=int(ret))
    if ret == _NO_SUITABLE_PAGE:
        ret = _CONTINUE
    return ret


def __compaction_suitable(zone: Zone, order: int, watermark: int, highest_zoneidx: int,
                          free_pages: int) -> bool:
    """Model of mm/compaction.c:__compaction_suitable() (v6.15+).

    Order-0 pages must stay above ``watermark`` plus room for the migration targets
    (``compact_gap``), plus ``low - min`` for costly orders, counting CMA pages as free.
    """
    if order > PAGE_ALLOC_COSTLY_ORDER:
        watermark += zone.low_wmark_pages() - zone.min_wmark_pages()
    watermark += compact_gap(order)
    return pa.__zone_watermark_ok(zone, 0, watermark, highest_zoneidx, ALLOC_CMA, free_pages)


def compaction_suitable(zone: Zone, order: int, watermark: int, highest_zoneidx: int) -> bool:
    """Model of mm/compaction.c:compaction_suitable() (v6.15+): compact this zone now?

    The order-0 watermark check (SKIPPED when it fails), then, for costly orders only, the
    fragmentation index: ``0 <= index <= vm.extfrag_threshold`` means the failure is for
    lack of memory, not fragmentation (NOT_SUITABLE_ZONE). Before v4.9
    (``profile.fragindex_costly_only`` False) the index gated every order. Traces the raw
    result (``mm_compaction_suitable``); returns whether to compact.
    """
    m = zone.machine
    suitable = __compaction_suitable(zone, order, watermark, highest_zoneidx,
                                     zone.vm_stat[vs.NR_FREE_PAGES])
    if suitable:
        compact_result = _CONTINUE
        if order > PAGE_ALLOC_COSTLY_ORDER or not m.profile.fragindex_costly_only:
            fragindex = vs.fragmentation_index(zone.nr_free, order)
            if 0 <= fragindex <= m.extfrag_threshold:
                suitable = False
                compact_result = _NOT_SUITABLE_ZONE
    else:
        compact_result = _SKIPPED
    _trace(m, "mm_compaction_suitable", nid=zone.node, idx=zone.idx, order=order,
           ret=int(compact_result))
    return suitable


def compaction_zonelist_suitable(m: Machine, ac: AllocContext, order: int,
                                 alloc_flags: int) -> bool:
    """Model of mm/compaction.c:compaction_zonelist_suitable() (v6.15+).

    Would some zone pass ``__compaction_suitable`` (min watermark) if reclaim freed its
    reclaimable pages (a share of them: ``reclaimable / order``)?
    """
    for zone in ac.zonelist:
        available = zone_reclaimable_pages(m, zone) // order
        available += zone.vm_stat[vs.NR_FREE_PAGES]
        if __compaction_suitable(zone, order, zone.min_wmark_pages(), ac.highest_zoneidx,
                                 available):
            return True
    return False


def compaction_suit_allocation_order(zone: Zone, order: int, highest_zoneidx: int,
                                     alloc_flags: int, async_: bool,
                                     kcompactd: bool) -> CompactResult:
    """Model of mm/compaction.c:compaction_suit_allocation_order() (v6.15+).

    SUCCESS if the allocation would already succeed at the caller's watermark; SKIPPED if a
    costly async request without ALLOC_CMA lacks non-CMA room, or
    :func:`compaction_suitable` says no; else CONTINUE. (``kcompactd`` only matters with
    ``vm.defrag_mode``, which the model keeps at 0.)
    """
    free_pages = zone.vm_stat[vs.NR_FREE_PAGES]
    watermark = zone.wmark_pages(alloc_flags & ALLOC_WMARK_MASK)
    if pa.__zone_watermark_ok(zone, order, watermark, highest_zoneidx, alloc_flags,
                              free_pages):
        return _SUCCESS
    if (order > PAGE_ALLOC_COSTLY_ORDER and async_ and not alloc_flags & ALLOC_CMA
            and not pa.__zone_watermark_ok(zone, 0, watermark + compact_gap(order),
                                           highest_zoneidx, 0, zone.vm_stat[vs.NR_FREE_PAGES])):
        # Not enough free non-CMA memory for an unmovable costly request.
        return _SKIPPED
    if not compaction_suitable(zone, order, watermark, highest_zoneidx):
        return _SKIPPED
    return _CONTINUE


# ================================================================================================
# compact_zone
# ================================================================================================


def lru_add_drain_cpu_zone(m: Machine, zone: Zone) -> None:
    """Model of mm/swap.c:lru_add_drain_cpu_zone() (v6.x): this CPU's LRU batches and pcps."""
    swap.lru_add_drain(m)
    pa.drain_local_pages(m, zone)


def compact_zone(cc: CompactControl, capc: object | None = None) -> CompactResult:
    """Model of mm/compaction.c:compact_zone() (v6.18).

    Check suitability (unless order -1), flush skip hints if compaction is restarting after
    maximal deferral, place the scanners (whole zone, or the cached positions), then loop:
    ``compact_finished`` → isolate a batch of sources → ``migrate_pages`` with
    :func:`compaction_alloc`/:func:`compaction_free`; on failure put the rest back, stop
    with CONTENDED on -ENOMEM before the scanners met, and rescan the rest of a pageblock
    once (``finish_pageblock``); drain this CPU's pcps for the zone when the scanner left an
    order-aligned block it migrated from. Finally release unused free chunks (moving the
    cached free pfn back up) and count COMPACTMIGRATE_SCANNED and COMPACTFREE_SCANNED.
    Traces ``mm_compaction_begin``/``end``/``migratepages``. ``capc`` (capture control) is
    accepted and ignored: capture is not modelled.
    """
    zone = cc.zone
    m = zone.machine
    mem = m.mem
    start_pfn = zone.zone_start_pfn
    end_pfn = zone.zone_end_pfn
    sync = cc.mode != MigrateMode.MIGRATE_ASYNC
    cc.total_migrate_scanned = 0
    cc.total_free_scanned = 0
    cc.nr_migratepages = 0
    cc.nr_freepages = 0
    cc.migratetype = G.gfp_migratetype(cc.gfp_mask, m.page_group_by_mobility_disabled)
    if not is_via_compact_memory(cc.order):
        ret = compaction_suit_allocation_order(
            zone, cc.order, cc.highest_zoneidx, cc.alloc_flags,
            cc.mode == MigrateMode.MIGRATE_ASYNC, not cc.direct_compaction)
        if ret != _CONTINUE:
            return ret
    cost = _cost(m)
    if cost is not None:
        _charge(m, cost.compact_zone_call)
    cc.freepages = [m.alloc_list_head() for _ in range(NR_PAGE_ORDERS)]
    cc.migratepages = m.alloc_list_head()
    try:
        return _compact_zone_run(cc, m, mem, start_pfn, end_pfn, sync)
    finally:
        for head in cc.freepages:
            m.release_list_head(head)
        m.release_list_head(cc.migratepages)
        cc.freepages = [-1] * NR_PAGE_ORDERS
        cc.migratepages = -1


def _compact_zone_run(cc: CompactControl, m: Machine, mem: Any, start_pfn: int, end_pfn: int,
                      sync: bool) -> CompactResult:
    """The body of :func:`compact_zone` once the run's list heads exist."""
    zone = cc.zone
    if compaction_restarting(zone, cc.order):
        __reset_isolation_suitable(zone)
    cc.fast_start_pfn = 0
    cached = zone.compact_cached_migrate_pfn
    if cc.whole_zone:
        cc.migrate_pfn = start_pfn
        cc.free_pfn = pageblock_start_pfn(end_pfn - 1)
    else:
        cc.migrate_pfn = cached[int(sync)]
        cc.free_pfn = zone.compact_cached_free_pfn
        if cc.free_pfn < start_pfn or cc.free_pfn >= end_pfn:
            cc.free_pfn = pageblock_start_pfn(end_pfn - 1)
            zone.compact_cached_free_pfn = cc.free_pfn
        if cc.migrate_pfn < start_pfn or cc.migrate_pfn >= end_pfn:
            cc.migrate_pfn = start_pfn
            cached[0] = cc.migrate_pfn
            cached[1] = cc.migrate_pfn
        if cc.migrate_pfn <= zone.compact_init_migrate_pfn:
            cc.whole_zone = True
    last_migrated_pfn = 0
    # Keep the async and sync cached pfns together until a block with candidates is found.
    update_cached = not sync and cached[0] == cached[1]
    _trace(m, "mm_compaction_begin", zone_start=start_pfn, migrate_pfn=cc.migrate_pfn,
           free_pfn=cc.free_pfn, zone_end=end_pfn, sync=sync)
    swap.lru_add_drain(m)
    alloc: Callable[[int], int] = functools.partial(compaction_alloc, cc)
    free: Callable[[int], None] = functools.partial(compaction_free, cc)
    cost = _cost(m)
    finish_blocks = m.profile.compact_finish_pageblock
    ret = compact_finished(cc)
    while ret == _CONTINUE:
        iteration_start_pfn = cc.migrate_pfn
        # Rescanning the block a migration came from: finish it this time.
        cc.finish_pageblock = finish_blocks and (pageblock_start_pfn(last_migrated_pfn)
                                                 == pageblock_start_pfn(iteration_start_pfn))
        out = False
        while True:  # rescan:
            if cost is not None:
                _charge(m, cost.batch_isolate)
            isolated = isolate_migratepages(cc)
            if isolated == ISOLATE_ABORT:
                ret = _CONTENDED
                migrate.putback_movable_pages(m, cc.migratepages)
                cc.nr_migratepages = 0
                out = True
                break
            if isolated == ISOLATE_NONE:
                if update_cached:
                    cached[1] = cached[0]
                break
            update_cached = False
            last_migrated_pfn = max(start_pfn, pageblock_start_pfn(cc.migrate_pfn - 1))
            # compaction_alloc()/free() keep cc->nr_migratepages up to date meanwhile.
            nr_migratepages = cc.nr_migratepages
            err, stats = migrate.migrate_pages(m, cc.migratepages, alloc, free, cc.mode,
                                               MigrateReason.MR_COMPACTION)
            nr_succeeded = stats.nr_succeeded
            if cost is not None:
                _charge(m, cost.migrate_pages_call + cost.migrate_page * nr_succeeded)
            _trace(m, "mm_compaction_migratepages", nr_migrated=nr_succeeded,
                   nr_failed=nr_migratepages - nr_succeeded)
            cc.nr_migratepages = 0
            if err:
                migrate.putback_movable_pages(m, cc.migratepages)
                # -ENOMEM when the scanners met is for compact_finished() to see.
                if err == -ENOMEM and not compact_scanners_met(cc):
                    ret = _CONTENDED
                    out = True
                    break
                # A failure inside a pageblock: scan the rest of it once, so that it gets
                # marked skipped rather than picked again and again.
                if not finish_blocks:
                    # v4.8: async direct compaction gives up the rest of the failed
                    # order-aligned block.
                    if cc.direct_compaction and cc.mode == MigrateMode.MIGRATE_ASYNC:
                        cc.migrate_pfn = block_end_pfn(cc.migrate_pfn - 1, cc.order)
                        last_migrated_pfn = 0
                elif (not pageblock_aligned(cc.migrate_pfn) and not cc.ignore_skip_hint
                        and not cc.finish_pageblock and cc.mode < MigrateMode.MIGRATE_SYNC):
                    cc.finish_pageblock = True
                    # Draining pcplists does not help THP if a page failed to migrate.
                    if cc.order == COMPACTION_HPAGE_ORDER:
                        last_migrated_pfn = 0
                    continue
            break
        if out:
            break
        # check_drain: pages freed by migration merge only once off the pcp lists.
        if cc.order > 0 and last_migrated_pfn:
            current_block_start = block_start_pfn(cc.migrate_pfn, cc.order)
            if last_migrated_pfn < current_block_start:
                lru_add_drain_cpu_zone(m, zone)
                last_migrated_pfn = 0
        ret = compact_finished(cc)
    # out: release free pages and move the free scanner's restart point back up.
    if cc.nr_freepages > 0:
        free_pfn = release_free_list(m, cc.freepages)
        cc.nr_freepages = 0
        if free_pfn == 0:
            raise ModelBug("VM_BUG_ON(free_pfn == 0) in compact_zone: nr_freepages > 0 but "
                           "the free lists were empty")
        free_pfn = pageblock_start_pfn(free_pfn)
        if free_pfn > zone.compact_cached_free_pfn:
            zone.compact_cached_free_pfn = free_pfn
    count_compact_events(m, vs.COMPACTMIGRATE_SCANNED, cc.total_migrate_scanned)
    count_compact_events(m, vs.COMPACTFREE_SCANNED, cc.total_free_scanned)
    _trace(m, "mm_compaction_end", zone_start=start_pfn, migrate_pfn=cc.migrate_pfn,
           free_pfn=cc.free_pfn, zone_end=end_pfn, sync=sync, status=int(ret))
    if any(not mem.list_empty(head) for head in cc.freepages):
        raise ModelBug("VM_BUG_ON(!list_empty(&cc->freepages[order])) in compact_zone")
    if not mem.list_empty(cc.migratepages):
        raise ModelBug("VM_BUG_ON(!list_empty(&cc->migratepages)) in compact_zone")
    return ret


# ================================================================================================
# direct compaction
# ================================================================================================


def compact_zone_order(zone: Zone, order: int, gfp_mask: int, prio: CompactPriority,
                       alloc_flags: int, highest_zoneidx: int) -> CompactResult:
    """Model of mm/compaction.c:compact_zone_order() (v6.x), one zone of direct compaction.

    ASYNC priority runs MIGRATE_ASYNC, the others MIGRATE_SYNC_LIGHT; the minimum priority
    (SYNC_FULL) also scans the whole zone and ignores skip hints and block suitability.
    Capture is not modelled.
    """
    minimum = prio == CompactPriority.MIN_COMPACT_PRIORITY
    cc = CompactControl(
        zone=zone, order=order, search_order=order, gfp_mask=gfp_mask,
        mode=(MigrateMode.MIGRATE_ASYNC if prio == CompactPriority.COMPACT_PRIO_ASYNC
              else MigrateMode.MIGRATE_SYNC_LIGHT),
        alloc_flags=alloc_flags, highest_zoneidx=highest_zoneidx, direct_compaction=True,
        whole_zone=minimum, ignore_skip_hint=minimum, ignore_block_suitable=minimum,
    )
    return compact_zone(cc, None)


def try_to_compact_pages(m: Machine, gfp_mask: int, order: int, alloc_flags: int,
                         ac: AllocContext, prio: CompactPriority) -> tuple[CompactResult, int]:
    """Model of mm/compaction.c:try_to_compact_pages() (v6.x), direct compaction's entry.

    Needs __GFP_IO. Per zone of the zonelist: skip (DEFERRED) where deferred, unless at the
    minimum priority; compact; stop at the first zone where the allocation should now
    succeed (and reset its deferral for the order); after a failed non-async run that went
    through the zone, defer it. Returns ``(max result over zones, captured page = -1)``.
    """
    rc = _SKIPPED
    if not gfp_mask & G.__GFP_IO:  # gfp_compaction_allowed()
        return rc, -1
    _trace(m, "mm_compaction_try_to_compact_pages", order=order, gfp_mask=gfp_mask,
           prio=int(prio))
    for zone in ac.zonelist:
        if zone.idx > ac.highest_zoneidx:
            continue
        if prio > CompactPriority.MIN_COMPACT_PRIORITY and compaction_deferred(zone, order):
            rc = max(_DEFERRED, rc)
            continue
        status = compact_zone_order(zone, order, gfp_mask, prio, alloc_flags,
                                    ac.highest_zoneidx)
        rc = max(status, rc)
        if status == _SUCCESS:
            # Probably succeeds here; the allocator confirms with alloc_success=True.
            compaction_defer_reset(zone, order, False)
            break
        if prio != CompactPriority.COMPACT_PRIO_ASYNC and status in (_COMPLETE,
                                                                       _PARTIAL_SKIPPED):
            defer_compaction(zone, order)
        if fatal_signal_pending(m):
            break
    return CompactResult(rc), -1


def __alloc_pages_direct_compact(m: Machine, gfp_mask: int, order: int, alloc_flags: int,
                                 ac: AllocContext,
                                 prio: CompactPriority) -> tuple[int, CompactResult | None]:
    """Model of mm/page_alloc.c:__alloc_pages_direct_compact() (v6.x).

    Kept beside compaction because the allocator reaches it through
    ``m.direct_compact_hook``. No-op for order 0. Runs :func:`try_to_compact_pages` with
    PF_MEMALLOC (``m.in_direct_compaction``); unless every zone was SKIPPED, counts a
    COMPACTSTALL and tries the free lists: success clears the zone's
    ``compact_blockskip_flush``, resets its deferral (``alloc_success``) and counts
    COMPACTSUCCESS, failure counts COMPACTFAIL. Returns ``(pfn or -1, compact_result)``.
    """
    if not order:
        return -1, None
    saved = m.in_direct_compaction
    m.in_direct_compaction = True
    try:
        compact_result, page = try_to_compact_pages(m, gfp_mask, order, alloc_flags, ac, prio)
    finally:
        m.in_direct_compaction = saved
    if compact_result == _SKIPPED:
        return -1, compact_result
    # At least in one zone compaction was not deferred or skipped: a stall.
    count_compact_event(m, vs.COMPACTSTALL)
    if page < 0:
        page = pa.get_page_from_freelist(m, gfp_mask, order, alloc_flags, ac)
    if page >= 0:
        zone = m.page_zone(page)
        zone.compact_blockskip_flush = False
        compaction_defer_reset(zone, order, True)
        count_compact_event(m, vs.COMPACTSUCCESS)
        return page, compact_result
    count_compact_event(m, vs.COMPACTFAIL)
    return -1, compact_result


def direct_compact_hook(m: Machine, gfp: int, order: int, alloc_flags: int, ac: AllocContext,
                        prio: str | int) -> int:
    """The allocator slow path's compaction hook: :func:`__alloc_pages_direct_compact`.

    ``prio`` is ``"async"`` (INIT_COMPACT_PRIORITY), ``"sync_light"`` (DEF), ``"sync_full"``
    (MIN) or a :class:`CompactPriority`. Returns the allocated pfn or -1.
    """
    if isinstance(prio, str):
        try:
            priority = _PRIO_NAMES[prio]
        except KeyError:
            raise InvalidArgument(f"unknown compaction priority {prio!r}; use one of "
                                  f"{', '.join(_PRIO_NAMES)}") from None
    else:
        priority = CompactPriority(prio)
    pfn, result = __alloc_pages_direct_compact(m, gfp, order, alloc_flags, ac, priority)
    m.last_compact_result = "" if result is None else result.name[8:].lower()
    return pfn


# ================================================================================================
# whole-node compaction: /proc/sys/vm/compact_memory, proactive compaction
# ================================================================================================


def compact_node(m: Machine, pgdat: PglistData, proactive: bool) -> int:
    """Model of mm/compaction.c:compact_node() (v6.10+).

    Compact every populated zone of the node: order -1, whole zone, skip hints ignored,
    GFP_KERNEL, ALLOC_CMA; MIGRATE_SYNC, or MIGRATE_SYNC_LIGHT with the proactive finish rule
    (which also counts the kcompactd scan counters). One ``cc`` serves all zones. Returns 0
    (-EINTR on a fatal signal, never in the model).
    """
    zones = [z for z in pgdat.node_zones if z.present_pages]
    if not zones:
        return 0
    cc = CompactControl(
        zone=zones[0], order=-1,
        mode=MigrateMode.MIGRATE_SYNC_LIGHT if proactive else MigrateMode.MIGRATE_SYNC,
        alloc_flags=ALLOC_CMA, ignore_skip_hint=True, whole_zone=True, gfp_mask=G.GFP_KERNEL,
        proactive_compaction=proactive,
    )
    for zone in zones:
        if fatal_signal_pending(m):
            return -EINTR
        cc.zone = zone
        compact_zone(cc, None)
        if proactive:
            count_compact_events(m, vs.KCOMPACTD_MIGRATE_SCANNED, cc.total_migrate_scanned)
            count_compact_events(m, vs.KCOMPACTD_FREE_SCANNED, cc.total_free_scanned)
    return 0


def proactive_compact_node(m: Machine, pgdat: PglistData) -> None:
    """Model of mm/compaction.c:proactive_compact_node() (v5.9..v6.9).

    Since v6.10 this is ``compact_node(pgdat, true)``: order -1, MIGRATE_SYNC_LIGHT, whole
    zones, stopping a zone when its fragmentation score is at or below the low mark.
    """
    compact_node(m, pgdat, True)


def compact_nodes(m: Machine) -> None:
    """Model of mm/compaction.c:compact_nodes() (v6.x): flush LRU batches, compact all nodes."""
    swap.lru_add_drain(m)  # lru_add_drain_all()
    for pgdat in m.nodes:
        compact_node(m, pgdat, False)


def sysctl_compaction_handler(m: Machine, value: int = 1) -> int:
    """Model of mm/compaction.c:sysctl_compaction_handler() (v6.x): a write to compact_memory.

    Only ``1`` is accepted (-EINVAL otherwise, v6.x; v4.8 took any value). Returns 0.
    """
    if value != 1:
        return -EINVAL
    compact_nodes(m)
    return 0


def compact_memory(m: Machine, reset_skip_hints: bool = False) -> int:
    """Compact all memory, as ``echo 1 > /proc/sys/vm/compact_memory`` (v6.x).

    Runs :func:`sysctl_compaction_handler`. Mainline keeps the pageblock skip hints across
    this (its runs ignore them, but the mainline scanners still set them, so later direct
    compaction and kcompactd see the result); v4.8's ``__compact_pgdat`` cleared each zone's
    hints first. ``reset_skip_hints=True`` clears every pageblock's hint and the cached
    scanner positions before compacting, as v4.8 did.
    """
    if reset_skip_hints:
        for zone in m.populated_zones():
            first = zone.zone_start_pfn >> pageblock_order
            last = (zone.zone_end_pfn - 1) >> pageblock_order
            m.pageblock_flags[first:last + 1] &= np.uint8(~PB_SKIP_BIT & 0xFF)
            reset_cached_positions(zone)
    return sysctl_compaction_handler(m, 1)


def compaction_proactiveness_sysctl_handler(m: Machine, value: int) -> int:
    """Model of mm/compaction.c:compaction_proactiveness_sysctl_handler() (v6.x).

    Sets ``vm.compaction_proactiveness`` (0..100); a non-zero write asks every node's
    kcompactd for an immediate proactive run (``proactive_compact_trigger``).
    """
    if not 0 <= value <= 100:
        return -EINVAL
    m.compaction_proactiveness = value
    if value:
        for pgdat in m.nodes:
            if pgdat.proactive_compact_trigger:
                continue
            pgdat.proactive_compact_trigger = True
            _trace(m, "mm_compaction_wakeup_kcompactd", nid=pgdat.node_id, order=-1,
                   highest_zoneidx=pgdat.nr_zones - 1)
            pgdat.kcompactd_woken = True
    return 0


# ================================================================================================
# kcompactd
# ================================================================================================


_KCOMPACTD_ALLOC_FLAGS = ALLOC_CMA | ALLOC_WMARK_MIN


def kcompactd_work_requested(pgdat: PglistData) -> bool:
    """Model of mm/compaction.c:kcompactd_work_requested() (v6.x)."""
    return pgdat.kcompactd_max_order > 0 or pgdat.proactive_compact_trigger


def kcompactd_node_suitable(m: Machine, pgdat: PglistData) -> bool:
    """Model of mm/compaction.c:kcompactd_node_suitable() (v6.15+).

    Is there a zone up to ``kcompactd_highest_zoneidx`` where the requested order does not
    yet succeed at the min watermark and compaction is suitable?
    """
    highest_zoneidx = pgdat.kcompactd_highest_zoneidx
    for zone in pgdat.node_zones[:highest_zoneidx + 1]:
        if not zone.present_pages:
            continue
        ret = compaction_suit_allocation_order(zone, pgdat.kcompactd_max_order, highest_zoneidx,
                                               _KCOMPACTD_ALLOC_FLAGS, False, True)
        if ret == _CONTINUE:
            return True
    return False


def kcompactd_do_work(m: Machine, pgdat: PglistData) -> None:
    """Model of mm/compaction.c:kcompactd_do_work() (v6.15+).

    Background compaction for ``kcompactd_max_order``: MIGRATE_SYNC_LIGHT, GFP_KERNEL (so
    the finish test looks at UNMOVABLE lists), skip hints honoured (ignored before v5.1:
    ``profile.compaction_fast_search`` False), min watermark. Per zone:
    skip deferred or unsuitable zones; compact; SUCCESS resets the deferral, COMPLETE or
    PARTIAL_SKIPPED drains all pcps of the zone and defers. Counts KCOMPACTD_WAKE and the
    kcompactd scan counters; traces ``mm_compaction_kcompactd_wake``.
    """
    zones = [z for z in pgdat.node_zones if z.present_pages]
    if not zones:
        return
    cc = CompactControl(
        zone=zones[0], order=pgdat.kcompactd_max_order, search_order=pgdat.kcompactd_max_order,
        highest_zoneidx=pgdat.kcompactd_highest_zoneidx, mode=MigrateMode.MIGRATE_SYNC_LIGHT,
        alloc_flags=_KCOMPACTD_ALLOC_FLAGS, gfp_mask=G.GFP_KERNEL,
        # v4.8's kcompactd ignored skip hints; honoured since v5.1.
        ignore_skip_hint=not m.profile.compaction_fast_search,
    )
    _trace(m, "mm_compaction_kcompactd_wake", nid=pgdat.node_id, order=cc.order,
           highest_zoneidx=cc.highest_zoneidx)
    count_compact_event(m, vs.KCOMPACTD_WAKE)
    for zoneid in range(cc.highest_zoneidx + 1):
        zone = pgdat.node_zones[zoneid]
        if not zone.present_pages:
            continue
        if compaction_deferred(zone, cc.order):
            continue
        ret = compaction_suit_allocation_order(zone, cc.order, zoneid, cc.alloc_flags,
                                               False, True)
        if ret != _CONTINUE:
            continue
        cc.zone = zone
        status = compact_zone(cc, None)
        if status == _SUCCESS:
            compaction_defer_reset(zone, cc.order, False)
        elif status in (_PARTIAL_SKIPPED, _COMPLETE):
            # Buddy pages stranded on pcps could otherwise not coalesce.
            pa.drain_all_pages(m, zone)
            defer_compaction(zone, cc.order)
        count_compact_events(m, vs.KCOMPACTD_MIGRATE_SCANNED, cc.total_migrate_scanned)
        count_compact_events(m, vs.KCOMPACTD_FREE_SCANNED, cc.total_free_scanned)
    # Done until woken again, but keep a request that was larger or tighter than this one.
    if pgdat.kcompactd_max_order <= cc.order:
        pgdat.kcompactd_max_order = 0
    if pgdat.kcompactd_highest_zoneidx >= cc.highest_zoneidx:
        pgdat.kcompactd_highest_zoneidx = pgdat.nr_zones - 1


def wakeup_kcompactd(m: Machine, pgdat: PglistData, order: int, highest_zoneidx: int) -> None:
    """Model of mm/compaction.c:wakeup_kcompactd() (v6.x).

    Record the request (raise ``kcompactd_max_order``, lower ``kcompactd_highest_zoneidx``);
    wake the daemon only if some zone is suitable. The model's kcompactd is always asleep
    between runs; a wake-up sets ``pgdat.kcompactd_woken`` for the machine to call
    :func:`kcompactd_run`. Traces ``mm_compaction_wakeup_kcompactd``.
    """
    if not order:
        return
    if pgdat.kcompactd_max_order < order:
        pgdat.kcompactd_max_order = order
    if pgdat.kcompactd_highest_zoneidx > highest_zoneidx:
        pgdat.kcompactd_highest_zoneidx = highest_zoneidx
    if not kcompactd_node_suitable(m, pgdat):
        return
    _trace(m, "mm_compaction_wakeup_kcompactd", nid=pgdat.node_id, order=order,
           highest_zoneidx=highest_zoneidx)
    pgdat.kcompactd_woken = True


def kcompactd_run(m: Machine, nid: int) -> int | None:
    """Model of one iteration of mm/compaction.c:kcompactd() (v6.x), the daemon's loop.

    Runs what the thread does when it wakes: requested work (``kcompactd_do_work``) if there
    is any and no proactive trigger; otherwise (a timeout, or a proactiveness write)
    proactive compaction if the node's fragmentation score is above the high mark. Then it
    goes back to sleep (``mm_compaction_kcompactd_sleep``). Returns the sleep timeout in ms
    (500, or ``500 << 6`` after a proactive run that did not lower the score), or None when
    proactiveness is 0 and the daemon sleeps until woken. (The kernel's ``kcompactd_run()``
    starts the thread; the model has no threads, so the name runs one iteration.)
    """
    if not 0 <= nid < len(m.nodes):
        raise InvalidArgument(f"node {nid} does not exist; this machine has nodes "
                              f"0..{len(m.nodes) - 1}")
    pgdat = m.nodes[nid]
    pgdat.kcompactd_woken = False
    timeout: int | None = HPAGE_FRAG_CHECK_INTERVAL_MSEC
    if kcompactd_work_requested(pgdat) and not pgdat.proactive_compact_trigger:
        kcompactd_do_work(m, pgdat)
    else:
        if should_proactive_compact_node(m, pgdat):
            prev_score = fragmentation_score_node(pgdat)
            compact_node(m, pgdat, True)
            score = fragmentation_score_node(pgdat)
            # Defer proactive compaction if the score did not go down.
            if score >= prev_score:
                timeout = HPAGE_FRAG_CHECK_INTERVAL_MSEC << COMPACT_MAX_DEFER_SHIFT
        if pgdat.proactive_compact_trigger:
            pgdat.proactive_compact_trigger = False
    if not m.compaction_proactiveness:
        timeout = None
    _trace(m, "mm_compaction_kcompactd_sleep", nid=nid)
    return timeout


