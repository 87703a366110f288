"""Boot: the physical layout, zone spans, memmap init and handing memory to the buddy.

Models the parts of ``arch/x86`` (e820 layout, ``zone_sizes_init``), of ``arch/arm64``
(``zone_sizes_init``, arch/arm64/mm/init.c, v4.8) and of ``mm/mm_init.c``
(``free_area_init``, ``memmap_init_range``, ``memblock_free_all`` / ``__free_pages_memory``)
that decide where free memory is and in which order it first reaches the free lists.

Two layouts (``ARCHES``):

* ``x86_64``: a PC. RAM from pfn 1 with the legacy hole at 640 KiB..1 MiB, the PCI hole from
  3 GiB to 4 GiB; ZONE_DMA below 16 MiB, ZONE_DMA32 below 4 GiB, ZONE_NORMAL above.
* ``arm64``: a phone or board of the seed's time. One bank of DRAM from 2 GiB physical (the
  usual base of arm64 SoCs); ZONE_DMA from the start of DRAM to the first 4 GiB boundary
  above it (``max_zone_dma_phys``: 32-bit DMA masters), ZONE_NORMAL above. A 2 GiB phone is
  one zone, DMA. Mainline sizes arm64's DMA zones from the SoC's firmware tables (ZONE_DMA
  then ZONE_DMA32); for an SoC whose DMA reaches 4 GiB that is the same split, which the
  model keeps on every profile.

Named simplifications: ``memblock`` reservations are three regions — on x86-64 the first 1
MiB (x86 keeps it reserved since v5.13); the kernel image and early allocations
(``kernel_reserved`` bytes), at 16 MiB on x86-64 and at the start of DRAM on arm64; and each
node's ``struct page`` array (64 bytes per present page, allocated top-down as memblock does).
A phone's firmware carve-outs (modem, DSP, secure world) are not buddy memory and are left out
of ``memory``. Deferred struct-page init is off, so all memory is freed in ascending pfn order
at boot.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from pagelab.errors import BadConfiguration, InvalidArgument
from pagelab.mm.mmzone import (
    MAX_DMA32_PFN,
    MAX_DMA_PFN,
    MAX_ORDER_NR_PAGES,
    MAX_PAGE_ORDER,
    PAGE_SHIFT,
    PAGES_PER_SECTION,
    ZoneType,
)

__all__ = ["ARCHES", "MemoryRange", "Reservation", "arch_layout", "arm64_layout",
           "parse_size", "x86_64_layout"]

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

#: Where x86-64 loads the kernel (CONFIG_PHYSICAL_START = 16 MiB).
PHYSICAL_START_PFN = (16 << 20) >> PAGE_SHIFT
#: The PCI hole: RAM below 4 GiB ends at 3 GiB on the layouts the model builds.
LOW_RAM_END_PFN = (3 << 30) >> PAGE_SHIFT
#: e820 on a typical PC: pfn 0 is firmware's, 640 KiB..1 MiB is the legacy VGA/BIOS hole.
LEGACY_HOLE = (0x9F, 0x100)
STRUCT_PAGE_SIZE = 64
#: Where arm64 SoCs usually put DRAM (0x8000_0000).
ARM64_DRAM_BASE_PFN = (2 << 30) >> PAGE_SHIFT


def parse_size(size: str | int) -> int:
    """Return a size in bytes from ``"24G"``, ``"512MiB"``, ``"1T"`` or an int.

    Raises :class:`InvalidArgument` for anything else.
    """
    if not isinstance(size, str):
        try:
            size = operator.index(size)  # int, numpy integer
        except TypeError:
            raise InvalidArgument(
                f"size {size!r} is neither a number of bytes nor a string; give an int or a "
                "size such as '24G', '1.5G', '512M'"
            ) from None
        if size < 0:
            raise InvalidArgument(f"size {size} is negative; give a size such as '4G'")
        return size
    match = _SIZE_RE.match(size)
    if not match:
        raise InvalidArgument(
            f"cannot read size {size!r}; write a number with an optional unit, e.g. '24G', "
            "'512M', '1T'"
        )
    number, unit = match.groups()
    unit = (unit or "").upper().rstrip("B").rstrip("I") if unit and unit.upper() != "B" else ""
    return int(float(number) * _UNITS[unit])


@dataclass(frozen=True)
class MemoryRange:
    """One range of RAM, like an e820 "usable" entry: pfns ``[start_pfn, end_pfn)`` of a node."""

    nid: int
    start_pfn: int
    end_pfn: int


@dataclass(frozen=True)
class Reservation:
    """A memblock reservation: present pages that never reach the buddy allocator."""

    start_pfn: int
    end_pfn: int
    what: str


@dataclass(frozen=True)
class ZoneSpan:
    """The span of one zone of one node (``zone_start_pfn``, ``spanned_pages``)."""

    nid: int
    zone_idx: int
    start_pfn: int
    end_pfn: int


def x86_64_layout(memory: int, nodes: int = 1) -> list[MemoryRange]:
    """Return RAM ranges of an x86-64 PC with ``memory`` bytes over ``nodes`` NUMA nodes.

    pfn 0 and 640 KiB..1 MiB are holes; RAM below 4 GiB stops at 3 GiB (the PCI hole) and
    continues at 4 GiB. Nodes split the RAM evenly at section (128 MiB) boundaries.
    """
    pages = memory >> PAGE_SHIFT
    if memory <= 0 or pages < 8192:
        raise BadConfiguration(
            f"memory of {memory} bytes is too small to boot; give at least 32M"
        )
    if nodes < 1 or nodes > 64:
        raise BadConfiguration(f"nodes={nodes}: give between 1 and 64 NUMA nodes")
    low_pages = min(pages, LOW_RAM_END_PFN)
    ranges = [(1, LEGACY_HOLE[0]), (LEGACY_HOLE[1], low_pages)]
    if pages > LOW_RAM_END_PFN:
        high = pages - LOW_RAM_END_PFN
        ranges.append((MAX_DMA32_PFN, MAX_DMA32_PFN + high))
    present = sum(end - start for start, end in ranges)
    per_node = present // nodes
    if nodes > 1 and per_node < PAGES_PER_SECTION:
        raise BadConfiguration(
            f"{nodes} nodes over {memory >> 20} MiB leaves less than a 128 MiB section per "
            "node; use fewer nodes or more memory"
        )
    # Node k starts at the section boundary nearest to its even share of the present pages.
    # Rounding to the nearest boundary keeps every node within half a section of its share
    # (rounding up let the first nodes take a section too many each, leaving the last nodes
    # with no memory at all).
    bounds = [
        _nearest_section(_present_pfn(ranges, k * present // nodes)) for k in range(1, nodes)
    ]
    out: list[MemoryRange] = []
    for start, end in ranges:
        cur = start
        while cur < end:
            nid = sum(1 for b in bounds if b <= cur)
            split = min([b for b in bounds if b > cur] + [end])
            out.append(MemoryRange(nid, cur, split))
            cur = split
    if {r.nid for r in out} != set(range(nodes)):
        raise BadConfiguration(
            f"{nodes} nodes over {memory >> 20} MiB leaves a node without memory; use fewer "
            "nodes or more memory"
        )
    return out


def arm64_layout(memory: int, nodes: int = 1) -> list[MemoryRange]:
    """Return the RAM range of an arm64 phone: one bank of ``memory`` bytes from 2 GiB."""
    pages = memory >> PAGE_SHIFT
    if memory <= 0 or pages < 8192:
        raise BadConfiguration(
            f"memory of {memory} bytes is too small to boot; give at least 32M"
        )
    if nodes != 1:
        raise BadConfiguration(f"nodes={nodes}: the arm64 layout is one node (a phone); "
                               f"use the x86_64 layout for NUMA")
    return [MemoryRange(0, ARM64_DRAM_BASE_PFN, ARM64_DRAM_BASE_PFN + pages)]


#: Layouts by architecture name.
ARCHES = {"x86_64": x86_64_layout, "arm64": arm64_layout}


def arch_layout(arch: str) -> Callable[[int, int], list[MemoryRange]]:
    """Return ``arch``'s layout function; BadConfiguration for an unknown architecture."""
    if arch not in ARCHES:
        raise BadConfiguration(f"arch {arch!r}: give one of {', '.join(ARCHES)}")
    return ARCHES[arch]


def _present_pfn(ranges: list[tuple[int, int]], index: int) -> int:
    """Return the pfn of the ``index``-th present page of ``ranges`` (0-based)."""
    for start, end in ranges:
        if index < end - start:
            return start + index
        index -= end - start
    return ranges[-1][1]


def _nearest_section(pfn: int) -> int:
    """Return the section boundary (a multiple of PAGES_PER_SECTION) nearest to ``pfn``."""
    return (pfn + PAGES_PER_SECTION // 2) // PAGES_PER_SECTION * PAGES_PER_SECTION


def validate_ranges(ranges: list[MemoryRange]) -> None:
    """Check that RAM ranges are non-empty, ordered per node and do not overlap."""
    if not ranges:
        raise BadConfiguration("no RAM ranges; give memory > 0")
    ordered = sorted(ranges, key=lambda r: r.start_pfn)
    for r in ordered:
        if r.end_pfn <= r.start_pfn:
            raise BadConfiguration(f"empty or inverted RAM range {r}; give start < end")
        if r.nid < 0:
            raise BadConfiguration(f"negative node id in {r}")
    for a, b in pairwise(ordered):
        if b.start_pfn < a.end_pfn:
            raise BadConfiguration(
                f"RAM ranges overlap: pfns {a.start_pfn:#x}-{a.end_pfn:#x} and "
                f"{b.start_pfn:#x}-{b.end_pfn:#x}; give disjoint ranges"
            )
        if b.nid < a.nid:
            raise BadConfiguration(
                f"node {b.nid} starts below node {a.nid}; give each node a pfn range above "
                "the previous node's"
            )


def zone_spans(ranges: list[MemoryRange], movable_pages_per_node: int,
               arch: str = "x86_64") -> list[ZoneSpan]:
    """Return the zone spans of every node, as ``zone_spanned_pages_in_node`` computes them.

    A zone spans its node's pfn range clamped to the zone's pfn window (holes included); the
    windows are the architecture's (module docstring).
    ZONE_MOVABLE, when asked for, takes the top
    ``movable_pages_per_node`` pages of each node, starting on a MAX_ORDER boundary.
    """
    spans: list[ZoneSpan] = []
    for nid in sorted({r.nid for r in ranges}):
        node = [r for r in ranges if r.nid == nid]
        node_start = min(r.start_pfn for r in node)
        node_end = max(r.end_pfn for r in node)
        dma_end, dma32_end = _dma_zone_ends(arch, node_start)
        movable_start = node_end
        if movable_pages_per_node:
            movable_start = node_end - movable_pages_per_node
            movable_start = -(-movable_start // MAX_ORDER_NR_PAGES) * MAX_ORDER_NR_PAGES
            if movable_start <= max(node_start, dma32_end if node_end > dma32_end
                                    else node_start):
                raise BadConfiguration(
                    f"movable memory of {movable_pages_per_node} pages per node leaves no "
                    f"kernel memory on node {nid}; ask for less movable memory"
                )
        windows = {
            ZoneType.ZONE_DMA: (0, dma_end),
            ZoneType.ZONE_DMA32: (dma_end, dma32_end),
            ZoneType.ZONE_NORMAL: (dma32_end, movable_start),
            ZoneType.ZONE_MOVABLE: (movable_start, node_end),
        }
        for zidx, (lo, hi) in windows.items():
            # zone_spanned_pages_in_node(): the node's span clamped to the zone's window.
            start = min(max(node_start, lo), hi)
            end = min(max(node_end, lo), hi)
            if start < end:
                spans.append(ZoneSpan(nid, int(zidx), start, end))
    return spans


def _dma_zone_ends(arch: str, node_start: int) -> tuple[int, int]:
    """Return the end pfns of ZONE_DMA and ZONE_DMA32 on ``arch``.

    x86-64: 16 MiB and 4 GiB. arm64: ZONE_DMA ends at ``max_zone_dma_phys`` (v4.8), the
    first 4 GiB boundary above the start of DRAM (the end of DRAM clamps the window anyway),
    and ZONE_DMA32 is empty.
    """
    if arch == "x86_64":
        return MAX_DMA_PFN, MAX_DMA32_PFN
    dma_end = (node_start & ~(MAX_DMA32_PFN - 1)) + MAX_DMA32_PFN
    return dma_end, dma_end


def memblock_reservations(ranges: list[MemoryRange], kernel_reserved: int,
                          arch: str = "x86_64") -> list[Reservation]:
    """Return the memblock reservations the model makes at boot (see the module docstring)."""
    kernel_pages = kernel_reserved >> PAGE_SHIFT
    if arch == "x86_64":
        res = [Reservation(0, 0x100, "low 1 MiB")]
        kernel_start = PHYSICAL_START_PFN
    else:
        res = []
        kernel_start = min(r.start_pfn for r in ranges)
    if kernel_pages:
        res.append(Reservation(kernel_start, kernel_start + kernel_pages,
                               "kernel image and early allocations"))
    for nid in sorted({r.nid for r in ranges}):
        node = sorted((r for r in ranges if r.nid == nid), key=lambda r: r.start_pfn)
        present = sum(r.end_pfn - r.start_pfn for r in node)
        memmap_pages = -(-present * STRUCT_PAGE_SIZE // (1 << PAGE_SHIFT))
        # Top-down, from the node's highest range.
        for r in reversed(node):
            take = min(memmap_pages, r.end_pfn - r.start_pfn)
            if take:
                res.append(Reservation(r.end_pfn - take, r.end_pfn, f"memmap node {nid}"))
            memmap_pages -= take
            if not memmap_pages:
                break
    return res


def free_ranges(
    ranges: list[MemoryRange], reservations: list[Reservation]
) -> list[tuple[int, int]]:
    """Return present, unreserved pfn ranges in ascending order (``for_each_free_mem_range``)."""
    out: list[tuple[int, int]] = []
    cuts = sorted((r.start_pfn, r.end_pfn) for r in reservations)
    for r in sorted(ranges, key=lambda r: r.start_pfn):
        cur = r.start_pfn
        for cs, ce in cuts:
            if ce <= cur or cs >= r.end_pfn:
                continue
            if cs > cur:
                out.append((cur, cs))
            cur = max(cur, ce)
        if cur < r.end_pfn:
            out.append((cur, r.end_pfn))
    return out


def free_chunks(start: int, end: int, zone_cuts: list[int]) -> list[tuple[int, int]]:
    """Split ``[start, end)`` into naturally aligned blocks, as ``__free_pages_memory`` does.

    Blocks never cross a zone boundary in ``zone_cuts`` (the kernel frees per memblock range,
    and zone boundaries there fall on MAX_ORDER-aligned pfns).
    """
    chunks: list[tuple[int, int]] = []
    while start < end:
        if start:
            order = min(MAX_PAGE_ORDER, (start & -start).bit_length() - 1)
        else:
            order = MAX_PAGE_ORDER
        limit = end
        for cut in zone_cuts:
            if start < cut < limit:
                limit = cut
        while start + (1 << order) > limit:
            order -= 1
        chunks.append((start, order))
        start += 1 << order
    return chunks
