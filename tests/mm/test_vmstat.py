"""Tests for pagelab.mm.vmstat: counter names and indices, and the kernel's fragmentation arithmetic."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pagelab.errors import InvalidArgument
from pagelab.mm import vmstat
from pagelab.mm.vmstat import (
    COMPACTION_HPAGE_ORDER,
    HPAGE_PMD_NR,
    MAX_PAGE_ORDER,
    NODE_STAT_ITEMS,
    NR_PAGE_ORDERS,
    NUMA_STAT_ITEMS,
    VM_EVENT_ITEMS,
    VM_STAT_ITEMS,
    VMSTAT_DEPRECATED_ITEMS,
    ZONE_STAT_ITEMS,
    ContigPageInfo,
    _fragmentation_index_info,
    extfrag_for_order,
    fill_contig_page_info,
    fragmentation_index,
    fragmentation_score_node,
    fragmentation_score_wmark,
    fragmentation_score_zone,
    fragmentation_score_zone_weighted,
    unusable_free_index,
    vmstat_item_print_in_thp,
    vmstat_show_items,
    zoneinfo_node_stat_items,
    zoneinfo_zone_stat_items,
)

LIVE = Path(__file__).resolve().parents[1] / "fixtures" / "live"
U64 = (1 << 64) - 1


def fixture_vmstat() -> list[tuple[str, int]]:
    out = []
    for line in (LIVE / "vmstat.txt").read_text().splitlines():
        name, value = line.split()
        out.append((name, int(value)))
    return out


def zeros(n: int) -> list[int]:
    return [0] * n


def order_vec(**blocks: int) -> list[int]:
    """nr_free with blocks at the given orders, e.g. order_vec(o3=1)."""
    v = [0] * NR_PAGE_ORDERS
    for key, n in blocks.items():
        v[int(key[1:])] = n
    return v


nr_free_st = st.lists(
    st.integers(min_value=0, max_value=1 << 40), min_size=NR_PAGE_ORDERS, max_size=NR_PAGE_ORDERS
)
order_st = st.integers(min_value=0, max_value=MAX_PAGE_ORDER)


# --- names and indices --------------------------------------------------------------------------


def test_names_match_live_vmstat_in_order() -> None:
    names = [n for n, _ in fixture_vmstat()]
    ours = [
        *ZONE_STAT_ITEMS,
        *NUMA_STAT_ITEMS,
        *NODE_STAT_ITEMS,
        *VM_STAT_ITEMS,
        *VM_EVENT_ITEMS,
        *(n for n, _ in VMSTAT_DEPRECATED_ITEMS),
    ]
    assert ours == names


@pytest.mark.parametrize(
    ("names", "enum", "count"),
    [
        ("ZONE_STAT_ITEMS", "ZONE_STAT_ENUM", "NR_VM_ZONE_STAT_ITEMS"),
        ("NUMA_STAT_ITEMS", "NUMA_STAT_ENUM", "NR_VM_NUMA_EVENT_ITEMS"),
        ("NODE_STAT_ITEMS", "NODE_STAT_ENUM", "NR_VM_NODE_STAT_ITEMS"),
        ("VM_STAT_ITEMS", "VM_STAT_ENUM", "NR_VM_STAT_ITEMS"),
        ("VM_EVENT_ITEMS", "VM_EVENT_ENUM", "NR_VM_EVENT_ITEMS"),
    ],
)
def test_enum_constants_index_their_names(names: str, enum: str, count: str) -> None:
    texts = getattr(vmstat, names)
    enums = getattr(vmstat, enum)
    assert len(texts) == len(enums) == getattr(vmstat, count)
    assert len(set(enums)) == len(enums)
    for i, e in enumerate(enums):
        assert getattr(vmstat, e) == i, e


@pytest.mark.parametrize(
    ("constant", "table", "text"),
    [
        ("NR_FREE_PAGES", "ZONE_STAT_ITEMS", "nr_free_pages"),
        ("NR_FREE_PAGES_BLOCKS", "ZONE_STAT_ITEMS", "nr_free_pages_blocks"),
        ("NR_FREE_CMA_PAGES", "ZONE_STAT_ITEMS", "nr_free_cma"),
        ("NR_ZSPAGES", "ZONE_STAT_ITEMS", "nr_zspages"),
        ("NR_ZONE_INACTIVE_ANON", "ZONE_STAT_ITEMS", "nr_zone_inactive_anon"),
        ("NR_ZONE_UNEVICTABLE", "ZONE_STAT_ITEMS", "nr_zone_unevictable"),
        ("NR_ZONE_WRITE_PENDING", "ZONE_STAT_ITEMS", "nr_zone_write_pending"),
        ("NUMA_INTERLEAVE_HIT", "NUMA_STAT_ITEMS", "numa_interleave"),
        ("NR_ISOLATED_ANON", "NODE_STAT_ITEMS", "nr_isolated_anon"),
        ("NR_ISOLATED_FILE", "NODE_STAT_ITEMS", "nr_isolated_file"),
        ("NR_ANON_MAPPED", "NODE_STAT_ITEMS", "nr_anon_pages"),
        ("NR_FILE_MAPPED", "NODE_STAT_ITEMS", "nr_mapped"),
        ("NR_BALLOON_PAGES", "NODE_STAT_ITEMS", "nr_balloon_pages"),
        ("NR_DIRTY_BG_THRESHOLD", "VM_STAT_ITEMS", "nr_dirty_background_threshold"),
        ("PSWPIN", "VM_EVENT_ITEMS", "pswpin"),
        ("PSWPOUT", "VM_EVENT_ITEMS", "pswpout"),
        ("PGALLOC_DMA", "VM_EVENT_ITEMS", "pgalloc_dma"),
        ("PGALLOC_MOVABLE", "VM_EVENT_ITEMS", "pgalloc_movable"),
        ("ALLOCSTALL_NORMAL", "VM_EVENT_ITEMS", "allocstall_normal"),
        ("PGSCAN_SKIP_DMA32", "VM_EVENT_ITEMS", "pgskip_dma32"),
        ("PGFREE", "VM_EVENT_ITEMS", "pgfree"),
        ("PGSCAN_KSWAPD", "VM_EVENT_ITEMS", "pgscan_kswapd"),
        ("PGSTEAL_DIRECT", "VM_EVENT_ITEMS", "pgsteal_direct"),
        ("PGMIGRATE_SUCCESS", "VM_EVENT_ITEMS", "pgmigrate_success"),
        ("PGMIGRATE_FAIL", "VM_EVENT_ITEMS", "pgmigrate_fail"),
        ("COMPACTMIGRATE_SCANNED", "VM_EVENT_ITEMS", "compact_migrate_scanned"),
        ("COMPACTFREE_SCANNED", "VM_EVENT_ITEMS", "compact_free_scanned"),
        ("COMPACTISOLATED", "VM_EVENT_ITEMS", "compact_isolated"),
        ("COMPACTSTALL", "VM_EVENT_ITEMS", "compact_stall"),
        ("COMPACTFAIL", "VM_EVENT_ITEMS", "compact_fail"),
        ("COMPACTSUCCESS", "VM_EVENT_ITEMS", "compact_success"),
        ("KCOMPACTD_WAKE", "VM_EVENT_ITEMS", "compact_daemon_wake"),
        ("KCOMPACTD_MIGRATE_SCANNED", "VM_EVENT_ITEMS", "compact_daemon_migrate_scanned"),
        ("KCOMPACTD_FREE_SCANNED", "VM_EVENT_ITEMS", "compact_daemon_free_scanned"),
        ("BALLOON_INFLATE", "VM_EVENT_ITEMS", "balloon_inflate"),
        ("BALLOON_DEFLATE", "VM_EVENT_ITEMS", "balloon_deflate"),
        ("BALLOON_MIGRATE", "VM_EVENT_ITEMS", "balloon_migrate"),
        ("NUMA_PAGE_MIGRATE", "VM_EVENT_ITEMS", "numa_pages_migrated"),
        ("THP_SCAN_EXCEED_SHARED_PTE", "VM_EVENT_ITEMS", "thp_scan_exceed_share_pte"),
    ],
)
def test_named_constants(constant: str, table: str, text: str) -> None:
    assert getattr(vmstat, table)[getattr(vmstat, constant)] == text


def test_per_zone_events_follow_zone_index() -> None:
    assert [VM_EVENT_ITEMS[vmstat.PGALLOC_DMA + zid] for zid in range(5)] == [
        "pgalloc_dma",
        "pgalloc_dma32",
        "pgalloc_normal",
        "pgalloc_movable",
        "pgalloc_device",
    ]
    assert vmstat.ALLOCSTALL_DMA == vmstat.PGALLOC_DMA + 5


def test_enum_aliases() -> None:
    assert vmstat.NR_ZONE_LRU_BASE == vmstat.NR_ZONE_INACTIVE_ANON
    assert vmstat.NR_LRU_BASE == vmstat.NR_INACTIVE_ANON == 0
    lru = ["inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable"]
    assert [ZONE_STAT_ITEMS[vmstat.NR_ZONE_LRU_BASE + i] for i in range(5)] == [
        f"nr_zone_{n}" for n in lru
    ]
    assert [NODE_STAT_ITEMS[vmstat.NR_LRU_BASE + i] for i in range(5)] == [f"nr_{n}" for n in lru]


def test_geometry_agrees_with_mmzone() -> None:
    mmzone = pytest.importorskip("pagelab.mm.mmzone")
    assert mmzone.MAX_PAGE_ORDER == MAX_PAGE_ORDER
    assert mmzone.NR_PAGE_ORDERS == NR_PAGE_ORDERS
    assert COMPACTION_HPAGE_ORDER == mmzone.pageblock_order == 9


def test_print_in_thp_items() -> None:
    thp = {NODE_STAT_ITEMS[i] for i in range(len(NODE_STAT_ITEMS)) if vmstat_item_print_in_thp(i)}
    assert thp == {
        "nr_anon_transparent_hugepages",
        "nr_file_hugepages",
        "nr_shmem_hugepages",
        "nr_shmem_pmdmapped",
        "nr_file_pmdmapped",
    }


# --- printed values -----------------------------------------------------------------------------


def test_vmstat_show_items_reproduces_live_file() -> None:
    """Feed the kernel's internal units back in (pages for THP items, sectors for pgpgin)."""
    live = dict(fixture_vmstat())
    zone = [live[n] for n in ZONE_STAT_ITEMS]
    numa = [live[n] for n in NUMA_STAT_ITEMS]
    node = [
        live[n] * (HPAGE_PMD_NR if vmstat_item_print_in_thp(i) else 1)
        for i, n in enumerate(NODE_STAT_ITEMS)
    ]
    vm = [live[n] for n in VM_STAT_ITEMS]
    events = [live[n] for n in VM_EVENT_ITEMS]
    events[vmstat.PGPGIN] = events[vmstat.PGPGIN] * 2 + 1  # odd sector counts round down
    events[vmstat.PGPGOUT] *= 2
    assert list(vmstat_show_items(zone, numa, node, vm, events)) == fixture_vmstat()


def test_vmstat_show_items_clamps_and_divides() -> None:
    zone = zeros(vmstat.NR_VM_ZONE_STAT_ITEMS)
    zone[vmstat.NR_ZONE_WRITE_PENDING] = -3  # per-cpu drift reads as 0
    node = zeros(vmstat.NR_VM_NODE_STAT_ITEMS)
    node[vmstat.NR_ANON_THPS] = 3 * HPAGE_PMD_NR + 7
    node[vmstat.NR_WRITEBACK] = -1
    out = dict(vmstat_show_items(zone, None, node, zeros(4), zeros(vmstat.NR_VM_EVENT_ITEMS)))
    assert out["nr_zone_write_pending"] == 0
    assert out["nr_writeback"] == 0
    assert out["nr_anon_transparent_hugepages"] == 3
    assert out["numa_hit"] == 0
    assert list(out)[-1] == "nr_unstable"


def test_vmstat_show_items_sums_per_zone_and_per_node_rows() -> None:
    nz, nn = vmstat.NR_VM_ZONE_STAT_ITEMS, vmstat.NR_VM_NODE_STAT_ITEMS
    zones = [[1] * nz, [2] * nz, np.full(nz, 3)]
    zones[0][vmstat.NR_ZONE_WRITE_PENDING] = -10  # the sum (-10 + 2 + 3) reads as 0
    numa = [[1] * 6, [1] * 6, [0] * 6]
    nodes = [[5] * nn, [6] * nn]
    out = dict(vmstat_show_items(zones, numa, nodes, (70, 35), zeros(vmstat.NR_VM_EVENT_ITEMS)))
    assert out["nr_free_pages"] == 6
    assert out["nr_zone_write_pending"] == 0
    assert out["numa_hit"] == 2
    assert out["nr_isolated_anon"] == 11
    assert out["nr_anon_transparent_hugepages"] == 11 // HPAGE_PMD_NR
    assert (out["nr_dirty_threshold"], out["nr_dirty_background_threshold"]) == (70, 35)
    assert (out["nr_memmap_pages"], out["nr_memmap_boot_pages"]) == (0, 0)
    with pytest.raises(InvalidArgument, match=r"zone_stat\[1\] has 3 entries"):
        vmstat_show_items([[0] * nz, [0] * 3], None, nodes, (0, 0), zeros(vmstat.NR_VM_EVENT_ITEMS))
    with pytest.raises(InvalidArgument, match="vm_stat has 3 entries; pass the 2 dirty thresholds"):
        vmstat_show_items(zones, None, nodes, (0, 0, 0), zeros(vmstat.NR_VM_EVENT_ITEMS))


def test_vmstat_show_items_rejects_bad_arrays() -> None:
    events = zeros(vmstat.NR_VM_EVENT_ITEMS)
    with pytest.raises(InvalidArgument, match="zone_stat has 3 entries"):
        vmstat_show_items([0, 0, 0], None, zeros(vmstat.NR_VM_NODE_STAT_ITEMS), zeros(4), events)
    events[vmstat.PGFREE] = -1
    with pytest.raises(InvalidArgument, match=r"vm_events\[\d+\] is -1"):
        vmstat_show_items(
            zeros(vmstat.NR_VM_ZONE_STAT_ITEMS),
            None,
            zeros(vmstat.NR_VM_NODE_STAT_ITEMS),
            zeros(4),
            events,
        )


def test_zoneinfo_stat_items() -> None:
    zone = list(range(vmstat.NR_VM_ZONE_STAT_ITEMS))
    items = zoneinfo_zone_stat_items(zone, [1, 2, 3, 4, 5, 6])
    assert [n for n, _ in items] == [*ZONE_STAT_ITEMS, *NUMA_STAT_ITEMS]
    assert [v for _, v in items] == [*zone, 1, 2, 3, 4, 5, 6]
    node = zoneinfo_node_stat_items(np.arange(vmstat.NR_VM_NODE_STAT_ITEMS) * HPAGE_PMD_NR)
    assert dict(node)["nr_file_hugepages"] == vmstat.NR_FILE_THPS
    assert dict(node)["nr_file_pages"] == vmstat.NR_FILE_PAGES * HPAGE_PMD_NR


# --- fragmentation arithmetic ------------------------------------------------------------------


def test_fill_contig_page_info_dma_row() -> None:
    dma = order_vec(o8=1, o9=1, o10=3)
    assert fill_contig_page_info(dma, 9) == ContigPageInfo(3840, 5, 7)
    assert fill_contig_page_info(dma, 0) == ContigPageInfo(3840, 5, 3840)
    assert fill_contig_page_info(np.array(dma, dtype=np.uint64), 10) == (3840, 5, 3)


def test_fill_contig_page_info_wraps_like_unsigned_long() -> None:
    info = fill_contig_page_info(order_vec(o10=1 << 60), 0)
    assert info.free_pages == ((1 << 60) << 10) & U64 == 0
    assert info.free_blocks_total == 1 << 60


@pytest.mark.parametrize(
    ("nr_free", "order", "expected"),
    [
        (zeros(NR_PAGE_ORDERS), 3, 0),  # nothing free: 0, "lack of memory"
        (order_vec(o8=1, o9=1, o10=3), 10, -1000),  # a suitable block exists
        (order_vec(o3=1), 4, -500),  # one block of order-1: 1000 - 1500
        (order_vec(o0=1000), 10, 999),  # all free memory in single pages
        (order_vec(o0=10, o1=5), 3, 767),  # 1000 - (1000 + 20000/8) / 15
        (order_vec(o0=1), 0, -1000),
        (order_vec(o9=2), 10, 0),  # 1000 - (1000 + 1024000/1024)/2
    ],
)
def test_fragmentation_index_known_values(nr_free: list[int], order: int, expected: int) -> None:
    assert fragmentation_index(nr_free, order) == expected


def test_fragmentation_index_truncates_to_int() -> None:
    info = ContigPageInfo(free_pages=5 * 10**15, free_blocks_total=1, free_blocks_suitable=0)
    expected = ctypes.c_int32((1000 - (1000 + 5 * 10**15 * 1000)) & U64).value
    assert _fragmentation_index_info(0, info) == expected
    assert _fragmentation_index_info(MAX_PAGE_ORDER + 1, info) == 0  # kernel: WARN, return 0


@pytest.mark.parametrize(
    ("nr_free", "order", "expected"),
    [
        (zeros(NR_PAGE_ORDERS), 5, 1000),
        (order_vec(o8=1, o9=1, o10=3), 9, 66),  # (3840 - 7*512) * 1000 / 3840
        (order_vec(o8=1, o9=1, o10=3), 10, 200),
        (order_vec(o8=1, o9=1, o10=3), 8, 0),
        (order_vec(o0=3, o1=1), 1, 600),
    ],
)
def test_unusable_free_index_known_values(nr_free: list[int], order: int, expected: int) -> None:
    assert unusable_free_index(order, fill_contig_page_info(nr_free, order)) == expected


def test_extfrag_for_order_known_values() -> None:
    assert extfrag_for_order(zeros(NR_PAGE_ORDERS), 9) == 0
    assert extfrag_for_order(order_vec(o8=1, o9=1, o10=3), 9) == 6
    assert extfrag_for_order(order_vec(o0=3, o1=1), 1) == 60
    assert extfrag_for_order(order_vec(o0=7), 0) == 0


def test_fragmentation_scores_of_live_snapshot() -> None:
    """Buddyinfo and zoneinfo of the reference machine (present pages from zoneinfo.txt)."""
    dma = order_vec(o8=1, o9=1, o10=3)
    dma32 = [2, 3, 0, 2, 3, 2, 1, 4, 4, 2, 752]
    normal = [624, 392, 835, 405, 184, 83, 71, 11, 5, 5, 31]
    present = {"DMA": 3998, "DMA32": 782336, "Normal": 5505024}
    node_present = sum(present.values())
    assert fragmentation_score_zone(dma) == 6
    assert fragmentation_score_zone(dma32) == 0
    assert fragmentation_score_zone(normal) == 37  # (55124 - 67*512) * 100 / 55124
    assert fragmentation_score_zone_weighted(normal, present["Normal"], node_present) == 32
    assert fragmentation_score_zone_weighted(dma, present["DMA"], node_present) == 0
    zones = [(dma, 3998), (dma32, 782336), (normal, 5505024), (zeros(11), 0), (zeros(11), 0)]
    assert fragmentation_score_node(zones) == 32
    # The divisor is node_present_pages + 1, so even a zone that is the whole node scores below
    # its unweighted score: 5505024 * 37 / 5505025 = 36.99...
    assert fragmentation_score_node(zones, node_present_pages=present["Normal"]) == 36


def test_fragmentation_score_zone_weighted_formula() -> None:
    nr_free = order_vec(o0=1)  # score 100
    assert fragmentation_score_zone(nr_free) == 100
    assert fragmentation_score_zone_weighted(nr_free, 1000, 1999) == 50
    assert fragmentation_score_zone_weighted(nr_free, 1000, 1000) == 99
    with pytest.raises(InvalidArgument, match="present page counts"):
        fragmentation_score_zone_weighted(nr_free, -1, 10)


@pytest.mark.parametrize(
    ("proactiveness", "low", "high"),
    [(20, 80, 90), (0, 100, 100), (100, 5, 15), (95, 5, 15), (91, 9, 19), (50, 50, 60)],
)
def test_fragmentation_score_wmark(proactiveness: int, low: int, high: int) -> None:
    assert fragmentation_score_wmark(True, proactiveness) == low
    assert fragmentation_score_wmark(False, proactiveness) == high


def test_fragmentation_score_wmark_default_and_range() -> None:
    assert fragmentation_score_wmark(True) == 80
    assert fragmentation_score_wmark(False) == 90
    with pytest.raises(InvalidArgument, match=r"0\.\.100"):
        fragmentation_score_wmark(True, 101)


@pytest.mark.parametrize("order", [-1, MAX_PAGE_ORDER + 1])
def test_bad_order_is_rejected(order: int) -> None:
    with pytest.raises(InvalidArgument, match=r"outside 0\.\.10"):
        fragmentation_index(zeros(NR_PAGE_ORDERS), order)
    with pytest.raises(InvalidArgument, match=r"outside 0\.\.10"):
        extfrag_for_order(zeros(NR_PAGE_ORDERS), order)


def test_bad_nr_free_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="nr_free has 10 entries"):
        fill_contig_page_info(zeros(10), 0)
    with pytest.raises(InvalidArgument, match="cannot be negative"):
        fill_contig_page_info(order_vec(o2=-1), 0)


# --- properties ---------------------------------------------------------------------------------


@given(nr_free_st, order_st)
def test_fragmentation_index_range(nr_free: list[int], order: int) -> None:
    index = fragmentation_index(nr_free, order)
    suitable = any(nr_free[k] for k in range(order, NR_PAGE_ORDERS))
    if suitable:
        assert index == -1000
    elif not any(nr_free):
        assert index == 0
    else:
        assert -1000 < index < 1000


@given(nr_free_st, order_st)
def test_extfrag_is_unusable_in_percent(nr_free: list[int], order: int) -> None:
    info = fill_contig_page_info(nr_free, order)
    unusable = unusable_free_index(order, info)
    assert 0 <= unusable <= 1000
    if info.free_pages:
        assert extfrag_for_order(nr_free, order) == unusable // 10
    else:
        assert extfrag_for_order(nr_free, order) == 0


@given(nr_free_st)
def test_unusable_index_grows_with_order(nr_free: list[int]) -> None:
    values = [unusable_free_index(o, fill_contig_page_info(nr_free, o)) for o in range(11)]
    assert values == sorted(values)
    assert values[0] == (0 if any(nr_free) else 1000)


@given(st.lists(st.tuples(nr_free_st, st.integers(0, 1 << 30)), min_size=1, max_size=5))
def test_node_score_bounded(zones: list[tuple[list[int], int]]) -> None:
    score = fragmentation_score_node(zones)
    assert 0 <= score <= 100
