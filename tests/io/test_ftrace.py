"""Tests for pagelab.io.ftrace: TP_printk text of 6.18, the trace file, parsing, the sink."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pagelab.errors import InvalidArgument, PagelabError, ParseError
from pagelab.io.ftrace import (
    EVENT_FIELDS,
    EVENT_SYSTEMS,
    TRACE_HEADER_LINES,
    TraceRecord,
    TraceSink,
    decode_payload,
    events_dataframe,
    fake_page_address,
    format_event,
    parse_trace,
    render_line,
    render_trace,
    show_gfp_flags,
)
from pagelab.mm.gfp import (
    __GFP_COMP,
    __GFP_DIRECT_RECLAIM,
    __GFP_KSWAPD_RECLAIM,
    __GFP_NORETRY,
    __GFP_THISNODE,
    __GFP_ZERO,
    GFP_HIGHUSER_MOVABLE,
    GFP_KERNEL,
    GFP_NOWAIT,
    GFP_TRANSHUGE,
)
from pagelab.sched.clock import VirtualClock

LIVE = Path(__file__).parent.parent / "fixtures" / "live"

# Hand-written from each TP_printk (Linux 6.18 print fmt). (event, fields, expected text)
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("mm_compaction_isolate_migratepages",
     {"start_pfn": 0x100000, "end_pfn": 0x100200, "nr_scanned": 512, "nr_taken": 32},
     "range=(0x100000 ~ 0x100200) nr_scanned=512 nr_taken=32"),
    ("mm_compaction_isolate_freepages",
     {"start_pfn": 0x217e00, "end_pfn": 0x218000, "nr_scanned": 512, "nr_taken": 480},
     "range=(0x217e00 ~ 0x218000) nr_scanned=512 nr_taken=480"),
    ("mm_compaction_fast_isolate_freepages",
     {"start_pfn": 0x1, "end_pfn": 0x200, "nr_scanned": 0, "nr_taken": 1},
     "range=(0x1 ~ 0x200) nr_scanned=0 nr_taken=1"),
    ("mm_compaction_migratepages", {"nr_migrated": 30, "nr_failed": 2},
     "nr_migrated=30 nr_failed=2"),
    ("mm_compaction_begin",
     {"zone_start": 0x1000, "migrate_pfn": 0x1000, "free_pfn": 0xFFE00, "zone_end": 0x100000,
      "sync": True},
     "zone_start=0x1000 migrate_pfn=0x1000 free_pfn=0xffe00 zone_end=0x100000, mode=sync"),
    ("mm_compaction_end",
     {"zone_start": 0x100000, "migrate_pfn": 0x1A0000, "free_pfn": 0x1A0000,
      "zone_end": 0x218000, "sync": False, "status": 8},
     "zone_start=0x100000 migrate_pfn=0x1a0000 free_pfn=0x1a0000 zone_end=0x218000, "
     "mode=async status=success"),
    ("mm_compaction_try_to_compact_pages",
     {"order": 9, "gfp_mask": GFP_TRANSHUGE | __GFP_THISNODE, "prio": 1},
     "order=9 gfp_mask=GFP_TRANSHUGE|__GFP_THISNODE priority=1"),
    ("mm_compaction_try_to_compact_pages",
     {"order": 4, "gfp_mask": GFP_KERNEL | __GFP_COMP | __GFP_NORETRY, "prio": 2},
     "order=4 gfp_mask=GFP_KERNEL|__GFP_NORETRY|__GFP_COMP priority=2"),
    ("mm_compaction_finished", {"nid": 0, "idx": 1, "order": -1, "ret": 4},
     "node=0 zone=DMA32    order=-1 ret=continue"),
    ("mm_compaction_suitable", {"nid": 0, "idx": 2, "order": 9, "ret": 1},
     "node=0 zone=Normal   order=9 ret=skipped"),
    ("mm_compaction_suitable", {"nid": 1, "idx": 0, "order": 3, "ret": 3},
     "node=1 zone=DMA      order=3 ret=no_suitable_page"),
    ("mm_compaction_deferred",
     {"nid": 0, "idx": 2, "order": 9, "order_failed": 9, "considered": 3, "defer_shift": 2},
     "node=0 zone=Normal   order=9 order_failed=9 consider=3 limit=4"),
    ("mm_compaction_defer_compaction",
     {"nid": 0, "idx": 2, "order": 10, "order_failed": 10, "considered": 0, "defer_shift": 6},
     "node=0 zone=Normal   order=10 order_failed=10 consider=0 limit=64"),
    ("mm_compaction_defer_reset",
     {"nid": 0, "idx": 3, "order": 2, "order_failed": 3, "considered": 0, "defer_shift": 0},
     "node=0 zone=Movable  order=2 order_failed=3 consider=0 limit=1"),
    ("mm_compaction_kcompactd_sleep", {"nid": 0}, "nid=0"),
    ("mm_compaction_wakeup_kcompactd", {"nid": 0, "order": 9, "highest_zoneidx": 2},
     "nid=0 order=9 classzone_idx=Normal  "),
    ("mm_compaction_kcompactd_wake", {"nid": 0, "order": 2, "highest_zoneidx": 3},
     "nid=0 order=2 classzone_idx=Movable "),
    ("mm_compaction_kcompactd_wake", {"nid": 0, "order": 2, "highest_zoneidx": 4},
     "nid=0 order=2 classzone_idx=0x4     "),
    ("mm_migrate_pages",
     {"succeeded": 30, "failed": 2, "thp_succeeded": 0, "thp_failed": 0, "thp_split": 0,
      "large_folio_split": 0, "mode": 1, "reason": 0},
     "nr_succeeded=30 nr_failed=2 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 "
     "nr_split=0 mode=MIGRATE_SYNC_LIGHT reason=compaction"),
    ("mm_migrate_pages_start", {"mode": 0, "reason": 9}, "mode=MIGRATE_ASYNC reason=damon"),
    ("mm_migrate_pages_start", {"mode": 2, "reason": 6}, "mode=MIGRATE_SYNC reason=contig_range"),
    ("set_migration_pte", {"addr": 0x7F0000001000, "pte": 0x80000001234567, "order": 0},
     "addr=7f0000001000, pte=80000001234567 order=0"),
    ("remove_migration_pte", {"addr": 0x1000, "pte": 0x0, "order": 9},
     "addr=1000, pte=0 order=9"),
    ("mm_page_alloc",
     {"pfn": 0x120205, "order": 0, "migratetype": 1,
      "gfp_flags": GFP_HIGHUSER_MOVABLE | __GFP_ZERO | __GFP_COMP},
     "page=ffffea0004808140 pfn=0x120205 order=0 migratetype=1 "
     "gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP"),
    ("mm_page_alloc", {"pfn": -1, "order": 3, "migratetype": 0, "gfp_flags": 0},
     "page=0000000000000000 pfn=0x0 order=3 migratetype=0 gfp_flags=none"),
    ("mm_page_free", {"pfn": 0x1DB070, "order": 0},
     "page=ffffea00076c1c00 pfn=0x1db070 order=0"),
    ("mm_page_free_batched", {"pfn": 1}, "page=ffffea0000000040 pfn=0x1 order=0"),
    ("mm_page_alloc_zone_locked",
     {"pfn": 0x15614D, "order": 0, "migratetype": 0, "percpu_refill": 1},
     "page=ffffea0005585340 pfn=0x15614d order=0 migratetype=0 percpu_refill=1"),
    ("mm_page_pcpu_drain", {"pfn": 0x1E8EDC, "order": 0, "migratetype": 1},
     "page=ffffea0007a3b700 pfn=0x1e8edc order=0 migratetype=1"),
    ("mm_page_alloc_extfrag",
     {"pfn": 0x200, "alloc_order": 0, "fallback_order": 9, "alloc_migratetype": 0,
      "fallback_migratetype": 1, "change_ownership": 1},
     "page=ffffea0000008000 pfn=0x200 alloc_order=0 fallback_order=9 pageblock_order=9 "
     "alloc_migratetype=0 fallback_migratetype=1 fragmenting=0 change_ownership=1"),
    ("mm_page_alloc_extfrag",
     {"pfn": 0x200, "alloc_order": 0, "fallback_order": 3, "alloc_migratetype": 1,
      "fallback_migratetype": 0, "change_ownership": 0},
     "page=ffffea0000008000 pfn=0x200 alloc_order=0 fallback_order=3 pageblock_order=9 "
     "alloc_migratetype=1 fallback_migratetype=0 fragmenting=1 change_ownership=0"),
    ("mm_vmscan_kswapd_sleep", {"nid": 0}, "nid=0"),
    ("mm_vmscan_kswapd_wake", {"nid": 0, "order": 3}, "nid=0 order=3"),
    ("mm_vmscan_wakeup_kswapd", {"nid": 0, "order": 0, "gfp_flags": GFP_HIGHUSER_MOVABLE},
     "nid=0 order=0 gfp_flags=GFP_HIGHUSER_MOVABLE"),
    ("mm_vmscan_direct_reclaim_begin", {"order": 3, "gfp_flags": GFP_KERNEL | __GFP_NORETRY},
     "order=3 gfp_flags=GFP_KERNEL|__GFP_NORETRY"),
    ("mm_vmscan_direct_reclaim_end", {"nr_reclaimed": 32}, "nr_reclaimed=32"),
    ("mm_vmscan_lru_shrink_inactive",
     {"nid": 0, "nr_scanned": 32, "nr_reclaimed": 30, "nr_dirty": 0, "nr_writeback": 0,
      "nr_congested": 0, "nr_immediate": 0, "nr_activate0": 1, "nr_activate1": 0,
      "nr_ref_keep": 1, "nr_unmap_fail": 0, "priority": 12, "reclaim_flags": 0},
     "nid=0 nr_scanned=32 nr_reclaimed=30 nr_dirty=0 nr_writeback=0 nr_congested=0 "
     "nr_immediate=0 nr_activate_anon=1 nr_activate_file=0 nr_ref_keep=1 nr_unmap_fail=0 "
     "priority=12 flags=RECLAIM_WB_ANON|RECLAIM_WB_ASYNC"),
    ("mm_vmscan_lru_shrink_active",
     {"nid": 0, "nr_taken": 32, "nr_active": 2, "nr_deactivated": 30, "nr_referenced": 2,
      "priority": 10, "reclaim_flags": 1},
     "nid=0 nr_taken=32 nr_active=2 nr_deactivated=30 nr_referenced=2 priority=10 "
     "flags=RECLAIM_WB_FILE|RECLAIM_WB_ASYNC"),
]

REQUIRED = {
    "mm_compaction_isolate_migratepages", "mm_compaction_isolate_freepages",
    "mm_compaction_fast_isolate_freepages", "mm_compaction_migratepages",
    "mm_compaction_begin", "mm_compaction_end", "mm_compaction_try_to_compact_pages",
    "mm_compaction_finished", "mm_compaction_suitable", "mm_compaction_deferred",
    "mm_compaction_defer_compaction", "mm_compaction_defer_reset",
    "mm_compaction_kcompactd_sleep", "mm_compaction_wakeup_kcompactd",
    "mm_compaction_kcompactd_wake", "mm_migrate_pages", "mm_migrate_pages_start",
    "mm_page_alloc", "mm_page_free", "mm_page_alloc_extfrag", "mm_page_alloc_zone_locked",
    "mm_page_pcpu_drain", "mm_vmscan_kswapd_wake", "mm_vmscan_wakeup_kswapd",
    "mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end",
    "mm_vmscan_lru_shrink_inactive", "mm_vmscan_lru_shrink_active",
}


def test_every_required_event_is_known_and_tested() -> None:
    assert set(EVENT_SYSTEMS) >= REQUIRED
    assert {c[0] for c in CASES} >= set(EVENT_SYSTEMS)


@pytest.mark.parametrize(("event", "fields", "expected"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_format_event_matches_tp_printk(event: str, fields: dict[str, Any], expected: str) -> None:
    assert format_event(event, fields) == expected
    assert decode_payload(event, expected) == fields
    assert set(EVENT_FIELDS[event]) == set(fields)


def test_show_gfp_flags() -> None:
    assert show_gfp_flags(0) == "none"
    assert show_gfp_flags(GFP_KERNEL) == "GFP_KERNEL"
    assert show_gfp_flags(GFP_NOWAIT) == "GFP_NOWAIT"
    assert show_gfp_flags(__GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM) == "GFP_NOIO"
    assert show_gfp_flags(__GFP_DIRECT_RECLAIM) == "__GFP_DIRECT_RECLAIM"
    assert show_gfp_flags(0x140DCA) == "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP"
    assert show_gfp_flags(__GFP_COMP | (1 << 9)) == "__GFP_COMP|0x200"
    assert show_gfp_flags(1 << 30) == "0x40000000"


def test_fake_page_address_is_the_vmemmap_address() -> None:
    assert fake_page_address(0) == "ffffea0000000000"
    assert fake_page_address(0x120205) == "ffffea0004808140"


def test_format_event_errors_and_unknown_events() -> None:
    with pytest.raises(InvalidArgument, match="needs the field 'nr_taken'"):
        format_event("mm_compaction_isolate_freepages",
                     {"start_pfn": 1, "end_pfn": 2, "nr_scanned": 3})
    assert format_event("my_event", {"a": 1, "b": "x"}) == "a=1 b=x"
    assert decode_payload("my_event", "a=1") is None
    assert decode_payload("mm_migrate_pages", "nr_succeeded=1 nr_failed=0 mode=X") is None


# ---------------------------------------------------------------------------------------------
# The real trace


_PTR = re.compile(r"page=[0-9a-f]{16} ")


def _fixture(name: str) -> str:
    return (LIVE / name).read_text()


@pytest.mark.parametrize("name", ["compaction-trace.txt", "kmem-trace.txt"])
def test_real_trace_parses_and_renders_back_byte_for_byte(name: str) -> None:
    text = _fixture(name)
    records = parse_trace(text)
    assert len(records) > 50
    # Every event of the real 6.18 trace is read with its own format, not the fallback.
    assert all(r.payload is None for r in records)
    assert all(r.event in EVENT_SYSTEMS for r in records)
    count_line = next(ln for ln in text.splitlines() if "entries-in-buffer" in ln)
    written = int(count_line.split("/")[2].split()[0])
    rendered = render_trace(records, nr_cpus=2, entries_written=written)
    got, want = rendered.splitlines(), text.splitlines()
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if "entries-in-buffer" in w:  # the fixture was trimmed; the count is of the whole run
            assert g.split(":")[0] == w.split(":")[0]
            continue
        # %p: the kernel prints a hashed pointer, the model its fake vmemmap address; both
        # are 16 hex digits.
        assert _PTR.sub("page=P", g) == _PTR.sub("page=P", w)


def test_real_compaction_trace_fields() -> None:
    records = parse_trace(_fixture("compaction-trace.txt"))
    begin = records[0]
    assert begin.event == "mm_compaction_begin"
    assert (begin.comm, begin.cpu, begin.flags) == ("python", 1, ".....")
    assert begin.fields == {"zone_start": 1, "migrate_pfn": 1, "free_pfn": 0xE00,
                            "zone_end": 0x1000, "sync": True}
    ends = [r for r in records if r.event == "mm_compaction_end"]
    assert ends and all(r.fields["status"] == 5 for r in ends)  # complete
    migrate = [r for r in records if r.event == "mm_migrate_pages"]
    assert migrate and all(r.fields["reason"] == 0 and r.fields["mode"] == 2 for r in migrate)


def test_real_kmem_trace_gfp_and_null_pointer_rules() -> None:
    records = parse_trace(_fixture("kmem-trace.txt"))
    allocs = [r for r in records if r.event == "mm_page_alloc"]
    assert {show_gfp_flags(r.fields["gfp_flags"]) for r in allocs} >= {
        "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP", "GFP_NOWAIT"}
    locked = [r for r in records if r.event == "mm_page_alloc_zone_locked"]
    assert locked and all(r.flags == "d..3." for r in locked)


def test_render_line_layout() -> None:
    rec = TraceRecord("kcompactd0", 42, 1, 1656.579984, "mm_compaction_kcompactd_sleep",
                      {"nid": 0})
    assert render_line(rec) == (
        "      kcompactd0-42      [001] .....  1656.579984: mm_compaction_kcompactd_sleep: nid=0")
    rec = rec._replace(timestamp=123456.5, flags="d..1.", pid=1234567)
    assert render_line(rec).startswith("      kcompactd0-1234567 [001] d..1. 123456.500000: ")


def test_render_trace_header() -> None:
    text = render_trace([], nr_cpus=2)
    assert text.splitlines() == [
        ln.format(in_buffer=0, written=0, nr_cpus=2) for ln in TRACE_HEADER_LINES]
    assert text.splitlines()[2] == "# entries-in-buffer/entries-written: 0/0   #P:2"


# ---------------------------------------------------------------------------------------------
# Parsing other tools' text and garbage


def test_parse_other_layouts() -> None:
    text = (
        "cpus=2\n"
        "     kcompactd0-35    [000]  2040.363430: mm_compaction_kcompactd_sleep: nid=0\n"
        "  kworker/u8:1-12 (     12) [001] d..2. 10.000001: mm_page_free: page=(____ptrval____)"
        " pfn=0x10 order=0\n"
        "          bash 16554 [001]  1656.579984: compaction:mm_compaction_finished: node=0 "
        "zone=DMA order=-1 ret=continue\n"
        "CPU:1 [LOST 12 EVENTS]\n"
        "            bash-1     [000] .....    1.000000: tracing_mark_write: hello world\n"
        "            bash-1     [000] .....    1.000001: kmalloc: call_site=foo+0x1/0x2 "
        "ptr=000000001 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1\n"
        "            bash-1     [000] .....    1.000002: mm_migrate_pages: nr_succeeded=1 "
        "nr_failed=0 mode=MIGRATE_SYNC reason=compaction\n"
    )
    recs = parse_trace(text)
    assert [r.event for r in recs] == [
        "mm_compaction_kcompactd_sleep", "mm_page_free", "mm_compaction_finished",
        "tracing_mark_write", "kmalloc", "mm_migrate_pages"]
    assert recs[0].fields == {"nid": 0} and recs[0].flags == "....."
    assert (recs[1].comm, recs[1].pid, recs[1].flags) == ("kworker/u8:1", 12, "d..2.")
    assert recs[1].fields == {"pfn": 0x10, "order": 0}
    assert (recs[2].comm, recs[2].pid) == ("bash", 16554)
    assert recs[2].fields == {"nid": 0, "idx": 0, "order": -1, "ret": 4}
    assert recs[3].fields == {} and recs[3].payload == "hello world"
    assert recs[4].fields["bytes_req"] == 64 and recs[4].fields["call_site"] == "foo+0x1/0x2"
    assert recs[4].fields["node"] == -1
    # v4.8's mm_migrate_pages (no thp fields) falls back to the printed labels.
    assert recs[5].fields == {"nr_succeeded": 1, "nr_failed": 0, "mode": "MIGRATE_SYNC",
                              "reason": "compaction"}
    assert render_line(recs[3]).endswith("tracing_mark_write: hello world")


@pytest.mark.parametrize("garbage", [
    "hello world\n",
    "# tracer: nop\n            bash-1     [000] .....    1.0: mm_page_free page=1\n",
    "            bash-1     [000] .....    1.000000: mm_page_free: page=0 pfn=0x1 order=0\n"
    "Traceback (most recent call last):\n",
])
def test_garbage_raises_parse_error_naming_the_line(garbage: str) -> None:
    with pytest.raises(ParseError, match=r"line \d+: .* is not an ftrace event line"):
        parse_trace(garbage)


def test_parse_trace_rejects_bytes() -> None:
    with pytest.raises(ParseError, match="read the file first"):
        parse_trace(b"abc")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# render → parse round trip

_COMM = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/:-_. ()", min_size=1,
                max_size=15).filter(lambda s: s == s.strip())
_U64 = st.integers(0, (1 << 64) - 1)
_PFN = st.integers(0, (1 << 40) - 1)
_COUNT = st.integers(0, (1 << 32) - 1)
_ORDER = st.integers(-1, 10)
_FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "start_pfn": _PFN, "end_pfn": _PFN, "nr_scanned": _COUNT, "nr_taken": _COUNT,
    "nr_migrated": _COUNT, "nr_failed": _COUNT, "zone_start": _PFN, "migrate_pfn": _PFN,
    "free_pfn": _PFN, "zone_end": _PFN, "sync": st.booleans(), "status": st.integers(0, 9),
    "order": _ORDER, "gfp_mask": st.integers(0, (1 << 26) - 1), "prio": st.integers(0, 3),
    "nid": st.integers(0, 7), "idx": st.integers(0, 4), "ret": st.integers(0, 9),
    "order_failed": _ORDER, "considered": _COUNT, "defer_shift": st.integers(0, 6),
    "highest_zoneidx": st.integers(0, 4), "succeeded": _COUNT, "failed": _COUNT,
    "thp_succeeded": _COUNT, "thp_failed": _COUNT, "thp_split": _COUNT,
    "large_folio_split": _COUNT, "mode": st.integers(0, 2), "reason": st.integers(0, 10),
    "addr": _U64, "pte": _U64, "pfn": _PFN, "migratetype": st.integers(0, 5),
    "gfp_flags": st.integers(0, (1 << 26) - 1), "percpu_refill": st.integers(0, 1),
    "alloc_order": _ORDER, "fallback_order": _ORDER, "alloc_migratetype": st.integers(0, 5),
    "fallback_migratetype": st.integers(0, 5), "change_ownership": st.integers(0, 1),
    "nr_reclaimed": _COUNT, "nr_dirty": _COUNT, "nr_writeback": _COUNT,
    "nr_congested": _COUNT, "nr_immediate": _COUNT, "nr_activate0": _COUNT,
    "nr_activate1": _COUNT, "nr_ref_keep": _COUNT, "nr_unmap_fail": _COUNT,
    "priority": st.integers(0, 12), "reclaim_flags": st.integers(0, 1), "nr_active": _COUNT,
    "nr_deactivated": _COUNT, "nr_referenced": _COUNT,
}


@st.composite
def _records(draw: st.DrawFn) -> TraceRecord:
    event = draw(st.sampled_from(sorted(EVENT_FIELDS)))
    fields = {f: draw(_FIELD_STRATEGIES[f]) for f in EVENT_FIELDS[event]}
    if event in ("mm_page_alloc", "mm_page_alloc_zone_locked") and draw(st.booleans()):
        fields["pfn"] = -1
    if event == "mm_page_alloc_zone_locked":  # order is unsigned int, printed %u
        fields["order"] = draw(st.integers(0, 10))
    return TraceRecord(
        comm=draw(_COMM), pid=draw(st.integers(0, 4_194_304)), cpu=draw(st.integers(0, 511)),
        timestamp=draw(st.integers(0, 10**11)) / 1e6, event=event, fields=fields,
        flags=draw(st.sampled_from([".....", "d..1.", "dNs2.", "...2.", "d..3."])),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_records(), max_size=8), st.integers(1, 64))
def test_render_parse_round_trip(records: list[TraceRecord], nr_cpus: int) -> None:
    text = render_trace(records, nr_cpus=nr_cpus)
    back = parse_trace(text)
    assert back == records
    assert render_trace(back, nr_cpus=nr_cpus) == text


# ---------------------------------------------------------------------------------------------
# The sink


def test_sink_records_time_and_context() -> None:
    clock = VirtualClock(1_000_000_000_000)
    sink = TraceSink(clock)
    sink.emit("mm_compaction_kcompactd_sleep", nid=0)
    clock.advance(1_499)
    with sink.context(comm="kcompactd0-with-a-long-name", pid=42, cpu=1, flags="d..1."):
        sink.emit("mm_compaction_kcompactd_wake", nid=0, order=9, highest_zoneidx=2)
    clock.advance(1)
    sink.emit("mm_compaction_kcompactd_sleep", nid=0)
    recs = sink.records()
    assert [(r.comm, r.pid, r.cpu, r.flags) for r in recs] == [
        ("swapper/0", 0, 0, "....."), ("kcompactd0-with", 42, 1, "d..1."),
        ("swapper/0", 0, 0, ".....")]
    assert [r.timestamp for r in recs] == [1000.0, 1000.000001, 1000.000002]  # ns2usecs rounds
    text = sink.text(nr_cpus=2)
    assert "# entries-in-buffer/entries-written: 3/3   #P:2" in text
    assert ("kcompactd0-with-42      [001] d..1.  1000.000001: mm_compaction_kcompactd_wake: "
            "nid=0 order=9 classzone_idx=Normal  \n") in text
    assert parse_trace(text) == recs
    assert len(sink) == 3 and sink.raw[0][0] == 1_000_000_000_000
    assert sink.raw[1][1] == ("kcompactd0-with", 42, 1, "d..1.")
    with pytest.raises(InvalidArgument, match="5 characters"), sink.context(flags="d"):
        pass


def test_sink_filters_like_set_event() -> None:
    sink = TraceSink(events=["compaction:*"])
    sink.emit("mm_page_free", pfn=1, order=0)
    sink.emit("mm_compaction_kcompactd_sleep", nid=0)
    assert [r.event for r in sink.records()] == ["mm_compaction_kcompactd_sleep"]
    assert sink.is_enabled("mm_compaction_begin") and not sink.is_enabled("mm_page_free")
    sink.set_event("kmem:mm_page_*", "!mm_page_alloc_extfrag")
    assert sink.events == {"mm_page_alloc", "mm_page_free", "mm_page_free_batched",
                           "mm_page_alloc_zone_locked", "mm_page_pcpu_drain"}
    sink.set_event("migrate:mm_migrate_pages", append=True)
    assert "mm_migrate_pages" in (sink.events or ())
    sink.set_event("my_model_event")
    assert sink.is_enabled("my_model_event")
    with pytest.raises(InvalidArgument, match="matches no event"):
        sink.set_event("nosuch:*")
    sink.enable_all()
    assert sink.events is None and sink.is_enabled("anything")
    sink.enabled = False
    sink.emit("mm_compaction_kcompactd_sleep", nid=1)
    assert len(sink) == 1 and not sink.is_enabled("mm_compaction_begin")
    sink.enabled = True
    sink.emit("mm_compaction_kcompactd_sleep", nid=1)
    assert len(sink) == 2
    sink.clear()
    assert len(sink) == 0 and sink.entries_written == 0


def test_sink_ring_buffer_overwrites_oldest() -> None:
    sink = TraceSink(max_entries=2)
    for nid in range(5):
        sink.emit("mm_compaction_kcompactd_sleep", nid=nid)
    assert [r.fields["nid"] for r in sink.records()] == [3, 4]
    assert "entries-in-buffer/entries-written: 2/5   #P:1" in render_trace(sink)
    with pytest.raises(InvalidArgument):
        TraceSink(max_entries=0)


def test_disabled_sink_records_nothing() -> None:
    """A disabled sink drops every event (its cost is a benchmark figure, not a test)."""
    sink = TraceSink(enabled=False)
    for _ in range(1000):
        sink.emit("mm_compaction_isolate_migratepages", start_pfn=1, end_pfn=2, nr_scanned=3,
                  nr_taken=4)
    assert len(sink) == 0 and sink.entries_written == 0


# ---------------------------------------------------------------------------------------------
# DataFrames


def test_events_dataframe() -> None:
    pytest.importorskip("pandas")
    records = parse_trace(_fixture("compaction-trace.txt"))
    df = events_dataframe(records, "mm_compaction_end")
    assert list(df.columns) == ["comm", "pid", "cpu", "zone_start", "migrate_pfn", "free_pfn",
                                "zone_end", "sync", "status"]
    assert df.index.name == "timestamp"
    assert set(df["status"]) == {"complete"} and set(df["sync"]) == {"sync"}
    raw = events_dataframe(records, "mm_compaction_end", symbolic=False)
    assert set(raw["status"]) == {5}
    iso = events_dataframe(records, "mm_compaction_isolate_migratepages")
    assert len(iso) == sum(r.event == "mm_compaction_isolate_migratepages" for r in records)
    assert iso["nr_scanned"].dtype.kind == "i"
    sink = TraceSink()
    sink.emit("mm_compaction_suitable", nid=0, idx=2, order=9, ret=4)
    df = events_dataframe(sink, "mm_compaction_suitable")
    assert df.iloc[0]["idx"] == "Normal" and df.iloc[0]["ret"] == "continue"
    empty = events_dataframe([], "mm_page_free")
    assert len(empty) == 0 and "pfn" in empty.columns


def test_events_dataframe_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(PagelabError, match=r"pip install 'pagelab\[data\]'"):
        events_dataframe([], "mm_page_free")
