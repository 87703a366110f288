"""Reverse mapping: who maps a page, and unmapping/remapping around migration.

Models the parts of ``mm/rmap.c`` (v6.16) that migration uses: ``try_to_migrate`` replaces
every PTE mapping a folio by a migration entry, ``remove_migration_ptes`` points them at the
new folio (or back at the old one when migration failed).

A page's ``mapping`` word names its owner: an :class:`AnonVma` (anonymous pages, with
PAGE_MAPPING_ANON) or an :class:`AddressSpace` (page cache, or a driver's address_space for
non-LRU movable pages). Owners are registered with the machine; ``page->index`` is the page's
offset in its owner. The kernel walks anon_vma and i_mmap interval trees; the model keeps for
each owner the list of ``(mm, first virtual page)`` that map it.

Named simplification: no fork, so an anon_vma has exactly one mm. Non-present PTEs are
negative numbers: ``-1`` is none, a migration entry is ``-2 - pfn``, a swap entry is
``SWP_ENTRY_BASE - offset`` (below every migration entry), so one int64 column holds what the
kernel packs into a ``pte_t``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from pagelab.errors import ModelBug
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs

if TYPE_CHECKING:
    from pagelab.machine import Machine
    from pagelab.mm.memory import MmStruct

__all__ = ["SWP_ENTRY_BASE", "AddressSpace", "AnonVma", "Mapper", "folio_mapcount",
           "folio_referenced", "is_migration_entry", "is_swap_pte", "make_migration_entry",
           "make_swap_entry", "migration_entry_to_pfn", "remove_migration_ptes", "rmap_walk",
           "swp_offset", "try_to_migrate", "try_to_unmap"]

PTE_NONE = -1
#: Swap entries start here (``swp_entry(type 0, offset)``); migration entries lie above.
SWP_ENTRY_BASE = -(1 << 48)


def make_migration_entry(pfn: int) -> int:
    """Return the PTE value of a migration entry for ``pfn``."""
    return -2 - pfn


def is_migration_entry(pte: int) -> bool:
    """Return whether a PTE value is a migration entry."""
    return SWP_ENTRY_BASE < pte < PTE_NONE


def make_swap_entry(offset: int) -> int:
    """Return the PTE value of a swap entry for slot ``offset`` of the swap device."""
    return SWP_ENTRY_BASE - offset


def is_swap_pte(pte: int) -> bool:
    """Return whether a PTE value is a (non-migration) swap entry."""
    return pte <= SWP_ENTRY_BASE


def swp_offset(pte: int) -> int:
    """Return the swap slot a swap entry names (``swp_offset``)."""
    return SWP_ENTRY_BASE - pte


def migration_entry_to_pfn(pte: int) -> int:
    """Return the pfn a migration entry points at."""
    return -2 - pte


class Mapper(Protocol):
    """Anything with a page table: ``pte[vpn]`` is a pfn, PTE_NONE or a migration entry."""

    pte: np.ndarray


class AnonVma:
    """``struct anon_vma``: the owner of a process's anonymous pages."""

    def __init__(self, m: Machine, mm: MmStruct) -> None:
        self.mm = mm
        self.id = m.register_mapping(self)

    @property
    def mapping_word(self) -> int:
        """Return ``page->mapping`` for this anon_vma's pages (pointer | PAGE_MAPPING_ANON)."""
        return pf.mapping_encode(self.id, pf.PAGE_MAPPING_ANON)


class AddressSpace:
    """``struct address_space``: a file's page cache, or a driver's mapping.

    ``pages`` maps a page offset to its pfn (the i_pages xarray); ``mmaps`` lists the mms
    mapping the file from offset 0 at a virtual page (the i_mmap tree). A driver's mapping
    also carries ``a_ops`` with the non-LRU movable callbacks.
    """

    def __init__(self, m: Machine, name: str, a_ops: object | None = None) -> None:
        self.name = name
        self.a_ops = a_ops
        self.pages: dict[int, int] = {}
        self.mmaps: list[tuple[MmStruct, int]] = []
        self.id = m.register_mapping(self)

    @property
    def mapping_word(self) -> int:
        """Return ``page->mapping`` for this address_space (a plain pointer)."""
        return pf.mapping_encode(self.id, 0)


def folio_mapcount(m: Machine, pfn: int) -> int:
    """Return how many page tables map a small folio (``folio_mapcount``)."""
    return pf.page_mapcount(m.mem, pfn)


def rmap_walk(m: Machine, pfn: int) -> list[tuple[MmStruct, int]]:
    """Return every ``(mm, vpn)`` whose PTE refers to ``pfn`` (``rmap_walk``).

    A PTE refers to the page when it maps it or holds a migration entry for it.
    """
    mem = m.mem
    owner = m.mappings.get(pf.mapping_owner(mem.mapping_mv[pfn]))
    index = mem.index_mv[pfn]
    found: list[tuple[MmStruct, int]] = []
    if isinstance(owner, AnonVma):
        candidates = [(owner.mm, index)]
    elif isinstance(owner, AddressSpace):
        candidates = [(mm, base + index) for mm, base in owner.mmaps]
    else:
        return found
    for mm, vpn in candidates:
        if vpn < len(mm.pte):
            pte = int(mm.pte[vpn])
            if pte == pfn or (is_migration_entry(pte) and migration_entry_to_pfn(pte) == pfn):
                found.append((mm, vpn))
    return found


def try_to_migrate(m: Machine, pfn: int) -> None:
    """Replace every PTE mapping ``pfn`` with a migration entry (``try_to_migrate``).

    Caller holds the page lock and a reference. Each PTE drops its mapcount and its
    reference (``try_to_migrate_one``: ``folio_remove_rmap_pte`` + ``folio_put``), so that
    afterwards only the isolation reference and extra pins remain.
    """
    mem = m.mem
    for mm, vpn in rmap_walk(m, pfn):
        if mm.pte[vpn] == pfn:
            mm.pte[vpn] = make_migration_entry(pfn)
            mem.mapcount_mv[pfn] -= 1
            mem.refcount_mv[pfn] -= 1


def remove_migration_ptes(m: Machine, src: int, dst: int) -> None:
    """Point migration entries for ``src`` at ``dst`` (``remove_migration_ptes``).

    ``dst == src`` restores the old page after a failed migration. Each restored PTE adds a
    mapcount and a reference to ``dst`` (``remove_migration_pte``: ``folio_get``).
    """
    mem = m.mem
    entry = make_migration_entry(src)
    owner_word = mem.mapping_mv[dst]
    owner = m.mappings.get(pf.mapping_owner(owner_word))
    index = mem.index_mv[dst]
    if isinstance(owner, AnonVma):
        candidates = [(owner.mm, index)]
    elif isinstance(owner, AddressSpace):
        candidates = [(mm, base + index) for mm, base in owner.mmaps]
    else:
        raise ModelBug(f"remove_migration_ptes: pfn {dst:#x} has no rmap owner "
                       f"(mapping {owner_word:#x})")
    for mm, vpn in candidates:
        if vpn < len(mm.pte) and mm.pte[vpn] == entry:
            mm.pte[vpn] = dst
            mem.mapcount_mv[dst] += 1
            mem.refcount_mv[dst] += 1


def folio_referenced(m: Machine, pfn: int) -> int:
    """Count and clear the young bits of the PTEs mapping ``pfn`` (``folio_referenced``).

    Returns how many mappings had accessed the page since the last look (the kernel's
    ``referenced`` count from ``folio_referenced_one`` → ``ptep_clear_flush_young``).
    """
    referenced = 0
    for mm, vpn in rmap_walk(m, pfn):
        if mm.pte[vpn] == pfn and mm.young[vpn]:
            mm.young[vpn] = 0
            referenced += 1
    return referenced


def try_to_unmap(m: Machine, pfn: int, swap_pte: int = PTE_NONE) -> int:
    """Unmap ``pfn`` from every page table (``try_to_unmap``); return the PTEs replaced.

    Anonymous pages get ``swap_pte`` (their swap entry); page-cache pages get none and fault
    the page back from the file. Each PTE drops its mapcount and its reference
    (``folio_remove_rmap_pte`` + ``folio_put``); the caller keeps its isolation reference.
    """
    mem = m.mem
    unmapped = 0
    for mm, vpn in rmap_walk(m, pfn):
        if mm.pte[vpn] == pfn:
            mm.pte[vpn] = swap_pte
            mm.young[vpn] = 0
            mem.mapcount_mv[pfn] -= 1
            mem.refcount_mv[pfn] -= 1
            unmapped += 1
    if unmapped and mem.mapping_mv[pfn] & pf.PAGE_MAPPING_ANON:
        m.nodes[m.page_zone(pfn).node].vm_stat[vs.NR_ANON_MAPPED] -= unmapped
    return unmapped
