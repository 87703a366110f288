"""The trace a compacting machine writes agrees with itself, with its text, and with /proc/vmstat.

A 128 MiB machine is fragmented the way the compaction selftest does it, with virtio balloon
pages scattered among the process's pages; tracing is on (``m.enable_tracing()``) while
``compact_memory``, kcompactd and a few direct-compaction allocations run. Then:

* the ``trace`` file text parses back (``parse_trace``) to the records, and every payload
  re-formats byte for byte (``format_event``);
* the counters and the events agree exactly where the kernel's accounting makes them agree
  (see :func:`test_counters_match_the_trace` for the relations and where they come from);
* ``mm_compaction_begin``/``end`` pair up per ``compact_zone`` run; timestamps never go back.

Balloon pages: with CONFIG_BALLOON_COMPACTION they move (mainline and v4.8 through the
non-LRU movable framework, pre-4.8 through the v3.8 special case) and compaction frees more
order-9 blocks than on the same workload without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import pytest

from pagelab import KernelProfile, Machine
from pagelab.drivers.virtio_balloon import Balloon
from pagelab.io.ftrace import EVENT_FIELDS, TraceRecord, format_event, parse_trace
from pagelab.mm import compaction as C
from pagelab.mm import vmstat as vs
from pagelab.mm.memory import MmStruct
from pagelab.mm.mmzone import MAX_PAGE_ORDER, ZoneType, pageblock_order
from pagelab.profile import resolve_profile

DIRECT_GFPS = ("GFP_HIGHUSER_MOVABLE|__GFP_COMP",
               "GFP_HIGHUSER|__GFP_COMP|__GFP_RETRY_MAYFAIL|__GFP_NOWARN")


@dataclass
class Workload:
    m: Machine
    p: MmStruct
    balloon: Balloon
    held: list[int] = field(default_factory=list)


def free_pages(m: Machine) -> int:
    return sum(z.vm_stat[vs.NR_FREE_PAGES] for z in m.zones)


def free_huge_blocks(m: Machine) -> int:
    """Free order-9 blocks on the buddy lists (an order-10 block counts twice)."""
    m.drain_all_pages()
    return sum(z.nr_free[o] << (o - pageblock_order)
               for z in m.zones for o in range(pageblock_order, MAX_PAGE_ORDER + 1))


def fragmented(profile: str | KernelProfile = "mainline") -> Workload:
    """Fill memory with a process's pages, free every other one, balloon a quarter of the
    holes, then free every other remaining page: balloon pages sit between anon pages."""
    m = Machine.build(memory="128M", profile=profile)
    p = m.spawn("app")
    balloon = Balloon(m)
    pfns = p.touch(free_pages(m) - 4000)
    p.unmap(pfns[1::2])
    assert balloon.inflate(len(pfns) // 4) == len(pfns) // 4
    p.unmap(pfns[::4])
    m.drain_all_pages()  # the freed pages reach the buddy lists, where compaction sees them
    return Workload(m, p, balloon)


def grab_free_huge_blocks(w: Workload) -> None:
    """Take every free order-9 block without compacting (so the next request must compact)."""
    while (pfn := w.m.alloc_pages(order=pageblock_order,
                                  gfp="GFP_NOWAIT|__GFP_COMP|__GFP_NOWARN")) is not None:
        w.held.append(pfn)


def clean(w: Workload) -> None:
    m = w.m
    m.check_state()
    assert w.p.verify() == [] and w.balloon.check() == []
    assert sum(n.vm_stat[vs.NR_ISOLATED_ANON] + n.vm_stat[vs.NR_ISOLATED_FILE]
               for n in m.nodes) == 0
    assert m.held_chunks == {} and m.warnings == {}


# ================================================================================================
# one traced run, shared by the trace tests
# ================================================================================================


@dataclass
class TracedRun:
    w: Workload
    before: dict[str, int]
    after: dict[str, int]
    records: list[TraceRecord]
    text: str
    #: per compact_zone call: (events it emitted, its return value)
    zone_runs: list[tuple[list[tuple[str, dict[str, Any]]], int]]
    #: pages fast_find_migrateblock scanned (counted, never traced)
    fast_find_scanned: int

    def of(self, event: str) -> list[dict[str, Any]]:
        return [r.fields for r in self.records if r.event == event]

    def delta(self, counter: str) -> int:
        return self.after[counter] - self.before[counter]


@pytest.fixture(scope="module")
def traced() -> Iterator[TracedRun]:
    with pytest.MonkeyPatch.context() as mp:
        yield _traced_run(mp)


def _traced_run(mp: pytest.MonkeyPatch) -> TracedRun:
    w = fragmented()
    m = w.m
    sink = m.enable_tracing()
    zone_runs: list[tuple[list[tuple[str, dict[str, Any]]], int]] = []
    fast_find = [0]
    compact_zone = C.compact_zone
    fast_find_migrateblock = C.fast_find_migrateblock

    def traced_compact_zone(cc: C.CompactControl, capc: object | None = None) -> Any:
        first = len(sink)
        ret = compact_zone(cc, capc)
        zone_runs.append(([(e, f) for _, _, e, f in islice(sink.raw, first, None)], int(ret)))
        return ret

    def counted_fast_find(cc: C.CompactControl) -> int:
        scanned = cc.total_migrate_scanned
        pfn = fast_find_migrateblock(cc)
        fast_find[0] += cc.total_migrate_scanned - scanned
        return pfn

    mp.setattr(C, "compact_zone", traced_compact_zone)
    mp.setattr(C, "fast_find_migrateblock", counted_fast_find)
    before = m.vmstat
    # Take every free huge block; allocations of more compact directly (movable: with the
    # fast search for a source block; unmovable: async finds no UNMOVABLE source blocks).
    grab_free_huge_blocks(w)
    for gfp in DIRECT_GFPS * 2:
        pfn = m.alloc_pages(order=pageblock_order, gfp=gfp)
        if pfn is not None:
            w.held.append(pfn)
    # kcompactd, woken for order 9 (it searches with fast_find_migrateblock too).
    C.wakeup_kcompactd(m, m.nodes[0], pageblock_order, ZoneType.ZONE_NORMAL)
    C.kcompactd_run(m, 0)
    m.compact_memory()
    # Fragment again and compact while the driver inflates: balloon pages fail to migrate
    # (virtballoon_migratepage cannot take balloon_lock: -EAGAIN until migrate_pages gives up).
    w.p.unmap(w.p.mapped_pfns()[::2])
    with w.balloon.balloon_lock:
        m.compact_memory()
    after = m.vmstat
    assert len(sink) == sink.entries_written  # nothing was overwritten
    text = sink.text()
    return TracedRun(w, before, after, sink.records(), text, zone_runs, fast_find[0])


def test_the_run_exercised_every_path(traced: TracedRun) -> None:
    """The workload did what the relations below are about (or they would prove little)."""
    assert traced.delta("compact_stall") >= 2
    assert traced.delta("compact_daemon_wake") == 1
    assert traced.delta("balloon_migrate") > 0
    assert traced.delta("pgmigrate_success") > 1000
    assert traced.delta("pgmigrate_fail") > 0
    assert traced.fast_find_scanned > 0
    names = {r.event for r in traced.records}
    assert {"mm_compaction_isolate_migratepages", "mm_compaction_isolate_freepages",
            "mm_compaction_fast_isolate_freepages", "mm_compaction_migratepages",
            "mm_migrate_pages", "mm_compaction_try_to_compact_pages",
            "mm_compaction_kcompactd_wake"} <= names
    syncs = {f["sync"] for f in traced.of("mm_compaction_begin")}
    assert syncs == {True, False}  # direct compaction starts async
    clean(traced.w)


def tp_struct(record: TraceRecord) -> TraceRecord:
    """The record with only its event's ``TP_STRUCT__entry`` fields (what a trace keeps)."""
    return record._replace(fields={k: record.fields[k] for k in EVENT_FIELDS[record.event]})


def test_trace_text_parses_back_to_the_records(traced: TracedRun) -> None:
    parsed = parse_trace(traced.text)
    assert len(parsed) == len(traced.records) > 400
    assert parsed == [tp_struct(r) for r in traced.records]
    assert all(r.payload is None for r in parsed)  # every line in its event's own format


def test_a_fallback_trace_parses_back_to_its_records() -> None:
    m = Machine.build(memory="128M")
    sink = m.enable_tracing()
    m.alloc_pages(order=0, gfp="GFP_KERNEL")  # the first unmovable page: a fallback
    assert [r.event for r in sink.records()] == ["mm_page_alloc_extfrag"]
    assert parse_trace(sink.text()) == sink.records()


def test_compaction_and_migration_events_carry_their_tp_struct_fields(traced: TracedRun) -> None:
    for record in traced.records:
        assert set(record.fields) == set(EVENT_FIELDS[record.event]), record.event


def test_every_payload_reformats_byte_for_byte(traced: TracedRun) -> None:
    lines = [line for line in traced.text.splitlines() if not line.startswith("#")]
    parsed = parse_trace(traced.text)
    assert len(lines) == len(parsed)
    for line, record in zip(lines, parsed, strict=True):
        marker = f" {record.event}: "
        payload = line[line.index(marker) + len(marker):]
        assert format_event(record.event, record.fields) == payload, line


def test_timestamps_never_go_back(traced: TracedRun) -> None:
    stamps = [r.timestamp for r in parse_trace(traced.text)]
    assert stamps == sorted(stamps)
    assert stamps[-1] > stamps[0]  # compaction charges the virtual clock


def test_counters_match_the_trace(traced: TracedRun) -> None:
    """The exact relations of the kernel's accounting (mm/compaction.c, mm/migrate.c, 6.x).

    * COMPACTISOLATED is counted next to each isolate tracepoint with the same number:
      ``isolate_migratepages_block`` (``nr_isolated``), ``isolate_freepages_block``
      (``total_isolated``, also reached from ``fast_isolate_around``) and
      ``fast_isolate_freepages`` (per chunk; traced as its total).
    * COMPACTFREE_SCANNED sums ``cc->total_free_scanned``, which the free scanners raise by
      the ``nr_scanned`` they trace (``isolate_freepages_block``, ``fast_isolate_freepages``).
    * COMPACTMIGRATE_SCANNED sums ``cc->total_migrate_scanned``: the ``nr_scanned`` of each
      ``mm_compaction_isolate_migratepages``, plus the free-list entries
      ``fast_find_migrateblock`` looked at, which no tracepoint reports. ``compact_memory``
      ignores skip hints and never runs the fast search, so there the trace alone accounts.
    * ``migrate_pages`` counts PGMIGRATE_SUCCESS/FAIL with the values it traces in
      ``mm_migrate_pages`` (``nr_succeeded``, ``nr_failed_pages``); compaction traces the same
      ``nr_succeeded`` as ``mm_compaction_migratepages`` ``nr_migrated``.
    """
    t = traced
    taken = sum(f["nr_taken"] for event in ("mm_compaction_isolate_migratepages",
                                            "mm_compaction_isolate_freepages",
                                            "mm_compaction_fast_isolate_freepages")
                for f in t.of(event))
    assert t.delta("compact_isolated") == taken
    free_scanned = sum(f["nr_scanned"] for event in ("mm_compaction_isolate_freepages",
                                                     "mm_compaction_fast_isolate_freepages")
                       for f in t.of(event))
    assert t.delta("compact_free_scanned") == free_scanned
    migrate_scanned = sum(f["nr_scanned"] for f in t.of("mm_compaction_isolate_migratepages"))
    assert t.delta("compact_migrate_scanned") == migrate_scanned + t.fast_find_scanned
    migrations = t.of("mm_migrate_pages")
    assert t.delta("pgmigrate_success") == sum(f["succeeded"] for f in migrations)
    assert t.delta("pgmigrate_fail") == sum(f["failed"] for f in migrations)
    assert ([f["nr_migrated"] for f in t.of("mm_compaction_migratepages")]
            == [f["succeeded"] for f in migrations])
    assert all(f["reason"] == 0 and f["thp_succeeded"] == 0 for f in migrations)


def test_compact_memory_alone_is_accounted_by_the_trace() -> None:
    w = fragmented()
    m = w.m
    sink = m.enable_tracing()
    before = m.vmstat
    m.compact_memory()
    after = m.vmstat
    records = parse_trace(sink.text())

    def total(event: str, name: str) -> int:
        return sum(r.fields[name] for r in records if r.event == event)

    assert (after["compact_migrate_scanned"] - before["compact_migrate_scanned"]
            == total("mm_compaction_isolate_migratepages", "nr_scanned") > 0)
    assert (after["compact_isolated"] - before["compact_isolated"]
            == total("mm_compaction_isolate_migratepages", "nr_taken")
            + total("mm_compaction_isolate_freepages", "nr_taken")
            + total("mm_compaction_fast_isolate_freepages", "nr_taken"))
    assert not any(r.event == "mm_compaction_fast_isolate_freepages" for r in records)
    clean(w)


def test_begin_and_end_pair_up_per_compact_zone(traced: TracedRun) -> None:
    scans = 0
    for events, ret in traced.zone_runs:
        names = [e for e, _ in events]
        if "mm_compaction_begin" not in names:
            # compaction_suit_allocation_order() said no before any scanning
            assert "mm_compaction_end" not in names and not any(
                n.startswith("mm_compaction_isolate") for n in names)
            continue
        scans += 1
        assert names.count("mm_compaction_begin") == names.count("mm_compaction_end") == 1
        b = names.index("mm_compaction_begin")
        e = names.index("mm_compaction_end")
        assert b < e
        # every scan and migration of the run lies between the two
        for i, n in enumerate(names):
            if n.startswith(("mm_compaction_isolate", "mm_compaction_fast_isolate",
                             "mm_migrate_pages", "mm_compaction_migratepages")):
                assert b < i < e, n
        begin, end = events[b][1], events[e][1]
        assert (begin["zone_start"], begin["zone_end"], begin["sync"]) == (
            end["zone_start"], end["zone_end"], end["sync"])
        assert end["status"] == ret
        assert begin["zone_start"] <= begin["migrate_pfn"] <= end["migrate_pfn"]
    assert scans == len(traced.of("mm_compaction_begin")) == len(traced.of("mm_compaction_end"))
    # and in the whole trace, begin and end alternate
    sequence = [r.event for r in traced.records
                if r.event in ("mm_compaction_begin", "mm_compaction_end")]
    assert sequence == ["mm_compaction_begin", "mm_compaction_end"] * (len(sequence) // 2)


# ================================================================================================
# balloon pages under compaction, by profile
# ================================================================================================


def compact_balloon_workload(profile: str | KernelProfile) -> tuple[Workload, int, int, int,
                                                                      set[int]]:
    """Compact the fragmented workload; return it, free huge blocks before and after,
    BALLOON_MIGRATE and the balloon's pfns before compaction."""
    w = fragmented(profile)
    host = set(w.balloon.host_pfns)
    blocks = free_huge_blocks(w.m)
    v0 = w.m.vmstat["balloon_migrate"]
    w.m.compact_memory()
    clean(w)
    return w, blocks, free_huge_blocks(w.m), w.m.vmstat["balloon_migrate"] - v0, host


@pytest.mark.parametrize("profile", ["mainline", "v4.8", "pre-4.8"])
def test_balloon_pages_move_and_free_huge_blocks(profile: str) -> None:
    isolations = []
    w = fragmented(profile)
    if profile == "pre-4.8":
        # v3.8..v4.7: compaction reaches balloon pages only through the special case
        hook = w.m.balloon_isolate_hook
        assert hook is not None

        def counting_hook(m: Machine, pfn: int, mode: int) -> bool:
            isolated = hook(m, pfn, mode)
            isolations.append(isolated)
            return isolated

        w.m.balloon_isolate_hook = counting_hook
    else:
        assert w.m.balloon_isolate_hook is None
    host = set(w.balloon.host_pfns)
    blocks = free_huge_blocks(w.m)
    v0 = w.m.vmstat
    w.m.compact_memory()
    v1 = w.m.vmstat
    moved = v1["balloon_migrate"] - v0["balloon_migrate"]
    assert moved > 0
    assert v1["pgmigrate_success"] - v0["pgmigrate_success"] > moved
    assert free_huge_blocks(w.m) > blocks
    # The host followed the pages to their new pfns (clean() checks host == guest); the
    # balloon kept its size.
    assert w.balloon.num_pages == len(host) and w.balloon.host_pfns != host
    if profile == "pre-4.8":
        assert sum(isolations) >= moved
    clean(w)


def test_without_balloon_compaction_balloon_pages_stay_and_fewer_blocks_free() -> None:
    off = resolve_profile("mainline", balloon_compaction=False)
    w_off, before_off, after_off, moved_off, host_off = compact_balloon_workload(off)
    _, _, after_on, moved_on, _ = compact_balloon_workload("mainline")
    assert moved_off == 0 and w_off.balloon.host_pfns == host_off
    assert moved_on > 0
    assert after_off > before_off  # the process's pages still move
    assert after_off < after_on
