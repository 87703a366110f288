"""Balloon pages: the common balloon page list, and making balloon pages movable.

Models ``mm/balloon_compaction.c`` and ``include/linux/balloon_compaction.h`` in three
versions, chosen by the machine's profile:

* **v4.8** (b1123ea6d3b3, "mm: balloon: use general non-lru movable page feature"): balloon
  pages are non-LRU movable pages. ``balloon_page_insert`` marks the page as a balloon page
  in ``_mapcount``, stores ``mapping | PAGE_MAPPING_MOVABLE`` (the mapping of the device's
  "balloon-kvm" anon inode, whose a_ops are :data:`balloon_aops`) and ``private`` = the
  device; migration goes through ``isolate_movable_page`` and ``move_to_new_page``.
* **mainline** (v6.15/v6.16, the last releases with this file before the 2025/2026 reworks
  renamed it ``mm/balloon.c``): the same protocol, with PageBalloon renamed PageOffline
  (ca215086b14b, v5.0), ``balloon_aops`` turned into ``balloon_mops`` (68f2736a8583, v6.0),
  ``balloon_page_alloc`` split from ``balloon_page_enqueue`` (v5.2) and the node counter
  NR_BALLOON_PAGES (v6.15, "track memory used by balloon drivers"; counted here in
  ``balloon_page_enqueue`` and ``balloon_page_list_dequeue`` as in later 6.x trees [U]).
  The model keeps the v4.8 a_ops shape: both versions call the same three hooks.
* **pre-4.8** (``profile.non_lru_movable == False``; v3.8 18468d93e53b "mm: introduce a
  common interface for balloon pages mobility" .. v4.7, in the v4.7 form of d6d86c0a7f8d
  "mm/balloon_compaction: redesign ballooned pages management" [U]): balloon pages are the
  one special case compaction knows. A page is movable while it is PageBalloon and
  PG_private (``balloon_page_movable``); isolation clears PG_private under the page lock.
  Compaction reaches it through ``m.balloon_isolate_hook`` and migration through the small,
  marked special cases in ``migrate.py``.

With ``profile.balloon_compaction == False`` (CONFIG_BALLOON_COMPACTION=n) pages are
allocated GFP_HIGHUSER (unmovable) and are never movable.

The page list is intrusive, threaded through ``page->lru`` as in the kernel: while a page is
isolated the VM owns those words (it is on a migration list), so the balloon must not touch
them. ``pages_lock`` is a :class:`ModelLock` whose acquisition is a preemption point
(``m.preempt("balloon_pages_lock", -1)``), so the schedule explorer can interleave there.

Named simplifications: the device holds its own ``AddressSpace`` instead of an anon inode of a
pseudo filesystem; ``adjust_managed_page_count`` is the driver's business (as in 6.16);
``private`` holds the device's machine-wide id (:meth:`Machine.register_mapping`) where the
kernel stores a pointer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pagelab.errors import ModelBug
from pagelab.mm import gfp as G
from pagelab.mm import migrate as mg
from pagelab.mm import page_flags as pf
from pagelab.mm import swap
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import get_page_unless_zero, lock_page, trylock_page, unlock_page
from pagelab.mm.page_flags import VM_BUG_ON_PAGE
from pagelab.mm.rmap import AddressSpace

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = [
    "BalloonDevInfo",
    "ModelLock",
    "balloon_aops",
    "balloon_isolate_hook",
    "balloon_mapping_gfp_mask",
    "balloon_page_alloc",
    "balloon_page_delete",
    "balloon_page_dequeue",
    "balloon_page_device",
    "balloon_page_enqueue",
    "balloon_page_insert",
    "balloon_page_isolate",
    "balloon_page_isolate_v47",
    "balloon_page_list_dequeue",
    "balloon_page_migrate",
    "balloon_page_migrate_v47",
    "balloon_page_movable",
    "balloon_page_pop",
    "balloon_page_push",
    "balloon_page_putback",
    "balloon_page_putback_v47",
    "counts_nr_balloon_pages",
    "isolated_balloon_page",
]

_PRIVATE = 1 << pf.PG_private

#: The driver's migration callback: ``(m, b_dev_info, newpage, page, mode) -> rc``
#: (``balloon_dev_info->migratepage``).
BalloonMigratepage = Callable[["Machine", "BalloonDevInfo", int, int, mg.MigrateMode], int]


class ModelLock:
    """A kernel spinlock or mutex whose acquisition is a preemption point.

    ``lock`` calls ``m.preempt(name, -1)`` when the schedule explorer is installed, then takes
    the lock, waiting (``m.wait``) while another CPU holds it. In a sequential run nobody can
    release a held lock, so taking it twice raises :class:`ModelBug` (the kernel would hang).
    """

    def __init__(self, m: Machine, name: str) -> None:
        self.m = m
        self.name = name
        self.owner: int | None = None

    def trylock(self) -> bool:
        """Take the lock if it is free (``spin_trylock``/``mutex_trylock``)."""
        m = self.m
        if m.preempt is not None:
            m.preempt(self.name, -1)
        if self.owner is not None:
            return False
        self.owner = m.cpu
        return True

    def lock(self) -> None:
        """Take the lock, waiting for its holder (``spin_lock``/``mutex_lock``)."""
        while not self.trylock():
            if self.m.preempt is None:
                raise ModelBug(f"{self.name} taken while held by CPU {self.owner}: in a "
                               "sequential run this deadlocks")
            self.m.wait(self.name, -1, ready=lambda: self.owner is None)

    def unlock(self) -> None:
        """Release the lock; it must be held."""
        if self.owner is None:
            raise ModelBug(f"unlock of {self.name}, which is not held")
        self.owner = None

    def lockdep_assert_held(self) -> None:
        """Raise ModelBug unless the current CPU holds the lock (``lockdep_assert_held``)."""
        if self.owner != self.m.cpu:
            raise ModelBug(f"lockdep_assert_held(&{self.name}) failed: held by {self.owner}, "
                           f"running on CPU {self.m.cpu}")

    def __enter__(self) -> ModelLock:
        self.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()


class BalloonDevInfo:
    """``struct balloon_dev_info`` (``balloon_devinfo_init``): one balloon device's page book.

    Attributes:
        isolated_pages: pages currently isolated for migration (off the list, still ours).
        pages_lock: protects ``pages`` and ``isolated_pages``.
        pages: head of the intrusive page list (threaded through ``page->lru``).
        migratepage: the driver's callback, or None (set it before pages can move).
        mapping: the address_space whose ``a_ops`` are :data:`balloon_aops`; None without
            balloon compaction or in the pre-4.8 world, where pages carry no mapping.
        id: what ``page->private`` of this device's pages holds.
    """

    def __init__(self, m: Machine) -> None:
        self.m = m
        self.isolated_pages = 0
        self.pages_lock = ModelLock(m, "balloon_pages_lock")
        self.pages = m.alloc_list_head()
        self.migratepage: BalloonMigratepage | None = None
        self.id = m.register_mapping(self)
        self.mapping: AddressSpace | None = None
        profile = m.profile
        if profile.balloon_compaction and profile.non_lru_movable:
            self.mapping = AddressSpace(m, "balloon-kvm", a_ops=balloon_aops)
        if profile.balloon_compaction and not profile.non_lru_movable:
            m.balloon_isolate_hook = balloon_isolate_hook

    def __repr__(self) -> str:
        return (f"BalloonDevInfo(id={self.id:#x}, pages={self.m.mem.list_len(self.pages)}, "
                f"isolated_pages={self.isolated_pages})")


def balloon_page_device(m: Machine, pfn: int) -> BalloonDevInfo | None:
    """Return the device a balloon page belongs to (``balloon_page_device``: page->private)."""
    owner = m.mappings.get(int(m.mem.private_mv[pfn]))
    return owner if isinstance(owner, BalloonDevInfo) else None


def counts_nr_balloon_pages(m: Machine) -> bool:
    """Return whether the profile's kernel keeps NR_BALLOON_PAGES (v6.15+)."""
    major, minor = (int(x) for x in m.profile.kernel_version.split(".")[:2])
    return (major, minor) >= (6, 15)


def _mod_balloon_pages(m: Machine, pfn: int, delta: int) -> None:
    if counts_nr_balloon_pages(m):
        m.nodes[m.page_zone(pfn).node].vm_stat[vs.NR_BALLOON_PAGES] += delta


# --- include/linux/balloon_compaction.h ---------------------------------------------------


def balloon_mapping_gfp_mask(m: Machine) -> int:
    """Return GFP_HIGHUSER_MOVABLE, or GFP_HIGHUSER without balloon compaction."""
    return G.GFP_HIGHUSER_MOVABLE if m.profile.balloon_compaction else G.GFP_HIGHUSER


def __SetPageOffline(m: Machine, pfn: int) -> None:
    """Mark a page logically offline (PGTY_offline; PageBalloon before v5.0)."""
    mem = m.mem
    VM_BUG_ON_PAGE(mem.mapcount_mv[pfn] != pf.MAPCOUNT_NONE, mem, pfn,
                   "data_race(page->page_type) != UINT_MAX")
    mem.mapcount_mv[pfn] = pf.PAGE_TYPE_OFFLINE


def __ClearPageOffline(m: Machine, pfn: int) -> None:
    """Clear the offline (balloon) page type: ``_mapcount`` back to -1."""
    mem = m.mem
    VM_BUG_ON_PAGE(not pf.PageOffline(mem, pfn), mem, pfn, "!PageOffline(page)")
    mem.mapcount_mv[pfn] = pf.MAPCOUNT_NONE


def balloon_page_insert(m: Machine, b_dev_info: BalloonDevInfo, pfn: int) -> None:
    """Put a page on the balloon's list and mark it (``balloon_page_insert``).

    Caller holds ``pages_lock`` and the page lock. v4.8/mainline: balloon page type,
    ``__SetPageMovable(page, mapping)``, ``private`` = device, ``list_add``. v4.7: PageBalloon,
    PG_private (= "movable, not isolated"), ``private``, ``list_add``. Without
    CONFIG_BALLOON_COMPACTION only the type (not even that in v4.7) and the list.
    """
    b_dev_info.pages_lock.lockdep_assert_held()
    mem = m.mem
    compaction = m.profile.balloon_compaction
    if m.profile.non_lru_movable:
        __SetPageOffline(m, pfn)
        if compaction:
            assert b_dev_info.mapping is not None
            mg.SetPageMovable(m, pfn, b_dev_info.mapping)
            mem.private_mv[pfn] = b_dev_info.id
    elif compaction:  # v4.7
        __SetPageOffline(m, pfn)
        mem.flags_mv[pfn] = mem.flags_mv[pfn] | _PRIVATE
        mem.private_mv[pfn] = b_dev_info.id
    mem.list_add(pfn, b_dev_info.pages)


def balloon_page_delete(m: Machine, pfn: int) -> None:
    """Unmark a page and take it off the balloon's list (``balloon_page_delete``).

    Caller holds the page lock. An isolated page is not on the list — the VM owns
    ``page->lru`` — so it is not unlinked (v4.8: ``if (!PageIsolated(page))``; v4.7: only a
    PG_private page is still listed).
    """
    mem = m.mem
    compaction = m.profile.balloon_compaction
    if m.profile.non_lru_movable:
        __ClearPageOffline(m, pfn)
        if compaction:
            mg.ClearPageMovable(m, pfn)
            mem.private_mv[pfn] = 0
            if pf.PageIsolated(mem, pfn):
                return
        mem.list_del(pfn)
    elif compaction:  # v4.7
        __ClearPageOffline(m, pfn)
        mem.private_mv[pfn] = 0
        if mem.flags_mv[pfn] & _PRIVATE:
            mem.flags_mv[pfn] = mem.flags_mv[pfn] & ~_PRIVATE
            mem.list_del(pfn)
    else:
        mem.list_del(pfn)


def balloon_page_push(m: Machine, head: int, pfn: int) -> None:
    """Put a page on a driver's private list of pages to enqueue (``balloon_page_push``)."""
    m.mem.list_add(pfn, head)


def balloon_page_pop(m: Machine, head: int) -> int:
    """Take the first page off such a list; -1 when it is empty (``balloon_page_pop``)."""
    mem = m.mem
    if mem.list_empty(head):
        return -1
    pfn = mem.list_first(head)
    mem.list_del(pfn)
    return pfn


# --- mm/balloon_compaction.c -------------------------------------------------------------


def balloon_page_alloc(m: Machine) -> int:
    """Allocate a page for the balloon; -1 where the kernel returns NULL (``balloon_page_alloc``).

    ``balloon_mapping_gfp_mask() | __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN`` (v5.2+;
    v4.8 allocated inside ``balloon_page_enqueue``, without __GFP_NOWARN).
    """
    gfp = balloon_mapping_gfp_mask(m) | G.__GFP_NOMEMALLOC | G.__GFP_NORETRY | G.__GFP_NOWARN
    return m.alloc_page_raw(gfp, 0, m.cpu_node)


def balloon_page_enqueue(m: Machine, b_dev_info: BalloonDevInfo, pfn: int) -> None:
    """Insert a newly allocated page into the balloon (``balloon_page_enqueue``, v6.15).

    Under ``pages_lock``: the page lock must be free — we should be its only user — so a
    failing trylock is a BUG, as in the kernel; ``balloon_page_insert``; BALLOON_INFLATE and
    (v6.15+) NR_BALLOON_PAGES.
    """
    with b_dev_info.pages_lock:
        if not trylock_page(m, pfn):
            raise ModelBug(f"BUG_ON(!trylock_page(page)) in balloon_page_enqueue at pfn "
                           f"{pfn:#x}: {m.mem.dump_page(pfn)}")
        balloon_page_insert(m, b_dev_info, pfn)
        unlock_page(m, pfn)
        m.vm_events[vs.BALLOON_INFLATE] += 1
        _mod_balloon_pages(m, pfn, 1)


def _raced_with_isolation(m: Machine, pfn: int) -> bool:
    """Return whether a listed page is being isolated (v4.8+: PG_isolated; v4.7: !PG_private)."""
    if not m.profile.balloon_compaction:
        return False
    if m.profile.non_lru_movable:
        return pf.PageIsolated(m.mem, pfn)
    return not m.mem.flags_mv[pfn] & _PRIVATE


def balloon_page_list_dequeue(m: Machine, b_dev_info: BalloonDevInfo, head: int,
                              n_req_pages: int) -> int:
    """Move up to ``n_req_pages`` pages from the balloon to the list at ``head``.

    Models ``balloon_page_list_dequeue`` (v6.15): under ``pages_lock``, walk the list; skip a
    page whose lock is taken, or that raced with isolation; otherwise
    ``balloon_page_delete``, BALLOON_DEFLATE, move it to ``head``, NR_BALLOON_PAGES--.
    Returns the number of pages moved.
    """
    mem = m.mem
    n_pages = 0
    with b_dev_info.pages_lock:
        stop = b_dev_info.pages << 1
        cur = mem.lru_next_mv[b_dev_info.pages]
        while cur != stop:  # list_for_each_entry_safe
            pfn = cur >> 1
            cur = mem.lru_next_mv[pfn]
            if n_pages == n_req_pages:
                break
            if not trylock_page(m, pfn):
                continue
            if _raced_with_isolation(m, pfn):
                unlock_page(m, pfn)
                continue
            balloon_page_delete(m, pfn)
            m.vm_events[vs.BALLOON_DEFLATE] += 1
            mem.list_add(pfn, head)
            unlock_page(m, pfn)
            _mod_balloon_pages(m, pfn, -1)
            n_pages += 1
    return n_pages


def balloon_page_dequeue(m: Machine, b_dev_info: BalloonDevInfo) -> int:
    """Take one page out of the balloon for the driver to free; -1 if none can be taken.

    Models ``balloon_page_dequeue``. The list can be empty while pages are isolated for
    migration; empty with nothing isolated means pages were lost, which the kernel BUGs on.
    The returned page's ``lru`` words are free for the driver to use.
    """
    mem = m.mem
    pages = m.alloc_list_head()
    n_pages = balloon_page_list_dequeue(m, b_dev_info, pages, 1)
    if n_pages != 1:
        m.release_list_head(pages)
        with b_dev_info.pages_lock:
            if mem.list_empty(b_dev_info.pages) and not b_dev_info.isolated_pages:
                raise ModelBug("BUG() in balloon_page_dequeue: the balloon list is empty and "
                               "no page is isolated: balloon pages were lost")
        return -1
    pfn = mem.list_first(pages)
    mem.list_del(pfn)  # LIST_HEAD(pages) goes out of scope in the kernel
    m.release_list_head(pages)
    return pfn


def balloon_page_isolate(m: Machine, pfn: int, mode: int) -> bool:
    """``balloon_aops.isolate_page``: take the page off the list; always succeeds (v4.8+)."""
    b_dev_info = balloon_page_device(m, pfn)
    assert b_dev_info is not None, f"balloon page {pfn:#x} has no device"
    with b_dev_info.pages_lock:
        m.mem.list_del(pfn)
        b_dev_info.isolated_pages += 1
    return True


def balloon_page_putback(m: Machine, pfn: int) -> None:
    """``balloon_aops.putback_page``: put an isolated page back on the list (v4.8+)."""
    b_dev_info = balloon_page_device(m, pfn)
    assert b_dev_info is not None, f"balloon page {pfn:#x} has no device"
    with b_dev_info.pages_lock:
        m.mem.list_add(pfn, b_dev_info.pages)
        b_dev_info.isolated_pages -= 1


def balloon_page_migrate(m: Machine, mapping: AddressSpace, newpage: int, pfn: int,
                         mode: mg.MigrateMode) -> int:
    """``balloon_aops.migratepage``: hand the move to the driver (``balloon_page_migrate``).

    Both pages are locked by the VM.
    """
    mem = m.mem
    VM_BUG_ON_PAGE(not pf.PageLocked(mem, pfn), mem, pfn, "!PageLocked(page)")
    VM_BUG_ON_PAGE(not pf.PageLocked(mem, newpage), mem, newpage, "!PageLocked(newpage)")
    balloon = balloon_page_device(m, pfn)
    assert balloon is not None and balloon.migratepage is not None
    return balloon.migratepage(m, balloon, newpage, pfn, mode)


class _BalloonAops:
    """``balloon_aops`` (v4.8; ``balloon_mops`` since v6.0): the three non-LRU hooks."""

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        """Forward to :func:`balloon_page_isolate`."""
        return balloon_page_isolate(m, page, mode)

    def migratepage(self, m: Machine, mapping: AddressSpace, newpage: int, page: int,
                    mode: mg.MigrateMode) -> int:
        """Forward to :func:`balloon_page_migrate`."""
        return balloon_page_migrate(m, mapping, newpage, page, mode)

    def putback_page(self, m: Machine, page: int) -> None:
        """Forward to :func:`balloon_page_putback`."""
        balloon_page_putback(m, page)

    def __repr__(self) -> str:
        return "balloon_aops"


balloon_aops = _BalloonAops()


# --- v3.8 .. v4.7: balloon pages as compaction's special case ------------------------------


def balloon_page_movable(m: Machine, pfn: int) -> bool:
    """Return PageBalloon && PG_private: a balloon page that is not isolated (v4.7).

    Lockless pre-check of the migrate scanner; may be stale, so isolation re-tests it under
    the page lock. Always False without balloon compaction.
    """
    if not m.profile.balloon_compaction:
        return False
    return pf.PageBalloon(m.mem, pfn) and bool(m.mem.flags_mv[pfn] & _PRIVATE)


def isolated_balloon_page(m: Machine, pfn: int) -> bool:
    """Return whether a page on a migration list is a balloon page (v4.7: PageBalloon)."""
    return m.profile.balloon_compaction and pf.PageBalloon(m.mem, pfn)


def balloon_page_isolate_v47(m: Machine, pfn: int) -> bool:
    """Isolate a balloon page for migration, v3.8..v4.7 (``balloon_page_isolate(page)``).

    Take a reference unless the page is being freed, trylock it, re-test
    ``balloon_page_movable`` and then, under ``pages_lock``, clear PG_private, unlink it and
    count it isolated (``__isolate_balloon_page``). The reference is kept on success.
    """
    if not get_page_unless_zero(m, pfn):
        return False
    if trylock_page(m, pfn):
        if balloon_page_movable(m, pfn):
            b_dev_info = balloon_page_device(m, pfn)
            assert b_dev_info is not None
            mem = m.mem
            with b_dev_info.pages_lock:
                mem.flags_mv[pfn] = mem.flags_mv[pfn] & ~_PRIVATE
                mem.list_del(pfn)
                b_dev_info.isolated_pages += 1
            unlock_page(m, pfn)
            return True
        unlock_page(m, pfn)
    swap.put_page(m, pfn)
    return False


def balloon_page_putback_v47(m: Machine, pfn: int) -> None:
    """Give an isolated balloon page back, v3.8..v4.7 (``balloon_page_putback``).

    Locks the page; if it is still a balloon page, sets PG_private, relinks it, uncounts it
    and drops the isolation reference (``__putback_balloon_page``); otherwise the kernel
    WARNs and dumps the page (and the reference leaks, as it did there).
    """
    mem = m.mem
    lock_page(m, pfn)
    if isolated_balloon_page(m, pfn):
        b_dev_info = balloon_page_device(m, pfn)
        assert b_dev_info is not None
        with b_dev_info.pages_lock:
            mem.flags_mv[pfn] = mem.flags_mv[pfn] | _PRIVATE
            mem.list_add(pfn, b_dev_info.pages)
            b_dev_info.isolated_pages -= 1
        swap.put_page(m, pfn)
    else:
        m.warn_once("balloon_page_putback", f"WARN_ON(1) in balloon_page_putback: not movable "
                    f"balloon page: {mem.dump_page(pfn)}")
    unlock_page(m, pfn)


def balloon_page_migrate_v47(m: Machine, newpage: int, pfn: int, mode: mg.MigrateMode) -> int:
    """Migrate an isolated balloon page, v3.8..v4.7 (``balloon_page_migrate``).

    Called by ``__unmap_and_move`` (here: ``move_to_new_page``) with both pages locked,
    skipping every rmap step; -EAGAIN unless the page is a balloon page with a driver.
    """
    mem = m.mem
    VM_BUG_ON_PAGE(not pf.PageLocked(mem, pfn), mem, pfn, "!PageLocked(page)")
    VM_BUG_ON_PAGE(not pf.PageLocked(mem, newpage), mem, newpage, "!PageLocked(newpage)")
    if not isolated_balloon_page(m, pfn):
        m.warn_once("balloon_page_migrate", f"WARN_ON(!__is_movable_balloon_page(page)): "
                    f"not movable balloon page: {mem.dump_page(pfn)}")
        return -mg.EAGAIN
    balloon = balloon_page_device(m, pfn)
    if balloon is None or balloon.migratepage is None:
        return -mg.EAGAIN
    return balloon.migratepage(m, balloon, newpage, pfn, mode)


def balloon_isolate_hook(m: Machine, pfn: int, mode: int) -> bool:
    """The v4.7 migrate scanner's balloon case, installed as ``m.balloon_isolate_hook``.

    ``if (balloon_page_movable(page) && balloon_page_isolate(page)) goto isolate_success;``
    — called for pages that are not PageLRU, before the scanner's compound-page check.
    ``mode`` (the isolate_mode_t) is unused: v4.7's ``balloon_page_isolate`` took none.
    Returns False, with nothing changed, unless the page is a balloon page that this call
    isolated. On True the page is off the balloon's list with PG_private clear and carries
    the isolation reference, owned by the caller, who adds it to ``cc->migratepages`` and
    counts it in NR_ISOLATED_FILE as v4.7's ``acct_isolated()`` did for every page on that
    list (it is not ``__PageMovable``, so ``migrate.py`` lowers the counter when the page
    leaves the list, in every profile).
    """
    return balloon_page_movable(m, pfn) and balloon_page_isolate_v47(m, pfn)
