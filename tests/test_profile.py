"""Kernel profiles: the named ones, and names that switch single fields for ablations."""

from __future__ import annotations

import pytest

from pagelab.errors import InvalidArgument
from pagelab.profile import PROFILES, KernelProfile, resolve_profile


def test_seed_era_profiles_differ_only_in_the_framework() -> None:
    pre, v48 = PROFILES["pre-4.8"], PROFILES["v4.8"]
    assert not pre.non_lru_movable and v48.non_lru_movable
    differing = {f for f in KernelProfile.__dataclass_fields__
                 if getattr(pre, f) != getattr(v48, f)}
    assert differing == {"name", "kernel_version", "non_lru_movable", "nr_isolated_v48"}


def test_a_name_can_switch_fields_on_and_off() -> None:
    p = resolve_profile("v4.8+watermark_boost+rmqueue_claim_steal")
    assert p.name == "v4.8+watermark_boost+rmqueue_claim_steal"
    assert p.watermark_boost and p.rmqueue_claim_steal and not p.alloc_nofragment
    assert p.non_lru_movable and not p.pcp_high_order  # the rest is v4.8's
    off = resolve_profile("mainline+alloc_nofragment=0+watermark_boost=1")
    assert not off.alloc_nofragment and off.watermark_boost
    assert resolve_profile("v4.8") is PROFILES["v4.8"]


@pytest.mark.parametrize("name", ["v4.9", "v4.8+no_such_field", "v4.8+nr_cpus",
                                  "v4.8+watermark_boost=yes", "v4.8+"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument):
        resolve_profile(name)
