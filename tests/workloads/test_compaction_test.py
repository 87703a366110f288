"""The kernel's compaction_test selftest on the model: passes, and fails with pinned holes."""

from __future__ import annotations

import pytest

from pagelab import Machine
from pagelab.cli import main
from pagelab.errors import InvalidArgument
from pagelab.workloads.compaction_test import run_compaction_test


def test_selftest_passes_on_the_model() -> None:
    m = Machine.build(memory="512M", seed=1)
    result = run_compaction_test(m)
    m.check_state()
    assert result.passed
    assert result.compaction_index <= 3
    # More than 20 % of MemFree came back as huge pages, the selftest's criterion.
    assert result.nr_hugepages * result.hugepage_size_kb > result.mem_free_kb * 0.2
    assert "ok 1 check_compaction" in result.tap()
    assert result.buddyinfo_before != result.buddyinfo_after


def test_selftest_fails_when_the_holes_are_pinned() -> None:
    m = Machine.build(memory="512M", seed=1)
    result = run_compaction_test(m, pin_holes=True)
    m.check_state()
    assert not result.passed
    assert "not ok 1 check_compaction" in result.tap()
    # Compaction was tried and could not move pinned pages.
    assert result.counters["compact_stall"] > 0
    assert result.counters["pgmigrate_success"] == 0


def test_too_small_a_machine_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="give more memory"):
        run_compaction_test(Machine.build(memory="128M"))


def test_cli_prints_the_tap_result(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "compaction_test", "--memory", "512M"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "ok 1 check_compaction" in out and "Number of huge pages allocated" in out
    assert "/proc/buddyinfo before" in out and "compact_stall" in out
