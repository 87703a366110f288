"""The seed's zram test on two kernels, and the changelog's own figures beside the model's.

:func:`run_kernels` runs :func:`pagelab.workloads.zram_dd.run_zram_dd` on each profile (in
separate processes); :func:`compare_rows` lines up, for the model's runs and the changelog's
"old" and "new" guests, the free pages and the share of them in blocks of order 5 and more
(64 KiB... 4 MiB blocks, none of which the changelog's guests had before compaction) at
"init" and after ``compact_memory``.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor

from pagelab.machine import Machine
from pagelab.profile import KernelProfile, resolve_profile
from pagelab.workloads.zram_dd import PUBLISHED, ZramDdConfig, ZramDdResult, run_zram_dd

__all__ = ["HIGH_ORDER", "check_kernels", "compare_rows", "high_order_share", "run_kernels",
           "run_one"]

#: The smallest order counted as "high" in the comparison.
HIGH_ORDER = 5


def high_order_share(free: Mapping[str, Sequence[int]], min_order: int = HIGH_ORDER
                     ) -> tuple[int, float]:
    """Return (free pages, fraction of them in blocks of ``min_order`` or more), all zones."""
    total = sum(n << order for zone in free.values() for order, n in enumerate(zone))
    high = sum(n << order for zone in free.values()
               for order, n in enumerate(zone) if order >= min_order)
    return total, (high / total if total else 0.0)


def run_one(profile: str | KernelProfile, config: ZramDdConfig) -> ZramDdResult:
    """Build the guest for ``profile`` and run the test on it; the state is checked after."""
    start = time.perf_counter()
    m = Machine.build(memory=config.memory, profile=profile, seed=config.seed,
                      page_owner=True)
    result = run_zram_dd(m, config)
    m.check_state()
    result.wall_s = time.perf_counter() - start
    return result


def check_kernels(config: ZramDdConfig, kernels: Sequence[str | KernelProfile]) -> None:
    """Raise the PagelabError a run would meet first: a bad configuration or profile."""
    config.validate()
    for kernel in kernels:
        resolve_profile(kernel)


def run_kernels(config: ZramDdConfig, kernels: Sequence[str | KernelProfile] = ("pre-4.8",
                                                                               "v4.8"),
                jobs: int = 2) -> list[ZramDdResult]:
    """Run the test on each kernel; ``jobs > 1`` uses that many "spawn" processes."""
    check_kernels(config, kernels)
    if jobs <= 1 or len(kernels) == 1:
        return [run_one(kernel, config) for kernel in kernels]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(kernels)), mp_context=ctx) as pool:
        futures = [pool.submit(run_one, kernel, config) for kernel in kernels]
        return [future.result() for future in futures]


def compare_rows(results: Sequence[ZramDdResult]) -> tuple[list[str], list[list[str]]]:
    """Return (column titles, rows): the model's kernels, then the changelog's guests."""
    columns = [f"model {r.profile}" for r in results] + ["changelog old", "changelog new"]
    free_sets: list[tuple[Mapping[str, Sequence[int]], Mapping[str, Sequence[int]]]] = [
        (r.free_init, r.free_compaction) for r in results]
    free_sets += [(PUBLISHED[k]["init"], PUBLISHED[k]["compaction"]) for k in ("old", "new")]
    rows: list[list[str]] = []
    for label, stage in (("init", 0), ("compacted", 1)):
        shares = [high_order_share(pair[stage]) for pair in free_sets]
        rows.append([f"free pages ({label})"] + [f"{total:,}" for total, _ in shares])
        rows.append([f"share >= order {HIGH_ORDER} ({label})"]
                    + [f"{share:.1%}" for _, share in shares])
    blank = ["–", "–"]
    rows.append(["pgmigrate_success"] + [f"{r.counters['pgmigrate_success']:,}"
                                         for r in results] + blank)
    rows.append(["zsmalloc migrated"] + [f"{r.pool_pages_migrated:,}" for r in results]
                + blank)
    rows.append(["zram pool pages"] + [f"{r.pool_pages:,}" for r in results]
                + blank)
    rows.append(["cache: vda1 / files"]
                + [f"{r.bdev_cache_pages:,} / {r.file_cache_pages:,}" for r in results] + blank)
    return columns, rows
