"""Configuration keys for the explorer's state hashing: memory, drivers and every CPU's stack.

Two runs that reach a preemption point in the same *configuration* continue identically under
the same choices, so the exhaustive search explores the subtree below such a point once (per
preemption budget). A configuration is everything a run's future depends on:

* the machine's memory state: the ``struct page`` columns, zones, per-CPU pagesets, nodes,
  allocations (the :class:`~pagelab.sched.explorer.StateCheckCache` key), and every other
  attribute of the machine (owners of mappings, list-head pool, lock owners, warnings, the
  virtual clock, processes);
* the scenario's context (drivers and their lists, buffers, pools);
* each CPU's program position: for every frame of its thread, the code object, the instruction
  offset (``f_lasti``) and the local variables, and the number of preemption points it has
  passed (a loop's iterator lives on the frame's value stack, which Python does not show; the
  count tells two passes over the same element apart).

Everything is serialised by one pickler, so that a CPU's local variable that refers to a zone
or a driver is written as a reference to the same object in the machine's state, and equal
bytes mean equal configurations. Whatever cannot be serialised faithfully (a closure, a
generator, an unknown C object) makes the key ``None``: that point is never pruned.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["configuration_key"]

#: Machine attributes covered by the memory key, static after boot, or the explorer's hooks.
_MACHINE_SKIP = frozenset({
    "mem", "zones", "nodes", "pageblock_flags", "pageblock_flags_mv", "present",
    "section_valid", "preempt", "wait", "_zonelists", "alloc_prep_cache", "_zone_table",
    "profile", "cost", "ranges", "reservations", "node_cpus", "_allocations", "held_chunks",
})


class _Unkeyable(Exception):
    """The configuration holds something that cannot be serialised faithfully."""


class _KeyPickler(pickle.Pickler):
    """Pickles a configuration; the machine and its big columns become named references."""

    def __init__(self, buf: io.BytesIO, m: Machine) -> None:
        super().__init__(buf, protocol=pickle.HIGHEST_PROTOCOL)
        self.refs: dict[int, str] = {id(m): "machine", id(m.mem): "mem"}
        for name, value in vars(m.mem).items():
            if isinstance(value, np.ndarray | memoryview):
                self.refs[id(value)] = f"mem.{name}"
        for i, zone in enumerate(m.zones):
            self.refs[id(zone)] = f"zone{i}"  # zones' state is in the memory key
        for i, node in enumerate(m.nodes):
            self.refs[id(node)] = f"node{i}"

    def persistent_id(self, obj: Any) -> str | None:
        return self.refs.get(id(obj))

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is types.FunctionType:
            return _reduce_function(obj)
        if kind is memoryview:
            return _reduce_memoryview(obj)
        if kind in _UNKEYABLE:
            raise _Unkeyable(kind.__name__)
        return NotImplemented


_UNKEYABLE = (types.GeneratorType, types.FrameType, types.CoroutineType)


def _reduce_function(fn: types.FunctionType) -> Any:
    # A function is its code; a closure also its captured values.
    cells = tuple(c.cell_contents for c in fn.__closure__ or ())
    return tuple, ((fn.__module__, fn.__qualname__, id(fn.__code__), cells),)


def _reduce_memoryview(view: memoryview) -> Any:
    if not isinstance(view.obj, np.ndarray):
        raise _Unkeyable("memoryview")
    return tuple, ((view.format, view.obj),)


def _frames(thread_id: int | None, stop: types.CodeType) -> list[tuple[Any, ...]]:
    """Return (code, f_lasti, locals) for each frame of a thread's program, outermost first."""
    if thread_id is None:
        return []
    frame = sys._current_frames().get(thread_id)
    out: list[tuple[Any, ...]] = []
    skip = (stop.co_filename, __file__)
    while frame is not None and frame.f_code is not stop:
        code = frame.f_code
        if code.co_filename in skip or code.co_filename.endswith("threading.py"):
            frame = frame.f_back  # the scheduler's own frames: the same at every point
            continue
        out.append((id(code), frame.f_lasti, dict(frame.f_locals)))
        frame = frame.f_back
    out.reverse()
    return out


def configuration_key(m: Machine, ctx: Any, memory_key: tuple[Any, ...],
                      cpus: list[tuple[int | None, bool, Any, int]],
                      stop: types.CodeType, current: int) -> bytes | None:
    """Return the key of the configuration, or None when it cannot be keyed faithfully.

    ``cpus``: per CPU, (thread id, done, what it waits for, preemption points passed);
    ``stop``: the code object of the explorer's thread body (frames below it are the program).
    """
    rest = {k: v for k, v in vars(m).items() if k not in _MACHINE_SKIP}
    stacks = [(done, blocked, steps, _frames(tid, stop) if not done else [])
              for tid, done, blocked, steps in cpus]
    buf = io.BytesIO()
    try:
        _KeyPickler(buf, m).dump((memory_key, rest, ctx, stacks, current))
    except (_Unkeyable, pickle.PicklingError, TypeError, AttributeError, ValueError):
        return None
    return buf.getvalue()
