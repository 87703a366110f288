"""Tests for pagelab.io.procfs: byte-for-byte rendering and parsing of the kernel's memory files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pagelab.errors import InvalidArgument, ParseError
from pagelab.io.procfs import (
    PAGETYPEINFO_FREE_CAP,
    Buddyinfo,
    BuddyinfoRow,
    ExtfragIndex,
    FragIndexRow,
    Pagetypeinfo,
    PagetypeinfoBlockRow,
    PagetypeinfoFreeRow,
    UnusableIndex,
    Vmstat,
    Zoneinfo,
    ZoneinfoPageset,
    ZoneinfoZone,
    extfrag_index_from_buddyinfo,
    extfrag_index_table,
    parse_buddyinfo,
    parse_extfrag_index,
    parse_pagetypeinfo,
    parse_unusable_index,
    parse_vmstat,
    parse_zoneinfo,
    render_buddyinfo,
    render_extfrag_index,
    render_pagetypeinfo,
    render_unusable_index,
    render_vmstat,
    render_zoneinfo,
    unusable_index_from_buddyinfo,
    unusable_index_table,
)

LIVE = Path(__file__).resolve().parents[1] / "fixtures" / "live"

FORMATS: dict[str, tuple[Callable[[str], Any], Callable[[Any], str]]] = {
    "buddyinfo": (parse_buddyinfo, render_buddyinfo),
    "pagetypeinfo": (parse_pagetypeinfo, render_pagetypeinfo),
    "zoneinfo": (parse_zoneinfo, render_zoneinfo),
    "vmstat": (parse_vmstat, render_vmstat),
    "extfrag_index": (parse_extfrag_index, render_extfrag_index),
    "unusable_index": (parse_unusable_index, render_unusable_index),
}


def fixture(name: str) -> str:
    return (LIVE / f"{name}.txt").read_text()


# --- the live fixtures --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_live_fixture_round_trips_byte_for_byte(name: str) -> None:
    parse, render = FORMATS[name]
    text = fixture(name)
    data = parse(text)
    assert render(data) == text
    assert parse(render(data)) == data


@pytest.mark.parametrize("name", ["buddyinfo", "extfrag-buddyinfo", "extfrag-buddyinfo-after"])
def test_buddyinfo_fixtures_round_trip(name: str) -> None:
    assert render_buddyinfo(parse_buddyinfo(fixture(name))) == fixture(name)


def test_extfrag_and_unusable_from_simultaneous_buddyinfo() -> None:
    b = parse_buddyinfo(fixture("extfrag-buddyinfo"))
    assert fixture("extfrag-buddyinfo-after") == fixture("extfrag-buddyinfo")  # a stable moment
    assert extfrag_index_from_buddyinfo(b) == fixture("extfrag_index")
    assert unusable_index_from_buddyinfo(b) == fixture("unusable_index")
    assert extfrag_index_table(b) == parse_extfrag_index(fixture("extfrag_index"))
    assert unusable_index_table(b) == parse_unusable_index(fixture("unusable_index"))


def test_buddyinfo_fixture_values() -> None:
    b = parse_buddyinfo(fixture("buddyinfo"))
    assert [(r.node, r.zone) for r in b.rows] == [(0, "DMA"), (0, "DMA32"), (0, "Normal")]
    assert b.row(0, "DMA32").nr_free[10] == 752
    assert b.row(0, "Normal").nr_free == (624, 392, 835, 405, 184, 83, 71, 11, 5, 5, 31)
    with pytest.raises(InvalidArgument, match="no row for node 0 zone 'Movable'"):
        b.row(0, "Movable")


def test_pagetypeinfo_fixture_values() -> None:
    p = parse_pagetypeinfo(fixture("pagetypeinfo"))
    assert p.pageblock_order == 9
    assert p.pageblock_nr_pages == 512
    # 6.18 on this machine: no CONFIG_CMA, so no "CMA" migratetype.
    assert p.migratetype_names == ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")
    assert p.mixed is None
    assert len(p.free) == 15
    assert p.free_counts(0, "Normal")["Movable"][0] == 623
    assert p.block_counts(0, "Normal") == {
        "Unmovable": 48,
        "Movable": 317,
        "Reclaimable": 19,
        "HighAtomic": 0,
        "Isolate": 0,
    }
    # Free lists per migratetype sum to buddyinfo's nr_free (taken at nearly the same moment).
    b = parse_buddyinfo(fixture("buddyinfo"))
    dma32 = p.free_counts(0, "DMA32")
    assert tuple(map(sum, zip(*dma32.values(), strict=True))) == b.row(0, "DMA32").nr_free


def test_zoneinfo_fixture_values() -> None:
    z = parse_zoneinfo(fixture("zoneinfo"))
    assert [zone.zone for zone in z.zones] == ["DMA", "DMA32", "Normal", "Movable", "Device"]
    dma = z.zone(0, "DMA")
    assert dma.node_stats is not None  # first populated zone of node 0
    assert dict(dma.node_stats)["nr_file_pages"] == 115160
    assert z.zone(0, "DMA32").node_stats is None
    assert (dma.min, dma.low, dma.high, dma.promo) == (66, 82, 98, 114)
    assert dma.protection == (0, 3018, 3786, 3786, 3786)
    assert dma.stat("nr_free_pages_blocks") == 3584
    assert dma.pagesets[1] == ZoneinfoPageset(1, 0, 0, 1, 41, 240, 4)
    assert dma.start_pfn == 1
    normal = z.zone(0, "Normal")
    assert normal.pagesets[1].count == 4496
    assert normal.stat("numa_interleave") == 1140
    movable = z.zone(0, "Movable")
    assert not movable.populated
    assert movable.stats == () and movable.pagesets == ()
    assert movable.start_pfn is None and movable.node_unreclaimable is None
    assert (movable.min, movable.low) == (32, 32)


def test_vmstat_fixture_values() -> None:
    v = parse_vmstat(fixture("vmstat"))
    assert v["pgfree"] == 1549579
    assert v.names()[-1] == "nr_unstable"
    assert "nr_bounce" not in v  # removed before 6.18
    assert v.as_dict()["nr_free_pages"] == 831723
    with pytest.raises(KeyError):
        v["nr_nonexistent"]


# --- known renderings ---------------------------------------------------------------------------


def test_buddyinfo_render_widths() -> None:
    b = Buddyinfo((BuddyinfoRow(1, "Normal", [0, 1, 22, 333, 4444, 55555, 666666, 7, 8, 9, 10]),))
    assert render_buddyinfo(b) == (
        "Node 1, zone   Normal      0      1     22    333   4444  55555 666666"
        "      7      8      9     10 \n"
    )


def test_buddyinfo_accepts_numpy_and_long_zone_names() -> None:
    row = BuddyinfoRow(np.int64(0), "VeryLongZone", np.arange(11, dtype=np.uint64))
    assert row.nr_free == tuple(range(11))
    assert all(type(n) is int for n in row.nr_free)
    text = render_buddyinfo(Buddyinfo((row,)))
    assert text.startswith("Node 0, zone VeryLongZone      0      1 ")
    assert parse_buddyinfo(text).rows == (row,)


@pytest.mark.parametrize(
    ("value", "extfrag", "unusable"),
    [
        (-1000, "-1.000", "-1.000"),
        (0, " 0.000", "0.000"),
        (523, " 0.523", "0.523"),
        (1000, " 1.000", "1.000"),
        (66, " 0.066", "0.066"),
        (-500, " 0.-500", "0.-500"),  # C: -500 / 1000 == 0, -500 % 1000 == -500
        (-5, " 0.-05", "0.-05"),
        (-1500, "-1.-500", "-1.-500"),
        (12345, "12.345", "12.345"),
    ],
)
def test_index_rendering_uses_c_division(value: int, extfrag: str, unusable: str) -> None:
    row = FragIndexRow(0, "DMA", [value] * 11)
    e = render_extfrag_index(ExtfragIndex((row,)))
    u = render_unusable_index(UnusableIndex((row,)))
    assert e == "Node 0, zone      DMA " + (extfrag + " ") * 11 + "\n"
    assert u == "Node 0, zone      DMA " + (unusable + " ") * 11 + "\n"
    assert parse_extfrag_index(e).rows == (row,)
    assert parse_unusable_index(u).rows == (row,)


def test_extfrag_index_from_fragmented_buddyinfo() -> None:
    nr_free = [0] * 11
    nr_free[3] = 1  # 8 pages in one block and 1000 single pages
    nr_free[0] = 1000
    b = Buddyinfo((BuddyinfoRow(0, "Normal", nr_free),))
    text = extfrag_index_from_buddyinfo(b)
    values = parse_extfrag_index(text).rows[0].values
    assert values[:4] == (-1000, -1000, -1000, -1000)
    # order 4: 1000 - (1000 + 1008*1000/16) / 1001 = 1000 - 63 = 937
    assert values[4] == 937
    assert unusable_index_from_buddyinfo(b).split()[4:9] == [
        "0.000",  # order 0: every free page is usable
        "0.992",  # orders 1-3: only the order-3 block's 8 of 1008 pages are usable
        "0.992",
        "0.992",
        "1.000",  # order 4: nothing is usable
    ]


def test_pagetypeinfo_caps_free_counts() -> None:
    row = PagetypeinfoFreeRow(0, "Normal", "Movable", [99999, 100000, 100001, *[0] * 8])
    assert row.counts[:3] == (99999, PAGETYPEINFO_FREE_CAP, PAGETYPEINFO_FREE_CAP)
    p = Pagetypeinfo(("Movable",), (row,), (PagetypeinfoBlockRow(0, "Normal", [3]),))
    text = render_pagetypeinfo(p)
    assert "Node    0, zone   Normal, type      Movable  99999 >100000 >100000      0 " in text
    assert parse_pagetypeinfo(text) == p


def test_pagetypeinfo_with_mixed_blocks_and_two_nodes() -> None:
    names = ("Unmovable", "Movable")
    free = tuple(
        PagetypeinfoFreeRow(n, "Normal", mt, [n + i for i in range(11)])
        for n in (0, 1)
        for mt in names
    )
    blocks = (PagetypeinfoBlockRow(0, "Normal", [1, 2]), PagetypeinfoBlockRow(1, "Normal", [3, 4]))
    mixed = (PagetypeinfoBlockRow(0, "Normal", [0, 1]), PagetypeinfoBlockRow(1, "Normal", [2, 0]))
    p = Pagetypeinfo(names, free, blocks, mixed)
    text = render_pagetypeinfo(p)
    assert text.count("Page block order: 9\n") == 2
    assert "\nNumber of mixed blocks    Unmovable      Movable \nNode 0, zone   Normal " in text
    assert text.endswith("Node 1, zone   Normal            2            0 \n")
    assert parse_pagetypeinfo(text) == p


# --- round trips over generated data ------------------------------------------------------------

word = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,13}", fullmatch=True)
counter_name = st.from_regex(r"[a-z][a-z0-9_]{0,29}", fullmatch=True)
ulong = st.integers(0, (1 << 64) - 1)
small = st.integers(0, 10**7)
s32 = st.integers(-(1 << 31), (1 << 31) - 1)
s64 = st.integers(-(1 << 63), (1 << 63) - 1)
node_id = st.integers(0, 1023)
orders = st.lists(st.one_of(small, ulong), min_size=11, max_size=11)


@st.composite
def buddyinfos(draw: st.DrawFn) -> Buddyinfo:
    rows = draw(st.lists(st.builds(BuddyinfoRow, node_id, word, orders), min_size=1, max_size=6))
    return Buddyinfo(tuple(rows))


@st.composite
def pagetypeinfos(draw: st.DrawFn) -> Pagetypeinfo:
    names = tuple(draw(st.lists(word, min_size=1, max_size=6, unique=True)))
    nodes = draw(st.lists(node_id, min_size=1, max_size=3, unique=True))
    with_mixed = draw(st.booleans())
    free, blocks, mixed = [], [], []
    cap = st.integers(0, PAGETYPEINFO_FREE_CAP)
    for node in nodes:
        for zone in draw(st.lists(word, min_size=1, max_size=3, unique=True)):
            for mt in names:
                counts = draw(st.lists(cap, min_size=11, max_size=11))
                free.append(PagetypeinfoFreeRow(node, zone, mt, counts))
            n = len(names)
            blocks.append(
                PagetypeinfoBlockRow(node, zone, draw(st.lists(ulong, min_size=n, max_size=n)))
            )
            mixed.append(
                PagetypeinfoBlockRow(node, zone, draw(st.lists(small, min_size=n, max_size=n)))
            )
    return Pagetypeinfo(
        names,
        tuple(free),
        tuple(blocks),
        tuple(mixed) if with_mixed else None,
        draw(st.integers(0, 20)),
        draw(ulong),
    )


pairs = st.lists(st.tuples(counter_name, ulong), max_size=8)
pagesets = st.builds(ZoneinfoPageset, st.integers(0, 4095), s32, s32, s32, s32, s32, s32)


@st.composite
def zoneinfo_zones(draw: st.DrawFn) -> ZoneinfoZone:
    populated = draw(st.booleans())
    fields = {f: draw(ulong) for f in ("free", "boost", "min", "low", "high", "promo", "spanned")}
    fields.update(managed=draw(ulong), cma=draw(ulong))
    present = draw(st.integers(1, (1 << 64) - 1)) if populated else 0
    node_stats = draw(st.one_of(st.none(), pairs.map(tuple)))
    extra: dict[str, Any] = {}
    if populated:
        extra = {
            "stats": tuple(draw(pairs)),
            "pagesets": tuple(draw(st.lists(pagesets, max_size=3))),
            "node_unreclaimable": draw(st.integers(0, 1)),
            "start_pfn": draw(ulong),
        }
    return ZoneinfoZone(
        node=draw(node_id),
        zone=draw(word),
        present=present,
        protection=tuple(draw(st.lists(s64, min_size=1, max_size=6))),
        node_stats=node_stats,
        **fields,
        **extra,
    )


zoneinfos = st.lists(zoneinfo_zones(), min_size=1, max_size=5).map(lambda z: Zoneinfo(tuple(z)))
vmstats = st.lists(
    st.tuples(counter_name, ulong), min_size=1, max_size=30, unique_by=lambda p: p[0]
).map(lambda c: Vmstat(tuple(c)))
index_rows = st.lists(
    st.builds(FragIndexRow, node_id, word, st.lists(s32, min_size=11, max_size=11)),
    min_size=1,
    max_size=5,
)

STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "buddyinfo": buddyinfos(),
    "pagetypeinfo": pagetypeinfos(),
    "zoneinfo": zoneinfos,
    "vmstat": vmstats,
    "extfrag_index": index_rows.map(lambda r: ExtfragIndex(tuple(r))),
    "unusable_index": index_rows.map(lambda r: UnusableIndex(tuple(r))),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(name: str, data: st.DataObject) -> None:
    parse, render = FORMATS[name]
    x = data.draw(STRATEGIES[name])
    text = render(x)
    assert parse(text) == x
    assert render(parse(text)) == text


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_parse_tolerates_stripped_blanks(name: str) -> None:
    """Copy and paste loses trailing blanks and the final newline; the parse is unchanged."""
    parse, _ = FORMATS[name]
    text = fixture(name)
    stripped = "\n".join(line.rstrip() for line in text.splitlines())
    assert parse(stripped) == parse(text)


# --- malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_empty_text_is_a_parse_error(name: str) -> None:
    parse, _ = FORMATS[name]
    with pytest.raises(ParseError, match=f"{name} line 1: expected .* found the end of the text"):
        parse("")


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_bytes_are_rejected_with_advice(name: str) -> None:
    parse, _ = FORMATS[name]
    with pytest.raises(InvalidArgument, match="decode bytes first"):
        parse(fixture(name).encode())


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (
            "buddyinfo",
            lambda t: t.replace("    752 ", " "),
            r"line 2: expected 11 free-block counts",
        ),
        ("buddyinfo", lambda t: t.replace("835", "8x5"), r"line 3: expected a free-block count"),
        (
            "buddyinfo",
            lambda t: t.replace("Node 0, zone    DMA32", "Node 0 zone DMA32"),
            r"line 2: expected 'Node <n>, zone <name>'",
        ),
        ("buddyinfo", lambda t: t.replace("624", "-624"), r"line 3: expected a free-block count"),
        (
            "vmstat",
            lambda t: t.replace("pgfree 1549579", "pgfree"),
            r"vmstat line \d+: expected '<counter name> <value>', found 'pgfree'",
        ),
        (
            "vmstat",
            lambda t: t + "pgfree 1\n",
            r"line 193: expected a new counter name \('pgfree' was already on line \d+\)",
        ),
        (
            "vmstat",
            lambda t: t.replace("pgfree 1549579", "pgfree 1.5"),
            r"expected 'pgfree <unsigned value>'",
        ),
        ("vmstat", lambda t: t.replace("pgfree 1549579", f"pgfree {1 << 64}"), r"below 2\*\*64"),
        (
            "zoneinfo",
            lambda t: t[: t.index("        low      82")],
            r"zoneinfo line 57: expected 'low <n>', found the end of the text",
        ),
        (
            "zoneinfo",
            lambda t: t.replace("        boost    0\n", "", 1),
            r"line 55: expected 'boost <n>', found '        min      66'",
        ),
        (
            "zoneinfo",
            lambda t: t.replace("protection: (0, 3018,", "protection: (0 3018,"),
            r"line 64: expected 'protection: \(<n>, <n>, \.\.\.\)'",
        ),
        (
            "zoneinfo",
            lambda t: t.replace("  pagesets\n", "", 1),
            r"line 82: expected a zone counter line '<name> <n>' or 'pagesets', found '    cpu: 0'",
        ),
        (
            "zoneinfo",
            lambda t: t.replace("              high_max: 240\n", "", 1),
            r"line 88: expected 'high_max: <n>', found '  vm stats threshold: 4'",
        ),
        (
            "zoneinfo",
            lambda t: t[: t.rindex("  start_pfn:")],
            r"line 190: expected 'start_pfn: <n>', found the end of the text",
        ),
        (
            "zoneinfo",
            lambda t: t + "  pagesets\n",
            r"line 215: expected the next 'Node <n>, zone <name>' or the end of the text",
        ),
        (
            "pagetypeinfo",
            lambda t: t[: t.index("Number of blocks")],
            r"line 21: expected the 'Number of blocks type' header, found the end",
        ),
        (
            "pagetypeinfo",
            lambda t: t.replace("Pages per block:  512", "Pages per block: lots"),
            r"line 2: expected 'Pages per block:  <n>'",
        ),
        (
            "pagetypeinfo",
            lambda t: t.replace("   1528 ", " 1528 9 ", 1),
            r"line 23: expected 5 block counts",
        ),
        ("pagetypeinfo", lambda t: t.replace("    623 ", " >623 "), r"line 16: expected '>100000'"),
        (
            "pagetypeinfo",
            lambda t: t.replace("\n\nNumber", "\nNumber"),
            r"line 20: expected a free-count row .* or the empty line before 'Number of blocks type'",
        ),
        (
            "pagetypeinfo",
            lambda t: t.replace(
                "Node    0, zone   Normal, type   HighAtomic",
                "Node   50, zone   Normal, type   HighAtomic",
            ),
            r"line 18: expected a row for node 0, the node this section started with",
        ),
        (
            "pagetypeinfo",
            lambda t: t + t,
            r"line 25: expected node 0 only once \(it already had a section\)",
        ),
        (
            "pagetypeinfo",
            lambda t: t + "garbage\n",
            r"line 25: expected a block row .*'Page block order:' \(the next node\) or the end of the text, found 'garbage'",
        ),
        (
            "extfrag_index",
            lambda t: t.replace("-1.000", "-1.0", 1),
            r"line 1: expected an index value .*three decimals",
        ),
        (
            "extfrag_index",
            lambda t: t.replace("-1.000", "x", 1),
            r"line 1: expected an index value such as",
        ),
        (
            "unusable_index",
            lambda t: t.replace(" 0.423 ", " "),
            r"line 3: expected 11 index values",
        ),
    ],
)
def test_garbled_text_names_line_and_expectation(
    name: str, edit: Callable[[str], str], message: str
) -> None:
    parse, _ = FORMATS[name]
    text = edit(fixture(name))
    assert text != fixture(name)
    with pytest.raises(ParseError, match=message) as err:
        parse(text)
    assert str(err.value).endswith(
        "pass the complete, unedited text of the file as Linux 6.18 prints it"
    )


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_truncation_parses_exactly_or_raises_parse_error(name: str) -> None:
    """Cut the file at every byte: either a clean prefix that re-renders, or a ParseError."""
    parse, render = FORMATS[name]
    text = fixture(name)
    for cut in range(len(text)):
        prefix = text[:cut]
        try:
            data = parse(prefix)
        except ParseError:
            continue
        # A cut at a line end, or inside the last number, still parses (the final newline may be
        # missing); what it parses to re-renders to exactly the words that were there.
        assert render(data).split() == prefix.split()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FORMATS)), st.data())
def test_garbled_text_only_raises_parse_error(name: str, data: st.DataObject) -> None:
    """Replace, insert or delete a few characters: the parser either reads something that
    renders and reads back identically, or raises ParseError — never another exception."""
    parse, render = FORMATS[name]
    garbled = fixture(name)
    pieces = [
        *"0123456789 ,.:()-_>xN\n\t",
        "Node ",
        "\n\n",
        "Page block order: 9\n",
        "    cpu: 1\n",
    ]
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(garbled) - 1))
        piece = data.draw(st.sampled_from(pieces))
        op = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        if op == "replace":
            garbled = garbled[:pos] + piece + garbled[pos + 1 :]
        elif op == "insert":
            garbled = garbled[:pos] + piece + garbled[pos:]
        else:
            garbled = garbled[:pos] + garbled[pos + data.draw(st.integers(1, 40)) :]
    try:
        result = parse(garbled)
    except ParseError:
        return
    assert parse(render(result)) == result


def test_dataclasses_reject_values_the_kernel_cannot_print() -> None:
    with pytest.raises(InvalidArgument, match="nr_free must have 11 entries"):
        BuddyinfoRow(0, "DMA", [0] * 10)
    with pytest.raises(InvalidArgument, match=r"nr_free\[0\] is -1"):
        BuddyinfoRow(0, "DMA", [-1] + [0] * 10)
    with pytest.raises(InvalidArgument, match=r"nr_free\[0\] must be an integer"):
        BuddyinfoRow(0, "DMA", [1.5] + [0] * 10)
    with pytest.raises(InvalidArgument, match="zone must be a non-empty word"):
        BuddyinfoRow(0, "Dma zone", [0] * 11)
    with pytest.raises(InvalidArgument, match="present 0"):
        ZoneinfoZone(0, "Movable", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (0,), start_pfn=5)
    with pytest.raises(InvalidArgument, match="pass node_unreclaimable"):
        ZoneinfoZone(0, "Normal", 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, (0,))
    with pytest.raises(InvalidArgument, match="protection must have one entry"):
        ZoneinfoZone(0, "Movable", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ())
    with pytest.raises(InvalidArgument, match="not in migratetype_names"):
        Pagetypeinfo(("Movable",), (PagetypeinfoFreeRow(0, "DMA", "CMA", [0] * 11),), ())
    with pytest.raises(InvalidArgument, match="has 1 counts but there are 2 migratetypes"):
        Pagetypeinfo(("Movable", "Isolate"), (), (PagetypeinfoBlockRow(0, "DMA", [0]),))
    two_nodes = [PagetypeinfoBlockRow(1, "DMA", [0]), PagetypeinfoBlockRow(0, "DMA", [0])]
    with pytest.raises(InvalidArgument, match="grouped by node"):
        Pagetypeinfo(("Movable",), (PagetypeinfoFreeRow(0, "DMA", "Movable", [0] * 11),), two_nodes)
    with pytest.raises(InvalidArgument, match="appears twice"):
        Vmstat((("pgfree", 1), ("pgfree", 2)))
    with pytest.raises(InvalidArgument, match=r"values\[0\] is 2147483648"):
        FragIndexRow(0, "DMA", [1 << 31] + [0] * 10)


# --- this machine ---------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except (FileNotFoundError, PermissionError, OSError) as e:
        pytest.skip(f"{path} is not readable here: {e}")


@pytest.mark.live
def test_live_extfrag_matches_buddyinfo() -> None:
    """debugfs extfrag files agree with /proc/buddyinfo read at the same moment."""
    for _ in range(20):
        before = _read("/proc/buddyinfo")
        extfrag = _read("/sys/kernel/debug/extfrag/extfrag_index")
        unusable = _read("/sys/kernel/debug/extfrag/unusable_index")
        after = _read("/proc/buddyinfo")
        if before == after:
            b = parse_buddyinfo(before)
            assert extfrag_index_from_buddyinfo(b) == extfrag
            assert unusable_index_from_buddyinfo(b) == unusable
            return
        time.sleep(0.05)
    pytest.skip("/proc/buddyinfo kept changing while the extfrag files were read")


@pytest.mark.live
@pytest.mark.parametrize("name", ["buddyinfo", "pagetypeinfo", "zoneinfo", "vmstat"])
def test_live_proc_file_round_trips(name: str) -> None:
    parse, render = FORMATS[name]
    text = _read(f"/proc/{name}")
    assert render(parse(text)) == text
