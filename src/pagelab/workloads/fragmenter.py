"""The proactive-compaction fragmenter, and kcompactd working it off over virtual time.

The workload of the proactive compaction series (Nitin Gupta, v5.9): allocate (nearly) all
memory, then free 3/4 of every 2 MiB, leaving one page in four scattered through every
pageblock. No allocation asks for huge pages afterwards: only kcompactd's proactive mode, which
wakes every HPAGE_FRAG_CHECK_INTERVAL_MSEC (500 ms) and compacts while the node's fragmentation
score is above ``100 - compaction_proactiveness`` + 10, can bring the huge pages back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pagelab.errors import InvalidArgument
from pagelab.machine import Machine
from pagelab.mm import compaction
from pagelab.mm import vmstat as vs

__all__ = ["FragmenterResult", "run_fragmenter"]

HPAGE_FRAG_CHECK_INTERVAL_MSEC = 500
_COUNTERS = ("compact_daemon_wake", "compact_daemon_migrate_scanned",
             "compact_daemon_free_scanned", "pgmigrate_success", "pgmigrate_fail")


@dataclass
class FragmenterResult:
    """Fragmentation score over virtual time, and what kcompactd did."""

    times_ms: list[int] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)
    order9_blocks: list[int] = field(default_factory=list)
    buddyinfo_before: str = ""
    buddyinfo_after: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    wmark_low: int = 0
    wmark_high: int = 0


def _order9(m: Machine) -> int:
    return sum(z.nr_free[9] + 2 * z.nr_free[10] for z in m.populated_zones())


def run_fragmenter(m: Machine, seconds: float = 10.0, fill: float = 0.98,
                   progress: Callable[[int, int], None] | None = None) -> FragmenterResult:
    """Fragment ``m`` and let kcompactd's proactive mode run for ``seconds`` of virtual time."""
    if not 0 < fill < 1:
        raise InvalidArgument(f"fill={fill}: give the fraction of free memory to take, in (0, 1)")
    if seconds <= 0:
        raise InvalidArgument(f"seconds={seconds}: give a positive duration")
    free = sum(z.vm_stat[vs.NR_FREE_PAGES] for z in m.zones)
    task = m.spawn("fragmenter")
    pfns = task.touch(int(free * fill))
    # Free 3/4 of every 2 MiB, the kept quarter chosen at random (seeded). A regular pattern
    # (say, every fourth pfn) would hide the free pages from the free scanner, which samples
    # with a stride of up to 32 pfns once blocks yield nothing (isolate_freepages).
    rng = np.random.default_rng(np.random.SeedSequence(m.seed))
    keep = rng.random(len(pfns)) < 0.25
    task.unmap(pfns[~keep])
    result = FragmenterResult(buddyinfo_before=m.procfs("buddyinfo"),
                              wmark_low=compaction.fragmentation_score_wmark(m, True),
                              wmark_high=compaction.fragmentation_score_wmark(m, False))
    before = {name: m.vmstat[name] for name in _COUNTERS}
    start = m.clock.now_ns
    end = start + int(seconds * 1e9)
    ticks = int(seconds * 1000 / HPAGE_FRAG_CHECK_INTERVAL_MSEC)
    for tick in range(ticks):
        m.charge(HPAGE_FRAG_CHECK_INTERVAL_MSEC * 1_000_000)
        for nid in range(len(m.nodes)):
            compaction.kcompactd_run(m, nid)
        result.times_ms.append((m.clock.now_ns - start) // 1_000_000)
        result.scores.append(compaction.fragmentation_score_node(m.nodes[0]))
        result.order9_blocks.append(_order9(m))
        if progress is not None:
            progress(tick + 1, ticks)
        if m.clock.now_ns >= end:
            break
    result.buddyinfo_after = m.procfs("buddyinfo")
    result.counters = {name: m.vmstat[name] - before[name] for name in _COUNTERS}
    problems = task.verify()
    if problems:
        raise AssertionError("; ".join(problems))
    task.exit()
    return result

