"""The GPU buffer-object driver: migration, pins, the release protocol, contents."""

from __future__ import annotations

import pytest

from pagelab.drivers.gpu import Gpu
from pagelab.drivers.loader import run_driver_check
from pagelab.errors import InvalidArgument, StateCheckFailed
from pagelab.machine import Machine
from pagelab.mm import migrate
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.gfp import GFP_HIGHUSER_MOVABLE
from pagelab.mm.migrate import MigrateMode, MigrateReason


@pytest.fixture
def m() -> Machine:
    return Machine.build(memory="64M")


@pytest.fixture
def gpu(m: Machine) -> Gpu:
    return Gpu(m)


def nr_free(m: Machine) -> int:
    m.drain_all_pages()
    return sum(z.vm_stat[vs.NR_FREE_PAGES] for z in m.zones)


def isolate(m: Machine, pfns: list[int]) -> int:
    """Isolate every page as compaction does; return the migration list head."""
    head = m.alloc_list_head()
    for pfn in pfns:
        assert migrate.isolate_movable_page(m, pfn, migrate.ISOLATE_ASYNC_MIGRATE)
        m.mem.list_add_tail(pfn, head)
    m.check_state()
    return head


def migrate_list(m: Machine, head: int, mode: MigrateMode = MigrateMode.MIGRATE_ASYNC):
    rc, stats = migrate.migrate_pages(
        m, head, lambda old: m.alloc_page_raw(GFP_HIGHUSER_MOVABLE, 0, 0), None, mode,
        MigrateReason.MR_COMPACTION)
    m.check_state()
    return rc, stats


def finish(m: Machine, head: int) -> None:
    """What compaction does after migrate_pages: put back what is left, drop the list."""
    migrate.putback_movable_pages(m, head)
    m.release_list_head(head)
    m.check_state()


def test_bo_pages_are_the_drivers_movable_pages(m, gpu):
    bo = gpu.create_bo(4)
    assert bo is not None and len(set(bo.pages)) == 4
    mem = m.mem
    for index, pfn in enumerate(bo.pages):
        assert pf.__PageMovable(mem, pfn) and not pf.PageLocked(mem, pfn)
        assert pf.page_mapping(mem, pfn) == gpu.mapping.id
        assert (mem.private_mv[pfn], mem.index_mv[pfn]) == (bo.handle, index)
        assert mem.refcount_mv[pfn] == 1
        assert mem.token_mv[pfn] == bo.tokens[index] != 0
    assert gpu.check() == []
    m.check_state()


def test_migration_moves_unpinned_pages_and_keeps_contents(m, gpu):
    a, b = gpu.create_bo(8), gpu.create_bo(3)
    before = {bo.handle: (list(bo.pages), list(bo.tokens)) for bo in (a, b)}
    head = isolate(m, a.pages + b.pages)
    gpu.render(a)  # the GPU writes after isolation: the copy must carry the new contents
    rc, stats = migrate_list(m, head)
    finish(m, head)
    assert (rc, stats.nr_succeeded, stats.nr_failed_pages) == (0, 11, 0)
    assert gpu.stats.migrated == 11 and gpu.stats.isolated == 11
    assert m.vmstat["pgmigrate_success"] == 11
    for bo in (a, b):
        old_pages = before[bo.handle][0]
        assert all(new != old for new, old in zip(bo.pages, old_pages, strict=True))
        assert [m.mem.token_mv[p] for p in bo.pages] == bo.tokens
        assert not any(pf.PageIsolated(m.mem, p) for p in bo.pages)
    assert b.tokens == before[b.handle][1] and a.tokens != before[a.handle][1]
    assert gpu.isolated == set()


def test_pinned_bo_is_refused_at_isolation(m, gpu):
    bo = gpu.create_bo(4)
    pages = list(bo.pages)
    gpu.pin(bo)
    assert not any(migrate.isolate_movable_page(m, p, 0) for p in pages)
    assert gpu.stats.isolate_refused == 4 and gpu.stats.isolated == 0
    assert all(m.mem.refcount_mv[p] == 1 and not pf.PageLocked(m.mem, p) for p in pages)
    m.check_state()
    gpu.unpin(bo)
    head = isolate(m, pages)
    assert migrate_list(m, head)[0] == 0
    finish(m, head)


@pytest.mark.parametrize("mode", [MigrateMode.MIGRATE_ASYNC, MigrateMode.MIGRATE_SYNC_LIGHT])
def test_pin_after_isolation_is_retried_then_failed_and_put_back(m, gpu, mode):
    pinned, free = gpu.create_bo(3), gpu.create_bo(2)
    pages = list(pinned.pages)
    head = isolate(m, pinned.pages + free.pages)
    gpu.pin(pinned)  # DMA starts after compaction isolated the pages
    rc, stats = migrate_list(m, head, mode)
    # -EAGAIN on every one of the 10 passes (3 async + 7 sync for the sync modes).
    assert gpu.stats.migrate_eagain == 3 * migrate.NR_MAX_MIGRATE_PAGES_RETRY
    assert (rc, stats.nr_succeeded, stats.nr_failed_pages) == (3, 2, 3)
    assert m.vmstat["pgmigrate_fail"] == 3
    assert sorted(m.mem.list_entries(head)) == sorted(pages)  # left for the caller
    finish(m, head)
    assert gpu.stats.putback == 3 and gpu.isolated == set()
    assert pinned.pages == pages and free.pages != []
    assert all(not pf.PageIsolated(m.mem, p) and m.mem.refcount_mv[p] == 1 for p in pages)


def test_after_unpin_the_next_migrate_pages_call_moves_the_bo(m, gpu):
    bo = gpu.create_bo(2)
    head = isolate(m, bo.pages)
    gpu.pin(bo)
    migrate_list(m, head)
    finish(m, head)
    gpu.unpin(bo)
    head = isolate(m, bo.pages)
    rc, stats = migrate_list(m, head)
    finish(m, head)
    assert (rc, stats.nr_succeeded, gpu.stats.migrated) == (0, 2, 2)


def test_destroy_while_isolated_follows_the_release_protocol(m, gpu):
    free_before = nr_free(m)
    bo, other = gpu.create_bo(5), gpu.create_bo(2)
    pages = list(bo.pages)
    head = isolate(m, bo.pages + other.pages)
    gpu.destroy_bo(bo)
    mem = m.mem
    for pfn in pages:  # state R: type bit kept, still isolated, only the VM's reference
        assert mem.mapping_mv[pfn] == pf.PAGE_MAPPING_MOVABLE
        assert pf.PageIsolated(mem, pfn) and mem.refcount_mv[pfn] == 1
        assert not pf.PageLocked(mem, pfn)
    assert m.mem.list_len(head) == 7  # the release did not touch page->lru
    m.check_state()
    rc, stats = migrate_list(m, head)
    finish(m, head)
    # The VM frees released pages without calling the driver and counts them as successes.
    assert (rc, stats.nr_succeeded) == (0, 7)
    assert gpu.stats.migrated == 2 and gpu.stats.putback == 0
    # Freed, unless the allocator handed a freed page back as a target for `other`.
    assert all(p in other.pages or (mem.refcount_mv[p] == 0 and mem.mapping_mv[p] == 0)
               for p in pages)
    gpu.destroy_bo(other)
    assert nr_free(m) == free_before
    assert gpu.bos == {} and gpu.isolated == set()
    m.check_state()


def test_destroy_while_isolated_then_putback_frees_without_the_driver(m, gpu):
    free_before = nr_free(m)
    bo = gpu.create_bo(4)
    head = isolate(m, bo.pages)
    gpu.destroy_bo(bo)
    finish(m, head)  # compaction gives up: putback_movable_pages
    assert gpu.stats.putback == 0  # putback_page is not called for a released page
    assert nr_free(m) == free_before
    assert m.warnings == {}


def test_create_bo_out_of_memory_returns_none_and_leaks_nothing(m, gpu):
    free_before = nr_free(m)
    assert gpu.create_bo(1 << 20) is None
    assert gpu.bos == {} and nr_free(m) == free_before
    m.check_state()


def test_misuse_raises_with_what_to_do(m, gpu):
    bo = gpu.create_bo(1)
    with pytest.raises(InvalidArgument, match="unpin only what pin"):
        gpu.unpin(bo)
    gpu.pin(bo)
    with pytest.raises(InvalidArgument, match="unpin it first"):
        gpu.destroy_bo(bo)
    gpu.unpin(bo)
    gpu.destroy_bo(bo)
    with pytest.raises(InvalidArgument, match="does not belong"):
        gpu.destroy_bo(bo)
    with pytest.raises(InvalidArgument, match=">= 1"):
        gpu.create_bo(0)


def test_check_state_reports_lost_contents(m, gpu):
    bo = gpu.create_bo(2)
    m.mem.token_mv[bo.pages[1]] ^= 1
    with pytest.raises(StateCheckFailed, match="contents lost"):
        m.check_state()


def test_gpu_passes_the_driver_check():
    report = run_driver_check(Gpu, memory="64M")
    assert report.passed, report.problems
    assert [p.phase for p in report.phases] == [
        "allocate", "migrate", "putback", "release isolated", "release all"]


# --- interleavings (the schedule explorer runs the same code on two CPUs) ---------------------


def _explore(*programs):
    explorer = pytest.importorskip("pagelab.sched.explorer")

    def setup():
        m = Machine.build(memory="64M")
        gpu = Gpu(m)
        return m, (gpu, gpu.create_bo(2))

    def compactor(m, ctx):
        head = m.alloc_list_head()
        for pfn in list(ctx[1].pages):
            if migrate.isolate_movable_page(m, pfn, 0):
                m.mem.list_add_tail(pfn, head)
        rc, _ = migrate.migrate_pages(
            m, head, lambda old: m.alloc_page_raw(GFP_HIGHUSER_MOVABLE, 0, 0), None,
            MigrateMode.MIGRATE_SYNC, MigrateReason.MR_COMPACTION)
        if rc:
            migrate.putback_movable_pages(m, head)
        m.release_list_head(head)

    scenario = explorer.Scenario("gpu", setup, [compactor, *programs])
    return explorer.explore(scenario, bound=2)


def test_destroy_racing_with_compaction_is_safe_in_every_schedule():
    # destroy_bo revalidates after lock_page: the page it waited for may have been migrated.
    result = _explore(lambda m, ctx: ctx[0].destroy_bo(ctx[1]))
    assert result.failure is None, result.failure and result.failure.findings
    assert result.schedules > 100


def test_pin_and_gpu_writes_racing_with_compaction_lose_nothing():
    def gpu_user(m, ctx):
        gpu, bo = ctx
        gpu.pin(bo)
        gpu.render(bo)
        gpu.unpin(bo)
        gpu.render(bo)

    result = _explore(gpu_user)
    assert result.failure is None, result.failure and result.failure.findings
