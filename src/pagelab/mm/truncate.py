"""Removing a file's pages from the page cache (models ``mm/truncate.c``, v6.16).

Named simplification: only whole files are truncated (``truncate_inode_pages(mapping, 0)``,
what unlinking the last link of a file does in ``evict``); a page still mapped by a process
is refused, since the model's files are never unlinked while mapped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pagelab.errors import InvalidArgument
from pagelab.mm import page_flags as pf
from pagelab.mm.filemap import filemap_remove_folio, get_page, lock_page, unlock_page
from pagelab.mm.swap import put_page

if TYPE_CHECKING:
    from pagelab.machine import Machine
    from pagelab.mm.rmap import AddressSpace

__all__ = ["truncate_inode_pages"]


def truncate_inode_pages(m: Machine, mapping: AddressSpace) -> int:
    """Drop every page of ``mapping`` from the page cache; return how many there were.

    Models ``truncate_inode_pages`` from offset 0: each folio is locked, cleaned without
    writeback if dirty, removed from the cache and released (freed unless someone else, such
    as an isolation by compaction, still holds a reference). Raises InvalidArgument if a
    page is mapped by a process.
    """
    mem = m.mem
    pfns = [mapping.pages[index] for index in sorted(mapping.pages)]
    for pfn in pfns:
        if pf.page_mapped(mem, pfn):
            raise InvalidArgument(f"truncate_inode_pages({mapping.name}): page {pfn:#x} is "
                                  f"still mapped; unmap the file first")
    for pfn in pfns:
        get_page(m, pfn)  # find_lock_entries' reference
        lock_page(m, pfn)
        filemap_remove_folio(m, pfn)  # drops the cache's reference
        unlock_page(m, pfn)
        put_page(m, pfn)  # folio_batch_release: usually the last reference
    return len(pfns)
