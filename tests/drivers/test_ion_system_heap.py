"""ION's system heap: buffers from the largest blocks that fit, pools refilled by frees and
drained by reclaim through the heap's shrinker."""

from __future__ import annotations

import pytest

from pagelab import Machine
from pagelab.drivers.ion_system_heap import (
    HIGH_ORDER_GFP_FLAGS,
    LOW_ORDER_GFP_FLAGS,
    ORDERS,
    IonSystemHeap,
)
from pagelab.errors import InvalidArgument
from pagelab.mm import gfp as G
from pagelab.mm.shrinker import shrink_slab

KIB = 1024


@pytest.fixture
def m() -> Machine:
    return Machine.build(memory="128M", profile="v4.8")


def orders_of(buffer) -> list[int]:
    return [order for _, order in buffer.blocks]


def test_only_order_8_gives_up_direct_reclaim(m: Machine) -> None:
    heap = IonSystemHeap(m)
    assert ORDERS == (8, 4, 0)
    flags = {pool.order: pool.gfp_mask for pool in heap.uncached_pools}
    assert not flags[8] & G.__GFP_DIRECT_RECLAIM and flags[8] & G.__GFP_KSWAPD_RECLAIM
    assert flags[4] & G.__GFP_DIRECT_RECLAIM and not flags[4] & G.__GFP_NORETRY
    assert flags[4] == LOW_ORDER_GFP_FLAGS | G.__GFP_COMP
    assert flags[8] == HIGH_ORDER_GFP_FLAGS | G.__GFP_COMP
    assert not flags[4] & G.__GFP_MOVABLE  # ION's pages never move


def test_a_buffer_takes_the_largest_blocks_that_fit(m: Machine) -> None:
    heap = IonSystemHeap(m)
    buffer = heap.allocate(1024 * KIB + 64 * KIB + 8 * KIB)
    assert buffer is not None and orders_of(buffer) == [8, 4, 0, 0]
    assert heap.allocate(512 * KIB) is not None
    heap.free(buffer)
    m.check_state()


def test_after_an_order_0_block_no_larger_order_is_tried(m: Machine) -> None:
    asked: list[int] = []

    def no_order_4(order: int, gfp: int) -> int | None:
        asked.append(order)
        return None if order == 4 else m.alloc_pages(order, gfp)

    heap = IonSystemHeap(m, page_alloc=no_order_4)
    buffer = heap.allocate(128 * KIB)
    assert buffer is not None and orders_of(buffer) == [0] * 32
    assert asked == [4] + [0] * 32  # one order-4 miss, then order 0 only


def test_freed_blocks_serve_the_next_buffer_until_reclaim_drains_them(m: Machine) -> None:
    asked: list[int] = []

    def page_alloc(order: int, gfp: int) -> int | None:
        asked.append(order)
        return m.alloc_pages(order, gfp)

    heap = IonSystemHeap(m, page_alloc=page_alloc)
    buffer = heap.allocate(512 * KIB)
    assert buffer is not None and asked == [4] * 8
    heap.free(buffer)
    assert heap.pooled_pages() == 128 and len(m.allocations()) == 8
    again = heap.allocate(512 * KIB)
    assert again is not None and asked == [4] * 8  # all eight from the pool
    heap.free(again)
    # Reclaim at a pressure that asks for everything: the pool goes back to the buddy.
    shrink_slab(m, G.GFP_KERNEL, 0, 0, nr_scanned=1000, nr_eligible=1000)
    assert heap.pooled_pages() == 0 and not m.allocations()
    m.check_state()


def test_sizes_are_checked_and_a_huge_buffer_is_refused(m: Machine) -> None:
    heap = IonSystemHeap(m)
    for bad in (0, -4096, 1000):
        with pytest.raises(InvalidArgument):
            heap.allocate(bad)
    assert heap.allocate(100 << 20) is None  # more than half of RAM


def test_destroy_empties_the_pools_and_unregisters(m: Machine) -> None:
    heap = IonSystemHeap(m)
    buffer = heap.allocate(256 * KIB, cached=True)
    assert buffer is not None
    heap.free(buffer)
    assert sum(p.total() for p in heap.cached_pools) == 64
    heap.destroy()
    assert not m.allocations() and heap.shrinker not in m.shrinkers
    m.check_state()
