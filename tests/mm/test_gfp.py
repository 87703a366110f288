"""Tests for pagelab.mm.gfp: flag values, parsing by name, gfp_migratetype and gfp_zone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pagelab.errors import InvalidArgument
from pagelab.mm import gfp as G
from pagelab.mm.gfp import gfp_migratetype, gfp_names, gfp_zone, parse_gfp
from pagelab.mm.mmzone import MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, ZoneType

# ___GFP_*_BIT values of include/linux/gfp_types.h (x86-64, no KASAN_HW_TAGS, no LOCKDEP).
KERNEL_BITS = {
    "__GFP_DMA": 0x1, "__GFP_HIGHMEM": 0x2, "__GFP_DMA32": 0x4, "__GFP_MOVABLE": 0x8,
    "__GFP_RECLAIMABLE": 0x10, "__GFP_HIGH": 0x20, "__GFP_IO": 0x40, "__GFP_FS": 0x80,
    "__GFP_ZERO": 0x100, "__GFP_DIRECT_RECLAIM": 0x400, "__GFP_KSWAPD_RECLAIM": 0x800,
    "__GFP_WRITE": 0x1000, "__GFP_NOWARN": 0x2000, "__GFP_RETRY_MAYFAIL": 0x4000,
    "__GFP_NOFAIL": 0x8000, "__GFP_NORETRY": 0x10000, "__GFP_MEMALLOC": 0x20000,
    "__GFP_COMP": 0x40000, "__GFP_NOMEMALLOC": 0x80000, "__GFP_HARDWALL": 0x100000,
    "__GFP_THISNODE": 0x200000, "__GFP_ACCOUNT": 0x400000, "__GFP_ZEROTAGS": 0x800000,
}

# Composite masks as the kernel computes them on x86-64.
KERNEL_COMPOSITES = {
    "GFP_ATOMIC": 0x820,
    "GFP_KERNEL": 0xCC0,
    "GFP_KERNEL_ACCOUNT": 0x400CC0,
    "GFP_NOWAIT": 0x2800,
    "GFP_NOIO": 0xC00,
    "GFP_NOFS": 0xC40,
    "GFP_USER": 0x100CC0,
    "GFP_DMA": 0x1,
    "GFP_DMA32": 0x4,
    "GFP_HIGHUSER": 0x100CC2,
    "GFP_HIGHUSER_MOVABLE": 0x100CCA,
    "GFP_TRANSHUGE_LIGHT": 0x1C20CA,
    "GFP_TRANSHUGE": 0x1C24CA,
    "__GFP_RECLAIM": 0xC00,
}


@pytest.mark.parametrize(("name", "value"), sorted(KERNEL_BITS.items()))
def test_gfp_bits(name: str, value: int) -> None:
    assert G.GFP_FLAGS[name] == value
    assert parse_gfp(name) == value


@pytest.mark.parametrize(("name", "value"), sorted(KERNEL_COMPOSITES.items()))
def test_composite_values(name: str, value: int) -> None:
    assert G.GFP_COMPOSITES[name] == value
    assert getattr(G, name) == value
    assert parse_gfp(name) == value


def test_bit9_is_unused_and_skip_kasan_is_zero() -> None:
    assert 0x200 not in G.GFP_FLAGS.values()
    assert G.__GFP_SKIP_KASAN == 0
    assert G.GFP_ZONEMASK == 0xF


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("GFP_KERNEL|__GFP_COMP", 0xCC0 | 0x40000),
        (" GFP_KERNEL | __GFP_COMP ", 0xCC0 | 0x40000),
        ("0xcc0", 0xCC0),
        ("0XCC0", 0xCC0),
        ("3264", 0xCC0),
        ("GFP_ATOMIC|0x40000", 0x820 | 0x40000),
        ("GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_NOWARN", 0x100CCA | 0x40000 | 0x2000),
        ("0", 0),
        ("none", 0),
        (0xCC0, 0xCC0),
        (0, 0),
    ],
)
def test_parse_gfp(text: str | int, value: int) -> None:
    assert parse_gfp(text) == value


@pytest.mark.parametrize("bad", ["GFP_KERNAL", "gfp_kernel", "GFP_KERNEL|__GFP_BOGUS", "", "0xzz"])
def test_unknown_name_is_rejected_with_the_token_and_suggestions(bad: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_gfp(bad)
    message = str(exc.value)
    token = bad.split("|")[-1].strip()
    assert repr(token) in message
    assert "GFP_KERNEL" in message and "GFP_ATOMIC" in message  # valid names suggested
    assert "__GFP_" in message


@pytest.mark.parametrize("bad", [1 << 9, 1 << 25, -1, "0x200", "GFP_KERNEL|0x2000000"])
def test_undefined_bits_are_rejected(bad: str | int) -> None:
    with pytest.raises(InvalidArgument, match="bits the kernel does not define"):
        parse_gfp(bad)


def test_invalid_argument_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_gfp("nonsense")


# --- gfp_migratetype ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gfp", "mt"),
    [
        (G.GFP_KERNEL, MIGRATE_UNMOVABLE),
        (G.GFP_ATOMIC, MIGRATE_UNMOVABLE),
        (G.GFP_HIGHUSER_MOVABLE, MIGRATE_MOVABLE),
        (G.GFP_TRANSHUGE, MIGRATE_MOVABLE),
        (G.GFP_KERNEL | G.__GFP_RECLAIMABLE, MIGRATE_RECLAIMABLE),
        (G.__GFP_MOVABLE, MIGRATE_MOVABLE),
    ],
)
def test_gfp_migratetype(gfp: int, mt: int) -> None:
    assert gfp_migratetype(gfp) == mt
    # With mobility grouping disabled everything is UNMOVABLE.
    assert gfp_migratetype(gfp, page_group_by_mobility_disabled=True) == MIGRATE_UNMOVABLE


# --- gfp_zone ----------------------------------------------------------------------------------

DMA, HIGHMEM, DMA32, MOVABLE = G.__GFP_DMA, G.__GFP_HIGHMEM, G.__GFP_DMA32, G.__GFP_MOVABLE

# GFP_ZONE_TABLE for x86-64 (no ZONE_HIGHMEM: OPT_ZONE_HIGHMEM is ZONE_NORMAL).
ZONE_TABLE = {
    0: ZoneType.ZONE_NORMAL,
    DMA: ZoneType.ZONE_DMA,
    HIGHMEM: ZoneType.ZONE_NORMAL,
    DMA32: ZoneType.ZONE_DMA32,
    MOVABLE: ZoneType.ZONE_NORMAL,
    MOVABLE | DMA: ZoneType.ZONE_DMA,
    MOVABLE | HIGHMEM: ZoneType.ZONE_MOVABLE,
    MOVABLE | DMA32: ZoneType.ZONE_DMA32,
}


@pytest.mark.parametrize("bits", range(16))
def test_gfp_zone_table_and_zone_bad(bits: int) -> None:
    # GFP_ZONE_BAD: any two of DMA, HIGHMEM, DMA32 (with or without MOVABLE).
    if bin(bits & (DMA | HIGHMEM | DMA32)).count("1") >= 2:
        with pytest.raises(InvalidArgument, match="GFP_ZONE_BAD") as exc:
            gfp_zone(bits | G.GFP_KERNEL)
        assert "use at most one of __GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM" in str(exc.value)
    else:
        assert gfp_zone(bits | G.GFP_KERNEL) == ZONE_TABLE[bits]


def test_gfp_zone_of_common_masks() -> None:
    assert gfp_zone(G.GFP_KERNEL) == ZoneType.ZONE_NORMAL
    assert gfp_zone(G.GFP_ATOMIC) == ZoneType.ZONE_NORMAL
    assert gfp_zone(G.GFP_HIGHUSER_MOVABLE) == ZoneType.ZONE_MOVABLE
    assert gfp_zone(G.GFP_TRANSHUGE) == ZoneType.ZONE_MOVABLE
    assert gfp_zone(G.GFP_DMA32) == ZoneType.ZONE_DMA32
    assert gfp_zone(G.GFP_KERNEL | G.GFP_DMA) == ZoneType.ZONE_DMA
    # GFP_USER (no __GFP_MOVABLE) stays in Normal; set_recommended_min_free_kbytes uses it.
    assert gfp_zone(G.GFP_USER) == ZoneType.ZONE_NORMAL


def test_gfpflags_allow_blocking() -> None:
    assert G.gfpflags_allow_blocking(G.GFP_KERNEL)
    assert not G.gfpflags_allow_blocking(G.GFP_ATOMIC)
    assert not G.gfpflags_allow_blocking(G.GFP_NOWAIT)
    assert not G.gfpflags_allow_blocking(G.GFP_TRANSHUGE_LIGHT)
    assert G.gfpflags_allow_blocking(G.GFP_TRANSHUGE)


# --- gfp_names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gfp", "text"),
    [
        (0, "none"),  # show_gfp_flags(0)
        (G.GFP_KERNEL, "GFP_KERNEL"),
        (G.GFP_KERNEL | G.__GFP_COMP, "GFP_KERNEL|__GFP_COMP"),
        (G.GFP_ATOMIC, "GFP_ATOMIC"),
        (G.GFP_NOWAIT, "GFP_NOWAIT"),
        (G.GFP_TRANSHUGE, "GFP_TRANSHUGE"),
        (G.GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
        (G.GFP_HIGHUSER_MOVABLE | G.__GFP_ZERO, "GFP_HIGHUSER_MOVABLE|__GFP_ZERO"),
        (G.__GFP_HIGH | G.__GFP_NOWARN, "__GFP_HIGH|__GFP_NOWARN"),
    ],
)
def test_gfp_names(gfp: int, text: str) -> None:
    assert gfp_names(gfp) == text


def test_gfp_names_shows_unknown_bits_in_hex() -> None:
    assert gfp_names(G.GFP_KERNEL | 0x200) == "GFP_KERNEL|0x200"


VALID_BITS = [1 << b for b in range(G.___GFP_LAST_BIT) if b != 9]


@settings(max_examples=300, deadline=None)
@given(st.sets(st.sampled_from(VALID_BITS)))
def test_gfp_names_round_trips(bits: set[int]) -> None:
    value = sum(bits)
    text = gfp_names(value)
    assert parse_gfp(text) == value
    # Each name appears once.
    parts = text.split("|")
    assert len(parts) == len(set(parts))
