"""Tests for pagelab.mm.page_flags: PG_* bits, page types, mapping low bits, compound pages."""

from __future__ import annotations

import numpy as np
import pytest

from pagelab import Machine
from pagelab.errors import ModelBug
from pagelab.mm import page_flags as pf
from pagelab.mm.memmap import MemMap
from pagelab.mm.page_flags import __PageMovable

# --- enum pageflags (v6.16 layout, x86-64) ------------------------------------------------------

# (bit, name) exactly as include/linux/page-flags.h numbers them for x86-64 with CONFIG_MMU,
# CONFIG_MEMORY_FAILURE and CONFIG_PAGE_IDLE_FLAG on 64-bit (no PG_arch_2/PG_arch_3).
KERNEL_PG_BITS = [
    (0, "locked"), (1, "writeback"), (2, "referenced"), (3, "uptodate"), (4, "dirty"),
    (5, "lru"), (6, "head"), (7, "waiters"), (8, "active"), (9, "workingset"),
    (10, "owner_priv_1"), (11, "owner_2"), (12, "arch_1"), (13, "reserved"), (14, "private"),
    (15, "private_2"), (16, "reclaim"), (17, "swapbacked"), (18, "unevictable"),
    (19, "dropbehind"), (20, "mlocked"), (21, "hwpoison"), (22, "young"), (23, "idle"),
]


@pytest.mark.parametrize(("bit", "name"), KERNEL_PG_BITS)
def test_pg_bit_numbers_follow_the_v616_enum(bit: int, name: str) -> None:
    assert getattr(pf, f"PG_{name}") == bit
    assert pf.PAGEFLAG_NAMES[bit] == name


def test_nr_pageflags_and_mask() -> None:
    assert pf.NR_PAGEFLAGS == 24 == len(pf.PAGEFLAG_NAMES)
    assert pf.PAGEFLAGS_MASK == 0xFFFFFF
    # PG_head "must be in bit 6"; PG_waiters "must be bit #7", in the same byte as PG_locked.
    assert pf.PG_head == 6
    assert pf.PG_waiters == 7
    assert pf.PG_locked // 8 == pf.PG_waiters // 8


@pytest.mark.parametrize(
    ("alias", "bit"),
    [
        ("PG_isolated", "PG_reclaim"),
        ("PG_readahead", "PG_reclaim"),
        ("PG_partially_mapped", "PG_reclaim"),
        ("PG_swapcache", "PG_owner_priv_1"),
        ("PG_checked", "PG_owner_priv_1"),
        ("PG_anon_exclusive", "PG_owner_2"),
        ("PG_mappedtodisk", "PG_owner_2"),
        ("PG_fscache", "PG_private_2"),
        ("PG_reported", "PG_uptodate"),
        ("PG_has_hwpoisoned", "PG_active"),
        ("PG_large_rmappable", "PG_workingset"),
    ],
)
def test_aliases_share_the_kernel_bit(alias: str, bit: str) -> None:
    assert getattr(pf, alias) == getattr(pf, bit)


def test_first_tail_flags_avoid_the_order_byte() -> None:
    # Flags valid only in page[1] cannot use the first 8 bits: the folio order lives there.
    for name in ("PG_has_hwpoisoned", "PG_large_rmappable", "PG_partially_mapped"):
        assert getattr(pf, name) >= 8


def test_flags_checked_at_free_and_prep() -> None:
    at_free = {
        pf.PG_lru, pf.PG_locked, pf.PG_private, pf.PG_private_2, pf.PG_writeback,
        pf.PG_reserved, pf.PG_active, pf.PG_unevictable, pf.PG_mlocked,
    }
    assert sum(1 << b for b in at_free) == pf.PAGE_FLAGS_CHECK_AT_FREE
    # PG_isolated (= PG_reclaim) is not a bad-page flag, but prep clears it; hwpoison survives.
    assert not pf.PAGE_FLAGS_CHECK_AT_FREE & (1 << pf.PG_isolated)
    assert pf.PAGE_FLAGS_CHECK_AT_PREP & (1 << pf.PG_isolated)
    assert not pf.PAGE_FLAGS_CHECK_AT_PREP & (1 << pf.PG_hwpoison)
    assert pf.PAGE_FLAGS_CHECK_AT_PREP | (1 << pf.PG_hwpoison) == pf.PAGEFLAGS_MASK


def test_zone_and_node_fields_sit_above_the_flags() -> None:
    assert pf.ZONES_PGSHIFT == 61
    assert pf.NODES_PGSHIFT == 51
    assert pf.PAGE_FIELDS_MASK & pf.PAGEFLAGS_MASK == 0
    assert pf.PAGE_FIELDS_MASK >> pf.NODES_PGSHIFT == (1 << 13) - 1


# --- page types ----------------------------------------------------------------------------------


@pytest.fixture
def mem() -> MemMap:
    return MemMap(64, 4)


def test_page_type_values_are_pgty_shifted_into_a_signed_mapcount() -> None:
    # page_type = PGTY_x << 24 as unsigned int; read back through the signed _mapcount.
    assert pf.PAGE_TYPE_BUDDY == -0x10000000
    assert pf.PAGE_TYPE_OFFLINE == -0x0F000000
    assert pf.PAGE_TYPE_TABLE == -0x0E000000
    assert pf.PAGE_TYPE_GUARD == -0x0D000000
    assert pf.PAGE_TYPE_ZSMALLOC == -0x0A000000
    for pgty in pf.PAGE_TYPE_NAMES:
        assert pf.page_type_value(pgty) & 0xFFFFFFFF == pgty << 24


@pytest.mark.parametrize(
    ("pgty", "predicate"),
    [
        (pf.PGTY_buddy, pf.PageBuddy),
        (pf.PGTY_offline, pf.PageOffline),
        (pf.PGTY_table, pf.PageTable),
        (pf.PGTY_zsmalloc, pf.PageZsmalloc),
        (pf.PGTY_guard, pf.PageGuard),
        (pf.PGTY_slab, pf.PageSlab),
    ],
)
def test_each_type_predicate_matches_only_its_own_type(mem: MemMap, pgty: int, predicate) -> None:
    others = [t for t in pf.PAGE_TYPE_NAMES if t != pgty]
    mem.mapcount[1] = pf.page_type_value(pgty)
    # The low 24 bits belong to the owner (zsmalloc keeps an offset there): still the type.
    mem.mapcount[2] = pf.page_type_value(pgty) + 0x123
    for pfn in (1, 2):
        assert predicate(mem, pfn)
        assert pf.page_type(mem, pfn) == pgty
        assert pf.page_has_type(mem, pfn)
        assert pf.page_mapcount(mem, pfn) == 0
        assert not pf.page_mapped(mem, pfn)
    for other in others:
        mem.mapcount[3] = pf.page_type_value(other)
        assert not predicate(mem, 3)


def test_balloon_is_the_offline_type(mem: MemMap) -> None:
    assert pf.PageBalloon is pf.PageOffline


@pytest.mark.parametrize("mapcount", [-1, 0, 1, 5, 1 << 20])
def test_untyped_pages_report_their_mapcount(mem: MemMap, mapcount: int) -> None:
    mem.mapcount[5] = mapcount
    assert not pf.page_has_type(mem, 5)
    assert pf.page_type(mem, 5) == 0
    assert pf.page_mapcount(mem, 5) == mapcount + 1
    assert pf.page_mapped(mem, 5) == (mapcount >= 0)
    assert not pf.PageBuddy(mem, 5)


def test_mapcount_underflow_region_is_not_a_type(mem: MemMap) -> None:
    # PGTY_mapcount_underflow << 24 is the first value that no longer counts as a type
    # (page_type_has_type: page_type < 0xff000000 as int).
    mem.mapcount[5] = pf.page_type_value(pf.PGTY_mapcount_underflow)
    assert not pf.page_has_type(mem, 5)
    mem.mapcount[5] = pf.page_type_value(pf.PGTY_mapcount_underflow) - 1
    assert pf.page_has_type(mem, 5)


def test_fresh_memmap_pages_are_untyped_and_unmapped(mem: MemMap) -> None:
    assert mem.mapcount[0] == pf.MAPCOUNT_NONE == -1
    assert pf.page_mapcount(mem, 0) == 0
    assert not pf.page_has_type(mem, 0)


# --- page->mapping low bits ----------------------------------------------------------------------


def test_mapping_bit_constants() -> None:
    assert pf.PAGE_MAPPING_ANON == 1
    assert pf.PAGE_MAPPING_MOVABLE == 2
    assert pf.PAGE_MAPPING_KSM == 3
    assert pf.PAGE_MAPPING_FLAGS == 3
    assert pf.TAIL_MAPPING & pf.PAGE_MAPPING_FLAGS == 0


def test_mapping_encode_keeps_owner_and_bits() -> None:
    word = pf.mapping_encode(1234, pf.PAGE_MAPPING_MOVABLE)
    assert word & 3 == pf.PAGE_MAPPING_MOVABLE
    assert pf.mapping_owner(word) == 1234


@pytest.mark.parametrize(
    ("bits", "flags", "anon", "ksm", "movable"),
    [
        (0, False, False, False, False),  # a file page
        (pf.PAGE_MAPPING_ANON, True, True, False, False),
        (pf.PAGE_MAPPING_KSM, True, True, True, False),
        (pf.PAGE_MAPPING_MOVABLE, True, False, False, True),
    ],
)
def test_mapping_predicates(mem: MemMap, bits: int, flags: bool, anon: bool, ksm: bool,
                            movable: bool) -> None:
    mem.mapping[7] = pf.mapping_encode(42, bits)
    assert pf.PageMappingFlags(mem, 7) is flags
    assert pf.PageAnon(mem, 7) is anon
    assert pf.PageKsm(mem, 7) is ksm
    assert __PageMovable(mem, 7) is movable
    # page_mapping(): NULL for anon and KSM pages, the owner otherwise.
    assert pf.page_mapping(mem, 7) == (0 if anon else 42)


def test_cleared_movable_page_keeps_the_type_bit(mem: MemMap) -> None:
    # __ClearPageMovable leaves mapping == PAGE_MAPPING_MOVABLE (no owner): still
    # __PageMovable, so compaction keeps treating it as a non-LRU page, but page_mapping()
    # gives NULL, so the driver's callbacks are not found.
    mem.mapping[9] = pf.mapping_encode(77, pf.PAGE_MAPPING_MOVABLE)
    mem.mapping[9] &= pf.PAGE_MAPPING_MOVABLE
    assert mem.mapping[9] == 0x2
    assert __PageMovable(mem, 9)
    assert pf.PageMappingFlags(mem, 9)
    assert not pf.PageAnon(mem, 9)
    assert pf.page_mapping(mem, 9) == 0


def test_page_mapping_of_a_slab_page_is_null(mem: MemMap) -> None:
    mem.mapcount[11] = pf.page_type_value(pf.PGTY_slab)
    mem.mapping[11] = pf.mapping_encode(5, 0)
    assert pf.page_mapping(mem, 11) == 0
    mem.mapcount[11] = pf.MAPCOUNT_NONE
    assert pf.page_mapping(mem, 11) == 5


# --- flag predicates and policies ------------------------------------------------------------------


def test_pf_any_predicates_test_the_page_itself(mem: MemMap) -> None:
    mem.flags[3] |= 1 << pf.PG_isolated
    mem.flags[4] |= 1 << pf.PG_reserved
    mem.flags[5] |= 1 << pf.PG_private
    assert pf.PageIsolated(mem, 3)
    assert not pf.PageIsolated(mem, 4)
    assert pf.PageReserved(mem, 4)
    assert pf.PagePrivate(mem, 5)


def test_decode_page_flags(mem: MemMap) -> None:
    assert pf.decode_page_flags(mem, 0) == ""
    mem.flags[0] = (1 << pf.PG_lru) | (1 << pf.PG_swapbacked) | (1 << pf.PG_locked)
    assert pf.decode_page_flags(mem, 0) == "PG_locked|PG_lru|PG_swapbacked"
    # The isolated bit decodes under its base name, as the kernel's %pGp does.
    mem.flags[1] = 1 << pf.PG_isolated
    assert pf.decode_page_flags(mem, 1) == "PG_reclaim"
    # Zone and node ids in the high bits are not flags.
    mem.flags[2] = (2 << pf.ZONES_PGSHIFT) | (3 << pf.NODES_PGSHIFT) | (1 << pf.PG_idle)
    assert pf.decode_page_flags(mem, 2) == "PG_idle"


def test_vm_bug_on_page_raises_model_bug_with_the_check(mem: MemMap) -> None:
    pf.VM_BUG_ON_PAGE(False, mem, 3, "!PageLocked(page)")
    with pytest.raises(ModelBug) as exc:
        pf.VM_BUG_ON_PAGE(True, mem, 3, "!PageLocked(page)")
    text = str(exc.value)
    assert "VM_BUG_ON_PAGE(!PageLocked(page))" in text
    assert "pfn 0x3" in text
    assert "page pfn:0x3 " in text  # carries the dump_page() text


# --- compound pages, through the allocator --------------------------------------------------------


@pytest.fixture(scope="module")
def machine() -> Machine:
    return Machine.build(memory="64M")


@pytest.mark.parametrize("order", [1, 3, 9])
def test_gfp_comp_makes_a_compound_page(machine: Machine, order: int) -> None:
    m = machine
    mem = m.mem
    pfn = m.alloc_pages(order, "GFP_KERNEL|__GFP_COMP")
    assert pfn is not None
    try:
        nr = 1 << order
        assert pf.PageHead(mem, pfn)
        assert pf.PageCompound(mem, pfn)
        assert not pf.PageTail(mem, pfn)
        assert pf.compound_head(mem, pfn) == pfn
        assert pf.compound_order(mem, pfn) == order
        for tail in (pfn + 1, pfn + nr // 2, pfn + nr - 1):
            assert pf.PageTail(mem, tail)
            assert pf.PageCompound(mem, tail)
            assert not pf.PageHead(mem, tail)
            assert pf.compound_head(mem, tail) == pfn
            assert pf.compound_order(mem, tail) == 0  # not a head
            assert pf.page_count(mem, tail) == 1  # the head's reference
            assert pf.page_ref_count(mem, tail) == 0
        # The page after the block is not part of it.
        assert pf.compound_head(mem, pfn + nr) != pfn
        # Tails other than the first carry TAIL_MAPPING, whose low bits look like nothing.
        if order > 1:
            assert mem.mapping[pfn + 2] == pf.TAIL_MAPPING
            assert not __PageMovable(mem, pfn + 2)
            assert not pf.PageMappingFlags(mem, pfn + 2)
        # PF_HEAD predicates on a tail read the head.
        mem.flags[pfn] |= np.uint64(1 << pf.PG_lru)
        assert pf.PageLRU(mem, pfn + nr - 1)
        assert not pf.PageLRU(mem, pfn + nr)
        mem.flags[pfn] ^= np.uint64(1 << pf.PG_lru)
    finally:
        m.free_pages(pfn, order)
    assert not pf.PageHead(mem, pfn)
    assert not pf.PageTail(mem, pfn + 1)
    m.check_state()


def test_order0_and_non_comp_blocks_are_not_compound(machine: Machine) -> None:
    m = machine
    pfn = m.alloc_pages(2, "GFP_KERNEL")
    assert pfn is not None
    assert not pf.PageCompound(m.mem, pfn)
    assert not pf.PageTail(m.mem, pfn + 1)
    assert pf.compound_order(m.mem, pfn) == 0
    m.free_pages(pfn, 2)
    single = m.alloc_pages(0, "GFP_KERNEL|__GFP_COMP")
    assert single is not None
    assert not pf.PageHead(m.mem, single)  # order-0 __GFP_COMP makes no compound page
    m.free_pages(single, 0)
    m.check_state()


def test_first_tail_mapping_word_looks_like_ksm(machine: Machine) -> None:
    """The 2016 review's union: page[1]'s word that aliases ``mapping`` is a mapcount.

    Right after a THP-sized __GFP_COMP allocation, the first tail's ``_entire_mapcount``
    (v4.8: ``compound_mapcount``) is -1, so its low bits read 3 = PAGE_MAPPING_KSM: a
    lockless ``page->mapping`` test on a tail page must not trust those bits.
    """
    m = machine
    mem = m.mem
    pfn = m.alloc_pages(9, "GFP_TRANSHUGE_LIGHT")
    assert pfn is not None
    try:
        tail1 = pfn + 1
        assert mem.mapping[tail1] == -1
        assert mem.mapping[tail1] & 3 == pf.PAGE_MAPPING_KSM == (-1 & 3)
        assert pf.PageMappingFlags(mem, tail1)
        # __PageMovable is false only because both bits are set; it is not a real test of
        # the page being a movable one.
        assert not __PageMovable(mem, tail1)
        # PF_HEAD predicates go to the head, whose mapping is empty.
        assert not pf.PageKsm(mem, tail1)
        assert not pf.PageAnon(mem, tail1)
    finally:
        m.free_pages(pfn, 9)
    m.check_state()
