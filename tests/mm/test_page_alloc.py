"""Tests for pagelab.mm.page_alloc: the fast model against the slow oracle, and by hand.

The oracle is ``tests/reference/buddy.py`` (a dict-and-list transcription of Linux 6.18
``mm/page_alloc.c``). A Hypothesis state machine drives a Machine and the oracle with the same
allocations, frees, CPU switches and drains, and after every step requires them to agree on
the returned pfn, every free block in list order, every pcp list and pcp field, pageblock
types and the zone counters; ``check_state()`` must hold throughout. The unit tests below check
single kernel decisions against expectations worked out by hand from the kernel source.

Only the mainline profile is compared: the oracle does not model v4.8's __rmqueue_fallback
(see ``test_v48_fallback_keeps_free_lists_on_their_pageblock_type``). Machines are built
without the direct-compaction hook (:func:`build`): the oracle is the allocator alone.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from pagelab.machine import Machine
from pagelab.mm import debug
from pagelab.mm import page_alloc as pa
from pagelab.mm import vmstat as vs
from pagelab.mm.gfp import parse_gfp
from pagelab.mm.internal import (
    ALLOC_MIN_RESERVE,
    ALLOC_NON_BLOCK,
    ALLOC_OOM,
    MAX_COMPACT_RETRIES,
    RMQUEUE_NORMAL,
)
from pagelab.mm.mm_init import MemoryRange
from pagelab.mm.mmzone import (
    MIGRATE_HIGHATOMIC,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    ZONE_BELOW_HIGH,
    pageblock_migratetype,
    pageblock_order,
)
from pagelab.profile import resolve_profile
from reference import buddy as ref
from reference.buddy import Buddy

# ------------------------------------------------------------------------------------------
# machines
# ------------------------------------------------------------------------------------------

def build(**kwargs: object) -> Machine:
    """Machine.build() without direct compaction or reclaim: the allocator alone, as the
    oracle has it."""
    m = Machine.build(**kwargs)  # type: ignore[arg-type]
    m.direct_compact_hook = None
    m.direct_reclaim_hook = None
    return m


#: A 256 MiB machine with a ZONE_NORMAL (RAM at 4 GiB), so that ALLOC_NOFRAGMENT applies.
NORMAL_RANGES = [MemoryRange(0, 1, 0x9F), MemoryRange(0, 0x100, 0x8000),
                 MemoryRange(0, 0x100000, 0x108000)]
#: Two nodes: node 0 has DMA, DMA32 and half the Normal RAM, node 1 the other half.
TWO_NODE_RANGES = [MemoryRange(0, 1, 0x9F), MemoryRange(0, 0x100, 0x8000),
                   MemoryRange(0, 0x100000, 0x104000), MemoryRange(1, 0x104000, 0x108000)]

CONFIGS = {
    "64M": lambda: build(memory="64M"),
    "128M": lambda: build(memory="128M"),
    # 16 CPUs split the low watermark into a small pcp->high_min: free_high can trigger.
    "128M-16cpu": lambda: build(memory="128M", cpus=16),
    # DMA32 has > 51200 managed pages: HIGHATOMIC reserves can form (1 % of the zone).
    "384M": lambda: build(memory="384M"),
    "normal": lambda: build(ranges=NORMAL_RANGES),
    "2node": lambda: build(ranges=TWO_NODE_RANGES),
}

GFPS = [
    "GFP_KERNEL", "GFP_HIGHUSER_MOVABLE", "GFP_KERNEL|__GFP_RECLAIMABLE", "GFP_ATOMIC",
    "GFP_NOWAIT", "GFP_KERNEL|GFP_DMA32", "GFP_KERNEL|GFP_DMA", "GFP_DMA32", "GFP_DMA",
    "GFP_KERNEL|__GFP_COMP", "GFP_HIGHUSER_MOVABLE|__GFP_COMP", "GFP_ATOMIC|__GFP_COMP",
    "GFP_ATOMIC|__GFP_RECLAIMABLE", "GFP_NOWAIT|__GFP_RECLAIMABLE", "GFP_TRANSHUGE_LIGHT",
    "GFP_KERNEL|__GFP_HIGH", "GFP_NOWAIT|__GFP_HIGHMEM|__GFP_MOVABLE",
]
GFP_MASKS = {name: parse_gfp(name) for name in GFPS}

_ZONE_FLAG_BITS = {"ZONE_BOOSTED_WATERMARK": 0, "ZONE_RECLAIM_ACTIVE": 1, "ZONE_BELOW_HIGH": 2}
_NUMA = ("NUMA_HIT", "NUMA_MISS", "NUMA_FOREIGN", "NUMA_INTERLEAVE_HIT", "NUMA_LOCAL",
         "NUMA_OTHER")


# ------------------------------------------------------------------------------------------
# comparing the model with the oracle
# ------------------------------------------------------------------------------------------


def model_state(m: Machine) -> dict[object, object]:
    """The model's allocator state in the oracle's vocabulary."""
    state: dict[object, object] = {"free blocks": debug.free_blocks(m)}
    for i, z in enumerate(m.zones):
        if not z.spanned_pages:
            continue
        state[("zone", i)] = {
            "NR_FREE_PAGES": z.vm_stat[vs.NR_FREE_PAGES],
            "NR_FREE_PAGES_BLOCKS": z.vm_stat[vs.NR_FREE_PAGES_BLOCKS],
            "NR_FREE_CMA_PAGES": z.vm_stat[vs.NR_FREE_CMA_PAGES],
            "nr_free_highatomic": z.nr_free_highatomic,
            "nr_reserved_highatomic": z.nr_reserved_highatomic,
            "watermark_boost": z.watermark_boost,
            "flags": {n for n, bit in _ZONE_FLAG_BITS.items() if z.flags >> bit & 1},
            "nr_free": list(z.nr_free),
            "numa": dict(zip(_NUMA, z.vm_numa_event, strict=True)),
        }
        for cpu, p in enumerate(z.per_cpu_pageset):
            state[("pcp", i, cpu)] = {
                "count": p.count, "high": p.high, "high_min": p.high_min,
                "high_max": p.high_max, "batch": p.batch, "free_count": p.free_count,
                "alloc_factor": p.alloc_factor, "flags": p.flags,
                "lists": [list(lst) for lst in p.lists],
            }
    state["pageblock types"] = [pageblock_migratetype(int(bits)) for bits in m.pageblock_flags]
    state["events"] = {"PGFREE": m.vm_events[vs.PGFREE],
                       "PGALLOC": [m.vm_events[vs.PGALLOC_DMA + i] for i in range(5)]}
    state["allocations"] = dict(m.allocations())
    return state


def oracle_state(b: Buddy) -> dict[object, object]:
    """The oracle's state, keyed as :func:`model_state`."""
    state: dict[object, object] = {"free blocks": b.free_blocks()}
    for z in b.zones:
        if z is None:
            continue
        state[("zone", z.index)] = {
            "NR_FREE_PAGES": z.NR_FREE_PAGES,
            "NR_FREE_PAGES_BLOCKS": z.NR_FREE_PAGES_BLOCKS,
            "NR_FREE_CMA_PAGES": z.NR_FREE_CMA_PAGES,
            "nr_free_highatomic": z.nr_free_highatomic,
            "nr_reserved_highatomic": z.nr_reserved_highatomic,
            "watermark_boost": z.watermark_boost,
            "flags": set(z.flags),
            "nr_free": list(z.nr_free),
            "numa": dict(z.numa),
        }
        for cpu, p in enumerate(z.pcp):
            state[("pcp", z.index, cpu)] = {
                "count": p.count, "high": p.high, "high_min": p.high_min,
                "high_max": p.high_max, "batch": p.batch, "free_count": p.free_count,
                "alloc_factor": p.alloc_factor, "flags": p.flags,
                "lists": [list(lst) for lst in p.lists],
            }
    state["pageblock types"] = [b.pageblock[i] for i in range(len(b.pageblock))]
    state["events"] = {"PGFREE": b.PGFREE, "PGALLOC": list(b.PGALLOC)}
    state["allocations"] = dict(b.allocated)
    return state


def _first_difference(a: object, b: object) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() | b.keys():
            if a.get(key) != b.get(key):
                return f"[{key!r}]" + _first_difference(a.get(key), b.get(key))
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                return f"[{i}]" + _first_difference(x, y)
        return f": lengths {len(a)} (model) != {len(b)} (oracle)"
    return f": model {a!r} != oracle {b!r}"


def assert_agree(m: Machine, b: Buddy) -> None:
    """Require the model and the oracle to hold the same allocator state."""
    ms, os_ = model_state(m), oracle_state(b)
    if ms != os_:
        raise AssertionError("model and oracle disagree at " + _first_difference(ms, os_))


# ------------------------------------------------------------------------------------------
# carving a machine into a known state with the model's own kernel functions
# ------------------------------------------------------------------------------------------


def carve(m: Machine, zone, order: int, mt: int) -> int:
    """Take a block off ``mt``'s lists as an allocation (``__rmqueue_smallest`` + prep)."""
    pfn = pa.__rmqueue_smallest(zone, order, mt)
    assert pfn >= 0, f"no free block of order >= {order} and type {mt} in {zone}"
    pa.prep_new_page(zone, pfn, order, 0, mt)
    m._allocations[pfn] = order  # as Machine.alloc_pages records it
    return pfn


def carve_all(m: Machine, zone, mt: int, orders: range = range(10, -1, -1)) -> None:
    """Allocate every free block of ``mt`` of the given orders, each at its own order."""
    for order in orders:
        while zone.free_count[order][mt]:
            carve(m, zone, order, mt)


def free_list(m: Machine, zone, order: int, mt: int) -> list[int]:
    """Return ``zone->free_area[order].free_list[mt]`` from head to tail."""
    return list(m.mem.list_entries(zone.free_list(order, mt)))


def block_type(m: Machine, pfn: int) -> int:
    """Return the migratetype of the pageblock of ``pfn``."""
    return pa.get_pageblock_migratetype(m, pfn)


def both_alloc(m: Machine, b: Buddy, order: int, gfp: str) -> int | None:
    """Allocate on the model and the oracle; they must return the same pfn."""
    got = m.alloc_pages(order, gfp)
    want = b.alloc_pages(order, GFP_MASKS.get(gfp) or parse_gfp(gfp))
    assert got == want, f"alloc_pages({order}, {gfp}): model {got}, oracle {want}"
    return got


#: Orders for random allocations: mostly pcp orders, every order present.
ORDERS = [0] * 8 + [1] * 3 + [2] * 2 + [3] * 2 + [4, 5, 6, 7, 8, 9, 10]


def free_both(m: Machine, b: Buddy, pfn: int, order: int) -> None:
    """Free a block on the model and on the oracle."""
    m.free_pages(pfn, order)
    b.free_pages(pfn, order)


def fill_both(m: Machine, b: Buddy, gfp: str, held: list[tuple[int, int]],
              orders: tuple[int, ...] = (6, 3, 0), limit: int = 4096) -> None:
    """Allocate until the allocator says no, big blocks first: memory pressure."""
    for order in orders:
        for _ in range(limit):
            pfn = both_alloc(m, b, order, gfp)
            if pfn is None:
                break
            held.append((pfn, order))


def vmstat_update_both(m: Machine, b: Buddy) -> None:
    """One pass of the vmstat worker on every CPU (pcp decay), as Machine.timer_tick runs it."""
    for cpu in range(m.nr_cpus):
        pa.refresh_cpu_vm_stats(m, cpu)
        ref.refresh_cpu_vm_stats(b, cpu)


def random_operation(m: Machine, b: Buddy, rng: random.Random,
                     held: list[tuple[int, int]], pressure: bool = False) -> None:
    """One random step: free, switch CPU, drain, vmstat tick, many order 1..3 frees, or alloc.

    With ``pressure``, rare steps also fill memory up to a watermark, or free every other
    held block (leaving free holes between busy blocks: fragmentation).
    """
    x = rng.random()
    if pressure and x < 0.003:
        fill_both(m, b, rng.choice(GFPS), held)
        return
    if pressure and x < 0.006:
        start = rng.randrange(2)
        for blk in held[start::2]:
            free_both(m, b, *blk)
        del held[start::2]
        return
    if held and x < 0.40:
        free_both(m, b, *held.pop(rng.randrange(len(held))))
    elif x < 0.42:
        m.cpu = b.cpu = rng.randrange(m.nr_cpus)
    elif x < 0.43:
        m.drain_all_pages()
        b.drain_all_pages()
    elif x < 0.435:
        vmstat_update_both(m, b)
    elif held and x < 0.445:
        # Many high-order pcp frees in a row: the free_high path of free_frozen_page_commit.
        burst = [blk for blk in held if 1 <= blk[1] <= 3][:200]
        for blk in burst:
            held.remove(blk)
            free_both(m, b, *blk)
    else:
        order = rng.choice(ORDERS)
        pfn = both_alloc(m, b, order, rng.choice(GFPS))
        if pfn is not None:
            held.append((pfn, order))


# ------------------------------------------------------------------------------------------
# the property test
# ------------------------------------------------------------------------------------------


class AllocatorAgainstOracle(RuleBasedStateMachine):
    """Random allocator programs on a Machine and on the oracle, compared after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.m: Machine
        self.b: Buddy
        self.held: list[tuple[int, int]] = []

    @initialize(config=st.sampled_from(sorted(CONFIGS)),
                warmup=st.sampled_from([0, 0, 300, 3000]), seed=st.integers(0, 2**32 - 1))
    def boot(self, config: str, warmup: int, seed: int) -> None:
        """Boot a machine and its oracle, then optionally fragment it with random steps."""
        self.m = CONFIGS[config]()
        self.b = Buddy.from_machine(self.m)
        self.boot_blocks = {(z, o, p) for z, o, _, p in debug.free_blocks(self.m)}
        rng = random.Random(seed)
        for _ in range(warmup):
            random_operation(self.m, self.b, rng, self.held, pressure=True)

    def _alloc(self, order: int, gfp: str) -> int | None:
        pfn = both_alloc(self.m, self.b, order, gfp)
        if pfn is not None:
            self.held.append((pfn, order))
        return pfn

    def _free(self, index: int) -> None:
        free_both(self.m, self.b, *self.held.pop(index))

    @rule(order=st.one_of(st.integers(0, 3), st.integers(0, 10)), gfp=st.sampled_from(GFPS))
    def alloc(self, order: int, gfp: str) -> None:
        self._alloc(order, gfp)

    @precondition(lambda self: self.held)
    @rule(i=st.integers(0, 1 << 20))
    def free(self, i: int) -> None:
        self._free(i % len(self.held))

    @precondition(lambda self: self.held)
    @rule(step=st.integers(1, 4), start=st.integers(0, 3),
          orders=st.sampled_from(["all", "pcp", "high"]))
    def free_many(self, step: int, start: int, orders: str) -> None:
        """Free every step-th held block (fragmenting), optionally only some orders."""
        keep = []
        for j, (pfn, order) in enumerate(self.held):
            wanted = (orders == "all" or (orders == "pcp" and order <= 3)
                      or (orders == "high" and order > 3))
            if wanted and j % step == start % step:
                free_both(self.m, self.b, pfn, order)
            else:
                keep.append((pfn, order))
        self.held = keep

    @rule(order=st.integers(0, 6), gfp=st.sampled_from(GFPS),
          limit=st.sampled_from([16, 128, 4096]))
    def fill(self, order: int, gfp: str, limit: int) -> None:
        """Allocate until the allocator says no, big blocks first: memory pressure."""
        fill_both(self.m, self.b, gfp, self.held,
                  tuple(sorted({order, min(order, 3), 0}, reverse=True)), limit)

    @rule(cpu=st.integers(0, 3))
    def switch_cpu(self, cpu: int) -> None:
        self.m.cpu = self.b.cpu = cpu % self.m.nr_cpus

    @rule()
    def vmstat_update(self) -> None:
        vmstat_update_both(self.m, self.b)

    @rule()
    def drain(self) -> None:
        self.m.drain_all_pages()
        self.b.drain_all_pages()

    @invariant()
    def agree(self) -> None:
        assert_agree(self.m, self.b)
        self.m.check_state()

    def teardown(self) -> None:
        if not hasattr(self, "m"):
            return
        # Free everything and drain: the buddy must coalesce back to the boot blocks, unless
        # a HIGHATOMIC reservation (which never merges with other types) splits them.
        while self.held:
            self._free(len(self.held) - 1)
        self.m.drain_all_pages()
        self.b.drain_all_pages()
        assert_agree(self.m, self.b)
        self.m.check_state()
        if not any(z.nr_reserved_highatomic for z in self.m.zones):
            now = {(z, o, p) for z, o, _, p in debug.free_blocks(self.m)}
            assert now == self.boot_blocks


AllocatorAgainstOracle.TestCase.settings = settings(
    max_examples=max(10, settings.default.max_examples // 4),
)
TestAllocatorAgainstOracle = AllocatorAgainstOracle.TestCase


# ------------------------------------------------------------------------------------------
# unit tests with hand-computed expectations
# ------------------------------------------------------------------------------------------


@pytest.fixture
def m128() -> Machine:
    """A fresh 128 MiB machine: zones DMA and DMA32, everything MOVABLE."""
    return build(memory="128M")


def test_expand_puts_upper_halves_at_list_heads(m128: Machine) -> None:
    """expand(): splitting order 10 down to 0 leaves P+512, P+256, ..., P+1 at list heads.

    (The lists below the order split are empty by construction, since __rmqueue_smallest()
    and the fallbacks take the smallest order that has a block: head or tail cannot be told
    apart there; what this pins is which halves are freed, at which orders.)
    """
    dma32 = m128.zones[1]
    carve_all(m128, dma32, MIGRATE_MOVABLE, range(0, 10))  # only order-10 blocks remain
    p = free_list(m128, dma32, 10, MIGRATE_MOVABLE)[0]
    b = Buddy.from_machine(m128)
    free_before = dma32.vm_stat[vs.NR_FREE_PAGES]

    assert pa.__rmqueue_smallest(dma32, 0, MIGRATE_MOVABLE) == p
    for order in range(10):
        assert free_list(m128, dma32, order, MIGRATE_MOVABLE) == [p + (1 << order)]
    assert dma32.vm_stat[vs.NR_FREE_PAGES] == free_before - 1
    assert dma32.nr_free[10] == len(free_list(m128, dma32, 10, MIGRATE_MOVABLE))

    assert ref.__rmqueue_smallest(b, b.zones[1], 0, ref.MOVABLE) == p
    assert debug.free_blocks(m128) == b.free_blocks()


def test_free_one_page_merges_back_to_max_order(m128: Machine) -> None:
    """__free_one_page(): freeing the split page merges it back to order 10 at the head."""
    dma32 = m128.zones[1]
    carve_all(m128, dma32, MIGRATE_MOVABLE, range(0, 10))
    before = debug.free_blocks(m128)
    p = pa.__rmqueue_smallest(dma32, 0, MIGRATE_MOVABLE)

    pa.__free_one_page(dma32, p, 0, MIGRATE_MOVABLE, pa.FPI_NONE)
    # order 10 == MAX_PAGE_ORDER: buddy_merge_likely() is false, so back to the head, where
    # __rmqueue_smallest took it from: the lists are exactly as before.
    assert debug.free_blocks(m128) == before
    assert free_list(m128, dma32, 10, MIGRATE_MOVABLE)[0] == p


def test_buddy_merge_likely_sends_block_to_the_tail(m128: Machine) -> None:
    """A block whose order+1 buddy is free goes to the tail of its list; others to the head."""
    dma32 = m128.zones[1]
    carve_all(m128, dma32, MIGRATE_MOVABLE, range(0, 10))
    q = carve(m128, dma32, 10, MIGRATE_MOVABLE)
    p = carve(m128, dma32, 10, MIGRATE_MOVABLE)
    # Hand the blocks back in pieces, as if sub-blocks had been freed one by one.
    del m128._allocations[p], m128._allocations[q]
    b = Buddy.from_machine(m128)

    def free(pfn: int, order: int) -> None:
        pa.__free_one_page(dma32, pfn, order, MIGRATE_MOVABLE, pa.FPI_NONE)
        ref.__free_one_page(b, b.zones[1], pfn, order, ref.MOVABLE, ref.FPI_NONE)

    free(q + 256, 8)  # buddy q busy; q's order-9 buddy q+512 busy: not likely -> head
    free(p + 512, 9)  # order 9 >= MAX_PAGE_ORDER - 1: never "likely" -> head
    free(p + 256, 8)  # buddy p busy, but p's order-9 buddy p+512 is free: likely -> tail
    assert free_list(m128, dma32, 8, MIGRATE_MOVABLE) == [q + 256, p + 256]
    assert free_list(m128, dma32, 9, MIGRATE_MOVABLE) == [p + 512]
    free(p, 8)  # merges with p+256 (order 9), then with p+512 (order 10) -> head of order 10
    assert free_list(m128, dma32, 10, MIGRATE_MOVABLE)[0] == p
    assert free_list(m128, dma32, 8, MIGRATE_MOVABLE) == [q + 256]
    assert debug.free_blocks(m128) == b.free_blocks()


def test_rmqueue_smallest_takes_the_smallest_order(m128: Machine) -> None:
    """__rmqueue_smallest(order 1) takes an order-2 block before an order-5 one."""
    dma32 = m128.zones[1]
    carve_all(m128, dma32, MIGRATE_MOVABLE, range(0, 10))
    big = carve(m128, dma32, 0, MIGRATE_MOVABLE)  # splits one order-10 block
    # Now free blocks of orders 0..9 exist at big+1, big+2, ..., big+512; take away all
    # but order 2 and order 5, and every order-10 block.
    for order in (0, 1, 3, 4, 6, 7, 8, 9, 10):
        carve_all(m128, dma32, MIGRATE_MOVABLE, range(order, order + 1))
    assert free_list(m128, dma32, 2, MIGRATE_MOVABLE) == [big + 4]
    assert free_list(m128, dma32, 5, MIGRATE_MOVABLE) == [big + 32]

    assert pa.__rmqueue_smallest(dma32, 1, MIGRATE_MOVABLE) == big + 4
    assert free_list(m128, dma32, 1, MIGRATE_MOVABLE) == [big + 6]  # the upper half
    assert free_list(m128, dma32, 2, MIGRATE_MOVABLE) == []
    assert free_list(m128, dma32, 5, MIGRATE_MOVABLE) == [big + 32]


def test_unmovable_fallback_claims_whole_pageblocks(m128: Machine) -> None:
    """__rmqueue(UNMOVABLE) with only MOVABLE free: claim the largest block and its blocks."""
    dma32 = m128.zones[1]
    p = free_list(m128, dma32, 10, MIGRATE_MOVABLE)[0]
    b = Buddy.from_machine(m128)
    mode = [RMQUEUE_NORMAL]

    assert pa.__rmqueue(dma32, 0, MIGRATE_UNMOVABLE, 0, mode) == p
    # order 10 >= pageblock_order: change_pageblock_range() converts both pageblocks and
    # expand() puts the halves on the UNMOVABLE lists; the preferred list is now replenished.
    assert block_type(m128, p) == block_type(m128, p + 512) == MIGRATE_UNMOVABLE
    for order in range(10):
        assert free_list(m128, dma32, order, MIGRATE_UNMOVABLE) == [p + (1 << order)]
    assert mode == [RMQUEUE_NORMAL]
    assert dma32.watermark_boost == 0  # whole-block claims do not boost

    assert ref.__rmqueue(b, b.zones[1], 0, ref.UNMOVABLE, 0, [ref.RMQUEUE_NORMAL]) == p
    assert debug.free_blocks(m128) == b.free_blocks()


def _dma_with_one_unmovable_block(m: Machine) -> tuple[object, int]:
    """DMA with only the order 0..3 pieces of one UNMOVABLE pageblock free; returns (zone, p)."""
    dma = m.zones[0]
    p = pa.__rmqueue(dma, 0, MIGRATE_UNMOVABLE, 0, [RMQUEUE_NORMAL])  # claims an order-10
    pa.prep_new_page(dma, p, 0, 0, MIGRATE_UNMOVABLE)
    m._allocations[p] = 0
    carve_all(m, dma, MIGRATE_UNMOVABLE, range(9, 3, -1))  # p+16 .. p+512
    carve_all(m, dma, MIGRATE_MOVABLE)
    assert [free_list(m, dma, o, MIGRATE_UNMOVABLE) for o in range(4)] == [
        [p + 1], [p + 2], [p + 4], [p + 8]]
    m.check_state()
    return dma, p


def test_small_movable_fallback_steals_without_claiming(m128: Machine) -> None:
    """A movable order-0 request may not claim below order 4: it steals the smallest block."""
    dma, p = _dma_with_one_unmovable_block(m128)
    carve(m128, dma, 0, MIGRATE_UNMOVABLE)  # p+1: the smallest fallback is now order 1
    mode = [RMQUEUE_NORMAL]

    # Claim: orders 10..4 have no free block (-1); at order 3 should_try_claim_block() is
    # false for MOVABLE (-2) and the search stops. Steal takes p+2 (order 1), splits it and
    # leaves p+3 on the UNMOVABLE (fallback) list; the pageblock keeps its type.
    assert pa.__rmqueue(dma, 0, MIGRATE_MOVABLE, 0, mode) == p + 2
    assert mode == [pa.RMQUEUE_STEAL]
    assert free_list(m128, dma, 0, MIGRATE_UNMOVABLE) == [p + 3]
    assert block_type(m128, p) == MIGRATE_UNMOVABLE
    assert dma.watermark_boost == 0


def test_claim_below_pageblock_order_needs_half_a_block(m128: Machine) -> None:
    """try_to_claim_block(): free + alike pages must reach 256, else the request steals."""
    dma, p = _dma_with_one_unmovable_block(m128)
    b = Buddy.from_machine(m128)
    mode = [RMQUEUE_NORMAL]

    # RECLAIMABLE always tries to claim. Its first fallback is UNMOVABLE: p+8 (order 3).
    # The block holds 15 free pages and, UNMOVABLE being no MOVABLE block, 0 alike pages:
    # 15 < 256, no claim (at every order down to 0). Each attempt boosts the watermark:
    # max_boost = max(512, high 285 * 15000 / 10000) = 512, so boost = 512.
    assert pa.__rmqueue(dma, 0, MIGRATE_RECLAIMABLE, 0, mode) == p + 1  # then steal
    assert mode == [pa.RMQUEUE_STEAL]
    assert block_type(m128, p) == MIGRATE_UNMOVABLE
    assert dma.watermark_boost == 512
    assert not dma.flags & 1  # no ALLOC_KSWAPD: ZONE_BOOSTED_WATERMARK stays clear

    assert ref.__rmqueue(b, b.zones[0], 0, ref.RECLAIMABLE, 0, [ref.RMQUEUE_NORMAL]) == p + 1
    assert b.zones[0].watermark_boost == 512
    assert debug.free_blocks(m128) == b.free_blocks()


def test_unmovable_claim_counts_busy_non_lru_pages_as_alike(m128: Machine) -> None:
    """try_to_claim_block(): in a MOVABLE block, pages that are neither free nor LRU/movable
    count as alike for an UNMOVABLE request (here: the kernel image's reserved pages)."""
    dma32 = m128.zones[1]
    carve_all(m128, dma32, MIGRATE_MOVABLE, range(9, 11))
    # Left: 0x3500 (order 8; 0x3400-0x34ff is the kernel image) and 0x7e00 (order 0).
    assert free_list(m128, dma32, 8, MIGRATE_MOVABLE) == [0x3500]
    b = Buddy.from_machine(m128)

    # Largest first: order 8. free 256 + alike (512 - 256 free - 0 movable) = 512 >= 256:
    # move the block's free pages to UNMOVABLE, retype it, then __rmqueue_smallest() splits
    # 0x3500. The claim attempt boosts the watermark by one pageblock (max 1.5 x high).
    assert pa.__rmqueue(dma32, 0, MIGRATE_UNMOVABLE, 0, [RMQUEUE_NORMAL]) == 0x3500
    assert block_type(m128, 0x3500) == MIGRATE_UNMOVABLE
    assert [free_list(m128, dma32, o, MIGRATE_UNMOVABLE) for o in range(9)] == [
        [0x3500 + (1 << o)] for o in range(8)] + [[]]
    assert dma32.watermark_boost == 512

    assert ref.__rmqueue(b, b.zones[1], 0, ref.UNMOVABLE, 0, [ref.RMQUEUE_NORMAL]) == 0x3500
    assert debug.free_blocks(m128) == b.free_blocks()


def test_claim_fails_on_a_pageblock_straddling_the_zone_start(m128: Machine) -> None:
    """prep_move_freepages_block() refuses pageblock 0 (DMA starts at pfn 1): no claim, so
    the UNMOVABLE request steals from the MOVABLE block and leaves its type alone."""
    dma = m128.zones[0]
    carve_all(m128, dma, MIGRATE_MOVABLE, range(9, 11))
    assert dma.zone_start_pfn == 1
    assert free_list(m128, dma, 8, MIGRATE_MOVABLE) == [0x100]
    mode = [RMQUEUE_NORMAL]

    assert pa.__rmqueue(dma, 0, MIGRATE_UNMOVABLE, 0, mode) == 0x100
    assert mode == [pa.RMQUEUE_STEAL]
    assert block_type(m128, 0x100) == MIGRATE_MOVABLE
    assert [free_list(m128, dma, o, MIGRATE_MOVABLE) for o in range(8)] == [
        [0x100 + (1 << o)] for o in range(8)]
    assert dma.watermark_boost == 512  # boost_watermark() runs before the zone-edge check


def test_nofragment_sends_normal_unmovable_request_to_dma32_first() -> None:
    """ALLOC_NOFRAGMENT: no whole free pageblock in Normal -> DMA32 first, not a Normal steal."""

    def carve_normal(m: Machine) -> int:
        normal = m.zones[2]
        assert normal.name == "Normal"
        # Allocate all of Normal in order-8 units, then free every other unit: half of the
        # zone is free, all of it as MOVABLE order-8 blocks (no order-9/10 block anywhere).
        carve_all(m, normal, MIGRATE_MOVABLE, range(0, 8))
        units = []
        while normal.nr_free[8] + normal.nr_free[9] + normal.nr_free[10]:
            units.append(carve(m, normal, 8, MIGRATE_MOVABLE))
        for pfn in units:
            if pfn & 256 == 0:
                m.free_pages(pfn, 8)
        assert normal.nr_free[9] == normal.nr_free[10] == 0
        assert normal.vm_stat[vs.NR_FREE_PAGES] > normal.high_wmark_pages()
        return free_list(m, normal, 8, MIGRATE_MOVABLE)[0]

    m = build(ranges=NORMAL_RANGES)
    first_x = carve_normal(m)
    d = free_list(m, m.zones[1], 10, MIGRATE_MOVABLE)[0]
    b = Buddy.from_machine(m)
    assert both_alloc(m, b, 0, "GFP_KERNEL") == d
    assert block_type(m, d) == MIGRATE_UNMOVABLE
    assert all(block_type(m, pfn) == MIGRATE_MOVABLE
               for pfn in range(0x100000, 0x108000, 1 << pageblock_order))
    assert_agree(m, b)

    # The same request without ALLOC_NOFRAGMENT (a v4.20 kernel) claims in Normal instead.
    m = build(ranges=NORMAL_RANGES,
                      profile=resolve_profile("mainline", alloc_nofragment=False))
    first_x = carve_normal(m)
    assert m.alloc_pages(0, "GFP_KERNEL") == first_x
    assert block_type(m, first_x) == MIGRATE_UNMOVABLE


def test_pcp_refill_sizes_the_batch_and_raises_high(m128: Machine) -> None:
    """First order-0 GFP_KERNEL allocation: nr_pcp_alloc() == batch, pcp->high += batch."""
    dma32 = m128.zones[1]
    pcp = dma32.per_cpu_pageset[0]
    assert pcp.batch == 3  # min(18689 >> 12, 64) = 4 -> rounddown_pow_of_two(4 + 2) - 1
    high_min = pcp.high_min
    d = free_list(m128, dma32, 10, MIGRATE_MOVABLE)[0]
    b = Buddy.from_machine(m128)

    # nr_pcp_alloc: high = clamp(0, high_min, high_max) = high_min; batch = 3 << alloc_factor
    # 0; the zone is above its high watermark, so high = min(high_min + 3, high_max);
    # max_nr_alloc = max(high - 0 - 3, 3) = high_min >= 3, so alloc_factor becomes 1; 3 blocks.
    # rmqueue_bulk: the first __rmqueue claims d's order-10 block for UNMOVABLE; the next
    # two take d+1 (order 0) and d+2 (split from order 1, d+3 stays free); list_add_tail
    # keeps that order and the head, d, is returned.
    assert both_alloc(m128, b, 0, "GFP_KERNEL") == d
    assert pcp.lists[MIGRATE_UNMOVABLE] == type(pcp.lists[0])([d + 1, d + 2])
    assert (pcp.count, pcp.high, pcp.alloc_factor) == (2, high_min + 3, 1)
    assert free_list(m128, dma32, 0, MIGRATE_UNMOVABLE) == [d + 3]
    assert_agree(m128, b)


def test_pcp_free_goes_to_head_and_trim_frees_the_tail(m128: Machine) -> None:
    """free_frozen_page_commit() adds at the head; free_pcppages_bulk() takes the tail."""
    b = Buddy.from_machine(m128)
    pfns = [both_alloc(m128, b, 0, "GFP_KERNEL") for _ in range(1500)]
    pcp = m128.zones[1].per_cpu_pageset[0]
    pcp_before = list(pcp.lists[MIGRATE_UNMOVABLE])
    for pfn in pfns:
        m128.free_pages(pfn, 0)
        b.free_pages(pfn, 0)
        assert_agree(m128, b)
        if pcp.count and pcp.lists[MIGRATE_UNMOVABLE]:
            # The most recent free is at the head unless a trim just emptied its list.
            assert pcp.lists[MIGRATE_UNMOVABLE][0] == pfn
    # 1500 frees exceed pcp->high_max (managed/8/2 CPUs = 1168): trims happened, coldest
    # pages first (the tail: what was on the list before, then the oldest frees).
    remaining = list(pcp.lists[MIGRATE_UNMOVABLE])
    assert len(remaining) < len(pfns) + len(pcp_before)
    assert remaining == (pfns[::-1] + pcp_before)[: len(remaining)]


def test_watermark_reserves_for_atomic_and_oom(m128: Machine) -> None:
    """__zone_watermark_ok(): min is mark, mark/2 for __GFP_HIGH, 3/8 for GFP_ATOMIC."""

    dma32 = m128.zones[1]
    b = Buddy.from_machine(m128)
    oz = b.zones[1]
    cases = [  # (alloc_flags, lowest free_pages that passes a mark of 1000)
        (0, 1001),
        (ALLOC_MIN_RESERVE, 501),
        (ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK, 376),  # 1000 - 500 - 125
        (ALLOC_NON_BLOCK, 1001),  # non-blocking alone gets no reserve
        (ALLOC_OOM, 501),
        (ALLOC_MIN_RESERVE | ALLOC_OOM, 251),
    ]
    for flags, lowest in cases:
        for free, ok in ((lowest, True), (lowest - 1, False)):
            assert pa.__zone_watermark_ok(dma32, 0, 1000, 1, flags, free) is ok, (flags, free)
            assert ref.__zone_watermark_ok(oz, 0, 1000, 1, flags, free) is ok, (flags, free)
    # lowmem_reserve: a GFP_KERNEL (highest zone Normal = 2) request must leave DMA's
    # protection for Normal untouched.
    dma = m128.zones[0]
    assert dma.lowmem_reserve[2] == 73
    assert pa.__zone_watermark_ok(dma, 0, 100, 2, 0, 174)
    assert not pa.__zone_watermark_ok(dma, 0, 100, 2, 0, 173)


def test_zone_below_high_is_set_when_the_high_watermark_fails() -> None:
    """get_page_from_freelist() marks a zone ZONE_BELOW_HIGH when it fails the high mark."""
    m = build(memory="64M")
    b = Buddy.from_machine(m)
    dma32 = m.zones[1]
    assert not dma32.flags & (1 << ZONE_BELOW_HIGH)
    while dma32.vm_stat[vs.NR_FREE_PAGES] > dma32.high_wmark_pages():
        assert both_alloc(m, b, 3, "GFP_HIGHUSER_MOVABLE") is not None
    both_alloc(m, b, 0, "GFP_HIGHUSER_MOVABLE")
    assert dma32.flags & (1 << ZONE_BELOW_HIGH)
    assert_agree(m, b)


def _highatomic_machine() -> tuple[Machine, Buddy]:
    """A 384M machine pushed to its min watermark by GFP_NOWAIT allocations."""
    m = build(memory="384M")
    b = Buddy.from_machine(m)
    for order in (6, 3, 0):  # big steps first: fewer calls
        while both_alloc(m, b, order, "GFP_NOWAIT") is not None:
            pass
    return m, b


def test_highatomic_reserve_then_unreserve() -> None:
    """High-order GFP_ATOMIC in the slow path reserves pageblocks (~1 % of the zone); a
    failing GFP_KERNEL allocation gives one back to UNMOVABLE before draining the pcps."""
    m, b = _highatomic_machine()
    dma32 = m.zones[1]
    max_reserve = -(-(dma32.managed_pages // 100) // 512) * 512
    assert max_reserve == 1024
    got = []
    for _ in range(400):
        pfn = both_alloc(m, b, 2, "GFP_ATOMIC")
        if pfn is None:
            break
        got.append(pfn)
        if dma32.nr_reserved_highatomic == max_reserve:
            break
    assert dma32.nr_reserved_highatomic == max_reserve
    reserved = sorted({p >> pageblock_order for p in got
                       if block_type(m, p) == MIGRATE_HIGHATOMIC})
    assert len(reserved) == 2
    assert dma32.nr_free_highatomic == sum(
        1 << o for o in range(11) for p in free_list(m, dma32, o, MIGRATE_HIGHATOMIC))
    assert_agree(m, b)
    m.check_state()

    # GFP_KERNEL until it fails: the direct-reclaim step unreserves one block (more than one
    # is reserved) and drains every pcp before its last try.
    while both_alloc(m, b, 0, "GFP_KERNEL") is not None:
        pass
    assert dma32.nr_reserved_highatomic == max_reserve - 512
    assert sorted(block_type(m, pb << pageblock_order) for pb in reserved) == [
        MIGRATE_UNMOVABLE, MIGRATE_HIGHATOMIC]
    assert all(p.count == 0 for z in m.populated_zones() for p in z.per_cpu_pageset)
    assert_agree(m, b)
    m.check_state()


def _only_highatomic_free() -> tuple[Machine, list[int]]:
    """A 384M machine (low watermarks) whose only free memory is two HIGHATOMIC pageblocks.

    Returns the machine and the two reserved blocks' first pfns (each still allocated), and
    leaves pcp->free_count = 16 on CPU 0 (16 order-0 frees to the MOVABLE pcp list).
    """
    m = build(memory="384M")
    m.min_free_kbytes = 256  # sysctl vm.min_free_kbytes: low watermarks for a small test
    pa.setup_per_zone_wmarks(m)
    dma, dma32 = m.zones[0], m.zones[1]
    carve_all(m, dma, MIGRATE_MOVABLE)
    carve_all(m, dma32, MIGRATE_MOVABLE, range(0, 10))
    reserved = []
    for _ in range(2):  # split an order-10 block, reserve the lower pageblock, drop the upper
        d = carve(m, dma32, 0, MIGRATE_MOVABLE)
        pa.reserve_highatomic_pageblock(m, d, 0, dma32)
        carve(m, dma32, 9, MIGRATE_MOVABLE)
        reserved.append(d)
    extra = [carve(m, dma32, 0, MIGRATE_MOVABLE) for _ in range(16)]
    carve_all(m, dma32, MIGRATE_MOVABLE)
    for pfn in extra:
        m.free_pages(pfn, 0)
    m.check_state()
    assert dma32.vm_stat[vs.NR_FREE_PAGES] == dma32.nr_free_highatomic == 2 * 511
    assert dma32.nr_reserved_highatomic == 1024
    return m, reserved


def test_slowpath_retries_the_freelists_before_direct_reclaim() -> None:
    """__alloc_pages_slowpath() tries get_page_from_freelist() at restart: and again at
    retry:, before direct reclaim. The failed tries are visible in pcp->free_count, which
    rmqueue_pcplist() halves each time (16 -> 8 -> 4 -> 2 -> 1 with four tries)."""
    m, (d1, _) = _only_highatomic_free()
    dma32 = m.zones[1]
    b = Buddy.from_machine(m)

    # GFP_KERNEL|__GFP_HIGH passes the min/2 watermark only counting HIGHATOMIC pages, but
    # __rmqueue() cannot use them: restart and retry fail, direct reclaim fails once, then
    # unreserves the first block (back to UNMOVABLE) and drains, and the fourth try succeeds.
    assert both_alloc(m, b, 0, "GFP_KERNEL|__GFP_HIGH") == d1 + 1
    assert dma32.per_cpu_pageset[0].free_count == 16 >> 4
    assert dma32.nr_reserved_highatomic == 512
    assert block_type(m, d1) == MIGRATE_UNMOVABLE
    assert_agree(m, b)


def test_atomic_order0_dips_into_the_highatomic_reserve() -> None:
    """rmqueue_buddy(): when __rmqueue() fails, ALLOC_NON_BLOCK (GFP_ATOMIC in the slow path)
    may take the smallest HIGHATOMIC block; the reservation stays."""
    m, (d1, d2) = _only_highatomic_free()
    dma32 = m.zones[1]
    # move_freepages_block() appended each block's pieces in pfn order: d1's first.
    assert free_list(m, dma32, 0, MIGRATE_HIGHATOMIC) == [d1 + 1, d2 + 1]
    b = Buddy.from_machine(m)

    assert both_alloc(m, b, 0, "GFP_ATOMIC") == d1 + 1
    assert dma32.nr_reserved_highatomic == 1024
    assert dma32.nr_free_highatomic == 2 * 511 - 1
    assert_agree(m, b)


# ------------------------------------------------------------------------------------------
# profiles the oracle does not model
# ------------------------------------------------------------------------------------------


def test_oracle_refuses_v48() -> None:
    """The oracle models mainline only; v4.8's fallback is not transcribed."""
    with pytest.raises(NotImplementedError):
        Buddy.from_machine(build(memory="64M", profile="v4.8"))


def test_v48_fallback_leaves_free_blocks_on_the_requesters_lists() -> None:
    """Profile v4.8: a small movable fallback splits its block onto MOVABLE lists inside an
    UNMOVABLE pageblock, as v4.8 did; the per-list counts follow the lists (check_state)."""
    m = build(memory="128M", profile="v4.8")
    dma, p = _dma_with_one_unmovable_block(m)
    # v4.8: largest fallback first (p+8, order 3), too small for a movable request to steal
    # the block: take it and split it onto MOVABLE lists inside an UNMOVABLE pageblock.
    assert pa.__rmqueue(dma, 0, MIGRATE_MOVABLE, 0, [RMQUEUE_NORMAL]) == p + 8
    assert pa.get_pageblock_migratetype(m, p) == MIGRATE_UNMOVABLE
    assert dma.free_count[0][MIGRATE_MOVABLE] >= 1
    pa.prep_new_page(dma, p + 8, 0, 0, MIGRATE_MOVABLE)
    m._allocations[p + 8] = 0  # as Machine.alloc_pages records it
    m.check_state()
    # Freeing the page merges the block back across the two lists, counts intact.
    m.free_pages(p + 8, 0)
    m.drain_all_pages()
    m.check_state()


def test_v413_fallback_splits_the_smallest_block_a_movable_request_cannot_claim() -> None:
    """v4.8 + fallback_smallest (v4.13): the same request takes p+1 (order 0), leaving the
    unmovable block's order-1..3 pieces whole."""
    m = build(memory="128M", profile="v4.8+fallback_smallest")
    dma, p = _dma_with_one_unmovable_block(m)
    assert pa.__rmqueue(dma, 0, MIGRATE_MOVABLE, 0, [RMQUEUE_NORMAL]) == p + 1
    assert [free_list(m, dma, o, MIGRATE_UNMOVABLE) for o in range(1, 4)] == [
        [p + 2], [p + 4], [p + 8]]
    pa.prep_new_page(dma, p + 1, 0, 0, MIGRATE_MOVABLE)
    m._allocations[p + 1] = 0
    m.check_state()


def test_v50_boost_on_a_v48_fallback_wakes_kswapd_only_when_allowed() -> None:
    """v4.8 + watermark_boost (v5.0's steal_suitable_fallback): a fallback below pageblock
    order raises the boost; ZONE_BOOSTED_WATERMARK is set only for a request that may wake
    kswapd. Plain v4.8 never boosts."""
    for name, expect_boost in (("v4.8", False), ("v4.8+watermark_boost", True)):
        m = build(memory="128M", profile=name)
        dma, p = _dma_with_one_unmovable_block(m)
        pfn = pa.__rmqueue(dma, 0, MIGRATE_MOVABLE, pa.ALLOC_KSWAPD, [RMQUEUE_NORMAL])
        assert pfn == p + 8  # still v4.8's largest block: boosting changes no placement
        assert (dma.watermark_boost > 0) == expect_boost
        assert bool(dma.flags & 1) == expect_boost
        pa.prep_new_page(dma, pfn, 0, 0, MIGRATE_MOVABLE)
        m._allocations[pfn] = 0
        m.check_state()


# ------------------------------------------------------------------------------------------
# the long run
# ------------------------------------------------------------------------------------------


def test_check_state_holds_after_100k_random_operations() -> None:
    """Acceptance: check_state() after 10**5 random operations on a 128M machine, every 1000
    operations and at the end, with the oracle compared every 5000 operations and at the end."""
    m = build(memory="128M")
    b = Buddy.from_machine(m)
    rng = random.Random(20251125)
    held: list[tuple[int, int]] = []
    for i in range(1, 100_001):
        random_operation(m, b, rng, held)
        if i % 1000 == 0:
            m.check_state()
        if i % 5000 == 0:
            assert_agree(m, b)
    m.check_state()
    assert_agree(m, b)


@settings(max_examples=max(6, settings.default.max_examples // 8))
@given(seed=st.integers(0, 2**32 - 1), config=st.sampled_from(sorted(CONFIGS)))
def test_random_programs_agree_with_the_oracle(seed: int, config: str) -> None:
    """Seeded random programs of 2000 steps on every machine shape, compared at the end."""
    m = CONFIGS[config]()
    b = Buddy.from_machine(m)
    rng = random.Random(seed)
    held: list[tuple[int, int]] = []
    for i in range(2000):
        random_operation(m, b, rng, held, pressure=True)
        if i % 500 == 0:
            assert_agree(m, b)
    assert_agree(m, b)
    m.check_state()


# ================================================================================================
# the slow path's compaction rounds by kernel version (v4.8, v4.9, v4.12, mainline)
# ================================================================================================


def _slowpath_steps(profile: str, gfp: int, order: int, last_result: str,
                    monkeypatch: pytest.MonkeyPatch, progress: int = 0) -> list[str]:
    """The reclaim and compaction calls of one failing trip through the slow path.

    Reclaim reports ``progress`` pages; every compaction fails with ``last_result``;
    ``should_reclaim_retry`` always declines, so only ``should_compact_retry`` loops.
    """
    m = Machine.build(memory="256M", profile=profile)
    steps: list[str] = []

    def compact(gfp: int, order: int, alloc_flags: int, ac: Any, prio: str) -> int:
        steps.append(f"compact {prio}")
        m.last_compact_result = last_result
        return -1

    def reclaim(gfp: int, order: int, ac: Any) -> int:
        steps.append("reclaim")
        return progress

    monkeypatch.setattr(m, "direct_compact", compact)
    monkeypatch.setattr(m, "direct_reclaim", reclaim)
    monkeypatch.setattr(pa, "get_page_from_freelist", lambda *args: -1)
    monkeypatch.setattr(pa, "should_reclaim_retry", lambda *args: False)
    ac, _flags = pa.prepare_alloc_pages(m, gfp, order, 0)
    assert pa.__alloc_pages_slowpath(m, gfp, order, ac) == -1
    return steps


def test_slowpath_compaction_first_for_non_movable_orders_since_v412(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slab = parse_gfp("GFP_KERNEL|__GFP_COMP|__GFP_NORETRY")
    assert _slowpath_steps("mainline", slab, 3, "complete", monkeypatch) == [
        "compact async", "reclaim", "compact sync_light"]
    # v4.8 reclaims first: only costly orders tried compaction before reclaim.
    assert _slowpath_steps("v4.8", slab, 3, "complete", monkeypatch) == [
        "reclaim", "compact sync_light"]
    assert _slowpath_steps("pre-4.8", slab, 3, "complete", monkeypatch) == [
        "reclaim", "compact sync_light"]


def test_slowpath_costly_noretry_gives_up_as_each_kernel_did(
        monkeypatch: pytest.MonkeyPatch) -> None:
    thp_like = parse_gfp("GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_NORETRY")
    # Mainline gives up when compaction was skipped or deferred; v4.8 only when deferred.
    assert _slowpath_steps("mainline", thp_like, 9, "skipped", monkeypatch) == [
        "compact async"]
    assert _slowpath_steps("v4.8", thp_like, 9, "skipped", monkeypatch) == [
        "compact async", "reclaim", "compact async"]
    assert _slowpath_steps("v4.8", thp_like, 9, "deferred", monkeypatch) == ["compact async"]
    # Otherwise both keep the async priority after reclaim (sync would be too expensive).
    assert _slowpath_steps("mainline", thp_like, 9, "complete", monkeypatch) == [
        "compact async", "reclaim", "compact async"]


def test_slowpath_compaction_retries_raise_the_priority_in_mainline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stack = parse_gfp("GFP_KERNEL")
    # A failed compaction is retried once more at the ultimate priority, then the OOM
    # killer's turn would come.
    assert _slowpath_steps("mainline", stack, 2, "complete", monkeypatch, progress=32) == [
        "compact async", "reclaim", "compact sync_light", "reclaim", "compact sync_full"]
    # Without reclaim progress compaction is not retried at all.
    assert _slowpath_steps("mainline", stack, 2, "complete", monkeypatch) == [
        "compact async", "reclaim", "compact sync_light"]


def test_slowpath_v48_stopgap_retries_while_the_min_watermark_holds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stack = parse_gfp("GFP_KERNEL")
    steps = _slowpath_steps("v4.8", stack, 2, "complete", monkeypatch, progress=32)
    # One round, then MAX_COMPACT_RETRIES more (the model's bound on the open-ended loop),
    # all at v4.8's default SYNC_LIGHT priority.
    assert steps == ["reclaim", "compact sync_light"] * (1 + MAX_COMPACT_RETRIES)
    monkeypatch.setattr(pa, "zone_watermark_ok", lambda *args: False)
    assert _slowpath_steps("v4.8", stack, 2, "complete", monkeypatch, progress=32) == [
        "reclaim", "compact sync_light"]


@pytest.mark.parametrize("order", [2, 4])
def test_should_compact_retry_mainline_feedback(order: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    m = Machine.build(memory="256M")
    ac, flags = pa.prepare_alloc_pages(m, parse_gfp("GFP_KERNEL"), order, 0)
    assert not pa.should_compact_retry(m, ac, 0, flags, "complete", pa.CompactRetry(1))
    # SKIPPED: retry only if reclaim could make room for the migration copies.
    from pagelab.mm import compaction

    for verdict in (True, False):
        monkeypatch.setattr(compaction, "compaction_zonelist_suitable", lambda *a, v=verdict: v)
        assert pa.should_compact_retry(m, ac, order, flags, "skipped",
                                       pa.CompactRetry(1)) is verdict
    # SUCCESS that was stolen: MAX_COMPACT_RETRIES (a quarter for costly orders), then
    # the priority goes up.
    retry = pa.CompactRetry(1)
    limit = MAX_COMPACT_RETRIES if order <= 3 else MAX_COMPACT_RETRIES // 4
    assert all(pa.should_compact_retry(m, ac, order, flags, "success", retry)
               for _ in range(limit))
    assert retry.priority == 1 and retry.retries == limit
    floor = 0 if order <= 3 else 1
    assert pa.should_compact_retry(m, ac, order, flags, "success", retry) is (floor == 0)
    assert retry.priority == floor
    # A failure at the floor priority ends it.
    assert not pa.should_compact_retry(m, ac, order, flags, "complete", retry)
