"""``struct page`` as numpy columns: the model's ``mem_map``.

One column per modelled field of ``struct page`` (v6.16 layout, 64-bit), indexed by pfn:

=============  ========  =================================================================
column         dtype     kernel field and what aliases it
=============  ========  =================================================================
``flags``      uint64    ``page->flags``: PG_* bits low, node and zone ids high
``refcount``   int32     ``_refcount``
``mapcount``   int32     ``_mapcount``; its unsigned view is ``page_type`` (PGTY_* << 24)
``mapping``    int32     ``mapping``: owner id << 2 | PAGE_MAPPING_* bits; TAIL_MAPPING on
                         tail pages; v4.8's ``compound_mapcount`` on the first tail page
``index``      int32     ``index`` (page offset in the owner; zsmalloc's next-page link)
``private``    int32     ``private``: buddy order when PageBuddy, driver data otherwise
``lru_next``   int32     ``lru.next`` = ``buddy_list``/``pcp_list`` link, stored as
                         ``target << 1``; on a tail page ``compound_head`` = ``head << 1 | 1``
``lru_prev``   int32     ``lru.prev``; on the first tail page the compound order
``token``      uint32    the page's content (0 = no content); owners check it
``alloc_mt``   int8      the migratetype the page was allocated with (page_owner's view,
                         used for pagetypeinfo's "Number of mixed blocks"); -1 when free
=============  ========  =================================================================

That is 41 bytes per page. List links are "pointers" (index << 1), so that bit 0 means the
same as in the kernel: a set bit 0 in ``lru.next`` marks a tail page, and a list link never
has it. The link arrays have extra slots after the last pfn that serve as list heads
(``free_area[order].free_list[mt]``), so buddy lists are the kernel's intrusive doubly linked
lists, with O(1) insertion at head or tail and O(1) removal of any page.

Scalar access in hot paths goes through ``*_mv`` memoryviews over the same buffers (about
twice as fast as numpy scalar indexing); bulk work uses the numpy arrays.

Simplification (named): pfn values must be below 2**30 (4 TiB of memory), because links are
stored doubled in int32 to keep the model within 48 bytes per page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pagelab.errors import BadConfiguration, ModelBug
from pagelab.mm import page_flags as pf

__all__ = ["LIST_POISON1", "LIST_POISON2", "MemMap", "PageView"]

#: ``list_del`` poisons the entry's links (LIST_POISON1/2 are even, never look like a tail).
LIST_POISON1 = -0x100
LIST_POISON2 = -0x122

MAX_PFNS = 1 << 30

BYTES_PER_PAGE = 8 + 4 + 4 + 4 + 4 + 4 + 4 + 4 + 4 + 1


class MemMap:
    """The columns of ``struct page`` for ``nr_pfns`` pages plus ``nr_list_heads`` list heads."""

    def __init__(self, nr_pfns: int, nr_list_heads: int) -> None:
        if nr_pfns <= 0:
            raise BadConfiguration("a memory map needs at least one page; give memory > 0")
        if nr_pfns + nr_list_heads >= MAX_PFNS:
            raise BadConfiguration(
                f"{nr_pfns} pages is more than the model supports (4 TiB); use less memory"
            )
        self.nr_pfns = nr_pfns
        self.nr_list_heads = nr_list_heads
        n_links = nr_pfns + nr_list_heads
        self.flags: NDArray[np.uint64] = np.zeros(nr_pfns, dtype=np.uint64)
        self.refcount: NDArray[np.int32] = np.zeros(nr_pfns, dtype=np.int32)
        self.mapcount: NDArray[np.int32] = np.full(nr_pfns, pf.MAPCOUNT_NONE, dtype=np.int32)
        self.mapping: NDArray[np.int32] = np.zeros(nr_pfns, dtype=np.int32)
        self.index: NDArray[np.int32] = np.zeros(nr_pfns, dtype=np.int32)
        self.private: NDArray[np.int32] = np.zeros(nr_pfns, dtype=np.int32)
        # INIT_LIST_HEAD: every entry and every head points at itself.
        self.lru_next: NDArray[np.int32] = np.arange(n_links, dtype=np.int32) << 1
        self.lru_prev: NDArray[np.int32] = self.lru_next.copy()
        self.token: NDArray[np.uint32] = np.zeros(nr_pfns, dtype=np.uint32)
        self.alloc_mt: NDArray[np.int8] = np.full(nr_pfns, -1, dtype=np.int8)
        self._make_views()

    def _make_views(self) -> None:
        self.flags_mv = self.flags.data
        self.refcount_mv = self.refcount.data
        self.mapcount_mv = self.mapcount.data
        self.mapping_mv = self.mapping.data
        self.index_mv = self.index.data
        self.private_mv = self.private.data
        self.lru_next_mv = self.lru_next.data
        self.lru_prev_mv = self.lru_prev.data
        self.token_mv = self.token.data
        self.alloc_mt_mv = self.alloc_mt.data

    @property
    def nbytes(self) -> int:
        """Return the bytes held by the columns."""
        arrays = (self.flags, self.refcount, self.mapcount, self.mapping, self.index,
                  self.private, self.lru_next, self.lru_prev, self.token, self.alloc_mt)
        return sum(a.nbytes for a in arrays)

    # --- intrusive lists (include/linux/list.h) over lru_next/lru_prev ----------------------

    def list_head(self, slot: int) -> int:
        """Return the link index of list head number ``slot``."""
        return self.nr_pfns + slot

    def list_empty(self, head: int) -> bool:
        """Return whether the list at ``head`` is empty (``list_empty``)."""
        return self.lru_next_mv[head] == head << 1

    def list_first(self, head: int) -> int:
        """Return the first entry of a non-empty list (``list_first_entry``)."""
        return self.lru_next_mv[head] >> 1

    def list_last(self, head: int) -> int:
        """Return the last entry of a non-empty list (``list_last_entry``)."""
        return self.lru_prev_mv[head] >> 1

    def _list_corruption(self, what: str) -> None:
        raise ModelBug(f"list corruption (CONFIG_DEBUG_LIST): {what}")

    def list_add(self, entry: int, head: int) -> None:
        """Insert ``entry`` right after ``head`` (``list_add``: the hot end).

        Checks what ``__list_add_valid`` checks (CONFIG_DEBUG_LIST).
        """
        nxt = self.lru_next_mv
        prv = self.lru_prev_mv
        first = nxt[head]
        if prv[first >> 1] != head << 1 or entry == head or entry << 1 == first:
            self._list_corruption(f"list_add of {entry:#x} after {head:#x}: next->prev should "
                                  f"be prev ({head:#x}), but was {prv[first >> 1] >> 1:#x}")
        e2 = entry << 1
        nxt[entry] = first
        prv[entry] = head << 1
        prv[first >> 1] = e2
        nxt[head] = e2

    def list_add_tail(self, entry: int, head: int) -> None:
        """Insert ``entry`` right before ``head`` (``list_add_tail``: the cold end)."""
        nxt = self.lru_next_mv
        prv = self.lru_prev_mv
        last = prv[head]
        if nxt[last >> 1] != head << 1 or entry == head or entry << 1 == last:
            self._list_corruption(f"list_add_tail of {entry:#x} before {head:#x}: prev->next "
                                  f"should be next ({head:#x}), but was {nxt[last >> 1] >> 1:#x}")
        e2 = entry << 1
        nxt[entry] = head << 1
        prv[entry] = last
        nxt[last >> 1] = e2
        prv[head] = e2

    def list_del(self, entry: int) -> None:
        """Unlink ``entry`` and poison its links (``list_del``).

        Checks what ``__list_del_entry_valid`` checks (CONFIG_DEBUG_LIST).
        """
        nxt = self.lru_next_mv
        prv = self.lru_prev_mv
        n = nxt[entry]
        p = prv[entry]
        if n == LIST_POISON1 or p == LIST_POISON2 or nxt[p >> 1] != entry << 1 or \
                prv[n >> 1] != entry << 1:
            self._list_corruption(f"list_del of {entry:#x}: its neighbours do not point back "
                                  "at it (deleted twice, or on two lists)")
        nxt[p >> 1] = n
        prv[n >> 1] = p
        nxt[entry] = LIST_POISON1
        prv[entry] = LIST_POISON2

    def list_move_tail(self, entry: int, head: int) -> None:
        """Move ``entry`` to the tail of the list at ``head`` (``list_move_tail``)."""
        nxt = self.lru_next_mv
        prv = self.lru_prev_mv
        n = nxt[entry]
        p = prv[entry]
        if nxt[p >> 1] != entry << 1 or prv[n >> 1] != entry << 1:
            self._list_corruption(f"list_move_tail of {entry:#x}: its neighbours do not point "
                                  "back at it")
        nxt[p >> 1] = n
        prv[n >> 1] = p
        self.list_add_tail(entry, head)

    def list_entries(self, head: int) -> Iterator[int]:
        """Yield the entries of the list at ``head`` from first to last (``list_for_each``)."""
        nxt = self.lru_next_mv
        cur = nxt[head]
        stop = head << 1
        limit = self.nr_pfns
        while cur != stop:
            yield cur >> 1
            cur = nxt[cur >> 1]
            limit -= 1
            if limit < 0 or cur < 0:
                self._list_corruption(f"the list at {head:#x} does not lead back to its head")

    def list_len(self, head: int) -> int:
        """Count the entries of a list by walking it, as pagetypeinfo does."""
        return sum(1 for _ in self.list_entries(head))

    # --- display -----------------------------------------------------------------------------

    def dump_page(self, pfn: int) -> str:
        """Return the text ``dump_page()`` would print for ``pfn`` (model fields only).

        As in the kernel's ``__dump_folio``, the flags shown are the folio's (the compound
        head's): a first tail page's own flags word holds the folio order in its low byte,
        which would decode as bogus PG_locked/PG_writeback/... bits.
        """
        head = pf.compound_head(self, pfn)
        if not 0 <= head < self.nr_pfns:  # a corrupted compound_head word: show the page
            head = pfn
        flags = int(self.flags[head])
        ptype = pf.page_type(self, pfn)
        kind = f" type:{pf.PAGE_TYPE_NAMES.get(ptype, hex(ptype))}" if ptype else ""
        comp = f" head:{head:#x}" if head != pfn else ""
        if pf.PageHead(self, pfn):
            comp = f" head order:{pf.compound_order(self, pfn)}"
        return (
            f"page pfn:{pfn:#x} refcount:{int(self.refcount[pfn])} "
            f"mapcount:{int(self.mapcount[pfn])} mapping:{int(self.mapping[pfn]):#x} "
            f"index:{int(self.index[pfn]):#x} private:{int(self.private[pfn]):#x}{comp}{kind} "
            f"flags: {flags & pf.PAGEFLAGS_MASK:#x}({pf.decode_page_flags(self, head)})"
        )


@dataclass(frozen=True, slots=True)
class PageView:
    """A read-only snapshot of one ``struct page``, for display (``page(pfn)``)."""

    pfn: int
    flags: int
    zone: str
    node: int
    refcount: int
    mapcount: int
    mapping: int
    index: int
    private: int
    compound_head: int
    token: int
    page_type: str
    decoded_flags: str

    def __repr__(self) -> str:
        parts = [f"pfn={self.pfn:#x}", f"zone={self.zone}", f"flags={self.decoded_flags or '0'}",
                 f"refcount={self.refcount}"]
        if self.page_type:
            parts.append(f"type={self.page_type}")
        else:
            parts.append(f"mapcount={self.mapcount}")
        if self.mapping:
            parts.append(f"mapping={self.mapping:#x}")
        if self.private:
            parts.append(f"private={self.private}")
        if self.compound_head != self.pfn:
            parts.append(f"head={self.compound_head:#x}")
        parts.append(f"token={self.token:#x}")
        return f"Page({', '.join(parts)})"
