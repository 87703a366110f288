"""Scenarios for the schedule explorer: the races the 2016 review discusses, and more.

Each scenario sets up a small machine, gives every CPU a program made of the ordinary model
functions, and says what must hold. They are deliberately small (a handful of pages), so that
exhaustive exploration with a preemption bound of 2 finishes in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pagelab.errors import InvalidArgument
from pagelab.machine import Machine
from pagelab.mm import migrate as mg
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.gfp import GFP_HIGHUSER_MOVABLE
from pagelab.sched.explorer import Scenario

__all__ = ["SCENARIOS", "get_scenario", "isolate_and_migrate", "no_stray_isolation"]

SCENARIO_MEMORY = "64M"


def isolate_and_migrate(m: Machine, pfns: list[int],
                        mode: mg.MigrateMode = mg.MigrateMode.MIGRATE_SYNC_LIGHT) -> None:
    """What compaction does with the non-LRU pages it meets, page by page, on this CPU.

    ``isolate_migratepages_block`` isolates each page with ``isolate_movable_page`` onto
    ``cc->migratepages``; ``compact_zone`` then calls ``migrate_pages`` and puts back what is
    left. NR_ISOLATED follows the profile (v4.8 counts non-LRU pages too).
    """
    head = m.alloc_list_head()
    for pfn in pfns:
        if pf.__PageMovable(m.mem, pfn) and not pf.PageIsolated(m.mem, pfn) and \
                mg.isolate_movable_page(m, pfn, mg.ISOLATE_ASYNC_MIGRATE):
            m.mem.list_add(pfn, head)
            if m.profile.nr_isolated_v48:
                mg.mod_isolated(m, pfn, 1)
    if not m.mem.list_empty(head):
        rc, _ = mg.migrate_pages(m, head, lambda _old: m.alloc_page_raw(GFP_HIGHUSER_MOVABLE, 0,
                                                                         0),
                                 None, mode, mg.MigrateReason.MR_COMPACTION)
        if rc:
            mg.putback_movable_pages(m, head)
    m.release_list_head(head)


def no_stray_isolation(m: Machine, ctx: Any) -> list[str]:
    """Final check: no page left PG_isolated with the movable type, NR_ISOLATED back to 0."""
    mem = m.mem
    problems = []
    flagged = np.nonzero((mem.flags & np.uint64(1 << pf.PG_isolated)) != 0)[0]
    for pfn in flagged[:5]:
        pfn = int(pfn)
        if pf.__PageMovable(mem, pfn) and mem.refcount_mv[pfn] > 0:
            problems.append(f"pfn {pfn:#x} is still PG_isolated after every CPU finished: "
                            f"{mem.dump_page(pfn)}")
    for node in m.nodes:
        iso = node.vm_stat[vs.NR_ISOLATED_ANON] + node.vm_stat[vs.NR_ISOLATED_FILE]
        if iso:
            problems.append(f"node {node.node_id}: NR_ISOLATED is {iso} at the end")
    return problems


# --- (a) balloon page isolated by compaction while the driver deflates it ---------------------


def _balloon_deflate_setup(nr_pages: int) -> Callable[[], tuple[Machine, Any]]:
    def setup() -> tuple[Machine, Any]:
        from pagelab.drivers.virtio_balloon import Balloon

        m = Machine.build(memory=SCENARIO_MEMORY, cpus=2)
        balloon = Balloon(m)
        balloon.inflate(nr_pages)
        pages, _ = balloon.owned_pages()
        return m, {"balloon": balloon, "pages": sorted(pages)}

    return setup


def _balloon_check(m: Machine, ctx: Any) -> list[str]:
    return list(ctx["balloon"].check())


def scenario_balloon_deflate(nr_pages: int = 2) -> Scenario:
    """(a) Compaction isolates and migrates balloon pages while the driver deflates one."""
    return Scenario(
        name="balloon_deflate",
        setup=_balloon_deflate_setup(nr_pages),
        programs=[
            lambda m, ctx: isolate_and_migrate(m, ctx["pages"]),
            lambda m, ctx: ctx["balloon"].deflate(1),
        ],
        final_checks=[_balloon_check, no_stray_isolation],
        description="compaction isolates a balloon page while the driver deflates (releases) "
                    "it: __ClearPageMovable must keep the type bit so the VM neither calls "
                    "putback_page nor leaks the page",
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "balloon_deflate": scenario_balloon_deflate,
}


def get_scenario(name: str) -> Scenario:
    """Return the scenario called ``name``."""
    factory = SCENARIOS.get(name)
    if factory is None:
        raise InvalidArgument(f"unknown scenario {name!r}; use one of {', '.join(SCENARIOS)}")
    return factory()
