"""Page flags, page types and ``page->mapping`` low bits, with the kernel's predicates.

Models ``include/linux/page-flags.h`` of mainline v6.16 (x86-64, CONFIG_MMU,
CONFIG_MEMORY_FAILURE, CONFIG_PAGE_IDLE_FLAG on 64-bit; x86 uses neither PG_arch_2 nor
PG_arch_3), and the non-LRU movable encoding of v4.8 (``PAGE_MAPPING_MOVABLE``, ``PG_isolated``
= ``PG_reclaim``) that mainline kept until the 2025 movable_ops rework.

Every predicate takes the state (a :class:`~pagelab.mm.memmap.MemMap`) and a pfn, in the
spirit of drgn's helpers taking ``prog`` first. Flag policies follow the kernel's
(``PF_HEAD`` predicates redirect to the compound head, ``PF_ANY`` ones test the page itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pagelab.errors import ModelBug

if TYPE_CHECKING:
    from pagelab.mm.memmap import MemMap

# --- enum pageflags (v6.16, include/linux/page-flags.h) -------------------------------------
PG_locked = 0
PG_writeback = 1
PG_referenced = 2
PG_uptodate = 3
PG_dirty = 4
PG_lru = 5
PG_head = 6
PG_waiters = 7
PG_active = 8
PG_workingset = 9
PG_owner_priv_1 = 10
PG_owner_2 = 11
PG_arch_1 = 12
PG_reserved = 13
PG_private = 14
PG_private_2 = 15
PG_reclaim = 16
PG_swapbacked = 17
PG_unevictable = 18
PG_dropbehind = 19
PG_mlocked = 20
PG_hwpoison = 21
PG_young = 22
PG_idle = 23
NR_PAGEFLAGS = 24

# Aliases: the same bit read with another meaning.
PG_readahead = PG_reclaim
PG_swapcache = PG_owner_priv_1
PG_checked = PG_owner_priv_1
PG_anon_exclusive = PG_owner_2
PG_mappedtodisk = PG_owner_2
PG_fscache = PG_private_2
PG_isolated = PG_reclaim  # non-LRU isolated movable page (v4.8 .. v6.16)
PG_reported = PG_uptodate
PG_has_hwpoisoned = PG_active  # first tail page only
PG_large_rmappable = PG_workingset  # first tail page only
PG_partially_mapped = PG_reclaim  # first tail page only

PAGEFLAGS_MASK = (1 << NR_PAGEFLAGS) - 1

#: Names in bit order, for ``decode_page_flags``; aliases are not listed.
PAGEFLAG_NAMES: tuple[str, ...] = (
    "locked", "writeback", "referenced", "uptodate", "dirty", "lru", "head", "waiters",
    "active", "workingset", "owner_priv_1", "owner_2", "arch_1", "reserved", "private",
    "private_2", "reclaim", "swapbacked", "unevictable", "dropbehind", "mlocked", "hwpoison",
    "young", "idle",
)

#: Flags that must be clear when a page is freed (``PAGE_FLAGS_CHECK_AT_FREE``, v6.16,
#: without the MGLRU generation bits, which the model does not keep).
PAGE_FLAGS_CHECK_AT_FREE = (
    1 << PG_lru | 1 << PG_locked | 1 << PG_private | 1 << PG_private_2 | 1 << PG_writeback
    | 1 << PG_reserved | 1 << PG_active | 1 << PG_unevictable | 1 << PG_mlocked
)
#: Flags cleared by ``free_pages_prepare`` (``PAGE_FLAGS_CHECK_AT_PREP``): all page flags
#: except PG_hwpoison. PG_isolated (= PG_reclaim) is among them, so a freed page never
#: stays isolated.
PAGE_FLAGS_CHECK_AT_PREP = PAGEFLAGS_MASK & ~(1 << PG_hwpoison)

# --- zone and node ids in the high bits of page->flags ----------------------------------
# The kernel packs section/node/zone ids downward from bit 63 (ZONES_PGSHIFT, NODES_PGSHIFT).
# The model uses fixed widths: 3 zone bits and 10 node bits.
ZONES_WIDTH = 3
NODES_WIDTH = 10
ZONES_PGSHIFT = 64 - ZONES_WIDTH
NODES_PGSHIFT = ZONES_PGSHIFT - NODES_WIDTH
ZONES_MASK = (1 << ZONES_WIDTH) - 1
NODES_MASK = (1 << NODES_WIDTH) - 1
#: The bits a page keeps for its whole life (never cleared by flag operations).
PAGE_FIELDS_MASK = ~PAGEFLAGS_MASK & ((1 << 64) - 1) & ~((1 << NODES_PGSHIFT) - 1)

# --- page types (enum pagetype, v6.16): the top byte of page_type, which overlays _mapcount --
PGTY_buddy = 0xF0
PGTY_offline = 0xF1  # balloon pages (PageBalloon until v5.0)
PGTY_table = 0xF2
PGTY_guard = 0xF3
PGTY_hugetlb = 0xF4
PGTY_slab = 0xF5
PGTY_zsmalloc = 0xF6
PGTY_unaccepted = 0xF7
PGTY_large_kmalloc = 0xF8
PGTY_mapcount_underflow = 0xFF

PAGE_TYPE_NAMES: dict[int, str] = {
    PGTY_buddy: "buddy", PGTY_offline: "offline", PGTY_table: "table", PGTY_guard: "guard",
    PGTY_hugetlb: "hugetlb", PGTY_slab: "slab", PGTY_zsmalloc: "zsmalloc",
    PGTY_unaccepted: "unaccepted", PGTY_large_kmalloc: "large_kmalloc",
}


def page_type_value(pgty: int) -> int:
    """Return the signed ``_mapcount`` word that ``__SetPageX`` stores for type ``pgty``.

    Since v6.12 a typed page holds ``pgty << 24`` in ``page_type`` (low 24 bits free for the
    owner); read as the signed ``_mapcount`` that is a large negative number.
    """
    return (pgty << 24) - (1 << 32)


PAGE_TYPE_BUDDY = page_type_value(PGTY_buddy)
PAGE_TYPE_OFFLINE = page_type_value(PGTY_offline)
PAGE_TYPE_TABLE = page_type_value(PGTY_table)
PAGE_TYPE_ZSMALLOC = page_type_value(PGTY_zsmalloc)
PAGE_TYPE_GUARD = page_type_value(PGTY_guard)
#: ``_mapcount`` of an untyped, unmapped page (page_type == UINT_MAX).
MAPCOUNT_NONE = -1
#: A signed _mapcount below this carries a type: page_type < (PGTY_mapcount_underflow << 24).
PAGE_TYPE_LIMIT = page_type_value(PGTY_mapcount_underflow)
_TYPED_LIMIT = PAGE_TYPE_LIMIT

# --- page->mapping low bits (v4.8 .. v6.16) ----------------------------------------------------
PAGE_MAPPING_ANON = 0x1
PAGE_MAPPING_MOVABLE = 0x2
PAGE_MAPPING_KSM = PAGE_MAPPING_ANON | PAGE_MAPPING_MOVABLE
PAGE_MAPPING_FLAGS = PAGE_MAPPING_ANON | PAGE_MAPPING_MOVABLE
#: ``TAIL_MAPPING`` (0x400 + POISON_POINTER_DELTA): only the low bits matter to the model, and
#: they are 00, so a tail page other than the first never looks movable.
TAIL_MAPPING = 0x400


def mapping_encode(owner_id: int, bits: int) -> int:
    """Return the mapping word for owner ``owner_id`` (an address_space or anon_vma id).

    Owner ids stand for kernel pointers, which are at least 4-byte aligned, so the id is
    shifted left by two and the low bits carry the PAGE_MAPPING_* tags, as in the kernel.
    """
    return (owner_id << 2) | bits


def mapping_owner(mapping: int) -> int:
    """Return the owner id of a mapping word with its low bits masked off."""
    return mapping >> 2


# --- predicates ---------------------------------------------------------------------------------


def compound_head(mem: MemMap, pfn: int) -> int:
    """Return the pfn of the compound head of ``pfn`` (``compound_head()``).

    A tail page stores ``head | 1`` in the word that aliases ``lru.next``.
    """
    head = mem.lru_next_mv[pfn]
    if head & 1:
        return head >> 1
    return pfn


def PageTail(mem: MemMap, pfn: int) -> bool:
    """Return whether ``pfn`` is a tail page (bit 0 of the ``compound_head`` word)."""
    return bool(mem.lru_next_mv[pfn] & 1)


def PageHead(mem: MemMap, pfn: int) -> bool:
    """Return whether ``pfn`` is the head of a compound page (PG_head, PF_ANY)."""
    return bool(mem.flags_mv[pfn] >> PG_head & 1)


def PageCompound(mem: MemMap, pfn: int) -> bool:
    """Return whether ``pfn`` is part of a compound page (head or tail)."""
    return bool(mem.flags_mv[pfn] >> PG_head & 1) or bool(mem.lru_next_mv[pfn] & 1)


def compound_order(mem: MemMap, pfn: int) -> int:
    """Return the order of the compound page headed by ``pfn``, 0 if it is not a head.

    The order lives in the low byte of the first tail page's flags (``folio->_flags_1``,
    v6.x; v4.8 kept it in a byte of the first tail's ``lru.prev``).
    """
    if not mem.flags_mv[pfn] >> PG_head & 1:
        return 0
    return int(mem.flags_mv[pfn + 1] & 0xFF)


def _test(mem: MemMap, pfn: int, bit: int) -> bool:
    return bool(mem.flags_mv[pfn] >> bit & 1)


def PageLocked(mem: MemMap, pfn: int) -> bool:
    """Return whether the page lock (PG_locked, PF_NO_TAIL: tested on the head) is held."""
    return _test(mem, compound_head(mem, pfn), PG_locked)


def PageLRU(mem: MemMap, pfn: int) -> bool:
    """Return whether the page is on an LRU list (PG_lru, PF_HEAD)."""
    return _test(mem, compound_head(mem, pfn), PG_lru)


def PageActive(mem: MemMap, pfn: int) -> bool:
    """Return PG_active of the head page."""
    return _test(mem, compound_head(mem, pfn), PG_active)


def PageUnevictable(mem: MemMap, pfn: int) -> bool:
    """Return PG_unevictable of the head page."""
    return _test(mem, compound_head(mem, pfn), PG_unevictable)


def PageMlocked(mem: MemMap, pfn: int) -> bool:
    """Return PG_mlocked of the head page."""
    return _test(mem, compound_head(mem, pfn), PG_mlocked)


def PageReserved(mem: MemMap, pfn: int) -> bool:
    """Return PG_reserved (PF_NO_COMPOUND)."""
    return _test(mem, pfn, PG_reserved)


def PageWriteback(mem: MemMap, pfn: int) -> bool:
    """Return PG_writeback of the head page (PF_NO_TAIL)."""
    return _test(mem, compound_head(mem, pfn), PG_writeback)


def PageSwapBacked(mem: MemMap, pfn: int) -> bool:
    """Return PG_swapbacked of the head page."""
    return _test(mem, compound_head(mem, pfn), PG_swapbacked)


def PagePrivate(mem: MemMap, pfn: int) -> bool:
    """Return PG_private (PF_ANY)."""
    return _test(mem, pfn, PG_private)


def PageIsolated(mem: MemMap, pfn: int) -> bool:
    """Return PG_isolated (= PG_reclaim), tested on the page itself (PF_ANY)."""
    return _test(mem, pfn, PG_isolated)


def page_type(mem: MemMap, pfn: int) -> int:
    """Return the page type byte (``page_type >> 24``), or 0 for an untyped page."""
    value = mem.mapcount_mv[pfn]
    if value >= _TYPED_LIMIT or value >= 0:
        return 0
    return (value + (1 << 32)) >> 24


def page_has_type(mem: MemMap, pfn: int) -> bool:
    """Return whether ``_mapcount`` holds a page type rather than a mapcount."""
    return mem.mapcount_mv[pfn] < _TYPED_LIMIT


def PageBuddy(mem: MemMap, pfn: int) -> bool:
    """Return whether ``pfn`` heads a free block in the buddy allocator (PGTY_buddy)."""
    return (mem.mapcount_mv[pfn] >> 24) & 0xFF == PGTY_buddy


def PageGuard(mem: MemMap, pfn: int) -> bool:
    """Return whether ``pfn`` is a debug guard page (PGTY_guard)."""
    return (mem.mapcount_mv[pfn] >> 24) & 0xFF == PGTY_guard


def PageOffline(mem: MemMap, pfn: int) -> bool:
    """Return whether ``pfn`` is logically offline, e.g. inflated in a balloon (PGTY_offline)."""
    return (mem.mapcount_mv[pfn] >> 24) & 0xFF == PGTY_offline


PageBalloon = PageOffline  # the v4.8 name of the same test (PAGE_BALLOON_MAPCOUNT_VALUE)


def PageTable(mem: MemMap, pfn: int) -> bool:
    """Return whether ``pfn`` is a page-table page (PGTY_table)."""
    return (mem.mapcount_mv[pfn] >> 24) & 0xFF == PGTY_table


def PageZsmalloc(mem: MemMap, pfn: int) -> bool:
    """Return whether ``pfn`` belongs to a zspage (PGTY_zsmalloc)."""
    return (mem.mapcount_mv[pfn] >> 24) & 0xFF == PGTY_zsmalloc


def PageSlab(mem: MemMap, pfn: int) -> bool:
    """Return whether the head of ``pfn`` is a slab page (PGTY_slab)."""
    head = compound_head(mem, pfn)
    return (mem.mapcount_mv[head] >> 24) & 0xFF == PGTY_slab


def buddy_order(mem: MemMap, pfn: int) -> int:
    """Return the order of the free block headed by ``pfn`` (``buddy_order()``: page->private)."""
    return int(mem.private_mv[pfn])


def page_count(mem: MemMap, pfn: int) -> int:
    """Return ``_refcount`` of the head page (``page_count()``)."""
    return int(mem.refcount_mv[compound_head(mem, pfn)])


def page_ref_count(mem: MemMap, pfn: int) -> int:
    """Return ``_refcount`` of the page itself."""
    return int(mem.refcount_mv[pfn])


def page_mapcount(mem: MemMap, pfn: int) -> int:
    """Return ``_mapcount + 1`` for an untyped small page, 0 for a typed one."""
    value = mem.mapcount_mv[pfn]
    if value < _TYPED_LIMIT:
        return 0
    return int(value) + 1


def page_mapped(mem: MemMap, pfn: int) -> bool:
    """Return whether some page table maps the page."""
    return page_mapcount(mem, pfn) > 0


def PageMappingFlags(mem: MemMap, pfn: int) -> bool:
    """Return whether ``page->mapping`` has any PAGE_MAPPING_* bit (anon, KSM or movable)."""
    return bool(mem.mapping_mv[pfn] & PAGE_MAPPING_FLAGS)


def PageAnon(mem: MemMap, pfn: int) -> bool:
    """Return whether the head page's mapping has PAGE_MAPPING_ANON (anon or KSM)."""
    return bool(mem.mapping_mv[compound_head(mem, pfn)] & PAGE_MAPPING_ANON)


def PageKsm(mem: MemMap, pfn: int) -> bool:
    """Return whether the head page's mapping has both low bits (PAGE_MAPPING_KSM)."""
    return mem.mapping_mv[compound_head(mem, pfn)] & PAGE_MAPPING_FLAGS == PAGE_MAPPING_KSM


def __PageMovable(mem: MemMap, pfn: int) -> bool:
    """Return whether ``page->mapping & 3 == PAGE_MAPPING_MOVABLE``, on the page itself.

    Lockless and cheap; may give false positives on pages that are not isolated, because the
    word is a union (v4.8: on a THP's first tail page it aliases ``compound_mapcount``).
    """
    return mem.mapping_mv[pfn] & PAGE_MAPPING_FLAGS == PAGE_MAPPING_MOVABLE


#: ``__PageMovable`` under a name a class body can use (mainline calls the test
#: ``page_has_movable_ops`` since the 2025 rework).
page_has_movable_ops = __PageMovable


def page_mapping(mem: MemMap, pfn: int) -> int:
    """Return the owner id of ``page_mapping()`` (mm/util.c), 0 for NULL.

    Takes the compound head; slab pages and anon/KSM pages give NULL; otherwise the mapping
    with its low bits masked off. A movable page whose driver called ``__ClearPageMovable``
    (mapping == 0x2) gives NULL. Swap-cache pages are not modelled here (no swap in Core I).
    """
    head = compound_head(mem, pfn)
    if (mem.mapcount_mv[head] >> 24) & 0xFF == PGTY_slab:
        return 0
    mapping = mem.mapping_mv[head]
    if mapping & PAGE_MAPPING_ANON:
        return 0
    return mapping >> 2


def decode_page_flags(mem: MemMap, pfn: int) -> str:
    """Return the page's flags as ``PG_lru|PG_swapbacked``, as drgn's ``decode_page_flags``."""
    value = mem.flags_mv[pfn]
    names = [f"PG_{name}" for bit, name in enumerate(PAGEFLAG_NAMES) if value >> bit & 1]
    return "|".join(names)


def VM_BUG_ON_PAGE(condition: bool, mem: MemMap, pfn: int, check: str) -> None:
    """Raise :class:`ModelBug` with a page dump when ``condition`` holds (``VM_BUG_ON_PAGE``).

    ``check`` is the kernel's condition as written in the source, e.g. ``"!PageLocked(page)"``.
    """
    if condition:
        raise ModelBug(f"VM_BUG_ON_PAGE({check}) at pfn {pfn:#x}: {mem.dump_page(pfn)}")


__all__ = [name for name in dir() if not name.startswith("_") or name == "__PageMovable"]
