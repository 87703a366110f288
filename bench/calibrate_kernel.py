"""Calibrate pagelab's CostModel on this machine's kernel: ``python bench/calibrate_kernel.py``.

Runs only as root on Linux (it writes /proc/sys/vm/compact_memory and drives tracefs). Prints
one JSON object: the raw figures, the least-squares fits and the resulting CostModel values.
Bounded: about 3 GiB of memory and well under a minute; everything it changes is restored
(tracefs events, buffer size, tracing_on, the tracefs mount, vm.compaction_proactiveness).

What it does (details in bench/calibration.md):

1. ``MAP_POPULATE`` 1 GiB of anonymous 4 KiB pages and ``munmap`` it (3 times): per-page
   fault-in and unmap cost; and the time to clear a 4 KiB page (memset of warm memory).
2. Fragment: map ``--size-mib`` of anonymous memory with ``MADV_NOHUGEPAGE``, touch every
   page, then ``MADV_DONTNEED`` pages in four stripes (keep 1 of 2, 1 of 4, 3 of 4, 1 of 8).
3. Traced run: enable ``compaction:*``, ``migrate:mm_migrate_pages`` and
   ``migrate:mm_migrate_pages_start``, write 1 to /proc/sys/vm/compact_memory, read the trace.
4. Untraced run: fragment again (fresh memory), compact with tracing off, time the write;
   /proc/vmstat deltas for both runs.
5. Fit the per-event windows of the traced run (median regression, numpy; see fit()).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pagelab.io.ftrace import TraceRecord, parse_trace

TRACEFS = Path("/sys/kernel/tracing")
PAGE = 4096
EVENTS = ("compaction:*", "migrate:mm_migrate_pages", "migrate:mm_migrate_pages_start")
STRIPES = ((1, 2), (1, 4), (3, 4), (1, 8))  # keep k of every n pages


def _read(path: Path) -> str:
    return path.read_text()


def _write(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _append(path: Path, text: str) -> None:
    # Like the shell's >>: O_APPEND without the seek Python's "a" mode does (tracefs refuses it).
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def vmstat() -> dict[str, int]:
    out = {}
    for line in Path("/proc/vmstat").read_text().splitlines():
        k, v = line.split()
        if k.startswith(("compact_", "pgmigrate_", "thp_migration")):
            out[k] = int(v)
    return out


def delta(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: b[k] - a[k] for k in a}


@contextmanager
def tracefs_session(buffer_kb: int) -> Iterator[None]:
    """Mount tracefs if needed, size the buffer, and restore every setting on exit."""
    mounted_here = False
    if not (TRACEFS / "trace").exists():
        os.system(f"mount -t tracefs nodev {TRACEFS}")
        mounted_here = True
    saved_events = [ln for ln in _read(TRACEFS / "set_event").splitlines() if ln.strip()]
    saved_on = _read(TRACEFS / "tracing_on").strip()
    saved_size = _read(TRACEFS / "buffer_size_kb").strip()
    saved_size_kb = saved_size.split("expanded: ")[-1].rstrip(")") if "expanded" in saved_size \
        else saved_size
    saved_proactive = _read(Path("/proc/sys/vm/compaction_proactiveness")).strip()
    try:
        _write(Path("/proc/sys/vm/compaction_proactiveness"), "0")  # no kcompactd meddling
        _write(TRACEFS / "tracing_on", "0")
        _write(TRACEFS / "buffer_size_kb", str(buffer_kb))
        _write(TRACEFS / "set_event", "")
        _write(TRACEFS / "trace", "")
        yield
    finally:
        _write(TRACEFS / "tracing_on", "0")
        _write(TRACEFS / "set_event", "")
        for ev in saved_events:
            _append(TRACEFS / "set_event", ev + "\n")
        _write(TRACEFS / "trace", "")
        _write(TRACEFS / "buffer_size_kb", saved_size_kb)
        _write(TRACEFS / "tracing_on", saved_on)
        _write(Path("/proc/sys/vm/compaction_proactiveness"), saved_proactive)
        if mounted_here:
            os.system(f"umount {TRACEFS}")


def bench_fault(size: int, reps: int) -> dict[str, Any]:
    """Per-page MAP_POPULATE and munmap cost of 4 KiB anonymous pages; memset of a page."""
    populate, unmap = [], []
    n = size // PAGE
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
        t1 = time.perf_counter_ns()
        m.close()
        t2 = time.perf_counter_ns()
        populate.append((t1 - t0) / n)
        unmap.append((t2 - t1) / n)
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    buf = (ctypes.c_char * size).from_buffer(m)
    addr = ctypes.addressof(buf)
    clears = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        ctypes.memset(addr, 0, size)
        clears.append((time.perf_counter_ns() - t0) / n)
    del buf
    m.close()
    return {
        "pages": n,
        "populate_ns_per_page": populate,
        "munmap_ns_per_page": unmap,
        "memset_4k_ns": clears,
    }


class Fragmenter:
    """Anonymous memory with holes punched in stripes of different density."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.m.madvise(mmap.MADV_NOHUGEPAGE)
        a = np.frombuffer(self.m, dtype=np.uint8)
        a[::PAGE] = 1  # fault in every page
        del a
        npages = size // PAGE
        stripe = npages // len(STRIPES)
        dropped = 0
        for s, (keep, every) in enumerate(STRIPES):
            base = s * stripe
            for i in range(base, base + stripe):
                if (i - base) % every >= keep:
                    self.m.madvise(mmap.MADV_DONTNEED, i * PAGE, PAGE)
                    dropped += 1
        self.kept = npages - dropped

    def close(self) -> None:
        self.m.close()


def compact() -> int:
    t0 = time.perf_counter_ns()
    _write(Path("/proc/sys/vm/compact_memory"), "1")
    return time.perf_counter_ns() - t0


def _ols(y: np.ndarray, cols: list[np.ndarray], names: list[str]) -> dict[str, Any]:
    """Ordinary least squares with an intercept; keeps the mean, so totals are reproduced."""
    x = np.column_stack([np.ones_like(y), *cols])
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    res = y - x @ coef
    ss_res = float((res**2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {
        "n": len(y),
        "coef_ns": dict(zip(["intercept", *names], (float(c) for c in coef), strict=True)),
        "r2": 1 - ss_res / ss_tot if ss_tot else None,
        "residual_sd_ns": float(np.sqrt(ss_res / max(len(y) - len(coef), 1))),
        "mean_y_ns": float(y.mean()),
        "sum_y_ms": float(y.sum() / 1e6),
        "rank": int(rank),
    }


def _lad(y: np.ndarray, cols: list[np.ndarray], names: list[str]) -> dict[str, Any]:
    """Least absolute deviations (median regression) by iteratively reweighted least squares.

    The windows have a heavy right tail (the guest's vCPU is descheduled by the host now and
    then: p99 of a migration batch is ~25x its median), which makes OLS intercepts swing
    between runs; the median regression gives the typical cost of each operation.
    """
    x = np.column_stack([np.ones_like(y), *cols])
    w = np.ones_like(y)
    coef = np.zeros(x.shape[1])
    for _ in range(100):
        sw = np.sqrt(w)
        coef = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)[0]
        w = 1.0 / np.maximum(np.abs(y - x @ coef), 50.0)  # 50 ns floor: µs timestamps
    res = y - x @ coef
    return {
        "n": len(y),
        "coef_ns": dict(zip(["intercept", *names], (float(c) for c in coef), strict=True)),
        "median_abs_residual_ns": float(np.median(np.abs(res))),
        "sum_y_ms": float(y.sum() / 1e6),
        "sum_predicted_ms": float((x @ coef).sum() / 1e6),
    }


def compaction_pid(records: list[TraceRecord]) -> int:
    """The pid that ran most compact_zone() calls in a trace (the compact_memory writer)."""
    pids = [r.pid for r in records if r.event == "mm_compaction_begin"]
    if not pids:
        raise SystemExit("no mm_compaction_begin event in the trace")
    return max(set(pids), key=pids.count)


Windows = tuple[list[tuple[float, int, int, int]], list[tuple[float, int, int, int, int]],
                list[float], list[dict[str, Any]]]


def windows(records: list[TraceRecord], pid: int) -> Windows:
    """Cut the trace of ``pid`` into the windows fit() uses.

    Windows (timestamps are µs; each event is emitted at the end of what it reports):

    * A: each ``mm_compaction_isolate_migratepages`` minus the event before it (always the
      ``mm_compaction_finished`` of the same loop round) = one ``isolate_migratepages_block``.
      Blocks that isolated pages → ``isolate_block + isolate_page * nr_taken``; blocks
      that isolated nothing (free or unmovable pageblocks) →
      ``migrate_scan_pfn = (median window - isolate_block) / median pfn range``.
    * B: ``mm_migrate_pages_start`` → ``mm_migrate_pages`` = one ``migrate_pages`` call, with
      the free scanner's events inside → ``migrate_pages_call + migrate_page * succeeded +
      free_scan_pfn * (free_scanned - free_taken)`` (a free page taken pairs with a page
      migrated, so taking it is inside ``migrate_page``).
    * C: every other gap inside a zone (``compact_finished``, the step from isolation into
      migrate_pages, putback) → total / number of loop rounds = ``compact_round``.
    * D: begin → first event plus last event → end, per zone → median = ``compact_zone_call``.
    """
    rs = [r for r in records if r.pid == pid]
    a_rows: list[tuple[float, int, int, int]] = []
    b_rows: list[tuple[float, int, int, int, int]] = []
    c_gaps: list[float] = []
    zones: list[dict[str, Any]] = []
    prev: TraceRecord | None = None
    mig_start: float | None = None
    free_scanned = free_taken = 0
    zone: dict[str, Any] | None = None
    for r in rs:
        t = r.timestamp
        ev = r.event
        if ev == "mm_compaction_begin":
            zone = {"zone_start": r.fields["zone_start"], "zone_end": r.fields["zone_end"],
                    "begin_s": t, "first_gap_ns": 0.0, "rounds": 0, "migrate_scanned": 0,
                    "migrate_taken": 0, "free_scanned": 0, "free_taken": 0, "migrated": 0,
                    "failed": 0, "batches": 0}
            prev = r
            continue
        if zone is None or prev is None:
            continue
        dt = (t - prev.timestamp) * 1e9  # ns
        if prev.event == "mm_compaction_begin":
            zone["first_gap_ns"] = dt
        if ev == "mm_compaction_end":
            zone.update(end_s=t, last_gap_ns=dt, total_ns=(t - zone["begin_s"]) * 1e9,
                        status=r.fields.get("status"))
            zones.append(zone)
            zone = None
        elif ev == "mm_compaction_isolate_migratepages":
            f = r.fields
            a_rows.append((dt, f["nr_scanned"], f["nr_taken"], f["end_pfn"] - f["start_pfn"]))
            zone["migrate_scanned"] += f["nr_scanned"]
            zone["migrate_taken"] += f["nr_taken"]
        elif ev == "mm_migrate_pages_start":
            mig_start = t
            free_scanned = free_taken = 0
            c_gaps.append(dt)
        elif ev in ("mm_compaction_isolate_freepages", "mm_compaction_fast_isolate_freepages"):
            free_scanned += r.fields["nr_scanned"]
            free_taken += r.fields["nr_taken"]
            zone["free_scanned"] += r.fields["nr_scanned"]
            zone["free_taken"] += r.fields["nr_taken"]
        elif ev == "mm_migrate_pages" and mig_start is not None:
            f = r.fields
            b_rows.append(((t - mig_start) * 1e9, f["succeeded"], f["failed"], free_scanned,
                           free_taken))
            zone["migrated"] += f["succeeded"]
            zone["failed"] += f["failed"]
            zone["batches"] += 1
            mig_start = None
        else:
            if ev == "mm_compaction_finished":
                zone["rounds"] += 1
            if prev.event != "mm_compaction_begin":
                c_gaps.append(dt)
        prev = r
    return a_rows, b_rows, c_gaps, zones


def fit(sets: list[Windows]) -> dict[str, Any]:
    """Fit the cost model to the pooled windows of one or more traces (see windows()).

    Slopes and intercepts are median regressions (_lad); OLS (mean) fits are reported too.
    """
    a = np.array([r for s in sets for r in s[0]], dtype=float).reshape(-1, 4)
    b = np.array([r for s in sets for r in s[1]], dtype=float).reshape(-1, 5)
    c = np.array([g for s in sets for g in s[2]], dtype=float)
    zones = [z for s in sets for z in s[3]]
    out: dict[str, Any] = {}
    cost: dict[str, float] = {}
    used = a[a[:, 2] > 0]
    empty = a[a[:, 2] == 0]
    if len(used) > 3:
        out["A_isolate_block_with_pages"] = {
            "lad": _lad(used[:, 0], [used[:, 2]], ["nr_taken"]),
            "ols": _ols(used[:, 0], [used[:, 1], used[:, 2]], ["nr_scanned", "nr_taken"]),
            "mean_nr_scanned": float(used[:, 1].mean()),
            "mean_nr_taken": float(used[:, 2].mean()),
        }
        coef = out["A_isolate_block_with_pages"]["lad"]["coef_ns"]
        cost["isolate_block"] = coef["intercept"]
        cost["isolate_page"] = coef["nr_taken"]
    if len(empty):
        out["A_isolate_block_empty"] = {
            "n": len(empty), "median_ns": float(np.median(empty[:, 0])),
            "mean_ns": float(empty[:, 0].mean()),
            "median_range_pfns": float(np.median(empty[:, 3])),
            "mean_nr_scanned": float(empty[:, 1].mean()),
            "sum_ms": float(empty[:, 0].sum() / 1e6),
        }
        if "isolate_block" in cost:
            cost["migrate_scan_pfn"] = max(
                float(np.median(empty[:, 0])) - cost["isolate_block"], 0.0
            ) / float(np.median(empty[:, 3]))
    if len(b) > 3:
        excess = b[:, 3] - b[:, 4]
        bfit: dict[str, Any] = {
            "lad": _lad(b[:, 0], [b[:, 1], excess], ["succeeded", "free_scanned_not_taken"]),
            "ols": _ols(b[:, 0], [b[:, 1], excess], ["succeeded", "free_scanned_not_taken"]),
            "mean_succeeded": float(b[:, 1].mean()),
            "pages": int(b[:, 1].sum()),
            "failed": int(b[:, 2].sum()),
            "free_scanned": int(b[:, 3].sum()),
            "free_taken_per_succeeded": float(b[:, 4].sum() / max(b[:, 1].sum(), 1)),
            "mean_ns_per_page": float(b[:, 0].sum() / max(b[:, 1].sum(), 1)),
            "percentiles_ns_per_page": dict(zip(
                ["p10", "p50", "p90", "p99"],
                (float(x) for x in np.percentile(b[:, 0] / np.maximum(b[:, 1], 1),
                                                [10, 50, 90, 99])), strict=True)),
        }
        out["B_migrate_pages"] = bfit
        coef = bfit["lad"]["coef_ns"]
        cost["migrate_pages_call"] = max(coef["intercept"], 0.0)
        cost["migrate_page"] = coef["succeeded"]
        cost["free_scan_pfn"] = max(coef["free_scanned_not_taken"], 0.0)
    rounds = sum(z["rounds"] for z in zones)
    out["C_loop"] = {"gaps": len(c), "sum_ms": float(c.sum() / 1e6), "rounds": rounds}
    if rounds:
        cost["compact_round"] = float(c.sum()) / rounds
    for z in zones:
        z["edge_ns"] = z["first_gap_ns"] + z["last_gap_ns"]
    out["D_zones"] = zones
    if zones:
        cost["compact_zone_call"] = float(np.median([z["edge_ns"] for z in zones]))
    # How much of the measured time the windows cover (sum of windows vs begin..end), and
    # the measured time over what the typical (median) costs predict for the same work.
    total = sum(z["total_ns"] for z in zones)
    parts = float(a[:, 0].sum() + b[:, 0].sum() + c.sum()) + sum(z["edge_ns"] for z in zones)
    out["accounted_fraction"] = parts / total if total else None
    out["zones_total_ms"] = total / 1e6
    if len(cost) >= 8:
        predicted = (
            cost["isolate_block"] * len(a) + cost["isolate_page"] * a[:, 2].sum()
            + cost["migrate_scan_pfn"] * empty[:, 3].sum()
            + cost["migrate_pages_call"] * len(b) + cost["migrate_page"] * b[:, 1].sum()
            + cost["free_scan_pfn"] * (b[:, 3] - b[:, 4]).sum()
            + cost["compact_round"] * rounds + cost["compact_zone_call"] * len(zones)
        )
        out["predicted_ms"] = float(predicted / 1e6)
        out["measured_over_predicted"] = float(total / predicted)
    out["cost"] = cost
    return out


def trim_fixture(text: str, head: int, tail: int) -> str:
    """Header + the first ``head`` event lines + ... + the last ``tail`` event lines, keeping
    whole zones' begin/end lines and the first migration batches."""
    lines = text.splitlines()
    header = [ln for ln in lines[:20] if ln.startswith("#")]
    events = [ln for ln in lines if ln and not ln.startswith("#")]
    keep = set(range(min(head, len(events))))
    begins = [i for i, ln in enumerate(events) if "mm_compaction_begin:" in ln]
    for i in begins[1:]:  # each later zone's first lines (its first batches)
        keep.update(range(i, min(i + head // 2, len(events))))
    keep.update(range(max(len(events) - tail, 0), len(events)))
    ordered = [events[i] for i in sorted(keep)]
    return "\n".join(header + ordered) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=3072)
    ap.add_argument("--fault-mib", type=int, default=1024)
    ap.add_argument("--buffer-kb", type=int, default=65536)
    ap.add_argument("--fixture", type=Path, help="write a trimmed sample of the trace here")
    ap.add_argument("--save-trace", type=Path, help="write the whole trace here")
    ap.add_argument("--analyze", type=Path, nargs="+", metavar="TRACE",
                    help="no experiment: fit saved traces (pooled); needs no root")
    args = ap.parse_args()
    if args.analyze:
        sets = []
        for path in args.analyze:
            recs = parse_trace(path.read_text())
            sets.append(windows(recs, compaction_pid(recs)))
        print(json.dumps({"traces": [str(p) for p in args.analyze], "fit": fit(sets)},
                         indent=1, default=str))
        return 0
    if sys.platform != "linux" or os.geteuid() != 0:
        print(json.dumps({"error": "run as root on Linux"}))
        return 2
    result: dict[str, Any] = {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "thp": Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip(),
        "size_mib": args.size_mib,
        "stripes_keep_of": STRIPES,
    }
    size = args.size_mib << 20
    with tracefs_session(args.buffer_kb):
        result["fault"] = bench_fault(args.fault_mib << 20, reps=3)
        # Traced run.
        frag = Fragmenter(size)
        result["traced_kept_pages"] = frag.kept
        for ev in EVENTS:
            _append(TRACEFS / "set_event", ev + "\n")
        _write(TRACEFS / "trace", "")
        v0 = vmstat()
        _write(TRACEFS / "tracing_on", "1")
        result["traced_compact_ns"] = compact()
        _write(TRACEFS / "tracing_on", "0")
        result["traced_vmstat"] = delta(v0, vmstat())
        text = _read(TRACEFS / "trace")
        _write(TRACEFS / "set_event", "")
        frag.close()
        # Untraced run on fresh memory.
        frag = Fragmenter(size)
        result["untraced_kept_pages"] = frag.kept
        v0 = vmstat()
        result["untraced_compact_ns"] = compact()
        result["untraced_vmstat"] = delta(v0, vmstat())
        frag.close()
    header = next(ln for ln in text.splitlines() if "entries-in-buffer" in ln)
    result["trace_header"] = header
    if args.save_trace:
        args.save_trace.write_text(text)
    if args.fixture:
        args.fixture.write_text(trim_fixture(text, head=120, tail=40))
    records = parse_trace(text)
    result["trace_events"] = len(records)
    result["fit"] = f = fit([windows(records, os.getpid())])
    fault = result["fault"]
    clear = float(np.median(fault["memset_4k_ns"]))
    f["cost"]["clear_page"] = clear
    f["cost"]["alloc_page"] = float(np.median(fault["populate_ns_per_page"])) - clear
    f["cost"]["free_page"] = float(np.median(fault["munmap_ns_per_page"]))
    # Check: the fitted model applied to the untraced run's /proc/vmstat counts.
    c, u = f["cost"], result["untraced_vmstat"]
    b = f.get("B_migrate_pages", {})
    batches = u["pgmigrate_success"] / b["mean_succeeded"] if b else 0.0
    # (migration side only; the scan of empty blocks and the loop are a few % of the time)
    predicted = (c.get("migrate_page", 0) * u["pgmigrate_success"]
                 + c.get("migrate_pages_call", 0) * batches
                 + c.get("free_scan_pfn", 0) * u["compact_free_scanned"]
                 + c.get("isolate_page", 0) * (u["compact_isolated"] - u["pgmigrate_success"]))
    result["untraced_check"] = {
        "measured_ms": result["untraced_compact_ns"] / 1e6,
        "predicted_ms_migration_and_isolation": predicted / 1e6,
        "traced_ms": result["traced_compact_ns"] / 1e6,
        "traced_ns_per_migrated_page": result["traced_compact_ns"]
        / max(result["traced_vmstat"]["pgmigrate_success"], 1),
        "untraced_ns_per_migrated_page": result["untraced_compact_ns"]
        / max(u["pgmigrate_success"], 1),
    }
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
