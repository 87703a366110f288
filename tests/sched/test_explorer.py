"""The schedule explorer: the faithful model passes every scenario; broken variants are found.

Each broken variant changes one thing the protocol relies on — in the VM or in a driver —
the way a patch under review might. The explorer must find each with a schedule that
``run_schedule`` replays to the same finding.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pagelab.cli import main
from pagelab.mm import balloon_compaction as bc
from pagelab.mm import migrate as mg
from pagelab.mm import page_flags as pf
from pagelab.mm import swap
from pagelab.sched import explorer as ex
from pagelab.sched.scenarios import SCENARIOS, get_scenario

BOUND = 2


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_faithful_model_passes_every_scenario_at_bound_2(name: str) -> None:
    found = ex.explore(get_scenario(name), "exhaustive", bound=BOUND)
    assert found.failure is None, ex.describe_run(found.failure)[-3:]
    assert found.schedules > 1 or name == "thp_tail"


def test_bound_zero_is_one_schedule_per_starting_cpu() -> None:
    found = ex.explore(get_scenario("two_compactors"), "exhaustive", bound=0)
    assert found.failure is None and found.schedules == 2


def _steps(runs: Iterator[ex.RunResult]) -> list[list[tuple[int, str, int]]]:
    return [[(st.cpu, st.what, st.pfn) for st in r.steps] for r in runs]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_restored_snapshot_runs_like_a_fresh_setup(name: str) -> None:
    fresh = get_scenario(name)
    fresh.snapshot = False
    restored = get_scenario(name)
    assert _steps(ex.exhaustive(restored, 1)) == _steps(ex.exhaustive(fresh, 1))


def test_a_schedule_replays_to_the_same_steps_and_state() -> None:
    # Skipping the per-step checks of a replayed prefix relies on this determinism.
    sc = get_scenario("balloon_deflate")
    schedule = [0, 0, 1, 1, 0, 1, 0, 0, 1]
    first = ex.run_schedule(sc, schedule)
    again = ex.run_schedule(sc, schedule)
    assert _steps(iter([first])) == _steps(iter([again]))
    assert first.schedule == again.schedule and not first.failed


def test_the_check_cache_changes_no_outcome_and_checks_each_state_once() -> None:
    sc = get_scenario("gpu_free")
    plain = _steps(ex.exhaustive(sc, 2, check_cache=False))
    cached = _steps(ex.exhaustive(sc, 2))
    assert plain == cached
    cache = ex.StateCheckCache()
    for r in [ex.run_schedule(sc, [0, 1, 0], cache=cache), ex.run_schedule(sc, [0, 1, 0],
                                                                          cache=cache)]:
        assert not r.failed
    assert cache.hits >= cache.misses > 0


def test_the_check_cache_key_sees_every_column_and_zone_counter() -> None:
    sc = get_scenario("gpu_free")
    m, _ = sc.setup()
    cache = ex.StateCheckCache()
    key = cache.key(m)
    pfn = 0x3000
    for column in ("flags", "refcount", "mapcount", "private", "index", "lru_next",
                   "lru_prev"):
        col = getattr(m.mem, column)
        saved = col[pfn]
        col[pfn] = saved + 2
        assert cache.key(m) != key, column
        col[pfn] = saved
    assert cache.key(m) == key
    zone = m.page_zone(pfn)
    zone.nr_free[3] += 1
    assert cache.key(m) != key
    zone.nr_free[3] -= 1
    zone.per_cpu_pageset[1].lists[0].append(pfn)
    assert cache.key(m) != key


def test_state_hashing_prunes_without_losing_outcomes() -> None:
    plain = ex.explore(get_scenario("balloon_deflate"), "exhaustive", bound=2)
    hashed = ex.explore(get_scenario("balloon_deflate"), "exhaustive", bound=2,
                        state_hashing=True)
    assert plain.failure is None and hashed.failure is None
    assert hashed.pruned > 0 and hashed.schedules < plain.schedules


def test_random_strategy_is_reproducible_from_its_seed() -> None:
    sc = get_scenario("gpu_free")
    first = [r.schedule for r in ex.random_schedules(sc, 5, seed=7)]
    again = [r.schedule for r in ex.random_schedules(sc, 5, seed=7)]
    assert first == again
    assert len({tuple(s) for s in first}) > 1


# --- broken variants ---------------------------------------------------------------------------


def _patch_everywhere(monkeypatch: pytest.MonkeyPatch, name: str, fn: Callable[..., object],
                      aliases: tuple[str, ...] = ()) -> None:
    """Replace ``migrate.<name>`` and every module-level binding of it or its aliases."""
    import sys

    original = getattr(mg, name)
    for module in list(sys.modules.values()):
        if module is None or not getattr(module, "__name__", "").startswith("pagelab"):
            continue
        for attr in (name, *aliases):
            if getattr(module, attr, None) is original:
                monkeypatch.setattr(module, attr, fn)


def _clear_movable_negated(m, pfn):  # type: ignore[no-untyped-def]
    """The reviewer's question made real: ``mapping & ~PAGE_MAPPING_MOVABLE`` (drops the bit)."""
    m.mem.mapping_mv[pfn] = m.mem.mapping_mv[pfn] & ~pf.PAGE_MAPPING_MOVABLE


def _isolate_without_isolated_recheck(m, pfn, mode):  # type: ignore[no-untyped-def]
    """isolate_movable_page without the PageIsolated test under the lock."""
    from pagelab.mm.filemap import get_page_unless_zero, trylock_page, unlock_page

    if not get_page_unless_zero(m, pfn):
        return False
    if not pf.__PageMovable(m.mem, pfn) or not trylock_page(m, pfn):
        swap.put_page(m, pfn)
        return False
    if not mg.PageMovable(m, pfn) or not mg.page_movable_ops(m, pfn).isolate_page(m, pfn, mode):
        unlock_page(m, pfn)
        swap.put_page(m, pfn)
        return False
    m.mem.flags_mv[pfn] = m.mem.flags_mv[pfn] | 1 << pf.PG_isolated
    unlock_page(m, pfn)
    return True


def _isolate_without_reference(m, pfn, mode):  # type: ignore[no-untyped-def]
    """isolate_movable_page that skips get_page_unless_zero (and drops a reference it never took)."""
    from pagelab.mm.filemap import trylock_page, unlock_page

    if not pf.__PageMovable(m.mem, pfn) or m.mem.refcount_mv[pfn] == 0:
        return False
    if not trylock_page(m, pfn):
        return False
    if not mg.PageMovable(m, pfn) or pf.PageIsolated(m.mem, pfn) or \
            not mg.page_movable_ops(m, pfn).isolate_page(m, pfn, mode):
        unlock_page(m, pfn)
        return False
    m.mem.flags_mv[pfn] = m.mem.flags_mv[pfn] | 1 << pf.PG_isolated
    unlock_page(m, pfn)
    return True


def _putback_without_movable_check(m, head):  # type: ignore[no-untyped-def]
    """putback_movable_pages that calls the driver even when it released the page."""
    mem = m.mem
    for pfn in list(mem.list_entries(head)):
        mem.list_del(pfn)
        from pagelab.mm.filemap import lock_page, unlock_page

        lock_page(m, pfn)
        ops = mg.page_movable_ops(m, pfn) or m.mappings_last_ops  # type: ignore[attr-defined]
        ops.putback_page(m, pfn)
        mem.flags_mv[pfn] = mem.flags_mv[pfn] & ~(1 << pf.PG_isolated)
        unlock_page(m, pfn)
        swap.put_page(m, pfn)


def _balloon_putback_forgets_list(m, pfn):  # type: ignore[no-untyped-def]
    """A driver whose putback_page forgets to re-add the page to its list."""
    b_dev_info = bc.balloon_page_device(m, pfn)
    with b_dev_info.pages_lock:
        b_dev_info.isolated_pages -= 1


def _gpu_migrate_skipping(call: str, doc: str):  # type: ignore[no-untyped-def]
    """Return a GPU migratepage in which the driver's call ``call`` does nothing."""
    def migratepage(self, m, mapping, newpage, page, mode):  # type: ignore[no-untyped-def]
        from pagelab.drivers import gpu as gpu_mod

        real = getattr(gpu_mod, call)
        setattr(gpu_mod, call, lambda m, pfn: None)
        try:
            return _ORIGINAL_GPU_MIGRATE(self, m, mapping, newpage, page, mode)
        finally:
            setattr(gpu_mod, call, real)

    migratepage.__doc__ = doc
    return migratepage


_gpu_migrate_without_clear = _gpu_migrate_skipping(
    "ClearPageMovable", "GPU migratepage that never calls __ClearPageMovable on the old page.")
_gpu_migrate_without_get_page = _gpu_migrate_skipping(
    "get_page", "GPU migratepage that forgets get_page(newpage): the VM's put_page then frees it.")


def _gpu_migrate_without_copy(self, m, mapping, newpage, page, mode):  # type: ignore[no-untyped-def]
    """GPU migratepage that switches the BO to the new page without copying the contents."""
    saved = m.mem.token_mv[page]
    m.mem.token_mv[page] = m.mem.token_mv[newpage]  # the copy now copies garbage
    rc = _ORIGINAL_GPU_MIGRATE(self, m, mapping, newpage, page, mode)
    if rc:
        m.mem.token_mv[page] = saved
    return rc


def _gpu_isolate_sets_isolated(self, m, page, mode):  # type: ignore[no-untyped-def]
    """GPU isolate_page that sets PG_isolated itself (the VM's job: it WARNs)."""
    ok = _ORIGINAL_GPU_ISOLATE(self, m, page, mode)
    if ok:
        m.mem.flags_mv[page] = m.mem.flags_mv[page] | 1 << pf.PG_isolated
    return ok


from pagelab.drivers.gpu import Gpu  # noqa: E402

_ORIGINAL_GPU_MIGRATE = Gpu.migratepage
_ORIGINAL_GPU_ISOLATE = Gpu.isolate_page


def _break_clear_movable(mp: pytest.MonkeyPatch) -> None:
    _patch_everywhere(mp, "__ClearPageMovable", _clear_movable_negated, ("ClearPageMovable",))


def _break_isolated_recheck(mp: pytest.MonkeyPatch) -> None:
    _patch_everywhere(mp, "isolate_movable_page", _isolate_without_isolated_recheck)


def _break_isolation_reference(mp: pytest.MonkeyPatch) -> None:
    _patch_everywhere(mp, "isolate_movable_page", _isolate_without_reference)


def _break_balloon_putback(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(bc, "balloon_page_putback", _balloon_putback_forgets_list)


def _break_gpu_clear(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(Gpu, "migratepage", _gpu_migrate_without_clear)


def _break_gpu_get_page(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(Gpu, "migratepage", _gpu_migrate_without_get_page)


def _break_gpu_copy(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(Gpu, "migratepage", _gpu_migrate_without_copy)


def _break_gpu_isolated_flag(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(Gpu, "isolate_page", _gpu_isolate_sets_isolated)


BROKEN: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], str, str]] = {
    # name: (break it, scenario, strategy)
    "vm: __ClearPageMovable drops the type bit": (_break_clear_movable, "balloon_deflate",
                                                  "exhaustive"),
    "vm: isolate_movable_page skips the PageIsolated recheck": (
        _break_isolated_recheck, "two_compactors", "exhaustive"),
    "vm: isolate_movable_page takes no reference": (_break_isolation_reference, "gpu_free",
                                                    "exhaustive"),
    "driver: balloon putback_page forgets the list": (_break_balloon_putback,
                                                      "balloon_deflate", "exhaustive"),
    "driver: gpu migratepage forgets __ClearPageMovable": (_break_gpu_clear, "two_compactors",
                                                            "exhaustive"),
    "driver: gpu migratepage forgets get_page(newpage)": (_break_gpu_get_page, "gpu_free",
                                                          "exhaustive"),
    "driver: gpu migratepage does not copy the contents": (_break_gpu_copy, "two_compactors",
                                                           "exhaustive"),
    "driver: gpu isolate_page sets PG_isolated itself": (_break_gpu_isolated_flag,
                                                         "two_compactors", "exhaustive"),
}


@pytest.fixture
def explore_broken(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], ex.ExploreResult]]:
    def run(name: str) -> ex.ExploreResult:
        breaker, scenario, strategy = BROKEN[name]
        breaker(monkeypatch)
        return ex.explore(get_scenario(scenario), strategy, bound=BOUND, count=300, seed=1)

    yield run


@pytest.mark.parametrize("name", list(BROKEN))
def test_state_hashing_still_finds_every_broken_variant(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    breaker, scenario, _ = BROKEN[name]
    breaker(monkeypatch)
    found = ex.explore(get_scenario(scenario), "exhaustive", bound=BOUND, state_hashing=True)
    assert found.failure is not None, f"{name}: not found in {found.schedules} schedules"
    assert ex.run_schedule(get_scenario(scenario), found.failure.schedule).failed


@pytest.mark.parametrize("name", list(BROKEN))
def test_every_broken_variant_is_found_and_replays(name: str, explore_broken) -> None:  # type: ignore[no-untyped-def]
    found = explore_broken(name)
    assert found.failure is not None, f"{name}: not found in {found.schedules} schedules"
    failure = found.failure
    # The schedule replays to the same kind of finding.
    _, scenario, _ = BROKEN[name]
    again = ex.run_schedule(get_scenario(scenario), failure.schedule, record_pages=True)
    assert again.failed
    assert {f.kind for f in again.findings} == {f.kind for f in failure.findings}
    lines = ex.describe_run(again)
    assert any(line.startswith("FINDING") for line in lines)


def test_hypothesis_strategy_finds_and_shrinks_a_break(monkeypatch: pytest.MonkeyPatch) -> None:
    _break_gpu_get_page(monkeypatch)
    found = ex.explore(get_scenario("gpu_free"), "hypothesis", count=200, seed=3)
    assert found.failure is not None
    again = ex.run_schedule(get_scenario("gpu_free"), found.failure.schedule)
    assert again.failed
    # Shrunk: the explicit choices Hypothesis kept are short.
    assert len(found.failure.schedule) < 60


def test_hypothesis_strategy_passes_the_faithful_model() -> None:
    found = ex.explore(get_scenario("two_compactors"), "hypothesis", count=30, seed=1)
    assert found.failure is None and found.schedules == 30


def test_cli_saves_and_replays_a_failing_schedule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _break_gpu_get_page(monkeypatch)
    saved = tmp_path / "fail.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["explore", "gpu_free", "--bound", "2", "--save", str(saved)])
    assert exit_info.value.code == 1
    data = json.loads(saved.read_text())
    assert data["scenario"] == "gpu_free" and data["schedule"]
    with pytest.raises(SystemExit) as exit_info:
        main(["explore", "--replay", str(saved)])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "FINDING" in out and "cpu0" in out and "cpu1" in out


def test_cli_rejects_a_garbled_replay_file(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit) as exit_info:
        main(["explore", "--replay", str(bad)])
    assert exit_info.value.code == 2
    assert "not a pagelab replay file" in capsys.readouterr().err


def test_unknown_scenario_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explore", "no_such_scenario"])
    assert exit_info.value.code == 2
    assert "unknown scenario" in capsys.readouterr().err
