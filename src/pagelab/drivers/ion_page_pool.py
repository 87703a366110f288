"""ION's page pools: blocks of one order that a heap keeps when a buffer is freed.

Models ``drivers/staging/android/ion/ion_page_pool.c`` as v4.8 had it. A freed buffer's pages
go into the pool of their order instead of back to the buddy allocator, and the next buffer
takes them from there; only an empty pool calls ``alloc_pages`` (with the pool's gfp mask
and ``__GFP_COMP``). Nothing bounds a pool but reclaim: the heap's shrinker
(:mod:`pagelab.drivers.ion_system_heap`) frees pooled blocks through :meth:`IonPagePool.shrink`.

Named simplification: the model has no highmem, so every block is a "low" item and the
``high`` list of the kernel (blocks in ``ZONE_HIGHMEM``, which only kswapd and
``__GFP_HIGHMEM`` reclaimers may shrink) stays empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from pagelab.errors import InvalidArgument
from pagelab.mm import gfp as G  # noqa: N812 (the kernel's GFP names read best)

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["IonPagePool", "PageAllocator"]

#: How a pool reaches the page allocator: ``(order, gfp) -> pfn or None``. A workload may
#: pass its own, to time the requests that miss the pool.
PageAllocator = Callable[[int, int], "int | None"]
#: Every pool asks for compound blocks (a class body would mangle ``G.__GFP_COMP``).
_GFP_COMP = G.__GFP_COMP


class IonPagePool:
    """``struct ion_page_pool``: pooled blocks of one order, and how to get more."""

    def __init__(self, m: Machine, gfp_mask: int, order: int, cached: bool = False,
                 page_alloc: PageAllocator | None = None) -> None:
        if not 0 <= order <= 10:
            raise InvalidArgument(f"ion page pool order {order}: give 0..10")
        self.m = m
        self.gfp_mask = gfp_mask | _GFP_COMP
        self.order = order
        self.cached = cached
        self.low_items: list[int] = []
        self._page_alloc: PageAllocator = page_alloc or m.alloc_pages
        #: Blocks handed out from the pool and from the buddy allocator (the model's tally).
        self.hits = 0
        self.misses = 0

    @property
    def low_count(self) -> int:
        return len(self.low_items)

    def alloc_pages(self) -> int | None:
        """Get a block from the buddy allocator (``ion_page_pool_alloc_pages``)."""
        self.misses += 1
        return self._page_alloc(self.order, self.gfp_mask)

    def free_pages(self, pfn: int) -> None:
        """Give a block back to the buddy allocator (``ion_page_pool_free_pages``)."""
        self.m.free_pages(pfn, self.order)

    def alloc(self) -> int | None:
        """Take a pooled block, or allocate one (``ion_page_pool_alloc``)."""
        if self.low_items:
            self.hits += 1
            return self.low_items.pop()
        return self.alloc_pages()

    def free(self, pfn: int) -> None:
        """Keep a freed buffer's block for the next buffer (``ion_page_pool_free``)."""
        self.low_items.append(pfn)

    def total(self) -> int:
        """Pages held in the pool (``ion_page_pool_total``)."""
        return self.low_count << self.order

    def shrink(self, gfp_mask: int, nr_to_scan: int) -> int:
        """Free pooled blocks until ``nr_to_scan`` pages went (``ion_page_pool_shrink``).

        ``nr_to_scan == 0`` only counts. Returns the pages freed (or counted).
        """
        if nr_to_scan == 0:
            return self.total()
        freed = 0
        while freed < nr_to_scan and self.low_items:
            self.free_pages(self.low_items.pop())
            freed += 1 << self.order
        return freed

    def destroy(self) -> None:
        """Free every pooled block (``ion_page_pool_destroy`` after a final shrink)."""
        while self.low_items:
            self.free_pages(self.low_items.pop())

    def check(self, held: Mapping[int, int]) -> list[str]:
        """Return what is wrong: a pooled block not allocated at the pool's order, or twice.

        ``held`` is the machine's allocated blocks (pfn -> order).
        """
        problems = []
        if len(set(self.low_items)) != len(self.low_items):
            problems.append(f"ion pool order {self.order}: a block is pooled twice")
        problems += [f"ion pool order {self.order}: pooled pfn {pfn:#x} is not an allocated "
                     "block of that order" for pfn in self.low_items if held.get(pfn) != self.order]
        return problems
