"""Virtual time: the clock trace events are stamped with, and what each kernel operation costs.

The model does no real work in kernel time, so it keeps a :class:`VirtualClock` (integer
nanoseconds, like the ftrace ``local`` clock it stands in for) and advances it by the cost of
each modelled operation, taken from a :class:`CostModel`. Compaction code charges the clock as
the kernel spends time::

    clock.charge(cost.migrate_scan_pfn, nr_scanned)
    clock.charge(cost.isolate_page, nr_taken)

(``charge`` rounds to whole ns; ``advance`` takes whole ns).

The default costs were measured on a real Linux 6.18 kernel; see :class:`CostModel` and
``bench/calibration.md``.
"""

from __future__ import annotations

import operator
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
            try:
                if isinstance(ns, bool):
                    raise TypeError
                ns = operator.index(ns)  # numpy integers too
            except TypeError:
                raise InvalidArgument(
                    f"advance() takes an int of nanoseconds, got {ns!r}; "
                    "round a float cost with int(), or use charge(cost, count)"
                ) from None
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

    How the defaults were measured (``bench/calibrate_kernel.py``; raw figures and both fits
    in ``bench/calibration.md``): on this project's 2-vCPU x86-64 guest (Linux 6.18.44,
    24 GiB, idle) a process mapped 3 GiB of anonymous memory with ``MADV_NOHUGEPAGE``,
    touched every page, dropped pages with ``MADV_DONTNEED`` in four stripes (keep 1 of 2,
    1 of 4, 3 of 4, 1 of 8), and wrote ``1`` to ``/proc/sys/vm/compact_memory`` with
    ``compaction:*``, ``migrate:mm_migrate_pages`` and ``migrate:mm_migrate_pages_start``
    traced. Three such runs (603,928 pages migrated in 4,823 ``migrate_pages`` calls; 9,775
    ``isolate_migratepages_block`` calls) were cut into windows between consecutive events
    of the compacting task and fitted, pooled, by median regression (least absolute
    deviations, by iteratively reweighted least squares, numpy):

    * one ``isolate_migratepages_block`` (``mm_compaction_isolate_migratepages`` minus the
      ``mm_compaction_finished`` before it) that took pages =
      ``isolate_block + isolate_page * nr_taken``; one that took none (free or unmovable
      pageblock, 512 pfns) = ``isolate_block + migrate_scan_pfn * 512`` (median window);
    * one ``migrate_pages`` (``mm_migrate_pages_start`` → ``mm_migrate_pages``, the free
      scanner runs inside) = ``migrate_pages_call + migrate_page * nr_succeeded +
      free_scan_pfn * (free pfns scanned - free pages taken)``; taking a free page pairs
      with migrating one, so it is inside ``migrate_page``;
    * ``compact_round``: every other gap inside ``compact_zone`` (``compact_finished``, the
      step into and out of ``migrate_pages``, putback), summed, per loop round;
    * ``compact_zone_call``: ``mm_compaction_begin`` → first event plus last event →
      ``mm_compaction_end``, median over the zones.

    These are *typical* (median) costs. The real windows have a heavy right tail (p99 of a
    migration batch is ~6x its median per page: the vCPU being descheduled by the host, lock
    and LRU drains), so the real time of the three runs' zones was 1.30x what these costs
    predict for the same work (1.04x to 1.55x by run); use ``CostModel().scaled(1.3)`` to
    reproduce mean wall time on this machine. Timestamps are the ftrace ``local`` clock printed
    to µs (unbiased noise over thousands of windows) and include the tracepoints' own cost
    (a few events per batch; traced runs were 1–12% slower per migrated page than the
    untraced runs on fresh fragmented memory, 2.8–4.3 µs of wall time per migrated page).

    ``alloc_page``, ``free_page`` and ``clear_page``: ``MAP_POPULATE`` of 1 GiB of 4 KiB
    anonymous pages and its ``munmap``, per page, median of 3, mean of the three runs;
    ``clear_page`` is a ``memset`` of warm memory per 4 KiB and is subtracted from the fault
    time to give ``alloc_page``. They are the whole per-page cost of the anonymous fault and
    unmap paths (buddy + per-CPU lists + memcg + rmap + page tables + LRU), an upper bound on
    the buddy fast path alone, which tracefs cannot time on this kernel (no function_graph).

    Costs are floats in ns; charge them with :meth:`VirtualClock.charge`.
    """

    migrate_scan_pfn: float = 3.4
    """Per pfn the migration scanner looks at (charge it on ``nr_scanned``)."""
    free_scan_pfn: float = 16.5
    """Per pfn the free scanner looks at (fitted on pfns scanned but not taken, and weakly
    determined: 15–96 ns by run; charge it on ``nr_scanned``, the difference is < 1% of
    ``migrate_page``)."""
    isolate_block: float = 1255.0
    """Per ``isolate_migratepages_block()`` call (one ``mm_compaction_isolate_migratepages``)."""
    isolate_page: float = 181.0
    """Per page the migration scanner isolates (LRU removal, refcount, NR_ISOLATED)."""
    migrate_page: float = 2547.0
    """Per page migrated: take a free page, unmap, copy 4 KiB, remap, free the old page."""
    migrate_pages_call: float = 4953.0
    """Per ``migrate_pages()`` call (batch setup, TLB flush batching, putback)."""
    compact_round: float = 806.0
    """Per loop round of ``compact_zone()`` (``compact_finished`` and the loop's own work)."""
    compact_zone_call: float = 2000.0
    """Per ``compact_zone()`` call, beyond its rounds (setup, cached pfns, final drain)."""
    alloc_page: float = 2358.0
    """Per page allocated (anonymous fault path, page clearing excluded)."""
    free_page: float = 478.0
    """Per page freed (unmap path, per page)."""
    clear_page: float = 230.0
    """Per 4 KiB page zeroed (``__GFP_ZERO``, ``clear_page``)."""
    reclaim_scan_page: float = 150.0
    """Per folio isolated from an LRU list and looked at by reclaim (``isolate_lru_folios``
    plus ``folio_check_references``). Not calibrated: an estimate of the same order as
    ``isolate_page`` (181 ns, which does similar work for compaction)."""
    reclaim_page: float = 900.0
    """Per folio reclaimed beyond its scan: unmap, ``__remove_mapping``, free. Not calibrated:
    about two ``free_page`` plus a TLB flush, an estimate."""
    swap_out_page: float = 6000.0
    """Per page written to zram: lzo-rle compression of 4 KiB plus ``zs_malloc`` and the
    copy. Not calibrated here (no zram module in the calibration guest); an estimate from
    published zram throughput (~0.7 GB/s per core for lzo-rle compression)."""
    swap_in_page: float = 3000.0
    """Per page read back from zram in ``do_swap_page``: decompression (~2 GB/s per core),
    the copy and the fault. An estimate, like ``swap_out_page``."""
    file_read_page: float = 60000.0
    """Per page-cache page read back from storage on a major fault (flash, 4 KiB random read
    with readahead amortised). An estimate for a phone's UFS storage."""

    @property
    def batch_isolate(self) -> float:
        """Per isolation round: ``compact_round + isolate_block`` (the earlier single field).

        Kept for callers written against the first draft; charge ``compact_round`` per loop
        round and ``isolate_block`` per ``isolate_migratepages_block()`` call instead.
        """
        return self.compact_round + self.isolate_block

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
"""The calibrated defaults (Linux 6.18.44, 2-vCPU x86-64 guest; typical, not mean)."""
