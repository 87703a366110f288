"""Tests for pagelab.mm.memmap: struct page columns, intrusive lists, dump_page, PageView."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pagelab import Machine
from pagelab.errors import BadConfiguration
from pagelab.mm import page_flags as pf
from pagelab.mm.debug import free_blocks
from pagelab.mm.memmap import BYTES_PER_PAGE, LIST_POISON1, LIST_POISON2, MAX_PFNS, MemMap

# --- intrusive lists against a plain Python model -----------------------------------------------

N_ENTRIES = 10
N_HEADS = 3


class ListMachine(RuleBasedStateMachine):
    """list_add / list_add_tail / list_del / list_move_tail against Python lists."""

    def __init__(self) -> None:
        super().__init__()
        self.mem = MemMap(N_ENTRIES, N_HEADS)
        self.heads = [self.mem.list_head(i) for i in range(N_HEADS)]
        self.model: dict[int, list[int]] = {h: [] for h in self.heads}
        self.where: dict[int, int] = {}  # entry -> head it is on
        self.deleted: set[int] = set()

    def _free(self) -> list[int]:
        return [e for e in range(N_ENTRIES) if e not in self.where]

    @precondition(lambda self: len(self.where) < N_ENTRIES)
    @rule(data=st.data(), slot=st.integers(0, N_HEADS - 1), tail=st.booleans())
    def add(self, data: st.DataObject, slot: int, tail: bool) -> None:
        entry = data.draw(st.sampled_from(self._free()))
        head = self.heads[slot]
        if tail:
            self.mem.list_add_tail(entry, head)
            self.model[head].append(entry)
        else:
            self.mem.list_add(entry, head)
            self.model[head].insert(0, entry)
        self.where[entry] = head
        self.deleted.discard(entry)

    @precondition(lambda self: bool(self.where))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from(sorted(self.where)))
        self.mem.list_del(entry)
        self.model[self.where.pop(entry)].remove(entry)
        self.deleted.add(entry)

    @precondition(lambda self: bool(self.where))
    @rule(data=st.data(), slot=st.integers(0, N_HEADS - 1))
    def move_tail(self, data: st.DataObject, slot: int) -> None:
        entry = data.draw(st.sampled_from(sorted(self.where)))
        head = self.heads[slot]
        self.mem.list_move_tail(entry, head)
        self.model[self.where[entry]].remove(entry)
        self.model[head].append(entry)
        self.where[entry] = head

    @invariant()
    def lists_match_the_model(self) -> None:
        mem = self.mem
        for head, expected in self.model.items():
            assert list(mem.list_entries(head)) == expected
            assert mem.list_len(head) == len(expected)
            assert mem.list_empty(head) == (not expected)
            if expected:
                assert mem.list_first(head) == expected[0]
                assert mem.list_last(head) == expected[-1]
            # The prev links walk the same list backwards.
            back = []
            cur = mem.lru_prev[head] >> 1
            while cur != head:
                back.append(int(cur))
                cur = mem.lru_prev[cur] >> 1
            assert back == expected[::-1]

    @invariant()
    def links_never_look_like_a_tail(self) -> None:
        # A list link has bit 0 clear, so a listed (or deleted) page is never PageTail.
        assert not np.any(self.mem.lru_next[:N_ENTRIES] & 1)
        for entry in range(N_ENTRIES):
            assert not pf.PageTail(self.mem, entry)

    @invariant()
    def deleted_entries_are_poisoned(self) -> None:
        for entry in self.deleted:
            assert self.mem.lru_next[entry] == LIST_POISON1
            assert self.mem.lru_prev[entry] == LIST_POISON2


TestIntrusiveLists = ListMachine.TestCase
TestIntrusiveLists.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)


def test_init_list_head_points_at_itself() -> None:
    mem = MemMap(4, 2)
    for idx in range(6):
        assert mem.lru_next[idx] == idx << 1
        assert mem.lru_prev[idx] == idx << 1
    assert mem.list_head(0) == 4
    assert mem.list_empty(mem.list_head(1))
    assert list(mem.list_entries(mem.list_head(1))) == []


def test_list_add_is_lifo_and_add_tail_is_fifo() -> None:
    mem = MemMap(8, 1)
    head = mem.list_head(0)
    for e in (1, 2, 3):
        mem.list_add(e, head)
    mem.list_add_tail(7, head)
    assert list(mem.list_entries(head)) == [3, 2, 1, 7]
    mem.list_move_tail(3, head)
    assert list(mem.list_entries(head)) == [2, 1, 7, 3]


def test_poison_values_keep_bit0_clear() -> None:
    for poison in (LIST_POISON1, LIST_POISON2):
        assert poison & 1 == 0
        assert poison < 0  # never a valid doubled index
    mem = MemMap(4, 1)
    head = mem.list_head(0)
    mem.list_add(2, head)
    mem.list_del(2)
    assert not pf.PageTail(mem, 2)
    assert pf.compound_head(mem, 2) == 2
    assert mem.list_empty(head)


# --- construction and size ----------------------------------------------------------------------


def test_fresh_columns() -> None:
    mem = MemMap(16, 2)
    assert mem.flags.dtype == np.uint64 and not mem.flags.any()
    assert (mem.mapcount == pf.MAPCOUNT_NONE).all()
    assert (mem.alloc_mt == -1).all()
    assert not mem.refcount.any() and not mem.mapping.any() and not mem.token.any()
    assert len(mem.lru_next) == 18


@pytest.mark.parametrize("nr_pfns", [0, -5])
def test_empty_memmap_is_refused(nr_pfns: int) -> None:
    with pytest.raises(BadConfiguration, match="at least one page"):
        MemMap(nr_pfns, 0)


def test_too_large_memmap_is_refused_before_allocating() -> None:
    with pytest.raises(BadConfiguration, match="4 TiB"):
        MemMap(MAX_PFNS, 0)


def test_bytes_per_page() -> None:
    assert BYTES_PER_PAGE == 41
    nr_pfns, heads = 1 << 16, 330
    mem = MemMap(nr_pfns, heads)
    # The two link columns also hold the list heads.
    assert mem.nbytes == nr_pfns * BYTES_PER_PAGE + heads * 8
    assert mem.nbytes / nr_pfns == pytest.approx(BYTES_PER_PAGE, abs=0.05)
    assert mem.nbytes / nr_pfns <= 48  # the design budget


# --- display -------------------------------------------------------------------------------------


def test_dump_page_text() -> None:
    mem = MemMap(16, 1)
    mem.refcount[3] = 2
    mem.mapcount[3] = 0
    mem.mapping[3] = pf.mapping_encode(5, pf.PAGE_MAPPING_ANON)
    mem.index[3] = 0x10
    mem.flags[3] = (1 << pf.PG_lru) | (1 << pf.PG_swapbacked) | (1 << pf.NODES_PGSHIFT)
    assert mem.dump_page(3) == (
        "page pfn:0x3 refcount:2 mapcount:0 mapping:0x15 index:0x10 private:0x0 "
        "flags: 0x20020(PG_lru|PG_swapbacked)"
    )
    mem.mapcount[4] = pf.PAGE_TYPE_BUDDY
    mem.private[4] = 2
    assert mem.dump_page(4) == (
        "page pfn:0x4 refcount:0 mapcount:-268435456 mapping:0x0 index:0x0 private:0x2 "
        "type:buddy flags: 0x0()"
    )


@pytest.fixture(scope="module")
def machine() -> Machine:
    return Machine.build(memory="64M")


def test_dump_page_of_a_compound_page(machine: Machine) -> None:
    m = machine
    pfn = m.alloc_pages(2, "GFP_KERNEL|__GFP_COMP")
    assert pfn is not None
    try:
        assert "head order:2" in m.mem.dump_page(pfn)
        tail = m.mem.dump_page(pfn + 1)
        assert f"head:{pfn:#x}" in tail
        # The folio's flags, not the order byte of page[1] decoded as PG_locked|PG_writeback.
        assert tail.endswith("flags: 0x40(PG_head)")
    finally:
        m.free_pages(pfn, 2)


def test_page_view_repr_shows_decoded_flags(machine: Machine) -> None:
    m = machine
    pfn = m.alloc_pages(0, "GFP_KERNEL")
    assert pfn is not None
    try:
        m.mem.flags[pfn] |= np.uint64((1 << pf.PG_lru) | (1 << pf.PG_active))
        view = m.page(pfn)
        assert view.decoded_flags == "PG_lru|PG_active"
        assert view.flags == (1 << pf.PG_lru) | (1 << pf.PG_active)
        assert view.zone == m.page_zone(pfn).name
        assert view.node == 0
        assert repr(view) == (
            f"Page(pfn={pfn:#x}, zone={view.zone}, flags=PG_lru|PG_active, refcount=1, "
            f"mapcount=-1, token={view.token:#x})"
        )
        m.mem.flags[pfn] ^= np.uint64((1 << pf.PG_lru) | (1 << pf.PG_active))
        assert "flags=0," in repr(m.page(pfn))
    finally:
        m.free_pages(pfn, 0)
    m.drain_all_pages()
    # A free buddy head shows its type and its order (in private), not a mapcount.
    _, order, _, top = max(free_blocks(m), key=lambda b: b[1])
    assert order > 0
    view = m.page(top)
    assert view.page_type == "buddy"
    assert view.private == order
    assert "type=buddy" in repr(view) and f"private={order}" in repr(view)
    assert "mapcount" not in repr(view)
