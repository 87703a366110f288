"""Android's low-memory killer: its levels, whom it picks, the death-pending wait, and reclaim
calling it as a shrinker until a process dies and gives its memory back."""

from __future__ import annotations

import pytest

from pagelab import Machine
from pagelab.drivers.lowmemorykiller import (
    DEATHPENDING_TIMEOUT_NS,
    LOWMEM_ADJ,
    LOWMEM_MINFREE,
    OOM_SCORE_ADJ_MAX,
    LowMemoryKiller,
)
from pagelab.errors import InvalidArgument
from pagelab.mm import gfp as G
from pagelab.mm import vmstat as vs
from pagelab.mm.shrinker import ShrinkControl
from pagelab.workloads.phone import OOM_ADJ_LEVELS, oom_levels

#: Levels every machine is below: the killer acts whenever it is asked.
ALWAYS = ((0,), (1 << 40,))


def sc() -> ShrinkControl:
    return ShrinkControl(G.GFP_KERNEL, 0, nr_to_scan=128)


def spawn(m: Machine, name: str, pages: int, adj: int):
    mm = m.spawn(name)
    mm.touch(pages)
    mm.oom_score_adj = adj
    return mm


def test_the_built_in_levels_are_the_drivers() -> None:
    assert LOWMEM_ADJ == (0, 1, 6, 12)
    assert [p * 4096 >> 20 for p in LOWMEM_MINFREE] == [6, 8, 16, 64]


def test_it_kills_the_highest_adj_then_the_largest() -> None:
    m = Machine.build(memory="128M")
    lmk = LowMemoryKiller(m, *ALWAYS)
    spawn(m, "foreground", 3000, 0)
    big_cached = spawn(m, "big", 2000, 900)
    spawn(m, "small", 500, 906)
    spawn(m, "system", 4000, -900)
    # The highest adj wins even though it is the smallest.
    freed = lmk.lowmem_scan(sc())
    assert freed == 500
    kill = lmk.kills[-1]
    assert (kill.comm, kill.oom_score_adj, kill.rss_pages, kill.min_score_adj) == \
        ("small", 906, 500, 0)
    assert m.reap_killed() == 1
    # A tie on adj goes to the larger RSS.
    twin = spawn(m, "twin", 1000, 900)
    m.clock.advance(DEATHPENDING_TIMEOUT_NS + 1)
    assert lmk.lowmem_scan(sc()) == 2000
    assert lmk.kills[-1].comm == "big" and big_cached.sigkill and not twin.sigkill
    m.reap_killed()
    m.check_state()


def test_no_level_reached_means_no_kill_and_min_adj_protects_the_rest() -> None:
    m = Machine.build(memory="128M")
    spawn(m, "cached", 1000, 900)
    lmk = LowMemoryKiller(m)  # 6..64 MiB levels: a fresh 128 MiB machine is far above them
    assert lmk.lowmem_scan(sc()) == 0 and not lmk.kills
    # Below the last level only adj >= 12 may die: a process at 6 is safe.
    lmk.set_levels((0, 12), (0, 1 << 40))
    safe = spawn(m, "perceptible", 800, 6)
    assert lmk.lowmem_scan(sc()) == 1000
    m.reap_killed()
    m.clock.advance(DEATHPENDING_TIMEOUT_NS + 1)
    assert lmk.lowmem_scan(sc()) == 0 and not safe.sigkill


def test_a_victim_still_exiting_holds_the_killer_back_for_a_second() -> None:
    m = Machine.build(memory="128M")
    lmk = LowMemoryKiller(m, *ALWAYS)
    first = spawn(m, "first", 1000, 906)
    second = spawn(m, "second", 1000, 904)
    assert lmk.lowmem_scan(sc()) == 1000 and first.sigkill
    # Not yet exited, within HZ: nothing more.
    assert lmk.lowmem_scan(sc()) == 0 and not second.sigkill
    # After the timeout the killer looks again, and the highest adj is still the first
    # (the kernel signals it a second time); once it has exited the second goes.
    m.clock.advance(DEATHPENDING_TIMEOUT_NS + 1)
    assert lmk.lowmem_scan(sc()) == 1000 and lmk.kills[-1].comm == "first"
    assert m.reap_killed() == 1 and first.dead and first.nr_resident() == 0
    assert lmk.lowmem_scan(sc()) == 1000 and second.sigkill
    assert m.reap_killed() == 1
    m.check_state()


def test_count_is_the_lru_and_exit_hooks_run_once() -> None:
    m = Machine.build(memory="128M")
    lmk = LowMemoryKiller(m, *ALWAYS)
    mm = spawn(m, "app", 700, 900)
    lru = sum(int(n.vm_stat[vs.NR_INACTIVE_ANON + i]) for n in m.nodes for i in range(4))
    assert lmk.lowmem_count(sc()) == lru >= 700
    released: list[str] = []
    mm.at_exit.append(lambda: released.append("gpu buffers"))
    lmk.lowmem_scan(sc())
    # The task running now exits only when it returns to user space.
    assert m.reap_killed(current=mm) == 0 and not mm.dead
    assert m.reap_killed() == 1 and released == ["gpu buffers"]
    assert m.reap_killed() == 0 and released == ["gpu buffers"]


def test_reclaim_calls_the_killer_and_the_victim_gives_memory_back() -> None:
    m = Machine.build(memory="128M", profile="v4.8")
    total = sum(z.managed_pages for z in m.zones)
    lmk = LowMemoryKiller(m, (0, 900), (total // 16, total // 4))
    victim = spawn(m, "cached", total // 3, 900)
    fg = spawn(m, "foreground", 0, 0)
    # No swap: filling memory leaves reclaim nothing but the killer.
    fg.touch(total * 7 // 10)
    assert victim.sigkill and lmk.kills and lmk.kills[0].comm == "cached"
    assert m.vm_events[vs.SLABS_SCANNED] > 0
    free_before = sum(int(z.vm_stat[vs.NR_FREE_PAGES]) for z in m.zones)
    m.run_background()
    assert victim.dead
    assert sum(int(z.vm_stat[vs.NR_FREE_PAGES]) for z in m.zones) > free_before
    m.check_state()


@pytest.mark.parametrize(("adj", "minfree"), [
    ((), ()), ((0, 1), (10,)), ((0,) * 7, (1,) * 7), ((OOM_SCORE_ADJ_MAX + 1,), (10,)),
    ((0,), (-1,)),
])
def test_bad_levels_are_refused(adj: tuple[int, ...], minfree: tuple[int, ...]) -> None:
    m = Machine.build(memory="64M")
    with pytest.raises(InvalidArgument):
        LowMemoryKiller(m, adj, minfree)


def test_activity_managers_levels_scale_with_memory_and_display() -> None:
    adj, minfree = oom_levels(2 << 30)
    assert adj == OOM_ADJ_LEVELS == (0, 100, 200, 300, 900, 906)
    assert minfree == (18432, 23040, 27648, 32256, 36864, 46080)  # 72..180 MiB
    # A 512 MiB phone with an 800x480 screen sits half-way between the two tables.
    _, small = oom_levels(500 << 20, display=(480, 800))
    assert small[0] == (12288 + (73728 - 12288) // 2) * 1024 >> 12
