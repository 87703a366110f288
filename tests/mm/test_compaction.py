"""Tests for pagelab.mm.compaction: the kernel-reference §12 checklist and the §4 rules.

Machines are small (512 MiB) and fragmented the way the compaction selftest does it: a process
faults in anonymous pages and unmaps every other one. Trace events are recorded with a plain
list sink, and every run ends with ``check_state()`` and the owners' token checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from pagelab import Machine
from pagelab.mm import compaction as C
from pagelab.mm import gfp as G
from pagelab.mm import migrate as mg
from pagelab.mm import page_alloc as pa
from pagelab.mm import page_flags as pf
from pagelab.mm import swap
from pagelab.mm import vmstat as vs
from pagelab.mm.compaction import CompactControl, CompactPriority, CompactResult
from pagelab.mm.filemap import get_page, trylock_page, unlock_page
from pagelab.mm.internal import ALLOC_CMA, ALLOC_WMARK_MIN
from pagelab.mm.memory import MmStruct
from pagelab.mm.migrate import MigrateMode
from pagelab.mm.mmzone import (
    MIGRATE_MOVABLE,
    MIGRATE_UNMOVABLE,
    PB_SKIP_BIT,
    Zone,
    ZoneType,
    pageblock_nr_pages,
    pageblock_order,
)
from pagelab.mm.rmap import AddressSpace

ASYNC, SYNC_LIGHT, SYNC = (MigrateMode.MIGRATE_ASYNC, MigrateMode.MIGRATE_SYNC_LIGHT,
                           MigrateMode.MIGRATE_SYNC)


class Sink:
    """Records trace events as ``(name, fields)``."""

    def __init__(self, on_event: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.on_event = on_event

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))
        if self.on_event is not None:
            self.on_event(event, fields)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [f for e, f in self.events if e == name]


class Toy:
    """A non-LRU movable driver (the seed's three callbacks) that keeps its pages' tokens."""

    def __init__(self, m: Machine) -> None:
        self.m = m
        self.mapping = AddressSpace(m, "toy", a_ops=self)
        self.pages: set[int] = set()
        self.isolated: set[int] = set()
        self.tokens: dict[int, int] = {}
        self.isolate_calls = 0
        self.migrate_calls = 0

    def alloc(self) -> int:
        m = self.m
        pfn = m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE, 0, 0)
        assert pfn >= 0 and trylock_page(m, pfn)
        mg.SetPageMovable(m, pfn, self.mapping)
        unlock_page(m, pfn)
        self.tokens[pfn] = m.mem.token_mv[pfn] = m.new_token()
        self.pages.add(pfn)
        return pfn

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        self.isolate_calls += 1
        self.pages.discard(page)
        self.isolated.add(page)
        return True

    def migratepage(self, m: Machine, mapping: AddressSpace, newpage: int, page: int,
                    mode: MigrateMode) -> int:
        self.migrate_calls += 1
        m.mem.token_mv[newpage] = m.mem.token_mv[page]
        mg.SetPageMovable(m, newpage, mapping)
        get_page(m, newpage)
        self.isolated.discard(page)
        self.pages.add(newpage)
        self.tokens[newpage] = self.tokens.pop(page)
        mg.ClearPageMovable(m, page)
        swap.put_page(m, page)
        return mg.MIGRATEPAGE_SUCCESS

    def putback_page(self, m: Machine, page: int) -> None:
        self.isolated.discard(page)
        self.pages.add(page)

    def verify(self) -> list[str]:
        mem = self.m.mem
        return [f"toy page {p:#x} lost its token" for p in self.pages
                if mem.token_mv[p] != self.tokens[p]]


def fragmented(memory: str = "256M", pages: int = 30000, profile: str = "mainline",
               ) -> tuple[Machine, MmStruct, np.ndarray]:
    """A machine where a process faulted ``pages`` anon pages and unmapped every other one."""
    m = Machine.build(memory=memory, profile=profile)
    p = m.spawn("app")
    pfns = p.touch(pages)
    p.unmap(pfns[1::2])
    return m, p, pfns[::2]


def free_blocks(m: Machine, order: int = pageblock_order) -> int:
    """Free blocks of ``order`` the buddy lists could hand out (larger blocks count double)."""
    return sum(z.nr_free[o] << (o - order) for z in m.zones for o in range(order, 11))


def dma32(m: Machine) -> Zone:
    return m.nodes[0].node_zones[ZoneType.ZONE_DMA32]


def isolated_pages(m: Machine) -> int:
    return sum(n.vm_stat[vs.NR_ISOLATED_ANON] + n.vm_stat[vs.NR_ISOLATED_FILE] for n in m.nodes)


def clean(m: Machine, *owners: Any) -> None:
    """The model is consistent and every owner's data survived."""
    m.check_state()
    for owner in owners:
        assert owner.verify() == []
    assert isolated_pages(m) == 0
    assert m.held_chunks == {}


def exhaust_free_blocks(m: Machine, order: int = pageblock_order) -> list[int]:
    """Allocate every free block of ``order`` (without compacting) and return them."""
    got = []
    while True:
        pfn = pa.alloc_pages_node(m, 0, G.GFP_NOWAIT | G.__GFP_COMP, order)
        if pfn < 0:
            # Blocks may wait on the per-CPU lists (order-9 refills take two).
            m.drain_all_pages()
            pfn = pa.alloc_pages_node(m, 0, G.GFP_NOWAIT | G.__GFP_COMP, order)
            if pfn < 0:
                return got
        got.append(pfn)


def block_runs(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split a zone run's events at each mm_compaction_begin."""
    run: list[dict[str, Any]] = []
    for f in events:
        if "zone_start" in f and "status" not in f:
            if run:
                yield run
            run = []
        run.append(f)
    if run:
        yield run


# ================================================================================================
# §12.1 scanner directions and meeting; §12.2 at most 32 pages per round
# ================================================================================================


def test_compact_memory_scanners_walk_towards_each_other_and_meet() -> None:
    m, p, _ = fragmented()
    sink = m.trace = Sink()
    m.compact_memory()
    begins = sink.of("mm_compaction_begin")
    ends = sink.of("mm_compaction_end")
    assert len(begins) == len(ends) == len(m.populated_zones())
    for end in ends:
        assert end["status"] == CompactResult.COMPACT_COMPLETE
        assert end["free_pfn"] >> pageblock_order <= end["migrate_pfn"] >> pageblock_order
    # Within the DMA32 run: the migration scanner only moves up, the free scanner only down
    # (block by block), and the free scanner stays above the migration scanner.
    zone = dma32(m)
    in_zone = [(e, f) for e, f in sink.events
               if e in ("mm_compaction_isolate_migratepages", "mm_compaction_isolate_freepages")
               and zone.zone_start_pfn <= f["start_pfn"] < zone.zone_end_pfn]
    migrate_starts = [f["start_pfn"] for e, f in in_zone
                      if e == "mm_compaction_isolate_migratepages"]
    free_blocks_seen = [f["start_pfn"] >> pageblock_order for e, f in in_zone
                        if e == "mm_compaction_isolate_freepages"]
    assert migrate_starts == sorted(migrate_starts)
    assert free_blocks_seen == sorted(free_blocks_seen, reverse=True)
    low_free = min(free_blocks_seen)
    assert max(migrate_starts) >> pageblock_order <= low_free
    clean(m, p)


def test_at_most_32_pages_isolated_per_round() -> None:
    """v4.8's rule, kept by mainline for a round that starts a pageblock; mainline's next
    round in a block it already migrated from finishes the block (``finish_pageblock``), as
    the real 6.18 trace in tests/fixtures/live shows (32, then 366 in the same block)."""
    m, p, _ = fragmented()
    sink = m.trace = Sink()
    m.compact_memory()
    rounds = sink.of("mm_compaction_isolate_migratepages")
    taken = [f["nr_taken"] for f in rounds]
    assert C.COMPACT_CLUSTER_MAX in taken
    previous_end = -1
    for f in rounds:
        continuing = (f["start_pfn"] == previous_end
                      and f["start_pfn"] & (pageblock_nr_pages - 1) != 0)
        if not continuing:
            assert f["nr_taken"] <= C.COMPACT_CLUSTER_MAX
        elif f["nr_taken"] > C.COMPACT_CLUSTER_MAX:
            assert f["end_pfn"] & (pageblock_nr_pages - 1) == 0  # finished the block
        previous_end = f["end_pfn"]
    assert max(taken) > C.COMPACT_CLUSTER_MAX
    batches = sink.of("mm_compaction_migratepages")
    assert sum(f["nr_migrated"] for f in batches) == m.vmstat["pgmigrate_success"]
    clean(m, p)


def test_dma_zone_run_matches_the_real_kernel_trace() -> None:
    """compact_memory's DMA-zone run on a 24 GiB machine, as Linux 6.18 traced it."""
    import re
    from pathlib import Path

    fixture = Path(__file__).parents[1] / "fixtures" / "live" / "compaction-trace.txt"
    if not fixture.exists():
        pytest.skip("no live compaction trace fixture")
    real = []
    for line in fixture.read_text().splitlines():
        match = re.search(r"(mm_compaction_\w+): (.*)$", line)
        if match:
            real.append((match.group(1), match.group(2)))
            if match.group(1) == "mm_compaction_end":
                break
    m = Machine.build(memory="24G")
    sink = m.trace = Sink()
    zone = m.nodes[0].node_zones[ZoneType.ZONE_DMA]
    cc = CompactControl(zone=zone, order=-1, mode=SYNC, ignore_skip_hint=True, whole_zone=True,
                        gfp_mask=G.GFP_KERNEL, alloc_flags=ALLOC_CMA)
    C.compact_zone(cc)
    ftrace = pytest.importorskip("pagelab.io.ftrace")
    model = [(e, ftrace.format_event(e, f)) for e, f in sink.events]
    assert model == real


# ================================================================================================
# compact_memory: more free pageblocks, nothing lost; counters; the sysctl
# ================================================================================================


def test_compact_memory_makes_huge_pages_and_keeps_every_token() -> None:
    m, p, _ = fragmented()
    before = free_blocks(m)
    v0 = m.vmstat
    m.compact_memory()
    v1 = m.vmstat
    assert free_blocks(m) > before
    migrated = v1["pgmigrate_success"] - v0["pgmigrate_success"]
    assert migrated > 2000
    # Every migrated page was isolated once as a source and taken once as a target.
    assert v1["compact_isolated"] - v0["compact_isolated"] >= 2 * migrated
    assert v1["compact_migrate_scanned"] > 0 and v1["compact_free_scanned"] > 0
    # Not direct compaction, not kcompactd.
    for item in ("compact_stall", "compact_success", "compact_fail", "compact_daemon_wake",
                 "compact_daemon_migrate_scanned", "compact_daemon_free_scanned"):
        assert v1[item] == v0[item]
    clean(m, p)


def test_sysctl_compact_memory_accepts_only_1() -> None:
    m, p, _ = fragmented(pages=8000)
    v0 = m.vmstat["compact_migrate_scanned"]
    assert C.sysctl_compaction_handler(m, 2) == -C.EINVAL
    assert m.vmstat["compact_migrate_scanned"] == v0
    assert C.sysctl_compaction_handler(m, 1) == 0
    assert m.vmstat["compact_migrate_scanned"] > v0
    clean(m, p)


def test_trace_fields_are_the_kernels() -> None:
    ftrace = pytest.importorskip("pagelab.io.ftrace")
    m, _p, _ = fragmented(pages=20000)
    sink = m.trace = Sink()
    m.compact_memory()
    exhaust_free_blocks(m)
    m.alloc_pages(order=9, gfp="GFP_HIGHUSER_MOVABLE|__GFP_COMP")
    C.defer_compaction(dma32(m), 9)
    C.compaction_deferred(dma32(m), 9)
    C.compaction_defer_reset(dma32(m), 9, True)
    names = {e for e, _ in sink.events}
    assert {"mm_compaction_begin", "mm_compaction_end", "mm_compaction_isolate_migratepages",
            "mm_compaction_isolate_freepages", "mm_compaction_migratepages",
            "mm_compaction_finished", "mm_compaction_suitable",
            "mm_compaction_try_to_compact_pages", "mm_compaction_defer_reset",
            "mm_compaction_defer_compaction", "mm_compaction_deferred"} <= names
    for event, fields in sink.events:
        if event.startswith("mm_compaction"):
            assert set(fields) == set(ftrace.EVENT_FIELDS[event]), event
            ftrace.format_event(event, fields)


def test_held_free_chunks_are_accounted_while_compaction_runs() -> None:
    m, p, _ = fragmented(memory="256M", pages=24000)
    checks = []

    def on_event(event: str, fields: dict[str, Any]) -> None:
        if event == "mm_compaction_migratepages" and len(checks) < 3:
            m.check_state()  # cc->freepages may hold chunks here
            checks.append(len(m.held_chunks))

    m.trace = Sink(on_event)
    m.compact_memory()
    assert len(checks) == 3 and any(checks)
    clean(m, p)


# ================================================================================================
# §12.3 the per-pfn checks: pinned pages, compound pages, non-LRU movable pages
# ================================================================================================


def test_pinned_pages_are_not_migrated() -> None:
    m, p, kept = fragmented()
    pinned = kept[::7]
    p.pin(pinned)
    vpns = {int(pfn): vpn for vpn, pfn in enumerate(p.pte[: p.next_vpn]) if pfn >= 0}
    pinned_vpns = [vpns[int(pfn)] for pfn in pinned]
    m.compact_memory()
    assert m.vmstat["pgmigrate_success"] > 0
    assert [int(p.pte[v]) for v in pinned_vpns] == [int(x) for x in pinned]
    p.unpin(pinned)
    clean(m, p)


def test_thp_and_compound_pages_are_skipped() -> None:
    m, p, _ = fragmented()
    # A THP-sized LRU folio and a small kernel compound page in movable memory.
    thp = m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE | G.__GFP_COMP, pageblock_order, 0)
    assert thp >= 0
    m.mem.flags_mv[thp] = m.mem.flags_mv[thp] | 1 << pf.PG_swapbacked
    swap.folio_add_lru(m, thp)
    small = m.alloc_page_raw(G.GFP_KERNEL | G.__GFP_COMP, 2, 0)
    assert small >= 0
    assert C.pageblock_skip_persistent(m, thp + 100)
    assert not C.pageblock_skip_persistent(m, small)
    sink = m.trace = Sink()
    m.compact_memory()
    mem = m.mem
    assert pf.PageLRU(mem, thp) and mem.refcount_mv[thp] == 1
    assert pf.PageHead(mem, small) and mem.refcount_mv[small] == 1
    # The THP's block is never a migration source.
    thp_block = thp >> pageblock_order
    assert all(f["start_pfn"] >> pageblock_order != thp_block
               for f in sink.of("mm_compaction_isolate_migratepages"))
    clean(m, p)


def test_skip_isolation_on_order() -> None:
    # compact_memory (order -1) only skips folios of pageblock order or more; a direct
    # compactor also skips folios as large as its request.
    assert not C.skip_isolation_on_order(2, -1)
    assert C.skip_isolation_on_order(9, -1)
    assert C.skip_isolation_on_order(3, 3)
    assert not C.skip_isolation_on_order(2, 3)


def test_non_lru_movable_pages_are_migrated_through_the_driver() -> None:
    m = Machine.build(memory="512M")
    p = m.spawn("app")
    toy = Toy(m)
    anon = []
    for _ in range(4000):  # interleave driver pages with anon pages
        anon.extend(p.touch(4).tolist())
        toy.alloc()
    p.unmap(anon[1::2])
    toy_before = set(toy.pages)
    m.compact_memory()
    assert toy.isolate_calls > 0 and toy.migrate_calls > 0
    assert toy.pages != toy_before and len(toy.pages) == len(toy_before)
    assert not toy.isolated
    clean(m, p, toy)


def test_pre_4_8_never_isolates_driver_pages() -> None:
    m = Machine.build(memory="512M", profile="pre-4.8")
    p = m.spawn("app")
    toy = Toy(m)
    anon = []
    for _ in range(2000):
        anon.extend(p.touch(4).tolist())
        toy.alloc()
    p.unmap(anon[1::2])
    m.compact_memory()
    assert m.vmstat["pgmigrate_success"] > 0
    assert toy.isolate_calls == 0
    clean(m, p, toy)


@pytest.mark.parametrize("profile,expected", [("mainline", 0), ("v4.8", 1)])
def test_nr_isolated_counts_non_lru_pages_only_in_v48(profile: str, expected: int) -> None:
    m = Machine.build(memory="256M", profile=profile)
    toy = Toy(m)
    pages = [toy.alloc() for _ in range(8)]
    block = pages[0] & ~(pageblock_nr_pages - 1)
    zone = m.page_zone(pages[0])
    node = m.nodes[zone.node].vm_stat
    cc = CompactControl(zone=zone, order=-1, mode=SYNC, gfp_mask=G.GFP_KERNEL,
                        ignore_skip_hint=True)
    cc.migratepages = m.alloc_list_head()
    in_block = [pfn for pfn in pages if pfn >> pageblock_order == block >> pageblock_order]
    assert C.isolate_migratepages_block(cc, block, block + pageblock_nr_pages, 0) == 0
    assert cc.nr_migratepages == len(in_block)
    assert node[vs.NR_ISOLATED_FILE] == expected * len(in_block)
    mg.putback_movable_pages(m, cc.migratepages)
    m.release_list_head(cc.migratepages)
    assert node[vs.NR_ISOLATED_FILE] == 0
    clean(m, toy)


@pytest.mark.parametrize("profile,balloon_compaction,called", [
    ("pre-4.8", True, True), ("pre-4.8", False, False), ("mainline", True, False)])
def test_balloon_hook_comes_before_the_compound_check(profile: str, balloon_compaction: bool,
                                                       called: bool) -> None:
    from pagelab.profile import resolve_profile

    m = Machine(Machine.build(memory="256M").ranges,
                profile=resolve_profile(profile, balloon_compaction=balloon_compaction))
    calls: list[int] = []

    def hook(m_: Machine, pfn: int, mode: int) -> bool:
        calls.append(pfn)
        return False

    m.balloon_isolate_hook = hook
    small = m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE | G.__GFP_COMP, 2, 0)
    block = small & ~(pageblock_nr_pages - 1)
    zone = m.page_zone(small)
    cc = CompactControl(zone=zone, order=2, mode=SYNC, gfp_mask=G.GFP_KERNEL,
                        direct_compaction=True, ignore_skip_hint=True)
    cc.migratepages = m.alloc_list_head()
    C.isolate_migratepages_block(cc, block, block + pageblock_nr_pages, 0)
    m.release_list_head(cc.migratepages)
    # The head of an order-2 compound page (skipped for an order-2 request) reached the hook.
    assert (small in calls) is called
    if not called:
        assert calls == []


# ================================================================================================
# §12.4 async direct compaction: MOVABLE/CMA sources only; targets MOVABLE/CMA always
# ================================================================================================


def make_unmovable_block(m: Machine, pfn: int) -> int:
    zone = m.page_zone(pfn)
    start = pfn & ~(pageblock_nr_pages - 1)
    assert pa.move_freepages_block(zone, start, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE) >= 0
    return start


def test_async_direct_compaction_only_takes_movable_sources() -> None:
    m, p, kept = fragmented()
    zone = dma32(m)
    # The lowest anon block of the zone becomes UNMOVABLE.
    low = make_unmovable_block(m, int(kept.min()))
    cc = CompactControl(zone=zone, mode=ASYNC, direct_compaction=True, order=9,
                        migratetype=MIGRATE_MOVABLE)
    assert not C.suitable_migration_source(cc, low)
    assert C.suitable_migration_source(cc, low + pageblock_nr_pages)
    cc.migratetype = MIGRATE_UNMOVABLE
    assert C.suitable_migration_source(cc, low)
    for mode, direct in ((SYNC_LIGHT, True), (ASYNC, False)):
        assert C.suitable_migration_source(
            CompactControl(zone=zone, mode=mode, direct_compaction=direct,
                           migratetype=MIGRATE_MOVABLE), low)
    # Targets are MOVABLE blocks only, whatever the mode.
    assert not C.suitable_migration_target(cc, low)
    sink = m.trace = Sink()
    exhaust_free_blocks(m)
    status = C.compact_zone_order(zone, 9, G.GFP_HIGHUSER_MOVABLE,
                                  CompactPriority.COMPACT_PRIO_ASYNC,
                                  ALLOC_WMARK_MIN | ALLOC_CMA, ZoneType.ZONE_NORMAL)
    assert status == CompactResult.COMPACT_SUCCESS
    migrate_blocks = {f["start_pfn"] >> pageblock_order
                      for f in sink.of("mm_compaction_isolate_migratepages")}
    free_blocks_seen = {f["start_pfn"] >> pageblock_order
                        for f in sink.of("mm_compaction_isolate_freepages")}
    assert migrate_blocks and low >> pageblock_order not in migrate_blocks
    assert low >> pageblock_order not in free_blocks_seen
    # A sync compactor does take it.
    sink.events.clear()
    cc = CompactControl(zone=zone, order=-1, mode=SYNC, gfp_mask=G.GFP_KERNEL,
                        ignore_skip_hint=True, whole_zone=True, alloc_flags=ALLOC_CMA)
    C.compact_zone(cc)
    assert low >> pageblock_order in {f["start_pfn"] >> pageblock_order
                                      for f in sink.of("mm_compaction_isolate_migratepages")}
    clean(m, p)


# ================================================================================================
# §12.1/§4.10 skip hints: set, honoured, reset
# ================================================================================================


def skipped_blocks(m: Machine, zone: Zone) -> set[int]:
    first = zone.zone_start_pfn >> pageblock_order
    last = (zone.zone_end_pfn - 1) >> pageblock_order
    bits = m.pageblock_flags[first:last + 1] & PB_SKIP_BIT
    return {first + int(i) for i in np.flatnonzero(bits)}


def test_skip_hints_are_set_honoured_and_reset() -> None:
    m, p, _kept = fragmented()
    zone = dma32(m)
    assert not skipped_blocks(m, zone)
    # A kcompactd-style run (skip hints honoured): the first LRU isolation in a block marks
    # it (test_and_set_skip), and so does a block scanned without finding anything.
    cc = CompactControl(zone=zone, order=9, search_order=9, mode=SYNC_LIGHT,
                        gfp_mask=G.GFP_KERNEL, alloc_flags=ALLOC_CMA | ALLOC_WMARK_MIN,
                        highest_zoneidx=ZoneType.ZONE_DMA32)
    exhaust_free_blocks(m)
    sink = m.trace = Sink()
    C.compact_zone(cc)
    marked = skipped_blocks(m, zone)
    scanned = {f["start_pfn"] >> pageblock_order
               for f in sink.of("mm_compaction_isolate_migratepages")}
    assert marked and scanned <= marked | {max(scanned)}
    # Honoured: a second run from the zone start does not scan marked blocks again.
    zone.compact_cached_migrate_pfn[:] = [zone.zone_start_pfn] * 2
    sink.events.clear()
    cc2 = CompactControl(zone=zone, order=-1, mode=SYNC_LIGHT, gfp_mask=G.GFP_KERNEL,
                         alloc_flags=ALLOC_CMA)
    C.compact_zone(cc2)
    rescanned = [f for f in sink.of("mm_compaction_isolate_migratepages")
                 if f["start_pfn"] >> pageblock_order in marked
                 and not f["start_pfn"] & (pageblock_nr_pages - 1)]
    assert rescanned == []
    # Reset: only after a direct compactor's scanners met (compact_blockskip_flush), and
    # only for blocks that sample as a source (LRU) or target (free page).
    zone.compact_blockskip_flush = False
    unflushed = skipped_blocks(m, zone)
    C.reset_isolation_suitable(m, m.nodes[0])
    assert skipped_blocks(m, zone) == unflushed
    zone.compact_blockskip_flush = True
    before = skipped_blocks(m, zone)
    C.reset_isolation_suitable(m, m.nodes[0])
    after = skipped_blocks(m, zone)
    assert after < before and not zone.compact_blockskip_flush
    # Cleared blocks showed an LRU or a free page among every 8th page; blocks with neither
    # anywhere keep the hint.
    mem = m.mem
    for block in before:
        start = block << pageblock_order
        samples = np.arange(start, start + pageblock_nr_pages, 8)
        lru = (mem.flags[samples] & np.uint64(1 << pf.PG_lru)) != 0
        buddy = ((mem.mapcount[samples] >> 24) & 0xFF) == pf.PGTY_buddy
        if block not in after:
            assert (lru | buddy).any()
        every = np.arange(start, start + pageblock_nr_pages)
        if not ((mem.flags[every] & np.uint64(1 << pf.PG_lru)) != 0).any() and not (
                ((mem.mapcount[every] >> 24) & 0xFF) == pf.PGTY_buddy).any():
            assert block in after
    clean(m, p)


def test_compact_memory_can_reset_skip_hints_first() -> None:
    m, p, _ = fragmented(pages=8000)
    zone = dma32(m)
    m.pageblock_flags[zone.zone_start_pfn >> pageblock_order:] |= np.uint8(PB_SKIP_BIT)
    C.compact_memory(m, reset_skip_hints=True)
    assert len(skipped_blocks(m, zone)) < zone.spanned_pages >> pageblock_order
    clean(m, p)


# ================================================================================================
# §4.11 deferral arithmetic
# ================================================================================================


def test_deferral_arithmetic() -> None:
    m = Machine.build(memory="256M")
    zone = dma32(m)
    assert not C.compaction_deferred(zone, 9)  # never failed: order_failed is 0
    # Failing at order 9 defers orders >= 9: after k failures, 2**k - 1 attempts are skipped.
    for k in range(1, 8):
        C.defer_compaction(zone, 9)
        shift = min(k, C.COMPACT_MAX_DEFER_SHIFT)
        assert zone.compact_defer_shift == shift and zone.compact_order_failed <= 9
        skipped = 0
        while C.compaction_deferred(zone, 9):
            skipped += 1
        assert skipped == (1 << shift) - 1
        assert zone.compact_considered == 1 << shift
    assert C.compaction_restarting(zone, 9)
    assert not C.compaction_restarting(zone, zone.compact_order_failed - 1)
    # Lower orders are not deferred.
    zone.compact_order_failed = 9
    zone.compact_considered = 0
    assert not C.compaction_deferred(zone, 8)
    # Success estimates raise order_failed; real success also clears the backoff.
    C.compaction_defer_reset(zone, 9, False)
    assert zone.compact_order_failed == 10 and zone.compact_defer_shift == 6
    C.compaction_defer_reset(zone, 9, True)
    assert zone.compact_defer_shift == 0 and zone.compact_considered == 0
    assert not C.compaction_deferred(zone, 9)


# ================================================================================================
# §4.3/§4.15 compaction_suitable and the order of its checks
# ================================================================================================


def test_compaction_suitable_order_of_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    m, _p, _ = fragmented()
    exhaust_free_blocks(m)
    zone = dma32(m)
    sink = m.trace = Sink()
    wmark = zone.min_wmark_pages()
    frag = {"value": 900}
    calls: list[int] = []

    def fragmentation_index(nr_free: Any, order: int) -> int:
        calls.append(order)
        return frag["value"]

    monkeypatch.setattr(C.vs, "fragmentation_index", fragmentation_index)
    # 1. enough order-0 memory + fragmentation → CONTINUE
    assert C.compaction_suitable(zone, 9, wmark, ZoneType.ZONE_NORMAL)
    # 2. fragmentation index at or below vm.extfrag_threshold → NOT_SUITABLE_ZONE (raw)
    frag["value"] = 500
    assert not C.compaction_suitable(zone, 9, wmark, ZoneType.ZONE_NORMAL)
    frag["value"] = -1000
    assert C.compaction_suitable(zone, 9, wmark, ZoneType.ZONE_NORMAL)
    # 3. the index is not consulted for non-costly orders
    calls.clear()
    frag["value"] = 0
    assert C.compaction_suitable(zone, 3, wmark, ZoneType.ZONE_NORMAL)
    assert calls == []
    # 4. the order-0 watermark comes first: failing it is SKIPPED, index not consulted
    calls.clear()
    free = zone.vm_stat[vs.NR_FREE_PAGES]
    assert not C.compaction_suitable(zone, 9, free, ZoneType.ZONE_NORMAL)
    assert calls == []
    rets = [f["ret"] for f in sink.of("mm_compaction_suitable")]
    assert rets == [CompactResult.COMPACT_CONTINUE, CompactResult.COMPACT_NOT_SUITABLE_ZONE,
                    CompactResult.COMPACT_CONTINUE, CompactResult.COMPACT_CONTINUE,
                    CompactResult.COMPACT_SKIPPED]
    # The allocation check comes before all of that.
    frag["value"] = 900
    assert (C.compaction_suit_allocation_order(zone, 9, ZoneType.ZONE_NORMAL, ALLOC_WMARK_MIN,
                                               False, False) == CompactResult.COMPACT_CONTINUE)
    fresh = Machine.build(memory="256M")
    assert (C.compaction_suit_allocation_order(dma32(fresh), 9, ZoneType.ZONE_NORMAL,
                                               ALLOC_WMARK_MIN, False, False)
            == CompactResult.COMPACT_SUCCESS)
    # compact_zone() returns that verdict without scanning.
    cc = CompactControl(zone=dma32(fresh), order=9, gfp_mask=G.GFP_KERNEL)
    assert C.compact_zone(cc) == CompactResult.COMPACT_SUCCESS
    assert fresh.vmstat["compact_migrate_scanned"] == 0


def test_result_enum_values_and_trace_names() -> None:
    assert [int(r) for r in CompactResult] == list(range(9))
    assert CompactResult.COMPACT_SUCCESS.trace_name == "success"
    assert CompactResult.COMPACT_PARTIAL_SKIPPED.trace_name == "partial_skipped"
    assert CompactPriority.MIN_COMPACT_PRIORITY == CompactPriority.COMPACT_PRIO_SYNC_FULL == 0
    assert CompactPriority.DEF_COMPACT_PRIORITY == CompactPriority.COMPACT_PRIO_SYNC_LIGHT == 1
    assert CompactPriority.INIT_COMPACT_PRIORITY == CompactPriority.COMPACT_PRIO_ASYNC == 2
    assert C.compaction_withdrawn(CompactResult.COMPACT_DEFERRED)
    assert C.compaction_failed(CompactResult.COMPACT_COMPLETE)


# ================================================================================================
# §4.13 direct compaction from the allocator
# ================================================================================================


def test_direct_compaction_success_counters() -> None:
    m, p, _ = fragmented()
    exhaust_free_blocks(m)
    v0 = m.vmstat
    assert not m.in_direct_compaction
    pfn = m.alloc_pages(order=9, gfp="GFP_HIGHUSER_MOVABLE|__GFP_COMP")
    assert pfn is not None
    v1 = m.vmstat
    assert v1["compact_stall"] - v0["compact_stall"] == 1
    assert v1["compact_success"] - v0["compact_success"] == 1
    assert v1["compact_fail"] == v0["compact_fail"]
    assert v1["pgmigrate_success"] > v0["pgmigrate_success"]
    zone = m.page_zone(pfn)
    assert zone.compact_order_failed == 10 and not zone.compact_blockskip_flush
    m.free_pages(pfn, order=9)
    clean(m, p)


def test_direct_compaction_failure_counters_and_deferral() -> None:
    m, p, kept = fragmented()
    exhaust_free_blocks(m)
    p.pin(kept)  # nothing can move: no block can be freed
    v0 = m.vmstat
    assert m.alloc_pages(order=9, gfp="GFP_HIGHUSER_MOVABLE|__GFP_COMP") is None
    v1 = m.vmstat
    stalls = v1["compact_stall"] - v0["compact_stall"]
    assert stalls >= 1
    assert v1["compact_fail"] - v0["compact_fail"] == stalls
    assert v1["compact_success"] == v0["compact_success"]
    # The sync attempt went through the zone and deferred it.
    assert dma32(m).compact_defer_shift >= 1 and dma32(m).compact_order_failed <= 9
    p.unpin(kept)
    clean(m, p)


def test_direct_compaction_needs_gfp_io() -> None:
    m, p, _ = fragmented()
    exhaust_free_blocks(m)
    ac, alloc_flags = pa.prepare_alloc_pages(m, G.GFP_NOIO, 9, 0)
    v0 = m.vmstat
    pfn, result = C.__alloc_pages_direct_compact(m, G.GFP_NOIO | G.__GFP_COMP, 9, alloc_flags,
                                                 ac, CompactPriority.COMPACT_PRIO_ASYNC)
    assert pfn == -1 and result == CompactResult.COMPACT_SKIPPED
    assert m.vmstat["compact_stall"] == v0["compact_stall"]
    assert C.__alloc_pages_direct_compact(m, G.GFP_KERNEL, 0, alloc_flags, ac,
                                          CompactPriority.COMPACT_PRIO_ASYNC) == (-1, None)
    clean(m, p)


# ================================================================================================
# the free-page side: compaction_alloc / compaction_free / __isolate_free_page
# ================================================================================================


def test_compaction_alloc_splits_chunks_and_free_takes_pages_back() -> None:
    m = Machine.build(memory="256M")
    zone = dma32(m)
    mem = m.mem
    cc = CompactControl(zone=zone, order=-1, mode=SYNC)
    cc.freepages = [m.alloc_list_head() for _ in range(11)]
    chunk = mem.list_first(zone.free_list(10, MIGRATE_MOVABLE))
    assert pa.__isolate_free_page(m, chunk, 10) == 1024
    mem.private_mv[chunk] = 10
    mem.list_add_tail(chunk, cc.freepages[10])
    m.held_chunks[chunk] = 10
    cc.nr_freepages, cc.nr_migratepages = 1024, 1
    m.check_state()
    src = m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE, 0, 0)
    dst = C.compaction_alloc(cc, src)
    # The order-10 chunk was split: the target is its first page, the upper halves wait.
    assert dst == chunk and mem.refcount_mv[dst] == 1
    assert m.held_chunks == {chunk + (1 << o): o for o in range(10)}
    assert cc.nr_freepages == 1023 and cc.nr_migratepages == 0
    m.check_state()
    # Smaller requests are served from the smallest chunk that fits.
    assert C.compaction_alloc(cc, src) == chunk + 1 and cc.nr_migratepages == -1
    C.compaction_free(cc, chunk + 1)
    C.compaction_free(cc, dst)
    assert m.held_chunks[dst] == 0 and m.held_chunks[chunk + 1] == 0
    assert cc.nr_freepages == 1024 and cc.nr_migratepages == 1
    assert C.release_free_list(m, cc.freepages) == chunk + 512
    assert m.held_chunks == {}
    for head in cc.freepages:
        m.release_list_head(head)
    swap.put_page(m, src)
    m.check_state()


def test_isolate_free_page_obeys_the_min_watermark() -> None:
    m = Machine.build(memory="256M")
    zone = dma32(m)
    pfn = m.mem.list_first(zone.free_list(10, MIGRATE_MOVABLE))
    saved = list(zone._watermark)
    zone._watermark[0] = zone.vm_stat[vs.NR_FREE_PAGES]
    assert pa.__isolate_free_page(m, pfn, 10) == 0
    zone._watermark[:] = saved
    free = zone.vm_stat[vs.NR_FREE_PAGES]
    assert pa.__isolate_free_page(m, pfn, 10) == 1024
    assert zone.vm_stat[vs.NR_FREE_PAGES] == free - 1024 and not pf.PageBuddy(m.mem, pfn)
    pa.post_alloc_hook(zone, pfn, 10, 0, MIGRATE_MOVABLE)
    pa.__free_pages(m, pfn, 10)
    m.check_state()


# ================================================================================================
# kcompactd and proactive compaction
# ================================================================================================


def test_kcompactd_wakeup_and_work() -> None:
    m, p, _ = fragmented()
    exhaust_free_blocks(m)
    pgdat = m.nodes[0]
    assert pgdat.kcompactd_highest_zoneidx == ZoneType.ZONE_DMA32  # nr_zones - 1
    C.wakeup_kcompactd(m, pgdat, 0, ZoneType.ZONE_NORMAL)
    assert not pgdat.kcompactd_woken  # order 0 is ignored
    sink = m.trace = Sink()
    C.wakeup_kcompactd(m, pgdat, 9, ZoneType.ZONE_DMA32)
    assert pgdat.kcompactd_woken and pgdat.kcompactd_max_order == 9
    v0 = m.vmstat
    assert C.kcompactd_run(m, 0) == C.HPAGE_FRAG_CHECK_INTERVAL_MSEC
    v1 = m.vmstat
    assert v1["compact_daemon_wake"] - v0["compact_daemon_wake"] == 1
    assert v1["compact_daemon_migrate_scanned"] > v0["compact_daemon_migrate_scanned"]
    assert (v1["compact_daemon_migrate_scanned"] - v0["compact_daemon_migrate_scanned"]
            == v1["compact_migrate_scanned"] - v0["compact_migrate_scanned"])
    assert v1["compact_stall"] == v0["compact_stall"]
    assert pgdat.kcompactd_max_order == 0 and not pgdat.kcompactd_woken
    names = [e for e, _ in sink.events if "kcompactd" in e]
    assert names == ["mm_compaction_wakeup_kcompactd", "mm_compaction_kcompactd_wake",
                     "mm_compaction_kcompactd_sleep"]
    assert free_blocks(m) > 0
    clean(m, p)


def test_proactive_compaction() -> None:
    m, p, _ = fragmented()
    pgdat = m.nodes[0]
    m.compaction_proactiveness = 0
    assert not C.should_proactive_compact_node(m, pgdat)
    assert C.kcompactd_run(m, 0) is None  # sleeps until woken
    score = C.fragmentation_score_node(pgdat)
    assert C.compaction_proactiveness_sysctl_handler(m, 101) == -C.EINVAL
    assert C.compaction_proactiveness_sysctl_handler(m, 100) == 0
    assert pgdat.proactive_compact_trigger
    assert C.fragmentation_score_wmark(m, False) < score  # 15 < fragmented score
    v0 = m.vmstat
    timeout = C.kcompactd_run(m, 0)
    v1 = m.vmstat
    assert not pgdat.proactive_compact_trigger
    assert v1["compact_daemon_migrate_scanned"] > v0["compact_daemon_migrate_scanned"]
    assert v1["compact_daemon_wake"] == v0["compact_daemon_wake"]  # not kcompactd_do_work
    new_score = C.fragmentation_score_node(pgdat)
    assert new_score < score
    assert timeout == C.HPAGE_FRAG_CHECK_INTERVAL_MSEC
    clean(m, p)


# ================================================================================================
# the vectorised shortcuts change nothing
# ================================================================================================


def _run_all(use_shortcuts: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    monkeypatch.setattr(C, "USE_SHORTCUTS", use_shortcuts)
    m, p, _kept = fragmented(memory="256M", pages=30000)
    thp = m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE | G.__GFP_COMP, 9, 0)
    swap.folio_add_lru(m, thp)
    m.alloc_page_raw(G.GFP_KERNEL | G.__GFP_COMP, 10, 0)
    sink = m.trace = Sink()
    exhaust_free_blocks(m)
    C.wakeup_kcompactd(m, m.nodes[0], 9, ZoneType.ZONE_DMA32)
    C.kcompactd_run(m, 0)
    m.compact_memory()
    exhaust_free_blocks(m)
    m.alloc_pages(order=9, gfp="GFP_HIGHUSER_MOVABLE|__GFP_COMP")
    clean(m, p)
    bits = m.pageblock_flags.copy()
    return sink.events, m.vmstat, [z.nr_free for z in m.zones], bits.tobytes()


def test_shortcuts_give_identical_results(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _run_all(True, monkeypatch)
    slow = _run_all(False, monkeypatch)
    assert fast[0] == slow[0]
    assert fast[1:] == slow[1:]



# ================================================================================================
# v4.8 compaction (profiles "v4.8" and "pre-4.8"): what v4.9, v4.12 and v5.1 changed
# ================================================================================================


def test_v48_async_compactors_take_only_movable_sources_whatever_the_request() -> None:
    m, p, kept = fragmented(profile="v4.8")
    zone = dma32(m)
    low = make_unmovable_block(m, int(kept.min()))
    for direct in (True, False):
        cc = CompactControl(zone=zone, mode=ASYNC, direct_compaction=direct, order=3,
                            migratetype=MIGRATE_UNMOVABLE)
        # v4.12 would take the UNMOVABLE block for an unmovable direct request.
        assert not C.suitable_migration_source(cc, low)
        assert C.suitable_migration_source(cc, low + pageblock_nr_pages)
    sync = CompactControl(zone=zone, mode=SYNC_LIGHT, direct_compaction=True, order=3,
                          migratetype=MIGRATE_UNMOVABLE)
    assert C.suitable_migration_source(sync, low)
    clean(m, p)


def test_v48_fragindex_gates_every_order(monkeypatch: pytest.MonkeyPatch) -> None:
    m, _p, _ = fragmented(profile="v4.8")
    exhaust_free_blocks(m)
    zone = dma32(m)
    calls: list[int] = []

    def fragmentation_index(nr_free: Any, order: int) -> int:
        calls.append(order)
        return 100  # a failure for lack of memory

    monkeypatch.setattr(C.vs, "fragmentation_index", fragmentation_index)
    assert not C.compaction_suitable(zone, 3, zone.min_wmark_pages(), ZoneType.ZONE_NORMAL)
    assert calls == [3]


@pytest.mark.parametrize("profile", ["mainline", "v4.8"])
def test_compact_finished_pageblock_and_watermark_rules(profile: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    m = Machine.build(memory="256M", profile=profile)
    zone = dma32(m)
    # Free order-9 blocks exist; the migration scanner stands in the middle of a block.
    cc = CompactControl(zone=zone, order=4, mode=SYNC_LIGHT, direct_compaction=True,
                        gfp_mask=G.GFP_KERNEL, migratetype=MIGRATE_UNMOVABLE,
                        alloc_flags=ALLOC_WMARK_MIN, highest_zoneidx=ZoneType.ZONE_NORMAL)
    cc.migrate_pfn = zone.zone_start_pfn + pageblock_nr_pages + 7
    cc.free_pfn = zone.zone_end_pfn - pageblock_nr_pages
    expected = {"mainline": CompactResult.COMPACT_CONTINUE,  # finish the block first
                "v4.8": CompactResult.COMPACT_SUCCESS}[profile]
    assert C.__compact_finished(cc) == expected
    # v4.8 first asks whether the order's low watermark holds.
    monkeypatch.setattr(C.pa, "zone_watermark_ok", lambda *args: False)
    cc.migrate_pfn = zone.zone_start_pfn + pageblock_nr_pages
    expected = {"mainline": CompactResult.COMPACT_SUCCESS,
                "v4.8": CompactResult.COMPACT_CONTINUE}[profile]
    assert C.__compact_finished(cc) == expected
    # Contention: v4.8 checks it first; mainline only where no suitable page was found.
    cc.contended = True
    expected = {"mainline": CompactResult.COMPACT_SUCCESS,
                "v4.8": CompactResult.COMPACT_CONTENDED}[profile]
    assert C.__compact_finished(cc) == expected


def test_v48_scanners_walk_without_free_list_search(monkeypatch: pytest.MonkeyPatch) -> None:
    m, p, _ = fragmented(profile="v4.8")
    exhaust_free_blocks(m)

    def no_fast_search(cc: CompactControl) -> None:
        raise AssertionError("v4.8 had no fast_isolate_freepages")

    monkeypatch.setattr(C, "fast_isolate_freepages", no_fast_search)
    zone = dma32(m)
    cc = CompactControl(zone=zone, order=9, mode=ASYNC, direct_compaction=True,
                        gfp_mask=G.GFP_HIGHUSER_MOVABLE, migratetype=MIGRATE_MOVABLE)
    cc.migrate_pfn = zone.zone_start_pfn
    cc.free_pfn = zone.zone_end_pfn - pageblock_nr_pages
    assert C.fast_find_migrateblock(cc) == cc.migrate_pfn
    strides: list[int] = []
    real = C.isolate_freepages_block

    def spy(cc: CompactControl, start: int, end: int, freelist: list[int], stride: int,
            strict: bool) -> tuple[int, int]:
        strides.append(stride)
        return real(cc, start, end, freelist, stride, strict)

    monkeypatch.setattr(C, "isolate_freepages_block", spy)
    status = C.compact_zone_order(zone, 9, G.GFP_HIGHUSER_MOVABLE,
                                  CompactPriority.COMPACT_PRIO_ASYNC,
                                  ALLOC_WMARK_MIN | ALLOC_CMA, ZoneType.ZONE_NORMAL)
    assert status == CompactResult.COMPACT_SUCCESS
    # The async free scanner visits every pfn (mainline starts with a stride of 32).
    assert strides and set(strides) == {1}
    clean(m, p)


@pytest.mark.parametrize("profile,ignores", [("mainline", False), ("v4.8", True)])
def test_kcompactd_skip_hints_by_version(profile: str, ignores: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    m, p, _ = fragmented(profile=profile)
    exhaust_free_blocks(m)
    seen: list[bool] = []
    real = C.compact_zone

    def spy(cc: CompactControl, capc: object | None = None) -> CompactResult:
        seen.append(cc.ignore_skip_hint)
        return real(cc, capc)

    monkeypatch.setattr(C, "compact_zone", spy)
    C.wakeup_kcompactd(m, m.nodes[0], 9, ZoneType.ZONE_DMA32)
    C.kcompactd_run(m, 0)
    assert seen and set(seen) == {ignores}
    clean(m, p)


def test_v48_direct_compaction_makes_the_block_and_keeps_every_token() -> None:
    m, p, _ = fragmented(profile="v4.8")
    exhaust_free_blocks(m)
    v0 = m.vmstat
    pfn = m.alloc_pages(order=9, gfp="GFP_HIGHUSER_MOVABLE|__GFP_COMP")
    assert pfn is not None
    v1 = m.vmstat
    assert v1["compact_success"] - v0["compact_success"] == 1
    assert v1["pgmigrate_success"] > v0["pgmigrate_success"]
    m.free_pages(pfn, order=9)
    clean(m, p)
