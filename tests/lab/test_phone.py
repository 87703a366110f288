"""The seed's experiment runner: both kernels, the comparison, the results folder."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pagelab.errors import InvalidArgument
from pagelab.lab.phone import (
    compare,
    request_table,
    run_experiment,
    success_by_window,
    write_results,
)
from pagelab.workloads.phone import PhoneConfig

CONFIG = PhoneConfig(memory="640M", duration=2.0, cached_apps=2, seed=2)


@pytest.fixture(scope="module")
def results() -> list:
    seen: list[tuple[str, float]] = []
    out = run_experiment(CONFIG, jobs=1, progress=lambda k, d, t: seen.append((k, d)))
    assert {k for k, _ in seen} == {"pre-4.8", "v4.8"}
    return out


def test_both_kernels_ran_the_same_requests(results: list) -> None:
    pre, post = results
    assert (pre.profile, post.profile) == ("pre-4.8", "v4.8")
    assert list(pre.requests["kind"]) == list(post.requests["kind"])
    for r in results:
        table = request_table(r)
        assert [row["order"] for row in table] == [2, 3, 4]
        assert all(row["succeeded"] <= row["requests"] for row in table)
    names = [name for name, _ in compare(results)]
    assert "order-3 success (slab/skb)" in names and "mixed pageblocks at the end" in names


def test_the_results_folder_has_everything(results: list, tmp_path: Path) -> None:
    written = write_results(tmp_path / "out", results)
    names = {p.name for p in written}
    for kernel in ("pre-4.8", "v4.8"):
        for suffix in ("buddyinfo", "pagetypeinfo", "vmstat", "mm_stat", "trace"):
            assert f"{kernel}.{suffix}" in names
    for name in ("timeseries.csv", "timeseries.parquet", "requests.parquet", "summary.csv",
                 "success_by_window.csv",
                 "comparison.tsv", "provenance.json", "success_over_time.png",
                 "free_blocks.png", "pageblock_map.png"):
        assert name in names
    frame = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    assert set(frame["kernel"]) == {"pre-4.8", "v4.8"}
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["config"]["seed"] == 2
    assert (tmp_path / "out" / "pre-4.8.buddyinfo").read_text().startswith("Node 0, zone")
    assert (tmp_path / "out" / "free_blocks.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_kernels_and_drivers_fail_before_any_work() -> None:
    with pytest.raises(InvalidArgument, match="unknown profile"):
        run_experiment(CONFIG, ("pre-4.8", "v9.9"), jobs=1)
    from dataclasses import replace

    with pytest.raises(InvalidArgument, match="no module"):
        run_experiment(replace(CONFIG, driver="no_such_module:Driver"), jobs=1)


def test_kernels_can_be_profiles() -> None:
    from dataclasses import replace

    from pagelab.profile import PROFILES

    off = replace(PROFILES["mainline"], name="mainline-no-framework", non_lru_movable=False)
    pre, post = run_experiment(replace(CONFIG, duration=1.0), (off, "mainline"), jobs=1)
    assert (pre.profile, post.profile) == ("mainline-no-framework", "mainline")
    assert pre.migrated.get("Gpu", 0) == 0


def test_success_by_window_adds_up_to_the_whole_run(results: list) -> None:
    for r in results:
        windows = pd.DataFrame(success_by_window(r))
        assert sorted(set(windows["window"])) == [0, 1, 2, 3]
        whole = {row["order"]: row for row in request_table(r)}
        for order, group in windows.groupby("order"):
            assert group["requests"].sum() == whole[order]["requests"]
            assert group["succeeded"].sum() == whole[order]["succeeded"]
        assert windows["end_s"].max() >= r.requests["time_s"].max()
        # A request belongs to the window its time falls in.
        times = r.requests["time_s"]
        first = windows[(windows["window"] == 0)]
        assert first["requests"].sum() == int((times < first["end_s"].iloc[0]).sum())
    rows = dict(compare(results))
    cells = rows["order-3 success by quarter of the run"]
    assert len(cells) == 2 and all(cell.count(" / ") == 3 for cell in cells)


def test_an_arm64_phone_runs_in_one_zone() -> None:
    """``arch="arm64"``: the phone's memory is one DMA zone from 2 GiB; the run and its
    state check hold there too."""
    from dataclasses import replace

    from pagelab.lab.phone import run_one

    result = run_one("v4.8", replace(CONFIG, arch="arm64"))
    zones = [line.split()[3] for line in result.procfs["buddyinfo"].splitlines()]
    assert zones == ["DMA"]
    assert len(result.requests) > 0


def test_androids_extra_free_kbytes_raises_the_phones_watermarks() -> None:
    """ActivityManager's vm.extra_free_kbytes is written after boot: the phone's zones end
    the run with low watermarks that far above min."""
    from dataclasses import replace

    from pagelab.lab.phone import run_one

    result = run_one("v4.8", replace(CONFIG, extra_free_kbytes=24300))
    lows = [int(line.split()[1]) for line in result.procfs["zoneinfo"].splitlines()
            if line.strip().startswith("low ")]
    mins = [int(line.split()[1]) for line in result.procfs["zoneinfo"].splitlines()
            if line.strip().startswith("min ")]
    assert sum(lows) - sum(mins) >= (24300 >> 2) - 2
