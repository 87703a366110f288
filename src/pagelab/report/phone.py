"""Figures of the phone experiment (matplotlib, Agg): each function draws on an ``ax`` it is
given, and :func:`write_figures` saves the three PNGs ``pagelab run`` writes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pagelab.mm.mmzone import MIGRATE_TYPES
from pagelab.workloads.phone import KINDS

if TYPE_CHECKING:
    from pagelab.lab.phone import RunResult

__all__ = ["plot_free_blocks", "plot_pageblock_map", "plot_success_over_time", "write_figures"]

#: Colours of pageblock migratetypes (Unmovable, Movable, Reclaimable, HighAtomic, CMA, Isolate).
MT_COLOURS = ("#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#7f7f7f")
MT_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate")
RUN_STYLES = ("--", "-")


def plot_success_over_time(ax: Any, results: list[RunResult], order: int) -> None:
    """Cumulative success rate of order-``order`` requests over virtual time, per kernel."""
    for style, r in zip(RUN_STYLES, results, strict=False):
        req = r.requests
        mask = req["order"] == order
        if not mask.any():
            continue
        t = req["time_s"][mask]
        ok = np.cumsum(req["ok"][mask])
        rate = ok / np.arange(1, len(ok) + 1)
        ax.plot(t, 100 * rate, style, label=r.profile)
    kinds = "/".join(k for k, o in KINDS.items() if o == order)
    ax.set_title(f"order {order} ({kinds})")
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("succeeded so far (%)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no requests", ha="center", va="center", transform=ax.transAxes)


def plot_free_blocks(ax: Any, results: list[RunResult]) -> None:
    """Free blocks per order at the end of each run (log scale), side by side."""
    orders = np.arange(11)
    width = 0.8 / max(len(results), 1)
    for i, r in enumerate(results):
        ax.bar(orders + i * width - 0.4 + width / 2, np.maximum(r.free_blocks, 0.5), width,
               label=r.profile)
    ax.set_yscale("log")
    ax.set_xticks(orders)
    ax.set_xlabel("order")
    ax.set_ylabel("free blocks at the end")
    ax.set_title("free blocks per order (/proc/buddyinfo, all zones)")
    ax.legend()


def plot_pageblock_map(ax: Any, result: RunResult, columns: int = 64) -> None:
    """Every pageblock as a cell: colour = migratetype, brightness = share of pages in use."""
    mt = result.pageblock_mt
    used = result.pageblock_used
    rows = -(-len(mt) // columns)
    image = np.ones((rows * columns, 3))
    colours = np.array([_rgb(c) for c in MT_COLOURS])
    known = (mt >= 0) & (mt < MIGRATE_TYPES)
    shade = 0.25 + 0.75 * used[known, None]
    image[np.nonzero(known)[0]] = 1 - (1 - colours[mt[known]]) * shade
    ax.imshow(image.reshape(rows, columns, 3), interpolation="nearest", aspect="auto")
    ax.set_title(f"{result.profile}: pageblocks ({result.mixed_blocks} mixed)")
    ax.set_xticks([])
    ax.set_yticks([])
    for name, colour in zip(MT_NAMES[:3], MT_COLOURS[:3], strict=True):
        ax.plot([], [], "s", color=colour, label=name)
    ax.legend(loc="upper right", fontsize="small", framealpha=0.8)


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    value = int(hex_colour[1:], 16)
    return ((value >> 16) / 255, (value >> 8 & 0xFF) / 255, (value & 0xFF) / 255)


def write_figures(folder: Path, results: list[RunResult]) -> list[Path]:
    """Save ``success_over_time.png``, ``free_blocks.png`` and ``pageblock_map.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    orders = sorted(set(KINDS.values()))
    fig, axes = plt.subplots(1, len(orders), figsize=(5 * len(orders), 4), squeeze=False)
    for ax, order in zip(axes[0], orders, strict=True):
        plot_success_over_time(ax, results, order)
    fig.suptitle("high-order allocations: success over time")
    fig.tight_layout()
    paths.append(_save(fig, folder / "success_over_time.png"))
    fig, ax = plt.subplots(figsize=(7, 4))
    plot_free_blocks(ax, results)
    fig.tight_layout()
    paths.append(_save(fig, folder / "free_blocks.png"))
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 5), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        plot_pageblock_map(ax, r)
    fig.tight_layout()
    paths.append(_save(fig, folder / "pageblock_map.png"))
    plt.close("all")
    return paths


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    return path
