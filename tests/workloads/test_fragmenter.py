"""The proactive-compaction fragmenter: kcompactd brings the score under the low mark."""

from __future__ import annotations

import pytest

from pagelab import Machine
from pagelab.cli import main
from pagelab.errors import InvalidArgument
from pagelab.workloads.fragmenter import run_fragmenter


def test_proactive_compaction_lowers_the_score() -> None:
    m = Machine.build(memory="256M", seed=1)
    result = run_fragmenter(m, seconds=1.0)
    m.check_state()
    assert result.counters["pgmigrate_success"] > 0
    assert result.scores[-1] <= result.wmark_low
    assert result.order9_blocks[-1] > 0


def test_no_proactive_compaction_when_proactiveness_is_zero() -> None:
    m = Machine.build(memory="256M", seed=1)
    m.compaction_proactiveness = 0
    result = run_fragmenter(m, seconds=1.0)
    assert result.counters["pgmigrate_success"] == 0
    assert result.scores[0] == result.scores[-1]


def test_bad_arguments() -> None:
    m = Machine.build(memory="128M")
    with pytest.raises(InvalidArgument):
        run_fragmenter(m, seconds=0)
    with pytest.raises(InvalidArgument):
        run_fragmenter(m, fill=1.5)


def test_cli_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "fragmenter", "--memory", "256M", "--seconds", "0.5"])
    assert exit_info.value.code == 0
    assert "fragmentation score" in capsys.readouterr().out
