"""ION's page pools: blocks kept after a free, handed out before the buddy allocator's."""

from __future__ import annotations

import pytest

from pagelab import Machine
from pagelab.drivers.ion_page_pool import IonPagePool
from pagelab.errors import InvalidArgument
from pagelab.mm import gfp as G


@pytest.fixture
def m() -> Machine:
    return Machine.build(memory="64M")


def test_an_empty_pool_allocates_and_a_freed_block_comes_back_first(m: Machine) -> None:
    pool = IonPagePool(m, G.GFP_HIGHUSER, 4)
    assert pool.gfp_mask & G.__GFP_COMP
    first = pool.alloc()
    assert first is not None and m.allocations()[first] == 4
    assert (pool.hits, pool.misses) == (0, 1)
    pool.free(first)
    assert pool.total() == 16 and m.allocations()[first] == 4  # kept, not freed
    assert pool.alloc() == first and (pool.hits, pool.misses) == (1, 1)
    pool.free(first)
    m.check_state()


def test_shrink_counts_then_frees_whole_blocks(m: Machine) -> None:
    pool = IonPagePool(m, G.GFP_HIGHUSER, 4)
    blocks = [pool.alloc() for _ in range(3)]
    for pfn in blocks:
        assert pfn is not None
        pool.free(pfn)
    assert pool.shrink(G.GFP_KERNEL, 0) == 48  # counting frees nothing
    assert len(m.allocations()) == 3
    assert pool.shrink(G.GFP_KERNEL, 20) == 32  # whole blocks until 20 pages went
    assert pool.total() == 16 and len(m.allocations()) == 1
    assert pool.shrink(G.GFP_KERNEL, 1000) == 16 and not m.allocations()
    assert pool.shrink(G.GFP_KERNEL, 10) == 0


def test_check_finds_a_block_freed_behind_the_pools_back(m: Machine) -> None:
    pool = IonPagePool(m, G.GFP_HIGHUSER, 2)
    pfn = pool.alloc()
    assert pfn is not None
    pool.free(pfn)
    assert pool.check(m.allocations()) == []
    m.free_pages(pfn, 2)
    assert pool.check(m.allocations())
    pool.low_items.clear()


def test_a_workload_can_time_the_misses(m: Machine) -> None:
    seen: list[int] = []

    def page_alloc(order: int, gfp: int) -> int | None:
        seen.append(order)
        return m.alloc_pages(order, gfp)

    pool = IonPagePool(m, G.GFP_HIGHUSER, 4, page_alloc=page_alloc)
    pfn = pool.alloc()
    assert pfn is not None
    pool.free(pfn)
    pool.alloc()
    assert seen == [4]
    with pytest.raises(InvalidArgument):
        IonPagePool(m, G.GFP_HIGHUSER, 11)
