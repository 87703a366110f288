"""``check_state()``: recount the model's state and check every invariant the kernel relies on.

The kernel has scattered debug checks (``VM_BUG_ON_PAGE``, ``__add_to_free_list``'s type
warning, ``bad_page``) and drgn's ``kmem -f`` recounts free lists against ``nr_free``. This
module does all of that for the whole machine at once, and raises
:class:`~pagelab.errors.StateCheckFailed` listing every violation found.

Checks (Core I):

* every free list is a well-formed doubly linked list whose entries are PageBuddy heads of
  the list's order, aligned, in the list's zone, with refcount 0, on the list matching their
  pageblock's type; list lengths equal the recorded counts; ``nr_free`` equals their sum;
* every PageBuddy page in memory is on exactly one free list;
* NR_FREE_PAGES, NR_FREE_PAGES_BLOCKS, NR_FREE_CMA_PAGES and ``nr_free_highatomic`` equal a
  recount of the lists;
* per-CPU lists hold blocks of their list's order, not PageBuddy, refcount 0, in their zone,
  and ``pcp->count`` equals their pages;
* free blocks (buddy and pcp), blocks allocated through the machine and reserved pages
  partition the present pages exactly: nothing lost, nothing counted twice;
* allocated blocks have a reference on their first page; tails of compound pages point at
  their head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pagelab.errors import StateCheckFailed
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.mmzone import (
    MIGRATE_CMA,
    MIGRATE_HIGHATOMIC,
    MIGRATE_ISOLATE,
    MIGRATE_TYPES,
    NR_PAGE_ORDERS,
    NR_PCP_LISTS,
    Zone,
    pageblock_migratetype,
    pageblock_order,
    pindex_to_order,
)

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["check_state", "free_blocks"]

_MAX_REPORTED = 20


def free_blocks(m: Machine) -> list[tuple[int, int, int, int]]:
    """Return every buddy free block as ``(zone index in m.zones, order, migratetype, pfn)``.

    Walks the lists in list order; this is what oracle comparisons use.
    """
    out: list[tuple[int, int, int, int]] = []
    mem = m.mem
    for zi, zone in enumerate(m.zones):
        if not zone.spanned_pages:
            continue
        for order in range(NR_PAGE_ORDERS):
            for mt in range(MIGRATE_TYPES):
                out.extend((zi, order, mt, pfn)
                           for pfn in mem.list_entries(zone.free_list(order, mt)))
    return out


class _Report:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, text: str) -> None:
        self.problems.append(text)

    def raise_if_any(self) -> None:
        if self.problems:
            shown = self.problems[:_MAX_REPORTED]
            more = len(self.problems) - len(shown)
            tail = f"\n  ... and {more} more" if more > 0 else ""
            raise StateCheckFailed(
                "check_state found the model inconsistent:\n  " + "\n  ".join(shown) + tail
            )


def _check_list_links(m: Machine, head: int, report: _Report, what: str) -> list[int]:
    mem = m.mem
    entries: list[int] = []
    prev = head
    cur = mem.lru_next_mv[head] >> 1
    limit = mem.nr_pfns + 1
    while cur != head:
        if mem.lru_prev_mv[cur] >> 1 != prev:
            report.add(f"{what}: entry {cur:#x} has prev {mem.lru_prev_mv[cur] >> 1:#x}, "
                       f"expected {prev:#x}")
            break
        if cur >= mem.nr_pfns:
            report.add(f"{what}: link leads to another list head ({cur})")
            break
        entries.append(cur)
        if len(entries) > limit:
            report.add(f"{what}: list does not end (cycle)")
            break
        prev = cur
        cur = mem.lru_next_mv[cur] >> 1
    return entries


def _check_free_lists(m: Machine, zone: Zone, report: _Report, coverage: np.ndarray,
                      seen_heads: list[int]) -> None:
    mem = m.mem
    free_pages = 0
    cma_pages = 0
    highatomic_pages = 0
    blocks_pages = 0
    nxt = mem.lru_next_mv
    prv = mem.lru_prev_mv
    base = mem.nr_pfns + zone.list_head_base
    for order in range(NR_PAGE_ORDERS):
        total = 0
        counts = zone.free_count[order]
        for mt in range(MIGRATE_TYPES):
            head = base + order * MIGRATE_TYPES + mt
            if not counts[mt] and nxt[head] == head << 1 and prv[head] == head << 1:
                continue  # an empty list, and counted empty
            what = f"node {zone.node} {zone.name} free_list[{order}][{mt}]"
            entries = _check_list_links(m, head, report, what)
            if len(entries) != zone.free_count[order][mt]:
                report.add(f"{what}: {len(entries)} entries, counted {zone.free_count[order][mt]}")
            total += len(entries)
            for pfn in entries:
                seen_heads.append(pfn)
                if not pf.PageBuddy(mem, pfn):
                    report.add(f"{what}: pfn {pfn:#x} is not PageBuddy: {mem.dump_page(pfn)}")
                if mem.private_mv[pfn] != order:
                    report.add(f"{what}: pfn {pfn:#x} has buddy order {mem.private_mv[pfn]}")
                if pfn & ((1 << order) - 1):
                    report.add(f"{what}: pfn {pfn:#x} is not aligned to order {order}")
                if not (zone.zone_start_pfn <= pfn and pfn + (1 << order) <= zone.zone_end_pfn):
                    report.add(f"{what}: block {pfn:#x}+{1 << order} is outside the zone")
                    continue
                if m.page_zone(pfn) is not zone:
                    report.add(f"{what}: pfn {pfn:#x} belongs to another zone")
                if mem.refcount_mv[pfn] != 0:
                    report.add(f"{what}: free pfn {pfn:#x} has refcount {mem.refcount_mv[pfn]}")
                if mem.index_mv[pfn] != mt:
                    report.add(f"{what}: pfn {pfn:#x} records list type {mem.index_mv[pfn]}")
                block_mt = pageblock_migratetype(
                    m.pageblock_flags_mv[pfn >> pageblock_order])
                # Since v6.10 a free block's list matches its pageblock; v4.8's fallback
                # left blocks on the requester's list.
                if block_mt != mt and m.profile.rmqueue_claim_steal:
                    report.add(f"{what}: pfn {pfn:#x} is in a pageblock of type {block_mt}")
                coverage[pfn] += 1
                coverage[pfn + (1 << order)] -= 1
                if mt != MIGRATE_ISOLATE:
                    free_pages += 1 << order
                    if order >= pageblock_order:
                        blocks_pages += 1 << order
                if mt == MIGRATE_CMA:
                    cma_pages += 1 << order
                if mt == MIGRATE_HIGHATOMIC:
                    highatomic_pages += 1 << order
        if total != zone.nr_free[order]:
            report.add(f"node {zone.node} {zone.name} nr_free[{order}] = {zone.nr_free[order]}, "
                       f"lists hold {total}")
    name = f"node {zone.node} {zone.name}"
    for label, counted, actual in (
        ("NR_FREE_PAGES", zone.vm_stat[vs.NR_FREE_PAGES], free_pages),
        ("NR_FREE_PAGES_BLOCKS", zone.vm_stat[vs.NR_FREE_PAGES_BLOCKS], blocks_pages),
        ("NR_FREE_CMA_PAGES", zone.vm_stat[vs.NR_FREE_CMA_PAGES], cma_pages),
        ("nr_free_highatomic", zone.nr_free_highatomic, highatomic_pages),
    ):
        if counted != actual:
            report.add(f"{name}: {label} = {counted}, free lists hold {actual}")


def _check_pcp(m: Machine, zone: Zone, report: _Report, coverage: np.ndarray) -> None:
    mem = m.mem
    for cpu, pcp in enumerate(zone.per_cpu_pageset):
        pages = 0
        for pindex in range(NR_PCP_LISTS):
            order = pindex_to_order(pindex)
            for pfn in pcp.lists[pindex]:
                what = f"cpu {cpu} node {zone.node} {zone.name} pcp list {pindex}"
                pages += 1 << order
                if pf.PageBuddy(mem, pfn):
                    report.add(f"{what}: pfn {pfn:#x} is PageBuddy")
                if mem.refcount_mv[pfn] != 0:
                    report.add(f"{what}: pfn {pfn:#x} has refcount {mem.refcount_mv[pfn]}")
                if pfn & ((1 << order) - 1) or not zone.zone_spans_pfn(pfn):
                    report.add(f"{what}: pfn {pfn:#x} misplaced for order {order}")
                    continue
                coverage[pfn] += 1
                coverage[pfn + (1 << order)] -= 1
        if pages != pcp.count:
            report.add(f"cpu {cpu} node {zone.node} {zone.name}: pcp count {pcp.count}, "
                       f"lists hold {pages}")


def check_state(m: Machine, owners: bool = True) -> None:
    """Check every invariant of the memory model; raise StateCheckFailed listing violations."""
    report = _Report()
    mem = m.mem
    coverage = np.zeros(m.max_pfn + 1, dtype=np.int32)
    seen_heads: list[int] = []
    for zone in m.zones:
        if not zone.spanned_pages:
            continue
        _check_free_lists(m, zone, report, coverage, seen_heads)
        _check_pcp(m, zone, report, coverage)
    # Every PageBuddy page is on exactly one list.
    buddy = np.nonzero((mem.mapcount >> 24) & 0xFF == pf.PGTY_buddy)[0]
    if len(buddy) != len(seen_heads) or not np.array_equal(np.sort(buddy),
                                                           np.sort(np.asarray(seen_heads))):
        stray = sorted(set(buddy.tolist()) - set(seen_heads))[:5]
        report.add(f"{len(buddy)} PageBuddy pages, {len(seen_heads)} on free lists; "
                   f"not on any list: {[hex(p) for p in stray]}")
    # Allocated memory: a page with a reference (order-0 pages and heads), a tail of a
    # compound page, or a sub-page of a non-compound block allocated through the machine.
    for pfn, order in m.allocations().items():
        if mem.refcount_mv[pfn] <= 0:
            report.add(f"allocated block {pfn:#x} (order {order}) has refcount "
                       f"{mem.refcount_mv[pfn]}")
        if pf.PageHead(mem, pfn):
            tails = mem.lru_next[pfn + 1: pfn + (1 << order)]
            if np.any(tails != (pfn << 1) | 1):
                report.add(f"compound page {pfn:#x}: a tail does not point at its head")
        elif order:
            coverage[pfn + 1] += 1
            coverage[pfn + (1 << order)] -= 1
    # Free chunks taken off the buddy lists but not yet handed out (compaction's freepages).
    for pfn, order in m.held_chunks.items():
        coverage[pfn] += 1
        coverage[pfn + (1 << order)] -= 1
    reserved = (mem.flags & np.uint64(1 << pf.PG_reserved)) != 0
    referenced = (mem.refcount > 0) & ~reserved
    tails = (mem.lru_next[: mem.nr_pfns] & 1) == 1
    held = np.cumsum(coverage[:-1]) + reserved + referenced + tails
    extra = m.extra_owned_pages()
    if extra is not None:
        held += extra
    present = m.present
    expected = (present | reserved).astype(np.int32)  # holes in a zone stay reserved
    wrong = np.nonzero(held != expected)[0]
    if len(wrong):
        first = int(wrong[0])
        report.add(
            f"{len(wrong)} pages are not held exactly once by a free list, a pcp, an "
            f"allocation or a reservation; first pfn {first:#x} held {int(held[first])} times "
            f"(present={bool(present[first])}): {mem.dump_page(first)}"
        )
    for checker in m.state_checkers if owners else ():
        for problem in checker():
            report.add(problem)
    report.raise_if_any()
