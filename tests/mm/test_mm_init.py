"""Tests for pagelab.mm.mm_init: sizes, the x86-64 layout, zone spans and boot-time freeing."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pagelab.errors import BadConfiguration, InvalidArgument, PagelabError
from pagelab.mm.mm_init import (
    LEGACY_HOLE,
    MemoryRange,
    Reservation,
    free_chunks,
    free_ranges,
    memblock_reservations,
    parse_size,
    validate_ranges,
    x86_64_layout,
    zone_spans,
)
from pagelab.mm.mmzone import (
    MAX_DMA32_PFN,
    MAX_DMA_PFN,
    MAX_PAGE_ORDER,
    PAGES_PER_SECTION,
    ZoneType,
)

GiB = 1 << 30
MiB = 1 << 20

# --- parse_size --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("24G", 24 * GiB),
        ("512M", 512 * MiB),
        ("1.5G", 3 * GiB // 2),
        ("4096", 4096),
        ("512MiB", 512 * MiB),
        ("512MB", 512 * MiB),
        ("8 g", 8 * GiB),
        (" 64K ", 64 << 10),
        ("1T", 1 << 40),
        ("100B", 100),
        ("0", 0),
        (24 * GiB, 24 * GiB),
        (np.int64(4096), 4096),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size
    assert isinstance(parse_size(text), int)


@pytest.mark.parametrize("bad", ["", "garbage", "-1G", "1X", "1.2.3G", "G", "1GG", "0x10", "1 G B"])
def test_parse_size_rejects_bad_strings(bad: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_size(bad)
    message = str(exc.value)
    assert repr(bad) in message  # says what was wrong
    assert "'24G'" in message  # and what to write instead


@pytest.mark.parametrize("bad", [-1, 1.5, None, [1]])
def test_parse_size_rejects_bad_values(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="give"):
        parse_size(bad)  # type: ignore[arg-type]


# --- x86_64_layout: the live 24 GiB machine ----------------------------------------------------------


def test_layout_24g_matches_the_live_e820() -> None:
    ranges = x86_64_layout(24 * GiB)
    assert ranges == [
        MemoryRange(0, 1, 0x9F),  # pfn 0 is firmware's; 640 KiB..1 MiB is the legacy hole
        MemoryRange(0, 0x100, 3 * GiB >> 12),  # RAM below 4 GiB stops at the 3 GiB PCI hole
        MemoryRange(0, MAX_DMA32_PFN, MAX_DMA32_PFN + (21 * GiB >> 12)),
    ]
    assert LEGACY_HOLE == (0x9F, 0x100)
    # 24 GiB of DIMMs minus pfn 0 and the legacy hole: the live machine's present pages.
    assert sum(r.end_pfn - r.start_pfn for r in ranges) == 3998 + 782336 + 5505024


def test_zone_spans_24g_match_live_zoneinfo() -> None:
    spans = zone_spans(x86_64_layout(24 * GiB), 0)
    got = {(s.zone_idx, s.start_pfn, s.end_pfn - s.start_pfn) for s in spans}
    # /proc/zoneinfo of the live machine: start_pfn and spanned.
    assert got == {
        (ZoneType.ZONE_DMA, 1, 4095),
        (ZoneType.ZONE_DMA32, 4096, 1044480),
        (ZoneType.ZONE_NORMAL, 1048576, 5505024),
    }
    assert MAX_DMA_PFN == 4096 and MAX_DMA32_PFN == 1 << 20


def test_small_machine_has_no_normal_zone() -> None:
    spans = zone_spans(x86_64_layout(2 * GiB), 0)
    assert [s.zone_idx for s in spans] == [ZoneType.ZONE_DMA, ZoneType.ZONE_DMA32]
    assert spans[1].end_pfn == 2 * GiB >> 12


def test_movable_zone_takes_the_top_of_each_node() -> None:
    ranges = x86_64_layout(8 * GiB)
    spans = {s.zone_idx: s for s in zone_spans(ranges, (2 * GiB) >> 12)}
    end = ranges[-1].end_pfn
    assert spans[ZoneType.ZONE_MOVABLE].end_pfn == end
    assert spans[ZoneType.ZONE_MOVABLE].start_pfn == end - (2 * GiB >> 12)
    assert spans[ZoneType.ZONE_MOVABLE].start_pfn % 1024 == 0
    assert spans[ZoneType.ZONE_NORMAL].end_pfn == spans[ZoneType.ZONE_MOVABLE].start_pfn


def test_movable_zone_cannot_eat_all_kernel_memory() -> None:
    ranges = x86_64_layout(8 * GiB)
    with pytest.raises(BadConfiguration, match="ask for less movable memory"):
        zone_spans(ranges, 8 * GiB >> 12)


@pytest.mark.parametrize("memory", [0, -GiB, 1 * MiB, 31 * MiB])
def test_too_small_layout_is_refused(memory: int) -> None:
    with pytest.raises(BadConfiguration, match="give at least 32M"):
        x86_64_layout(memory)


@pytest.mark.parametrize("nodes", [0, -1, 65])
def test_bad_node_counts_are_refused(nodes: int) -> None:
    with pytest.raises(BadConfiguration, match="give between 1 and 64 NUMA nodes"):
        x86_64_layout(GiB, nodes)


def test_too_many_nodes_for_the_memory() -> None:
    with pytest.raises(BadConfiguration, match="use fewer nodes or more memory"):
        x86_64_layout(256 * MiB, 4)


# --- x86_64_layout: NUMA splits --------------------------------------------------------------------


def _check_split(memory: int, nodes: int) -> list[MemoryRange]:
    ranges = x86_64_layout(memory, nodes)
    validate_ranges(ranges)
    one = x86_64_layout(memory, 1)
    # The same RAM, only labelled with nodes.
    covered = sorted((r.start_pfn, r.end_pfn) for r in ranges)
    merged: list[list[int]] = []
    for s, e in covered:
        if merged and merged[-1][1] == s:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    assert merged == [[r.start_pfn, r.end_pfn] for r in one]
    # Every node exists, node ids rise with the pfn.
    assert sorted({r.nid for r in ranges}) == list(range(nodes))
    assert [r.nid for r in ranges] == sorted(r.nid for r in ranges)
    # A node starts on a 128 MiB section boundary (except node 0 at pfn 1).
    for a, b in pairwise(ranges):
        if b.nid != a.nid:
            assert b.start_pfn % PAGES_PER_SECTION == 0
    # Nodes share the present pages evenly, within a section.
    present = sum(r.end_pfn - r.start_pfn for r in ranges)
    for nid in range(nodes):
        mine = sum(r.end_pfn - r.start_pfn for r in ranges if r.nid == nid)
        assert abs(mine - present / nodes) <= PAGES_PER_SECTION
    return ranges


def test_two_nodes_8g() -> None:
    ranges = _check_split(8 * GiB, 2)
    # Node 0 keeps the low 3 GiB and the first GiB above 4 GiB; node 1 the rest.
    assert ranges[-1] == MemoryRange(1, (5 * GiB) >> 12, (9 * GiB) >> 12)
    assert ranges[-2] == MemoryRange(0, MAX_DMA32_PFN, (5 * GiB) >> 12)


@pytest.mark.parametrize(("memory", "nodes"), [(392 * MiB, 3), (1 * GiB, 7), (24 * GiB, 64)])
def test_no_node_is_left_without_memory(memory: int, nodes: int) -> None:
    # Rounding every node's end up to a section used to leave the last nodes empty here.
    _check_split(memory, nodes)


@settings(max_examples=200, deadline=None)
@given(pages=st.integers(8192, 1 << 23), nodes=st.integers(1, 16))
def test_numa_splits_on_section_boundaries(pages: int, nodes: int) -> None:
    try:
        _check_split(pages << 12, nodes)
    except BadConfiguration as exc:
        assert "use fewer nodes or more memory" in str(exc)
        present = sum(r.end_pfn - r.start_pfn for r in x86_64_layout(pages << 12))
        assert present // nodes < PAGES_PER_SECTION


# --- validate_ranges ---------------------------------------------------------------------------------


def test_validate_ranges_accepts_disjoint_ranges() -> None:
    validate_ranges([MemoryRange(0, 0x100, 0x8000), MemoryRange(1, 0x8000, 0x10000)])


@pytest.mark.parametrize(
    ("ranges", "words"),
    [
        ([], "no RAM ranges"),
        ([MemoryRange(0, 0x100, 0x100)], "empty or inverted"),
        ([MemoryRange(0, 0x200, 0x100)], "empty or inverted"),
        ([MemoryRange(0, 0x100, 0x8000), MemoryRange(0, 0x4000, 0x9000)], "overlap"),
        ([MemoryRange(0, 0x100, 0x8000), MemoryRange(0, 0x100, 0x8000)], "overlap"),
        ([MemoryRange(1, 0x100, 0x8000), MemoryRange(0, 0x8000, 0x9000)], "starts below node"),
        ([MemoryRange(-1, 0x100, 0x8000)], "negative node id"),
    ],
)
def test_validate_ranges_rejects(ranges: list[MemoryRange], words: str) -> None:
    with pytest.raises(BadConfiguration, match=words) as exc:
        validate_ranges(ranges)
    assert isinstance(exc.value, PagelabError)


def test_overlap_message_names_both_ranges_and_the_fix() -> None:
    with pytest.raises(BadConfiguration) as exc:
        validate_ranges([MemoryRange(0, 0x100, 0x8000), MemoryRange(0, 0x4000, 0x9000)])
    message = str(exc.value)
    assert "0x100-0x8000" in message and "0x4000-0x9000" in message
    assert "give disjoint ranges" in message


# --- reservations and free ranges ------------------------------------------------------------------


def test_memblock_reservations_24g() -> None:
    ranges = x86_64_layout(24 * GiB)
    res = memblock_reservations(ranges, 37 * MiB)
    present = 3998 + 782336 + 5505024
    memmap_pages = -(-present * 64 // 4096)
    assert res == [
        Reservation(0, 0x100, "low 1 MiB"),
        Reservation(4096, 4096 + (37 * MiB >> 12), "kernel image and early allocations"),
        Reservation(ranges[-1].end_pfn - memmap_pages, ranges[-1].end_pfn, "memmap node 0"),
    ]


def test_memmap_reservation_spills_to_lower_ranges() -> None:
    ranges = [MemoryRange(0, 0x100, 0x1000), MemoryRange(0, 0x2000, 0x2010)]
    res = memblock_reservations(ranges, 0)
    memmap = [r for r in res if r.what == "memmap node 0"]
    # 3856 present pages need 61 pages of struct page: 16 from the top range, 45 below it.
    assert memmap == [Reservation(0x2000, 0x2010, "memmap node 0"),
                      Reservation(0x1000 - 45, 0x1000, "memmap node 0")]


def test_free_ranges_cut_out_reservations() -> None:
    ranges = [MemoryRange(0, 1, 0x9F), MemoryRange(0, 0x100, 0x10000)]
    res = [Reservation(0, 0x100, "low"), Reservation(0x1000, 0x2000, "kernel"),
           Reservation(0xFF00, 0x10000, "memmap")]
    assert free_ranges(ranges, res) == [(0x100, 0x1000), (0x2000, 0xFF00)]


# --- free_chunks -------------------------------------------------------------------------------------


def test_free_chunks_examples() -> None:
    assert free_chunks(0, 2048, []) == [(0, 10), (1024, 10)]
    assert free_chunks(0x100, 0x1000, [0x1000]) == [
        (0x100, 8), (0x200, 9), (0x400, 10), (0x800, 10), (0xC00, 10)]
    assert free_chunks(3, 8, []) == [(3, 0), (4, 2)]
    # A zone cut inside the range splits the blocks there.
    assert free_chunks(0, 2048, [1536]) == [(0, 10), (1024, 9), (1536, 9)]


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 1 << 22),
    length=st.integers(1, 1 << 14),
    cut_offsets=st.lists(st.integers(0, 1 << 14), max_size=4),
)
def test_free_chunks_are_aligned_maximal_and_respect_cuts(
    start: int, length: int, cut_offsets: list[int]
) -> None:
    end = start + length
    cuts = sorted({start + c for c in cut_offsets})
    chunks = free_chunks(start, end, cuts)
    pfn = start
    for chunk, order in chunks:
        assert chunk == pfn  # contiguous, ascending, complete
        assert 0 <= order <= MAX_PAGE_ORDER
        size = 1 << order
        assert chunk % size == 0  # naturally aligned
        assert not any(chunk < cut < chunk + size for cut in cuts)  # never crosses a zone cut
        # Largest possible: the next order would break alignment, the range, a cut or the cap.
        if order < MAX_PAGE_ORDER:
            bigger = 2 * size
            assert (
                chunk % bigger != 0
                or chunk + bigger > end
                or any(chunk < cut < chunk + bigger for cut in cuts)
            )
        pfn += size
    assert pfn == end


# --- the arm64 layout ------------------------------------------------------------------------


def test_arm64_phone_is_one_bank_from_2g_all_dma() -> None:
    from pagelab import Machine
    from pagelab.mm.mm_init import ARM64_DRAM_BASE_PFN, arm64_layout, memblock_reservations

    ranges = arm64_layout(2 << 30)
    assert ranges == [MemoryRange(0, ARM64_DRAM_BASE_PFN, ARM64_DRAM_BASE_PFN + (2 << 18))]
    spans = zone_spans(ranges, 0, "arm64")
    assert [(s.zone_idx, s.start_pfn, s.end_pfn) for s in spans] == [
        (ZoneType.ZONE_DMA, 0x80000, 0x100000)]
    reservations = memblock_reservations(ranges, 37 << 20, "arm64")
    assert reservations[0].start_pfn == ARM64_DRAM_BASE_PFN  # no low 1 MiB to keep
    assert "kernel image" in reservations[0].what
    m = Machine.build(memory="2G", arch="arm64", profile="v4.8", thp=False)
    assert [z.name for z in m.populated_zones()] == ["DMA"]
    assert m.procfs("buddyinfo").startswith("Node 0, zone      DMA ")
    m.check_state()


def test_arm64_dma_ends_at_the_first_4g_boundary() -> None:
    from pagelab.mm.mm_init import arm64_layout

    spans = zone_spans(arm64_layout(4 << 30), 0, "arm64")
    assert [(s.zone_idx, s.start_pfn, s.end_pfn) for s in spans] == [
        (ZoneType.ZONE_DMA, 0x80000, 0x100000), (ZoneType.ZONE_NORMAL, 0x100000, 0x180000)]
    # ZONE_MOVABLE takes the top, above DMA.
    spans = zone_spans(arm64_layout(4 << 30), 1 << 18, "arm64")
    assert spans[-1].zone_idx == ZoneType.ZONE_MOVABLE and spans[-1].start_pfn == 0x140000


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"memory": "2G", "arch": "mips"}, "one of x86_64, arm64"),
    ({"memory": "4G", "arch": "arm64", "nodes": 2}, "one node"),
    ({"memory": "16M", "arch": "arm64"}, "too small")])
def test_bad_arm64_machines_are_refused(kwargs: dict, words: str) -> None:
    from pagelab import Machine

    with pytest.raises(BadConfiguration, match=words):
        Machine.build(**kwargs)
