"""A seeded allocation churn: the built-in allocator demo.

Random allocations and frees of mixed orders and migratetypes, the way a busy kernel mixes
page-cache and anonymous pages (movable) with slab and driver buffers (unmovable,
reclaimable). Long-lived unmovable allocations scattered among short-lived movable ones is
what fragments memory; the demo shows it in the kernel's own files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pagelab.errors import InvalidArgument
from pagelab.machine import Machine

__all__ = ["ChurnResult", "ChurnSpec", "run_churn"]

#: (gfp, weight, lifetime scale): movable pages come and go; kernel objects mostly stay.
DEFAULT_MIX: tuple[tuple[str, float, float], ...] = (
    ("GFP_HIGHUSER_MOVABLE", 0.70, 1.0),
    ("GFP_KERNEL", 0.20, 20.0),
    ("GFP_KERNEL|__GFP_RECLAIMABLE", 0.10, 5.0),
)
#: Orders requested, with weights: mostly single pages, some small high-order buffers.
DEFAULT_ORDERS: tuple[tuple[int, float], ...] = ((0, 0.80), (1, 0.08), (2, 0.06), (3, 0.05),
                                                 (4, 0.01))


@dataclass(frozen=True)
class ChurnSpec:
    """What the churn does: how many steps, how full memory gets, and the request mix."""

    steps: int = 200_000
    target_fill: float = 0.85
    mix: tuple[tuple[str, float, float], ...] = DEFAULT_MIX
    orders: tuple[tuple[int, float], ...] = DEFAULT_ORDERS

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise InvalidArgument(f"steps={self.steps}: give a number of steps >= 0")
        if not 0.0 < self.target_fill < 1.0:
            raise InvalidArgument(f"target_fill={self.target_fill}: give a fraction in (0, 1)")


@dataclass
class ChurnResult:
    """Counts of what the churn asked for and got, per order."""

    requested: dict[int, int] = field(default_factory=dict)
    failed: dict[int, int] = field(default_factory=dict)
    frees: int = 0
    held_pages: int = 0


def run_churn(m: Machine, spec: ChurnSpec | None = None,
              progress: Callable[[int, int], None] | None = None) -> ChurnResult:
    """Run a seeded alloc/free churn on ``m`` (seed: ``m.seed``); return what happened.

    Memory first fills up to ``target_fill`` of the managed pages, then churns around that
    level: each step allocates while below it and otherwise frees a held block, chosen with a
    bias towards short-lived (movable) ones. ``progress(done, total)`` is
    called every 10,000 steps.
    """
    spec = spec or ChurnSpec()
    rng = np.random.default_rng(np.random.SeedSequence(m.seed))
    gfps = [g for g, _, _ in spec.mix]
    gfp_p = np.array([w for _, w, _ in spec.mix])
    lifetimes = [life for _, _, life in spec.mix]
    orders = [o for o, _ in spec.orders]
    order_p = np.array([w for _, w in spec.orders])
    managed = sum(z.managed_pages for z in m.zones)
    target = int(managed * spec.target_fill)
    held: list[tuple[int, int, int]] = []  # (pfn, order, kind)
    held_pages = 0
    result = ChurnResult(requested=dict.fromkeys(orders, 0), failed=dict.fromkeys(orders, 0))
    # Draw in bulk: numpy's per-call overhead would dominate otherwise.
    kinds = rng.choice(len(gfps), size=spec.steps, p=gfp_p / gfp_p.sum())
    order_draw = rng.choice(orders, size=spec.steps, p=order_p / order_p.sum())
    picks = rng.random(spec.steps)
    survive = rng.random(spec.steps)
    for step in range(spec.steps):
        if held_pages < target or not held:
            kind = int(kinds[step])
            order = int(order_draw[step])
            result.requested[order] += 1
            pfn = m.alloc_pages(order, gfps[kind])
            if pfn is None:
                result.failed[order] += 1
            else:
                held.append((pfn, order, kind))
                held_pages += 1 << order
        else:
            # Pick a victim; long-lived kinds survive a pick with probability 1 - 1/lifetime.
            idx = int(picks[step] * len(held))
            pfn, order, kind = held[idx]
            if survive[step] > 1.0 / lifetimes[kind]:
                continue
            held[idx] = held[-1]
            held.pop()
            m.free_pages(pfn, order)
            held_pages -= 1 << order
            result.frees += 1
        if progress is not None and step % 10_000 == 0:
            progress(step, spec.steps)
    result.held_pages = held_pages
    return result
