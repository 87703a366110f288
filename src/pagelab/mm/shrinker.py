"""Shrinkers: how reclaim asks caches that live outside the LRU lists to give memory back.

Models ``mm/shrinker.c`` (split out of ``mm/vmscan.c`` in v6.7) for machines without memory
cgroups: ``register_shrinker``/``unregister_shrinker`` (today ``shrinker_alloc`` +
``shrinker_register``/``shrinker_free``), ``shrink_slab`` over the global list and
``do_shrink_slab``, whose scan target follows reclaim's priority (Josef Bacik, "mm: use
sc->priority for slab shrink targets", 9092c71bb724, v4.16): ``delta = (freeable >> priority)
* 4 / seeks``, plus the work deferred by earlier calls shifted by the same priority, the
deferral capped at twice what the cache could free (Yang Shi, "mm: vmscan: shrink deferred
objects proportional to priority", read as posted; merged around v5.13 [I]). A profile
without ``shrink_slab_priority_target`` follows v4.8 instead, where the target was the share
of the node's LRU pages that the same ``shrink_node`` had just scanned. ``SLABS_SCANNED``
counts the objects handed to ``scan_objects``.

A shrinker here is a pair of callables, ``count_objects(sc)`` and ``scan_objects(sc)``, as in
``struct shrinker``; zsmalloc's pool registers one (``zs_shrinker_count`` and
``zs_shrinker_scan``: the pool's own compaction). Named simplifications: no memcg-aware
shrinkers, shrinkers are not NUMA-aware (their deferred work lives on node 0, as the kernel
keeps it for a shrinker without ``SHRINKER_NUMA_AWARE``), and the ``mm_shrink_slab_start``/
``end`` tracepoints are not emitted (they print kernel pointers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pagelab.mm import vmstat as vs
from pagelab.mm.internal import SWAP_CLUSTER_MAX

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["DEFAULT_SEEKS", "SHRINK_BATCH", "SHRINK_EMPTY", "SHRINK_STOP", "ShrinkControl",
           "Shrinker", "do_shrink_slab", "register_shrinker", "shrink_slab",
           "unregister_shrinker"]

#: ``scan_objects`` has nothing it can free now (``~0UL``).
SHRINK_STOP = (1 << 64) - 1
#: ``count_objects``: the cache is empty (``~0UL - 1``).
SHRINK_EMPTY = SHRINK_STOP - 1
#: Objects handed to ``scan_objects`` at a time unless the shrinker says (``SHRINK_BATCH``).
SHRINK_BATCH = 128
#: How costly a freed object is to recreate, in "seeks" (``DEFAULT_SEEKS``).
DEFAULT_SEEKS = 2


@dataclass
class ShrinkControl:
    """``struct shrink_control``: what reclaim asks one shrinker for."""

    gfp_mask: int
    nid: int
    nr_to_scan: int = 0
    nr_scanned: int = 0


@dataclass(eq=False)
class Shrinker:
    """``struct shrinker``: a cache's two callbacks and the work deferred to later calls."""

    name: str
    count_objects: Callable[[ShrinkControl], int]
    scan_objects: Callable[[ShrinkControl], int]
    seeks: int = DEFAULT_SEEKS
    batch: int = 0
    nr_deferred: int = 0
    #: Objects freed through this shrinker (the model's tally, shown in tests).
    freed: int = 0


def register_shrinker(m: Machine, shrinker: Shrinker) -> None:
    """Put ``shrinker`` on the machine's list (``shrinker_register``)."""
    m.shrinkers.append(shrinker)


def unregister_shrinker(m: Machine, shrinker: Shrinker) -> None:
    """Take ``shrinker`` off the list (``shrinker_free``); unknown shrinkers are ignored."""
    if shrinker in m.shrinkers:
        m.shrinkers.remove(shrinker)


def do_shrink_slab(m: Machine, sc: ShrinkControl, shrinker: Shrinker, priority: int,
                   nr_scanned: int = 0, nr_eligible: int = 0) -> int:
    """Ask one shrinker for a share of its objects (``do_shrink_slab``).

    The share follows reclaim's ``priority`` (v4.16+) or, on a profile without
    ``shrink_slab_priority_target`` (v4.8), the ratio of LRU pages scanned to LRU pages
    eligible, ``nr_scanned / nr_eligible``. Returns what it freed, or ``count_objects``' 0 /
    SHRINK_EMPTY untouched.
    """
    freeable = shrinker.count_objects(sc)
    if freeable == 0 or freeable == SHRINK_EMPTY:
        return freeable
    nr = shrinker.nr_deferred
    shrinker.nr_deferred = 0
    if m.profile.shrink_slab_priority_target:
        delta, total_scan = _priority_target(shrinker, freeable, nr, priority)
    else:
        delta, total_scan = _proportional_target(shrinker, freeable, nr, nr_scanned,
                                                 nr_eligible)
    batch_size = shrinker.batch or SHRINK_BATCH
    freed = scanned = 0
    while total_scan >= batch_size or total_scan >= freeable:
        sc.nr_to_scan = sc.nr_scanned = min(batch_size, total_scan)
        ret = shrinker.scan_objects(sc)
        if ret == SHRINK_STOP:
            break
        freed += ret
        m.vm_events[vs.SLABS_SCANNED] += sc.nr_scanned
        total_scan -= sc.nr_scanned
        scanned += sc.nr_scanned
    # Work not done now is deferred to the next call, within reason.
    if m.profile.shrink_slab_priority_target:
        shrinker.nr_deferred += min(max(nr + delta - scanned, 0), 2 * freeable)
    else:
        shrinker.nr_deferred += max(total_scan, 0)
    shrinker.freed += freed
    return freed


def _priority_target(shrinker: Shrinker, freeable: int, nr: int,
                     priority: int) -> tuple[int, int]:
    """v4.16+: ``(freeable >> priority) * 4 / seeks``, deferred work shifted by priority."""
    if shrinker.seeks:
        delta = (freeable >> priority) * 4 // shrinker.seeks
    else:
        delta = freeable // 2
    return delta, min((nr >> priority) + delta, 2 * freeable)


def _proportional_target(shrinker: Shrinker, freeable: int, nr: int, nr_scanned: int,
                         nr_eligible: int) -> tuple[int, int]:
    """v4.8: the share of the LRU scanned, ``4 * nr_scanned / seeks * freeable / eligible``.

    A small delta may not wind up more than half the cache from deferred work (the
    "excessive windup" guard), and never more than twice the cache. v4.8 deferred whatever
    of the target was left unscanned; v4.10 (Shaohua Li, "set correct defer count for
    shrinker" [I]) began deferring the target minus what was scanned.
    """
    delta = (4 * nr_scanned) // max(shrinker.seeks, 1) * freeable // (nr_eligible + 1)
    total_scan = nr + delta
    if delta < freeable // 4:
        total_scan = min(total_scan, freeable // 2)
    return delta, min(total_scan, 2 * freeable)


def shrink_slab(m: Machine, gfp_mask: int, nid: int, priority: int, nr_scanned: int = 0,
                nr_eligible: int = 0) -> int:
    """Run every registered shrinker once for reclaim at ``priority`` (``shrink_slab``).

    ``nr_scanned`` and ``nr_eligible`` are the LRU pages this ``shrink_node`` scanned and the
    node's LRU pages: v4.8's pressure ratio (a round that scanned nothing counts as
    ``SWAP_CLUSTER_MAX``). Returns the objects freed (the caller does not count them as
    reclaimed pages: only slab pages freed through ``reclaim_state`` are, and the model has
    no slab allocator).
    """
    if not nr_scanned:
        nr_scanned = SWAP_CLUSTER_MAX
    freed = 0
    for shrinker in list(m.shrinkers):
        # A shrinker that is not NUMA-aware is always called for node 0.
        ret = do_shrink_slab(m, ShrinkControl(gfp_mask, 0), shrinker, priority, nr_scanned,
                             nr_eligible)
        freed += 0 if ret == SHRINK_EMPTY else ret
    return freed
