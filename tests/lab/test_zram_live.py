"""lab/zram_live.py: the model's zram beside this machine's, page for page."""

from __future__ import annotations

import os
from pathlib import Path

import lz4.block
import pytest

from pagelab.errors import BadConfiguration, InvalidArgument
from pagelab.io.zram_device import MM_STAT_FIELDS, parse_mm_stat
from pagelab.lab.zram_live import PATTERNS, ZramLiveConfig, compare_rows, run_live, run_model


@pytest.mark.parametrize(("pattern", "expected"), [
    ("odd", [1, 3, 5, 7]), ("thirds", [1, 2, 4, 5, 7]), ("chunks", [])])
def test_patterns_pick_the_pages_they_name(pattern: str, expected: list[int]) -> None:
    assert ZramLiveConfig(pages=8, pattern=pattern).discarded() == expected
    assert ZramLiveConfig(pages=200, pattern="chunks").discarded() == [
        *range(64, 128), *range(192, 200)]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"pages": 0}, "between 1"), ({"pattern": "evens"}, "one of odd"),
    ({"content_kind": "text"}, "one of model, tail"), ({"comp_algorithm": "lzo"}, "give lz4"),
    ({"compressibility": 1.5}, "between 0 and 1")])
def test_bad_configurations_say_what_to_do(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        ZramLiveConfig(**kwargs).validate()


def test_tail_pages_are_random_then_zero_and_repeatable() -> None:
    config = ZramLiveConfig(pages=50, content_kind="tail")
    pages = list(config.pages_bytes())
    assert pages == list(config.pages_bytes()) and len({len(p) for p in pages}) == 1
    sizes = {len(lz4.block.compress(p, store_size=False)) for p in pages}
    assert len(sizes) > 40  # spread over zsmalloc's classes
    for page in pages:
        assert page.rstrip(b"\0") and len(page.rstrip(b"\0")) >= 64 - 8


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_the_models_steps_keep_their_arithmetic(pattern: str) -> None:
    config = ZramLiveConfig(pages=2048, pattern=pattern, content_kind="tail")
    written, discarded, compacted = (parse_mm_stat(t) for t in run_model(config))
    kept = config.pages - len(config.discarded())
    assert written["orig_data_size"] == config.pages * 4096
    assert discarded["orig_data_size"] == kept * 4096
    assert written["mem_used_max"] == discarded["mem_used_max"] == compacted["mem_used_max"]
    assert discarded["mem_used_total"] < written["mem_used_total"]
    assert compacted["mem_used_total"] < discarded["mem_used_total"]
    freed = (discarded["mem_used_total"] - compacted["mem_used_total"]) // 4096
    assert compacted["pages_compacted"] == freed > 0
    assert compacted["compr_data_size"] == discarded["compr_data_size"]


def test_rows_line_up_each_column_and_skip_mem_limit() -> None:
    config = ZramLiveConfig(pages=256, content_kind="tail")
    model = run_model(config)
    rows = compare_rows(model, model)
    assert len(rows) == 3 * (len(MM_STAT_FIELDS) - 1)
    assert {row[4] for row in rows} == {"+0.00%"}


def _zram0_unused() -> bool:
    initstate = Path("/sys/block/zram0/initstate")
    return os.geteuid() == 0 and initstate.exists() and initstate.read_text().strip() == "0"


@pytest.mark.live
@pytest.mark.skipif(not _zram0_unused(), reason="needs root and an unused /dev/zram0")
def test_live_zram_agrees_with_the_model() -> None:
    """On this machine's kernel: with pages both lz4 copies size alike, every mm_stat column
    agrees exactly at every step; with the content model's pages, the data-only columns
    agree exactly and the pool's size within 3%."""
    for pattern in PATTERNS:
        config = ZramLiveConfig(pages=4096, pattern=pattern, content_kind="tail")
        _, live = run_live(config)
        assert run_model(config) == live, pattern
    config = ZramLiveConfig(pages=4096, pattern="thirds")
    _, live = run_live(config)
    for ours, theirs in zip(run_model(config), live, strict=True):
        model, kernel = parse_mm_stat(ours), parse_mm_stat(theirs)
        for name in ("orig_data_size", "same_pages", "huge_pages", "huge_pages_since"):
            assert model[name] == kernel[name], name
        assert abs(model["compr_data_size"] - kernel["compr_data_size"]) <= \
            0.002 * kernel["compr_data_size"]
        assert abs(model["mem_used_total"] - kernel["mem_used_total"]) <= \
            0.03 * kernel["mem_used_total"]
    assert Path("/sys/block/zram0/initstate").read_text().strip() == "0"  # reset after


def test_a_missing_device_is_a_configuration_error() -> None:
    with pytest.raises(BadConfiguration):
        run_live(ZramLiveConfig(pages=8), device="zram-none")
