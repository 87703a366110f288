"""The seed's experiment: the same phone, the same seed, a kernel before and after v4.8.

``run_experiment`` runs :mod:`pagelab.workloads.phone` on two kernel profiles (by default
``pre-4.8``, where zram's and the GPU's pages are unmovable, and ``v4.8``, the seed's kernel)
in two processes, then :func:`compare` tabulates what the seed is about: success rate and
latency of order-2, 3 and 4 allocations, the compaction counters, pages migrated per driver,
mixed pageblocks and free blocks per order at the end, zram's ``mm_stat``.
:func:`write_results` writes everything to a folder (procfs files, trace, CSV and Parquet
time series, figures, provenance).
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pagelab.errors import BadInput
from pagelab.profile import KernelProfile
from pagelab.workloads.phone import KINDS, PhoneConfig

__all__ = ["COMPARED_COUNTERS", "RunResult", "check_experiment", "compare", "run_experiment",
           "run_one", "success_by_window", "write_results"]

#: The comparison splits each run into this many equal windows to show success over time.
NR_WINDOWS = 4

#: /proc/vmstat counters shown side by side.
COMPARED_COUNTERS = ("compact_stall", "compact_success", "compact_fail", "pgmigrate_success",
                     "pgmigrate_fail", "compact_migrate_scanned", "compact_free_scanned",
                     "compact_daemon_wake", "pswpout", "pswpin", "pgsteal_kswapd",
                     "pgsteal_direct", "allocstall_dma32", "allocstall_normal",
                     "allocstall_movable", "pageoutrun")

#: Trace events recorded during a run (the compaction and reclaim decisions; a bounded buffer).
TRACE_EVENTS = ("mm_compaction_begin", "mm_compaction_end", "mm_compaction_migratepages",
                "mm_compaction_try_to_compact_pages", "mm_compaction_defer_compaction",
                "mm_compaction_kcompactd_wake", "mm_compaction_wakeup_kcompactd",
                "mm_migrate_pages", "mm_vmscan_kswapd_wake", "mm_vmscan_kswapd_sleep",
                "mm_vmscan_wakeup_kswapd", "mm_vmscan_direct_reclaim_begin",
                "mm_vmscan_direct_reclaim_end")
TRACE_MAX_ENTRIES = 200_000


@dataclass
class RunResult:
    """Everything one kernel's run produced (plain data: crosses process boundaries)."""

    profile: str
    config: dict[str, Any]
    requests: dict[str, np.ndarray]
    samples: list[dict[str, float]]
    counters: dict[str, int]
    procfs: dict[str, str]
    mm_stat: str
    trace: str
    pageblock_mt: np.ndarray
    pageblock_used: np.ndarray
    free_blocks: list[int]
    mixed_blocks: int
    migrated: dict[str, int]
    launches: int
    kills: int
    wall_s: float
    virtual_s: float
    extra: dict[str, Any] = field(default_factory=dict)
    #: Of ``kills``, those the low-memory killer made (the rest: the cached-app limit).
    lmk_kills: int = 0
    #: ION's order-4 blocks taken from its pools and from the page allocator.
    ion_order4: dict[str, int] = field(default_factory=dict)


def _driver_factory(spec: str | None) -> Callable[[Any], Any] | None:
    if spec is None:
        return None
    from pagelab.drivers.loader import load_driver

    return load_driver(spec)


def run_one(profile: str | KernelProfile, config: PhoneConfig,
            progress: Callable[[float, float], None] | None = None) -> RunResult:
    """Run the phone on one kernel profile and collect its results."""
    from pagelab.io.ftrace import render_trace
    from pagelab.machine import Machine
    from pagelab.workloads.phone import mixed_pageblocks, pageblock_map, run_phone

    config.validate()
    factory = _driver_factory(config.driver)
    start = time.perf_counter()
    m = Machine.build(memory=config.memory, profile=profile, seed=config.seed,
                      page_owner=True, thp=False, arch=config.arch)
    m.enable_tracing(list(TRACE_EVENTS), max_entries=TRACE_MAX_ENTRIES)
    phone = run_phone(m, config, factory, progress)
    m.check_state()
    mt, used = pageblock_map(m)
    counters = dict(m.vmstat)
    migrated = {"all (pgmigrate_success)": counters["pgmigrate_success"]}
    if phone.zram is not None:
        migrated["zsmalloc (zram)"] = phone.zram.pool.pages_migrated
    gpu = phone.gpu
    if gpu is not None:
        migrated[type(gpu).__name__] = _driver_migrated(gpu)
    result = RunResult(
        profile=m.profile.name, config=asdict(config), requests=phone.requests.columns(),
        samples=phone.samples,
        counters=counters,
        procfs={name: m.procfs(name) for name in ("buddyinfo", "pagetypeinfo", "vmstat",
                                                  "zoneinfo")},
        mm_stat=phone.zram.mm_stat() if phone.zram is not None else "",
        trace=render_trace(m.trace, nr_cpus=m.nr_cpus) if m.trace is not None else "",
        pageblock_mt=mt, pageblock_used=used,
        free_blocks=[sum(z.nr_free[o] for z in m.populated_zones()) for o in range(11)],
        mixed_blocks=mixed_pageblocks(m), migrated=migrated,
        launches=phone.launches, kills=phone.kills,
        lmk_kills=len(phone.lmk.kills) if phone.lmk is not None else 0,
        wall_s=0.0, virtual_s=m.clock.now_ns / 1e9,
        ion_order4=dict(zip(("pool", "page allocator"),
                            phone.ion.blocks_served(KINDS["dmabuf"]), strict=True)),
    )
    # Prove nothing was lost: every owner gives back what it holds, then the state checks.
    phone.release_all()
    m.check_state()
    result.wall_s = time.perf_counter() - start
    return result


def _driver_migrated(driver: Any) -> int:
    """Pages the driver says it moved: ``stats.migrated`` or ``migrated``, else 0."""
    stats = getattr(driver, "stats", None)
    return int(getattr(stats, "migrated", getattr(driver, "migrated", 0)))


def check_experiment(config: PhoneConfig, kernels: tuple[str | KernelProfile, ...]) -> None:
    """Raise the PagelabError a run would meet: bad configuration, profile or driver."""
    from pagelab.profile import resolve_profile

    config.validate()
    for name in kernels:
        resolve_profile(name)
    _driver_factory(config.driver)


def _kernel_name(kernel: str | KernelProfile) -> str:
    return kernel if isinstance(kernel, str) else kernel.name


def _run_in_child(profile: str | KernelProfile, config: PhoneConfig, queue: Any) -> RunResult:
    name = _kernel_name(profile)

    def progress(done: float, total: float) -> None:
        queue.put((name, done, total))

    return run_one(profile, config, progress)


def run_experiment(config: PhoneConfig,
                   kernels: tuple[str | KernelProfile, ...] = ("pre-4.8", "v4.8"),
                   jobs: int = 2,
                   progress: Callable[[str, float, float], None] | None = None
                   ) -> list[RunResult]:
    """Run the phone on each kernel (two processes by default); return results in order.

    ``kernels`` are profile names or :class:`KernelProfile` objects (give them distinct
    names). ``progress(profile name, virtual_seconds_done, total)`` is called as the runs
    advance. With ``jobs > 1`` the runs are separate processes started with "spawn": call
    this from a script under ``if __name__ == "__main__":`` (notebooks need nothing).
    """
    check_experiment(config, kernels)
    if jobs <= 1:
        return [run_one(k, config, _bound(progress, _kernel_name(k))) for k in kernels]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        queue = manager.Queue()
        with ProcessPoolExecutor(max_workers=min(jobs, len(kernels)), mp_context=ctx) as pool:
            futures = [pool.submit(_run_in_child, k, config, queue) for k in kernels]
            while not all(f.done() for f in futures):
                _drain(queue, progress, timeout=0.2)
            _drain(queue, progress, timeout=0.0)
            return [f.result() for f in futures]


def _bound(progress: Callable[[str, float, float], None] | None,
           profile: str) -> Callable[[float, float], None] | None:
    if progress is None:
        return None
    report = progress

    def bound(done: float, total: float) -> None:
        report(profile, done, total)

    return bound


def _drain(queue: Any, progress: Callable[[str, float, float], None] | None,
           timeout: float) -> None:
    import queue as queue_mod

    try:
        item = queue.get(timeout=timeout) if timeout else queue.get_nowait()
        while True:
            if progress is not None:
                progress(*item)
            item = queue.get_nowait()
    except queue_mod.Empty:
        return


# --------------------------------------------------------------------------------- comparison


def request_table(result: RunResult) -> list[dict[str, Any]]:
    """Per order: requests, successes, success rate, latency p50/p99 (µs) of one run."""
    req = result.requests
    rows = []
    for order in sorted(set(KINDS.values())):
        mask = req["order"] == order
        n = int(mask.sum())
        ok = int(req["ok"][mask].sum())
        lat = req["latency_us"][mask]
        rows.append({
            "order": order, "kinds": "/".join(k for k, o in KINDS.items() if o == order),
            "requests": n, "succeeded": ok, "success_rate": ok / n if n else float("nan"),
            "latency_p50_us": float(np.percentile(lat, 50)) if n else float("nan"),
            "latency_p99_us": float(np.percentile(lat, 99)) if n else float("nan"),
        })
    return rows


def success_by_window(result: RunResult, nr_windows: int = NR_WINDOWS) -> list[dict[str, Any]]:
    """Per order and per equal window of the run's virtual time: requests and success rate.

    The seed's effect is a trend ("in the long run"): a whole-run rate mixes the first
    minutes after boot, when every kernel still has whole free pageblocks, with the state the
    phone settles in.
    """
    req = result.requests
    edges = np.linspace(0.0, max(result.virtual_s, float(req["time_s"].max(initial=0.0))),
                        nr_windows + 1)
    window = np.clip(np.searchsorted(edges, req["time_s"], side="right") - 1, 0, nr_windows - 1)
    rows = []
    for order in sorted(set(KINDS.values())):
        of_order = req["order"] == order
        for w in range(nr_windows):
            mask = of_order & (window == w)
            n = int(mask.sum())
            ok = int(req["ok"][mask].sum())
            rows.append({"order": order, "window": w, "start_s": float(edges[w]),
                         "end_s": float(edges[w + 1]), "requests": n, "succeeded": ok,
                         "success_rate": ok / n if n else float("nan")})
    return rows


def _rate(succeeded: int, requests: int) -> str:
    if not requests:
        return "–"
    return "100%" if succeeded == requests else f"{succeeded / requests:.1%}"


def _window_cells(rows: list[dict[str, Any]], order: int) -> str:
    return " / ".join(_rate(row["succeeded"], row["requests"])
                      for row in rows if row["order"] == order)


def compare(results: list[RunResult]) -> list[tuple[str, list[str]]]:
    """Return the comparison as (metric, value per run) rows, in display order."""
    rows: list[tuple[str, list[str]]] = []
    tables = [request_table(r) for r in results]
    for i, row in enumerate(tables[0]):
        order = row["order"]
        rows.append((f"order-{order} success ({row['kinds']})",
                     [f"{_rate(t[i]['succeeded'], t[i]['requests'])} of {t[i]['requests']}"
                      for t in tables]))
        rows.append((f"order-{order} latency p50 / p99",
                     [f"{t[i]['latency_p50_us']:.1f} / {t[i]['latency_p99_us']:.1f} µs"
                      for t in tables]))
    windows = [success_by_window(r) for r in results]
    for row in tables[0]:
        order = row["order"]
        rows.append((f"order-{order} success by quarter of the run",
                     [_window_cells(w, order) for w in windows]))
    rows.extend((name, [f"{r.counters.get(name, 0):,}" for r in results])
                for name in ("compact_stall", "compact_success", "compact_fail",
                             "pgmigrate_success", "pswpout", "pswpin"))
    rows.extend((f"migrated: {key}", [f"{r.migrated.get(key, 0):,}" for r in results])
                for key in sorted({k for r in results for k in r.migrated}))
    rows.append(("mixed pageblocks at the end", [f"{r.mixed_blocks:,}" for r in results]))
    rows.append(("free blocks of order 2 / 3 / 4 / ≥9",
                 [f"{r.free_blocks[2]} / {r.free_blocks[3]} / {r.free_blocks[4]} / "
                  f"{sum(r.free_blocks[9:])}" for r in results]))
    rows.append(("zram mm_stat", [" ".join(r.mm_stat.split()) or "(no zram)" for r in results]))
    rows.append(("ION order-4 blocks: from its pool / from the page allocator",
                 [f"{r.ion_order4.get('pool', 0):,} / {r.ion_order4.get('page allocator', 0):,}"
                  for r in results]))
    rows.append(("apps launched / killed (by the low-memory killer)",
                 [f"{r.launches} / {r.kills} ({r.lmk_kills})" for r in results]))
    rows.append(("wall time", [f"{r.wall_s:.1f} s for {r.virtual_s:.0f} virtual s"
                               for r in results]))
    return rows


# --------------------------------------------------------------------------------- output


def write_results(folder: Path, results: list[RunResult]) -> list[Path]:
    """Write every run's files, the comparison, the time series and figures to ``folder``."""
    import pandas as pd

    from pagelab import __version__
    from pagelab.report.phone import write_figures

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create results folder {folder}: {exc.strerror}; choose "
                       "another --out") from None
    written: list[Path] = []

    def put(name: str, text: str) -> None:
        path = folder / name
        path.write_text(text)
        written.append(path)

    series = []
    requests = []
    for r in results:
        tag = r.profile
        put(f"{tag}.buddyinfo", r.procfs["buddyinfo"])
        put(f"{tag}.pagetypeinfo", r.procfs["pagetypeinfo"])
        put(f"{tag}.vmstat", r.procfs["vmstat"])
        put(f"{tag}.zoneinfo", r.procfs["zoneinfo"])
        put(f"{tag}.mm_stat", r.mm_stat)
        put(f"{tag}.trace", r.trace)
        frame = pd.DataFrame(r.samples)
        frame.insert(0, "kernel", tag)
        series.append(frame)
        req = pd.DataFrame(r.requests)
        req.insert(0, "kernel", tag)
        requests.append(req)
    timeseries = pd.concat(series, ignore_index=True)
    allreq = pd.concat(requests, ignore_index=True)
    for frame, stem in ((timeseries, "timeseries"), (allreq, "requests")):
        frame.to_csv(folder / f"{stem}.csv", index=False)
        frame.to_parquet(folder / f"{stem}.parquet", index=False)
        written += [folder / f"{stem}.csv", folder / f"{stem}.parquet"]
    summary = pd.DataFrame([dict(kernel=r.profile, **row) for r in results
                            for row in request_table(r)])
    summary.to_csv(folder / "summary.csv", index=False)
    written.append(folder / "summary.csv")
    by_window = pd.DataFrame([dict(kernel=r.profile, **row) for r in results
                              for row in success_by_window(r)])
    by_window.to_csv(folder / "success_by_window.csv", index=False)
    written.append(folder / "success_by_window.csv")
    table = compare(results)
    lines = ["metric\t" + "\t".join(r.profile for r in results)]
    lines += [name + "\t" + "\t".join(values) for name, values in table]
    put("comparison.tsv", "\n".join(lines) + "\n")
    provenance = {
        "pagelab": __version__, "python": platform.python_version(),
        "machine": platform.machine(), "config": results[0].config,
        "kernels": [r.profile for r in results],
        "wall_s": {r.profile: round(r.wall_s, 2) for r in results},
        "counters": {r.profile: {k: r.counters.get(k, 0) for k in COMPARED_COUNTERS}
                     for r in results},
    }
    put("provenance.json", json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    written += write_figures(folder, results)
    return written
