"""Tests for pagelab.drivers.zram: round trips through migration and compaction, mm_stat,
same-filled and incompressible pages, mem_limit, and the pre-4.8 unmovable pool."""

from __future__ import annotations

import random
import re
import zlib

import lz4.block
import pytest

from pagelab import Machine
from pagelab.drivers.zram import ContentModel, Zram, page_same_filled
from pagelab.errors import InvalidArgument
from pagelab.mm import gfp as G
from pagelab.mm import migrate as mg
from pagelab.mm.migrate import MigrateMode, MigrateReason
from pagelab.mm.mmzone import MIGRATE_MOVABLE, MIGRATE_UNMOVABLE

PAGE = 4096


def migrate_all(m: Machine, z: Zram) -> int:
    """Isolate every zsmalloc page of the device and migrate it; return pages moved."""
    head = m.alloc_list_head()
    for pfn in z.pool.pages():
        if mg.isolate_movable_page(m, pfn, 0):
            if m.profile.nr_isolated_v48:
                mg.mod_isolated(m, pfn, 1)
            m.mem.list_add_tail(pfn, head)
    rc, stats = mg.migrate_pages(
        m, head, lambda old: m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE, 0, 0), None,
        MigrateMode.MIGRATE_SYNC, MigrateReason.MR_COMPACTION)
    if not m.mem.list_empty(head):
        mg.putback_movable_pages(m, head)
    m.release_list_head(head)
    assert rc == 0
    return stats.nr_succeeded


@pytest.mark.parametrize("profile", ["mainline", "v4.8"])
def test_round_trip_through_migration_and_compaction(profile: str) -> None:
    m = Machine.build(memory="128M", profile=profile, seed=2)
    content = ContentModel(compressibility=0.5, spread=0.5, same_filled=0.1, seed=9)
    z = Zram(m, "32M", content=content)
    rng = random.Random(4)
    expected: dict[int, bytes] = {}
    for i in range(1500):
        token = rng.randrange(1, 1 << 30)
        assert z.write_token(i, token) == 0
        expected[i] = content.page(token)
    # Incompressible pages and raw writes too.
    for i in range(1500, 1520):
        data = rng.randbytes(PAGE)
        assert z.write_page(i, data) == 0
        expected[i] = data
    for i in rng.sample(range(1520), 700):  # swap frees two thirds of some classes
        z.discard(i)
        expected[i] = bytes(PAGE)
    for i in rng.sample(range(1520), 100):  # overwrite some slots
        data = content.page(rng.randrange(1, 1 << 30))
        assert z.write_page(i, data) == 0
        expected[i] = data
    m.check_state()
    moved = migrate_all(m, z)
    assert moved == z.pool.zs_get_total_pages()
    before = z.pool.zs_get_total_pages()
    z.compact()
    assert z.pool.zs_get_total_pages() < before
    assert z.pool.pages_compacted == before - z.pool.zs_get_total_pages()
    migrate_all(m, z)
    m.check_state()
    for i, data in expected.items():
        assert z.read_page(i) == data, i
    assert m.vmstat["nr_zspages"] == z.pool.zs_get_total_pages()


MM_STAT_9 = re.compile(r"^(?: *\d+ ){8} *\d+\n$")


def test_mm_stat_format_mainline() -> None:
    m = Machine.build(memory="128M", seed=1)
    z = Zram(m, "16M", mem_limit="8M", content=ContentModel(0.7, seed=1))
    # The kernel's printf format (mm_stat_show), kept as printf on purpose.
    assert z.mm_stat() == "%8d %8d %8d %8d %8d %8d %8d %8d %8d\n" % (  # noqa: UP031
        0, 0, 0, 8 << 20, 0, 0, 0, 0, 0)
    sizes = 0
    for i in range(200):
        data = z.content.page(i + 1)
        sizes += len(lz4.block.compress(data, store_size=False))
        assert z.write_page(i, data) == 0
    z.write_page(200, bytes(PAGE))
    z.write_page(201, random.Random(1).randbytes(PAGE))
    z.compact()
    text = z.mm_stat()
    assert MM_STAT_9.match(text), repr(text)
    pool = z.pool
    assert text == "%8d %8d %8d %8d %8d %8d %8d %8d %8d\n" % (  # noqa: UP031
        202 * PAGE, sizes + PAGE, pool.zs_get_total_pages() * PAGE, 8 << 20,
        z.stats.max_used_pages * PAGE, 1, pool.pages_compacted, 1, 1)
    assert all(len(field) >= 8 for field in re.findall(r" *\d+", text))


def test_mm_stat_format_v48() -> None:
    m = Machine.build(memory="128M", profile="v4.8", seed=1)
    z = Zram(m, "16M")
    z.write_page(0, bytes(PAGE))
    z.write_page(1, ContentModel(0.9).page(5))
    fields = z.mm_stat()[:-1].split()
    assert len(fields) == 7
    assert z.mm_stat() == "%8d %8d %8d %8d %8d %8d %8d\n" % (  # noqa: UP031
        PAGE, z.stats.compr_data_size, z.pool.zs_get_total_pages() * PAGE, 0,
        z.stats.max_used_pages * PAGE, 1, 0)  # v4.8: zero pages are not in orig_data_size


def test_same_filled_pages_take_no_memory() -> None:
    m = Machine.build(memory="64M", seed=1)
    z = Zram(m, "4M")
    filled = (0xDEADBEEF).to_bytes(8, "little") * 512
    assert page_same_filled(filled) == 0xDEADBEEF and page_same_filled(bytes(PAGE)) == 0
    assert page_same_filled(b"\x01" + bytes(PAGE - 1)) is None
    z.write_page(3, bytes(PAGE))
    z.write_page(4, filled)
    top = (1 << 64) - 1
    z.write_page(5, top.to_bytes(8, "little") * 512)
    assert z.pool.zs_get_total_pages() == 0 and z.stats.same_pages == 3
    assert z.stats.pages_stored == 3 and z.stats.compr_data_size == 0
    assert z.read_page(4) == filled and z.read_page(3) == bytes(PAGE)
    assert z.read_page(5) == b"\xff" * PAGE
    z.discard(4)
    assert z.stats.same_pages == 2 and z.read_page(4) == bytes(PAGE)
    m.check_state()


def test_v48_only_detects_zero_pages() -> None:
    m = Machine.build(memory="64M", profile="v4.8", seed=1)
    z = Zram(m, "4M")
    filled = (0xDEADBEEF).to_bytes(8, "little") * 512
    z.write_page(0, bytes(PAGE))
    z.write_page(1, filled)
    assert z.stats.same_pages == 1  # zero_pages
    assert z.stats.pages_stored == 1 and z.pool.zs_get_total_pages() > 0
    assert z.read_page(1) == filled and z.read_page(0) == bytes(PAGE)
    m.check_state()


@pytest.mark.parametrize("profile", ["mainline", "v4.8"])
def test_incompressible_pages_are_stored_whole(profile: str) -> None:
    m = Machine.build(memory="64M", profile=profile, seed=1)
    z = Zram(m, "4M", content=ContentModel(compressibility=0.0, seed=3))
    assert z.write_token(7, 99) == 0
    data = z.content.page(99)
    assert z.obj_size[7] == PAGE and z.stats.compr_data_size == PAGE
    klass = z.pool.class_of(int(z.handle[7]))
    assert (klass.size, klass.pages_per_zspage, klass.objs_per_zspage) == (4096, 1, 1)
    if profile == "mainline":
        assert z.stats.huge_pages == 1 and z.stats.huge_pages_since == 1
        assert z.huge_class_size == 3625
    else:
        assert z.stats.huge_pages == 0  # v4.8 has no huge_pages stat
    assert z.read_page(7) == data
    migrate_all(m, z)
    assert z.read_page(7) == data
    z.discard(7)
    assert z.stats.huge_pages == 0 and z.stats.huge_pages_since == (profile == "mainline")
    m.check_state()


def test_compressibility_is_tunable() -> None:
    def mean_size(c: float) -> float:
        model = ContentModel(compressibility=c, seed=1)
        sizes = [len(zlib.compress(model.page(token), 1, -12)) for token in range(1, 40)]
        return sum(sizes) / len(sizes)

    means = [mean_size(c) for c in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert means == sorted(means, reverse=True)
    assert means[0] > 4000 and means[-1] < 200
    model = ContentModel(0.5, seed=2)
    assert model.page(17) == model.page(17) != model.page(18)
    assert len(model.page(17)) == PAGE
    with pytest.raises(InvalidArgument, match="between 0 and 1"):
        ContentModel(1.5)


@pytest.mark.parametrize("profile,wants,movable", [
    ("mainline", True, True), ("v4.8", True, True), ("pre-4.8", True, False),
    ("v4.8", False, False),  # v4.8 without the seed's zram patch
])
def test_zsmalloc_pages_movable_only_from_v48(profile: str, wants: bool, movable: bool) -> None:
    m = Machine.build(memory="64M", profile=profile, seed=1)
    z = Zram(m, "4M", content=ContentModel(0.6), movable=wants)
    for i in range(30):
        z.write_token(i, i + 1)
    assert all(z.read_page(i) == z.content.page(i + 1) for i in range(30))
    pages = z.pool.pages()
    assert pages
    for pfn in pages:
        assert m.mem.alloc_mt[pfn] == (MIGRATE_MOVABLE if movable else MIGRATE_UNMOVABLE)
    head = m.alloc_list_head()
    isolated = [pfn for pfn in pages if mg.isolate_movable_page(m, pfn, 0)]
    assert bool(isolated) == movable
    for pfn in isolated:
        if m.profile.nr_isolated_v48:
            mg.mod_isolated(m, pfn, 1)
        m.mem.list_add_tail(pfn, head)
    mg.putback_movable_pages(m, head)
    m.release_list_head(head)
    m.check_state()


@pytest.mark.parametrize("profile", ["mainline", "v4.8"])
def test_mem_limit(profile: str) -> None:
    m = Machine.build(memory="64M", profile=profile, seed=1)
    z = Zram(m, "16M", mem_limit="256K", content=ContentModel(0.3, seed=5))
    results = [z.write_token(i, i + 1) for i in range(400)]
    assert -12 in results  # -ENOMEM once the pool reaches the limit
    assert z.stats.failed_writes == results.count(-12)
    assert z.pool.zs_get_total_pages() <= 64
    assert z.stats.max_used_pages <= 64 + 8
    m.check_state()
    z.set_mem_limit(0)
    assert z.write_token(399, 400) == 0


def test_discard_notify_reset() -> None:
    m = Machine.build(memory="64M", seed=1)
    z = Zram(m, "4M")
    for i in range(20):
        z.write_token(i, i + 1)
    z.discard(0, 5)
    z.slot_free_notify(5)
    assert z.stats.notify_free == 6 and z.stats.pages_stored == 14
    with pytest.raises(InvalidArgument, match="outside"):
        z.read_page(z.nr_pages)
    z.reset()
    assert m.vmstat["nr_zspages"] == 0
    m.check_state()
    with pytest.raises(InvalidArgument, match="was reset"):
        z.write_token(0, 1)


@pytest.mark.parametrize(("profile", "movable"), [("pre-4.8", 0), ("v4.8", G.__GFP_MOVABLE),
                                                  ("mainline", G.__GFP_MOVABLE)])
def test_handle_allocation_stages(profile: str, movable: int) -> None:
    """v4.7 and v4.8 try without direct reclaim first, count a write stall, then retry with
    GFP_NOIO; only the seed's kernel and later add __GFP_MOVABLE; v6.15 has one stage."""
    m = Machine.build(memory="64M", profile=profile, seed=1)
    z = Zram(m, "4M")
    seen: list[int] = []
    real = z.pool.zs_malloc

    def failing_first(size: int, gfp: int) -> int:
        seen.append(gfp)
        return 0 if len(seen) == 1 else real(size, gfp)

    z.pool.zs_malloc = failing_first  # type: ignore[method-assign]
    rc = z.write_token(0, 7)
    if profile == "mainline":
        assert seen == [G.GFP_NOIO | G.__GFP_HIGHMEM | G.__GFP_MOVABLE]
        assert rc < 0 and z.stats.writestall == 0
        return
    assert rc == 0 and z.read_page(0) == z.content.page(7)
    assert seen == [G.__GFP_KSWAPD_RECLAIM | G.__GFP_NOWARN | G.__GFP_HIGHMEM | movable,
                    G.GFP_NOIO | G.__GFP_HIGHMEM | movable]
    assert z.stats.writestall == 1
    assert z.stats.pages_stored == 1
