"""The seed's zram test (workloads/zram_dd.py, lab/zram_dd.py): both kernels on a small
guest, the changelog's figures, bad configurations."""

from __future__ import annotations

from itertools import pairwise

import pytest

from pagelab.errors import BadConfiguration, InvalidArgument
from pagelab.lab.zram_dd import compare_rows, high_order_share, run_kernels, run_one
from pagelab.workloads.zram_dd import PUBLISHED, ZramDdConfig

SMALL = ZramDdConfig(memory="128M", files=4, file_size="16M", disksize="128M", seed=2)


@pytest.fixture(scope="module")
def results() -> list:
    return run_kernels(SMALL, ("pre-4.8", "v4.8"), jobs=1)


def test_only_the_seeds_kernel_migrates_zram_and_compaction_pays(results: list) -> None:
    old, new = results
    assert old.pool_pages_migrated == 0 and new.pool_pages_migrated > 0
    assert new.counters["pgmigrate_success"] > old.counters["pgmigrate_success"]
    gain_old = high_order_share(old.free_compaction)[1] - high_order_share(old.free_init)[1]
    gain_new = high_order_share(new.free_compaction)[1] - high_order_share(new.free_init)[1]
    assert gain_new > gain_old + 0.2
    # Both wrote everything, half was discarded, and the other half is still in zram.
    for r in results:
        assert r.counters["nr_dirtied"] == 4 * 4096
        assert r.pool_pages > 0 and r.bdev_cache_pages == 4096
        assert "Node 0, zone      DMA" in r.buddyinfo_init


def test_the_same_seed_gives_the_same_run(results: list) -> None:
    again = run_one("v4.8", SMALL)
    assert again.buddyinfo_compaction == results[1].buddyinfo_compaction
    assert again.counters == results[1].counters


def test_comparison_lines_up_the_changelogs_figures(results: list) -> None:
    columns, rows = compare_rows(results)
    assert columns == ["model pre-4.8", "model v4.8", "changelog old", "changelog new"]
    by_label = {row[0]: row[1:] for row in rows}
    assert by_label["share >= order 5 (compacted)"][2:] == ["25.7%", "50.3%"]
    assert by_label["free pages (init)"][2:] == ["126,810", "139,508"]
    total, share = high_order_share(PUBLISHED["new"]["init"])
    assert total == 139_508 and share < 0.01


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"files": 1}, InvalidArgument, "at least 2"),
    ({"file_size": "3M", "bs": "2M"}, InvalidArgument, "multiple of bs"),
    ({"bs": "-1M"}, InvalidArgument, "cannot read size"),
    ({"bs": "6K"}, InvalidArgument, "positive multiple"),
    ({"disksize": "16M"}, InvalidArgument, "larger disksize"),
])
def test_bad_configurations_say_what_to_do(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        run_kernels(ZramDdConfig(**kwargs), jobs=1)


def test_too_little_memory_is_a_configuration_error() -> None:
    config = ZramDdConfig(memory="48M", files=2, file_size="64M", disksize="128M")
    with pytest.raises(BadConfiguration, match="give more memory"):
        run_one("v4.8", config)


def test_the_flusher_shares_the_cpus_and_holds_writers_at_the_dirty_limit() -> None:
    """The flusher is a task of its own: it writes from both CPUs and its chunks interleave
    the files; a writer over the free-run ceiling pauses and gives its CPU away, and one
    over the dirty threshold sleeps and dirties nothing until the flusher has brought the
    dirty pages back under it."""
    from pagelab import Machine
    from pagelab.mm.page_writeback import global_dirty_limits
    from pagelab.workloads.zram_dd import ZramDd

    m = Machine.build(memory=SMALL.memory, profile="v4.8", seed=SMALL.seed)
    test = ZramDd(m, SMALL)
    flusher_cpus: set[int] = set()
    written: list[int] = []
    throttled_at: list[tuple[int, int]] = []
    step, writepage, balance, copy = (test.flusher_step, test.writepage,
                                      test.balance_dirty_pages, test._copy_page)

    def flusher_step() -> None:
        nonlocal switched
        assert test.flusher not in test.runqueue  # on one CPU, not queued for another
        flusher_cpus.add(m.cpu)
        switched += pending.pop(m.cpu, None) is not None
        step()

    paused: list[tuple[int, int]] = []  # (cpu, dd) of each pause
    pending: dict[int, int] = {}  # cpu -> the writer that paused there, until the next step
    switched = 0

    def balance_dirty_pages(dd) -> bool:  # type: ignore[no-untyped-def]
        pauses = balance(dd)
        if dd.throttled:
            throttled_at.append((test.nr_dirty(), global_dirty_limits(m)[1]))
        if pauses:
            paused.append((m.cpu, dd.number))
            pending[m.cpu] = dd.number
        return pauses

    def copy_page(dd) -> None:  # type: ignore[no-untyped-def]
        nonlocal switched
        assert not dd.throttled
        if m.cpu in pending:
            switched += dd.number != pending.pop(m.cpu)
        copy(dd)

    def record(dd, index) -> None:  # type: ignore[no-untyped-def]
        written.append(dd.number)
        writepage(dd, index)

    test.flusher_step, test.writepage = flusher_step, record  # type: ignore[method-assign]
    test.balance_dirty_pages = balance_dirty_pages  # type: ignore[method-assign]
    test._copy_page = copy_page  # type: ignore[method-assign]
    test.copy_files()
    assert flusher_cpus == {0, 1}
    assert len(set(written)) == SMALL.files
    assert sum(a != b for a, b in pairwise(written)) >= SMALL.files
    assert throttled_at and all(dirty > thresh for dirty, thresh in throttled_at)
    assert switched >= 0.9 * len(paused) > 0  # a paused writer gives its CPU away
    assert not any(dd.throttled for dd in test.dds) or test.flusher.woken
    m.check_state()
