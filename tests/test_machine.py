"""Tests for pagelab.machine: boot against the live 24 GiB machine, the public allocation API,
configuration errors, NUMA fallback, bad_page and check_state."""

from __future__ import annotations

import re
from math import isqrt
from pathlib import Path

import numpy as np
import pytest

from pagelab import KernelProfile, Machine
from pagelab.errors import (
    BadConfiguration,
    InvalidArgument,
    ModelBug,
    PagelabError,
    StateCheckFailed,
)
from pagelab.mm import page_alloc as pa
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.debug import free_blocks
from pagelab.mm.mm_init import MemoryRange
from pagelab.mm.mmzone import (
    MIGRATE_MOVABLE,
    WMARK_MIN,
    WMARK_PROMO,
    ZoneType,
)

LIVE = Path(__file__).resolve().parent / "fixtures" / "live"
DMA, DMA32, NORMAL, MOVABLE, DEVICE = (int(z) for z in ZoneType)


def parse_live_zoneinfo() -> dict[str, dict[str, object]]:
    """Read the fields this file needs from the live /proc/zoneinfo (first CPU's pageset)."""
    zones: dict[str, dict[str, object]] = {}
    cur: dict[str, object] = {}
    for line in (LIVE / "zoneinfo.txt").read_text().splitlines():
        if m := re.match(r"Node (\d+), zone\s+(\w+)", line):
            cur = zones.setdefault(m.group(2), {})
        elif m := re.match(r"\s+(min|low|high|promo|spanned|present|managed)\s+(\d+)$", line):
            cur[m.group(1)] = int(m.group(2))
        elif m := re.match(r"\s+protection: \(([\d, ]+)\)", line):
            cur["protection"] = [int(x) for x in m.group(1).split(",")]
        elif m := re.match(r"\s+(batch|high_min|high_max):\s+(\d+)", line):
            cur.setdefault(m.group(1), int(m.group(2)))
        elif m := re.match(r"\s+start_pfn:\s+(\d+)", line):
            cur["start_pfn"] = int(m.group(1))
    return zones


LIVE_ZONES = parse_live_zoneinfo()


# --- kernel formulas, written out independently of the model ---------------------------------------


def kernel_wmarks(managed: list[int], min_free_kbytes: int, scale: int = 10) -> list[list[int]]:
    """``__setup_per_zone_wmarks`` for one node's zones (index = zone_idx)."""
    pages_min = min_free_kbytes >> 2
    # !is_highmem && != ZONE_MOVABLE (ZONE_DEVICE counts, with 0 managed pages).
    lowmem = sum(n for idx, n in enumerate(managed) if idx != MOVABLE)
    out = []
    for idx, n in enumerate(managed):
        tmp = pages_min * n // lowmem
        wmin = min(max(n // 1024, 32), 128) if idx == MOVABLE else tmp
        gap = max(tmp >> 2, n * scale // 10000)
        out.append([wmin, wmin + gap, wmin + 2 * gap, wmin + 3 * gap])
    return out


def kernel_lowmem_reserve(managed: list[int], ratios=(256, 256, 32, 0, 0)) -> list[list[int]]:
    """``setup_per_zone_lowmem_reserve`` for one node's zones."""
    out = []
    for i in range(len(managed)):
        row = [0] * len(managed)
        if i < len(managed) - 1 and ratios[i] and managed[i]:
            for j in range(i + 1, len(managed)):
                row[j] = sum(managed[i + 1: j + 1]) // ratios[i]
        out.append(row)
    return out


def kernel_batch(managed: int) -> int:
    """``zone_batchsize`` (and the max(1, ...) of zone_set_pageset_high_and_batch)."""
    batch = min(managed >> 10, (1 << 20) >> 12) // 4
    batch = max(batch, 1)
    batch = (1 << ((batch + batch // 2).bit_length() - 1)) - 1
    return max(batch, 1)


def kernel_min_free_kbytes(zone_managed: list[int]) -> int:
    """calculate_min_free_kbytes, then khugepaged's set_recommended_min_free_kbytes.

    Both read lowmem through nr_free_buffer_pages(): managed pages of the zones up to Normal,
    minus their high watermark, which is 0 at the first call and the one set from the
    int_sqrt value when khugepaged starts (its 5 % cap).
    """
    lowmem = zone_managed[:3]
    calc = min(max(isqrt(sum(lowmem) * 4 * 16), 128), 262144)
    wmarks = kernel_wmarks(zone_managed, calc)
    nr_free_buffer_pages = sum(max(n - wmarks[i][2], 0) for i, n in enumerate(lowmem))
    nr_zones = sum(1 for n in lowmem if n)
    recommended = 512 * nr_zones * 2 + 512 * nr_zones * 3 * 3
    recommended = min(recommended, nr_free_buffer_pages // 20) * 4
    return max(calc, recommended)


def managed(m: Machine, nid: int = 0) -> list[int]:
    return [z.managed_pages for z in m.nodes[nid].node_zones]


def total_free(m: Machine) -> int:
    """Free pages in the buddy (NR_FREE_PAGES) plus those cached on pcp lists."""
    buddy = sum(z.vm_stat[vs.NR_FREE_PAGES] for z in m.zones)
    pcp = sum(p.count for z in m.zones for p in z.per_cpu_pageset)
    return buddy + pcp


# --- the 24 GiB machine against the live one -------------------------------------------------------


@pytest.fixture(scope="module")
def m24() -> Machine:
    return Machine.build(memory="24G")


def test_24g_zone_spans_and_present_match_live(m24: Machine) -> None:
    for zone in m24.populated_zones():
        live = LIVE_ZONES[zone.name]
        assert zone.zone_start_pfn == live["start_pfn"]
        assert zone.spanned_pages == live["spanned"]
        assert zone.present_pages == live["present"]
    assert [z.name for z in m24.populated_zones()] == ["DMA", "DMA32", "Normal"]
    assert m24.nodes[0].node_present_pages == 3998 + 782336 + 5505024


def test_24g_managed_pages(m24: Machine) -> None:
    dma, dma32, normal = m24.populated_zones()
    # The low 1 MiB is reserved (x86 since v5.13): DMA keeps 4096 - 256 pages, as live.
    assert dma.managed_pages == LIVE_ZONES["DMA"]["managed"] == 3840
    # Model difference: the kernel image and early allocations are one 37 MiB block at
    # 16 MiB; the live machine reserved 9528 DMA32 pages, the model 9472.
    assert dma32.managed_pages == dma32.present_pages - (37 << 20 >> 12) == 772864
    assert abs(dma32.managed_pages - LIVE_ZONES["DMA32"]["managed"]) < 100
    # Model difference: the live Normal zone has only 196608 of its 5505024 present pages
    # managed (the rest is present but not onlined to the buddy on this VM); the model hands
    # all of it over except the struct page array (64 bytes per present page, top-down).
    memmap_pages = -(-m24.nodes[0].node_present_pages * 64 // 4096)
    assert normal.managed_pages == normal.present_pages - memmap_pages
    assert LIVE_ZONES["Normal"]["managed"] == 196608
    # Everything managed starts free, nothing on the pcp lists.
    for zone in (dma, dma32, normal):
        assert zone.vm_stat[vs.NR_FREE_PAGES] == zone.managed_pages
    assert total_free(m24) == sum(z.managed_pages for z in m24.zones)


def test_24g_min_free_kbytes_is_thps_recommendation(m24: Machine) -> None:
    # int_sqrt(lowmem_kbytes * 16) is ~19893 here; khugepaged raises it to
    # pageblock_nr_pages * 3 zones * (2 + MIGRATE_PCPTYPES^2) pages = 67584 kB, as live
    # (live min watermarks: 66 + 13416 + 3413 = 16895 pages, 67584 kB less rounding).
    assert m24.min_free_kbytes == 67584
    assert m24.min_free_kbytes == kernel_min_free_kbytes(managed(m24))
    live_min_sum = sum(LIVE_ZONES[n]["min"] for n in ("DMA", "DMA32", "Normal"))
    assert 0 <= m24.min_free_kbytes // 4 - live_min_sum < 3


@pytest.mark.parametrize("memory", ["64M", "256M", "1G", "8G"])
def test_min_free_kbytes_follows_the_kernel(memory: str) -> None:
    m = Machine.build(memory=memory)
    assert m.min_free_kbytes == kernel_min_free_kbytes(managed(m))


def test_24g_pcp_batch_matches_live(m24: Machine) -> None:
    for zone in m24.populated_zones():
        for pcp in zone.per_cpu_pageset:
            assert pcp.batch == LIVE_ZONES[zone.name]["batch"]
    assert [z.per_cpu_pageset[0].batch for z in m24.populated_zones()] == [1, 63, 63]
    # DMA has the live managed count, so its high_max (managed / 8 over 2 CPUs) matches too;
    # high_min follows the low watermark, which depends on the other zones (see below).
    dma = m24.zones[DMA]
    assert dma.per_cpu_pageset[0].high_max == LIVE_ZONES["DMA"]["high_max"] == 240


@pytest.mark.parametrize("zidx", [DMA, DMA32, NORMAL, MOVABLE])
def test_24g_watermarks_follow_the_kernel_formula(m24: Machine, zidx: int) -> None:
    expected = kernel_wmarks(managed(m24), m24.min_free_kbytes)[zidx]
    zone = m24.nodes[0].node_zones[zidx]
    assert zone._watermark == expected
    assert zone.watermark_boost == 0
    assert [zone.min_wmark_pages(), zone.low_wmark_pages(), zone.high_wmark_pages(),
            zone.wmark_pages(WMARK_PROMO)] == expected


def test_24g_movable_zone_watermarks_match_live(m24: Machine) -> None:
    # An empty ZONE_MOVABLE still gets min = clamp(0 / 1024, 32, 128) and no gap.
    movable = m24.zones[MOVABLE]
    live = LIVE_ZONES["Movable"]
    assert movable._watermark == [live["min"], live["low"], live["high"], live["promo"]]


def test_24g_device_zone_watermarks_match_live(m24: Machine) -> None:
    device = m24.zones[DEVICE]
    live = LIVE_ZONES["Device"]
    assert device._watermark == [live["min"], live["low"], live["high"], live["promo"]]


def test_24g_lowmem_reserve_follows_the_kernel_formula(m24: Machine) -> None:
    expected = kernel_lowmem_reserve(managed(m24))
    for zone in m24.nodes[0].node_zones:
        assert zone.lowmem_reserve == expected[zone.idx]
    # DMA protects 1/256 of everything above it.
    dma = m24.zones[DMA]
    assert dma.lowmem_reserve[DMA32] == m24.zones[DMA32].managed_pages // 256
    assert m24.zones[NORMAL].lowmem_reserve == [0, 0, 0, 0, 0]


def test_24g_pcp_high_follows_the_kernel_formula(m24: Machine) -> None:
    for zone in m24.populated_zones():
        batch = kernel_batch(zone.managed_pages)
        cpus = len(m24.node_cpus[zone.node])
        for pcp in zone.per_cpu_pageset:
            assert pcp.batch == batch
            assert pcp.high_min == max(zone.low_wmark_pages() // cpus, batch << 2)
            assert pcp.high_max == max(zone.managed_pages // 8 // cpus, batch << 2)


def test_24g_check_state_after_boot(m24: Machine) -> None:
    m24.check_state()


def test_live_managed_counts_reproduce_live_watermarks_exactly() -> None:
    """Given the live zones' managed pages, the model's setup code prints the live numbers."""
    m = Machine.build(memory="5G")  # DMA, DMA32 and Normal, like the live machine
    for zone in m.nodes[0].node_zones:
        zone.managed_pages = LIVE_ZONES[zone.name]["managed"]
    m.min_free_kbytes = pa.set_recommended_min_free_kbytes(m, pa.calculate_min_free_kbytes(m))
    assert m.min_free_kbytes == 67584 == kernel_min_free_kbytes(managed(m))
    pa.setup_per_zone_wmarks(m)
    pa.setup_per_zone_lowmem_reserve(m)
    for name in ("DMA", "DMA32", "Normal", "Movable"):
        zone = m.zones[[z.name for z in m.zones].index(name)]
        live = LIVE_ZONES[name]
        assert zone._watermark == [live["min"], live["low"], live["high"], live["promo"]], name
        assert zone.lowmem_reserve == live["protection"], name
        if zone.present_pages:
            pcp = zone.per_cpu_pageset[0]
            assert (pcp.batch, pcp.high_min, pcp.high_max) == (
                live["batch"], live["high_min"], live["high_max"]), name


# --- allocation round trips -----------------------------------------------------------------------

GFPS = ["GFP_KERNEL", "GFP_HIGHUSER_MOVABLE", "GFP_KERNEL|__GFP_RECLAIMABLE", "GFP_ATOMIC",
        "GFP_KERNEL|__GFP_COMP", "GFP_TRANSHUGE_LIGHT", "GFP_NOWAIT", "GFP_KERNEL|GFP_DMA"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_alloc_free_round_trip_returns_all_memory(seed: int) -> None:
    m = Machine.build(memory="256M")
    booted = sorted((zi, order, pfn) for zi, order, _, pfn in free_blocks(m))
    boot_free = total_free(m)
    rng = np.random.default_rng(seed)
    held: list[tuple[int, int]] = []
    for _ in range(600):
        order = int(rng.choice([0, 0, 0, 1, 2, 3, 4, 9, 10]))
        gfp = GFPS[int(rng.integers(len(GFPS)))]
        pfn = m.alloc_pages(order, gfp)
        if pfn is not None:
            held.append((pfn, order))
            assert m.mem.refcount[pfn] == 1
            assert m.mem.token[pfn] != 0
        if held and rng.random() < 0.3:  # interleave some frees
            pfn, order = held.pop(int(rng.integers(len(held))))
            m.free_pages(pfn, order)
    m.check_state()
    assert m.allocations() == dict(held)
    in_use = sum(1 << order for _, order in held)
    assert total_free(m) + in_use == boot_free
    for i in rng.permutation(len(held)):
        m.free_pages(*held[i])
    assert m.allocations() == {}
    m.drain_all_pages()
    m.check_state()
    assert total_free(m) == boot_free
    assert all(p.count == 0 for z in m.zones for p in z.per_cpu_pageset)
    # Every buddy merged back: the same blocks as at boot (their pageblock types may differ
    # where unmovable allocations claimed blocks).
    assert sorted((zi, order, pfn) for zi, order, _, pfn in free_blocks(m)) == booted


def test_movable_round_trip_restores_the_boot_free_lists_exactly() -> None:
    m = Machine.build(memory="256M")
    booted = sorted(free_blocks(m))
    held = []
    for order in [0] * 200 + [3] * 50 + [9] * 10:
        pfn = m.alloc_pages(order, "GFP_HIGHUSER_MOVABLE")
        assert pfn is not None
        assert m.mem.alloc_mt[pfn] == MIGRATE_MOVABLE
        held.append((pfn, order))
    for pfn, order in reversed(held):
        m.free_pages(pfn, order)
    m.drain_all_pages()
    # Movable requests never leave MOVABLE pageblocks: even the migratetypes come back.
    assert sorted(free_blocks(m)) == booted
    m.check_state()


def test_allocation_fails_with_none_when_memory_is_exhausted() -> None:
    m = Machine.build(memory="64M")
    boot_free = total_free(m)
    assert boot_free == sum(z.managed_pages for z in m.zones)
    got = []
    while (pfn := m.alloc_pages(0, "GFP_KERNEL")) is not None:
        got.append(pfn)
        assert len(got) <= boot_free
    assert len(set(got)) == len(got)
    m.check_state()
    assert len(got) + total_free(m) == boot_free
    assert sum(m.vmstat[f"pgalloc_{n}"] for n in ("dma", "dma32", "normal")) == len(got)
    # GFP_KERNEL fails only after direct "reclaim" drained every pcp, with each zone at its
    # min watermark (plus any boost) and the lowmem reserve it keeps for Normal requests.
    assert all(p.count == 0 for z in m.zones for p in z.per_cpu_pageset)
    for zone in m.populated_zones():
        assert zone.vm_stat[vs.NR_FREE_PAGES] <= (
            zone.min_wmark_pages() + zone.lowmem_reserve[NORMAL])
    # GFP_ATOMIC may still dip below min (__GFP_HIGH: min/2, non-blocking: a further 1/4).
    atomic = []
    while (pfn := m.alloc_pages(0, "GFP_ATOMIC")) is not None:
        atomic.append(pfn)
    assert atomic
    for zone in m.populated_zones():
        wmin = zone._watermark[WMARK_MIN]
        wmin -= wmin // 2
        wmin -= wmin // 4
        assert zone.vm_stat[vs.NR_FREE_PAGES] <= wmin + zone.lowmem_reserve[NORMAL]
    m.check_state()
    assert len(got) + len(atomic) + total_free(m) == boot_free
    for pfn in got + atomic:
        m.free_pages(pfn, 0)
    m.drain_all_pages()
    assert total_free(m) == boot_free
    m.check_state()


def test_high_order_failure_returns_none_and_changes_nothing() -> None:
    m = Machine.build(memory="64M")
    # Take every order-10 block, then ask for one more.
    blocks = []
    while (pfn := m.alloc_pages(10, "GFP_KERNEL")) is not None:
        blocks.append(pfn)
    before = sorted(free_blocks(m))
    assert m.alloc_pages(10, "GFP_KERNEL") is None
    assert sorted(free_blocks(m)) == before
    m.check_state()


# --- argument errors ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def m64() -> Machine:
    return Machine.build(memory="64M")


@pytest.mark.parametrize("order", [11, 12, -1, -10])
def test_bad_orders_raise(m64: Machine, order: int) -> None:
    with pytest.raises(InvalidArgument, match=rf"order {order} is outside 0\.\.10"):
        m64.alloc_pages(order)


def test_bad_gfp_through_alloc_pages(m64: Machine) -> None:
    with pytest.raises(InvalidArgument, match="GFP_KERNAL"):
        m64.alloc_pages(0, "GFP_KERNAL")
    with pytest.raises(InvalidArgument, match="GFP_ZONE_BAD"):
        m64.alloc_pages(0, "__GFP_DMA|__GFP_DMA32")


def test_alloc_on_a_missing_node_raises(m64: Machine) -> None:
    with pytest.raises(InvalidArgument, match=r"node 3 does not exist; this machine has nodes 0\.\.0"):
        m64.alloc_pages(0, "GFP_KERNEL", nid=3)


def test_free_errors(m64: Machine) -> None:
    m = m64
    pfn = m.alloc_pages(2, "GFP_KERNEL")
    assert pfn is not None
    with pytest.raises(InvalidArgument, match="not the start of a block allocated"):
        m.free_pages(pfn + 1, 0)
    with pytest.raises(InvalidArgument, match="allocated with order 2, not 3"):
        m.free_pages(pfn, 3)
    # A failed free changes nothing: the block is still allocated and frees correctly.
    assert m.allocations()[pfn] == 2
    m.check_state()
    m.free_pages(pfn, 2)
    with pytest.raises(InvalidArgument, match="not the start of a block"):
        m.free_pages(pfn, 2)  # double free
    m.check_state()


@pytest.mark.parametrize("pfn", [-1, 16384, 1 << 40])
def test_page_out_of_range(m64: Machine, pfn: int) -> None:
    assert m64.max_pfn == 16384
    with pytest.raises(InvalidArgument, match="outside this machine"):
        m64.page(pfn)


def test_page_in_range(m64: Machine) -> None:
    # A hole inside a zone's span (the legacy VGA/BIOS hole) is initialised and reserved
    # (init_unavailable_range); so is the low 1 MiB reserved by memblock.
    hole = m64.page(0xA0)
    assert hole.decoded_flags == "PG_reserved"
    assert hole.zone == "DMA"
    assert m64.page(0x9E).decoded_flags == "PG_reserved"
    assert m64.page(m64.max_pfn - 1).pfn == m64.max_pfn - 1


# --- configuration errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "advice"),
    [
        ({"memory": 0}, BadConfiguration, "give at least 32M"),
        ({"memory": "0"}, BadConfiguration, "give at least 32M"),
        ({"memory": "-1G"}, InvalidArgument, "write a number with an optional unit"),
        ({"memory": "garbage"}, InvalidArgument, "'24G'"),
        ({"memory": 1.5}, InvalidArgument, "'24G'"),
        ({"memory": "1M"}, BadConfiguration, "give at least 32M"),
        ({"memory": "1G", "nodes": 0}, BadConfiguration, "give between 1 and 64 NUMA nodes"),
        ({"memory": "1G", "nodes": 100}, BadConfiguration, "give between 1 and 64 NUMA nodes"),
        ({"memory": "256M", "nodes": 4}, BadConfiguration, "use fewer nodes or more memory"),
        ({"memory": "1G", "cpus": 0}, InvalidArgument, "give between 1 and 1024 CPUs"),
        ({"memory": "1G", "movable": "2G"}, BadConfiguration, "ask for less movable memory"),
        ({"memory": "1G", "movable": "lots"}, InvalidArgument, "'24G'"),
        ({"ranges": []}, BadConfiguration, "no RAM ranges"),
        ({"ranges": [MemoryRange(0, 0x100, 0x8000), MemoryRange(0, 0x4000, 0x9000)]},
         BadConfiguration, "give disjoint ranges"),
        ({"ranges": [MemoryRange(0, 0x8000, 0x100)]}, BadConfiguration, "give start < end"),
        ({"ranges": [MemoryRange(0, 0x100, 0x8000), MemoryRange(2, 0x8000, 0x10000)]},
         BadConfiguration, "number nodes from 0 upwards"),
        ({"ranges": [MemoryRange(0, 0x100, 0x101)]}, BadConfiguration, "give more memory"),
        ({"memory": "1G", "profile": "v9.9"}, InvalidArgument, "mainline, v4.8, pre-4.8"),
    ],
)
def test_build_errors_say_what_to_do(kwargs: dict, error: type, advice: str) -> None:
    with pytest.raises(error) as exc:
        Machine.build(**kwargs)
    assert isinstance(exc.value, PagelabError)
    assert advice in str(exc.value)


def test_custom_ranges_boot() -> None:
    m = Machine.build(ranges=[MemoryRange(0, 0x100, 0x9000)], kernel_reserved=0)
    assert [z.name for z in m.populated_zones()] == ["DMA", "DMA32"]
    m.check_state()


# --- profiles ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "non_lru_movable", "pcp_high_order"),
    [("mainline", "6.16", True, True), ("v4.8", "4.8", True, False),
     ("pre-4.8", "4.7", False, False)],
)
def test_profiles_by_name(name: str, version: str, non_lru_movable: bool,
                          pcp_high_order: bool) -> None:
    m = Machine.build(memory="64M", profile=name)
    assert m.profile.name == name
    assert m.profile.kernel_version == version
    assert m.profile.non_lru_movable is non_lru_movable
    # v4.8 cached only order-0 pages on the pcp lists; v5.13+ also orders 1-3 and THP.
    assert m.pcp_orders[0]
    assert m.pcp_orders[3] is pcp_high_order
    assert m.pcp_orders[9] is pcp_high_order
    assert not m.pcp_orders[4]
    assert f"profile={name!r}" in repr(m)


def test_profile_object_and_cpus() -> None:
    m = Machine.build(memory="64M", profile=KernelProfile(name="custom", nr_cpus=3))
    assert m.profile.name == "custom" and m.nr_cpus == 3
    m = Machine.build(memory="64M", profile="v4.8", cpus=4)
    assert m.profile.name == "v4.8" and m.nr_cpus == 4
    assert len(m.zones[DMA32].per_cpu_pageset) == 4


def test_unknown_profile_message_lists_names() -> None:
    with pytest.raises(InvalidArgument) as exc:
        Machine.build(memory="64M", profile="linux-2.6")
    assert "'linux-2.6'" in str(exc.value)
    assert "mainline, v4.8, pre-4.8" in str(exc.value)


# --- NUMA ----------------------------------------------------------------------------------------------------


def node_of(m: Machine, pfn: int) -> int:
    return m.page_zone(pfn).node


def test_two_nodes_layout() -> None:
    m = Machine.build(memory="512M", nodes=2)
    assert len(m.nodes) == 2
    assert m.nodes[1].node_start_pfn == 1 << 16  # on a 128 MiB section boundary
    assert [z.name for z in m.populated_zones()] == ["DMA", "DMA32", "DMA32"]
    assert m.node_cpus == [[0], [1]]
    m.check_state()


@pytest.mark.parametrize("cpu", [0, 1])
def test_local_node_first_then_spill_to_the_other(cpu: int) -> None:
    m = Machine.build(memory="512M", nodes=2)
    m.cpu = cpu
    local = m.cpu_node
    assert local == cpu
    remote = 1 - local
    local_zone = m.nodes[local].node_zones[DMA32]
    got = []
    while True:
        pfn = m.alloc_pages(0, "GFP_KERNEL")
        assert pfn is not None
        got.append(pfn)
        if node_of(m, pfn) != local:
            break
        assert len(got) < 1 << 17
    # Everything before the first remote page came from the local node, and the local zone
    # was then at its low watermark (the fast path's) plus its reserve for Normal requests.
    assert all(node_of(m, pfn) == local for pfn in got[:-1])
    assert node_of(m, got[-1]) == remote
    assert len(got) > 10000
    assert local_zone.vm_stat[vs.NR_FREE_PAGES] <= (
        local_zone.low_wmark_pages() + local_zone.lowmem_reserve[NORMAL])
    # zone_statistics: a remote page is a NUMA miss there and foreign for the preferred zone.
    remote_zone = m.page_zone(got[-1])
    assert remote_zone.vm_numa_event[vs.NUMA_MISS] >= 1
    assert remote_zone.vm_numa_event[vs.NUMA_OTHER] >= 1
    assert sum(z.vm_numa_event[vs.NUMA_FOREIGN] for z in m.nodes[local].node_zones) >= 1
    assert sum(z.vm_numa_event[vs.NUMA_HIT] for z in m.nodes[local].node_zones) == len(got) - 1
    m.check_state()
    for pfn in got:
        m.free_pages(pfn, 0)
    m.drain_all_pages()
    m.check_state()


def test_explicit_nid_overrides_the_cpu() -> None:
    m = Machine.build(memory="512M", nodes=2)
    m.cpu = 0
    pfn = m.alloc_pages(0, "GFP_KERNEL", nid=1)
    assert pfn is not None and node_of(m, pfn) == 1
    m.free_pages(pfn, 0)


# --- bad_page ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["PG_lru", "PG_locked", "PG_active", "PG_mlocked", "PG_writeback"])
def test_freeing_a_page_with_a_check_at_free_flag_is_bad_page(flag: str) -> None:
    m = Machine.build(memory="64M")
    pfn = m.alloc_pages(0, "GFP_KERNEL")
    assert pfn is not None
    m.mem.flags[pfn] |= np.uint64(1 << getattr(pf, flag))
    with pytest.raises(ModelBug) as exc:
        m.free_pages(pfn, 0)
    message = str(exc.value)
    assert "bad_page" in message
    assert "PAGE_FLAGS_CHECK_AT_FREE" in message
    assert flag in message  # the dump shows the offending flag
    assert f"pfn:{pfn:#x}" in message


def test_bad_flag_on_a_subpage_of_a_block_is_found() -> None:
    m = Machine.build(memory="64M")
    pfn = m.alloc_pages(2, "GFP_KERNEL")
    assert pfn is not None
    m.mem.flags[pfn + 3] |= np.uint64(1 << pf.PG_lru)
    with pytest.raises(ModelBug, match="PAGE_FLAGS_CHECK_AT_FREE") as exc:
        m.free_pages(pfn, 2)
    assert f"pfn:{pfn + 3:#x}" in str(exc.value)


def test_non_null_mapping_at_free_is_bad_page() -> None:
    m = Machine.build(memory="64M")
    pfn = m.alloc_pages(0, "GFP_KERNEL")
    assert pfn is not None
    m.mem.mapping[pfn] = pf.mapping_encode(0x1234, 0)
    with pytest.raises(ModelBug, match=r"bad_page: .*: non-NULL mapping"):
        m.free_pages(pfn, 0)


def test_isolated_bit_and_cleared_movable_mapping_are_dropped_at_free() -> None:
    # PG_isolated (= PG_reclaim) is in PAGE_FLAGS_CHECK_AT_PREP, not ..._AT_FREE, and the bare
    # PAGE_MAPPING_MOVABLE left by __ClearPageMovable is a mapping-flags word: both are reset
    # by free_pages_prepare, so the v4.8 driver pattern "clear movable, then free" is legal.
    m = Machine.build(memory="64M")
    pfn = m.alloc_pages(0, "GFP_KERNEL")
    assert pfn is not None
    m.mem.flags[pfn] |= np.uint64(1 << pf.PG_isolated)
    m.mem.mapping[pfn] = pf.PAGE_MAPPING_MOVABLE
    m.free_pages(pfn, 0)
    assert not pf.PageIsolated(m.mem, pfn)
    assert m.mem.mapping[pfn] == 0
    m.check_state()


# --- check_state ---------------------------------------------------------------------------------------------


@pytest.fixture
def small() -> Machine:
    m = Machine.build(memory="64M")
    m.check_state()
    return m


def test_check_state_passes_on_a_busy_machine(small: Machine) -> None:
    for order in (0, 1, 3, 9):
        assert small.alloc_pages(order, "GFP_KERNEL") is not None
    small.check_state()


def test_check_state_detects_corrupt_nr_free(small: Machine) -> None:
    zone = small.zones[DMA32]
    zone.nr_free[3] += 1
    with pytest.raises(StateCheckFailed, match=r"DMA32 nr_free\[3\] = \d+, lists hold \d+"):
        small.check_state()


def test_check_state_detects_corrupt_nr_free_pages(small: Machine) -> None:
    small.zones[DMA].vm_stat[vs.NR_FREE_PAGES] -= 1
    with pytest.raises(StateCheckFailed, match="NR_FREE_PAGES"):
        small.check_state()


def test_check_state_detects_a_stray_page_buddy(small: Machine) -> None:
    pfn = small.alloc_pages(0, "GFP_KERNEL")
    assert pfn is not None
    small.mem.mapcount[pfn] = pf.PAGE_TYPE_BUDDY
    with pytest.raises(StateCheckFailed) as exc:
        small.check_state()
    assert "PageBuddy pages" in str(exc.value)
    assert hex(pfn) in str(exc.value)


def test_check_state_detects_a_lost_page(small: Machine) -> None:
    # A page whose last reference was dropped without freeing it (a leaked put_page) is held
    # by nobody: not free, not referenced, not reserved.
    pfn = pa.alloc_pages_node(small, 0, 0xCC0, 0)
    assert pfn >= 0
    small.mem.refcount[pfn] = 0
    with pytest.raises(StateCheckFailed, match="not held exactly once") as exc:
        small.check_state()
    assert f"first pfn {pfn:#x} held 0 times" in str(exc.value)


def test_check_state_detects_a_block_unlinked_from_its_free_list(small: Machine) -> None:
    # Unlinking a free block while leaving it counted: the list, its count and the page
    # (still PageBuddy, now on no list and held by nobody) all disagree.
    order, mt, pfn = next((o, t, p) for zi, o, t, p in free_blocks(small) if zi == DMA32)
    small.mem.list_del(pfn)
    with pytest.raises(StateCheckFailed) as exc:
        small.check_state()
    text = str(exc.value)
    assert f"DMA32 free_list[{order}][{mt}]: " in text and "entries, counted" in text
    assert f"not on any list: ['{pfn:#x}']" in text
    assert "not held exactly once" in text


def test_state_check_failed_is_a_model_bug() -> None:
    assert issubclass(StateCheckFailed, ModelBug)
    assert issubclass(ModelBug, AssertionError)



@pytest.mark.parametrize("extra_kbytes", [0, 24300, 100_000])
def test_android_extra_free_kbytes_widens_low_and_high_only(extra_kbytes: int) -> None:
    """Android's vm.extra_free_kbytes: each zone's share of the extra pages (by managed
    pages) lands between min and low, so low and high rise by it and min stays."""
    from pagelab.mm.page_alloc import setup_per_zone_wmarks

    m = Machine.build(memory="2G", profile="v4.8", thp=False)
    before = {z.name: (z.min_wmark_pages(), z.low_wmark_pages(), z.high_wmark_pages())
              for z in m.populated_zones()}
    m.extra_free_kbytes = extra_kbytes
    setup_per_zone_wmarks(m)
    total = sum(z.managed_pages for z in m.zones)
    for zone in m.populated_zones():
        wmin, low, high = before[zone.name]
        share = (extra_kbytes >> 2) * zone.managed_pages // total
        assert zone.min_wmark_pages() == wmin
        assert zone.low_wmark_pages() == low + share
        assert zone.high_wmark_pages() == high + share
    assert sum((extra_kbytes >> 2) * z.managed_pages // total for z in m.zones) <= \
        extra_kbytes >> 2
