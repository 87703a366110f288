"""Shrinkers (mm/shrinker.c): the scan target per priority, deferral, batching, and zsmalloc's
shrinker compacting zram's pool when reclaim runs."""

from __future__ import annotations

import numpy as np
import pytest

from pagelab import Machine
from pagelab.drivers.zram import ContentModel, Zram
from pagelab.mm import gfp as G
from pagelab.mm import vmstat as vs
from pagelab.mm.shrinker import (
    SHRINK_BATCH,
    SHRINK_EMPTY,
    SHRINK_STOP,
    ShrinkControl,
    Shrinker,
    do_shrink_slab,
    register_shrinker,
    shrink_slab,
    unregister_shrinker,
)
from pagelab.mm.swapfile import swapon


class Cache:
    """A cache of ``objects`` objects; each scan frees what it is asked to (or stops)."""

    def __init__(self, objects: int, stop_after: int | None = None) -> None:
        self.objects = objects
        self.scans: list[int] = []
        self.stop_after = stop_after

    def count(self, sc: ShrinkControl) -> int:
        return self.objects

    def scan(self, sc: ShrinkControl) -> int:
        if self.stop_after is not None and len(self.scans) >= self.stop_after:
            return SHRINK_STOP
        self.scans.append(sc.nr_to_scan)
        freed = min(sc.nr_to_scan, self.objects)
        self.objects -= freed
        return freed


def shrinker_for(cache: Cache, seeks: int = 2, batch: int = 0) -> Shrinker:
    return Shrinker("test", count_objects=cache.count, scan_objects=cache.scan, seeks=seeks,
                    batch=batch)


def slabs_scanned(m: Machine) -> int:
    return int(m.vm_events[vs.SLABS_SCANNED])


def test_scan_target_follows_priority_and_the_rest_is_deferred() -> None:
    m = Machine.build(memory="64M")
    cache = Cache(1 << 20)
    s = shrinker_for(cache)
    # priority 12: delta = (2^20 >> 12) * 4 / 2 = 512 objects, in batches of 128.
    assert do_shrink_slab(m, ShrinkControl(G.GFP_KERNEL, 0), s, 12) == 512
    assert cache.scans == [SHRINK_BATCH] * 4
    assert slabs_scanned(m) == 512 and s.nr_deferred == 0
    # A small cache at low pressure: nothing scanned now, the target is deferred.
    small = Cache(1000)
    t = shrinker_for(small)
    assert do_shrink_slab(m, ShrinkControl(G.GFP_KERNEL, 0), t, 12) == 0
    assert small.scans == [] and t.nr_deferred == 0  # (1000 >> 12) * 4 / 2 == 0
    # delta = (1000 >> 2) * 4 / 2 = 500: three batches of 128, then 116 left (less than a
    # batch and less than the cache stops the loop), so 116 are deferred.
    assert do_shrink_slab(m, ShrinkControl(G.GFP_KERNEL, 0), t, 2) == 384
    assert small.scans == [128, 128, 128]
    assert t.nr_deferred == 500 - 384
    # Deferred work comes back (>> priority) on the next call.
    before = len(small.scans)
    do_shrink_slab(m, ShrinkControl(G.GFP_KERNEL, 0), t, 0)
    assert len(small.scans) > before


def test_total_scan_is_capped_at_twice_the_cache_and_stop_ends_the_round() -> None:
    m = Machine.build(memory="64M")
    cache = Cache(100)
    s = shrinker_for(cache, seeks=0)  # seeks 0: half the cache
    s.nr_deferred = 10_000
    # total_scan = min(10_000 + 50, 200): one batch of 128 (which empties the cache), then
    # 72 left is below both the batch and the cache's 100.
    assert do_shrink_slab(m, ShrinkControl(G.GFP_KERNEL, 0), s, 0) == 100
    assert cache.scans == [SHRINK_BATCH]
    assert s.nr_deferred == 200  # min(10_000 + 50 - 128, 2 * 100)
    stopping = Cache(1 << 16, stop_after=1)
    t = shrinker_for(stopping)
    assert do_shrink_slab(m, ShrinkControl(G.GFP_KERNEL, 0), t, 0) == SHRINK_BATCH
    assert stopping.scans == [SHRINK_BATCH]
    # Empty caches are not scanned and shrink_slab counts nothing for them.
    empty = Shrinker("empty", count_objects=lambda sc: SHRINK_EMPTY,
                     scan_objects=lambda sc: pytest.fail("scanned an empty cache"))
    register_shrinker(m, empty)
    assert shrink_slab(m, G.GFP_KERNEL, 0, 0) == 0
    unregister_shrinker(m, empty)
    assert m.shrinkers == []


def test_reclaim_compacts_zrams_pool_through_its_shrinker() -> None:
    m = Machine.build(memory="128M", seed=3, thp=False)
    z = Zram(m, disksize="128M", content=ContentModel(0.6, seed=3))
    swapon(m, z)
    m.swappiness = 100
    pool = z.pool
    assert pool.shrinker in m.shrinkers
    task = m.spawn("app")
    task.touch(40_000)  # more than memory: much of it goes to zram
    m.run_background()
    assert m.vmstat["pswpout"] > 10_000
    # Free every other swapped page: the pool's zspages are left half empty.
    swapped = np.flatnonzero(task.pte[: task.next_vpn] < 0)
    for vpn in swapped[::2]:
        task.munmap(int(vpn), 1)
    assert pool.zs_shrinker_count() > 0
    compacted_before = pool.pages_compacted
    # More pressure: reclaim runs the shrinker, which compacts the pool.
    task.touch(20_000)
    m.run_background()
    assert pool.shrinker.freed > 0 and pool.pages_compacted > compacted_before
    assert slabs_scanned(m) > 0
    assert int(z.mm_stat().split()[6]) == pool.pages_compacted  # mm_stat's pages_compacted
    task.access(np.arange(task.next_vpn)[task.pte[: task.next_vpn] != 0])
    assert task.verify() == []
    m.check_state()


def test_v48_target_is_the_share_of_the_lru_scanned() -> None:
    m = Machine.build(memory="64M", profile="v4.8")
    cache = Cache(1 << 20)
    s = shrinker_for(cache)
    # 1,000 of 100,000 LRU pages scanned: delta = 4 * 1000 / 2 * 2^20 / 100,001 = 20,971,
    # priority plays no part; 163 batches go, and the 107 left over are deferred whole.
    freed = do_shrink_slab(m, ShrinkControl(G.GFP_KERNEL, 0), s, 12, nr_scanned=1000,
                           nr_eligible=100_000)
    assert freed == 163 * SHRINK_BATCH and s.nr_deferred == 20_971 - freed
    assert do_shrink_slab(m, ShrinkControl(G.GFP_KERNEL, 0), s, 0, nr_scanned=0,
                          nr_eligible=100_000) == 0  # 107 deferred: less than a batch
    assert s.nr_deferred == 107


def test_v48_small_delta_cannot_wind_up_more_than_half_the_cache() -> None:
    m = Machine.build(memory="64M", profile="v4.8")
    cache = Cache(1000)
    s = shrinker_for(cache)
    s.nr_deferred = 1_000_000  # work deferred by many GFP_NOFS calls
    do_shrink_slab(m, ShrinkControl(G.GFP_KERNEL, 0), s, 12, nr_scanned=32,
                   nr_eligible=1_000_000)
    assert cache.scans == [128, 128, 128]  # min(nr + delta, 1000 / 2) = 500 objects
    assert s.nr_deferred == 500 - 384


def test_v48_shrink_slab_counts_an_empty_round_as_a_cluster() -> None:
    m = Machine.build(memory="64M", profile="v4.8")
    cache = Cache(1000)
    s = shrinker_for(cache)
    register_shrinker(m, s)
    shrink_slab(m, G.GFP_KERNEL, 0, 12, nr_scanned=0, nr_eligible=1000)
    # SWAP_CLUSTER_MAX = 32 pages "scanned": delta = 4 * 32 / 2 * 1000 / 1001 = 63.
    assert cache.scans == [] and s.nr_deferred == 63
    unregister_shrinker(m, s)
