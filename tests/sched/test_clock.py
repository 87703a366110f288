"""Tests for pagelab.sched.clock: the virtual clock and the calibrated cost model."""

from __future__ import annotations

import dataclasses

import pytest

from pagelab.errors import InvalidArgument
from pagelab.sched.clock import DEFAULT_COST_MODEL, CostModel, VirtualClock


def test_clock_advances_and_charges() -> None:
    clock = VirtualClock()
    assert clock.now_ns == 0
    assert clock.advance(1500) == 1500
    assert clock.charge(2.6, 512) == 1500 + 1331  # 1331.2 rounds to whole ns
    assert clock.charge(100.0) == 2931
    assert clock.now_s == pytest.approx(2.931e-6)
    assert repr(clock) == "VirtualClock(now_ns=2931)"
    assert VirtualClock(10**12).now_ns == 10**12


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_clock_rejects_bad_advances(bad: object) -> None:
    clock = VirtualClock()
    with pytest.raises(InvalidArgument):
        clock.advance(bad)  # type: ignore[arg-type]
    assert clock.now_ns == 0


def test_clock_rejects_bad_start_and_charge() -> None:
    with pytest.raises(InvalidArgument):
        VirtualClock(-5)
    with pytest.raises(InvalidArgument):
        VirtualClock().charge(-1.0, 3)
    with pytest.raises(InvalidArgument):
        VirtualClock().charge(1.0, -3)


def test_numpy_ints_are_accepted() -> None:
    np = pytest.importorskip("numpy")
    clock = VirtualClock()
    clock.advance(np.int64(7))  # type: ignore[arg-type]
    assert clock.now_ns == 7 and type(clock.now_ns) is int


def test_cost_model_defaults_are_the_calibration() -> None:
    cost = DEFAULT_COST_MODEL
    assert cost == CostModel()
    values = cost.as_dict()
    assert set(values) == {
        "migrate_scan_pfn", "free_scan_pfn", "isolate_block", "isolate_page", "migrate_page",
        "migrate_pages_call", "compact_round", "compact_zone_call", "alloc_page", "free_page",
        "clear_page", "reclaim_scan_page", "reclaim_page", "swap_out_page", "swap_in_page",
        "file_read_page"}
    assert all(v > 0 for v in values.values())
    # The orders of magnitude the calibration found (bench/calibration.md).
    assert cost.migrate_scan_pfn < cost.isolate_page < cost.migrate_page < cost.migrate_pages_call
    assert 1000 < cost.migrate_page < 10_000


def test_cost_model_is_frozen_checked_and_scalable() -> None:
    cost = CostModel()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cost.migrate_page = 1.0  # type: ignore[misc]
    with pytest.raises(InvalidArgument, match="migrate_page"):
        CostModel(migrate_page=-1.0)
    with pytest.raises(InvalidArgument):
        CostModel(free_page="fast")  # type: ignore[arg-type]
    slow = cost.scaled(1.3)
    assert slow.migrate_page == pytest.approx(cost.migrate_page * 1.3)
    with pytest.raises(InvalidArgument):
        cost.scaled(-1)


def test_batch_isolate_is_round_plus_block() -> None:
    cost = CostModel()
    assert cost.batch_isolate == cost.compact_round + cost.isolate_block
    assert "batch_isolate" not in cost.as_dict()
