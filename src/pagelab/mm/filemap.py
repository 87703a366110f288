"""The page cache and the page lock (models ``mm/filemap.c``, v6.16, and the
``get_page``/``get_page_unless_zero`` helpers of ``include/linux/mm.h`` and ``page_ref.h``).

The page lock is PG_locked on the head page. ``trylock_page`` never waits; ``lock_page``
waits for the holder. In a sequential run nobody else can release the lock, so waiting is
reported as the deadlock it would be; under the schedule explorer the machine's ``wait``
hook blocks the CPU until the holder unlocks. Every operation here is a preemption point.

The page cache of an :class:`~pagelab.mm.rmap.AddressSpace` is its ``pages`` dict (the
``i_pages`` xarray): :func:`filemap_add_folio` inserts a folio, :func:`__filemap_get_folio`
looks one up or creates it, :func:`filemap_remove_folio` takes it out again. Named
simplifications: folios are order 0; there are no shadow entries; writeback is synchronous
(:func:`folio_end_writeback` directly follows the write, so PG_writeback is never seen set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pagelab.errors import ModelBug
from pagelab.mm import page_flags as pf
from pagelab.mm import swap
from pagelab.mm import vmstat as vs
from pagelab.mm.page_writeback import folio_cancel_dirty
from pagelab.mm.rmap import AddressSpace

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = [
    "FGP_ACCESSED",
    "FGP_CREAT",
    "__filemap_get_folio",
    "filemap_add_folio",
    "filemap_remove_folio",
    "folio_end_writeback",
    "get_page",
    "get_page_unless_zero",
    "lock_page",
    "page_ref_count",
    "trylock_page",
    "unlock_page",
]

_LOCKED = 1 << pf.PG_locked


def trylock_page(m: Machine, pfn: int) -> bool:
    """Take the page lock if it is free (``trylock_page``: atomic test-and-set of PG_locked)."""
    if m.preempt is not None:
        m.preempt("trylock_page", pfn)
    head = pf.compound_head(m.mem, pfn)
    flags = m.mem.flags_mv
    value = flags[head]
    if value & _LOCKED:
        return False
    flags[head] = value | _LOCKED
    m.page_lock_owner[head] = m.cpu
    return True


def lock_page(m: Machine, pfn: int) -> None:
    """Take the page lock, waiting for the holder if needed (``lock_page``)."""
    while not trylock_page(m, pfn):
        m.wait("page_lock", pf.compound_head(m.mem, pfn))


def unlock_page(m: Machine, pfn: int) -> None:
    """Release the page lock (``unlock_page``); the lock must be held."""
    head = pf.compound_head(m.mem, pfn)
    flags = m.mem.flags_mv
    value = flags[head]
    if not value & _LOCKED:
        raise ModelBug(f"VM_BUG_ON_FOLIO(!folio_test_locked(folio)) in unlock_page at pfn "
                       f"{head:#x}: {m.mem.dump_page(head)}")
    flags[head] = value & ~_LOCKED
    m.page_lock_owner.pop(head, None)
    if m.preempt is not None:
        m.preempt("unlock_page", pfn)


def page_ref_count(m: Machine, pfn: int) -> int:
    """Return ``_refcount`` of the page itself (``page_ref_count``)."""
    return int(m.mem.refcount_mv[pfn])


def get_page(m: Machine, pfn: int) -> None:
    """Take a reference on the head page (``get_page``); the page must already be in use."""
    if m.preempt is not None:
        m.preempt("get_page", pfn)
    head = pf.compound_head(m.mem, pfn)
    ref = m.mem.refcount_mv
    if ref[head] <= 0:
        raise ModelBug(f"VM_BUG_ON_PAGE(page_ref_zero_or_close_to_overflow(page)) in get_page "
                       f"at pfn {head:#x}: {m.mem.dump_page(head)}")
    ref[head] += 1


def get_page_unless_zero(m: Machine, pfn: int) -> bool:
    """Take a reference unless the count is zero (``get_page_unless_zero``).

    As in v4.8 this works on the page itself, not its head: a tail page has refcount 0, so it
    always fails — which is what makes ``isolate_movable_page`` refuse tail pages (mainline
    says so explicitly with ``folio_get_nontail_page``).
    """
    if m.preempt is not None:
        m.preempt("get_page_unless_zero", pfn)
    ref = m.mem.refcount_mv
    if ref[pfn] == 0:
        return False
    ref[pfn] += 1
    return True


# ------------------------------------------------------------------------------- page cache

#: ``fgf_t`` flags of ``__filemap_get_folio`` (include/linux/pagemap.h).
FGP_ACCESSED = 0x1
FGP_CREAT = 0x4


def filemap_add_folio(m: Machine, mapping: AddressSpace, pfn: int, index: int,
                      refault: bool = False) -> None:
    """Insert a new folio at ``index`` and put it on the LRU (``filemap_add_folio``).

    The folio's one reference becomes the page cache's; counts NR_FILE_PAGES. The caller has
    filled it (its content token) first, as ``filemap_read_folio`` or a write would.
    ``refault``: the page was evicted before (the kernel finds its shadow entry), so
    ``workingset_refault`` runs before the folio joins the LRU.
    """
    if index in mapping.pages:
        raise ModelBug(f"filemap_add_folio: {mapping.name} already caches page {index}")
    mem = m.mem
    mem.mapping_mv[pfn] = mapping.mapping_word
    mem.index_mv[pfn] = index
    mapping.pages[index] = pfn
    if refault:
        from pagelab.mm import vmscan

        vmscan.workingset_refault(m, pfn, True)
    swap.folio_add_lru(m, pfn)
    m.nodes[m.page_zone(pfn).node].vm_stat[vs.NR_FILE_PAGES] += 1


def __filemap_get_folio(m: Machine, mapping: AddressSpace, index: int, fgp_flags: int,
                        gfp: int, token: int = 0) -> int:
    """Find the folio at ``index``, or create it with ``FGP_CREAT``; its pfn or -1.

    Models ``__filemap_get_folio``: FGP_ACCESSED marks a found folio accessed and a new one
    referenced (v3.16's non-atomic mark before it joins the LRU); a new folio is allocated
    with ``gfp`` (the mapping's mask, with whatever the caller cleared), holds ``token`` and
    is inserted with :func:`filemap_add_folio`. Returns -1 when the allocation fails.
    """
    pfn = mapping.pages.get(index, -1)
    if pfn >= 0:
        if fgp_flags & FGP_ACCESSED:
            swap.folio_mark_accessed(m, pfn)
        return pfn
    if not fgp_flags & FGP_CREAT:
        return -1
    pfn = m.alloc_page_raw(gfp, 0, m.cpu % m.nr_nodes)
    if pfn < 0:
        return -1
    mem = m.mem
    mem.token_mv[pfn] = token
    if fgp_flags & FGP_ACCESSED:
        mem.flags_mv[pfn] = mem.flags_mv[pfn] | 1 << pf.PG_referenced
    filemap_add_folio(m, mapping, pfn, index)
    return pfn


def filemap_remove_folio(m: Machine, pfn: int) -> None:
    """Take a folio out of its page cache and drop the cache's reference.

    Models ``filemap_remove_folio`` (``filemap_free_folio`` puts the cache's reference; the
    caller holds its own): a dirty folio is cleaned without being written
    (``folio_account_cleaned``); NR_FILE_PAGES drops; the last reference frees the folio.
    """
    mem = m.mem
    mapping = m.mappings.get(pf.mapping_owner(mem.mapping_mv[pfn]))
    if not isinstance(mapping, AddressSpace) or pf.page_mapped(mem, pfn):
        raise ModelBug(f"filemap_remove_folio: pfn {pfn:#x} is not an unmapped page-cache "
                       f"folio: {mem.dump_page(pfn)}")
    folio_cancel_dirty(m, pfn)
    del mapping.pages[int(mem.index_mv[pfn])]
    m.nodes[m.page_zone(pfn).node].vm_stat[vs.NR_FILE_PAGES] -= 1
    mem.mapping_mv[pfn] = 0
    swap.put_page(m, pfn)


def folio_end_writeback(m: Machine, pfn: int) -> None:
    """The device finished writing the folio (``folio_end_writeback``).

    Counts NR_WRITTEN; a folio that reclaim met dirty (PG_reclaim) loses the flag and moves to
    the inactive tail (:func:`~pagelab.mm.swap.folio_rotate_reclaimable`) to be freed next.
    """
    flags = m.mem.flags_mv
    m.nodes[m.page_zone(pfn).node].vm_stat[vs.NR_WRITTEN] += 1
    if flags[pfn] >> pf.PG_reclaim & 1:
        flags[pfn] = flags[pfn] & ~(1 << pf.PG_reclaim)
        swap.folio_rotate_reclaimable(m, pfn)
