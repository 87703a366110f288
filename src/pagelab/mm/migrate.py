"""Page migration, with the non-LRU movable page framework of the seed.

Models ``mm/migrate.c`` and the non-LRU movable helpers of ``mm/compaction.c`` as merged in
v4.8 (bda807d44454, "mm: migrate: support non-lru movable page migration") and kept by
mainline until the 2025 movable_ops rework, run with mainline v6.16's pass structure and
counting. Drivers make pages movable with three callbacks (:class:`NonLruMovableOps`):

* ``isolate_page(page, mode) -> bool`` — called with the page locked and a VM reference;
  return True if the driver let go of the page. The VM then sets PG_isolated.
* ``migratepage(mapping, newpage, page, mode) -> int`` — both pages locked; copy, make
  ``newpage`` movable, ``__ClearPageMovable(page)``, return MIGRATEPAGE_SUCCESS; ``-EAGAIN``
  asks for a retry, any other errno gives the page up for this ``migrate_pages`` call.
* ``putback_page(page)`` — page locked; take the page back.

The encodings are the kernel's: ``__SetPageMovable`` stores ``mapping | PAGE_MAPPING_MOVABLE``;
``__ClearPageMovable`` keeps only the type bit (mapping == 0x2), so new isolations fail while
whoever holds the page isolated still recognises it as non-LRU; PG_isolated is PG_reclaim.

Named simplification: mainline migrates up to 512 folios per batch, unmapping the whole batch
before moving it. The model unmaps and moves one folio at a time; in a sequential run the
results and counters are the same, and the explorer interleaves at the same points.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pagelab.errors import InvalidArgument
from pagelab.mm import page_flags as pf
from pagelab.mm import swap, vmscan
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import get_page_unless_zero, lock_page, trylock_page, unlock_page
from pagelab.mm.page_flags import VM_BUG_ON_PAGE
from pagelab.mm.rmap import AddressSpace, remove_migration_ptes, try_to_migrate

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = [
    "MIGRATEPAGE_SUCCESS",
    "ClearPageMovable",
    "MigrateMode",
    "MigrateReason",
    "MovableOperations",
    "MovableOpsAdapter",
    "NonLruMovableOps",
    "PageMovable",
    "SetPageMovable",
    "__ClearPageMovable",
    "__SetPageMovable",
    "isolate_movable_page",
    "migrate_pages",
    "move_to_new_page",
    "putback_movable_page",
    "putback_movable_pages",
]

MIGRATEPAGE_SUCCESS = 0
EAGAIN = errno.EAGAIN
ENOMEM = errno.ENOMEM
EBUSY = errno.EBUSY

#: mainline migrate_pages() pass limits (NR_MAX_MIGRATE_*_RETRY).
NR_MAX_MIGRATE_PAGES_RETRY = 10
NR_MAX_MIGRATE_ASYNC_RETRY = 3
NR_MAX_MIGRATE_SYNC_RETRY = 7

# isolate_mode_t
ISOLATE_UNMAPPED = 0x2
ISOLATE_ASYNC_MIGRATE = 0x4
ISOLATE_UNEVICTABLE = 0x8

_ISOLATED = 1 << pf.PG_isolated


class MigrateMode(IntEnum):
    """``enum migrate_mode``."""

    MIGRATE_ASYNC = 0
    MIGRATE_SYNC_LIGHT = 1
    MIGRATE_SYNC = 2


class MigrateReason(IntEnum):
    """``enum migrate_reason`` (mainline v6.16)."""

    MR_COMPACTION = 0
    MR_MEMORY_FAILURE = 1
    MR_MEMORY_HOTPLUG = 2
    MR_SYSCALL = 3
    MR_MEMPOLICY_MBIND = 4
    MR_NUMA_MISPLACED = 5
    MR_CONTIG_RANGE = 6
    MR_LONGTERM_PIN = 7
    MR_DEMOTION = 8
    MR_DAMON = 9


# --- the driver-facing contract --------------------------------------------------------------


@runtime_checkable
class NonLruMovableOps(Protocol):
    """The three ``address_space_operations`` a driver fills in (v4.8), with the machine first.

    ``mode`` is an ``isolate_mode_t`` for ``isolate_page`` and a :class:`MigrateMode` for
    ``migratepage``. Return codes: True/False; MIGRATEPAGE_SUCCESS, -EAGAIN, or another
    negative errno.
    """

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        """Detach ``page`` from the driver's structures; False refuses."""
        ...

    def migratepage(self, m: Machine, mapping: AddressSpace, newpage: int, page: int,
                    mode: MigrateMode) -> int:
        """Move ``page``'s contents to ``newpage``."""
        ...

    def putback_page(self, m: Machine, page: int) -> None:
        """Take an isolated page back."""
        ...


class MovableOperations(Protocol):
    """``struct movable_operations`` (v6.0+): the same contract, with ``migrate_page(dst, src)``."""

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        """Detach ``page``; False refuses."""
        ...

    def migrate_page(self, m: Machine, dst: int, src: int, mode: MigrateMode) -> int:
        """Move ``src`` to ``dst``."""
        ...

    def putback_page(self, m: Machine, page: int) -> None:
        """Take an isolated page back."""
        ...


@dataclass(frozen=True)
class MovableOpsAdapter:
    """Run a ``movable_operations``-style driver through the v4.8 ``a_ops`` contract."""

    ops: MovableOperations

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        """Forward to ``ops.isolate_page``."""
        return self.ops.isolate_page(m, page, mode)

    def migratepage(self, m: Machine, mapping: AddressSpace, newpage: int, page: int,
                    mode: MigrateMode) -> int:
        """Forward to ``ops.migrate_page(dst=newpage, src=page)``."""
        return self.ops.migrate_page(m, newpage, page, mode)

    def putback_page(self, m: Machine, page: int) -> None:
        """Forward to ``ops.putback_page``."""
        self.ops.putback_page(m, page)


def check_driver(ops: object) -> None:
    """Raise InvalidArgument unless ``ops`` has the three callbacks (any of the two styles)."""
    missing = [name for name in ("isolate_page", "putback_page") if not callable(
        getattr(ops, name, None))]
    if not callable(getattr(ops, "migratepage", None)) and not callable(
            getattr(ops, "migrate_page", None)):
        missing.append("migratepage (or migrate_page)")
    if missing:
        raise InvalidArgument(f"driver {type(ops).__name__} lacks {', '.join(missing)}; a "
                              "movable driver needs isolate_page, migratepage and putback_page")


# --- marking pages movable (mm/compaction.c, v4.8) ---------------------------------------


def __SetPageMovable(m: Machine, pfn: int, mapping: AddressSpace) -> None:
    """Make a driver page movable: ``page->mapping = mapping | PAGE_MAPPING_MOVABLE``.

    Caller holds the page lock; the mapping must not already carry the movable bit.
    """
    mem = m.mem
    VM_BUG_ON_PAGE(not pf.PageLocked(mem, pfn), mem, pfn, "!PageLocked(page)")
    word = mapping.mapping_word
    VM_BUG_ON_PAGE(bool(word & pf.PAGE_MAPPING_MOVABLE), mem, pfn,
                   "(unsigned long)mapping & PAGE_MAPPING_MOVABLE")
    mem.mapping_mv[pfn] = word | pf.PAGE_MAPPING_MOVABLE


def __ClearPageMovable(m: Machine, pfn: int) -> None:
    """Drop the driver's mapping but keep the type bit: ``mapping &= PAGE_MAPPING_MOVABLE``.

    Caller holds the page lock and the page must be PageMovable. Any new isolation then
    fails, while a CPU that already isolated the page still sees ``__PageMovable`` and takes
    the non-LRU path without calling the driver (review, Minchan Kim, 2016-05-30).
    """
    mem = m.mem
    VM_BUG_ON_PAGE(not pf.PageLocked(mem, pfn), mem, pfn, "!PageLocked(page)")
    VM_BUG_ON_PAGE(not PageMovable(m, pfn), mem, pfn, "!PageMovable(page)")
    mem.mapping_mv[pfn] = mem.mapping_mv[pfn] & pf.PAGE_MAPPING_MOVABLE


# Python mangles ``__name`` inside a class body, and drivers are classes: these aliases are
# the names to call from a driver's methods. (The kernel has no atomic SetPageMovable, so the
# alias cannot be mistaken for another function.)
SetPageMovable = __SetPageMovable
ClearPageMovable = __ClearPageMovable


def page_movable_ops(m: Machine, pfn: int) -> NonLruMovableOps | None:
    """Return the a_ops of a movable page's mapping, or None (``page_mapping()->a_ops``)."""
    owner = m.mappings.get(pf.page_mapping(m.mem, pfn))
    if isinstance(owner, AddressSpace) and owner.a_ops is not None:
        return owner.a_ops  # type: ignore[return-value]
    return None


def PageMovable(m: Machine, pfn: int) -> bool:
    """Return whether ``pfn`` is a non-LRU movable page with a live driver mapping.

    Models ``PageMovable()`` (mm/compaction.c, v4.8): page lock required (VM_BUG_ON_PAGE);
    true iff ``__PageMovable`` and ``page_mapping()`` has ``a_ops->isolate_page``.
    """
    mem = m.mem
    VM_BUG_ON_PAGE(not pf.PageLocked(mem, pfn), mem, pfn, "!PageLocked(page)")
    if not pf.__PageMovable(mem, pfn):
        return False
    ops = page_movable_ops(m, pfn)
    return ops is not None and callable(getattr(ops, "isolate_page", None))


def __SetPageIsolated(m: Machine, pfn: int) -> None:
    flags = m.mem.flags_mv
    flags[pfn] = flags[pfn] | _ISOLATED


def __ClearPageIsolated(m: Machine, pfn: int) -> None:
    flags = m.mem.flags_mv
    flags[pfn] = flags[pfn] & ~_ISOLATED


# --- isolation and putback (mm/migrate.c, v4.8) -------------------------------------------


def isolate_movable_page(m: Machine, pfn: int, mode: int) -> bool:
    """Isolate a non-LRU movable page for migration (``isolate_movable_page``, v4.8).

    In order: take a reference unless the count is zero (pages being freed, tail pages);
    ``__PageMovable`` before touching the lock (a new page's owner may use non-atomic flag
    ops); trylock; ``PageMovable`` and not already PG_isolated under the lock; the driver's
    ``isolate_page``; then PG_isolated, keeping the reference. Returns False on any refusal,
    with the reference dropped and the lock released.
    """
    mem = m.mem
    if not get_page_unless_zero(m, pfn):
        return False
    if not pf.__PageMovable(mem, pfn):
        swap.put_page(m, pfn)
        return False
    if not trylock_page(m, pfn):
        swap.put_page(m, pfn)
        return False
    if not PageMovable(m, pfn) or pf.PageIsolated(mem, pfn):
        unlock_page(m, pfn)
        swap.put_page(m, pfn)
        return False
    ops = page_movable_ops(m, pfn)
    assert ops is not None
    if not ops.isolate_page(m, pfn, mode):
        unlock_page(m, pfn)
        swap.put_page(m, pfn)
        return False
    if pf.PageIsolated(mem, pfn):
        m.warn_once("isolate_movable_page", f"WARN_ON_ONCE(PageIsolated(page)) at pfn {pfn:#x}: "
                    "the driver's isolate_page set PG_isolated")
    __SetPageIsolated(m, pfn)
    unlock_page(m, pfn)
    return True


def putback_movable_page(m: Machine, pfn: int) -> None:
    """Give an isolated page back to its driver and clear PG_isolated; page locked."""
    ops = page_movable_ops(m, pfn)
    assert ops is not None
    ops.putback_page(m, pfn)
    __ClearPageIsolated(m, pfn)


def _isolated_counter(m: Machine, pfn: int) -> int:
    """Return NR_ISOLATED_ANON or NR_ISOLATED_FILE for a page (``folio_is_file_lru``)."""
    anon = m.mem.flags_mv[pfn] >> pf.PG_swapbacked & 1
    return vs.NR_ISOLATED_ANON if anon else vs.NR_ISOLATED_FILE


def mod_isolated(m: Machine, pfn: int, delta: int) -> None:
    """Adjust the node's NR_ISOLATED_* for ``pfn`` by ``delta`` pages."""
    m.nodes[m.page_zone(pfn).node].vm_stat[_isolated_counter(m, pfn)] += delta


# --- v3.8..v4.7 (pre-4.8 profile): balloon pages, the one non-LRU special case --------------
# Before the framework, balloon pages were migrated by name (isolated_balloon_page,
# balloon_page_migrate, balloon_page_putback in mm/migrate.c, v4.7). They are not __PageMovable,
# so without these three hooks they would take the LRU paths.


def _balloon_v47(m: Machine, pfn: int) -> bool:
    """Return whether ``pfn`` is an isolated balloon page of a pre-4.8 kernel (v4.7)."""
    return not m.profile.non_lru_movable and pf.PageBalloon(m.mem, pfn)


def _putback_balloon_v47(m: Machine, pfn: int) -> None:
    """v4.7 ``putback_movable_pages``: ``balloon_page_putback`` (drops the isolation ref)."""
    from pagelab.mm.balloon_compaction import balloon_page_putback_v47

    balloon_page_putback_v47(m, pfn)


def putback_movable_pages(m: Machine, head: int) -> None:
    """Put back every page left on a migration list (``putback_movable_pages``).

    Non-LRU pages (told apart by ``__PageMovable``, which LRU pages never satisfy) are locked
    and given to their driver's ``putback_page`` if the driver still owns them; if the driver
    released them meanwhile, only PG_isolated is cleared. Either way the isolation reference
    is dropped. LRU pages go back to the LRU. v4.8 decremented NR_ISOLATED_* for every page;
    since v4.9 only for LRU pages.
    """
    mem = m.mem
    for pfn in list(mem.list_entries(head)):
        mem.list_del(pfn)
        _putback_failed(m, pfn)


# --- moving one page ---------------------------------------------------------------------------


def folio_expected_refs(m: Machine, pfn: int) -> int:
    """Return the references a folio has when only migration holds it (``folio_expected_refs``).

    One isolation reference; a page-cache page has one more for the cache.
    """
    owner = m.mappings.get(pf.page_mapping(m.mem, pfn))
    return 2 if isinstance(owner, AddressSpace) and owner.a_ops is None else 1


def migrate_folio(m: Machine, dst: int, src: int, mode: MigrateMode) -> int:
    """Generic migration of an LRU folio: mapping, then contents and flags (``migrate_folio``).

    ``folio_migrate_mapping`` refuses (-EAGAIN) when the folio has references beyond those
    expected: a pin, a concurrent ``get_page``.
    """
    mem = m.mem
    if mem.refcount_mv[src] != folio_expected_refs(m, src):
        return -EAGAIN
    owner = m.mappings.get(pf.page_mapping(mem, src))
    mem.mapping_mv[dst] = mem.mapping_mv[src]
    mem.index_mv[dst] = mem.index_mv[src]
    if isinstance(owner, AddressSpace):
        # The page cache entry moves: the cache's reference goes with it.
        owner.pages[mem.index_mv[src]] = dst
        mem.refcount_mv[dst] += 1
        mem.refcount_mv[src] -= 1
        _move_file_stats(m, dst, src)
    folio_migrate_flags(m, dst, src)
    return MIGRATEPAGE_SUCCESS


def _move_file_stats(m: Machine, dst: int, src: int) -> None:
    """Move a page-cache folio's counts to the new folio's node and zone (as
    ``folio_migrate_mapping`` does when they differ): NR_FILE_PAGES, and for a dirty folio
    NR_FILE_DIRTY and NR_ZONE_WRITE_PENDING."""
    old_zone, new_zone = m.page_zone(src), m.page_zone(dst)
    if old_zone is new_zone:
        return
    dirty = m.mem.flags_mv[src] >> pf.PG_dirty & 1
    old_node, new_node = m.nodes[old_zone.node], m.nodes[new_zone.node]
    old_node.vm_stat[vs.NR_FILE_PAGES] -= 1
    new_node.vm_stat[vs.NR_FILE_PAGES] += 1
    old_node.vm_stat[vs.NR_FILE_DIRTY] -= dirty
    new_node.vm_stat[vs.NR_FILE_DIRTY] += dirty
    old_zone.vm_stat[vs.NR_ZONE_WRITE_PENDING] -= dirty
    new_zone.vm_stat[vs.NR_ZONE_WRITE_PENDING] += dirty


_MIGRATED_FLAGS = (1 << pf.PG_referenced | 1 << pf.PG_uptodate | 1 << pf.PG_active
                   | 1 << pf.PG_unevictable | 1 << pf.PG_workingset | 1 << pf.PG_dirty
                   | 1 << pf.PG_swapbacked | 1 << pf.PG_mlocked)


def folio_migrate_flags(m: Machine, dst: int, src: int) -> None:
    """Copy contents and state flags from ``src`` to ``dst`` (``folio_migrate_flags``).

    The model's "contents" is the page's token. PG_active and PG_unevictable move to the new
    folio (the old one is about to be freed); NR_MLOCK follows PG_mlocked.
    """
    mem = m.mem
    mem.token_mv[dst] = mem.token_mv[src]
    flags = mem.flags_mv
    moved = flags[src] & _MIGRATED_FLAGS
    flags[dst] = flags[dst] | moved
    flags[src] = flags[src] & ~(1 << pf.PG_active | 1 << pf.PG_unevictable)
    if moved >> pf.PG_mlocked & 1:
        flags[src] = flags[src] & ~(1 << pf.PG_mlocked)
        m.page_zone(src).vm_stat[vs.NR_MLOCK] -= 1
        m.page_zone(dst).vm_stat[vs.NR_MLOCK] += 1


def move_to_new_page(m: Machine, newpage: int, page: int, mode: MigrateMode) -> int:
    """Move one locked page to a locked new page (``move_to_new_page``, v4.8).

    For a non-LRU page whose driver released it after isolation (``!PageMovable``: mapping is
    the bare 0x2), report success without calling the driver and clear PG_isolated. On
    success, clear PG_isolated of a movable page under the page lock so no compactor can
    isolate it again, and drop the mapping of a page without PAGE_MAPPING_* bits.
    """
    mem = m.mem
    VM_BUG_ON_PAGE(not pf.PageLocked(mem, page), mem, page, "!PageLocked(page)")
    VM_BUG_ON_PAGE(not pf.PageLocked(mem, newpage), mem, newpage, "!PageLocked(newpage)")
    if _balloon_v47(m, page):
        # v4.7 __unmap_and_move: "A ballooned page does not need any special attention from
        # physical to virtual reverse mapping procedures": balloon_page_migrate, nothing else.
        from pagelab.mm.balloon_compaction import balloon_page_migrate_v47

        return balloon_page_migrate_v47(m, newpage, page, mode)
    is_lru = not pf.__PageMovable(mem, page)
    if is_lru:
        rc = migrate_folio(m, newpage, page, mode)
    else:
        VM_BUG_ON_PAGE(not pf.PageIsolated(mem, page), mem, page, "!PageIsolated(page)")
        if not PageMovable(m, page):
            __ClearPageIsolated(m, page)
            return MIGRATEPAGE_SUCCESS
        ops = page_movable_ops(m, page)
        assert ops is not None
        owner = m.mappings[pf.page_mapping(mem, page)]
        assert isinstance(owner, AddressSpace)
        rc = ops.migratepage(m, owner, newpage, page, mode)
        if rc == MIGRATEPAGE_SUCCESS and not pf.PageIsolated(mem, page):
            m.warn_once("move_to_new_page",
                        f"WARN_ON_ONCE(rc == MIGRATEPAGE_SUCCESS && !PageIsolated(page)) at "
                        f"pfn {page:#x}: the driver cleared PG_isolated")
    if rc == MIGRATEPAGE_SUCCESS:
        if pf.__PageMovable(mem, page):
            VM_BUG_ON_PAGE(not pf.PageIsolated(mem, page), mem, page, "!PageIsolated(page)")
            __ClearPageIsolated(m, page)
        # Anon and movable mappings stay for free_pages_prepare, so PageAnon keeps working.
        if not pf.PageMappingFlags(mem, page):
            mem.mapping_mv[page] = 0
    return rc


GetNewPage = Callable[[int], int]
PutNewPage = Callable[[int], None]


@dataclass
class MigrateStats:
    """What one ``migrate_pages`` call did (``struct migrate_pages_stats``)."""

    nr_succeeded: int = 0
    nr_failed_pages: int = 0


def migrate_folio_done(m: Machine, pfn: int, reason: MigrateReason) -> None:
    """Finish with a source folio: NR_ISOLATED, then the isolation reference.

    v4.9+ (and mainline) skip NR_ISOLATED for non-LRU pages and for demotion; v4.8 counted
    every page.
    """
    mem = m.mem
    if m.profile.nr_isolated_v48 or (not pf.__PageMovable(mem, pfn)
                                     and reason != MigrateReason.MR_DEMOTION):
        mod_isolated(m, pfn, -1)
    if reason != MigrateReason.MR_MEMORY_FAILURE:
        swap.put_page(m, pfn)


def _putback_failed(m: Machine, pfn: int) -> None:
    """Give one isolated page, already off its list, back to its owner.

    The body of ``putback_movable_pages``' loop, and v4.8 ``unmap_and_move``'s failure path.
    """
    mem = m.mem
    if m.profile.nr_isolated_v48 or not pf.__PageMovable(mem, pfn):
        mod_isolated(m, pfn, -1)
    if pf.__PageMovable(mem, pfn):
        VM_BUG_ON_PAGE(not pf.PageIsolated(mem, pfn), mem, pfn, "!PageIsolated(page)")
        lock_page(m, pfn)
        if PageMovable(m, pfn):
            putback_movable_page(m, pfn)
        else:
            __ClearPageIsolated(m, pfn)
        unlock_page(m, pfn)
        swap.put_page(m, pfn)
    elif _balloon_v47(m, pfn):  # v4.7
        _putback_balloon_v47(m, pfn)
    else:
        vmscan.folio_putback_lru(m, pfn)


def unmap_and_move(m: Machine, get_new_page: GetNewPage, put_new_page: PutNewPage | None,
                   pfn: int, force: bool, mode: MigrateMode, reason: MigrateReason,
                   ret: int | None = None) -> int:
    """Migrate one isolated page: lock, unmap, move, remap, finish (``unmap_and_move``).

    Follows v4.8's order of steps with mainline's names for the halves
    (``migrate_folio_unmap``, ``migrate_folio_move``). Returns MIGRATEPAGE_SUCCESS, -EAGAIN
    (page stays on the list), -ENOMEM (no target page; page stays) or another errno (page
    already put back and unlinked).
    """
    mem = m.mem
    # A page whose last other reference went while isolated: done, and counted a success.
    if mem.refcount_mv[pfn] == 1:
        flags = mem.flags_mv
        flags[pfn] = flags[pfn] & ~(1 << pf.PG_active | 1 << pf.PG_unevictable)
        if pf.__PageMovable(mem, pfn):
            lock_page(m, pfn)
            if not PageMovable(m, pfn):
                __ClearPageIsolated(m, pfn)
            unlock_page(m, pfn)
        mem.list_del(pfn)
        migrate_folio_done(m, pfn, reason)
        return MIGRATEPAGE_SUCCESS
    newpage = get_new_page(pfn)
    if newpage < 0:
        return -ENOMEM
    # v4.7: a balloon page is not LRU either: its new page is the driver's, not the LRU's.
    is_lru = not pf.__PageMovable(mem, pfn) and not _balloon_v47(m, pfn)
    rc = -EAGAIN
    locked = trylock_page(m, pfn)
    # Direct compaction and async migration never sleep on a page lock.
    if not locked and force and mode != MigrateMode.MIGRATE_ASYNC and not m.in_direct_compaction:
        lock_page(m, pfn)
        locked = True
    if locked:
        if not trylock_page(m, newpage):
            rc = -EAGAIN
        else:
            if not is_lru:
                rc = move_to_new_page(m, newpage, pfn, mode)
            else:
                was_mapped = pf.page_mapped(mem, pfn)
                if was_mapped:
                    try_to_migrate(m, pfn)
                if not pf.page_mapped(mem, pfn):
                    rc = move_to_new_page(m, newpage, pfn, mode)
                if was_mapped:
                    remove_migration_ptes(m, pfn, newpage if rc == MIGRATEPAGE_SUCCESS else pfn)
            unlock_page(m, newpage)
        unlock_page(m, pfn)
    if rc == MIGRATEPAGE_SUCCESS:
        # Drop the new page's allocation reference: a non-LRU driver took its own in
        # migratepage; an LRU page goes onto the LRU (the mappings hold it). The branch is
        # chosen by the old page's type (2019 fix, "don't rely on __PageMovable() of newpage
        # after unlocking it").
        if is_lru:
            vmscan.folio_putback_lru(m, newpage)
        else:
            swap.put_page(m, newpage)
        mem.list_del(pfn)
        migrate_folio_done(m, pfn, reason)
        return rc
    if put_new_page is not None:
        put_new_page(newpage)
    else:
        swap.put_page(m, newpage)
    if rc != -EAGAIN:
        if ret is not None:
            # Mainline (migrate_folio_undo_src): a failed folio goes to the return list, still
            # isolated; it is retried by the sync phase or put back by the caller.
            mem.list_move_tail(pfn, ret)
        else:
            mem.list_del(pfn)
            _putback_failed(m, pfn)
    return rc


def _migrate_pages_batch(m: Machine, head: int, get_new_page: GetNewPage,
                         put_new_page: PutNewPage | None, mode: MigrateMode,
                         reason: MigrateReason, ret: int, nr_pass: int, force: bool,
                         stats: MigrateStats, count_failures: bool) -> int:
    """Run up to ``nr_pass`` passes over a list (``migrate_pages_batch``, v6.3+).

    -EAGAIN pages stay on ``head`` for the next pass; permanent failures move to ``ret``.
    Returns the number of failed pages, or -ENOMEM.
    """
    mem = m.mem
    retry = 1
    nr_failed = 0
    for _ in range(nr_pass):
        if not retry:
            break
        retry = 0
        for pfn in list(mem.list_entries(head)):
            result = unmap_and_move(m, get_new_page, put_new_page, pfn, force, mode, reason,
                                    ret)
            if result == MIGRATEPAGE_SUCCESS:
                stats.nr_succeeded += 1
            elif result == -EAGAIN:
                retry += 1
            elif result == -ENOMEM and not (not mem.list_empty(ret)
                                            and mem.list_last(ret) == pfn):
                # No target page (the unmap phase): stop trying the others.
                if count_failures:
                    stats.nr_failed_pages += 1 + retry
                return -ENOMEM
            else:
                # Any other error, including a driver's -ENOMEM in the move phase: this page
                # failed, the others go on.
                nr_failed += 1
    nr_failed += retry
    if count_failures:
        stats.nr_failed_pages += nr_failed
    return nr_failed


def _migrate_pages_mainline(m: Machine, head: int, get_new_page: GetNewPage,
                            put_new_page: PutNewPage | None, mode: MigrateMode,
                            reason: MigrateReason, stats: MigrateStats) -> int:
    """Mainline's ``migrate_pages``: ASYNC batches, or ``migrate_pages_sync``.

    In a SYNC mode, the folios that failed the ASYNC phase (3 passes) — whatever the error —
    are retried one by one in the requested mode (7 passes each), and only those failures
    count ("All failed folios except split THPs will be retried"). Permanent failures end on
    the caller's list, to be put back with ``putback_movable_pages``.
    """
    mem = m.mem
    ret = m.alloc_list_head()
    try:
        if mode == MigrateMode.MIGRATE_ASYNC:
            rc = _migrate_pages_batch(m, head, get_new_page, put_new_page, mode, reason, ret,
                                      NR_MAX_MIGRATE_PAGES_RETRY, False, stats, True)
        else:
            astats = MigrateStats()
            rc = _migrate_pages_batch(m, head, get_new_page, put_new_page,
                                      MigrateMode.MIGRATE_ASYNC, reason, ret,
                                      NR_MAX_MIGRATE_ASYNC_RETRY, False, astats, False)
            stats.nr_succeeded += astats.nr_succeeded
            if rc != -ENOMEM:
                for pfn in list(mem.list_entries(ret)):  # retry the async failures too
                    mem.list_move_tail(pfn, head)
                rc = 0
                single = m.alloc_list_head()
                try:
                    for pfn in list(mem.list_entries(head)):
                        mem.list_move_tail(pfn, single)
                        got = _migrate_pages_batch(m, single, get_new_page, put_new_page, mode,
                                                   reason, ret, NR_MAX_MIGRATE_SYNC_RETRY, True,
                                                   stats, True)
                        for left in list(mem.list_entries(single)):
                            mem.list_move_tail(left, ret)
                        if got == -ENOMEM:
                            rc = -ENOMEM
                            break
                        rc += got
                finally:
                    m.release_list_head(single)
    finally:
        for pfn in list(mem.list_entries(ret)):
            mem.list_move_tail(pfn, head)
        m.release_list_head(ret)
    return rc


def _migrate_pages_v48(m: Machine, head: int, get_new_page: GetNewPage,
                       put_new_page: PutNewPage | None, mode: MigrateMode,
                       reason: MigrateReason, stats: MigrateStats) -> int:
    """v4.8's ``migrate_pages`` (and v4.7's): 10 passes, ``force`` from the fourth.

    A permanent failure is put back at once and not retried; -ENOMEM stops at once.
    """
    mem = m.mem
    retry = 1
    for p in range(10):
        if not retry:
            break
        retry = 0
        for pfn in list(mem.list_entries(head)):
            result = unmap_and_move(m, get_new_page, put_new_page, pfn, p > 2, mode, reason)
            if result == MIGRATEPAGE_SUCCESS:
                stats.nr_succeeded += 1
            elif result == -EAGAIN:
                retry += 1
            elif result == -ENOMEM:
                stats.nr_failed_pages += 1
                return -ENOMEM
            else:
                stats.nr_failed_pages += 1
    stats.nr_failed_pages += retry
    return stats.nr_failed_pages


def migrate_pages(m: Machine, head: int, get_new_page: GetNewPage,
                  put_new_page: PutNewPage | None, mode: MigrateMode,
                  reason: MigrateReason) -> tuple[int, MigrateStats]:
    """Migrate every page on the list at ``head`` (``migrate_pages``).

    Passes: v4.8 makes 10 passes (``force`` from the fourth) and puts a permanently failed
    page back at once; mainline (``profile.migrate_batch``) makes 10 in ASYNC mode, otherwise
    3 ASYNC passes and then retries every page that failed, one at a time, with 7 passes in
    the requested mode, and leaves permanent failures on the list for the caller. -EAGAIN
    pages are retried; -ENOMEM stops at once (pages not yet tried stay on the list).
    Returns ``(rc, stats)``: rc is the number of pages that failed (or -ENOMEM); pages
    still on the list must be put back by the caller when rc != 0. Counts
    PGMIGRATE_SUCCESS/FAIL and emits ``mm_migrate_pages``.
    """
    if mode not in MigrateMode.__members__.values():
        raise InvalidArgument(f"unknown migrate mode {mode!r}")
    stats = MigrateStats()
    if m.profile.migrate_batch:
        rc = _migrate_pages_mainline(m, head, get_new_page, put_new_page, mode, reason, stats)
    else:
        rc = _migrate_pages_v48(m, head, get_new_page, put_new_page, mode, reason, stats)
    m.vm_events[vs.PGMIGRATE_SUCCESS] += stats.nr_succeeded
    m.vm_events[vs.PGMIGRATE_FAIL] += stats.nr_failed_pages
    if m.trace is not None:
        m.trace.emit("mm_migrate_pages", succeeded=stats.nr_succeeded,
                     failed=stats.nr_failed_pages, thp_succeeded=0, thp_failed=0,
                     thp_split=0, large_folio_split=0, mode=int(mode), reason=int(reason))
    return rc, stats
