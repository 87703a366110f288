"""The pagelab command: help, the demo, procfs, and one-line errors with exit 2."""

from __future__ import annotations

import pytest

from pagelab.cli import main


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    code = exit_info.value.code
    return int(code) if code is not None else 0


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("frag", "demo", "procfs", "experiment", "explore", "driver-check"):
        assert command in out


def test_demo_churns_and_shows_the_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["demo", "--memory", "256M", "--steps", "30000", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "/proc/buddyinfo after boot" in out
    for name in ("buddyinfo", "pagetypeinfo", "unusable_index", "extfrag_index"):
        assert f"{name} after the churn" in out
    assert "Number of mixed blocks" in out  # the demo boots with page_owner=on


def test_procfs_prints_a_simulated_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["procfs", "zoneinfo", "--memory", "256M"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Node 0, zone      DMA\n") and "pagesets" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["procfs", "zoneinfo", "--memory", "garbage"], "cannot read size"),
    (["procfs", "zoneinfo", "--memory", "0"], "too small"),
    (["procfs", "slabinfo", "--memory", "256M"], "unknown file"),
    (["demo", "--memory", "256M", "--fill", "2"], "target_fill"),
    (["demo", "--memory", "256M", "--profile", "v9.9"], "unknown profile"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("pagelab: error: ")
