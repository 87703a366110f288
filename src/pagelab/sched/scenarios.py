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
from pagelab.mm import compaction
from pagelab.mm import migrate as mg
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.gfp import GFP_HIGHUSER_MOVABLE, GFP_KERNEL
from pagelab.mm.internal import ALLOC_CMA
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


# --- (b) two CPUs compact the same pageblock of non-LRU pages ---------------------------------


def _toy_setup(nr_pages: int) -> Callable[[], tuple[Machine, Any]]:
    def setup() -> tuple[Machine, Any]:
        from pagelab.drivers.gpu import Gpu

        m = Machine.build(memory=SCENARIO_MEMORY, cpus=2)
        gpu = Gpu(m)
        bo = gpu.create_bo(nr_pages)
        assert bo is not None
        return m, {"gpu": gpu, "bo": bo, "pages": list(bo.pages)}

    return setup


def _gpu_check(m: Machine, ctx: Any) -> list[str]:
    return list(ctx["gpu"].check())


def _two_compactors_setup(nr_pages: int) -> Callable[[], tuple[Machine, Any]]:
    toy = _toy_setup(nr_pages)

    def setup() -> tuple[Machine, Any]:
        m, ctx = toy()
        # Both compactors continue from the zone's cached scanner positions: the migrate
        # scanner from the pageblock of the buffer's lowest page, the free scanner from the
        # top of the zone (as after a run that stopped there).
        zone = m.page_zone(ctx["pages"][0])
        block = compaction.pageblock_start_pfn(min(ctx["pages"]))
        zone.compact_cached_migrate_pfn[:] = [block, block]
        zone.compact_cached_free_pfn = compaction.pageblock_start_pfn(zone.zone_end_pfn - 1)
        ctx["zone_idx"] = m.zones.index(zone)
        return m, ctx

    return setup


def compact_zone_sync_light(m: Machine, ctx: Any) -> None:
    """One CPU's compaction run: ``compact_zone`` as kcompactd's proactive compaction sets it.

    Order -1 (until the scanners meet), MIGRATE_SYNC_LIGHT, skip hints ignored, continuing from
    the zone's cached scanner positions (not the whole zone): the migrate scanner isolates
    with ``isolate_migratepages_block``, ``migrate_pages`` moves the batch into pages the free
    scanner isolated, and the rest is put back, all by the ordinary functions.
    """
    cc = compaction.CompactControl(
        zone=m.zones[ctx["zone_idx"]], order=-1, mode=mg.MigrateMode.MIGRATE_SYNC_LIGHT,
        alloc_flags=ALLOC_CMA, ignore_skip_hint=True, gfp_mask=GFP_KERNEL)
    compaction.compact_zone(cc, None)


def scenario_two_compactors(nr_pages: int = 2) -> Scenario:
    """(b) Two CPUs run compact_zone over the same pageblocks of non-LRU movable pages."""
    return Scenario(
        name="two_compactors",
        setup=_two_compactors_setup(nr_pages),
        programs=[compact_zone_sync_light, compact_zone_sync_light],
        final_checks=[_gpu_check, no_stray_isolation],
        description="two CPUs compact the same zone from the same cached scanner positions, "
                    "so both migrate scanners meet the GPU buffer's pageblock and both free "
                    "scanners the same target pageblock: PG_isolated, set and tested under "
                    "the page lock, must let only one isolate each page",
    )


# --- (c) a THP whose first tail page's mapping word looks movable -----------------------------


def _thp_setup() -> tuple[Machine, Any]:
    from pagelab.mm.gfp import GFP_TRANSHUGE_LIGHT

    m = Machine.build(memory=SCENARIO_MEMORY, cpus=2)
    head = m.alloc_page_raw(GFP_TRANSHUGE_LIGHT, 9, 0)
    assert head >= 0
    # PMD-mapped three times: _entire_mapcount == 2, which aliases the first tail's mapping
    # word (v4.8: compound_mapcount) and reads as PAGE_MAPPING_MOVABLE.
    m.mem.mapping_mv[head + 1] = 2
    return m, {"head": head, "tail": head + 1}


def _thp_release(m: Machine, ctx: Any) -> None:
    from pagelab.mm.swap import put_page

    m.mem.mapping_mv[ctx["head"] + 1] = -1  # unmapped again: _entire_mapcount back to -1
    put_page(m, ctx["head"])


def _thp_not_isolated(m: Machine, ctx: Any) -> list[str]:
    mem = m.mem
    tail = ctx["tail"]
    if mem.flags_mv[tail] & (1 << pf.PG_isolated):
        return [f"THP tail {tail:#x} was isolated as a movable page: {mem.dump_page(tail)}"]
    return []


def scenario_thp_tail() -> Scenario:
    """(c) The migrate scanner meets a THP's first tail page whose mapping looks movable."""
    return Scenario(
        name="thp_tail",
        setup=_thp_setup,
        programs=[
            lambda m, ctx: isolate_and_migrate(m, [ctx["tail"]]),
            _thp_release,
        ],
        checks=[_thp_not_isolated],
        final_checks=[no_stray_isolation],
        description="the migrate scanner meets a THP whose first tail page's mapping word "
                    "(the entire mapcount) reads as PAGE_MAPPING_MOVABLE while the THP is "
                    "freed: get_page_unless_zero on the tail must refuse it",
    )


# --- (d) zsmalloc zs_free and zs_compact racing with page migration ---------------------------


def _zsmalloc_setup() -> tuple[Machine, Any]:
    from pagelab.mm.gfp import __GFP_HIGHMEM, __GFP_MOVABLE, GFP_NOIO
    from pagelab.mm.zsmalloc import ZsPool

    m = Machine.build(memory=SCENARIO_MEMORY, cpus=2)
    pool = ZsPool(m, "zram0")
    gfp = GFP_NOIO | __GFP_HIGHMEM | __GFP_MOVABLE
    data = {}
    # Objects of 1000 bytes: four per page, straddling page boundaries inside a zspage.
    for i in range(6):
        handle = pool.zs_malloc(1000, gfp)
        payload = bytes([i + 1]) * 1000
        pool.zs_obj_write(handle, payload)
        data[handle] = payload
    types = (m.mem.mapcount >> 24) & 0xFF
    pages = sorted(int(p) for p in np.nonzero(types == pf.PGTY_zsmalloc)[0])
    klass = pool.size_class[pool.get_zspage(pages[0]).klass]
    return m, {"pool": pool, "data": data, "pages": pages, "class": klass}


def _zs_free_and_compact(m: Machine, ctx: Any) -> None:
    """zs_free half the objects, then zs_compact the one class that holds zspages.

    ``zs_compact`` walks all 255 classes, taking each class's lock; the empty ones share no
    state with the migration of this class's pages, so the scenario compacts only the busy
    class (a partial-order reduction: those lock operations commute with everything else).
    """
    pool = ctx["pool"]
    data = ctx["data"]
    for handle in list(data)[::2]:
        pool.zs_free(handle)
        del data[handle]
    klass = ctx["class"]
    if pool._legacy:
        pool._zs_compact_class_legacy(klass)
    else:
        pool._zs_compact_class_mainline(klass)


def _zs_check(m: Machine, ctx: Any) -> list[str]:
    pool = ctx["pool"]
    pool.flush_work()
    problems = list(pool.check())
    for handle, payload in ctx["data"].items():
        got = pool.zs_obj_read(handle, len(payload))
        if got != payload:
            problems.append(f"zsmalloc object {handle:#x} reads back changed bytes")
    return problems


def scenario_zsmalloc() -> Scenario:
    """(d) zs_free and zs_compact on one CPU while compaction migrates zspage pages."""
    return Scenario(
        name="zsmalloc",
        setup=_zsmalloc_setup,
        programs=[lambda m, ctx: isolate_and_migrate(m, ctx["pages"]), _zs_free_and_compact],
        final_checks=[_zs_check, no_stray_isolation],
        description="zsmalloc's zs_free and zs_compact race with the migration of the pool's "
                    "pages: class lock, zspage migrate lock and handle pins must keep every "
                    "object's bytes",
    )


# --- (e) a GPU buffer unpinned or freed during migration --------------------------------------


def _gpu_churn(m: Machine, ctx: Any) -> None:
    gpu = ctx["gpu"]
    bo = ctx["bo"]
    gpu.pin(bo)
    gpu.render(bo)
    gpu.unpin(bo)
    gpu.destroy_bo(bo)


def scenario_gpu_free() -> Scenario:
    """(e) A GPU buffer is pinned, rendered, unpinned and freed while compaction migrates it."""
    return Scenario(
        name="gpu_free",
        setup=_toy_setup(2),
        programs=[
            lambda m, ctx: isolate_and_migrate(m, ctx["pages"]),
            _gpu_churn,
        ],
        final_checks=[_gpu_check, no_stray_isolation],
        description="a GPU buffer object is pinned for DMA, written, unpinned and destroyed "
                    "while compaction isolates and migrates its pages",
    )


# --- (f) a user's driver, against compaction and its own alloc/free ---------------------------


def scenario_user_driver(spec: str, nr_pages: int = 2) -> Scenario:
    """(f) A driver given as ``module:Class``: compaction against its own release and alloc."""
    from pagelab.drivers.loader import load_driver

    cls = load_driver(spec)

    def setup() -> tuple[Machine, Any]:
        m = Machine.build(memory=SCENARIO_MEMORY, cpus=2)
        driver = cls(m)  # type: ignore[call-arg]  # the pluggable contract: Driver(m)
        handle = driver.allocate(nr_pages)
        if handle is None:
            raise InvalidArgument(f"{spec}: allocate({nr_pages}) returned None on a fresh "
                                  f"{SCENARIO_MEMORY} machine")
        pages = sorted(int(p) for p in np.nonzero(
            (m.mem.mapping & pf.PAGE_MAPPING_FLAGS) == pf.PAGE_MAPPING_MOVABLE)[0])
        return m, {"driver": driver, "handle": handle, "pages": pages}

    def churn(m: Machine, ctx: Any) -> None:
        driver = ctx["driver"]
        driver.release(ctx["handle"])
        again = driver.allocate(1)
        if again is not None:
            driver.release(again)

    return Scenario(
        name=f"driver:{spec}",
        setup=setup,
        programs=[lambda m, ctx: isolate_and_migrate(m, ctx["pages"]), churn],
        final_checks=[no_stray_isolation],
        description=f"compaction against {spec}'s own release and allocation",
        # A driver may keep module-level state keyed by the machine, which a restored copy
        # would not see: set it up afresh for every run.
        snapshot=False,
    )


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "balloon_deflate": scenario_balloon_deflate,
    "two_compactors": scenario_two_compactors,
    "thp_tail": scenario_thp_tail,
    "gpu_free": scenario_gpu_free,
    "zsmalloc": scenario_zsmalloc,
}


def get_scenario(name: str, driver: str | None = None) -> Scenario:
    """Return the scenario called ``name`` (``user_driver`` needs ``driver="module:Class"``)."""
    if name in ("user_driver", "driver"):
        if not driver:
            raise InvalidArgument("the user_driver scenario needs --driver module:Class")
        return scenario_user_driver(driver)
    factory = SCENARIOS.get(name)
    if factory is None:
        raise InvalidArgument(f"unknown scenario {name!r}; use one of {', '.join(SCENARIOS)}")
    return factory()
