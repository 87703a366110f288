"""Tests for pagelab.mm.balloon_compaction: the balloon page list and its three versions
(v4.8 non-LRU movable pages, mainline 6.x, and the v3.8..v4.7 special case)."""

from __future__ import annotations

import pytest

from pagelab import KernelProfile, Machine
from pagelab.errors import ModelBug
from pagelab.mm import balloon_compaction as bc
from pagelab.mm import gfp as G
from pagelab.mm import migrate as mg
from pagelab.mm import page_flags as pf
from pagelab.mm import swap
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import get_page, lock_page, trylock_page, unlock_page
from pagelab.mm.migrate import MigrateMode, MigrateReason
from pagelab.mm.mmzone import MIGRATE_MOVABLE, MIGRATE_UNMOVABLE

MOVABLE = pf.PAGE_MAPPING_MOVABLE
OFFLINE = pf.page_type_value(pf.PGTY_offline)
NO_COMPACTION = KernelProfile(name="no-balloon-compaction", balloon_compaction=False)
PRE48_NO_COMPACTION = KernelProfile(name="pre-4.8-n", kernel_version="4.7",
                                    non_lru_movable=False, balloon_compaction=False)


class Recorder:
    """A balloon driver's migratepage that records its calls and moves like virtio does."""

    def __init__(self, rc: int = 0) -> None:
        self.rc = rc
        self.calls: list[tuple[int, int, MigrateMode]] = []

    def __call__(self, m: Machine, b: bc.BalloonDevInfo, newpage: int, page: int,
                 mode: MigrateMode) -> int:
        self.calls.append((newpage, page, mode))
        if self.rc:
            return self.rc
        get_page(m, newpage)
        with b.pages_lock:
            bc.balloon_page_insert(m, b, newpage)
            b.isolated_pages -= 1
            m.vm_events[vs.BALLOON_MIGRATE] += 1
        bc.balloon_page_delete(m, page)
        swap.put_page(m, page)
        return mg.MIGRATEPAGE_SUCCESS


def device(m: Machine, n: int = 0, rc: int = 0) -> tuple[bc.BalloonDevInfo, Recorder]:
    b = bc.BalloonDevInfo(m)
    rec = Recorder(rc)
    b.migratepage = rec
    for _ in range(n):
        pfn = bc.balloon_page_alloc(m)
        assert pfn >= 0
        bc.balloon_page_enqueue(m, b, pfn)
    return b, rec


def listed(m: Machine, b: bc.BalloonDevInfo) -> list[int]:
    return list(m.mem.list_entries(b.pages))


def migrate(m: Machine, head: int, mode: MigrateMode = MigrateMode.MIGRATE_ASYNC) -> int:
    rc, _ = mg.migrate_pages(m, head, lambda p: m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE, 0, 0),
                             None, mode, MigrateReason.MR_COMPACTION)
    if rc:
        mg.putback_movable_pages(m, head)
    m.release_list_head(head)
    return rc


def isolate_v47(m: Machine, pfn: int) -> bool:
    """The v4.7 migrate scanner: the balloon hook, then acct_isolated() counts the page."""
    assert m.balloon_isolate_hook is not None
    if not m.balloon_isolate_hook(m, pfn, mg.ISOLATE_ASYNC_MIGRATE):
        return False
    mg.mod_isolated(m, pfn, 1)
    return True


def nr_isolated(m: Machine) -> int:
    return sum(n.vm_stat[vs.NR_ISOLATED_ANON] + n.vm_stat[vs.NR_ISOLATED_FILE]
               for n in m.nodes)


# --- allocation and the page list ------------------------------------------------------------


@pytest.mark.parametrize(("profile", "migratetype"), [
    ("mainline", MIGRATE_MOVABLE), ("v4.8", MIGRATE_MOVABLE), ("pre-4.8", MIGRATE_MOVABLE),
    (NO_COMPACTION, MIGRATE_UNMOVABLE), (PRE48_NO_COMPACTION, MIGRATE_UNMOVABLE),
], ids=["mainline", "v4.8", "pre-4.8", "mainline-n", "pre-4.8-n"])
def test_balloon_pages_are_movable_only_with_balloon_compaction(
        profile: str | KernelProfile, migratetype: int) -> None:
    m = Machine.build(memory="128M", profile=profile)
    pfn = bc.balloon_page_alloc(m)
    assert m.mem.alloc_mt_mv[pfn] == migratetype
    expected = G.GFP_HIGHUSER_MOVABLE if migratetype == MIGRATE_MOVABLE else G.GFP_HIGHUSER
    assert bc.balloon_mapping_gfp_mask(m) == expected


@pytest.mark.parametrize(("profile", "nr_balloon"), [("mainline", 1), ("v4.8", 0)])
def test_enqueue_marks_the_page_and_threads_it_through_lru(profile: str,
                                                           nr_balloon: int) -> None:
    m = Machine.build(memory="128M", profile=profile)
    b, _ = device(m)
    inflated = m.vm_events[vs.BALLOON_INFLATE]
    pfn = bc.balloon_page_alloc(m)
    bc.balloon_page_enqueue(m, b, pfn)
    mem = m.mem
    assert mem.mapcount_mv[pfn] == OFFLINE and pf.PageBalloon(mem, pfn)
    assert b.mapping is not None and b.mapping.a_ops is bc.balloon_aops
    assert mem.mapping_mv[pfn] == b.mapping.mapping_word | MOVABLE
    assert mem.private_mv[pfn] == b.id and bc.balloon_page_device(m, pfn) is b
    assert mem.refcount_mv[pfn] == 1 and not pf.PageLocked(mem, pfn)
    assert listed(m, b) == [pfn] and mem.list_first(b.pages) == pfn
    assert m.vm_events[vs.BALLOON_INFLATE] - inflated == 1
    assert m.vmstat["nr_balloon_pages"] == nr_balloon  # NR_BALLOON_PAGES: v6.15+


def test_enqueue_of_a_page_someone_has_locked_is_a_bug() -> None:
    m = Machine.build(memory="128M")
    b, _ = device(m)
    pfn = bc.balloon_page_alloc(m)
    assert trylock_page(m, pfn)
    with pytest.raises(ModelBug, match=r"BUG_ON\(!trylock_page\(page\)\)"):
        bc.balloon_page_enqueue(m, b, pfn)


def test_insert_needs_the_pages_lock() -> None:
    m = Machine.build(memory="128M")
    b, _ = device(m)
    pfn = bc.balloon_page_alloc(m)
    assert trylock_page(m, pfn)
    with pytest.raises(ModelBug, match=r"lockdep_assert_held\(&balloon_pages_lock\)"):
        bc.balloon_page_insert(m, b, pfn)


def test_pages_lock_is_a_preemption_point_and_a_held_lock_deadlocks() -> None:
    m = Machine.build(memory="128M")
    b, _ = device(m)
    seen: list[tuple[str, int]] = []
    m.preempt = lambda what, pfn: seen.append((what, pfn))
    bc.balloon_page_enqueue(m, b, bc.balloon_page_alloc(m))
    m.preempt = None
    assert ("balloon_pages_lock", -1) in seen
    with b.pages_lock, pytest.raises(ModelBug, match="balloon_pages_lock taken while held"):
        b.pages_lock.lock()
    assert b.pages_lock.owner is None


def test_dequeue_returns_a_page_for_the_driver_to_free() -> None:
    m = Machine.build(memory="128M")
    b, _ = device(m, 3)
    first = listed(m, b)[0]
    deflated = m.vm_events[vs.BALLOON_DEFLATE]
    pfn = bc.balloon_page_dequeue(m, b)
    assert pfn == first and pfn not in listed(m, b)
    mem = m.mem
    assert mem.mapcount_mv[pfn] == pf.MAPCOUNT_NONE and mem.mapping_mv[pfn] == MOVABLE
    assert mem.private_mv[pfn] == 0 and m.vm_events[vs.BALLOON_DEFLATE] - deflated == 1
    assert m.vmstat["nr_balloon_pages"] == 2
    swap.put_page(m, pfn)
    assert mem.mapping_mv[pfn] == 0 and mem.refcount_mv[pfn] == 0
    m.check_state()


def test_dequeue_skips_isolated_pages_and_bugs_only_when_pages_are_lost() -> None:
    m = Machine.build(memory="128M")
    b, _ = device(m, 2)
    a, c = listed(m, b)
    assert mg.isolate_movable_page(m, a, 0)  # the balloon's isolate_page unlinks it
    assert b.isolated_pages == 1 and listed(m, b) == [c]
    assert bc.balloon_page_dequeue(m, b) == c
    assert bc.balloon_page_dequeue(m, b) == -1  # empty but one page isolated: no BUG
    head = m.alloc_list_head()
    m.mem.list_add(a, head)
    mg.putback_movable_pages(m, head)
    m.release_list_head(head)
    assert listed(m, b) == [a] and b.isolated_pages == 0
    assert bc.balloon_page_dequeue(m, b) == a
    with pytest.raises(ModelBug, match="balloon pages were lost"):
        bc.balloon_page_dequeue(m, b)


def test_a_listed_page_that_raced_with_isolation_is_skipped() -> None:
    """Between isolate_page and the VM setting PG_isolated ... or a page put on the list
    while isolated: balloon_page_list_dequeue re-checks PG_isolated under the page lock."""
    m = Machine.build(memory="128M")
    b, _ = device(m, 1)
    (pfn,) = listed(m, b)
    m.mem.flags_mv[pfn] = m.mem.flags_mv[pfn] | 1 << pf.PG_isolated
    head = m.alloc_list_head()
    assert bc.balloon_page_list_dequeue(m, b, head, 1) == 0 and listed(m, b) == [pfn]
    assert not pf.PageLocked(m.mem, pfn)
    m.release_list_head(head)


def test_delete_of_an_isolated_page_leaves_its_lru_words_to_the_vm() -> None:
    m = Machine.build(memory="128M")
    b, _ = device(m, 1)
    (pfn,) = listed(m, b)
    assert mg.isolate_movable_page(m, pfn, 0)
    head = m.alloc_list_head()
    mem = m.mem
    mem.list_add(pfn, head)  # the VM's migration list
    links = (mem.lru_next_mv[pfn], mem.lru_prev_mv[pfn])
    lock_page(m, pfn)
    bc.balloon_page_delete(m, pfn)
    unlock_page(m, pfn)
    assert (mem.lru_next_mv[pfn], mem.lru_prev_mv[pfn]) == links
    assert list(mem.list_entries(head)) == [pfn]
    assert mem.mapping_mv[pfn] == MOVABLE and mem.mapcount_mv[pfn] == pf.MAPCOUNT_NONE
    b.isolated_pages -= 1
    swap.put_page(m, pfn)  # the balloon's reference: the driver released an isolated page
    mg.putback_movable_pages(m, head)  # the VM notices: no putback_page, page freed
    m.release_list_head(head)
    assert mem.refcount_mv[pfn] == 0 and mem.mapping_mv[pfn] == 0
    assert not pf.PageIsolated(mem, pfn)
    m.check_state()


# --- migration (v4.8 and mainline) ---------------------------------------------------------


@pytest.mark.parametrize("profile", ["mainline", "v4.8"])
def test_isolate_migrate_through_the_framework(profile: str) -> None:
    m = Machine.build(memory="128M", profile=profile)
    b, rec = device(m, 3)
    pfn = listed(m, b)[1]
    assert mg.isolate_movable_page(m, pfn, 0)
    assert b.isolated_pages == 1 and pfn not in listed(m, b)
    head = m.alloc_list_head()
    m.mem.list_add(pfn, head)
    assert migrate(m, head) == 0
    ((new, old, _),) = rec.calls
    assert old == pfn and new in listed(m, b) and b.isolated_pages == 0
    assert m.mem.refcount_mv[pfn] == 0 and m.mem.mapping_mv[pfn] == 0
    assert m.vm_events[vs.BALLOON_MIGRATE] == 1
    m.check_state()


def test_balloon_page_migrate_needs_both_pages_locked() -> None:
    m = Machine.build(memory="128M")
    b, _ = device(m, 1)
    (pfn,) = listed(m, b)
    newpage = m.alloc_page_raw(G.GFP_HIGHUSER_MOVABLE, 0, 0)
    assert b.mapping is not None
    with pytest.raises(ModelBug, match=r"VM_BUG_ON_PAGE\(!PageLocked\(page\)\)"):
        bc.balloon_page_migrate(m, b.mapping, newpage, pfn, MigrateMode.MIGRATE_SYNC)


def test_eagain_from_the_driver_puts_the_page_back_on_the_list() -> None:
    m = Machine.build(memory="128M")
    b, rec = device(m, 2, rc=-mg.EAGAIN)
    pfn = listed(m, b)[0]
    assert mg.isolate_movable_page(m, pfn, 0)
    head = m.alloc_list_head()
    m.mem.list_add(pfn, head)
    assert migrate(m, head) == 1
    assert len(rec.calls) == 10 and b.isolated_pages == 0 and pfn in listed(m, b)
    assert not pf.PageIsolated(m.mem, pfn) and m.mem.refcount_mv[pfn] == 1
    m.check_state()


@pytest.mark.parametrize("profile", [NO_COMPACTION, PRE48_NO_COMPACTION],
                         ids=["mainline-n", "pre-4.8-n"])
def test_without_balloon_compaction_pages_never_move(profile: KernelProfile) -> None:
    m = Machine.build(memory="128M", profile=profile)
    b, _ = device(m, 2)
    mem = m.mem
    assert b.mapping is None and m.balloon_isolate_hook is None
    for pfn in listed(m, b):
        assert mem.mapping_mv[pfn] == 0 and not pf.__PageMovable(mem, pfn)
        assert not mg.isolate_movable_page(m, pfn, 0)
        assert not bc.balloon_page_movable(m, pfn)
    # v4.7 without compaction did not even mark the page; v4.8+ marks it offline
    assert pf.PageOffline(mem, listed(m, b)[0]) == profile.non_lru_movable
    assert bc.balloon_page_dequeue(m, b) >= 0


# --- v3.8 .. v4.7: the special case ---------------------------------------------------------


@pytest.fixture
def old() -> Machine:
    return Machine.build(memory="128M", profile="pre-4.8")


def test_v47_pages_are_balloon_and_private_not_non_lru_movable(old: Machine) -> None:
    b, _ = device(old, 2)
    mem = old.mem
    assert old.balloon_isolate_hook is bc.balloon_isolate_hook and b.mapping is None
    for pfn in listed(old, b):
        assert pf.PageBalloon(mem, pfn) and pf.PagePrivate(mem, pfn)
        assert mem.private_mv[pfn] == b.id and mem.mapping_mv[pfn] == 0
        assert bc.balloon_page_movable(old, pfn) and not pf.__PageMovable(mem, pfn)
        assert not mg.isolate_movable_page(old, pfn, 0)  # no framework before v4.8


def test_v47_hook_isolates_once(old: Machine) -> None:
    b, _ = device(old, 2)
    pfn = listed(old, b)[0]
    mem = old.mem
    assert old.balloon_isolate_hook is not None
    assert old.balloon_isolate_hook(old, pfn, mg.ISOLATE_ASYNC_MIGRATE)
    assert not pf.PagePrivate(mem, pfn) and pfn not in listed(old, b)
    assert b.isolated_pages == 1 and mem.refcount_mv[pfn] == 2
    assert nr_isolated(old) == 0  # counting it is the scanner's job (acct_isolated)
    assert not bc.balloon_page_movable(old, pfn)
    assert not old.balloon_isolate_hook(old, pfn, 0)  # a second isolation is refused
    assert mem.refcount_mv[pfn] == 2
    other = old.alloc_page_raw(G.GFP_KERNEL, 0, 0)
    assert not old.balloon_isolate_hook(old, other, 0)  # not a balloon page
    assert trylock_page(old, listed(old, b)[0])
    assert not old.balloon_isolate_hook(old, listed(old, b)[0], 0)  # locked: refused
    assert mem.refcount_mv[listed(old, b)[0]] == 1


def test_v47_migration_goes_through_balloon_page_migrate(old: Machine) -> None:
    b, rec = device(old, 3)
    pfn = listed(old, b)[2]
    assert isolate_v47(old, pfn)
    head = old.alloc_list_head()
    old.mem.list_add(pfn, head)
    assert migrate(old, head, MigrateMode.MIGRATE_SYNC) == 0
    ((new, src, mode),) = rec.calls
    mem = old.mem
    assert src == pfn and mode == MigrateMode.MIGRATE_SYNC  # v4.7: no async first passes
    assert new in listed(old, b) and pf.PagePrivate(mem, new) and pf.PageBalloon(mem, new)
    assert not pf.PageLRU(mem, new) and mem.refcount_mv[new] == 1
    assert mem.refcount_mv[pfn] == 0 and not pf.PagePrivate(mem, pfn)
    assert nr_isolated(old) == 0 and b.isolated_pages == 0
    old.check_state()


@pytest.mark.parametrize("rc", [-mg.EAGAIN, -mg.EBUSY])
def test_v47_failure_puts_the_balloon_page_back(old: Machine, rc: int) -> None:
    b, rec = device(old, 2, rc=rc)
    pfn = listed(old, b)[0]
    assert isolate_v47(old, pfn)
    head = old.alloc_list_head()
    old.mem.list_add(pfn, head)
    assert migrate(old, head, MigrateMode.MIGRATE_SYNC) == 1
    assert len(rec.calls) == (10 if rc == -mg.EAGAIN else 1)
    assert [c[2] for c in rec.calls][-1] == MigrateMode.MIGRATE_SYNC
    mem = old.mem
    assert pfn in listed(old, b) and pf.PagePrivate(mem, pfn) and not pf.PageLRU(mem, pfn)
    assert mem.refcount_mv[pfn] == 1 and b.isolated_pages == 0 and nr_isolated(old) == 0
    assert bc.balloon_page_movable(old, pfn)
    old.check_state()


def test_v47_putback_of_a_page_no_longer_in_the_balloon_warns(old: Machine) -> None:
    b, _ = device(old, 1)
    (pfn,) = listed(old, b)
    assert isolate_v47(old, pfn)
    lock_page(old, pfn)
    bc.balloon_page_delete(old, pfn)  # PG_private already clear: no list_del
    unlock_page(old, pfn)
    bc.balloon_page_putback_v47(old, pfn)
    assert "not movable balloon page" in old.warnings["balloon_page_putback"]
