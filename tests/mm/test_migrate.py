"""Tests for pagelab.mm.migrate: the non-LRU movable page contract (kernel-reference §2, §3).

Each rule of the contract has a test, run with a small recording driver (``Toy``) and, where
the rule is about a real user, with the virtio balloon.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pagelab import Machine
from pagelab.drivers.virtio_balloon import Balloon
from pagelab.errors import InvalidArgument, ModelBug
from pagelab.mm import gfp as G
from pagelab.mm import migrate as mg
from pagelab.mm import page_alloc as pa
from pagelab.mm import page_flags as pf
from pagelab.mm import swap, vmscan
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import get_page, lock_page, trylock_page, unlock_page
from pagelab.mm.migrate import MigrateMode, MigrateReason
from pagelab.mm.rmap import AddressSpace

EAGAIN, EBUSY, ENOMEM = mg.EAGAIN, mg.EBUSY, mg.ENOMEM
ASYNC, SYNC_LIGHT, SYNC = (MigrateMode.MIGRATE_ASYNC, MigrateMode.MIGRATE_SYNC_LIGHT,
                           MigrateMode.MIGRATE_SYNC)
MOVABLE = pf.PAGE_MAPPING_MOVABLE


class Toy:
    """A minimal non-LRU movable driver that records its callbacks and checks what the VM
    promises it (page locked, VM reference held, PG_isolated as documented).

    ``results`` are returned by successive ``migratepage`` calls (0 = do the move); when it
    runs out, the last one repeats.
    """

    def __init__(self, m: Machine, results: list[int] | None = None) -> None:
        self.m = m
        self.mapping = AddressSpace(m, "toy", a_ops=self)
        self.pages: set[int] = set()
        self.isolated: set[int] = set()
        self.tokens: dict[int, int] = {}
        self.calls: list[tuple[str, int]] = []
        self.modes: list[MigrateMode] = []
        self.results = list(results or [0])
        self.refuse = False
        self.set_isolated = False
        self.clear_isolated = False

    def alloc(self) -> int:
        m = self.m
        pfn = m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE, 0, 0)
        assert pfn >= 0 and trylock_page(m, pfn)
        mg.SetPageMovable(m, pfn, self.mapping)
        unlock_page(m, pfn)
        self.tokens[pfn] = m.mem.token_mv[pfn] = m.new_token()
        self.pages.add(pfn)
        return pfn

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        mem = m.mem
        assert pf.PageLocked(mem, page) and mg.PageMovable(m, page)
        assert not pf.PageIsolated(mem, page)
        assert mem.refcount_mv[page] >= 2, "the VM holds a reference besides the driver's"
        self.calls.append(("isolate_page", page))
        if self.refuse:
            return False
        if self.set_isolated:
            mem.flags_mv[page] = mem.flags_mv[page] | 1 << pf.PG_isolated
        self.pages.discard(page)
        self.isolated.add(page)
        return True

    def migratepage(self, m: Machine, mapping: AddressSpace, newpage: int, page: int,
                    mode: MigrateMode) -> int:
        mem = m.mem
        assert mapping is self.mapping
        assert pf.PageLocked(mem, page) and pf.PageLocked(mem, newpage)
        assert pf.PageIsolated(mem, page)
        self.calls.append(("migratepage", page))
        self.modes.append(mode)
        rc = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if rc:
            return rc
        mem.token_mv[newpage] = mem.token_mv[page]
        self.tokens[newpage] = self.tokens.pop(page)
        mg.SetPageMovable(m, newpage, mapping)
        get_page(m, newpage)
        self.isolated.discard(page)
        self.pages.add(newpage)
        mg.ClearPageMovable(m, page)
        if self.clear_isolated:
            mem.flags_mv[page] = mem.flags_mv[page] & ~(1 << pf.PG_isolated)
        swap.put_page(m, page)
        return mg.MIGRATEPAGE_SUCCESS

    def putback_page(self, m: Machine, page: int) -> None:
        mem = m.mem
        assert pf.PageLocked(mem, page) and mg.PageMovable(m, page)
        assert pf.PageIsolated(mem, page)
        self.calls.append(("putback_page", page))
        self.isolated.discard(page)
        self.pages.add(page)

    def release(self, page: int) -> None:
        """Free a page the driver owns, even while the VM holds it isolated (§2.2)."""
        m = self.m
        lock_page(m, page)
        mg.ClearPageMovable(m, page)
        unlock_page(m, page)
        self.pages.discard(page)
        self.isolated.discard(page)
        self.tokens.pop(page)
        swap.put_page(m, page)

    def count(self, name: str) -> int:
        return sum(1 for call, _ in self.calls if call == name)

    def verify(self) -> None:
        """Every page the driver owns is movable, referenced and holds its data."""
        mem = self.m.mem
        for pfn in self.pages:
            assert mem.mapping_mv[pfn] == self.mapping.mapping_word | MOVABLE
            assert mem.refcount_mv[pfn] >= 1 and not pf.PageIsolated(mem, pfn)
            assert mem.token_mv[pfn] == self.tokens[pfn]


def target(m: Machine) -> Callable[[int], int]:
    """get_new_page: a fresh movable page (ignores the source page)."""
    return lambda page: m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE, 0, 0)


def isolate(m: Machine, pfns: list[int]) -> int:
    """Isolate pages onto a new migration list as compaction's scanner does; return its head.

    v4.8 counts every isolated page in NR_ISOLATED_* (acct_isolated); v4.9+ only LRU pages.
    """
    head = m.alloc_list_head()
    for pfn in pfns:
        if pf.__PageMovable(m.mem, pfn):
            assert mg.isolate_movable_page(m, pfn, 0)
            if m.profile.nr_isolated_v48:
                mg.mod_isolated(m, pfn, 1)
        else:
            assert vmscan.folio_isolate_lru(m, pfn)
            mg.mod_isolated(m, pfn, 1)
        m.mem.list_add_tail(pfn, head)
    return head


def nr_isolated(m: Machine) -> int:
    return sum(n.vm_stat[vs.NR_ISOLATED_ANON] + n.vm_stat[vs.NR_ISOLATED_FILE]
               for n in m.nodes)


def migrate(m: Machine, head: int, mode: MigrateMode = ASYNC) -> tuple[int, mg.MigrateStats]:
    return mg.migrate_pages(m, head, target(m), None, mode, MigrateReason.MR_COMPACTION)


def finish(m: Machine, head: int, rc: int) -> None:
    """What a migrate_pages caller does afterwards: put back what is left."""
    if rc:
        mg.putback_movable_pages(m, head)
    m.release_list_head(head)


def is_free(m: Machine, pfn: int) -> bool:
    mem = m.mem
    return (mem.refcount_mv[pfn] == 0 and mem.mapping_mv[pfn] == 0
            and not pf.PageIsolated(mem, pfn) and mem.mapcount_mv[pfn] in (
                pf.MAPCOUNT_NONE, pf.PAGE_TYPE_BUDDY))


@pytest.fixture
def m() -> Machine:
    return Machine.build(memory="128M")


@pytest.fixture
def toy(m: Machine) -> Toy:
    return Toy(m)


# --- isolation (§3.1) -----------------------------------------------------------------------


def test_isolation_sets_pg_isolated_and_keeps_the_vm_reference(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    assert mg.isolate_movable_page(m, pfn, mg.ISOLATE_ASYNC_MIGRATE)
    mem = m.mem
    assert pf.PageIsolated(mem, pfn) and not pf.PageLocked(mem, pfn)
    assert mem.refcount_mv[pfn] == 2
    assert toy.calls == [("isolate_page", pfn)]
    # PG_isolated is PG_reclaim: kpageflags would show RECLAIM.
    assert mem.flags_mv[pfn] >> pf.PG_reclaim & 1


def test_a_second_isolation_is_refused(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    assert mg.isolate_movable_page(m, pfn, 0)
    assert not mg.isolate_movable_page(m, pfn, 0)
    assert m.mem.refcount_mv[pfn] == 2
    assert toy.count("isolate_page") == 1


def test_a_page_that_is_not_movable_is_refused_before_its_lock_is_touched(m: Machine) -> None:
    pfn = m.alloc_page_raw(G.GFP_KERNEL, 0, 0)
    seen: list[str] = []
    m.preempt = lambda what, p: seen.append(what)
    assert not mg.isolate_movable_page(m, pfn, 0)
    m.preempt = None
    assert "get_page_unless_zero" in seen and "trylock_page" not in seen
    assert m.mem.refcount_mv[pfn] == 1


def test_a_locked_page_is_refused_without_sleeping(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    assert trylock_page(m, pfn)
    assert not mg.isolate_movable_page(m, pfn, 0)
    assert m.mem.refcount_mv[pfn] == 1 and not toy.calls
    unlock_page(m, pfn)


def test_a_free_page_is_refused(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    toy.release(pfn)
    assert not mg.isolate_movable_page(m, pfn, 0)
    assert m.mem.refcount_mv[pfn] == 0


def test_a_driver_refusal_drops_the_reference_and_the_lock(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    toy.refuse = True
    assert not mg.isolate_movable_page(m, pfn, 0)
    mem = m.mem
    assert mem.refcount_mv[pfn] == 1
    assert not pf.PageLocked(mem, pfn) and not pf.PageIsolated(mem, pfn)


def test_a_driver_setting_pg_isolated_itself_is_warned(m: Machine, toy: Toy) -> None:
    toy.set_isolated = True
    assert mg.isolate_movable_page(m, toy.alloc(), 0)
    assert "WARN_ON_ONCE(PageIsolated(page))" in m.warnings["isolate_movable_page"]


def test_a_thp_tail_page_is_never_isolated(m: Machine) -> None:
    """Review, Vlastimil: on a THP's first tail page ``mapping`` aliases a mapcount that can
    read as PAGE_MAPPING_MOVABLE. A tail has refcount 0, so get_page_unless_zero fails first."""
    head = m.alloc_pages(order=9, gfp="GFP_HIGHUSER_MOVABLE|__GFP_COMP")
    assert head is not None
    mem = m.mem
    tail = head + 1
    saved = mem.mapping_mv[tail]
    mem.mapping_mv[tail] = MOVABLE  # a THP mapped by three PMDs (v4.8 compound_mapcount)
    assert pf.PageTail(mem, tail) and pf.__PageMovable(mem, tail)
    refs = (mem.refcount_mv[head], mem.refcount_mv[tail])
    seen: list[str] = []
    m.preempt = lambda what, p: seen.append(what)
    assert not mg.isolate_movable_page(m, tail, 0)
    m.preempt = None
    assert seen == ["get_page_unless_zero"]  # refused at step 1, no lock taken
    assert (mem.refcount_mv[head], mem.refcount_mv[tail]) == refs == (1, 0)
    assert not pf.PageIsolated(mem, tail) and not pf.PageLocked(mem, head)
    mem.mapping_mv[tail] = saved
    m.free_pages(head, order=9)
    m.check_state()


# --- marking and predicates (§2.2, §2.3) --------------------------------------------------


def test_page_movable_without_the_page_lock_is_a_vm_bug(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    with pytest.raises(ModelBug, match=r"VM_BUG_ON_PAGE\(!PageLocked\(page\)\)"):
        mg.PageMovable(m, pfn)


def test_set_page_movable_needs_the_lock_and_a_mapping_without_the_bit(m: Machine) -> None:
    pfn = m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE, 0, 0)
    toy = Toy(m)
    with pytest.raises(ModelBug, match=r"VM_BUG_ON_PAGE\(!PageLocked"):
        mg.SetPageMovable(m, pfn, toy.mapping)

    class Tagged:
        mapping_word = toy.mapping.mapping_word | MOVABLE

    assert trylock_page(m, pfn)
    with pytest.raises(ModelBug, match=r"VM_BUG_ON_PAGE\(\(unsigned long\)mapping & "
                                       r"PAGE_MAPPING_MOVABLE\)"):
        mg.SetPageMovable(m, pfn, Tagged())  # type: ignore[arg-type]
    assert m.mem.mapping_mv[pfn] == 0
    unlock_page(m, pfn)


def test_page_movable_needs_a_mapping_with_isolate_page(m: Machine) -> None:
    """PageMovable: __PageMovable, and page_mapping()->a_ops->isolate_page exists."""

    class NoIsolate:
        def migratepage(self, *args: object) -> int:
            return 0

        def putback_page(self, *args: object) -> None:
            pass

    pfn = m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE, 0, 0)
    mapping = AddressSpace(m, "half", a_ops=NoIsolate())
    assert trylock_page(m, pfn)
    mg.SetPageMovable(m, pfn, mapping)
    assert pf.__PageMovable(m.mem, pfn) and not mg.PageMovable(m, pfn)
    unlock_page(m, pfn)
    assert not mg.isolate_movable_page(m, pfn, 0)
    assert m.mem.refcount_mv[pfn] == 1 and not pf.PageIsolated(m.mem, pfn)


def test_clear_page_movable_keeps_only_the_type_bit(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    mem = m.mem
    lock_page(m, pfn)
    mg.ClearPageMovable(m, pfn)
    assert mem.mapping_mv[pfn] == MOVABLE
    assert pf.__PageMovable(mem, pfn) and not mg.PageMovable(m, pfn)
    assert pf.page_mapping(mem, pfn) == 0
    with pytest.raises(ModelBug, match=r"!PageMovable\(page\)"):
        mg.ClearPageMovable(m, pfn)
    unlock_page(m, pfn)
    assert not mg.isolate_movable_page(m, pfn, 0)  # new isolations fail
    swap.put_page(m, pfn)
    assert is_free(m, pfn)


def test_freeing_a_page_with_pg_lru_set_is_bad_page(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    lock_page(m, pfn)
    mg.ClearPageMovable(m, pfn)
    unlock_page(m, pfn)
    m.mem.flags_mv[pfn] = m.mem.flags_mv[pfn] | 1 << pf.PG_lru
    with pytest.raises(ModelBug, match=r"bad_page.*PAGE_FLAGS_CHECK_AT_FREE"):
        pa.free_pages(m, pfn, 0)


# --- a driver releasing an isolated page (§2.5 I->R->F, review 2016-05-30) ---------------


def test_released_while_isolated_then_put_back(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    head = isolate(m, [pfn])
    toy.release(pfn)
    mem = m.mem
    assert mem.mapping_mv[pfn] == MOVABLE and pf.PageIsolated(mem, pfn)
    assert mem.refcount_mv[pfn] == 1  # only the VM's isolation reference
    mg.putback_movable_pages(m, head)
    assert toy.count("putback_page") == 0
    assert is_free(m, pfn) and mem.list_empty(head)
    m.release_list_head(head)
    m.check_state()


def test_released_while_isolated_then_migrated(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    head = isolate(m, [pfn])
    toy.release(pfn)
    before = m.vm_events[vs.PGMIGRATE_SUCCESS]
    rc, stats = migrate(m, head)
    assert (rc, stats.nr_succeeded) == (0, 1)
    assert m.vm_events[vs.PGMIGRATE_SUCCESS] - before == 1  # counted as a success
    assert toy.calls.count(("migratepage", pfn)) == 0 and toy.count("putback_page") == 0
    assert is_free(m, pfn)
    finish(m, head, rc)
    toy.verify()
    m.check_state()


def test_released_while_isolated_with_another_reference(m: Machine, toy: Toy) -> None:
    """move_to_new_page reports success without calling the driver; the unused new page is
    freed, not put on the LRU (2019 fix "don't rely on __PageMovable() of newpage")."""
    pfn = toy.alloc()
    head = isolate(m, [pfn])
    toy.release(pfn)
    get_page(m, pfn)  # e.g. a concurrent speculative reference
    new: list[int] = []

    def get_new(page: int) -> int:
        new.append(m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE, 0, 0))
        return new[-1]

    rc, stats = mg.migrate_pages(m, head, get_new, None, ASYNC, MigrateReason.MR_COMPACTION)
    assert (rc, stats.nr_succeeded) == (0, 1) and not toy.calls[1:]
    mem = m.mem
    assert is_free(m, new[0]) and not pf.PageLRU(mem, new[0])
    assert not pf.PageIsolated(mem, pfn) and mem.refcount_mv[pfn] == 1
    swap.put_page(m, pfn)
    assert is_free(m, pfn)
    finish(m, head, rc)
    m.check_state()


# --- migratepage results (§2.6, §3.3-§3.6) ---------------------------------------------------


def test_success_moves_the_page_and_clears_pg_isolated(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    token = m.mem.token_mv[pfn]
    head = isolate(m, [pfn])
    rc, _ = migrate(m, head)
    assert rc == 0 and m.mem.list_empty(head)
    (new,) = toy.pages
    mem = m.mem
    assert new != pfn and mem.token_mv[new] == token and mem.refcount_mv[new] == 1
    assert not pf.PageIsolated(mem, new) and not pf.PageLocked(mem, new)
    assert is_free(m, pfn)  # old page: PG_isolated cleared, mapping dropped at free
    finish(m, head, rc)
    toy.verify()
    m.check_state()


def test_a_driver_clearing_pg_isolated_is_warned_then_bugs(m: Machine, toy: Toy) -> None:
    """PG_isolated belongs to the VM: v4.8 WARNs, then its own VM_BUG_ON_PAGE fires."""
    toy.clear_isolated = True
    head = isolate(m, [toy.alloc()])
    with pytest.raises(ModelBug, match=r"VM_BUG_ON_PAGE\(!PageIsolated\(page\)\)"):
        migrate(m, head)
    assert "!PageIsolated(page)" in m.warnings["move_to_new_page"]


@pytest.mark.parametrize(("profile", "mode", "modes"), [
    ("mainline", SYNC, [ASYNC] * 3 + [SYNC] * 7),
    ("mainline", SYNC_LIGHT, [ASYNC] * 3 + [SYNC_LIGHT] * 7),
    ("mainline", ASYNC, [ASYNC] * 10),
    ("v4.8", SYNC, [SYNC] * 10),
    ("v4.8", ASYNC, [ASYNC] * 10),
    ("pre-4.8", SYNC, [SYNC] * 10),
])
def test_eagain_is_retried_up_to_the_pass_limit(profile: str, mode: MigrateMode,
                                                modes: list[MigrateMode]) -> None:
    m = Machine.build(memory="128M", profile=profile)
    toy = Toy(m, results=[-EAGAIN])
    pfn = toy.alloc()
    head = isolate(m, [pfn])
    fail = m.vm_events[vs.PGMIGRATE_FAIL]
    rc, stats = migrate(m, head, mode)
    assert toy.modes == modes
    assert (rc, stats.nr_failed_pages) == (1, 1)
    assert m.vm_events[vs.PGMIGRATE_FAIL] - fail == 1
    assert list(m.mem.list_entries(head)) == [pfn]  # left for the caller to put back
    assert toy.count("putback_page") == 0
    finish(m, head, rc)
    assert toy.count("putback_page") == 1 and toy.pages == {pfn}
    assert nr_isolated(m) == 0
    toy.verify()
    m.check_state()


def test_another_errno_puts_the_page_back_at_once_v48() -> None:
    m = Machine.build(memory="128M", profile="v4.8")
    toy = Toy(m, results=[-EBUSY])
    pfn = toy.alloc()
    head = isolate(m, [pfn])
    rc, stats = migrate(m, head, SYNC)
    assert (rc, stats.nr_failed_pages) == (1, 1)
    assert toy.count("migratepage") == 1  # not retried
    assert toy.count("putback_page") == 1 and m.mem.list_empty(head)  # put back already
    assert not pf.PageIsolated(m.mem, pfn) and m.mem.refcount_mv[pfn] == 1
    assert nr_isolated(m) == 0
    finish(m, head, rc)
    assert toy.count("putback_page") == 1
    m.check_state()


def test_another_errno_is_not_retried_in_async_mode() -> None:
    m = Machine.build(memory="128M")
    toy = Toy(m, results=[-EBUSY])
    pfn = toy.alloc()
    head = isolate(m, [pfn])
    rc, _ = migrate(m, head, ASYNC)
    finish(m, head, rc)
    assert rc == 1 and toy.count("migratepage") == 1 and toy.count("putback_page") == 1
    assert toy.pages == {pfn}
    toy.verify()
    m.check_state()


def test_enomem_from_the_driver_puts_the_page_back_and_aborts_v48() -> None:
    """v4.8: -ENOMEM from migratepage aborts migrate_pages; the page is put back at once."""
    m = Machine.build(memory="128M", profile="v4.8")
    toy = Toy(m, results=[-ENOMEM, 0])
    pfns = [toy.alloc() for _ in range(3)]
    head = isolate(m, pfns)
    rc, stats = migrate(m, head)
    assert rc == -ENOMEM and stats.nr_failed_pages == 1
    assert toy.calls.count(("putback_page", pfns[0])) == 1
    assert list(m.mem.list_entries(head)) == pfns[1:]  # not tried
    finish(m, head, rc)
    assert toy.pages == set(pfns)
    m.check_state()


def test_enomem_from_the_driver_fails_only_that_page_in_mainline(m: Machine) -> None:
    """Mainline: a driver's -ENOMEM (move phase) fails that folio; the others migrate, and the
    failed one is left on the list for the caller's putback."""
    toy = Toy(m, results=[-ENOMEM, 0])
    pfns = [toy.alloc() for _ in range(3)]
    head = isolate(m, pfns)
    rc, stats = migrate(m, head)
    assert rc == 1 and stats.nr_failed_pages == 1 and stats.nr_succeeded == 2
    assert toy.count("putback_page") == 0
    assert list(m.mem.list_entries(head)) == [pfns[0]]
    finish(m, head, rc)
    assert toy.calls.count(("putback_page", pfns[0])) == 1
    assert pfns[0] in toy.pages and len(toy.pages) == 3
    m.check_state()


def test_no_target_page_is_enomem_and_the_page_stays(m: Machine, toy: Toy) -> None:
    pfn = toy.alloc()
    head = isolate(m, [pfn])
    rc, _ = mg.migrate_pages(m, head, lambda page: -1, None, ASYNC,
                             MigrateReason.MR_COMPACTION)
    assert rc == -ENOMEM and list(m.mem.list_entries(head)) == [pfn]
    finish(m, head, rc)
    assert toy.count("putback_page") == 1
    m.check_state()


def test_pgmigrate_success_and_fail_count_pages(m: Machine) -> None:
    toy = Toy(m, results=[0, -EBUSY, 0, -EBUSY, 0])
    head = isolate(m, [toy.alloc() for _ in range(5)])
    ok, fail = m.vm_events[vs.PGMIGRATE_SUCCESS], m.vm_events[vs.PGMIGRATE_FAIL]
    rc, stats = migrate(m, head)
    assert (rc, stats.nr_succeeded, stats.nr_failed_pages) == (2, 3, 2)
    assert m.vmstat["pgmigrate_success"] - ok == 3
    assert m.vmstat["pgmigrate_fail"] - fail == 2
    finish(m, head, rc)
    m.check_state()


# --- NR_ISOLATED (§3.8) ----------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["mainline", "v4.8"])
def test_nr_isolated_is_balanced_after_migrate_pages(profile: str) -> None:
    m = Machine.build(memory="128M", profile=profile)
    toy = Toy(m, results=[0, -EAGAIN, 0, -EBUSY])
    balloon = Balloon(m)
    balloon.inflate(3)
    task = m.spawn("task")
    lru = [int(p) for p in task.touch(2)]
    driver = [toy.alloc() for _ in range(4)]
    ballooned = list(m.mem.list_entries(balloon.vb_dev_info.pages))
    head = isolate(m, lru + driver + ballooned)
    # v4.8 counts non-LRU pages while they are isolated (as "file": not swap-backed).
    expect_file = 7 if profile == "v4.8" else 0
    assert m.nodes[0].vm_stat[vs.NR_ISOLATED_ANON] == 2
    assert m.nodes[0].vm_stat[vs.NR_ISOLATED_FILE] == expect_file
    rc, _ = migrate(m, head, SYNC)
    finish(m, head, rc)
    assert nr_isolated(m) == 0
    task.verify()
    toy.verify()
    m.check_state()


# --- the balloon as a driver --------------------------------------------------------------------


def test_migrating_a_balloon_page_moves_it_and_the_host_follows(m: Machine) -> None:
    balloon = Balloon(m)
    balloon.inflate(4)
    before = set(balloon.host_pfns)
    pfn = m.mem.list_first(balloon.vb_dev_info.pages)
    migrated = m.vm_events[vs.BALLOON_MIGRATE]
    head = isolate(m, [pfn])
    rc, _ = migrate(m, head)
    finish(m, head, rc)
    assert rc == 0 and m.vm_events[vs.BALLOON_MIGRATE] - migrated == 1
    (new,) = balloon.host_pfns - before
    assert balloon.host_pfns == before - {pfn} | {new}
    assert pf.PageOffline(m.mem, new) and is_free(m, pfn)
    m.check_state()


# --- driver styles --------------------------------------------------------------------------


class MopsToy:
    """A ``movable_operations``-style driver (v6.0+): ``migrate_page(dst, src, mode)``."""

    def __init__(self, m: Machine) -> None:
        self.inner = Toy(m)
        self.calls: list[tuple[int, int]] = []

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        return self.inner.isolate_page(m, page, mode)

    def migrate_page(self, m: Machine, dst: int, src: int, mode: MigrateMode) -> int:
        self.calls.append((dst, src))
        return self.inner.migratepage(m, self.inner.mapping, dst, src, mode)

    def putback_page(self, m: Machine, page: int) -> None:
        self.inner.putback_page(m, page)


def test_movable_ops_adapter_runs_a_movable_operations_driver(m: Machine) -> None:
    driver = MopsToy(m)
    driver.inner.mapping.a_ops = mg.MovableOpsAdapter(driver)
    mg.check_driver(driver.inner.mapping.a_ops)
    pfn = driver.inner.alloc()
    head = isolate(m, [pfn])
    rc, _ = migrate(m, head)
    finish(m, head, rc)
    assert rc == 0 and len(driver.calls) == 1 and driver.calls[0][1] == pfn
    assert driver.inner.pages == {driver.calls[0][0]}
    driver.inner.verify()
    m.check_state()


@pytest.mark.parametrize("missing", ["isolate_page", "migratepage", "putback_page"])
def test_check_driver_names_a_missing_callback(missing: str) -> None:
    callbacks = {name: (lambda *a: None) for name in
                 ("isolate_page", "migratepage", "putback_page") if name != missing}
    driver = type("Half", (), {k: staticmethod(v) for k, v in callbacks.items()})()
    with pytest.raises(InvalidArgument, match=missing):
        mg.check_driver(driver)


def test_check_driver_accepts_both_styles(m: Machine) -> None:
    mg.check_driver(Toy(m))
    mg.check_driver(MopsToy(m))
