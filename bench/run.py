"""pagelab benchmarks: ``python bench/run.py NAME [--json]``.

Each benchmark prints one JSON object of figures (``--json``) or a short table. Figures and
the machine they were measured on are recorded in ``bench/README.md``. Benchmarks are not
tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pagelab import Machine, __version__


def _rss_mib() -> float:
    """Return the process's peak resident set size in MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / (1 << 20)


def bench_allocator() -> dict[str, object]:
    """Order-0 alloc+free pairs per second, and mixed-order ops per second, public API."""
    m = Machine.build(memory="4G", seed=1)
    # Warm up the pcp lists as a running system has them.
    for _ in range(10_000):
        m.free_pages(m.alloc_pages(0, "GFP_KERNEL"), 0)  # type: ignore[arg-type]
    n = 500_000
    alloc = m.alloc_pages
    free = m.free_pages
    t0 = time.perf_counter()
    for _ in range(n):
        free(alloc(0, "GFP_KERNEL"), 0)  # type: ignore[arg-type]
    pairs_s = n / (time.perf_counter() - t0)
    # Batches: allocate 256 then free them (pcp refills and trims run).
    t0 = time.perf_counter()
    batches = 1_000
    for _ in range(batches):
        got = [alloc(0, "GFP_HIGHUSER_MOVABLE") for _ in range(256)]
        for pfn in got:
            free(pfn, 0)  # type: ignore[arg-type]
    batch_pairs_s = batches * 256 / (time.perf_counter() - t0)
    # Mixed orders 0..10 with a live population (random frees).
    rng = np.random.default_rng(2)
    orders = rng.integers(0, 11, size=200_000)
    coins = rng.random(200_000)
    held: list[tuple[int, int]] = []
    ops = 0
    t0 = time.perf_counter()
    for order, coin in zip(orders.tolist(), coins.tolist(), strict=True):
        if held and (coin < 0.5 or len(held) > 2000):
            pfn, o = held.pop(int(coin * 1e6) % len(held))
            free(pfn, o)
        else:
            pfn = alloc(order, "GFP_KERNEL" if coin < 0.75 else "GFP_HIGHUSER_MOVABLE")
            if pfn is not None:
                held.append((pfn, order))
        ops += 1
    mixed_s = ops / (time.perf_counter() - t0)
    m.check_state()
    return {
        "alloc_free_pairs_per_s": round(pairs_s),
        "alloc_free_pairs_batched_per_s": round(batch_pairs_s),
        "mixed_order_ops_per_s": round(mixed_s),
        "machine_memory": "4G",
    }


def bench_memory() -> dict[str, object]:
    """Peak RSS and bytes per simulated page of an idle 64 GiB machine."""
    base = _current_rss_mib()
    t0 = time.perf_counter()
    m = Machine.build(memory="64G", seed=1)
    build_s = time.perf_counter() - t0
    present = sum(z.present_pages for z in m.zones)
    rss = _current_rss_mib()
    peak = _rss_mib()
    return {
        "bytes_per_page": round((rss - base) * (1 << 20) / present, 2),
        "memmap_bytes_per_page": round(m.mem.nbytes / present, 2),
        "rss_mib": round(rss, 1),
        "peak_rss_mib": round(peak, 1),
        "baseline_rss_mib": round(base, 1),
        "present_pages": present,
        "boot_s": round(build_s, 3),
    }


def bench_procfs() -> dict[str, object]:
    """Render time of /proc/pagetypeinfo (and the others) for a 64 GiB machine."""
    m = Machine.build(memory="64G", seed=1, page_owner=True)
    out: dict[str, object] = {}
    for name in ("pagetypeinfo", "buddyinfo", "zoneinfo", "vmstat", "extfrag_index"):
        t0 = time.perf_counter()
        reps = 5
        for _ in range(reps):
            m.procfs(name)
        out[f"{name}_render_s"] = round((time.perf_counter() - t0) / reps, 4)
    return out


def _order9_blocks(m: Machine) -> int:
    """Return free memory in 2 MiB units available as order >= 9 blocks (all zones)."""
    return sum(z.nr_free[9] + 2 * z.nr_free[10] for z in m.zones if z.present_pages)


def bench_compaction() -> dict[str, object]:
    """compact_memory on a 24 GiB machine after 8 GiB of anon memory lost every other page."""
    t0 = time.perf_counter()
    m = Machine.build(memory="24G", seed=1)
    task = m.spawn("fragmenter")
    pfns = task.touch(8 << 18)  # 8 GiB of 4 KiB pages
    # Free every other page: those at even pfns (see bench/README.md on why parity matters).
    task.unmap(pfns[pfns % 2 == 0])
    setup_s = time.perf_counter() - t0
    before = m.vmstat
    order9_before = _order9_blocks(m)
    t0 = time.perf_counter()
    m.compact_memory()
    compact_s = time.perf_counter() - t0
    after = m.vmstat
    if task.verify():
        raise SystemExit("compaction lost data: " + "; ".join(task.verify()))
    m.check_state()
    return {
        "compact_memory_s": round(compact_s, 3),
        "pgmigrate_success": after["pgmigrate_success"] - before["pgmigrate_success"],
        "pgmigrate_fail": after["pgmigrate_fail"] - before["pgmigrate_fail"],
        "compact_migrate_scanned": (after["compact_migrate_scanned"]
                                    - before["compact_migrate_scanned"]),
        "compact_free_scanned": after["compact_free_scanned"] - before["compact_free_scanned"],
        "order9_before": order9_before,
        "order9_after": _order9_blocks(m),
        "kernel_compact_memory_s": 1.47,
        "ratio_to_kernel": round(compact_s / 1.47, 2),
        "setup_s": round(setup_s, 2),
    }


def bench_explore() -> dict[str, object]:
    """Schedules per second, and scenario (a) (balloon_deflate) exhaustive at bounds 1 and 2.

    Also every built-in scenario at bound 2, with and without state hashing (schedules run,
    runs stopped at an already explored configuration, seconds).
    """
    from pagelab.sched import explorer as ex
    from pagelab.sched.scenarios import SCENARIOS, get_scenario

    out: dict[str, object] = {}
    for bound in (1, 2):
        found = ex.explore(get_scenario("balloon_deflate"), "exhaustive", bound=bound)
        if found.failure is not None:
            raise SystemExit("the faithful model failed scenario (a)")
        out[f"scenario_a_bound{bound}_s"] = round(found.seconds, 2)
        out[f"scenario_a_bound{bound}_schedules"] = found.schedules
    out["schedules_per_s"] = round(
        int(out["scenario_a_bound2_schedules"]) / float(out["scenario_a_bound2_s"]), 1)
    for name in SCENARIOS:
        for hashing in (False, True):
            found = ex.explore(get_scenario(name), "exhaustive", bound=2,
                               state_hashing=hashing)
            if found.failure is not None:
                raise SystemExit(f"the faithful model failed scenario {name}")
            tag = f"{name}_bound2{'_hashing' if hashing else ''}"
            out[f"{tag}_schedules"] = found.schedules
            out[f"{tag}_s"] = round(found.seconds, 2)
            if hashing:
                out[f"{tag}_pruned"] = found.pruned
    return out


def _kernel_figures(run: Callable[[], Sequence[Any]],
                    describe: Callable[[Any], dict[str, object]]) -> dict[str, object]:
    """Time ``run`` (one result per kernel); each result's figures prefixed by its profile."""
    start = time.perf_counter()
    results = run()
    figures: dict[str, object] = {"wall_s": round(time.perf_counter() - start, 1)}
    for r in results:
        figures[f"{r.profile}_run_wall_s"] = round(r.wall_s, 1)
        figures.update({f"{r.profile}_{name}": value for name, value in describe(r).items()})
    return figures


def bench_phone() -> dict[str, object]:
    """`pagelab run` with its defaults: both kernels, two processes; wall time and results."""
    from pagelab.lab.phone import RunResult, request_table, run_experiment
    from pagelab.workloads.phone import PhoneConfig

    def describe(r: RunResult) -> dict[str, object]:
        figures: dict[str, object] = {}
        for row in request_table(r):
            figures[f"order{row['order']}_success"] = round(row["success_rate"], 4)
            figures[f"order{row['order']}_p99_us"] = round(row["latency_p99_us"], 1)
        figures["mixed_blocks"] = r.mixed_blocks
        for name in ("compact_stall", "compact_success", "compact_fail", "pgmigrate_success",
                     "pswpout", "pswpin"):
            figures[name] = r.counters[name]
        figures["migrated"] = dict(r.migrated)
        figures["ion_order4"] = dict(r.ion_order4)
        figures["launches_kills_lmk"] = [r.launches, r.kills, r.lmk_kills]
        return figures

    return _kernel_figures(lambda: run_experiment(PhoneConfig(), jobs=2), describe)


def bench_zram_dd() -> dict[str, object]:
    """`pagelab experiment zram_dd` with its defaults: both kernels, two processes."""
    from pagelab.lab.zram_dd import high_order_share, run_kernels
    from pagelab.workloads.zram_dd import ZramDdConfig, ZramDdResult

    def describe(r: ZramDdResult) -> dict[str, object]:
        figures: dict[str, object] = {}
        for stage, free in (("init", r.free_init), ("compacted", r.free_compaction)):
            total, share = high_order_share(free)
            figures[f"free_{stage}"] = total
            figures[f"high_share_{stage}"] = round(share, 4)
        figures["pgmigrate_success"] = r.counters["pgmigrate_success"]
        figures["zsmalloc_migrated"] = r.pool_pages_migrated
        return figures

    return _kernel_figures(lambda: run_kernels(ZramDdConfig(), jobs=2), describe)


def bench_preempt_overhead() -> dict[str, object]:
    """Count preemption points hit by compaction, to bound the layer's cost when not exploring."""
    m = Machine.build(memory="4G", seed=1)
    task = m.spawn("fragmenter")
    pfns = task.touch(1 << 18)
    task.unmap(pfns[pfns % 2 == 0])
    calls = [0]

    def count(what: str, pfn: int) -> None:
        calls[0] += 1

    t0 = time.perf_counter()
    m.preempt = count
    m.compact_memory()
    m.preempt = None
    compact_s = time.perf_counter() - t0
    # The layer's cost when not exploring is one attribute test per point; measure it.
    n = 1_000_000
    holder = Machine.build(memory="64M")
    t0 = time.perf_counter()
    for _ in range(n):
        if holder.preempt is not None:
            pass
    check_ns = (time.perf_counter() - t0) / n * 1e9
    return {
        "preemption_points": calls[0],
        "compact_memory_s": round(compact_s, 3),
        "check_ns": round(check_ns, 1),
        "overhead_fraction": round(calls[0] * check_ns * 1e-9 / compact_s, 5),
    }


BENCHMARKS: dict[str, Callable[[], dict[str, object]]] = {
    "phone": bench_phone,
    "zram_dd": bench_zram_dd,
    "explore": bench_explore,
    "preempt_overhead": bench_preempt_overhead,
    "compaction": bench_compaction,
    "allocator": bench_allocator,
    "memory": bench_memory,
    "procfs": bench_procfs,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    figures = BENCHMARKS[args.name]()
    figures = {"benchmark": args.name, **figures, "pagelab": __version__,
               "python": platform.python_version(), "machine": platform.machine()}
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:32} {value}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
