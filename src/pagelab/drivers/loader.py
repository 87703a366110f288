"""Load a movable driver by name (``module:Class``) and check it against the protocol.

A *pluggable driver* is a class the CLI (``pagelab driver-check``) and the experiment runner
can put on any machine. Its contract (``docs/tutorial-driver.md`` walks through one):

* ``Driver(m)`` attaches to a :class:`~pagelab.machine.Machine` and allocates nothing yet;
* ``allocate(npages) -> handle`` allocates ``npages`` order-0 pages, makes each movable with
  ``SetPageMovable(m, pfn, mapping)`` under the page lock, and returns an opaque handle (None
  when memory runs out);
* ``release(handle)`` frees them, isolated or not: ``lock_page``, ``ClearPageMovable``,
  ``unlock_page``, ``put_page``;
* the three callbacks ``isolate_page``, ``migratepage`` (or ``migrate_page`` for a
  ``movable_operations``-style driver whose mapping's a_ops is a ``MovableOpsAdapter``) and
  ``putback_page``, with the contract of :mod:`pagelab.mm.migrate`;
* recommended: a checker in ``m.state_checkers`` that verifies the pages' contents (tokens).

:func:`load_driver` imports by module name with importlib (nothing is evaluated but the
module's own import). :func:`run_driver_check` runs a driver on a small machine through
isolation, migration, put-back and release-while-isolated, with a checker between the VM and
the driver's callbacks that names each broken rule.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from pagelab.errors import BadInput, InvalidArgument, ModelBug, StateCheckFailed
from pagelab.mm import migrate
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.gfp import GFP_HIGHUSER_MOVABLE
from pagelab.mm.rmap import AddressSpace

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["DriverCheckReport", "PhaseResult", "PluggableDriver", "driver_pages", "load_driver",
           "run_driver_check"]

_SPEC = re.compile(r"(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<cls>[A-Za-z_]\w*)")
_EXAMPLE = "e.g. pagelab.drivers.gpu:Gpu"


class PluggableDriver(Protocol):
    """What the CLI and the experiment runner call besides the three callbacks."""

    def allocate(self, npages: int) -> Any:
        """Allocate ``npages`` movable pages; return a handle, or None when out of memory."""
        ...

    def release(self, handle: Any) -> None:
        """Free what ``allocate`` returned, following the release protocol."""
        ...


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_driver(spec: str) -> type[PluggableDriver]:
    """Import ``module:Class`` and return the class once it meets the pluggable contract.

    Raises InvalidArgument for a malformed spec, an unknown module or class, or a class that
    lacks part of the contract; BadInput for a module that exists but fails to import.
    """
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise InvalidArgument(f"driver {spec!r} is not of the form module:Class; give the "
                              f"importable module and the class, {_EXAMPLE}")
    modname, clsname = match["module"], match["cls"]
    try:
        module = importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name and (modname == exc.name or modname.startswith(exc.name + ".")):
            raise InvalidArgument(f"no module named {modname!r}; check the spelling and put its "
                                  "directory on PYTHONPATH (or install its package)") from None
        raise BadInput(f"module {modname!r} imports {exc.name!r}, which is not installed; "
                       "install it or fix the import") from None
    except Exception as exc:
        raise BadInput(f"importing {modname!r} failed: {type(exc).__name__}: "
                       f"{_one_line(str(exc))}; fix the module") from None
    obj = getattr(module, clsname, None)
    if obj is None:
        found = sorted(name for name, value in vars(module).items()
                       if isinstance(value, type) and value.__module__ == modname
                       and callable(getattr(value, "isolate_page", None)))
        hint = f"drivers there: {', '.join(found)}" if found else "it defines no driver class"
        raise InvalidArgument(f"module {modname!r} has no class {clsname!r} ({hint}); name "
                              "the driver class after the colon")
    if not isinstance(obj, type):
        raise InvalidArgument(f"{spec} is a {type(obj).__name__}, not a class; name the "
                              "driver class after the colon")
    try:
        migrate.check_driver(obj)
    except InvalidArgument as exc:
        # check_driver names type(ops), which for a class is "type".
        message = str(exc).replace("driver type ", f"driver {clsname} ", 1)
        raise InvalidArgument(f"{spec}: {message}") from None
    missing = [name for name in ("allocate", "release") if not callable(getattr(obj, name, None))]
    if missing:
        raise InvalidArgument(f"{spec}: driver {clsname} lacks {', '.join(missing)}; a "
                              "pluggable driver needs allocate(npages) -> handle and "
                              "release(handle) (see docs/tutorial-driver.md)")
    try:
        inspect.signature(obj).bind(None)
    except TypeError:
        raise InvalidArgument(f"{spec}: {clsname}{inspect.signature(obj)} cannot be built as "
                              f"{clsname}(m); its constructor must take the machine") from None
    except ValueError:
        pass  # no signature to inspect (a class implemented in C)
    return cast("type[PluggableDriver]", obj)


def driver_pages(m: Machine) -> NDArray[np.intp]:
    """Return every pfn whose mapping is a live driver mapping with PAGE_MAPPING_MOVABLE."""
    mapping = m.mem.mapping
    movable = (mapping & pf.PAGE_MAPPING_FLAGS) == pf.PAGE_MAPPING_MOVABLE
    return np.nonzero(movable & (mapping >> 2 != 0))[0]


# --- the protocol check ---------------------------------------------------------------------


@dataclass
class PhaseResult:
    """One phase of a driver check: the driver's pages after it and what migration did."""

    phase: str
    pages: int
    isolated: int = 0
    migrated: int = 0
    failed: int = 0
    put_back: int = 0


@dataclass
class DriverCheckReport:
    """What :func:`run_driver_check` found; ``problems`` maps each broken rule to a message."""

    driver: str
    machine: str
    phases: list[PhaseResult] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Return whether no rule was broken."""
        return not self.problems

    def fail(self, rule: str, message: str) -> None:
        """Record a broken rule; the first message per rule is kept, the rest counted."""
        self.problems.setdefault(rule, message)
        self.counts[rule] = self.counts.get(rule, 0) + 1


class _ProtocolChecker:
    """Sits between the VM and a driver's a_ops and checks each callback's post-conditions."""

    def __init__(self, report: DriverCheckReport, ops: Any) -> None:
        self.report = report
        self.ops = ops
        self.putbacks = 0

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        ok = self.ops.isolate_page(m, page, mode)
        if not isinstance(ok, bool):
            self.report.fail("isolate-rc", f"isolate_page returned {ok!r}; return True or False")
        return bool(ok)

    def migratepage(self, m: Machine, mapping: AddressSpace, newpage: int, page: int,
                    mode: migrate.MigrateMode) -> int:
        mem, fail = m.mem, self.report.fail
        links = (mem.lru_next_mv[page], mem.lru_prev_mv[page])
        token = mem.token_mv[page]
        rc = self.ops.migratepage(m, mapping, newpage, page, mode)
        if links != (mem.lru_next_mv[page], mem.lru_prev_mv[page]):
            fail("lru", f"migratepage changed page->lru of pfn {page:#x}; the VM owns it "
                 "while the page is isolated")
        if not isinstance(rc, int) or rc > 0:
            fail("migrate-rc", f"migratepage returned {rc!r}; return MIGRATEPAGE_SUCCESS (0), "
                 "-errno.EAGAIN to be retried, or another -errno to give up")
            return -migrate.EBUSY
        if rc == migrate.MIGRATEPAGE_SUCCESS:
            self._check_moved(m, mapping, newpage, page, token)
        else:
            if mem.mapping_mv[newpage] & pf.PAGE_MAPPING_MOVABLE or mem.refcount_mv[newpage] != 1:
                fail("failed-new", f"migratepage returned {rc} but kept newpage {newpage:#x} "
                     "(movable or referenced); touch newpage only once the move will succeed")
            if mem.mapping_mv[page] >> 2 == 0:
                fail("failed-old", f"migratepage returned {rc} but cleared PageMovable on the "
                     "old page; the driver keeps it on failure")
        return int(rc)

    def _check_moved(self, m: Machine, mapping: AddressSpace, newpage: int, page: int,
                     token: int) -> None:
        mem, fail = m.mem, self.report.fail
        if mem.mapping_mv[page] != pf.PAGE_MAPPING_MOVABLE:
            fail("clear-old", f"migratepage succeeded without ClearPageMovable(m, page) on "
                 f"{page:#x}; call it before put_page")
        if mem.mapping_mv[newpage] != mapping.mapping_word | pf.PAGE_MAPPING_MOVABLE:
            fail("set-new", f"migratepage succeeded without SetPageMovable(m, newpage, "
                 f"mapping) on {newpage:#x}")
        if mem.refcount_mv[newpage] < 2:
            fail("get-new", f"migratepage succeeded without get_page(m, newpage) on "
                 f"{newpage:#x}; the VM drops the allocation's reference")
        if mem.refcount_mv[page] != 1:
            fail("put-old", f"after migratepage the old page {page:#x} has "
                 f"{mem.refcount_mv[page]} references, not just the VM's; drop the driver's "
                 "with put_page(m, page)")
        if mem.token_mv[newpage] != token:
            fail("copy", f"migratepage did not copy the contents of {page:#x}: "
                 "m.mem.token_mv[newpage] = m.mem.token_mv[page]")

    def putback_page(self, m: Machine, page: int) -> None:
        self.putbacks += 1
        self.ops.putback_page(m, page)


class _Run:
    """One driver check: a machine, the driver, the checker, and helpers for the phases."""

    def __init__(self, cls: type[PluggableDriver], report: DriverCheckReport, m: Machine) -> None:
        self.m = m
        self.report = report
        self.driver = cast("Any", cls)(m)
        self.checked: list[tuple[AddressSpace, _ProtocolChecker]] = []

    def interpose(self) -> None:
        """Put a checker in front of the a_ops of every mapping the driver's pages use."""
        m = self.m
        for owner in sorted({int(w) >> 2 for w in m.mem.mapping[driver_pages(m)]}):
            space = m.mappings.get(owner)
            if isinstance(space, AddressSpace):
                checker = _ProtocolChecker(self.report, space.a_ops)
                space.a_ops = checker
                self.checked.append((space, checker))

    def restore(self) -> None:
        for space, checker in self.checked:
            space.a_ops = checker.ops

    def putbacks(self) -> int:
        return sum(checker.putbacks for _, checker in self.checked)

    def tokens(self) -> NDArray[np.uint32]:
        return np.sort(self.m.mem.token[driver_pages(self.m)])

    def isolate_all(self) -> tuple[int, int]:
        m = self.m
        head = m.alloc_list_head()
        n = 0
        for pfn in driver_pages(m).tolist():
            if migrate.isolate_movable_page(m, pfn, migrate.ISOLATE_ASYNC_MIGRATE):
                m.mem.list_add_tail(pfn, head)
                n += 1
        return head, n

    def list_len(self, head: int, limit: int) -> int:
        return sum(1 for _ in itertools.islice(self.m.mem.list_entries(head), limit + 1))

    def migrate(self, phase: str, head: int, isolated: int) -> PhaseResult:
        m = self.m

        def new_page(old: int) -> int:
            return m.alloc_page_raw(GFP_HIGHUSER_MOVABLE, 0, m.page_zone(old).node)

        rc, stats = migrate.migrate_pages(m, head, new_page, None,
                                          migrate.MigrateMode.MIGRATE_ASYNC,
                                          migrate.MigrateReason.MR_COMPACTION)
        left = self.list_len(head, isolated)
        if rc:
            migrate.putback_movable_pages(m, head)
        m.release_list_head(head)
        return PhaseResult(phase, len(driver_pages(m)), isolated, stats.nr_succeeded,
                           stats.nr_failed_pages, left)

    def settle(self, phase: str) -> None:
        m = self.m
        m.check_state()
        for key, message in m.warnings.items():
            if f"warn-{key}" not in self.report.problems:
                self.report.fail(f"warn-{key}", f"{phase}: {message}")
        stuck = [pfn for pfn in driver_pages(m).tolist() if pf.PageIsolated(m.mem, pfn)]
        if stuck:
            self.report.fail("stuck", f"{phase}: {len(stuck)} pages still PG_isolated after "
                             f"migration, first {m.mem.dump_page(stuck[0])}")


def run_driver_check(cls: type[PluggableDriver], *, spec: str = "", memory: str = "256M",
                     objects: int = 4, pages: int = 16, seed: int = 0) -> DriverCheckReport:
    """Run a pluggable driver through the protocol on a fresh machine and report.

    Phases: allocate ``objects`` handles of ``pages`` pages; isolate every driver page and
    migrate it (contents must survive, nothing may fail on an idle machine); isolate and put
    everything back (the driver must take pages back); isolate everything, release one handle
    while isolated, migrate (the VM must free the released pages); release the rest (every
    page must return to the buddy allocator). check_state runs after each phase. A kernel
    BUG raised on the driver's behalf ends the check; the driver's own exceptions propagate.
    """
    from pagelab.machine import Machine

    if objects < 1 or pages < 1:
        raise InvalidArgument(f"objects={objects}, pages={pages}: give at least 1 of each")
    m = Machine.build(memory=memory, seed=seed)
    report = DriverCheckReport(spec or cls.__name__, repr(m))
    run = _Run(cls, report, m)
    try:
        _phases(run, objects, pages)
    except StateCheckFailed as exc:
        report.fail("state", _one_line(str(exc)))
    except ModelBug as exc:
        report.fail("bug", f"kernel BUG on the driver's behalf: {_one_line(str(exc))}")
    finally:
        run.restore()
    return report


def _phases(run: _Run, objects: int, pages: int) -> None:
    m, report, fail = run.m, run.report, run.report.fail
    m.drain_all_pages()
    free_before = sum(z.vm_stat[vs.NR_FREE_PAGES] for z in m.zones)
    handles = [run.driver.allocate(pages) for _ in range(objects)]
    found = len(driver_pages(m))
    report.phases.append(PhaseResult("allocate", found))
    if any(h is None for h in handles) or found != objects * pages:
        fail("allocate", f"{objects} x allocate({pages}) made {found} movable pages; make "
             "every page movable with SetPageMovable(m, pfn, mapping) under the page lock")
        return
    run.interpose()
    run.settle("allocate")

    before = run.tokens()
    head, n = run.isolate_all()
    result = run.migrate("migrate", head, n)
    report.phases.append(result)
    if n == 0:
        fail("isolate", "isolate_page refused every page of an idle driver")
    if result.failed or result.migrated != n:
        fail("migrate", f"{result.failed} of {n} isolated pages failed to migrate on an idle "
             "machine")
    if not np.array_equal(before, run.tokens()):
        fail("contents", "the driver's contents (tokens) changed during migration")
    run.settle("migrate")

    head, n = run.isolate_all()
    calls = run.putbacks()
    migrate.putback_movable_pages(m, head)
    m.release_list_head(head)
    put_back = run.putbacks() - calls
    head, again = run.isolate_all()
    migrate.putback_movable_pages(m, head)
    m.release_list_head(head)
    report.phases.append(PhaseResult("putback", len(driver_pages(m)), n, 0, 0, put_back))
    if put_back != n or again != n:
        fail("putback", f"{n} pages put back, {put_back} reached putback_page and {again} "
             "could be isolated again; putback_page must take each page back")
    run.settle("putback")

    head, n = run.isolate_all()
    run.driver.release(handles.pop(0))
    if run.list_len(head, n) != n:
        fail("release-lru", "release changed page->lru of an isolated page; the VM owns it")
        return
    released = [p for p in m.mem.list_entries(head) if m.mem.refcount_mv[p] == 1]
    if len(released) != pages:
        fail("release-ref", f"release dropped {len(released)} of {pages} isolated pages' "
             "references; put_page each page once")
    if any(m.mem.mapping_mv[p] != pf.PAGE_MAPPING_MOVABLE for p in released):
        fail("release-clear", "release dropped an isolated page without ClearPageMovable; lock "
             "the page, ClearPageMovable, unlock, then put_page")
    report.phases.append(run.migrate("release isolated", head, n))
    run.settle("release isolated")

    for handle in handles:
        run.driver.release(handle)
    m.drain_all_pages()
    leaked = free_before - sum(z.vm_stat[vs.NR_FREE_PAGES] for z in m.zones)
    report.phases.append(PhaseResult("release all", len(driver_pages(m))))
    if leaked or len(driver_pages(m)):
        fail("leak", f"after releasing everything {leaked} pages are not free and "
             f"{len(driver_pages(m))} are still movable; release and migratepage must "
             "put_page every page they let go")
    run.settle("release all")
