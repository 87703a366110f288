"""io/zram_device.py: mm_stat's text, and a real zram device refused unless it is unused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pagelab.drivers.zram import format_mm_stat
from pagelab.errors import BadConfiguration, ParseError
from pagelab.io.zram_device import MM_STAT_FIELDS, LiveZram, parse_mm_stat

ROOT = os.geteuid() == 0
# Read from this machine's /sys/block/zram0/mm_stat (Linux 6.18) after 4,096 pages.
KERNEL_MM_STAT = ("16777216  6780811  8048640        0  8048640      626        0        0"
                  "        0\n")


def test_mm_stat_parses_and_renders_as_the_kernel_prints_it() -> None:
    values = parse_mm_stat(KERNEL_MM_STAT)
    assert list(values) == list(MM_STAT_FIELDS)
    assert values["compr_data_size"] == 6_780_811 and values["same_pages"] == 626
    assert format_mm_stat(list(values.values())) == KERNEL_MM_STAT


def test_v4_mm_stat_has_seven_columns() -> None:
    values = parse_mm_stat(" ".join(["1"] * 7))
    assert list(values) == list(MM_STAT_FIELDS[:7])


@pytest.mark.parametrize("text", ["", "1 2 3", "1 2 3 4 5 6 x", " ".join(["1"] * 8)])
def test_malformed_mm_stat_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError, match="7 or 9 integers"):
        parse_mm_stat(text)


def _fake_device(tmp_path: Path, initstate: str, algorithms: str = "[lzo-rle] lzo lz4"
                 ) -> Path:
    device = tmp_path / "zram7"
    device.mkdir()
    (device / "initstate").write_text(initstate)
    (device / "comp_algorithm").write_text(algorithms + "\n")
    for name in ("disksize", "reset"):
        (device / name).write_text("0\n")
    return tmp_path


def test_a_missing_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadConfiguration, match="load the zram module"), \
            LiveZram("zram7", 1 << 20, "lz4", sys_block=tmp_path):
        pass


@pytest.mark.skipif(not ROOT, reason="not root: the root check comes first")
def test_a_device_in_use_is_refused_and_left_alone(tmp_path: Path) -> None:
    sys_block = _fake_device(tmp_path, "1\n")
    with pytest.raises(BadConfiguration, match="in use"), \
            LiveZram("zram7", 1 << 20, "lz4", sys_block=sys_block):
        pass
    assert (sys_block / "zram7" / "reset").read_text() == "0\n"  # never reset


@pytest.mark.skipif(not ROOT, reason="not root: the root check comes first")
def test_a_missing_compressor_is_refused(tmp_path: Path) -> None:
    sys_block = _fake_device(tmp_path, "0\n", algorithms="[lzo-rle] lzo")
    with pytest.raises(BadConfiguration, match="no 'lz4' compressor; this kernel offers "
                                              "lzo-rle, lzo"), \
            LiveZram("zram7", 1 << 20, "lz4", sys_block=sys_block):
        pass
