"""hugetlbfs pages: compound folios of the default huge page size, typed PGTY_hugetlb.

Models what ``mm/hugetlb.c`` (v6.16) does to ``struct page`` when ``/proc/sys/vm/nr_hugepages``
grows or shrinks: ``alloc_buddy_hugetlb_folio`` takes an order-9 compound page from the buddy
allocator with ``htlb_alloc_mask`` (GFP_HIGHUSER: hugetlb pages are not movable unless
``hugepages_treat_as_movable``) plus __GFP_COMP | __GFP_THISNODE | __GFP_NOWARN and, for the
pool, __GFP_RETRY_MAYFAIL; the folio is marked hugetlb (a folio page type since v6.10) and
kept off the LRU. Compaction skips such pages (they are compound), as the kernel does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pagelab.errors import ModelBug
from pagelab.mm import page_alloc as pa
from pagelab.mm import page_flags as pf
from pagelab.mm.gfp import (
    __GFP_COMP,
    __GFP_NOWARN,
    __GFP_RETRY_MAYFAIL,
    __GFP_THISNODE,
    GFP_HIGHUSER,
)
from pagelab.mm.mmzone import pageblock_order

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["HUGETLB_PAGE_ORDER", "alloc_pool_huge_folio", "free_huge_folio", "htlb_alloc_mask"]

HUGETLB_PAGE_ORDER = pageblock_order  # 2 MiB on x86-64


def htlb_alloc_mask() -> int:
    """Return the gfp mask for a huge page of the default hstate (``htlb_alloc_mask``)."""
    return GFP_HIGHUSER


def alloc_pool_huge_folio(m: Machine, nid: int) -> int:
    """Allocate one huge page for the pool; -1 on failure (``alloc_pool_huge_folio``)."""
    gfp = htlb_alloc_mask() | __GFP_COMP | __GFP_THISNODE | __GFP_NOWARN | __GFP_RETRY_MAYFAIL
    pfn = pa.alloc_pages_node(m, nid, gfp, HUGETLB_PAGE_ORDER)
    if pfn < 0:
        return -1
    m.mem.mapcount_mv[pfn] = pf.page_type_value(pf.PGTY_hugetlb)  # __folio_set_hugetlb
    return pfn


def free_huge_folio(m: Machine, pfn: int) -> None:
    """Give a pool huge page back to the buddy (``update_and_free_hugetlb_folio``)."""
    mem = m.mem
    if (mem.mapcount_mv[pfn] >> 24) & 0xFF != pf.PGTY_hugetlb:
        raise ModelBug(f"VM_BUG_ON_FOLIO(!folio_test_hugetlb(folio)) at pfn {pfn:#x}: "
                       f"{mem.dump_page(pfn)}")
    mem.mapcount_mv[pfn] = pf.MAPCOUNT_NONE  # __folio_clear_hugetlb
    pa.free_pages(m, pfn, HUGETLB_PAGE_ORDER)
