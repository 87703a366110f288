"""Tests for pagelab.mm.zsmalloc: geometry, encodings, page linkage, fullness groups,
zs_compact, the three migration callbacks in v4.8 and mainline, and a Hypothesis stateful
test that any mix of malloc/free/map/compact/migration keeps every object's bytes."""

from __future__ import annotations

import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pagelab import Machine
from pagelab.errors import InvalidArgument
from pagelab.mm import gfp as G
from pagelab.mm import migrate as mg
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import trylock_page, unlock_page
from pagelab.mm.migrate import MigrateMode, MigrateReason
from pagelab.mm.mmzone import MIGRATE_MOVABLE, MIGRATE_UNMOVABLE
from pagelab.mm.zsmalloc import (
    HANDLE_PIN_BIT,
    OBJ_ALLOCATED_TAG,
    ZS_ALMOST_EMPTY,
    ZS_HANDLE_SIZE,
    ZS_INUSE_RATIO_0,
    ZS_MM_RW,
    ZsConfig,
    ZsPage,
    ZsPool,
    size_class_table,
    zs_create_pool,
)

#: What zram (v6.15+) passes to zs_malloc.
GFP_ZS = G.GFP_NOIO | G.__GFP_HIGHMEM | G.__GFP_MOVABLE
GFP_TARGET = G.GFP_HIGHUSER_MOVABLE


def make(profile: str = "mainline", memory: str = "32M") -> tuple[Machine, ZsPool]:
    m = Machine.build(memory=memory, profile=profile, seed=7)
    return m, zs_create_pool(m, "test")


def isolate(m: Machine, pfns: list[int]) -> tuple[int, list[int]]:
    """Isolate pages as compaction's migrate scanner does; return the list and the isolated."""
    head = m.alloc_list_head()
    got = []
    for pfn in pfns:
        if mg.isolate_movable_page(m, pfn, 0):
            if m.profile.nr_isolated_v48:
                mg.mod_isolated(m, pfn, 1)
            m.mem.list_add_tail(pfn, head)
            got.append(pfn)
    return head, got


def migrate(m: Machine, head: int, mode: MigrateMode = MigrateMode.MIGRATE_SYNC
            ) -> tuple[int, mg.MigrateStats]:
    """migrate_pages with targets from the page allocator, then put back what is left."""
    rc, stats = mg.migrate_pages(m, head, lambda old: m.alloc_page_raw(GFP_TARGET, 0, 0),
                                 None, mode, MigrateReason.MR_COMPACTION)
    if not m.mem.list_empty(head):
        mg.putback_movable_pages(m, head)
    m.release_list_head(head)
    return rc, stats


def nr_zspages(m: Machine) -> int:
    return sum(z.vm_stat[vs.NR_ZSPAGES] for z in m.zones)


# --- geometry: the kernel's table computed independently ---------------------------------


def kernel_table(chain: int, least_waste: bool) -> list[tuple[int, int, int, int]]:
    """Per slot: (class index after merging, size, pages_per_zspage, objs_per_zspage).

    Straight from the kernel's formulas: sizes 32 + 16 i capped at 4096; v4.8 picks the
    chain with the largest integer used-percentage, v6.3 the least waste (power-of-two sizes
    one page); slots are merged downwards into the last created class with the same pages
    and objects per zspage.
    """
    rows: dict[int, tuple[int, int, int, int]] = {}
    prev: tuple[int, int, int, int] | None = None
    for i in range(254, -1, -1):
        size = min(32 + 16 * i, 4096)
        if least_waste:
            if size & (size - 1) == 0:
                k = 1
            else:
                wastes = [(k * 4096) % size for k in range(1, chain + 1)]
                k = wastes.index(min(wastes)) + 1
        else:
            used = [(k * 4096 - (k * 4096) % size) * 100 // (k * 4096) for k in range(1, chain + 1)]
            k = used.index(max(used)) + 1
        objs = k * 4096 // size
        if prev is not None and prev[2] == k and prev[3] == objs:
            rows[i] = prev
            continue
        prev = (i, size, k, objs)
        rows[i] = prev
    return [rows[i] for i in range(255)]


@pytest.mark.parametrize("profile,chain,least_waste", [("v4.8", 4, False), ("mainline", 8, True)])
def test_geometry_equals_kernel_formulas(profile: str, chain: int, least_waste: bool) -> None:
    _, pool = make(profile)
    expected = kernel_table(chain, least_waste)
    for i, klass in enumerate(pool.size_class):
        assert (klass.index, klass.size, klass.pages_per_zspage, klass.objs_per_zspage) == \
            expected[i], f"slot {i}"
    distinct = sorted(set(expected))
    assert size_class_table(pool.config) == distinct
    assert all(1 <= row[2] <= chain for row in expected)


def test_geometry_known_rows() -> None:
    _, v48 = make("v4.8")
    _, main = make("mainline")
    # slot 0: 32-byte objects, one page, 128 objects; slot 1: 48 bytes fit 3 pages exactly.
    for pool in (v48, main):
        c0 = pool.size_class[0]
        assert (c0.size, c0.pages_per_zspage, c0.objs_per_zspage) == (32, 1, 128)
        c1 = pool.size_class[1]
        assert (c1.size, c1.pages_per_zspage, c1.objs_per_zspage) == (48, 3, 256)
        top = pool.size_class[254]
        assert (top.size, top.pages_per_zspage, top.objs_per_zspage) == (4096, 1, 1)
    # The huge-class watermark zram reads: 3264 (4-page chains), 3632 (8-page chains), minus
    # ZS_HANDLE_SIZE - 1.
    assert v48.zs_huge_class_size() == 3264 - (ZS_HANDLE_SIZE - 1)
    k = v48.size_class[(3264 - 32) // 16]
    assert (k.size, k.pages_per_zspage, k.objs_per_zspage) == (3264, 4, 5)
    assert main.zs_huge_class_size() == 3632 - (ZS_HANDLE_SIZE - 1)
    k = main.size_class[(3632 - 32) // 16]
    assert (k.size, k.pages_per_zspage, k.objs_per_zspage) == (3632, 8, 9)
    # zs_malloc adds the handle: a 3257-byte object is huge on v4.8, a 3256-byte one is not.
    assert v48.size_class[v48.zs_lookup_class_index(3257 + ZS_HANDLE_SIZE)].objs_per_zspage == 1
    assert v48.size_class[v48.zs_lookup_class_index(3256 + ZS_HANDLE_SIZE)].objs_per_zspage == 5


def test_config_for_profiles() -> None:
    _, pool = make("v4.8")
    c = pool.config
    assert (c.chain_size, c.legacy_locking, c.migrate_empty, c.last_page_private2) == \
        (4, True, False, True)
    assert c.obj_index_bits == 29 and c.obj_tag_shift == 1
    _, pool = make("mainline")
    c = pool.config
    assert (c.chain_size, c.legacy_locking, c.ratio_fullness, c.page_type_zsmalloc) == \
        (8, False, True, True)
    assert c.obj_index_bits == 24 and c.obj_tag_shift == 0
    assert not ZsConfig.for_profile(Machine.build(memory="32M", profile="pre-4.8").profile).movable


# --- encodings and page linkage -----------------------------------------------------------


def test_handle_encoding_v48_pin_bit() -> None:
    m, pool = make("v4.8")
    h = pool.zs_malloc(100, GFP_ZS)
    assert h > 0 and h % 8 == 0
    pfn, off = pool.object_location(h)
    idx = off // pool.class_of(h).size
    assert pool.handle_to_obj(h) == ((pfn << 29) | idx) << 1
    # The object's header in the page is handle | OBJ_ALLOCATED_TAG.
    assert int.from_bytes(pool._data[pfn][off: off + 8], "little") == h | OBJ_ALLOCATED_TAG
    buf = pool.zs_map_object(h, ZS_MM_RW)
    assert pool.handle_to_obj(h) & (1 << HANDLE_PIN_BIT)  # pinned while mapped
    assert len(buf) == pool.class_of(h).size - ZS_HANDLE_SIZE
    pool.zs_unmap_object(h)
    assert not pool.handle_to_obj(h) & (1 << HANDLE_PIN_BIT)
    pool.zs_free(h)
    m.check_state()


def test_handle_encoding_mainline() -> None:
    m, pool = make("mainline")
    hs = [pool.zs_malloc(100, GFP_ZS) for _ in range(40)]
    for h in hs:
        pfn, off = pool.object_location(h)
        idx_in_zspage = pool.obj_to_location(pool.handle_to_obj(h))[1]
        assert pool.handle_to_obj(h) == (pfn << 24) | idx_in_zspage
        assert (idx_in_zspage * pool.class_of(h).size) % 4096 == off
    for h in hs:
        pool.zs_free(h)
    m.check_state()


@pytest.mark.parametrize("profile", ["v4.8", "mainline"])
def test_page_linkage(profile: str) -> None:
    m, pool = make(profile)
    mem = m.mem
    # 3264-byte class on v4.8 (4 pages, 5 objects), 3632 on mainline (8 pages, 9 objects).
    size = 3264 - 8 if profile == "v4.8" else 3632 - 8
    h = pool.zs_malloc(size, GFP_ZS)
    klass = pool.class_of(h)
    zspage = pool.get_zspage(pool.object_location(h)[0])
    pages = pool.zspage_pages(zspage)
    assert len(pages) == klass.pages_per_zspage > 1
    for i, pfn in enumerate(pages):
        assert mem.private_mv[pfn] == zspage.id
        assert pf.PagePrivate(mem, pfn) == (i == 0)
        assert bool(mem.flags_mv[pfn] >> pf.PG_private_2 & 1) == (profile == "v4.8"
                                                                and i == len(pages) - 1)
        assert mem.index_mv[pfn] == (pages[i + 1] if i + 1 < len(pages) else 0)
        assert pool.get_first_obj_offset(pfn) == (-(i * 4096)) % klass.size
        assert pf.PageZsmalloc(mem, pfn) == (profile == "mainline")
        assert mem.refcount_mv[pfn] == 1
        assert mem.mapping_mv[pfn] == pool.mapping.mapping_word | pf.PAGE_MAPPING_MOVABLE
        assert mem.alloc_mt_mv[pfn] == MIGRATE_MOVABLE
    assert m.vmstat["nr_zspages"] == len(pages)
    # A huge object: one page, handle in page->index, PG_owner_priv_1 on v4.8.
    hh = pool.zs_malloc(4000, GFP_ZS)
    hp, off = pool.object_location(hh)
    assert off == 0 and pool.class_of(hh).size == 4096
    assert mem.index_mv[hp] == hh | OBJ_ALLOCATED_TAG
    assert bool(mem.flags_mv[hp] >> pf.PG_owner_priv_1 & 1) == (profile == "v4.8")
    assert len(pool.zs_map_object(hh)) == 4096  # no header in a huge object
    pool.zs_unmap_object(hh)
    pool.zs_free(h)
    pool.zs_free(hh)
    assert m.vmstat["nr_zspages"] == 0 and pool.zs_get_total_pages() == 0
    for pfn in pages:
        assert mem.refcount_mv[pfn] == 0 and mem.mapping_mv[pfn] == 0
    m.check_state()


def test_pre48_pages_are_unmovable() -> None:
    m, pool = make("pre-4.8")
    h = pool.zs_malloc(500, GFP_ZS)  # even a caller asking for __GFP_MOVABLE
    pages = pool.pages()
    for pfn in pages:
        assert m.mem.alloc_mt_mv[pfn] == MIGRATE_UNMOVABLE
        assert m.mem.mapping_mv[pfn] == 0
        assert not mg.isolate_movable_page(m, pfn, 0)
    pool.zs_free(h)
    m.check_state()


def test_errors() -> None:
    m, pool = make("mainline")
    assert pool.zs_malloc(0, GFP_ZS) < 0 and pool.zs_malloc(4097, GFP_ZS) < 0
    _, v48 = make("v4.8")
    assert v48.zs_malloc(0, GFP_ZS) == 0 and v48.zs_malloc(4097, GFP_ZS) == 0
    with pytest.raises(InvalidArgument, match="not a live handle"):
        pool.zs_free(8)
    h = pool.zs_malloc(64, GFP_ZS)
    with pytest.raises(InvalidArgument, match="do not fit"):
        pool.zs_obj_write(h, bytes(200))
    pool.zs_obj_read_begin(h)
    with pytest.raises(InvalidArgument, match="still mapped"):
        pool.zs_free(h)
    pool.zs_obj_read_end(h)
    with pytest.raises(InvalidArgument, match="still holds"):
        pool.zs_destroy_pool()
    pool.zs_free(h)
    pool.zs_destroy_pool()
    m.check_state()


# --- objects straddling pages, moved page by page -------------------------------------------


@pytest.mark.parametrize("profile", ["v4.8", "mainline"])
def test_straddling_objects_survive_page_by_page_migration(profile: str) -> None:
    m, pool = make(profile)
    rng = random.Random(3)
    size = 1200  # class 1232: 4-page (v4.8) or 7-page (mainline) zspages, objects straddle
    objects = {}
    for _ in range(12):
        h = pool.zs_malloc(size, GFP_ZS)
        objects[h] = rng.randbytes(size)
        pool.zs_obj_write(h, objects[h])
    straddling = [h for h in objects
                  if pool.object_location(h)[1] + pool.class_of(h).size > 4096]
    assert straddling
    for pfn in sorted(pool.pages()):
        head, got = isolate(m, [pfn])
        assert got == [pfn]
        rc, stats = migrate(m, head)
        assert rc == 0 and stats.nr_succeeded == 1
        assert pfn not in pool.pages()
        m.check_state()
        for h, d in objects.items():
            assert pool.zs_obj_read(h, size) == d
    assert m.vmstat["pgmigrate_success"] >= len(pool.pages())


# --- fullness groups --------------------------------------------------------------------------


def test_insert_order_v48_puts_lower_inuse_second() -> None:
    _, pool = make("v4.8")
    klass = pool.size_class[0]
    a, b, c = ZsPage(1001), ZsPage(1002), ZsPage(1003)
    a.inuse, b.inuse, c.inuse = 50, 10, 60
    for z in (a, b, c):
        pool.insert_zspage(klass, z, ZS_ALMOST_EMPTY)
    order = [z.id for z in _entries(klass.fullness_list[ZS_ALMOST_EMPTY])]
    assert order == [1003, 1001, 1002]  # a; b (lower) second; c (higher) at the head
    for z in (a, b, c):
        pool.remove_zspage(klass, z, ZS_ALMOST_EMPTY)


def test_insert_order_mainline_is_list_add() -> None:
    _, pool = make("mainline")
    klass = pool.size_class[0]
    zs = [ZsPage(2000 + i) for i in range(3)]
    for z, inuse in zip(zs, (50, 10, 60), strict=True):
        z.inuse = inuse
        pool.insert_zspage(klass, z, 5)
    assert [z.id for z in _entries(klass.fullness_list[5])] == [2002, 2001, 2000]
    for z in zs:
        pool.remove_zspage(klass, z, 5)


def _entries(head: object) -> list[ZsPage]:
    out = []
    cur = head.next  # type: ignore[attr-defined]
    while cur is not head:
        out.append(cur)
        cur = cur.next
    return out


@pytest.mark.parametrize("profile", ["v4.8", "mainline"])
def test_fullness_groups_follow_inuse(profile: str) -> None:
    m, pool = make(profile)
    hs = [pool.zs_malloc(20, GFP_ZS) for _ in range(128)]  # one full 32-byte zspage
    zspage = pool.get_zspage(pool.object_location(hs[0])[0])
    assert zspage.fullness == pool._fg_full
    for h in hs[:100]:
        pool.zs_free(h)
    klass = pool.size_class[0]
    assert zspage.fullness == pool.get_fullness_group(klass, zspage)
    assert zspage.fullness == (ZS_ALMOST_EMPTY if profile == "v4.8" else 3)  # 28/128 = 21%
    m.check_state()


# --- zs_compact ------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["v4.8", "mainline"])
def test_zs_compact_frees_pages_and_keeps_bytes(profile: str) -> None:
    m, pool = make(profile, "64M")
    rng = random.Random(11)
    objects = {}
    for _ in range(3000):
        size = rng.choice((60, 200, 700))
        h = pool.zs_malloc(size, GFP_ZS)
        objects[h] = rng.randbytes(size)
        pool.zs_obj_write(h, objects[h])
    for h in rng.sample(sorted(objects), 2400):
        pool.zs_free(h)
        del objects[h]
    before = pool.zs_get_total_pages()
    can = pool.zs_shrinker_count()
    assert can > 0
    result = pool.zs_compact()
    freed = before - pool.zs_get_total_pages()
    assert freed > 0 and pool.pages_compacted == freed
    assert result == freed  # v4.8: cumulative pages_compacted; mainline: this call's pages
    assert pool.zs_shrinker_count() < can
    assert nr_zspages(m) == pool.zs_get_total_pages()
    m.check_state()
    for h, d in objects.items():
        assert pool.zs_obj_read(h, len(d)) == d


# --- migration callbacks: the v4.8 contract and mainline's ---------------------------------


def _lone_object_zspage(pool: ZsPool) -> tuple[int, list[int]]:
    """One object in a zspage of several pages (class 1232: 4 pages on v4.8, 7 on mainline)."""
    h = pool.zs_malloc(1200, GFP_ZS)
    pfn = pool.object_location(h)[0]
    return h, pool.zspage_pages(pool.get_zspage(pfn))


def test_v48_empty_isolated_zspage_migrate_ebusy_then_deferred_free() -> None:
    m, pool = make("v4.8")
    h, pages = _lone_object_zspage(pool)
    head, got = isolate(m, pages[:1])
    assert got == pages[:1]
    zspage = pool.get_zspage(pages[0])
    assert zspage.isolated == 1
    pool.zs_free(h)  # the zspage empties while isolated: zs_page_putback will free it
    assert zspage.inuse == 0 and pool.zspages
    rc, stats = migrate(m, head)
    assert rc == 1 and stats.nr_failed_pages == 1  # zs_page_migrate: -EBUSY, put back
    assert pool.free_work_pending  # putback found it empty and kicked the work
    assert m.vmstat["pgmigrate_fail"] == 1
    m.check_state()
    pool.flush_work()
    assert not pool.zspages and pool.zs_get_total_pages() == 0 and nr_zspages(m) == 0
    m.check_state()


@pytest.mark.parametrize("profile", ["v4.8", "mainline"])
def test_isolating_an_empty_zspage(profile: str) -> None:
    """v4.8 refuses to isolate an empty zspage; v4.14+ isolates and migrates it."""
    m, pool = make(profile)
    pool.auto_run_work = False
    h, pages = _lone_object_zspage(pool)
    # A page lock held elsewhere makes zs_free defer the free (trylock_zspage fails).
    assert trylock_page(m, pages[1])
    pool.zs_free(h)
    unlock_page(m, pages[1])
    assert pool.free_work_pending and len(pool.zspages) == 1
    head, got = isolate(m, pages)
    if profile == "v4.8":
        assert got == [] and m.mem.list_empty(head)
        m.release_list_head(head)
    else:
        assert got == pages
        rc, stats = migrate(m, head)
        assert rc == 0 and stats.nr_succeeded == len(pages)
    m.check_state()
    pool.flush_work()
    assert not pool.zspages and nr_zspages(m) == 0
    m.check_state()


def test_mainline_reader_makes_migration_fail_einval() -> None:
    m, pool = make("mainline")
    h = pool.zs_malloc(300, GFP_ZS)
    pool.zs_obj_write(h, b"z" * 300)
    assert pool.zs_obj_read_begin(h, 300) == b"z" * 300  # holds the zspage read lock
    pfn = pool.object_location(h)[0]
    head, got = isolate(m, [pfn])
    assert got == [pfn]
    rc, stats = migrate(m, head)
    assert rc == 1 and stats.nr_failed_pages == 1  # -EINVAL: given up, put back
    assert pool.object_location(h)[0] == pfn and not pf.PageIsolated(m.mem, pfn)
    m.check_state()
    pool.zs_obj_read_end(h)
    head, _ = isolate(m, [pfn])
    rc, stats = migrate(m, head)
    assert rc == 0 and pool.object_location(h)[0] != pfn
    assert pool.zs_obj_read(h, 300) == b"z" * 300
    m.check_state()


def test_mainline_zspage_freed_while_isolated() -> None:
    """The designed-in race: the driver releases a page the VM holds isolated."""
    m, pool = make("mainline")
    h, pages = _lone_object_zspage(pool)
    head, got = isolate(m, pages[:2])
    pool.zs_free(h)  # mainline frees the zspage at once, isolated pages included
    for pfn in got:
        assert m.mem.mapping_mv[pfn] == pf.PAGE_MAPPING_MOVABLE  # __ClearPageMovable kept 0x2
        assert m.mem.refcount_mv[pfn] == 1  # only the VM's isolation reference
    m.check_state()
    rc, stats = migrate(m, head)
    assert rc == 0 and stats.nr_succeeded == 2  # "freed under us" counts as success
    assert nr_zspages(m) == 0
    m.check_state()


def test_v48_isolation_takes_zspage_off_the_lists() -> None:
    m, pool = make("v4.8")
    h1 = pool.zs_malloc(1200, GFP_ZS)
    pages = pool.zspage_pages(pool.get_zspage(pool.object_location(h1)[0]))
    head, _ = isolate(m, pages[:1])
    # No allocation may land in an isolated zspage: the next object opens a new zspage.
    h2 = pool.zs_malloc(1200, GFP_ZS)
    assert pool.object_location(h2)[0] not in pages
    m.check_state()
    rc, _ = migrate(m, head)
    assert rc == 0
    zspage = pool.get_zspage(pool.object_location(h1)[0])
    assert zspage.isolated == 0 and zspage.fullness == pool.get_fullness_group(
        pool.class_of(h1), zspage)
    m.check_state()


def test_mainline_empty_zspage_stats_after_deferred_free() -> None:
    m, pool = make("mainline")
    pool.auto_run_work = False
    h, pages = _lone_object_zspage(pool)
    assert trylock_page(m, pages[0])
    pool.zs_free(h)
    unlock_page(m, pages[0])
    klass = pool.size_class[pool.get_zspage(pages[0]).klass]
    assert klass.stats[ZS_INUSE_RATIO_0] == 1
    pool.flush_work()
    assert klass.stats[ZS_INUSE_RATIO_0] == 0
    m.check_state()


# --- the stateful test --------------------------------------------------------------------------

SIZES = st.one_of(st.integers(1, 120), st.integers(121, 1500), st.integers(1500, 4096))


class ZsmallocModel(RuleBasedStateMachine):
    """Random programs of zs_malloc / zs_free / writes / zs_compact / page migration.

    Migration isolates random zspage pages, lets the pool free and allocate objects while
    they are isolated (the races the framework is designed for), then runs migrate_pages
    with targets from the page allocator and puts back leftovers. On mainline pools readers
    may hold objects (zs_obj_read_begin) across migrations. After every step every stored
    object must read back intact and ``m.check_state()`` must be clean.
    """

    PROFILE = "mainline"

    def __init__(self) -> None:
        super().__init__()
        self.m = Machine.build(memory="32M", profile=self.PROFILE, seed=5)
        self.pool = zs_create_pool(self.m, "hyp")
        self.objects: dict[int, bytes] = {}
        self.reading: set[int] = set()
        self.mainline = not self.pool.config.legacy_locking

    def _free_one(self, data: st.DataObject) -> None:
        candidates = sorted(set(self.objects) - self.reading)
        if candidates:
            h = data.draw(st.sampled_from(candidates))
            self.pool.zs_free(h)
            del self.objects[h]

    def _malloc(self, size: int, seed: int) -> None:
        h = self.pool.zs_malloc(size, GFP_ZS)
        assert h > 0
        payload = random.Random(seed).randbytes(size)
        self.pool.zs_obj_write(h, payload)
        self.objects[h] = payload

    @rule(size=SIZES, seed=st.integers(0, 2**32))
    def malloc(self, size: int, seed: int) -> None:
        self._malloc(size, seed)

    @rule(size=SIZES, count=st.integers(10, 80), seed=st.integers(0, 2**32))
    def malloc_burst(self, size: int, count: int, seed: int) -> None:
        for i in range(count):
            self._malloc(size, seed + i)

    @precondition(lambda self: len(self.objects) > len(self.reading))
    @rule(data=st.data())
    def free(self, data: st.DataObject) -> None:
        self._free_one(data)

    @precondition(lambda self: len(self.objects) > len(self.reading))
    @rule(seed=st.integers(0, 2**32), share=st.floats(0.3, 1.0))
    def free_burst(self, seed: int, share: float) -> None:
        candidates = sorted(set(self.objects) - self.reading)
        for h in random.Random(seed).sample(candidates, int(len(candidates) * share)):
            self.pool.zs_free(h)
            del self.objects[h]

    @precondition(lambda self: len(self.objects) > len(self.reading))
    @rule(data=st.data(), seed=st.integers(0, 2**32))
    def rewrite(self, data: st.DataObject, seed: int) -> None:
        h = data.draw(st.sampled_from(sorted(set(self.objects) - self.reading)))
        buf = self.pool.zs_map_object(h, ZS_MM_RW)
        assert bytes(buf[: len(self.objects[h])]) == self.objects[h]
        new = random.Random(seed).randbytes(len(self.objects[h]))
        buf[: len(new)] = new
        self.pool.zs_unmap_object(h)
        self.objects[h] = new

    @rule()
    def compact(self) -> None:
        self.pool.zs_compact()

    @rule()
    def flush_work(self) -> None:
        self.pool.flush_work()

    @precondition(lambda self: self.pool.pages())
    @rule(data=st.data(), mode=st.sampled_from(list(MigrateMode)),
          frees=st.integers(0, 3), mallocs=st.lists(st.tuples(SIZES, st.integers(0, 99)),
                                                     max_size=2))
    def migrate_pages(self, data: st.DataObject, mode: MigrateMode, frees: int,
                      mallocs: list[tuple[int, int]]) -> None:
        pages = sorted(self.pool.pages())
        chosen = data.draw(st.lists(st.sampled_from(pages), unique=True, min_size=1,
                                    max_size=min(6, len(pages))))
        head, _ = isolate(self.m, chosen)
        for _ in range(frees):
            self._free_one(data)
        for size, seed in mallocs:
            self._malloc(size, seed)
        migrate(self.m, head, mode)

    @precondition(lambda self: self.mainline and len(self.objects) > len(self.reading))
    @rule(data=st.data())
    def begin_read(self, data: st.DataObject) -> None:
        h = data.draw(st.sampled_from(sorted(set(self.objects) - self.reading)))
        assert self.pool.zs_obj_read_begin(h, len(self.objects[h])) == self.objects[h]
        self.reading.add(h)

    @precondition(lambda self: self.reading)
    @rule(data=st.data())
    def end_read(self, data: st.DataObject) -> None:
        h = data.draw(st.sampled_from(sorted(self.reading)))
        self.pool.zs_obj_read_end(h)
        self.reading.discard(h)

    @invariant()
    def every_object_intact_and_state_clean(self) -> None:
        self.m.check_state()
        for h, payload in self.objects.items():
            if h in self.reading:
                pfn, off = self.pool.object_location(h)
                got = self.pool._read_bytes(pfn, off + ZS_HANDLE_SIZE * (
                    self.pool.class_of(h).objs_per_zspage != 1), len(payload))
                assert bytes(got) == payload
            else:
                assert self.pool.zs_obj_read(h, len(payload)) == payload

    def teardown(self) -> None:
        for h in list(self.reading):
            self.pool.zs_obj_read_end(h)
        for h in list(self.objects):
            self.pool.zs_free(h)
        self.pool.flush_work()
        assert nr_zspages(self.m) == 0 and self.pool.zs_get_total_pages() == 0
        self.m.check_state()


class ZsmallocModelV48(ZsmallocModel):
    PROFILE = "v4.8"


_STATEFUL = settings(max_examples=max(10, settings.default.max_examples // 3),
                     stateful_step_count=30, deadline=None)
TestZsmallocMainline = ZsmallocModel.TestCase
TestZsmallocMainline.settings = _STATEFUL
TestZsmallocV48 = ZsmallocModelV48.TestCase
TestZsmallocV48.settings = _STATEFUL
