"""The phone workload: deterministic from its seed, nothing lost, bad configurations refused."""

from __future__ import annotations

import numpy as np
import pytest

from pagelab import Machine
from pagelab.errors import BadConfiguration, InvalidArgument
from pagelab.workloads.phone import KINDS, Phone, PhoneConfig, mixed_pageblocks, pageblock_map

SMALL = PhoneConfig(memory="640M", duration=2.0, cached_apps=2, seed=5)


def run_small(profile: str, config: PhoneConfig = SMALL) -> tuple[Machine, Phone]:
    m = Machine.build(memory=config.memory, profile=profile, seed=config.seed,
                      page_owner=True, thp=False)
    phone = Phone(m, config)
    phone.run()
    m.check_state()
    return m, phone


@pytest.mark.parametrize("profile", ["pre-4.8", "v4.8"])
def test_a_run_is_reproducible_bit_for_bit(profile: str) -> None:
    m1, p1 = run_small(profile)
    m2, p2 = run_small(profile)
    c1, c2 = p1.requests.columns(), p2.requests.columns()
    for key in c1:
        assert np.array_equal(c1[key], c2[key]), key
    assert m1.vm_events == m2.vm_events
    assert m1.procfs("pagetypeinfo") == m2.procfs("pagetypeinfo")
    assert p1.samples == p2.samples


def test_the_run_makes_every_kind_of_request_and_gives_everything_back() -> None:
    config = PhoneConfig(memory="640M", duration=6.0, cached_apps=3, seed=3, camera_chunks=4)
    m, phone = run_small("v4.8", config)
    kinds = set(phone.requests.columns()["kind"])
    assert {"fork", "slab", "skb"} <= kinds
    assert m.vmstat["pswpout"] > 0  # memory pressure swapped to zram
    assert phone.samples and phone.samples[-1]["time_s"] <= config.duration + 1
    mt, used = pageblock_map(m)
    assert len(mt) == len(used) == m.max_pfn >> 9
    assert ((used >= 0) & (used <= 1)).all()
    assert mixed_pageblocks(m) >= 0
    phone.release_all()
    m.check_state()
    assert m.swap is not None and m.swap.inuse_pages == 0
    assert not m.allocations()


def test_pre_48_drivers_allocate_unmovable_pages() -> None:
    _m, phone = run_small("pre-4.8")
    assert phone.gpu is not None and not phone.gpu.movable
    assert phone.zram is not None
    _m2, phone2 = run_small("v4.8")
    assert phone2.gpu is not None and phone2.gpu.movable


@pytest.mark.parametrize(("field", "value", "error"), [
    ("memory", "256M", BadConfiguration), ("memory", "64G", BadConfiguration),
    ("duration", -1.0, InvalidArgument), ("cached_apps", 0, InvalidArgument),
    ("zram_fraction", 5.0, InvalidArgument), ("swappiness", 300, InvalidArgument),
    ("slab_rate", -1.0, InvalidArgument), ("memory", "-1G", InvalidArgument),
])
def test_impossible_configurations_are_refused(field: str, value: object,
                                               error: type[Exception]) -> None:
    from dataclasses import replace

    with pytest.raises(error):
        replace(SMALL, **{field: value}).validate()


def test_kinds_have_the_orders_of_the_seed() -> None:
    assert KINDS == {"fork": 2, "slab": 3, "skb": 3, "dmabuf": 4}
