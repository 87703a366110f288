"""Swap I/O: writing a folio to its swap slot and reading it back (``mm/page_io.c``, v6.16).

The device is synchronous (``SWP_SYNCHRONOUS_IO``, as zram): a write or read completes before
the call returns. The model's page contents are content tokens; the device stores the real
bytes the token stands for (zram compresses them), and a read is checked against the bytes
the owner expects, so a swap round trip that lost or mixed up data is a model bug, not a
silently wrong token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pagelab.errors import ModelBug
from pagelab.mm import vmstat as vs

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["swap_read_folio", "swap_writepage"]


def swap_writepage(m: Machine, pfn: int, offset: int) -> int:
    """Write an order-0 folio to swap slot ``offset`` (``swap_writepage``); 0 or -errno.

    ``PSWPOUT`` counts at submission (``count_swpout_vm_event``), before the device answers,
    as the kernel does; a device that refuses the write (zram over its ``mem_limit``:
    -ENOMEM) returns the error for the caller to keep the folio.
    """
    si = m.swap
    if si is None:
        raise ModelBug("swap_writepage with no swap device")
    m.vm_events[vs.PSWPOUT] += 1
    m.charge(m.cost.swap_out_page)
    return si.bdev.write_token(offset, int(m.mem.token_mv[pfn]))


def swap_read_folio(m: Machine, pfn: int, offset: int, token: int) -> None:
    """Read slot ``offset`` into the new folio ``pfn`` (``swap_read_folio``, synchronous).

    ``token`` is the content the owner wrote before the page went out; the bytes read must be
    exactly the bytes of that content, and the folio then carries it. Counts ``PSWPIN``.
    """
    si = m.swap
    if si is None:
        raise ModelBug("swap_read_folio with no swap device")
    data = si.bdev.read_page(offset)
    if data != si.bdev.expected_page(token):
        raise ModelBug(f"swap-in of slot {offset} from {si.bdev.name} into pfn {pfn:#x} read "
                       f"bytes that are not the content {token:#x} written: data lost")
    m.mem.token_mv[pfn] = token
    m.vm_events[vs.PSWPIN] += 1
    m.charge(m.cost.swap_in_page)
