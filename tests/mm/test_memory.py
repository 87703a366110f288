"""Processes: anonymous and file pages, THPs, mlock, pins; and hugetlb pool pages."""

from __future__ import annotations

import numpy as np
import pytest

from pagelab import Machine
from pagelab.errors import InvalidArgument, ModelBug
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.hugetlb import alloc_pool_huge_folio, free_huge_folio
from pagelab.mm.memory import File


def test_anonymous_pages_are_lru_anon_with_one_mapping_and_a_token() -> None:
    m = Machine.build(memory="128M")
    p = m.spawn("app")
    pfns = p.touch(64)
    mem = m.mem
    for vpn, pfn in enumerate(pfns.tolist()):
        assert pf.PageLRU(mem, pfn) and pf.PageAnon(mem, pfn) and pf.PageSwapBacked(mem, pfn)
        assert pf.page_mapcount(mem, pfn) == 1 and mem.refcount_mv[pfn] == 1
        assert mem.index_mv[pfn] == vpn and mem.token_mv[pfn] == p.tokens[vpn] != 0
    assert m.vmstat["nr_anon_pages"] == 64 and m.vmstat["nr_inactive_anon"] == 64
    p.unmap(pfns[:10])
    assert m.vmstat["nr_anon_pages"] == 54 and all(pf.PageBuddy(mem, int(x)) or
                                                  mem.refcount_mv[int(x)] == 0
                                                  for x in pfns[:10])
    m.check_state()
    assert p.verify() == []


def test_file_pages_are_shared_through_the_page_cache() -> None:
    m = Machine.build(memory="128M")
    f = File(m, "libc.so")
    a, b = m.spawn("a"), m.spawn("b")
    pa_ = a.map_file(f, 8)
    pb_ = b.map_file(f, 8)
    assert np.array_equal(pa_, pb_)
    pfn = int(pa_[0])
    assert pf.page_mapcount(m.mem, pfn) == 2 and m.mem.refcount_mv[pfn] == 3  # cache + 2 maps
    a.exit()
    assert m.mem.refcount_mv[pfn] == 2
    m.check_state()


def test_thp_is_one_compound_folio_mapped_by_a_pmd() -> None:
    m = Machine.build(memory="256M")
    p = m.spawn("app")
    heads = p.touch_thp(3)
    assert len(heads) == 3
    mem = m.mem
    head = int(heads[0])
    assert pf.PageHead(mem, head) and pf.compound_order(mem, head) == 9
    assert pf.PageTail(mem, head + 1) and pf.compound_head(mem, head + 511) == head
    # _entire_mapcount 0 (one PMD) aliases the first tail's mapping word: not "movable".
    assert mem.mapping_mv[head + 1] == 0 and not pf.__PageMovable(mem, head + 1)
    assert m.vmstat["nr_anon_transparent_hugepages"] == 3
    before = m.vmstat["pgmigrate_success"]
    m.compact_memory()
    assert m.vmstat["pgmigrate_success"] == before  # compaction skips compound pages
    assert p.verify() == []
    p.unmap([head])
    assert m.vmstat["nr_anon_transparent_hugepages"] == 2
    m.check_state()
    p.exit()
    m.check_state()


def test_pinned_pages_carry_the_gup_bias_and_unpin_restores_it() -> None:
    m = Machine.build(memory="128M")
    p = m.spawn("app")
    pfns = p.touch(4)
    p.pin(pfns[:2])
    assert m.mem.refcount_mv[int(pfns[0])] == 1 + 1024
    p.unpin(pfns[:2])
    assert m.mem.refcount_mv[int(pfns[0])] == 1
    with pytest.raises(InvalidArgument, match="not pinned"):
        p.unpin(pfns[:1])


def test_mlock_moves_pages_to_the_unevictable_list() -> None:
    m = Machine.build(memory="128M")
    p = m.spawn("app")
    pfns = p.touch(8)
    p.mlock(pfns[:3])
    assert m.vmstat["nr_mlock"] == 3 and m.vmstat["nr_unevictable"] == 3
    p.exit()
    assert m.vmstat["nr_mlock"] == 0 and m.vmstat["nr_unevictable"] == 0
    m.check_state()


def test_unmapping_a_foreign_pfn_is_refused() -> None:
    m = Machine.build(memory="128M")
    a, b = m.spawn("a"), m.spawn("b")
    pfns = a.touch(2)
    with pytest.raises(InvalidArgument, match="not mapped by b"):
        b.unmap(pfns)


def test_hugetlb_pool_pages_are_typed_compound_and_off_the_lru() -> None:
    m = Machine.build(memory="256M")
    pfn = alloc_pool_huge_folio(m, 0)
    mem = m.mem
    assert pfn >= 0 and pf.PageHead(mem, pfn) and pf.page_type(mem, pfn) == pf.PGTY_hugetlb
    assert not pf.PageLRU(mem, pfn)
    free_before = m.zones[1].vm_stat[vs.NR_FREE_PAGES]
    free_huge_folio(m, pfn)
    assert m.zones[1].vm_stat[vs.NR_FREE_PAGES] >= free_before
    m.check_state()
    with pytest.raises(ModelBug, match="folio_test_hugetlb"):
        free_huge_folio(m, pfn)
