"""Dirty page-cache folios: the counters, the dirty limits, truncation and the page cache
helpers that go with them (mm/page_writeback.py, mm/truncate.py, mm/filemap.py)."""

from __future__ import annotations

import pytest

from pagelab import Machine
from pagelab.errors import InvalidArgument
from pagelab.mm import gfp as G
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import (
    FGP_ACCESSED,
    FGP_CREAT,
    filemap_remove_folio,
    folio_end_writeback,
)
from pagelab.mm.filemap import __filemap_get_folio as get_folio
from pagelab.mm.memory import File
from pagelab.mm.mmzone import MIGRATE_MOVABLE, MIGRATE_UNMOVABLE
from pagelab.mm.page_alloc import drain_all_pages, get_pageblock_migratetype
from pagelab.mm.page_writeback import (
    folio_cancel_dirty,
    folio_clear_dirty_for_io,
    folio_mark_dirty,
    global_dirty_limits,
    global_dirtyable_memory,
)
from pagelab.mm.swap import LRU_ACTIVE_FILE, LRU_INACTIVE_FILE, folio_lru_list
from pagelab.mm.truncate import truncate_inode_pages


def node_stat(m: Machine, item: int) -> int:
    return int(m.nodes[0].vm_stat[item])


def free(m: Machine) -> int:
    return sum(int(z.vm_stat[vs.NR_FREE_PAGES]) for z in m.zones)


def cached_file(m: Machine, pages: int, gfp: int = G.GFP_HIGHUSER_MOVABLE) -> File:
    f = File(m, "f")
    for i in range(pages):
        assert get_folio(m, f, i, FGP_CREAT, gfp, token=100 + i) >= 0
    return f


def test_get_folio_creates_with_the_mapping_gfp_and_finds_it_again() -> None:
    m = Machine.build(memory="64M", profile="v4.8", seed=1)
    bdev = File(m, "vda1")
    pfn = get_folio(m, bdev, 0, FGP_CREAT, G.GFP_USER, token=7)
    assert m.mem.token_mv[pfn] == 7 and bdev.pages == {0: pfn}
    assert get_pageblock_migratetype(m, pfn) == MIGRATE_UNMOVABLE
    ext4 = File(m, "test1.txt")
    movable = get_folio(m, ext4, 0, FGP_CREAT, G.GFP_HIGHUSER_MOVABLE & ~G.__GFP_FS, token=7)
    assert get_pageblock_migratetype(m, movable) == MIGRATE_MOVABLE
    assert get_folio(m, bdev, 0, 0, G.GFP_USER) == pfn
    assert get_folio(m, bdev, 1, 0, G.GFP_USER) == -1  # no FGP_CREAT: a miss
    assert node_stat(m, vs.NR_FILE_PAGES) == 2
    m.check_state()


def test_second_access_activates_the_folio() -> None:
    m = Machine.build(memory="64M", seed=1)
    f = File(m, "f")
    pfn = get_folio(m, f, 0, FGP_CREAT | FGP_ACCESSED, G.GFP_HIGHUSER_MOVABLE, token=1)
    assert m.mem.flags_mv[pfn] >> pf.PG_referenced & 1
    assert folio_lru_list(m, pfn) == LRU_INACTIVE_FILE
    before = m.vmstat["pgactivate"]
    assert get_folio(m, f, 0, FGP_ACCESSED, G.GFP_HIGHUSER_MOVABLE) == pfn
    assert folio_lru_list(m, pfn) == LRU_ACTIVE_FILE
    assert not m.mem.flags_mv[pfn] >> pf.PG_referenced & 1
    assert m.vmstat["pgactivate"] == before + 1
    m.check_state()


def test_dirty_counters_follow_the_folio() -> None:
    m = Machine.build(memory="64M", seed=1)
    f = cached_file(m, 3)
    pfns = [f.pages[i] for i in range(3)]
    assert all(folio_mark_dirty(m, p) for p in pfns)
    assert not folio_mark_dirty(m, pfns[0])  # already dirty
    assert node_stat(m, vs.NR_FILE_DIRTY) == 3 and node_stat(m, vs.NR_DIRTIED) == 3
    assert sum(int(z.vm_stat[vs.NR_ZONE_WRITE_PENDING]) for z in m.zones) == 3
    assert m.vmstat["nr_dirty"] == 3
    assert folio_clear_dirty_for_io(m, pfns[0])
    folio_end_writeback(m, pfns[0])
    folio_cancel_dirty(m, pfns[1])
    assert not folio_clear_dirty_for_io(m, pfns[1])
    assert node_stat(m, vs.NR_FILE_DIRTY) == 1 and node_stat(m, vs.NR_WRITTEN) == 1
    assert sum(int(z.vm_stat[vs.NR_ZONE_WRITE_PENDING]) for z in m.zones) == 1


def test_dirty_limits_count_free_and_file_lru_pages() -> None:
    m = Machine.build(memory="256M", seed=1)
    empty = global_dirtyable_memory(m)
    cached_file(m, 2000)
    # Caching moves pages from free to the file LRU: dirtyable memory changes only by what
    # the per-CPU lists hold (not counted as free), not by the 2000 pages cached.
    assert abs(global_dirtyable_memory(m) - empty) < 1000
    bg, thresh = global_dirty_limits(m)
    assert thresh == 20 * global_dirtyable_memory(m) // 100
    assert bg == 10 * global_dirtyable_memory(m) // 100
    assert global_dirty_limits(m, dirty_ratio=10, background_ratio=10)[0] == \
        global_dirty_limits(m, dirty_ratio=10)[1] // 2
    assert m.vmstat["nr_dirty_threshold"] == thresh
    assert m.vmstat["nr_dirty_background_threshold"] == bg


def test_truncate_frees_everything_and_drops_dirty_pages_unwritten() -> None:
    m = Machine.build(memory="64M", seed=1)
    drain_all_pages(m, None)
    start = free(m)
    f = cached_file(m, 100)
    for i in range(0, 100, 2):
        folio_mark_dirty(m, f.pages[i])
    assert truncate_inode_pages(m, f) == 100
    assert f.pages == {}
    assert node_stat(m, vs.NR_FILE_PAGES) == 0 and node_stat(m, vs.NR_FILE_DIRTY) == 0
    assert node_stat(m, vs.NR_WRITTEN) == 0
    drain_all_pages(m, None)
    assert free(m) == start
    m.check_state()


def test_truncate_leaves_a_folio_someone_holds_until_they_let_go() -> None:
    from pagelab.mm.filemap import get_page
    from pagelab.mm.swap import put_page

    m = Machine.build(memory="64M", seed=1)
    f = cached_file(m, 2)
    held = f.pages[0]
    get_page(m, held)
    truncate_inode_pages(m, f)
    assert m.mem.refcount_mv[held] == 1 and not m.mem.mapping_mv[held]
    put_page(m, held)
    assert m.mem.refcount_mv[held] == 0
    m.check_state()


def test_truncate_refuses_a_mapped_file() -> None:
    m = Machine.build(memory="64M", seed=1)
    f = File(m, "lib.so")
    task = m.spawn("app")
    task.map_file(f, 4)
    with pytest.raises(InvalidArgument, match="still mapped"):
        truncate_inode_pages(m, f)
    with pytest.raises(Exception, match="not an unmapped page-cache folio"):
        filemap_remove_folio(m, f.pages[0])
