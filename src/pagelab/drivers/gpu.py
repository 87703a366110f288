"""A GPU buffer-object driver whose pages move through the non-LRU movable framework.

The seed's third user after zsmalloc and the balloon ("embedded systems use lots of
non-movable pages, e.g. zram, GPU memory"), written as the model for your own driver
(``docs/tutorial-driver.md``). It follows the v4.8 contract of ``pagelab.mm.migrate``:

* A buffer object (BO) is ``npages`` order-0 pages, not physically contiguous, as TTM's page
  pool hands out order-0 pages when a higher order fails. The framework moves order-0 pages
  only (the seed: compound non-LRU pages are not migrated), so a 64 KiB BO is 16 pages here.
* Each page carries ``mapping = gpu address_space | PAGE_MAPPING_MOVABLE`` (set under the page
  lock), ``private`` = the BO's handle and ``index`` = the page's offset in the BO. The driver
  never uses ``page->lru``: the VM owns it while a page is isolated.
* Pins ("DMA in flight") block migration at both steps, as the framework's users do.
  ``isolate_page`` refuses the pages of a pinned BO (z3fold refuses mapped pages the same way,
  and compaction itself skips pages that look pinned): the VM then wastes neither a target page
  nor its retry passes. A pin taken *after* isolation is caught by ``migratepage``, which
  returns -EAGAIN (zsmalloc does this for a pinned handle): the VM retries on its next pass and,
  once its passes are used up, counts the page failed and puts it back.
* Contents are the pages' tokens; :meth:`Gpu.check` (run by ``m.check_state()``) verifies them.

Under a profile without the framework (``non_lru_movable=False``, before v4.8) a GPU driver had
no way to make its pages movable, so it allocated them without ``__GFP_MOVABLE``
(``GFP_HIGHUSER``): they come from unmovable pageblocks and compaction never touches them.

Model simplification: no driver lock. The page lock serialises ``destroy_bo`` against
migration (it revalidates after ``lock_page``, as page-cache code does), and what a kernel
driver guards with its own lock (pin check, copy and switch in ``migratepage``; ``pin``;
``render``) contains no preemption point, so it is atomic under the schedule explorer too.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pagelab.errors import InvalidArgument
from pagelab.mm import page_flags as pf
from pagelab.mm.filemap import get_page, lock_page, trylock_page, unlock_page
from pagelab.mm.gfp import GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE
from pagelab.mm.migrate import MIGRATEPAGE_SUCCESS, ClearPageMovable, MigrateMode, SetPageMovable
from pagelab.mm.page_flags import VM_BUG_ON_PAGE
from pagelab.mm.rmap import AddressSpace
from pagelab.mm.swap import put_page

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["Bo", "Gpu", "GpuStats"]


@dataclass(eq=False)
class Bo:
    """A buffer object: its pages by offset, the content written to each, and its pin count."""

    handle: int
    pages: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    pinned: int = 0


@dataclass
class GpuStats:
    """What the migration callbacks did to this driver's pages."""

    isolated: int = 0
    isolate_refused: int = 0
    migrated: int = 0
    migrate_eagain: int = 0
    putback: int = 0


class Gpu:
    """A GPU driver: ``create_bo``/``destroy_bo``, ``pin``/``unpin``, the three callbacks."""

    def __init__(self, m: Machine, name: str = "gpu", movable: bool = True) -> None:
        self.m = m
        self.mapping = AddressSpace(m, name, a_ops=self)
        self.bos: dict[int, Bo] = {}
        self.isolated: set[int] = set()  # pages the VM holds isolated
        self.stats = GpuStats()
        self._next_handle = 1
        #: The v4.8 framework exists (and the driver uses it, ``movable``): pages are allocated
        #: movable and published to compaction.
        self.movable = movable and m.profile.non_lru_movable
        self.gfp = GFP_HIGHUSER_MOVABLE if self.movable else GFP_HIGHUSER
        m.state_checkers.append(self.check)

    # --- buffer objects -----------------------------------------------------------------------

    def create_bo(self, npages: int) -> Bo | None:
        """Allocate a BO of ``npages`` movable pages with fresh contents; None if out of memory."""
        if npages <= 0:
            raise InvalidArgument(f"create_bo({npages}): give a number of pages >= 1")
        m, mem = self.m, self.m.mem
        bo = Bo(self._next_handle)
        self._next_handle += 1
        self.bos[bo.handle] = bo
        for index in range(npages):
            pfn = m.alloc_page_raw(self.gfp, 0, m.cpu % m.nr_nodes)
            if pfn < 0:
                self.destroy_bo(bo)
                return None
            if not self.movable:
                mem.mapping_mv[pfn] = self.mapping.mapping_word
                mem.private_mv[pfn] = bo.handle
                mem.index_mv[pfn] = index
                mem.token_mv[pfn] = token = m.new_token()
                bo.pages.append(pfn)
                bo.tokens.append(token)
                continue
            # Nobody else knows a fresh page, so the trylock succeeds (the balloon BUGs too).
            # Page and BO are complete before SetPageMovable publishes the page to compaction.
            VM_BUG_ON_PAGE(not trylock_page(m, pfn), mem, pfn, "!trylock_page(new page)")
            mem.private_mv[pfn] = bo.handle
            mem.index_mv[pfn] = index
            mem.token_mv[pfn] = token = m.new_token()
            bo.pages.append(pfn)
            bo.tokens.append(token)
            SetPageMovable(m, pfn, self.mapping)
            unlock_page(m, pfn)
        return bo

    def destroy_bo(self, bo: Bo) -> None:
        """Free a BO's pages, isolated or not: lock, ClearPageMovable, unlock, put_page."""
        if self._own(bo).pinned:
            raise InvalidArgument(f"BO {bo.handle} is pinned (DMA in flight); unpin it first")
        m = self.m
        if not self.movable:
            for pfn in bo.pages:
                m.mem.mapping_mv[pfn] = 0
                m.mem.private_mv[pfn] = 0
                put_page(m, pfn)
            del self.bos[bo.handle]
            return
        for index, pfn in enumerate(bo.pages):
            lock_page(m, pfn)
            while bo.pages[index] != pfn:  # migrated while we waited for the lock
                unlock_page(m, pfn)
                pfn = bo.pages[index]
                lock_page(m, pfn)
            ClearPageMovable(m, pfn)  # keeps the type bit: an isolating VM sees "released"
            m.mem.private_mv[pfn] = 0
            unlock_page(m, pfn)
            self.isolated.discard(pfn)  # an isolated page is now the VM's to free
            put_page(m, pfn)
        del self.bos[bo.handle]

    def pin(self, bo: Bo) -> None:
        """Pin a BO for DMA: its pages stay where they are until :meth:`unpin`."""
        self._own(bo).pinned += 1

    def unpin(self, bo: Bo) -> None:
        """Drop one pin taken by :meth:`pin`."""
        if not self._own(bo).pinned:
            raise InvalidArgument(f"BO {bo.handle} is not pinned; unpin only what pin() pinned")
        bo.pinned -= 1

    def render(self, bo: Bo) -> None:
        """Let the GPU write new contents into every page of a BO."""
        for index, pfn in enumerate(self._own(bo).pages):
            self.m.mem.token_mv[pfn] = bo.tokens[index] = self.m.new_token()

    # The pluggable-driver contract of pagelab.drivers.loader.
    allocate = create_bo
    release = destroy_bo

    def _own(self, bo: Bo) -> Bo:
        if self.bos.get(bo.handle) is not bo:
            raise InvalidArgument(f"BO {bo.handle} does not belong to this GPU (destroyed?)")
        return bo

    # --- the non-LRU movable callbacks (page locked by the VM in all three) -------------------

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        """Let the VM take a page, unless its BO is pinned."""
        if self.bos[m.mem.private_mv[page]].pinned:
            self.stats.isolate_refused += 1
            return False
        self.isolated.add(page)
        self.stats.isolated += 1
        return True

    def migratepage(self, m: Machine, mapping: AddressSpace, newpage: int, page: int,
                    mode: MigrateMode) -> int:
        """Copy ``page`` to ``newpage`` and switch the BO over; -EAGAIN while pinned."""
        mem = m.mem
        VM_BUG_ON_PAGE(not pf.PageIsolated(mem, page), mem, page, "!PageIsolated(page)")
        bo = self.bos[mem.private_mv[page]]
        if bo.pinned:  # pinned after isolation: the DMA ends soon, so ask for a retry
            self.stats.migrate_eagain += 1
            return -errno.EAGAIN
        # No preemption point from the pin check to the switch: the section a kernel driver
        # guards with its own lock against pin() and GPU writes.
        index = mem.index_mv[page]
        mem.token_mv[newpage] = mem.token_mv[page]  # copy_highpage
        mem.private_mv[newpage] = bo.handle
        mem.index_mv[newpage] = index
        SetPageMovable(m, newpage, mapping)
        bo.pages[index] = newpage
        self.isolated.discard(page)
        get_page(m, newpage)  # the driver's reference; the VM drops the allocation's
        ClearPageMovable(m, page)
        mem.private_mv[page] = 0
        put_page(m, page)  # the driver's reference; the VM's isolation reference frees it
        self.stats.migrated += 1
        return MIGRATEPAGE_SUCCESS

    def putback_page(self, m: Machine, page: int) -> None:
        """Take back a page the VM could not migrate."""
        self.isolated.discard(page)
        self.stats.putback += 1

    # --- consistency --------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Return what is wrong with the driver's pages (run by ``m.check_state()``)."""
        mem = self.m.mem
        word = self.mapping.mapping_word | (pf.PAGE_MAPPING_MOVABLE if self.movable else 0)
        problems: list[str] = []
        owned = set()
        for bo in self.bos.values():
            for index, pfn in enumerate(bo.pages):
                owned.add(pfn)
                what = f"gpu BO {bo.handle} page {index} (pfn {pfn:#x})"
                isolated = pf.PageIsolated(mem, pfn)
                if (mem.mapping_mv[pfn], mem.private_mv[pfn], mem.index_mv[pfn]) != (
                        word, bo.handle, index):
                    problems.append(f"{what} is not this driver's movable page: "
                                    f"{mem.dump_page(pfn)}")
                if mem.token_mv[pfn] != bo.tokens[index]:
                    problems.append(f"{what} holds token {mem.token_mv[pfn]:#x}, the GPU wrote "
                                    f"{bo.tokens[index]:#x}: contents lost")
                if isolated != (pfn in self.isolated):
                    problems.append(f"{what}: PG_isolated is {isolated} but the driver "
                                    f"thinks {pfn in self.isolated}")
                if mem.refcount_mv[pfn] < 1 + isolated:
                    problems.append(f"{what} has refcount {mem.refcount_mv[pfn]}, "
                                    f"fewer than the driver's and the VM's references")
        problems.extend(f"gpu: isolated pfn {pfn:#x} belongs to no BO"
                        for pfn in self.isolated - owned)
        return problems
