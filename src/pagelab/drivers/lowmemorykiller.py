"""Android's in-kernel low-memory killer: a shrinker that kills a process when memory is low.

Models ``drivers/staging/android/lowmemorykiller.c`` as the seed's kernels carried it (v3.12's
``count_objects``/``scan_objects`` form, with node counters from v4.8 [I]; read in its v4.11
form, in the patch that removed it in v4.12, when Android moved to the userspace ``lmkd``).
Userspace writes two module parameters, ``adj`` and ``minfree``: kill a process whose
``oom_score_adj`` is at least ``adj[i]`` once both free memory and the page cache fall below
``minfree[i]`` pages.

Reclaim calls :meth:`LowMemoryKiller.lowmem_scan` through :func:`pagelab.mm.shrinker.
shrink_slab` like any shrinker (``seeks = DEFAULT_SEEKS * 16``: sixteen times costlier than
a cache object, so it is asked rarely). The scan:

1. ``other_free`` = ``NR_FREE_PAGES`` − ``totalreserve_pages``; ``other_file`` =
   ``NR_FILE_PAGES`` − ``NR_SHMEM`` − the swap cache;
2. the first level ``i`` (smallest ``minfree`` first) with both below ``minfree[i]`` sets
   ``min_score_adj = adj[i]``; no such level, nothing to do;
3. while a victim it signalled still has its memory and less than a second (``HZ``) has
   passed, it returns 0 (``task_lmk_waiting``);
4. otherwise it picks the process with the highest ``oom_score_adj`` ≥ ``min_score_adj``,
   the larger RSS on a tie, sends it SIGKILL and reports its RSS as freed.

The victim gives its memory back when it runs and exits (:meth:`pagelab.machine.Machine.
reap_killed`), not inside reclaim. Named simplifications: tasks are the machine's processes
(one task per address space, no kernel threads); the swap cache is already outside the
model's ``NR_FILE_PAGES``, so nothing is subtracted for it; the kill messages of
``lowmem_print`` become :attr:`LowMemoryKiller.kills` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pagelab.errors import InvalidArgument
from pagelab.mm import vmstat as vs
from pagelab.mm.shrinker import (
    DEFAULT_SEEKS,
    ShrinkControl,
    Shrinker,
    register_shrinker,
    unregister_shrinker,
)
from pagelab.mm.vmscan import node_lru_pages

if TYPE_CHECKING:
    from pagelab.machine import Machine
    from pagelab.mm.memory import MmStruct

__all__ = ["LOWMEM_ADJ", "LOWMEM_MINFREE", "OOM_SCORE_ADJ_MAX", "OOM_SCORE_ADJ_MIN",
           "LmkKill", "LowMemoryKiller"]

OOM_SCORE_ADJ_MIN = -1000
OOM_SCORE_ADJ_MAX = 1000
#: The driver's built-in levels (``lowmem_adj``, ``lowmem_minfree``): 6, 8, 16 and 64 MiB.
LOWMEM_ADJ = (0, 1, 6, 12)
LOWMEM_MINFREE = (3 * 512, 2 * 1024, 4 * 1024, 16 * 1024)
#: The module parameters hold at most six levels.
LOWMEM_MAX_LEVELS = 6
#: How long a signalled victim may take to exit before another is chosen (``HZ``).
DEATHPENDING_TIMEOUT_NS = 1_000_000_000


@dataclass(frozen=True)
class LmkKill:
    """One kill, with what ``lowmem_print`` reports ("Killing '%s' (%d), adj %hd, ...")."""

    time_ns: int
    pid: int
    comm: str
    oom_score_adj: int
    rss_pages: int
    min_score_adj: int
    minfree: int
    other_free: int
    other_file: int


class LowMemoryKiller:
    """The driver, loaded: its levels, its shrinker, and the kills it made."""

    def __init__(self, m: Machine, adj: tuple[int, ...] = LOWMEM_ADJ,
                 minfree: tuple[int, ...] = LOWMEM_MINFREE,
                 cost: int = DEFAULT_SEEKS * 16) -> None:
        self.m = m
        self.adj: tuple[int, ...] = ()
        self.minfree: tuple[int, ...] = ()
        self.set_levels(adj, minfree)
        if cost < 1:
            raise InvalidArgument(f"cost {cost}: give the shrinker's seeks, 1 or more")
        self.kills: list[LmkKill] = []
        self.deathpending_timeout_ns = 0
        self.shrinker = Shrinker("lowmemorykiller", count_objects=self.lowmem_count,
                                 scan_objects=self.lowmem_scan, seeks=cost)
        register_shrinker(m, self.shrinker)

    def set_levels(self, adj: tuple[int, ...], minfree: tuple[int, ...]) -> None:
        """Write the ``adj`` and ``minfree`` module parameters (pairs, smallest level first)."""
        adj, minfree = tuple(adj), tuple(minfree)
        if not 1 <= len(adj) <= LOWMEM_MAX_LEVELS or len(adj) != len(minfree):
            raise InvalidArgument(f"lowmemorykiller: {len(adj)} adj and {len(minfree)} minfree "
                                  f"values; give 1..{LOWMEM_MAX_LEVELS} of each, in pairs")
        if any(not OOM_SCORE_ADJ_MIN <= a <= OOM_SCORE_ADJ_MAX for a in adj):
            raise InvalidArgument(f"lowmemorykiller: adj {adj}: give oom_score_adj values in "
                                  f"{OOM_SCORE_ADJ_MIN}..{OOM_SCORE_ADJ_MAX}")
        if any(f < 0 for f in minfree):
            raise InvalidArgument(f"lowmemorykiller: minfree {minfree}: give page counts >= 0")
        self.adj, self.minfree = adj, minfree

    def unregister(self) -> None:
        """Unload the driver (``unregister_shrinker``)."""
        unregister_shrinker(self.m, self.shrinker)

    # --- the shrinker --------------------------------------------------------------------

    def lowmem_count(self, sc: ShrinkControl) -> int:
        """Return the pages on the LRU lists (``lowmem_count``): what killing could free."""
        return sum(int(node_lru_pages(pgdat)) for pgdat in self.m.nodes)

    def other_free(self) -> int:
        """Free pages above the reserves (``NR_FREE_PAGES - totalreserve_pages``)."""
        m = self.m
        free = sum(int(z.vm_stat[vs.NR_FREE_PAGES]) for z in m.zones)
        return free - sum(pgdat.totalreserve_pages for pgdat in m.nodes)

    def other_file(self) -> int:
        """Page cache that is not shmem (``NR_FILE_PAGES - NR_SHMEM``; see the module note)."""
        return sum(int(pgdat.vm_stat[vs.NR_FILE_PAGES] - pgdat.vm_stat[vs.NR_SHMEM])
                   for pgdat in self.m.nodes)

    def min_score_adj(self, other_free: int, other_file: int) -> tuple[int, int]:
        """Return the level reached, as (min_score_adj, minfree), or (ADJ_MAX + 1, 0)."""
        for adj, minfree in zip(self.adj, self.minfree, strict=True):
            if other_free < minfree and other_file < minfree:
                return adj, minfree
        return OOM_SCORE_ADJ_MAX + 1, 0

    def lowmem_scan(self, sc: ShrinkControl) -> int:
        """Kill one process if memory is below a level (``lowmem_scan``); return its RSS."""
        m = self.m
        other_free, other_file = self.other_free(), self.other_file()
        min_score_adj, minfree = self.min_score_adj(other_free, other_file)
        if min_score_adj == OOM_SCORE_ADJ_MAX + 1:
            return 0
        now = m.clock.now_ns
        if now <= self.deathpending_timeout_ns and any(
                mm.sigkill and not mm.dead for mm in m.processes):
            return 0  # the last victim is still exiting
        victim = self.select_victim(min_score_adj)
        if victim is None:
            return 0
        mm, rss = victim
        mm.send_sigkill()
        self.deathpending_timeout_ns = now + DEATHPENDING_TIMEOUT_NS
        self.kills.append(LmkKill(now, mm.pid, mm.name, mm.oom_score_adj, rss, min_score_adj,
                                  minfree, other_free, other_file))
        return rss

    def select_victim(self, min_score_adj: int) -> tuple[MmStruct, int] | None:
        """The highest ``oom_score_adj`` at or above ``min_score_adj``; larger RSS on a tie."""
        selected: tuple[MmStruct, int] | None = None
        for mm in self.m.processes:
            if mm.dead or mm.oom_score_adj < min_score_adj:
                continue
            rss = mm.nr_resident()
            if rss <= 0:
                continue
            if selected is not None:
                best, best_rss = selected
                if mm.oom_score_adj < best.oom_score_adj:
                    continue
                if mm.oom_score_adj == best.oom_score_adj and rss <= best_rss:
                    continue
            selected = (mm, rss)
        return selected
