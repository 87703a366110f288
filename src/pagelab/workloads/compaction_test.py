"""The kernel selftest ``tools/testing/selftests/mm/compaction_test.c`` on a model machine.

What the selftest does (v6.x): read MemFree; map 100 MB anonymous chunks with MAP_LOCKED
(mlocked: unevictable but migratable, as ``compact_unevictable_allowed`` is 1) and touch
every page until 80 % of MemFree is used; unmap every other chunk; then ask for
``mem_free * 0.8 / hugepage_size / 2`` huge pages through ``/proc/sys/vm/nr_hugepages``, which
allocates order-9 pages with GFP_HIGHUSER | __GFP_COMP | __GFP_RETRY_MAYFAIL | __GFP_NOWARN |
__GFP_THISNODE, compacting as it goes. It passes when ``compaction_index = mem_free * 0.8 /
(nr_hugepages * hugepage_size)`` is at most 3, i.e. when more than 20 % of MemFree came back
as huge pages.

``pin_holes=True`` is the failing variant: every page the process keeps mapped is pinned
(``pin_user_pages``), and one pinned page stays mapped in every 2 MiB of each unmapped
chunk, so compaction can free no pageblock there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pagelab.errors import InvalidArgument
from pagelab.machine import Machine
from pagelab.mm import vmstat as vs
from pagelab.mm.hugetlb import alloc_pool_huge_folio, free_huge_folio
from pagelab.mm.mmzone import PAGE_SHIFT, pageblock_nr_pages

__all__ = ["CompactionTestResult", "run_compaction_test"]

MAP_SIZE_MB = 100
_COUNTERS = ("compact_stall", "compact_success", "compact_fail", "compact_migrate_scanned",
             "compact_free_scanned", "compact_isolated", "pgmigrate_success", "pgmigrate_fail")


@dataclass
class CompactionTestResult:
    """What the selftest saw, and the kernel files before and after."""

    mem_free_kb: int
    hugepage_size_kb: int
    nr_hugepages: int
    compaction_index: int
    passed: bool
    buddyinfo_before: str
    buddyinfo_after: str
    counters: dict[str, int] = field(default_factory=dict)

    def tap(self) -> str:
        """Return the selftest's TAP output."""
        lines = ["TAP version 13", "1..1"]
        if self.nr_hugepages == 0:
            lines.append("# ERROR: No memory is available as huge pages")
        else:
            lines.append(f"# Number of huge pages allocated = {self.nr_hugepages}")
            if self.compaction_index > 3:
                lines.append(f"# ERROR: Less than 1/{self.compaction_index} of memory is "
                             "available")
                lines.append("as huge pages")
        lines.append(f"{'ok' if self.passed else 'not ok'} 1 check_compaction")
        fail = 0 if self.passed else 1
        lines.append(f"# Totals: pass:{1 - fail} fail:{fail} xfail:0 xpass:0 skip:0 error:0")
        return "\n".join(lines) + "\n"


def _mem_free_kb(m: Machine) -> int:
    return sum(z.vm_stat[vs.NR_FREE_PAGES] for z in m.zones) << (PAGE_SHIFT - 10)


def run_compaction_test(m: Machine, pin_holes: bool = False,
                        progress: Callable[[str], None] | None = None) -> CompactionTestResult:
    """Run compaction_test on ``m``; return what it printed and the counters it moved."""
    say = progress or (lambda _msg: None)
    mem_free_kb = _mem_free_kb(m)
    hugepage_kb = pageblock_nr_pages << (PAGE_SHIFT - 10)
    chunk_pages = (MAP_SIZE_MB << 20) >> PAGE_SHIFT
    fragmentable_mb = int(mem_free_kb * 0.8 / 1024)
    if fragmentable_mb < 2 * MAP_SIZE_MB:
        raise InvalidArgument(f"the machine has {mem_free_kb >> 10} MiB free; compaction_test "
                              f"needs at least {5 * MAP_SIZE_MB // 2} MiB: give more memory")
    before = {name: m.vmstat[name] for name in _COUNTERS}
    buddy_before = m.procfs("buddyinfo")
    task = m.spawn("compaction_test")
    chunks: list[np.ndarray] = []
    say("mapping and touching 100 MB mlocked chunks")
    while fragmentable_mb > 0:
        pfns = task.touch(chunk_pages)
        task.mlock(pfns)
        chunks.append(pfns)
        fragmentable_mb -= MAP_SIZE_MB
        if len(pfns) < chunk_pages:
            break
    say("unmapping every other chunk")
    for i, pfns in enumerate(chunks):
        if i % 2 == 0:
            if pin_holes:
                keep = pfns[::pageblock_nr_pages]
                task.unmap(np.setdiff1d(pfns, keep))
                task.pin(keep)
            else:
                task.unmap(pfns)
        elif pin_holes:
            task.pin(pfns)
    say("allocating huge pages")
    # check_compaction() reuses the MemFree read at the start.
    target = int(mem_free_kb * 0.8) // hugepage_kb // 2
    huge: list[int] = []
    for _ in range(target):
        pfn = alloc_pool_huge_folio(m, m.cpu % m.nr_nodes)
        if pfn < 0:
            break
        huge.append(pfn)
    nr_hugepages = len(huge)
    compaction_index = int(mem_free_kb * 0.8) // (nr_hugepages * hugepage_kb) if huge else 0
    passed = nr_hugepages > 0 and compaction_index <= 3
    result = CompactionTestResult(
        mem_free_kb=mem_free_kb, hugepage_size_kb=hugepage_kb, nr_hugepages=nr_hugepages,
        compaction_index=compaction_index, passed=passed, buddyinfo_before=buddy_before,
        buddyinfo_after=m.procfs("buddyinfo"),
        counters={name: m.vmstat[name] - before[name] for name in _COUNTERS},
    )
    for pfn in huge:  # write the initial nr_hugepages (0) back
        free_huge_folio(m, pfn)
    task.exit()  # the process exits: pins dropped, everything unmapped
    return result
