"""The phone workload: deterministic from its seed, nothing lost, bad configurations refused."""

from __future__ import annotations

import numpy as np
import pytest

from pagelab import Machine
from pagelab.errors import BadConfiguration, InvalidArgument
from pagelab.workloads.phone import (
    GFP_SKB_FRAG,
    GFP_SLAB_HIGH,
    KINDS,
    Phone,
    PhoneConfig,
    mixed_pageblocks,
    pageblock_map,
)

SMALL = PhoneConfig(memory="640M", duration=2.0, cached_apps=2, seed=5)


def run_small(profile: str, config: PhoneConfig = SMALL) -> tuple[Machine, Phone]:
    m = Machine.build(memory=config.memory, profile=profile, seed=config.seed,
                      page_owner=True, thp=False)
    phone = Phone(m, config)
    phone.run()
    m.check_state()
    return m, phone


@pytest.mark.parametrize("profile", ["pre-4.8", "v4.8"])
def test_a_run_is_reproducible_bit_for_bit(profile: str) -> None:
    m1, p1 = run_small(profile)
    m2, p2 = run_small(profile)
    c1, c2 = p1.requests.columns(), p2.requests.columns()
    for key in c1:
        assert np.array_equal(c1[key], c2[key]), key
    assert m1.vm_events == m2.vm_events
    assert m1.procfs("pagetypeinfo") == m2.procfs("pagetypeinfo")
    assert p1.samples == p2.samples


def test_the_run_makes_every_kind_of_request_and_gives_everything_back() -> None:
    config = PhoneConfig(memory="640M", duration=6.0, cached_apps=3, seed=3, camera_chunks=4,
                         lmk=False)
    m, phone = run_small("v4.8", config)
    kinds = set(phone.requests.columns()["kind"])
    assert {"fork", "slab", "skb"} <= kinds
    assert m.vmstat["pswpout"] > 0  # memory pressure swapped to zram
    assert phone.samples and phone.samples[-1]["time_s"] <= config.duration + 1
    mt, used = pageblock_map(m)
    assert len(mt) == len(used) == (m.max_pfn >> 9) - (m.ranges[0].start_pfn >> 9)
    assert ((used >= 0) & (used <= 1)).all()
    assert mixed_pageblocks(m) >= 0
    phone.release_all()
    m.check_state()
    assert m.swap is not None and m.swap.inuse_pages == 0
    assert not m.allocations()


def test_the_low_memory_killer_ends_cached_apps_and_nothing_leaks() -> None:
    # 640 MiB under a 1080p phone's levels (72..180 MiB): the killer, not the app limit,
    # decides who goes; it never touches system_server.
    config = PhoneConfig(memory="640M", duration=6.0, cached_apps=16, seed=3)
    m, phone = run_small("v4.8", config)
    lmk = phone.lmk
    assert lmk is not None and lmk.kills
    # Each victim was at or above the level reached, never the app in use (adj 0).
    assert all(k.oom_score_adj >= max(k.min_score_adj, 700) for k in lmk.kills)
    assert all(k.other_free < k.minfree and k.other_file < k.minfree for k in lmk.kills)
    assert phone.kills >= len(lmk.kills)
    assert not phone.system.mm.dead and phone.system.mm.oom_score_adj == -900
    assert all(not app.mm.dead for app in phone.apps.values())
    adj = sorted(app.mm.oom_score_adj for app in phone.apps.values())
    assert adj[:2] == [0, 700] and all(900 <= a <= 906 for a in adj[2:])
    phone.release_all()
    m.check_state()
    assert not m.allocations()


def test_pre_48_drivers_allocate_unmovable_pages() -> None:
    _m, phone = run_small("pre-4.8")
    assert phone.gpu is not None and not phone.gpu.movable
    assert phone.zram is not None
    _m2, phone2 = run_small("v4.8")
    assert phone2.gpu is not None and phone2.gpu.movable
    # Drivers that do not use the framework keep their pages unmovable on v4.8 too.
    from dataclasses import replace

    from pagelab.mm.page_alloc import get_pageblock_migratetype
    from pagelab.mm.page_flags import __PageMovable as page_movable

    m3, phone3 = run_small("v4.8", replace(SMALL, gpu_movable=False, zram_movable=False))
    gpu, zram = phone3.gpu, phone3.zram
    assert gpu is not None and not gpu.movable
    assert zram is not None and not zram.pool.config.movable
    assert not any(page_movable(m3.mem, pfn) for pfn in zram.pool.pages())
    pages = [pfn for bo in gpu.bos.values() for pfn in bo.pages]
    assert pages and not any(page_movable(m3.mem, pfn) for pfn in pages)
    assert any(get_pageblock_migratetype(m3, pfn) != 1 for pfn in pages)  # not MOVABLE


@pytest.mark.parametrize(("field", "value", "error"), [
    ("memory", "256M", BadConfiguration), ("memory", "64G", BadConfiguration),
    ("duration", -1.0, InvalidArgument), ("cached_apps", 0, InvalidArgument),
    ("zram_fraction", 5.0, InvalidArgument), ("swappiness", 300, InvalidArgument),
    ("slab_rate", -1.0, InvalidArgument), ("memory", "-1G", InvalidArgument),
])
def test_impossible_configurations_are_refused(field: str, value: object,
                                               error: type[Exception]) -> None:
    from dataclasses import replace

    with pytest.raises(error):
        replace(SMALL, **{field: value}).validate()


def test_kinds_have_the_orders_of_the_seed() -> None:
    assert KINDS == {"fork": 2, "slab": 3, "skb": 3, "dmabuf": 4}


def test_a_failed_order_3_try_falls_back_to_smaller_blocks() -> None:
    m = Machine.build(memory="640M", profile="v4.8", seed=1, page_owner=True, thp=False)
    phone = Phone(m, SMALL)
    real = phone._timed_alloc

    def no_order_3(kind: str, gfp: int) -> int | None:
        if KINDS[kind] == 3:
            phone.requests.add(m.clock.now_ns, kind, False, 0)
            return None
        return real(kind, gfp)

    phone._timed_alloc = no_order_3  # type: ignore[method-assign]
    phone._kernel_alloc("slab", GFP_SLAB_HIGH, lifetime_s=60.0)
    phone._kernel_alloc("skb", GFP_SKB_FRAG, lifetime_s=0.5)
    assert [order for _, _, order in phone.held] == [1, 0]
    assert [m.allocations()[pfn] for _, pfn, _ in phone.held] == [1, 0]
    cols = phone.requests.columns()
    assert list(cols["kind"][-2:]) == ["slab", "skb"] and not cols["ok"][-2:].any()
    phone.release_all()
    m.check_state()
    assert not m.allocations()


def test_order_3_tries_never_reclaim_and_camera_buffers_come_from_ion() -> None:
    from pagelab.mm import gfp as G

    assert not GFP_SLAB_HIGH & G.__GFP_RECLAIM  # SLUB's first try wakes nobody (v4.6+)
    assert not GFP_SKB_FRAG & G.__GFP_DIRECT_RECLAIM and GFP_SKB_FRAG & G.__GFP_KSWAPD_RECLAIM
    m = Machine.build(memory="640M", profile="v4.8", seed=1, page_owner=True, thp=False)
    phone = Phone(m, SMALL)
    camera = next(spec for spec in phone.catalogue if spec.camera)
    phone.switch_to(camera)
    for _ in range(3):
        phone._camera_frame()
    # The first frame's eight order-4 blocks came from the page allocator ...
    dmabuf = phone.requests.columns()["kind"] == "dmabuf"
    assert dmabuf.sum() == 24
    for _, buffer in phone.camera_bufs:
        phone.ion.free(buffer)
    phone.camera_bufs = []
    assert phone.ion.pooled_pages() == 24 * 16
    # ... and a freed buffer's blocks serve the next frame.
    phone._camera_frame()
    assert (phone.requests.columns()["kind"] == "dmabuf").sum() == 24
    phone.release_all()
    m.check_state()


def test_the_pageblock_map_starts_at_the_first_ram() -> None:
    """An arm64 phone's RAM starts at 2 GiB: the map leaves out the hole below it."""
    m = Machine.build(memory="640M", arch="arm64", profile="v4.8", thp=False)
    mt, used = pageblock_map(m)
    assert len(mt) == (640 << 20) >> 21  # 2 MiB pageblocks, no hole cells
    assert (mt >= 0).all() and len(used) == len(mt)
