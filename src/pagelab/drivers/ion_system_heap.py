"""ION's system heap: camera and video buffers built from order-8, 4 and 0 blocks.

Models ``drivers/staging/android/ion/ion_system_heap.c`` as v4.8 had it, with the heap
shrinker of ``ion_heap.c``:

* a buffer is built greedily from the largest order in ``ORDERS`` that fits the size left,
  each block taken from that order's pool (:class:`pagelab.drivers.ion_page_pool.
  IonPagePool`) or, when the pool is empty, from the page allocator
  (``alloc_largest_available``); once a block of some order is taken, no larger order is
  tried for the rest of the buffer;
* the order-8 pools allocate with ``high_order_gfp_flags`` (no direct reclaim, kswapd woken,
  ``__GFP_NORETRY``), the others with ``low_order_gfp_flags`` (``GFP_HIGHUSER``: an order-4
  block may reclaim and compact, as a costly order does once); none is movable;
* a freed buffer's blocks go back to their pools; the heap's shrinker (``seeks =
  DEFAULT_SEEKS``) counts and frees pooled pages for reclaim (``ion_system_heap_shrink``).

Named simplifications: buffers are freed at once (the heap's ``ION_HEAP_FLAG_DEFER_FREE``
thread runs promptly), so the shrinker has no deferred free list to drain first; pages are
not zeroed or flushed (their contents are not modelled); no highmem (see the pool module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pagelab.drivers.ion_page_pool import IonPagePool, PageAllocator
from pagelab.errors import InvalidArgument
from pagelab.mm import gfp as G  # noqa: N812 (the kernel's GFP names read best)
from pagelab.mm.mmzone import PAGE_SHIFT
from pagelab.mm.shrinker import ShrinkControl, Shrinker, register_shrinker, unregister_shrinker

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["HIGH_ORDER_GFP_FLAGS", "LOW_ORDER_GFP_FLAGS", "ORDERS", "IonBuffer",
           "IonSystemHeap"]

#: The block orders a buffer is built from, largest first (``orders[]``, arm64).
ORDERS = (8, 4, 0)
#: Pools above order 4 (v4.4..v4.11): no direct reclaim, kswapd woken.
HIGH_ORDER_GFP_FLAGS = ((G.GFP_HIGHUSER | G.__GFP_ZERO | G.__GFP_NOWARN | G.__GFP_NORETRY)
                        & ~G.__GFP_DIRECT_RECLAIM)
#: Orders 4 and 0: a plain ``GFP_HIGHUSER`` request.
LOW_ORDER_GFP_FLAGS = G.GFP_HIGHUSER | G.__GFP_ZERO | G.__GFP_NOWARN


@dataclass(eq=False)
class IonBuffer:
    """``struct ion_buffer`` of the system heap: its blocks as (pfn, order)."""

    size: int
    cached: bool = False
    blocks: list[tuple[int, int]] = field(default_factory=list)


class IonSystemHeap:
    """The system heap: uncached and cached pools per order, and the heap's shrinker."""

    def __init__(self, m: Machine, page_alloc: PageAllocator | None = None) -> None:
        self.m = m
        self.uncached_pools = self._create_pools(cached=False, page_alloc=page_alloc)
        self.cached_pools = self._create_pools(cached=True, page_alloc=page_alloc)
        #: Every pool: the uncached ones, then the cached ones.
        self.pools = (*self.uncached_pools, *self.cached_pools)
        self.shrinker = Shrinker("ion_system_heap", count_objects=self.ion_heap_shrink_count,
                                 scan_objects=self.ion_heap_shrink_scan)
        register_shrinker(m, self.shrinker)
        m.state_checkers.append(self.check)

    def _create_pools(self, cached: bool, page_alloc: PageAllocator | None) -> list[IonPagePool]:
        """``ion_system_heap_create_pools``: high-order flags only above order 4."""
        return [IonPagePool(self.m, HIGH_ORDER_GFP_FLAGS if order > 4 else LOW_ORDER_GFP_FLAGS,
                            order, cached, page_alloc) for order in ORDERS]

    def _pool(self, cached: bool, order: int) -> IonPagePool:
        pools = self.cached_pools if cached else self.uncached_pools
        return pools[ORDERS.index(order)]

    # --- buffers -------------------------------------------------------------------------

    def alloc_largest_available(self, buffer: IonBuffer, size: int,
                                max_order: int) -> tuple[int, int] | None:
        """The largest block that fits ``size`` and ``max_order`` (``alloc_largest_available``)."""
        for order in ORDERS:
            if size < 1 << (PAGE_SHIFT + order) or max_order < order:
                continue
            pfn = self._pool(buffer.cached, order).alloc()
            if pfn is not None:
                return pfn, order
        return None

    def allocate(self, size: int, cached: bool = False) -> IonBuffer | None:
        """Build a buffer of ``size`` bytes (``ion_system_heap_allocate``); None is -ENOMEM."""
        if size <= 0 or size % (1 << PAGE_SHIFT):
            raise InvalidArgument(f"ion buffer of {size} bytes: give a positive multiple of "
                                  f"{1 << PAGE_SHIFT}")
        if size >> PAGE_SHIFT > sum(z.managed_pages for z in self.m.zones) // 2:
            return None
        buffer = IonBuffer(size, cached)
        remaining, max_order = size, ORDERS[0]
        while remaining > 0:
            got = self.alloc_largest_available(buffer, remaining, max_order)
            if got is None:
                self.free(buffer)
                return None
            buffer.blocks.append(got)
            remaining -= 1 << (PAGE_SHIFT + got[1])
            max_order = got[1]
        return buffer

    def free(self, buffer: IonBuffer) -> None:
        """Put a buffer's blocks back in their pools (``ion_system_heap_free``)."""
        for pfn, order in buffer.blocks:
            self._pool(buffer.cached, order).free(pfn)
        buffer.blocks = []

    # --- the shrinker --------------------------------------------------------------------

    def ion_system_heap_shrink(self, gfp_mask: int, nr_to_scan: int) -> int:
        """Count (``nr_to_scan == 0``) or free pooled pages, smallest order's pools last."""
        total = 0
        for uncached, cached in zip(self.uncached_pools, self.cached_pools, strict=True):
            for pool in (uncached, cached):
                if nr_to_scan == 0:
                    total += pool.shrink(gfp_mask, 0)
                    continue
                freed = pool.shrink(gfp_mask, nr_to_scan)
                nr_to_scan -= freed
                total += freed
                if nr_to_scan <= 0:
                    return total
        return total

    def ion_heap_shrink_count(self, sc: ShrinkControl) -> int:
        """Pages the heap could give back (``ion_heap_shrink_count``)."""
        return self.ion_system_heap_shrink(sc.gfp_mask, 0)

    def ion_heap_shrink_scan(self, sc: ShrinkControl) -> int:
        """Free pooled pages for reclaim (``ion_heap_shrink_scan``)."""
        if sc.nr_to_scan == 0:
            return 0
        return self.ion_system_heap_shrink(sc.gfp_mask, sc.nr_to_scan)

    # --- life cycle ----------------------------------------------------------------------

    def pooled_pages(self) -> int:
        """Pages held in all pools."""
        return sum(p.total() for p in self.pools)

    def blocks_served(self, order: int) -> tuple[int, int]:
        """Blocks of ``order`` handed out from the pools and from the page allocator."""
        pools = [p for p in self.pools if p.order == order]
        return sum(p.hits for p in pools), sum(p.misses for p in pools)

    def destroy(self) -> None:
        """Empty the pools and unregister the shrinker (``ion_system_heap_destroy``)."""
        for pool in self.pools:
            pool.destroy()
        unregister_shrinker(self.m, self.shrinker)
        if self.check in self.m.state_checkers:
            self.m.state_checkers.remove(self.check)

    def check(self) -> list[str]:
        """Return what is wrong with the pools (run by ``m.check_state()``)."""
        held = self.m.allocations()
        return [problem for pool in self.pools for problem in pool.check(held)]
