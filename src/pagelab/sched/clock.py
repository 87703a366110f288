"""Virtual time: the clock trace events are stamped with, and what each kernel operation costs.

The model does no real work in kernel time, so it keeps a :class:`VirtualClock` (integer
nanoseconds, like the ftrace ``local`` clock it stands in for) and advances it by the cost of
each modelled operation, taken from a :class:`CostModel`. Compaction code charges the clock as
the kernel spends time::

    clock.advance(cost.migrate_scan_pfn * nr_scanned + cost.isolate_page * nr_taken)

or, equivalently, ``clock.charge(cost.migrate_scan_pfn, nr_scanned)``.

The default costs were measured on a real Linux 6.18 kernel; see :class:`CostModel` and
``bench/calibration.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Final

from pagelab.errors import InvalidArgument

__all__ = ["DEFAULT_COST_MODEL", "CostModel", "VirtualClock"]


class VirtualClock:
    """A monotonic nanosecond clock that only moves when the model says so.

    ``now_ns`` is a plain attribute (read it directly on hot paths). It starts at ``start_ns``
    (default 0; a real trace's timestamps count from boot, so pass e.g. ``1_000 * 10**9`` to
    make a trace look like one taken 1000 s after boot).
    """

    __slots__ = ("now_ns",)

    def __init__(self, start_ns: int = 0) -> None:
        if not isinstance(start_ns, int) or isinstance(start_ns, bool) or start_ns < 0:
            raise InvalidArgument(
                f"start_ns must be a non-negative int of nanoseconds, got {start_ns!r}"
            )
        self.now_ns: int = start_ns

    def advance(self, ns: int) -> int:
        """Move the clock forward by ``ns`` nanoseconds and return the new time.

        Raises :class:`InvalidArgument` for a negative or non-integer ``ns``: time in the
        model never runs backwards (round float costs with ``int()`` or use :meth:`charge`).
        """
        if ns.__class__ is not int:
            if isinstance(ns, int) and not isinstance(ns, bool):
                ns = int(ns)
            else:
                raise InvalidArgument(
                    f"advance() takes an int of nanoseconds, got {ns!r}; "
                    "round a float cost with int(), or use charge(cost, count)"
                )
        if ns < 0:
            raise InvalidArgument(f"advance({ns}): time cannot run backwards; pass ns >= 0")
        self.now_ns += ns
        return self.now_ns

    def charge(self, cost_ns: float, count: int = 1) -> int:
        """Advance by ``count`` operations of ``cost_ns`` each (rounded to whole ns)."""
        if count < 0 or cost_ns < 0:
            raise InvalidArgument(
                f"charge({cost_ns!r}, {count!r}): cost and count must be >= 0"
            )
        return self.advance(round(cost_ns * count))

    @property
    def now_s(self) -> float:
        """The current time in seconds (as ftrace prints it, before rounding to µs)."""
        return self.now_ns / 1e9

    def __repr__(self) -> str:
        return f"VirtualClock(now_ns={self.now_ns})"


@dataclass(frozen=True, slots=True)
class CostModel:
    """Nanoseconds each modelled kernel operation costs; defaults measured on Linux 6.18.

    How the defaults were measured (``bench/calibrate_kernel.py``, figures in
    ``bench/calibration.md``): on a 2-vCPU x86-64 guest (Linux 6.18.44, 24 GiB, idle), a
    process mapped 3 GiB of anonymous memory with ``MADV_NOHUGEPAGE``, touched every page, then
    dropped pages with ``MADV_DONTNEED`` in four stripes of different density (keep 1 of 2,
    1 of 4, 3 of 4, 1 of 8), and wrote ``1`` to ``/proc/sys/vm/compact_memory`` with the
    tracepoints ``compaction:*``, ``migrate:mm_migrate_pages`` and
    ``migrate:mm_migrate_pages_start`` enabled. The trace of that process was cut into
    batches (one ``isolate_migratepages`` round, then one ``migrate_pages`` call):

    * the isolation window (previous ``mm_compaction_migratepages`` or ``mm_compaction_begin``
      up to ``mm_migrate_pages_start``) was fitted by least squares as
      ``batch_isolate + migrate_scan_pfn * nr_scanned + isolate_page * nr_taken``;
    * the migration window (``mm_migrate_pages_start`` to ``mm_migrate_pages``, which contains
      the free scanner's ``isolate_freepages`` events) as
      ``migrate_pages_call + migrate_page * nr_succeeded + free_scan_pfn * free_scanned``
      (a free page taken always pairs with a page migrated, so its cost is inside
      ``migrate_page``);
    * ``compact_zone_call`` is the median, over the zones, of ``mm_compaction_end -
      mm_compaction_begin`` minus the fitted time of the batches in between, i.e. the
      per-zone overhead (setup, cached-pfn resets, draining) not explained by the batches.

    ``alloc_page`` and ``free_page`` come from ``MAP_POPULATE`` of 1 GiB of 4 KiB pages and
    its ``munmap``, per page, with the measured time to clear a 4 KiB page subtracted from
    ``alloc_page``; they are the whole per-page cost of the fault/unmap path (buddy + per-CPU
    lists + memcg + rmap + page table), an upper bound on the buddy fast path alone.

    Timestamps are the ftrace ``local`` clock printed to microseconds and include the
    tracepoints' own cost (~0.1 µs per event, a few events per batch); see the residuals in
    ``bench/calibration.md``. Costs are floats (ns, possibly fractional); charge them with
    :meth:`VirtualClock.charge`.
    """

    migrate_scan_pfn: float = 6.0
    """Per pfn looked at by the migration scanner (``isolate_migratepages_block``)."""
    free_scan_pfn: float = 3.0
    """Per pfn looked at by the free scanner (``isolate_freepages_block``)."""
    isolate_page: float = 120.0
    """Per page isolated by the migration scanner (LRU removal, refcount, NR_ISOLATED)."""
    migrate_page: float = 1500.0
    """Per page migrated: unmap, copy 4 KiB, remap, free the old page, take a free page."""
    migrate_pages_call: float = 3000.0
    """Per ``migrate_pages()`` call (list handling, TLB flush batching, putback)."""
    batch_isolate: float = 500.0
    """Per isolation round in ``compact_zone`` (``compact_finished``, lru drain checks)."""
    compact_zone_call: float = 20000.0
    """Per ``compact_zone()`` call, beyond its batches (setup, reset of cached pfns)."""
    alloc_page: float = 250.0
    """Per page allocated on the fast path (fault path minus clearing the page)."""
    free_page: float = 150.0
    """Per page freed (unmap path, per page)."""
    clear_page: float = 100.0
    """Per 4 KiB page zeroed (``__GFP_ZERO``, anonymous faults)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise InvalidArgument(
                    f"CostModel.{f.name} must be a non-negative number of ns, got {value!r}"
                )

    def scaled(self, factor: float) -> CostModel:
        """Return every cost multiplied by ``factor`` (a faster or slower machine)."""
        if factor < 0:
            raise InvalidArgument(f"scale factor must be >= 0, got {factor!r}")
        return replace(self, **{k: v * factor for k, v in asdict(self).items()})

    def as_dict(self) -> dict[str, float]:
        """Return the costs as a plain dict (for provenance records)."""
        return {k: float(v) for k, v in asdict(self).items()}


DEFAULT_COST_MODEL: Final = CostModel()
"""The calibrated defaults (Linux 6.18.44, 2 vCPU x86-64 guest)."""
