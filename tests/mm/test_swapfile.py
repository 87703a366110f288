"""Swap slots: allocation, counts, freeing with the device notified (mm/swapfile.py)."""

from __future__ import annotations

import pytest

from pagelab import Machine
from pagelab.drivers.zram import Zram
from pagelab.errors import BadConfiguration, ModelBug
from pagelab.mm import swapfile


def test_slots_are_handed_out_lowest_first_and_freed_with_a_notification() -> None:
    m = Machine.build(memory="64M")
    z = Zram(m, disksize="16K")  # 4 pages: the header and 3 slots
    si = swapfile.swapon(m, z)
    assert (si.pages, si.nr_swap_pages) == (3, 3)
    slots = [swapfile.folio_alloc_swap(m) for _ in range(4)]
    assert slots == [1, 2, 3, 0]  # 0: no slot left
    assert si.nr_swap_pages == 0
    assert z.write_token(2, 77) == 0
    swapfile.swap_duplicate(m, 2)
    swapfile.swap_free(m, 2)
    assert z.stats.pages_stored == 1  # one reference left
    swapfile.swap_free(m, 2)
    assert z.stats.pages_stored == 0 and z.stats.notify_free == 1
    assert swapfile.folio_alloc_swap(m) == 2
    with pytest.raises(ModelBug, match="cannot drop"):
        swapfile.swap_free(m, 2, count=2)
    with pytest.raises(ModelBug, match="outside"):
        swapfile.swap_free(m, 0)


def test_one_device_and_no_swapoff_while_in_use() -> None:
    m = Machine.build(memory="64M")
    swapfile.swapon(m, Zram(m, disksize="64K"))
    with pytest.raises(BadConfiguration, match="one swap device"):
        swapfile.swapon(m, Zram(m, disksize="64K", name="zram1"))
    slot = swapfile.folio_alloc_swap(m)
    with pytest.raises(BadConfiguration, match="swapped out"):
        swapfile.swapoff(m)
    swapfile.swap_free(m, slot)
    swapfile.swapoff(m)
    assert m.swap is None
    with pytest.raises(BadConfiguration, match="header page"):
        swapfile.swapon(m, Zram(m, disksize="4K", name="zram2"))
