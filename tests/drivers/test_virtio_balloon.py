"""Tests for pagelab.drivers.virtio_balloon: inflate, deflate, migration and what the host
sees, under every balloon profile."""

from __future__ import annotations

import pytest

from pagelab import KernelProfile, Machine
from pagelab.drivers.virtio_balloon import Balloon
from pagelab.errors import InvalidArgument, StateCheckFailed
from pagelab.mm import gfp as G
from pagelab.mm import migrate as mg
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.migrate import MigrateMode, MigrateReason

PROFILES = [
    "mainline", "v4.8", "pre-4.8",
    KernelProfile(name="no-balloon-compaction", balloon_compaction=False),
]


def profile_id(profile: str | KernelProfile) -> str:
    return profile if isinstance(profile, str) else profile.name


def free_pages(m: Machine) -> int:
    m.drain_all_pages()
    return sum(z.vm_stat[vs.NR_FREE_PAGES] for z in m.zones)


def isolate(m: Machine, pfns: list[int]) -> int:
    """Isolate balloon pages as compaction's migrate scanner does in this profile."""
    head = m.alloc_list_head()
    for pfn in pfns:
        if m.profile.non_lru_movable:
            assert mg.isolate_movable_page(m, pfn, 0)
            if m.profile.nr_isolated_v48:
                mg.mod_isolated(m, pfn, 1)
        else:  # v4.7: the balloon special case, counted by acct_isolated()
            assert m.balloon_isolate_hook is not None and m.balloon_isolate_hook(m, pfn, 0)
            mg.mod_isolated(m, pfn, 1)
        m.mem.list_add_tail(pfn, head)
    return head


def migrate(m: Machine, head: int, gfp: int = G.GFP_HIGHUSER_MOVABLE,
            mode: MigrateMode = MigrateMode.MIGRATE_SYNC) -> int:
    rc, _ = mg.migrate_pages(m, head, lambda p: m.alloc_page_raw(gfp, 0, 0), None, mode,
                             MigrateReason.MR_COMPACTION)
    if rc:
        mg.putback_movable_pages(m, head)
    m.release_list_head(head)
    return rc


@pytest.mark.parametrize("profile", PROFILES, ids=profile_id)
def test_inflate_and_deflate_give_pages_to_the_host_and_back(
        profile: str | KernelProfile) -> None:
    m = Machine.build(memory="128M", profile=profile)
    free = free_pages(m)
    managed = sum(z.managed_pages for z in m.zones)
    b = Balloon(m)
    assert b.inflate(300) == 300  # two virtqueue messages: 256 + 44
    assert b.num_pages == len(b.host_pfns) == 300
    assert m.vmstat["balloon_inflate"] == 300
    assert free_pages(m) == free - 300
    assert sum(z.managed_pages for z in m.zones) == managed - 300
    assert all(m.mem.token_mv[p] == 0 for p in b.host_pfns)  # the host has the contents
    m.check_state()
    assert b.deflate(100) == 100 and b.num_pages == len(b.host_pfns) == 200
    assert b.deflate(1000) == 200 and not b.host_pfns and b.num_pages == 0
    assert m.vmstat["balloon_deflate"] == 300 and m.vmstat["nr_balloon_pages"] == 0
    assert free_pages(m) == free and sum(z.managed_pages for z in m.zones) == managed
    m.check_state()


def test_nr_balloon_pages_follows_the_balloon_on_mainline() -> None:
    m = Machine.build(memory="128M")
    b = Balloon(m)
    b.inflate(10)
    assert m.vmstat["nr_balloon_pages"] == 10
    b.deflate(4)
    assert m.vmstat["nr_balloon_pages"] == 6


def test_deflate_on_oom_leaves_managed_pages_alone() -> None:
    m = Machine.build(memory="128M")
    managed = [z.managed_pages for z in m.zones]
    b = Balloon(m, deflate_on_oom=True)
    b.inflate(50)
    assert [z.managed_pages for z in m.zones] == managed


def test_inflate_stops_when_memory_runs_out() -> None:
    m = Machine.build(memory="64M")
    b = Balloon(m)
    got = b.inflate(1 << 20)
    assert 0 < got < 1 << 20 and b.num_pages == got  # "Out of puff!"
    m.check_state()
    assert b.deflate(got) == got
    m.check_state()


def test_negative_counts_are_refused() -> None:
    b = Balloon(Machine.build(memory="64M"))
    with pytest.raises(InvalidArgument, match="inflate"):
        b.inflate(-1)
    with pytest.raises(InvalidArgument, match="deflate"):
        b.deflate(-1)


@pytest.mark.parametrize("profile", PROFILES[:3], ids=profile_id)
def test_migration_moves_the_page_and_the_host_follows(profile: str) -> None:
    m = Machine.build(memory="128M", profile=profile)
    b = Balloon(m)
    b.inflate(8)
    before = set(b.host_pfns)
    moved = sorted(before)[:3]
    assert migrate(m, isolate(m, moved)) == 0
    assert m.vmstat["balloon_migrate"] == 3 and b.num_pages == 8
    kept = before - set(moved)
    new = b.host_pfns - kept  # a freed old pfn may come back as a later target
    assert len(new) == 3 and kept < b.host_pfns
    mem = m.mem
    for pfn in set(moved) - new:
        assert mem.refcount_mv[pfn] == 0 and mem.mapping_mv[pfn] == 0
        assert not pf.PageOffline(mem, pfn) and not pf.PageIsolated(mem, pfn)
    for pfn in new:
        assert pf.PageOffline(mem, pfn) and mem.refcount_mv[pfn] == 1
    assert sum(n.vm_stat[vs.NR_ISOLATED_FILE] for n in m.nodes) == 0
    m.check_state()
    assert b.deflate(8) == 8
    m.check_state()


def test_migratepage_returns_eagain_while_balloon_lock_is_held() -> None:
    m = Machine.build(memory="128M")
    b = Balloon(m)
    b.inflate(2)
    pfn = min(b.host_pfns)
    head = isolate(m, [pfn])
    calls: list[MigrateMode] = []
    inner = b.vb_dev_info.migratepage
    assert inner is not None

    def counting(m: Machine, dev, newpage: int, page: int, mode: MigrateMode) -> int:
        calls.append(mode)
        return inner(m, dev, newpage, page, mode)

    b.vb_dev_info.migratepage = counting
    with b.balloon_lock:  # inflating or deflating elsewhere: mutex_trylock fails
        assert migrate(m, head) == 1
    assert len(calls) == 10 and pfn in b.host_pfns
    assert m.vmstat["balloon_migrate"] == 0 and b.vb_dev_info.isolated_pages == 0
    m.check_state()
    assert migrate(m, isolate(m, [pfn])) == 0 and pfn not in b.host_pfns
    m.check_state()


def test_migration_to_another_zone_moves_the_managed_page() -> None:
    m = Machine.build(memory="128M")
    b = Balloon(m)
    b.inflate(1)
    (pfn,) = b.host_pfns
    src = m.page_zone(pfn)
    managed = {z.name: z.managed_pages for z in m.zones}
    assert migrate(m, isolate(m, [pfn]), gfp=G.GFP_KERNEL | G.__GFP_DMA) == 0
    (new,) = b.host_pfns
    dst = m.page_zone(new)
    assert dst is not src and dst.name == "DMA"
    assert src.managed_pages == managed[src.name] + 1
    assert dst.managed_pages == managed[dst.name] - 1
    m.check_state()


def test_deflate_skips_pages_isolated_for_migration() -> None:
    m = Machine.build(memory="128M")
    b = Balloon(m)
    b.inflate(4)
    held = sorted(b.host_pfns)[:2]
    head = isolate(m, held)
    assert b.deflate(4) == 2 and b.host_pfns == set(held) and b.num_pages == 2
    m.check_state()
    assert migrate(m, head) == 0
    assert b.deflate(4) == 2 and b.num_pages == 0
    m.check_state()


def test_check_reports_when_host_and_guest_disagree() -> None:
    m = Machine.build(memory="128M")
    b = Balloon(m)
    b.inflate(3)
    b.host_pfns.add(1)
    with pytest.raises(StateCheckFailed, match=r"host and guest disagree.*0x1"):
        m.check_state()
    b.host_pfns.discard(1)
    b.vb_dev_info.isolated_pages += 1
    with pytest.raises(StateCheckFailed, match="isolated_pages = 1"):
        m.check_state()
    b.vb_dev_info.isolated_pages -= 1
    m.check_state()


def test_check_reports_a_listed_page_with_a_wrong_mapping() -> None:
    m = Machine.build(memory="128M")
    b = Balloon(m)
    b.inflate(1)
    (pfn,) = b.host_pfns
    m.mem.mapping_mv[pfn] = pf.PAGE_MAPPING_MOVABLE
    with pytest.raises(StateCheckFailed, match="not the balloon's"):
        m.check_state()
