"""The schedule explorer: several CPUs over the same model code, every interleaving that matters.

Each CPU runs a program (a function of the machine) on its own thread, but only one thread
runs at a time: the model's preemption points (``m.preempt(what, pfn)``, called by the page
lock, reference counts, the LRU lock and drivers' locks) hand a baton to whichever CPU the
schedule picks next. ``m.wait(what, pfn)`` (``lock_page`` on a locked page, a migration entry)
blocks the CPU until the page changes. No second copy of the protocol exists: the CPUs run
the ordinary functions of :mod:`pagelab.mm`.

A schedule is the list of CPU ids chosen at each preemption point. Strategies:

* ``exhaustive(bound)``: every schedule with at most ``bound`` preemptions (CHESS,
  Musuvathi & Qadeer 2007): switching away from a CPU that could go on counts one;
  switching because the CPU blocked or finished is free.
* ``random(n, seed)``: ``n`` seeded random schedules.
* Hypothesis (``explore_hypothesis``): schedules drawn and shrunk by Hypothesis, so a failure
  is reported as a short schedule.

After every step the explorer runs the scenario's checks (``check_state()`` by default) and
records any exception (``VM_BUG_ON_PAGE``, ``bad_page``, a failed check), any WARN_ON_ONCE,
deadlocks (every unfinished CPU blocked) and runs that exceed the step limit (livelock).
"""

from __future__ import annotations

import copyreg
import io
import pickle
import random as _random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pagelab.errors import InvalidArgument
from pagelab.mm import page_flags as pf

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["Finding", "RunResult", "Scenario", "Step", "explore", "run_schedule"]

Program = Callable[["Machine"], None]


@dataclass
class Scenario:
    """What to explore: how to set up a machine, what each CPU runs, and what to check.

    ``setup`` builds and prepares a fresh machine and returns it together with a context
    object handed to every program and check (the pages and drivers the scenario uses).
    ``programs`` are the CPUs' code, ``checks`` run after every step (each returns a list of
    problems), ``final_checks`` when all CPUs have finished.
    """

    name: str
    setup: Callable[[], tuple[Machine, Any]]
    programs: list[Callable[[Machine, Any], None]]
    checks: list[Callable[[Machine, Any], list[str]]] = field(default_factory=list)
    final_checks: list[Callable[[Machine, Any], list[str]]] = field(default_factory=list)
    check_state_every_step: bool = True
    description: str = ""
    #: Restore a pickled copy of the prepared machine for each run instead of calling
    #: ``setup`` again (about 1 ms instead of 5). Only for scenarios whose state lives wholly
    #: in ``(machine, context)``: a driver that keeps module-level registries keyed by the
    #: machine would not see the copy. Falls back to ``setup`` when the state cannot be
    #: pickled (closures).
    snapshot: bool = True
    _snapshot_blob: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _snapshot_failed: bool = field(default=False, init=False, repr=False, compare=False)

    def fresh(self) -> tuple[Machine, Any]:
        """Return a freshly prepared machine and context (from the snapshot when possible)."""
        if not self.snapshot or self._snapshot_failed:
            return self.setup()
        if self._snapshot_blob is None:
            m, ctx = self.setup()
            try:
                self._snapshot_blob = _dump_state(m, ctx)
            except (pickle.PicklingError, TypeError, AttributeError):
                self._snapshot_failed = True
            return m, ctx
        m, ctx = pickle.loads(self._snapshot_blob)
        return m, ctx


def _memoryview_of(array: np.ndarray, fmt: str) -> memoryview:
    view = array.data
    return view if view.format == fmt else view.cast(fmt)  # type: ignore[call-overload]


def _reduce_memoryview(view: memoryview) -> tuple[Any, tuple[Any, ...]]:
    # The model's ``*_mv`` views are views of its numpy columns: rebuild them over the copy.
    if not isinstance(view.obj, np.ndarray):
        raise pickle.PicklingError("a memoryview that is not over a numpy array")
    return _memoryview_of, (view.obj, view.format)


class _StatePickler(pickle.Pickler):
    def __init__(self, buf: io.BytesIO) -> None:
        super().__init__(buf, protocol=pickle.HIGHEST_PROTOCOL)
        self.dispatch_table = {**copyreg.dispatch_table, memoryview: _reduce_memoryview}


def _dump_state(m: Machine, ctx: Any) -> bytes:
    buf = io.BytesIO()
    _StatePickler(buf).dump((m, ctx))
    return buf.getvalue()


@dataclass(frozen=True)
class Step:
    """One preemption point reached: which CPU, where, about which page, and its state."""

    cpu: int
    what: str
    pfn: int
    page: str


@dataclass(frozen=True)
class Finding:
    """Something the explorer found wrong in one run."""

    kind: str  # "bug" (an exception), "check", "warn", "deadlock", "livelock"
    message: str
    cpu: int | None = None


@dataclass
class RunResult:
    """One run under one schedule."""

    schedule: list[int]
    steps: list[Step]
    findings: list[Finding]
    decisions: list[tuple[int, tuple[int, ...]]]  # (current cpu, enabled cpus) per point
    #: The decision at which the run stopped because its configuration was already explored.
    pruned_at: int | None = None

    @property
    def failed(self) -> bool:
        """Whether the run found anything."""
        return bool(self.findings)


_ZONE_REFS = frozenset({"machine", "mem", "node_zones", "per_cpu_pageset"})


def _pcp_state(pcp: Any) -> dict[str, Any]:
    # Deques pickle through copyreg (slow); their contents as tuples say the same.
    state = dict(vars(pcp))
    state["lists"] = [tuple(q) for q in pcp.lists]
    return state


class StateCheckCache:
    """States whose ``check_state(owners=False)`` already passed, kept exactly (no hashing).

    Exhaustive exploration reaches the same memory state again and again (balloon_deflate at
    bound 2: ~10,000 per-step checks, ~300 distinct states), so the full check runs once per
    distinct state. The key is a superset of what :func:`pagelab.mm.debug.check_state` reads:
    every ``struct page`` column and list head (as the positions and values that differ from
    the first state seen), the pageblock bits, every attribute of every zone, per-CPU
    pageset and node, the blocks allocated through the machine, the held chunks and the extra
    owners' pages. Equal keys mean equal inputs, so the check would pass again.
    """

    def __init__(self) -> None:
        self.passed: set[tuple[Any, ...]] = set()
        self.hits = 0
        self.misses = 0
        self._base: dict[str, np.ndarray] | None = None
        self._masks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.last_key: tuple[Any, ...] | None = None

    def _buffers(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        buffers = self._masks.get(length)
        if buffers is None:
            buffers = self._masks[length] = (np.zeros(length, dtype=np.bool_),
                                             np.zeros(length, dtype=np.bool_))
        return buffers

    def key(self, m: Machine) -> tuple[Any, ...]:
        """Return the exact key of ``m``'s check_state inputs."""
        columns = [(name, value) for name, value in vars(m.mem).items()
                   if isinstance(value, np.ndarray)]
        columns.append(("pageblock_flags", m.pageblock_flags))
        if self._base is None:
            self._base = {name: col.copy() for name, col in columns}
        base = self._base
        parts: list[Any] = []
        # One mask of changed positions per column length (the page columns; the list links
        # with their heads; the pageblock bits), then the changed values of each column.
        groups: dict[int, list[tuple[str, np.ndarray]]] = {}
        for name, col in columns:
            old = base.get(name)
            if old is None or old.shape != col.shape or old.dtype != col.dtype:
                parts.append((name, col.tobytes()))
            else:
                groups.setdefault(len(col), []).append((name, col))
        for length, group in groups.items():
            mask, tmp = self._buffers(length)
            mask.fill(False)
            for name, col in group:
                np.not_equal(col, base[name], out=tmp)
                mask |= tmp
            where = np.flatnonzero(mask)
            parts.append(where.tobytes())
            parts.extend(col[where].tobytes() for _, col in group)
        # Plain Python data (ints, lists, deques, the pcp dataclasses): pickled, so that equal
        # bytes mean equal values.
        python_state = (
            [({k: v for k, v in vars(zone).items() if k not in _ZONE_REFS},
              [_pcp_state(pcp) for pcp in zone.per_cpu_pageset])
             for zone in m.zones if zone.spanned_pages],  # check_state skips empty zones
            [{k: v for k, v in vars(node).items() if k not in _ZONE_REFS} for node in m.nodes],
            m.allocations(), m.held_chunks, m.extra_owned_pages(),
        )
        parts.append(pickle.dumps(python_state, protocol=pickle.HIGHEST_PROTOCOL))
        return tuple(parts)

    def check_state(self, m: Machine) -> None:
        """Run ``m.check_state(owners=False)`` unless these inputs already passed it."""
        key = self.last_key = self.key(m)
        if key in self.passed:
            self.hits += 1
            return
        self.misses += 1
        m.check_state(owners=False)
        self.passed.add(key)


class Visited:
    """Configurations already explored, with the preemption budget they were explored with.

    A run that reaches a configuration (:func:`pagelab.sched.statehash.configuration_key`)
    already explored with at least the budget it has left would only repeat that subtree, so
    it stops there (``RunResult.pruned_at``) and the search does not branch below it.
    """

    def __init__(self) -> None:
        self.budget: dict[bytes, int] = {}
        self.pruned = 0
        self.unkeyable = 0


class _Abort(BaseException):
    """Raised in a CPU thread to unwind it when the run is over."""


class _Cpu:
    def __init__(self, cpu_id: int) -> None:
        self.id = cpu_id
        self.sem = threading.Semaphore(0)
        self.done = False
        self.blocked: tuple[str, int] | None = None
        self.points = 0  # preemption points passed
        self.ready: Callable[[], bool] | None = None
        self.thread: threading.Thread | None = None


class _Run:
    """The machinery of one run: CPUs, the baton, the schedule being followed."""

    def __init__(self, scenario: Scenario, choose: Callable[[int, int, tuple[int, ...]], int],
                 max_steps: int, record_pages: bool, checked_upto: int = -1,
                 cache: StateCheckCache | None = None, visited: Visited | None = None,
                 bound: int = 0) -> None:
        self.scenario = scenario
        self.visited = visited
        self.bound = bound
        self.preemptions = 0
        self.pruned_at: int | None = None
        self.choose = choose
        self.max_steps = max_steps
        self.record_pages = record_pages
        #: Decisions 0..checked_upto replay a run whose checks all passed there: runs are
        #: deterministic functions of their schedule, so the states before those decisions
        #: are the ones already checked, and their per-step checks are not repeated.
        self.checked_upto = checked_upto
        self.cache = cache
        self.m, self.ctx = scenario.fresh()
        self.cpus = [_Cpu(i) for i in range(len(scenario.programs))]
        if len(self.cpus) > self.m.nr_cpus:
            raise InvalidArgument(f"scenario {scenario.name} runs {len(self.cpus)} CPUs on a "
                                  f"machine with {self.m.nr_cpus}; build it with more cpus")
        self.current = 0
        self.schedule: list[int] = []
        self.decisions: list[tuple[int, tuple[int, ...]]] = []
        self.steps: list[Step] = []
        self.findings: list[Finding] = []
        self.finished = threading.Event()
        self.aborting = False

    # --- hooks installed on the machine ------------------------------------------------------

    def preempt(self, what: str, pfn: int) -> None:
        if self.aborting:
            raise _Abort
        cpu = self.cpus[self.current]
        self._record(cpu.id, what, pfn)
        if len(self.decisions) > self.checked_upto:
            self._check_step()
            # With no budget left the rest of the run has no alternatives: nothing to save.
            if self.visited is not None and self.preemptions < self.bound:
                self._prune_if_visited(cpu)
        self._switch(cpu)

    def wait(self, what: str, pfn: int, ready: Callable[[], bool] | None = None) -> None:
        if self.aborting:
            raise _Abort
        cpu = self.cpus[self.current]
        cpu.blocked = (what, pfn)
        cpu.ready = ready
        self._record(cpu.id, f"wait:{what}", pfn)
        self._switch(cpu)

    # --- scheduling ------------------------------------------------------------------------

    def _prune_if_visited(self, cpu: _Cpu) -> None:
        from pagelab.sched.statehash import configuration_key

        assert self.visited is not None
        memory_key = self.cache.last_key if self.cache is not None else None
        if memory_key is None:
            memory_key = StateCheckCache().key(self.m)
        cpus = [(c.thread.ident if c.thread is not None else None, c.done, c.blocked,
                 c.points) for c in self.cpus]
        key = configuration_key(self.m, self.ctx, memory_key, cpus, _Run._body.__code__,
                                cpu.id)
        if key is None:
            self.visited.unkeyable += 1
            return
        left = self.bound - self.preemptions
        seen = self.visited.budget.get(key)
        if seen is not None and seen >= left:
            self.visited.pruned += 1
            self.pruned_at = len(self.decisions)
            self._abort()
            raise _Abort
        self.visited.budget[key] = left

    def _runnable(self, cpu: _Cpu) -> bool:
        if cpu.done:
            return False
        if cpu.blocked is None:
            return True
        what, pfn = cpu.blocked
        if cpu.ready is not None:
            return cpu.ready()
        if what == "page_lock":
            return not self.m.mem.flags_mv[pfn] & (1 << pf.PG_locked)
        return True  # other waits re-check their condition when they run again

    def _switch(self, cpu: _Cpu) -> None:
        enabled = tuple(c.id for c in self.cpus if self._runnable(c))
        if not enabled:
            if all(c.done for c in self.cpus):
                self.finished.set()
                return
            waits = ", ".join(f"cpu{c.id} waits for {c.blocked[0]} on pfn {c.blocked[1]:#x}"
                              for c in self.cpus if c.blocked is not None and not c.done)
            self.findings.append(Finding("deadlock", f"every CPU is blocked: {waits}"))
            self._abort()
            raise _Abort
        if len(self.steps) > self.max_steps:
            self.findings.append(Finding("livelock", f"no end after {self.max_steps} steps"))
            self._abort()
            raise _Abort
        current = cpu.id if not cpu.done else -1
        nxt = self.choose(len(self.decisions), current, enabled)
        if nxt not in enabled:
            nxt = enabled[0]
        self.decisions.append((current, enabled))
        self.schedule.append(nxt)
        if current in enabled and nxt != current:
            self.preemptions += 1
        if nxt == cpu.id:
            cpu.blocked = None
            return
        self._hand_to(nxt)
        if not cpu.done:
            cpu.sem.acquire()
            if self.aborting:
                raise _Abort
            cpu.blocked = None

    def _hand_to(self, nxt: int) -> None:
        self.current = nxt
        self.m.cpu = nxt
        target = self.cpus[nxt]
        target.blocked = None
        target.sem.release()

    def _abort(self) -> None:
        self.aborting = True
        for c in self.cpus:
            c.sem.release()
        self.finished.set()

    # --- steps and checks ------------------------------------------------------------------

    def _record(self, cpu: int, what: str, pfn: int) -> None:
        self.cpus[cpu].points += 1
        page = ""
        if self.record_pages and 0 <= pfn < self.m.mem.nr_pfns:
            page = self.m.mem.dump_page(pfn)
        self.steps.append(Step(cpu, what, pfn, page))

    def _check_step(self) -> None:
        problems: list[str] = []
        if self.scenario.check_state_every_step:
            try:
                if self.cache is not None:
                    self.cache.check_state(self.m)
                else:
                    self.m.check_state(owners=False)
            except Exception as exc:
                problems.append(f"{type(exc).__name__}: {exc}")
        for check in self.scenario.checks:
            problems.extend(check(self.m, self.ctx))
        if problems:
            self.findings.append(Finding("check", "; ".join(problems), self.current))
            self._abort()
            raise _Abort

    # --- threads ---------------------------------------------------------------------------

    def _body(self, cpu: _Cpu, program: Callable[[Machine, Any], None]) -> None:
        cpu.sem.acquire()
        try:
            if self.aborting:
                return
            program(self.m, self.ctx)
        except _Abort:
            return
        except Exception as exc:  # a kernel assertion or a driver bug: the finding
            if self.aborting:
                return  # raised while unwinding a run already over (a finally clause)
            self.findings.append(Finding("bug", f"{type(exc).__name__}: {exc}", cpu.id))
            self._abort()
            return
        cpu.done = True
        cpu.blocked = None
        if self.aborting:
            return
        try:
            self._switch(cpu)
        except _Abort:
            return

    def run(self) -> RunResult:
        m = self.m
        m.preempt = self.preempt
        m.wait = self.wait  # type: ignore[method-assign]
        for cpu, program in zip(self.cpus, self.scenario.programs, strict=True):
            cpu.thread = threading.Thread(target=self._body, args=(cpu, program), daemon=True,
                                          name=f"pagelab-cpu{cpu.id}")
            cpu.thread.start()
        first = self.choose(0, -1, tuple(c.id for c in self.cpus))
        self.decisions.append((-1, tuple(c.id for c in self.cpus)))
        self.schedule.append(first)
        self._hand_to(first)
        self.finished.wait()
        for cpu in self.cpus:
            if cpu.thread is not None:
                cpu.thread.join(timeout=5)
        m.preempt = None
        del m.wait  # back to the class's sequential wait
        if not self.findings and self.pruned_at is None:
            self._final_checks()
        for key, message in m.warnings.items():
            self.findings.append(Finding("warn", f"{key}: {message}"))
        return RunResult(self.schedule, self.steps, self.findings, self.decisions,
                         self.pruned_at)

    def _final_checks(self) -> None:
        problems: list[str] = []
        try:
            self.m.check_state()
        except Exception as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
        for check in self.scenario.final_checks + self.scenario.checks:
            problems.extend(check(self.m, self.ctx))
        if problems:
            self.findings.append(Finding("check", "; ".join(problems)))


def run_schedule(scenario: Scenario, schedule: list[int], max_steps: int = 20_000,
                 record_pages: bool = False, checked_upto: int = -1,
                 cache: StateCheckCache | None = None, visited: Visited | None = None,
                 bound: int = 0) -> RunResult:
    """Run ``scenario`` following ``schedule`` (then without preemption once it runs out).

    ``checked_upto``: the per-step checks before decisions ``0..checked_upto`` already passed
    in an earlier run with the same schedule prefix (the exhaustive search's parent run), so
    they are skipped; the final checks always run. ``cache``: states whose check_state
    already passed in this exploration. ``visited``: configurations already explored (with
    the preemption ``bound`` of the search), to stop at.
    """

    def choose(i: int, current: int, enabled: tuple[int, ...]) -> int:
        if i < len(schedule):
            return schedule[i]
        return current if current in enabled else enabled[0]

    return _Run(scenario, choose, max_steps, record_pages, checked_upto, cache, visited,
                bound).run()


def _preemptions(decisions: list[tuple[int, tuple[int, ...]]], schedule: list[int]) -> int:
    return sum(1 for (cur, enabled), nxt in zip(decisions, schedule, strict=False)
               if cur in enabled and nxt != cur)


@dataclass
class ExploreResult:
    """What an exploration found: counts and the first failing run, if any."""

    scenario: str
    strategy: str
    schedules: int
    failure: RunResult | None
    bound: int | None = None
    seconds: float = 0.0
    #: Runs stopped early at a configuration already explored (state hashing); each is
    #: also counted in ``schedules``.
    pruned: int = 0


def exhaustive(scenario: Scenario, bound: int, max_schedules: int = 1_000_000,
               max_steps: int = 20_000, check_cache: bool = True,
               state_hashing: bool = False, visited: Visited | None = None,
               ) -> Iterator[RunResult]:
    """Yield runs of every schedule with at most ``bound`` preemptions (depth-first).

    ``check_cache``: run ``check_state`` once per distinct state (:class:`StateCheckCache`).
    ``state_hashing``: stop a run where it reaches a configuration already explored with at
    least the budget it has left (:class:`Visited`); its subtree is not explored twice.
    """
    if bound < 0:
        raise InvalidArgument(f"preemption bound {bound}: give 0 or more")
    cache = StateCheckCache() if check_cache else None
    if state_hashing and visited is None:
        visited = Visited()
    if not state_hashing:
        visited = None
    stack: list[list[int]] = [[]]
    seen = 0
    while stack and seen < max_schedules:
        prefix = stack.pop()
        # Every run but the first branches off a run that passed its checks up to the
        # decision it changes (the last of the prefix).
        result = run_schedule(scenario, prefix, max_steps, checked_upto=len(prefix) - 1,
                              cache=cache, visited=visited, bound=bound)
        seen += 1
        yield result
        if result.failed:
            continue
        decisions = result.decisions
        sched = result.schedule
        for i in range(len(decisions) - 1, len(prefix) - 1, -1):
            _current, enabled = decisions[i]
            for alt in enabled:
                if alt == sched[i]:
                    continue
                new = [*sched[:i], alt]
                if _preemptions(decisions, new) <= bound:
                    stack.append(new)


def random_schedules(scenario: Scenario, count: int, seed: int,
                     max_steps: int = 20_000) -> Iterator[RunResult]:
    """Yield ``count`` runs under seeded random schedules."""
    rng = _random.Random(seed)
    cache = StateCheckCache()
    for _ in range(count):
        def choose(i: int, current: int, enabled: tuple[int, ...]) -> int:
            return enabled[rng.randrange(len(enabled))]

        yield _Run(scenario, choose, max_steps, False, cache=cache).run()


def explore(scenario: Scenario, strategy: str = "exhaustive", bound: int = 2,
            count: int = 1000, seed: int = 0, state_hashing: bool = False) -> ExploreResult:
    """Explore ``scenario``; stop at the first failing schedule.

    ``state_hashing`` (exhaustive only): do not explore a configuration's subtree twice.
    """
    import time

    t0 = time.perf_counter()
    visited = Visited() if state_hashing else None
    if strategy == "exhaustive":
        runs: Iterator[RunResult] = exhaustive(scenario, bound, state_hashing=state_hashing,
                                               visited=visited)
    elif strategy == "random":
        runs = random_schedules(scenario, count, seed)
    elif strategy == "hypothesis":
        return explore_hypothesis(scenario, max_examples=count, seed=seed)
    else:
        raise InvalidArgument(f"unknown strategy {strategy!r}; use exhaustive, random or "
                              "hypothesis")
    n = 0
    failure = None
    for result in runs:
        n += 1
        if result.failed:
            failure = result
            break
    pruned = visited.pruned if visited is not None and strategy == "exhaustive" else 0
    return ExploreResult(scenario.name, strategy, n, failure,
                         bound if strategy == "exhaustive" else None,
                         time.perf_counter() - t0, pruned)


def format_schedule(scenario: Scenario, result: RunResult) -> str:
    """Return a failing run as a short replay file: scenario, schedule, findings (JSON)."""
    import json

    return json.dumps({
        "scenario": scenario.name,
        "schedule": result.schedule,
        "findings": [f"{f.kind}: {f.message}" for f in result.findings],
    }, indent=1) + "\n"


def parse_replay(text: str) -> tuple[str, list[int]]:
    """Read a replay file written by :func:`format_schedule`; return (scenario, schedule)."""
    import json

    from pagelab.errors import BadInput

    try:
        data = json.loads(text)
        name = data["scenario"]
        schedule = data["schedule"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"not a pagelab replay file ({exc}); give a file written by "
                       "'pagelab explore ... --save FILE'") from None
    if not isinstance(name, str) or not isinstance(schedule, list) or not all(
            isinstance(c, int) and c >= 0 for c in schedule):
        raise BadInput("replay file: 'scenario' must be a name and 'schedule' a list of CPU "
                       "numbers; give a file written by 'pagelab explore ... --save FILE'")
    return name, schedule


def describe_run(result: RunResult) -> list[str]:
    """Return the steps of a run as lines a reader can follow: which CPU did what, where."""
    lines = []
    previous_cpu = None
    for i, step in enumerate(result.steps):
        switch = "" if step.cpu == previous_cpu else "  <- switch"
        previous_cpu = step.cpu
        where = f" pfn {step.pfn:#x}" if step.pfn >= 0 else ""
        lines.append(f"{i:4d}  cpu{step.cpu}  {step.what}{where}{switch}")
        if step.page:
            lines.append(f"            {step.page}")
    for finding in result.findings:
        who = f" on cpu{finding.cpu}" if finding.cpu is not None else ""
        lines.append(f"FINDING ({finding.kind}{who}): {finding.message}")
    return lines


def explore_hypothesis(scenario: Scenario, max_examples: int = 200,
                       max_choices: int = 200, seed: int = 0) -> ExploreResult:
    """Draw schedules with Hypothesis; a failure is shrunk to a short schedule.

    Hypothesis draws the list of CPU choices (the rest of a run continues without
    preemption, as in :func:`run_schedule`), so a failing schedule is reported after
    shrinking: fewer choices, smaller CPU numbers. Needs the ``hypothesis`` package (a
    ``dev`` dependency).
    """
    import time

    try:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as hseed
        from hypothesis import strategies as st
    except ImportError as exc:  # pragma: no cover - hypothesis ships with the dev extra
        from pagelab.errors import BadConfiguration

        raise BadConfiguration("the hypothesis strategy needs the hypothesis package: "
                               "pip install 'pagelab[dev]'") from exc
    nr_cpus = len(scenario.programs)
    cache = StateCheckCache()
    count = [0]
    last_failure: list[RunResult] = []

    @hseed(seed)
    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.generate, Phase.shrink])
    @given(st.lists(st.integers(0, nr_cpus - 1), max_size=max_choices))
    def run(schedule: list[int]) -> None:
        count[0] += 1
        result = run_schedule(scenario, schedule, cache=cache)
        if result.failed:
            last_failure[:] = [result]
            raise AssertionError(result.findings[0].message)

    t0 = time.perf_counter()
    failure = None
    try:
        run()
    except AssertionError:
        failure = last_failure[0] if last_failure else None
    return ExploreResult(scenario.name, "hypothesis", count[0], failure, None,
                         time.perf_counter() - t0)
