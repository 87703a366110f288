"""Stateful property test: processes, a balloon, the allocator and compaction, interleaved.

A Hypothesis ``RuleBasedStateMachine`` drives a small machine (128–256 MiB) through random
programs of faults, unmaps, mlock, pins, a second process, balloon inflate/deflate,
allocations of every order with assorted gfp masks (order 9 without ``__GFP_MOVABLE`` and
with ``__GFP_RETRY_MAYFAIL``, after taking every free order-9 block, runs direct compaction),
frees, ``compact_memory``, kcompactd, CPU switches and pcp drains. After every rule: the
model's invariants hold (``check_state``), every owner's content tokens are intact, nothing is
left isolated and no ``WARN_ON`` fired. One TestCase per kernel profile.

Hypothesis settings scale with the profile loaded by ``tests/conftest.py``: a quarter of its
examples and three quarters of its steps (25 × 30 under ``dev``). ``pytest
--hypothesis-show-statistics`` shows how often direct compaction stalled.

The state machine found that the v4.8 fallback (``rmqueue_claim_steal=False``) corrupted the
per-migratetype free counts once a block it split was freed again;
:func:`test_v48_fallback_then_free_keeps_free_counts` is that program, reduced.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from pagelab import KernelProfile, Machine
from pagelab.drivers.virtio_balloon import Balloon
from pagelab.mm import compaction as C
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.memory import MmStruct
from pagelab.mm.mmzone import MAX_PAGE_ORDER, NR_PAGE_ORDERS, ZoneType, pageblock_order

#: gfp masks for plain allocations (any order).
GFP_MASKS = [
    "GFP_KERNEL",
    "GFP_KERNEL|__GFP_COMP",
    "GFP_HIGHUSER_MOVABLE",
    "GFP_ATOMIC",
    "GFP_NOWAIT|__GFP_NOWARN",
]
#: A costly, unmovable allocation that may reclaim and compact (direct compaction, async then
#: sync-light).
DIRECT_COMPACT_GFP = "GFP_HIGHUSER|__GFP_COMP|__GFP_RETRY_MAYFAIL|__GFP_NOWARN"
#: Take a free block without reclaiming or compacting (fills the machine with huge blocks).
NOWAIT_COMP = "GFP_NOWAIT|__GFP_COMP|__GFP_NOWARN"

STEPS = max(10, settings.default.stateful_step_count * 3 // 4)
EXAMPLES = max(5, settings.default.max_examples // 4)


def pick(candidates: np.ndarray, start: int, step: int, count: int) -> list[int]:
    """A shrinkable selection: every ``step``-th candidate from ``start`` (mod len), ``count``."""
    if not len(candidates):
        return []
    return [int(p) for p in candidates[start % len(candidates)::step][:count]]


selection = st.tuples(st.integers(0, 1 << 16), st.integers(1, 8), st.integers(1, 400))


class MemoryMachine(RuleBasedStateMachine):
    """Random programs over one machine; subclasses fix the kernel profile."""

    PROFILE: str | KernelProfile = "mainline"

    def __init__(self) -> None:
        super().__init__()
        self.m: Machine | None = None
        self.procs: list[MmStruct] = []
        self.balloon: Balloon | None = None
        #: blocks held through alloc_pages: pfn -> (order, token written there)
        self.held: dict[int, tuple[int, int]] = {}

    # ------------------------------------------------------------------------------ setup

    @initialize(memory=st.sampled_from(["128M", "192M", "256M"]),
                pages=st.integers(1000, 6000), ballooned=st.integers(0, 1500))
    def boot(self, memory: str, pages: int, ballooned: int) -> None:
        """Boot, then fault pages in with balloon pages among them; unmap every other one."""
        m = self.m = Machine.build(memory=memory, profile=self.PROFILE, seed=1)
        self.balloon = Balloon(m)
        p = m.spawn("app")
        self.procs.append(p)
        for _ in range(4):
            p.touch(pages // 4)
            self.balloon.inflate(ballooned // 4)
        pfns = p.mapped_pfns()
        if len(pfns) > 1:
            p.unmap(pfns[1::2])  # the compaction selftest's fragmentation

    @property
    def machine(self) -> Machine:
        assert self.m is not None
        return self.m

    def proc(self, which: int) -> MmStruct:
        return self.procs[which % len(self.procs)]

    # ------------------------------------------------------------------------------ processes

    @rule(which=st.integers(0, 1), n=st.integers(0, 1500))
    def touch(self, which: int, n: int) -> None:
        self.proc(which).touch(n)

    @rule(which=st.integers(0, 1), sel=selection)
    def unmap(self, which: int, sel: tuple[int, int, int]) -> None:
        p = self.proc(which)
        p.unmap(pick(np.sort(p.mapped_pfns()), *sel))

    @rule(which=st.integers(0, 1), sel=selection)
    def mlock(self, which: int, sel: tuple[int, int, int]) -> None:
        p = self.proc(which)
        p.mlock(pick(np.sort(p.mapped_pfns()), *sel))

    @rule(which=st.integers(0, 1), sel=selection)
    def pin(self, which: int, sel: tuple[int, int, int]) -> None:
        p = self.proc(which)
        p.pin(pick(np.sort(p.mapped_pfns()), *sel))

    @rule(which=st.integers(0, 1), sel=selection)
    def unpin(self, which: int, sel: tuple[int, int, int]) -> None:
        p = self.proc(which)
        vpns = np.array(sorted(p.pinned), dtype=np.int64)
        p.unpin([int(p.pte[v]) for v in pick(vpns, *sel)])

    @precondition(lambda self: len(self.procs) < 2)
    @rule(n=st.integers(0, 2000))
    def spawn_second(self, n: int) -> None:
        p = self.machine.spawn("second")
        self.procs.append(p)
        p.touch(n)

    @precondition(lambda self: len(self.procs) > 1)
    @rule()
    def exit_second(self) -> None:
        self.procs.pop().exit()

    # ------------------------------------------------------------------------------ balloon

    @rule(n=st.integers(0, 1500))
    def inflate(self, n: int) -> None:
        assert self.balloon is not None
        assert self.balloon.inflate(n) <= n

    @rule(n=st.integers(0, 1500))
    def deflate(self, n: int) -> None:
        assert self.balloon is not None
        before = self.balloon.num_pages
        assert self.balloon.deflate(n) == min(n, before)  # nothing is isolated between rules

    # ------------------------------------------------------------------------------ allocator

    def _hold(self, pfn: int | None, order: int) -> None:
        if pfn is None:
            return
        assert pfn not in self.held and pfn % (1 << order) == 0
        self.held[pfn] = (order, int(self.machine.mem.token_mv[pfn]))

    @rule(order=st.integers(0, MAX_PAGE_ORDER), gfp=st.sampled_from(GFP_MASKS))
    def alloc(self, order: int, gfp: str) -> None:
        self._hold(self.machine.alloc_pages(order=order, gfp=gfp), order)

    def grab_free_huge_blocks(self) -> None:
        """Take every free order-9 block without compacting, so that the next one must compact."""
        m = self.machine
        m.drain_all_pages()
        while (pfn := m.alloc_pages(order=pageblock_order, gfp=NOWAIT_COMP)) is not None:
            self._hold(pfn, pageblock_order)

    @rule(grab_first=st.booleans(), fragment_first=st.booleans())
    def alloc_huge_direct_compaction(self, grab_first: bool, fragment_first: bool) -> None:
        """Order 9 without __GFP_MOVABLE; optionally unmap every other page of the first
        process (free pages for compaction to work with) and take every free order-9 block
        first (so that the request must compact)."""
        m = self.machine
        if fragment_first:
            p = self.procs[0]
            p.unmap(p.mapped_pfns()[::2])
        if grab_first:
            self.grab_free_huge_blocks()
        v0 = m.vmstat
        pfn = m.alloc_pages(order=pageblock_order, gfp=DIRECT_COMPACT_GFP)
        self._hold(pfn, pageblock_order)
        v1 = m.vmstat
        stalls = v1["compact_stall"] - v0["compact_stall"]
        # Every stall ends in a success or a failure; a success hands out a block.
        assert v1["compact_success"] + v1["compact_fail"] == v1["compact_stall"]
        assert stalls <= 2  # async, then sync-light after reclaim
        if pfn is None:
            assert v1["compact_success"] == v0["compact_success"]
        event(f"order-9 direct: {stalls} stall(s), {'got' if pfn is not None else 'failed'}")

    @precondition(lambda self: bool(self.held))
    @rule(sel=selection)
    def free(self, sel: tuple[int, int, int]) -> None:
        for pfn in pick(np.array(sorted(self.held), dtype=np.int64), *sel):
            order, _ = self.held.pop(pfn)
            self.machine.free_pages(pfn, order)

    @rule(cpu=st.integers(0, 1))
    def switch_cpu(self, cpu: int) -> None:
        m = self.machine
        m.cpu = cpu % m.nr_cpus

    @rule()
    def drain_all_pages(self) -> None:
        self.machine.drain_all_pages()

    # ------------------------------------------------------------------------------ compaction

    @rule()
    def compact_memory(self) -> None:
        m = self.machine
        v0 = m.vmstat["compact_stall"]
        m.compact_memory()
        assert m.vmstat["compact_stall"] == v0  # not direct compaction

    @rule(order=st.sampled_from([0, 3, 4, 9, 10]),
          highest=st.sampled_from([ZoneType.ZONE_DMA32, ZoneType.ZONE_NORMAL]),
          proactiveness=st.sampled_from([0, 20, 100]))
    def kcompactd(self, order: int, highest: int, proactiveness: int) -> None:
        m = self.machine
        m.compaction_proactiveness = proactiveness
        C.wakeup_kcompactd(m, m.nodes[0], order, highest)
        timeout = C.kcompactd_run(m, 0)
        assert timeout is None if not proactiveness else timeout > 0
        assert not m.nodes[0].kcompactd_woken

    # ------------------------------------------------------------------------------ invariants

    @invariant()
    def state_is_consistent(self) -> None:
        """``check_state``; the owners' own checks follow as invariants of their own."""
        m = self.m
        if m is None:
            return
        m.check_state(owners=False)
        mine = {p.check for p in self.procs} | {self.balloon.check if self.balloon else None}
        # (the processes' and the balloon's checks run as the invariants below)
        for checker in m.state_checkers:
            if checker not in mine:
                assert checker() == []

    @invariant()
    def contents_are_intact(self) -> None:
        if self.m is None:
            return
        mem = self.m.mem
        for p in self.procs:
            assert p.verify() == []
            # MmStruct.check's per-page walk, vectorised: a mapped page is never free
            ptes = p.pte[: p.next_vpn]
            mapped = ptes[ptes >= 0]
            assert (mem.refcount[mapped] > 0).all()
            assert (mem.mapcount[mapped] >= 0).all()
            assert not (((mem.mapcount[mapped] >> 24) & 0xFF) == pf.PGTY_buddy).any()
        for pfn, (order, token) in self.held.items():
            assert (mem.token[pfn: pfn + (1 << order)] == token).all(), hex(pfn)

    @invariant()
    def balloon_agrees_with_host(self) -> None:
        if self.balloon is not None:
            assert self.balloon.check() == []

    @invariant()
    def nothing_is_left_isolated(self) -> None:
        m = self.m
        if m is None:
            return
        isolated = sum(n.vm_stat[vs.NR_ISOLATED_ANON] + n.vm_stat[vs.NR_ISOLATED_FILE]
                       for n in m.nodes)
        assert isolated == 0
        assert m.held_chunks == {}
        assert self.balloon is None or self.balloon.vb_dev_info.isolated_pages == 0

    @invariant()
    def no_warning_fired(self) -> None:
        if self.m is not None:
            assert self.m.warnings == {}


def _case(profile: str | KernelProfile) -> Any:
    label = profile if isinstance(profile, str) else profile.name
    name = "MemoryMachine_" + re.sub(r"\W", "_", label)
    machine = type(name, (MemoryMachine,), {"PROFILE": profile})
    case = machine.TestCase
    case.settings = settings(settings.default, max_examples=EXAMPLES,
                             stateful_step_count=STEPS, deadline=None)
    return case


TestMainline = _case("mainline")
TestV48 = _case("v4.8")
TestPre48 = _case("pre-4.8")


# ================================================================================================
# what the state machine found, reduced
# ================================================================================================

@pytest.mark.parametrize("profile", ["mainline", "v4.8", "pre-4.8"])
def test_v48_fallback_then_free_keeps_free_counts(profile: str) -> None:
    """v4.8 steals a fallback block's free pages for the requester's lists without retyping
    a pageblock that was less than half free, and expand() puts the split remainders there
    too; freeing the page merges those buddies back. The per-list free counts must follow the
    lists the blocks are really on (the state machine's first find, reduced)."""
    m = Machine.build(memory="128M", profile=profile)
    dma = m.nodes[0].node_zones[ZoneType.ZONE_DMA]
    # Leave one free order-7 chunk in the DMA zone (0x380, in the MOVABLE block at 0x200).
    for order in (10, 10, 10, 8, 8, 7):
        assert m.alloc_pages(order=order, gfp="GFP_ATOMIC|__GFP_DMA|__GFP_MOVABLE") is not None
    assert [o for o in range(NR_PAGE_ORDERS) if dma.nr_free[o]] == [7]
    # An unmovable order-5 request must fall back to it; then it is freed again.
    pfn = m.alloc_pages(order=5, gfp="GFP_ATOMIC|__GFP_DMA")
    assert pfn == 0x380
    m.free_pages(pfn, order=5)
    counts = [list(dma.free_count[o]) for o in range(NR_PAGE_ORDERS)]
    assert all(c >= 0 for row in counts for c in row), counts
    m.check_state()
