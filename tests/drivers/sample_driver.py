"""A minimal pluggable movable driver: the complete example of docs/tutorial-driver.md.

Objects of order-0 pages; each page is movable; ``busy`` objects (hardware using them) make
migration answer -EAGAIN. Check it with ``pagelab driver-check sample_driver:Sample``.
"""

from __future__ import annotations

import errno

from pagelab.machine import Machine
from pagelab.mm.filemap import get_page, lock_page, trylock_page, unlock_page
from pagelab.mm.gfp import GFP_HIGHUSER_MOVABLE
from pagelab.mm.migrate import MIGRATEPAGE_SUCCESS, ClearPageMovable, MigrateMode, SetPageMovable
from pagelab.mm.rmap import AddressSpace
from pagelab.mm.swap import put_page


class Sample:
    """Handles of movable pages whose contents (tokens) the driver verifies."""

    def __init__(self, m: Machine) -> None:
        self.m = m
        self.mapping = AddressSpace(m, "sample", a_ops=self)  # page->mapping of our pages
        self.pages: dict[int, list[int]] = {}  # handle -> pfn of each page
        self.written: dict[int, list[int]] = {}  # handle -> token written to each page
        self.busy: set[int] = set()  # handles the hardware is using right now
        self.next_handle = 1
        m.state_checkers.append(self.check)

    # --- what users of the driver call --------------------------------------------------------

    def allocate(self, npages: int) -> int | None:
        m, mem = self.m, self.m.mem
        handle = self.next_handle
        self.next_handle += 1
        self.pages[handle], self.written[handle] = [], []
        for index in range(npages):
            pfn = m.alloc_page_raw(GFP_HIGHUSER_MOVABLE, 0, 0)
            if pfn < 0:
                self.release(handle)
                return None
            if not trylock_page(m, pfn):  # a fresh page is ours alone
                raise AssertionError(f"new page {pfn:#x} is locked")
            mem.private_mv[pfn], mem.index_mv[pfn] = handle, index
            mem.token_mv[pfn] = token = m.new_token()  # write the contents,
            self.pages[handle].append(pfn)  # record the page,
            self.written[handle].append(token)
            SetPageMovable(m, pfn, self.mapping)  # and only then let compaction see it
            unlock_page(m, pfn)
        return handle

    def release(self, handle: int) -> None:
        m, pages = self.m, self.pages[handle]
        for index, pfn in enumerate(pages):
            lock_page(m, pfn)
            while pages[index] != pfn:  # migrated while we waited: lock the new page
                unlock_page(m, pfn)
                pfn = pages[index]
                lock_page(m, pfn)
            ClearPageMovable(m, pfn)  # an isolated page stays the VM's to free
            unlock_page(m, pfn)
            put_page(m, pfn)
        del self.pages[handle], self.written[handle]
        self.busy.discard(handle)

    # --- the three callbacks: the VM holds the page lock in each -------------------------------

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        return True  # nothing to detach: the page is not on any driver list

    def migratepage(self, m: Machine, mapping: AddressSpace, newpage: int, page: int,
                    mode: MigrateMode) -> int:
        mem = m.mem
        handle, index = mem.private_mv[page], mem.index_mv[page]
        if handle in self.busy:
            return -errno.EAGAIN  # in use: the VM will try again
        mem.token_mv[newpage] = mem.token_mv[page]  # copy the contents
        mem.private_mv[newpage], mem.index_mv[newpage] = handle, index
        SetPageMovable(m, newpage, mapping)
        self.pages[handle][index] = newpage  # switch before any preemption point
        get_page(m, newpage)  # our reference on the new page
        ClearPageMovable(m, page)
        put_page(m, page)  # our reference on the old page; the VM frees it
        return MIGRATEPAGE_SUCCESS

    def putback_page(self, m: Machine, page: int) -> None:
        pass  # isolate_page detached nothing, so there is nothing to re-attach

    # --- verification -------------------------------------------------------------------------

    def check(self) -> list[str]:
        mem = self.m.mem
        return [f"sample handle {handle} page {index}: token {mem.token_mv[pfn]:#x}, "
                f"wrote {self.written[handle][index]:#x}"
                for handle, pfns in self.pages.items() for index, pfn in enumerate(pfns)
                if mem.token_mv[pfn] != self.written[handle][index]]
