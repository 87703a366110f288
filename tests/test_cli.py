"""The pagelab command: help, the demo, procfs, and one-line errors with exit 2."""

from __future__ import annotations

import os
from pathlib import Path

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
    (["experiment", "zram_dd", "--files", "1"], "at least 2"),
    (["experiment", "zram_dd", "--after", "v9.9"], "unknown profile"),
    (["experiment", "zram_dd", "--memory", "48M", "--files", "2", "--file-size", "64M",
      "--disksize", "128M", "--jobs", "1"], "give more memory"),
    (["run", "--arch", "mips"], "one of x86_64, arm64"),
    (["run", "--extra-free-kbytes", "-1"], "extra_free_kbytes -1"),
    (["experiment", "zram_live", "--pattern", "evens"], "one of odd"),
    (["experiment", "zram_live", "--pages", "-1"], "between 1"),
    (["experiment", "zram_live", "--device", "zram-none"], "load the zram module"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("pagelab: error: ")


def test_zram_dd_prints_both_kernels_and_the_changelog(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["experiment", "zram_dd", "--memory", "128M", "--files", "2", "--file-size",
                "8M", "--disksize", "64M", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "pre-4.8: /proc/buddyinfo" in out and "v4.8: /proc/buddyinfo" in out
    assert "changelog old" in out and "25.7%" in out


@pytest.mark.live
@pytest.mark.skipif(not (os.geteuid() == 0 and Path("/sys/block/zram0/initstate").exists()
                         and Path("/sys/block/zram0/initstate").read_text().strip() == "0"),
                    reason="needs root and an unused /dev/zram0")
def test_zram_live_prints_kernel_and_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["experiment", "zram_live", "--pages", "1024", "--content", "tail"]) == 0
    out = capsys.readouterr().out
    assert f"Linux {os.uname().release}" in out
    assert out.count("+0.00%") == 24  # every column of every step agrees


RUN_SMALL = ["run", "--memory", "640M", "--duration", "2", "--apps", "2", "--jobs", "1"]


def test_run_compares_the_kernels_and_writes_the_results(
        tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    out_dir = Path(str(tmp_path)) / "results"
    assert run([*RUN_SMALL, "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "pre-4.8" in out and "v4.8" in out and "order-3 success" in out
    assert (out_dir / "comparison.tsv").exists() and (out_dir / "pageblock_map.png").exists()


def test_run_plugs_in_a_users_driver(tmp_path: object, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "drivers"))
    assert run([*RUN_SMALL, "--driver", "sample_driver:Sample",
                "--out", str(Path(str(tmp_path)) / "r")]) == 0
    assert "migrated: Sample" in capsys.readouterr().out


BROKEN_DRIVER = '''
class NoPutback:
    def __init__(self, m):
        self.m = m
    def isolate_page(self, m, page, mode):
        return True
    def migratepage(self, m, mapping, newpage, page, mode):
        return 0
    def allocate(self, npages):
        return None
    def release(self, handle):
        pass
'''


@pytest.mark.parametrize(("extra", "message"), [
    (["--driver", "no_such_module:Driver"], "no module named"),
    (["--driver", "broken_driver_mod:NoPutback"], "putback_page"),
    (["--driver", "not a spec"], "module:Class"),
    (["--memory", "-1G"], "cannot read size"),
    (["--memory", "256M"], "at least 512M"),
    (["--duration", "-5"], "positive number of seconds"),
    (["--before", "v9.9"], "unknown profile"),
    (["--after", "v4.8+no_such_switch"], "profile switch"),
])
def test_run_bad_input_is_one_line_and_exit_2(
        extra: list[str], message: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    (Path(str(tmp_path)) / "broken_driver_mod.py").write_text(BROKEN_DRIVER)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run([*RUN_SMALL, *extra, "--out", str(Path(str(tmp_path)) / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pagelab: error:") and message in err
    assert len(err.strip().splitlines()) == 1
