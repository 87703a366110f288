"""Swap devices: slots, their counts, and the slot-free notification.

Models the parts of ``mm/swapfile.c`` (v6.16) that reclaim and the swap-in fault use, for one
swap device over a block device such as zram (``SWP_SYNCHRONOUS_IO``): ``swapon`` takes the
device, slot 0 holds the swap header, ``folio_alloc_swap`` hands out a slot, ``swap_free``
drops a reference to one, and a slot whose count reaches zero is freed and reported to the
device (``swap_slot_free_notify``: zram frees the compressed copy at once).

Named simplifications: one swap device (``type`` 0) and no priorities; slots are handed out
lowest-first from a free stack instead of the cluster allocator with per-CPU clusters (the
slot number only names where zram keeps a copy, so which free slot is chosen changes no
counter); no swap cache: with ``SWP_SYNCHRONOUS_IO`` reclaim frees the folio in the pass that
wrote it and ``do_swap_page`` reads into a fresh folio without the cache, so a slot is held by
page-table entries only; no swap count continuations (one mm per anon page, no fork).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from pagelab.errors import BadConfiguration, ModelBug

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["SWAP_MAP_MAX", "SwapBackend", "SwapInfo", "folio_alloc_swap", "swap_free",
           "swapoff", "swapon"]

#: Largest count a slot's ``swap_map`` byte holds without a continuation.
SWAP_MAP_MAX = 0x3E


class SwapBackend(Protocol):
    """What a swap device needs from its block device (zram, or a test double)."""

    name: str
    nr_pages: int

    def write_token(self, index: int, token: int) -> int: ...

    def read_page(self, index: int) -> bytes: ...

    def slot_free_notify(self, index: int) -> None: ...

    def expected_page(self, token: int) -> bytes: ...


class SwapInfo:
    """``struct swap_info_struct``: a swap device's slots and their use counts."""

    def __init__(self, bdev: SwapBackend) -> None:
        if bdev.nr_pages < 2:
            raise BadConfiguration(f"swap device {bdev.name} has {bdev.nr_pages} pages; a swap "
                                   "area needs a header page and at least one slot")
        self.bdev = bdev
        self.max = bdev.nr_pages
        self.swap_map = np.zeros(self.max, dtype=np.uint8)
        self.swap_map[0] = SWAP_MAP_MAX + 1  # SWAP_MAP_BAD: the header page
        self._free = list(range(self.max - 1, 0, -1))  # pop() gives the lowest slot
        self.inuse_pages = 0

    @property
    def pages(self) -> int:
        """Usable slots (``si->pages``: all but the header)."""
        return self.max - 1

    @property
    def nr_swap_pages(self) -> int:
        """Free slots (``get_nr_swap_pages``)."""
        return self.pages - self.inuse_pages

    def __repr__(self) -> str:
        return f"SwapInfo({self.bdev.name}, used={self.inuse_pages}/{self.pages})"


def swapon(m: Machine, bdev: SwapBackend) -> SwapInfo:
    """Enable swapping to ``bdev`` (``swapon(2)``, mkswap done): return the swap device."""
    if m.swap is not None:
        raise BadConfiguration(f"machine already swaps to {m.swap.bdev.name}; the model "
                               "supports one swap device")
    m.swap = SwapInfo(bdev)
    return m.swap


def swapoff(m: Machine) -> None:
    """Disable swap; every slot must already be free (no process has pages swapped out)."""
    si = m.swap
    if si is None:
        return
    if si.inuse_pages:
        raise BadConfiguration(f"{si.inuse_pages} pages are swapped out to {si.bdev.name}; "
                               "fault them back in (or exit the processes) before swapoff")
    m.swap = None


def folio_alloc_swap(m: Machine) -> int:
    """Take a free swap slot for a folio about to be written (``folio_alloc_swap``).

    Returns the slot offset (count 1, held by the caller until it becomes the page-table
    entries' reference), or 0 when there is no swap or no free slot.
    """
    si = m.swap
    if si is None or not si._free:
        return 0
    offset = si._free.pop()
    si.swap_map[offset] = 1
    si.inuse_pages += 1
    return offset


def swap_duplicate(m: Machine, offset: int, count: int = 1) -> None:
    """Add references to a slot (``swap_duplicate``: more PTEs hold its entry)."""
    si = _si(m, offset)
    value = int(si.swap_map[offset]) + count
    if value > SWAP_MAP_MAX:
        raise ModelBug(f"swap slot {offset} count {value} needs a continuation, not modelled")
    si.swap_map[offset] = value


def swap_free(m: Machine, offset: int, count: int = 1) -> None:
    """Drop references to a slot (``swap_free_nr``); free it and tell the device at zero."""
    si = _si(m, offset)
    value = int(si.swap_map[offset]) - count
    if value < 0:
        raise ModelBug(f"swap_free: slot {offset} of {si.bdev.name} has count "
                       f"{si.swap_map[offset]}, cannot drop {count}")
    si.swap_map[offset] = value
    if value == 0:
        si.inuse_pages -= 1
        si._free.append(offset)
        si.bdev.slot_free_notify(offset)


def _si(m: Machine, offset: int) -> SwapInfo:
    si = m.swap
    if si is None:
        raise ModelBug(f"swap entry {offset} used while no swap device is on")
    if not 0 < offset < si.max or si.swap_map[offset] > SWAP_MAP_MAX:
        raise ModelBug(f"swap entry {offset} is outside {si.bdev.name}'s slots (1..{si.max - 1})")
    return si
