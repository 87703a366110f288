"""ftrace events: a fast in-memory sink, the kernel's TP_printk text, and the ``trace`` file.

What is modelled, and from where
--------------------------------
Event formats are the ``TP_printk`` of Linux 6.18: the ``print fmt`` lines of
``/sys/kernel/tracing/events/{compaction,migrate,kmem}/*/format`` on a 6.18.44 x86-64
kernel (CONFIG_ZONE_DMA, CONFIG_ZONE_DMA32, no HIGHMEM, no CMA; captured 2026 in
``tests/fixtures/live``), cross-checked against the sources in torvalds/linux:
``include/trace/events/compaction.h`` (stored copy at commit 0ccfdcf968b3, with
``highest_zoneidx`` and ``nr_succeeded``; the stored copy lacks
``mm_compaction_fast_isolate_freepages``, which 6.18 defines on the isolate template),
``include/trace/events/migrate.h`` (commit 03c11eb3b16d, ≈v6.9; 6.18 adds ``MR_DAMON``
"damon" as reason 9) and ``include/trace/events/kmem.h`` / ``mmflags.h``.

* ``__print_symbolic`` tables: :data:`COMPACTION_STATUS`, :data:`ZONE_TYPE`,
  :data:`MIGRATE_MODE`, :data:`MIGRATE_REASON`. A value missing from a table prints as
  ``0x%lx``, as ``trace_print_symbols_seq`` does.
* ``show_gfp_flags`` is ``__print_flags`` over the ``__def_gfpflag_names`` table of 6.18, in
  its order (composites first, ``__GFP_RECLAIM``, then each bit); an unnamed remainder prints
  as ``0x%lx``; a zero mask prints ``none``.
* ``%p`` (``page=``): tracefs hashes pointers (``options/hash-ptr``), so a real trace shows an
  unpredictable ``00000000xxxxxxxx``. The model prints a **deterministic fake kernel address
  derived from the pfn**: the unhashed x86-64 vmemmap address ``0xffffea0000000000 + pfn *
  64`` (``sizeof(struct page)`` = 64, no KASLR), as ``%016lx``. A NULL page (``pfn == -1``
  in ``mm_page_alloc``/``mm_page_alloc_zone_locked``) prints ``0000000000000000`` as in the
  kernel (``ptr_to_id`` prints NULL unhashed).

Fields are named as the kernel's ``TP_STRUCT__entry`` (``start_pfn``, ``nr_taken``, ``sync``,
``status``, ``idx``, ``highest_zoneidx``, ``succeeded``, ``gfp_flags``...), with the values
the kernel stores there (ints; ``sync`` a bool). Printed-only values are derived as in
``TP_printk`` (``limit=1UL << defer_shift``; ``pageblock_order`` and ``fragmenting`` in
``mm_page_alloc_extfrag``; the page pointer).

The ``trace`` file
------------------
:func:`render_trace` prints what ``cat /sys/kernel/tracing/trace`` prints with the ``nop``
tracer and default options (``irq-info`` on, ``record-tgid`` off): the 12-line header, then one
line per event, ``"%16s-%-7d [%03d] %s %5lu.%06lu: %s: %s"`` (``trace_print_context``,
``trace_print_lat_fmt``, ``trace_print_time``; the ns timestamp is rounded to µs as
``ns2usecs`` does). The 5-character irq/preempt flags field is not modelled: every model event
prints ``.....`` (irqs on, no resched, process context, preempt count 0, migration enabled),
which is what the real kernel prints for compaction in process context and kcompactd (see the
fixture). A caller may set another value through :meth:`TraceSink.context`.

:func:`parse_trace` reads tracefs ``trace``/``trace_pipe`` text, ``trace-cmd report`` and
``perf script`` lines: a tolerant common-prefix regex, then the event's own format when the
event is known and its text matches it (fields come back with kernel field names and values,
so ``parse_trace(render_trace(r))`` gives ``r`` back), else generic ``key=value`` parsing
(fields keyed by the printed labels; ints where a value is a number). Other kernels' layouts
of a known event (e.g. v4.8's four-field ``mm_migrate_pages``) fall back to the generic
parser.
"""

from __future__ import annotations

import fnmatch
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from pagelab.errors import InvalidArgument, PagelabError, ParseError
from pagelab.mm.gfp import GFP_COMPOSITES, GFP_FLAGS
from pagelab.sched.clock import VirtualClock

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "COMPACTION_STATUS",
    "DEFAULT_FLAGS",
    "EVENT_FIELDS",
    "EVENT_SYSTEMS",
    "MIGRATE_MODE",
    "MIGRATE_REASON",
    "TRACE_HEADER_LINES",
    "ZONE_TYPE",
    "TraceRecord",
    "TraceSink",
    "decode_payload",
    "events_dataframe",
    "fake_page_address",
    "format_event",
    "parse_trace",
    "render_line",
    "render_trace",
    "show_gfp_flags",
]

_U64: Final = (1 << 64) - 1
_U32: Final = (1 << 32) - 1

# --------------------------------------------------------------------------------------------
# __print_symbolic tables (6.18)

COMPACTION_STATUS: Final[Mapping[int, str]] = {
    1: "skipped", 2: "deferred", 4: "continue", 8: "success", 6: "partial_skipped",
    5: "complete", 3: "no_suitable_page", 0: "not_suitable_zone", 7: "contended",
}
"""``COMPACTION_STATUS`` (include/trace/events/mmflags.h): ``enum compact_result`` → name."""

ZONE_TYPE: Final[Mapping[int, str]] = {0: "DMA", 1: "DMA32", 2: "Normal", 3: "Movable"}
"""``ZONE_TYPE`` on x86-64 with ZONE_DMA and ZONE_DMA32 (ZONE_DEVICE is not listed)."""

MIGRATE_MODE: Final[Mapping[int, str]] = {
    0: "MIGRATE_ASYNC", 1: "MIGRATE_SYNC_LIGHT", 2: "MIGRATE_SYNC",
}
"""``MIGRATE_MODE`` (include/trace/events/migrate.h, 6.18)."""

MIGRATE_REASON: Final[Mapping[int, str]] = {
    0: "compaction", 1: "memory_failure", 2: "memory_hotplug", 3: "syscall_or_cpuset",
    4: "mempolicy_mbind", 5: "numa_misplaced", 6: "contig_range", 7: "longterm_pin",
    8: "demotion", 9: "damon",
}
"""``MIGRATE_REASON`` (6.18; MR_DAMON added after v6.9)."""

DEFAULT_FLAGS: Final = "....."
"""The irq/preempt flags column printed for every model event (see the module docstring)."""

PAGEBLOCK_ORDER: Final = 9
"""``pageblock_order`` printed by ``mm_page_alloc_extfrag`` (min(21 - 12, 10) on x86-64)."""

_VMEMMAP_BASE: Final = 0xFFFFEA0000000000
_STRUCT_PAGE_SIZE: Final = 64

# show_gfp_flags: __def_gfpflag_names of 6.18 in order (the print fmt of mm_page_alloc).
_GFP_NAME_TABLE: Final[tuple[tuple[int, str], ...]] = tuple(
    [(GFP_COMPOSITES[n], n) for n in (
        "GFP_TRANSHUGE", "GFP_TRANSHUGE_LIGHT", "GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER",
        "GFP_USER", "GFP_KERNEL_ACCOUNT", "GFP_KERNEL", "GFP_NOFS", "GFP_ATOMIC", "GFP_NOIO",
        "GFP_NOWAIT", "GFP_DMA", "GFP_DMA32", "__GFP_RECLAIM")]
    + [(GFP_FLAGS[n], n) for n in (
        "__GFP_DMA", "__GFP_HIGHMEM", "__GFP_DMA32", "__GFP_MOVABLE", "__GFP_RECLAIMABLE",
        "__GFP_HIGH", "__GFP_IO", "__GFP_FS", "__GFP_ZERO", "__GFP_DIRECT_RECLAIM",
        "__GFP_KSWAPD_RECLAIM", "__GFP_WRITE", "__GFP_NOWARN", "__GFP_RETRY_MAYFAIL",
        "__GFP_NOFAIL", "__GFP_NORETRY", "__GFP_MEMALLOC", "__GFP_COMP", "__GFP_NOMEMALLOC",
        "__GFP_HARDWALL", "__GFP_THISNODE", "__GFP_ACCOUNT", "__GFP_ZEROTAGS",
        "__GFP_NO_OBJ_EXT")]
)
_GFP_BY_NAME: Final[dict[str, int]] = {name: mask for mask, name in _GFP_NAME_TABLE}


def show_gfp_flags(gfp: int) -> str:
    """Return ``gfp`` as the kernel's ``show_gfp_flags()`` prints it in a trace (6.18).

    ``__print_flags``: walk the table in order, print each name whose whole mask is set and
    clear those bits, stop when no bit is left; a remainder prints as ``0x%lx``; 0 is ``none``.
    This differs from :func:`pagelab.mm.gfp.gfp_names` in ``__GFP_RECLAIM`` (printed as one
    name) and ``none``.
    """
    if not gfp:
        return "none"
    flags = gfp & _U64
    parts = []
    for mask, name in _GFP_NAME_TABLE:
        if not flags:
            break
        if mask and flags & mask == mask:
            parts.append(name)
            flags &= ~mask
    if flags:
        parts.append(f"0x{flags:x}")
    return "|".join(parts)


def _parse_gfp_text(text: str) -> int:
    if text == "none":
        return 0
    value = 0
    for part in text.split("|"):
        if part in _GFP_BY_NAME:
            value |= _GFP_BY_NAME[part]
        else:
            value |= int(part, 16)  # ValueError → the caller's ParseError
    return value


def fake_page_address(pfn: int) -> str:
    """Return the ``%p`` text the model prints for the struct page of ``pfn``.

    The unhashed vmemmap address (``0xffffea0000000000 + 64 * pfn``) as 16 hex digits; a real
    trace prints a hashed value instead (tracefs ``hash-ptr``), so only the model's own traces
    carry this one.
    """
    return f"{(_VMEMMAP_BASE + pfn * _STRUCT_PAGE_SIZE) & _U64:016x}"


def _symbolic(table: Mapping[int, str]) -> Callable[[Any], str]:
    def show(value: Any) -> str:
        name = table.get(value)
        return name if name is not None else f"0x{int(value) & _U64:x}"
    return show


def _unsymbolic(table: Mapping[int, str]) -> Callable[[str], int]:
    reverse = {v: k for k, v in table.items()}

    def parse(text: str) -> int:
        if text in reverse:
            return reverse[text]
        if text.startswith("0x"):
            return int(text, 16)
        raise ValueError(text)
    return parse


# --------------------------------------------------------------------------------------------
# Event formats: a template per event, compiled to a formatter and a parser.
#
# A template is TP_printk's text with "{field:conv}" where a value goes. A conv says how the
# value prints (show), what text it can be (regex) and how to read it back (read; None for
# values derived from other fields, which are not read back).


@dataclass(frozen=True, slots=True)
class _Conv:
    show: Callable[[Any], str]
    regex: str
    read: Callable[[str], Any] | None
    whole: bool = False  # show() takes the whole field mapping, not one value


def _show_zone8(value: Any) -> str:
    return f"{_symbolic(ZONE_TYPE)(value):<8}"


_CONVS: Final[dict[str, _Conv]] = {
    "lx": _Conv(lambda v: f"{v & _U64:x}", r"[0-9a-fA-F]+", lambda s: int(s, 16)),
    "hex": _Conv(lambda v: f"{v & _U64:x}", r"[0-9a-fA-F]+", lambda s: int(s, 16)),
    "lu": _Conv(lambda v: str(v & _U64), r"\d+", int),
    "u": _Conv(lambda v: str(v & _U32), r"\d+", int),
    "d": _Conv(str, r"-?\d+", int),
    "sync": _Conv(lambda v: "sync" if v else "async", r"sync|async", lambda s: s == "sync"),
    "zone": _Conv(_show_zone8, r"\S+ *", lambda s: _unsymbolic(ZONE_TYPE)(s.rstrip())),
    "status": _Conv(_symbolic(COMPACTION_STATUS), r"\S+", _unsymbolic(COMPACTION_STATUS)),
    "mode": _Conv(_symbolic(MIGRATE_MODE), r"\S+", _unsymbolic(MIGRATE_MODE)),
    "reason": _Conv(_symbolic(MIGRATE_REASON), r"\S+", _unsymbolic(MIGRATE_REASON)),
    "gfp": _Conv(show_gfp_flags, r"\S+", _parse_gfp_text),
    # 1UL << defer_shift, printed %lu; read back as the shift.
    "shl": _Conv(lambda v: str((1 << v) & _U64), r"\d+",
                 lambda s: max(int(s).bit_length() - 1, 0)),
    # page=%p from pfn; the nullable form prints NULL for pfn == -1 (mm_page_alloc).
    "ptr": _Conv(fake_page_address, r"[0-9a-fA-F]{1,16}|\(null\)|\(_*ptrval_*\)", None),
    "ptrn": _Conv(lambda v: "0000000000000000" if v == -1 else fake_page_address(v),
                  r"[0-9a-fA-F]{1,16}|\(null\)|\(_*ptrval_*\)", None),
    # pfn printed as 0 when it is -1 (mm_page_alloc, mm_page_alloc_zone_locked).
    "pfn0": _Conv(lambda v: "0" if v == -1 else f"{v & _U64:x}", r"[0-9a-fA-F]+",
                  lambda s: int(s, 16)),
    # reclaim_flags: RECLAIM_WB_FILE or RECLAIM_WB_ANON, always with RECLAIM_WB_ASYNC.
    "wbflags": _Conv(lambda v: ("RECLAIM_WB_FILE" if v else "RECLAIM_WB_ANON")
                     + "|RECLAIM_WB_ASYNC", r"RECLAIM_WB_(?:FILE|ANON)\|RECLAIM_WB_ASYNC",
                     lambda s: int(s.startswith("RECLAIM_WB_FILE"))),
    "pbo": _Conv(lambda fields: str(PAGEBLOCK_ORDER), r"-?\d+", None, whole=True),
    "frag": _Conv(lambda fields: str(int(fields["fallback_order"] < PAGEBLOCK_ORDER)),
                  r"-?\d+", None, whole=True),
}

_ISOLATE = ("range=(0x{start_pfn:lx} ~ 0x{end_pfn:lx}) nr_scanned={nr_scanned:lu} "
            "nr_taken={nr_taken:lu}")
_SUITABLE = "node={nid:d} zone={idx:zone} order={order:d} ret={ret:status}"
_DEFER = ("node={nid:d} zone={idx:zone} order={order:d} order_failed={order_failed:d} "
          "consider={considered:u} limit={defer_shift:shl}")
_KCOMPACTD = "nid={nid:d} order={order:d} classzone_idx={highest_zoneidx:zone}"
_BEGIN = ("zone_start=0x{zone_start:lx} migrate_pfn=0x{migrate_pfn:lx} free_pfn=0x{free_pfn:lx} "
          "zone_end=0x{zone_end:lx}, mode={sync:sync}")
_MIGRATION_PTE = "addr={addr:hex}, pte={pte:hex} order={order:d}"

_TEMPLATES: Final[dict[str, tuple[str, str]]] = {
    # include/trace/events/compaction.h
    "mm_compaction_isolate_migratepages": ("compaction", _ISOLATE),
    "mm_compaction_isolate_freepages": ("compaction", _ISOLATE),
    "mm_compaction_fast_isolate_freepages": ("compaction", _ISOLATE),
    "mm_compaction_migratepages": (
        "compaction", "nr_migrated={nr_migrated:lu} nr_failed={nr_failed:lu}"),
    "mm_compaction_begin": ("compaction", _BEGIN),
    "mm_compaction_end": ("compaction", _BEGIN + " status={status:status}"),
    "mm_compaction_try_to_compact_pages": (
        "compaction", "order={order:d} gfp_mask={gfp_mask:gfp} priority={prio:d}"),
    "mm_compaction_finished": ("compaction", _SUITABLE),
    "mm_compaction_suitable": ("compaction", _SUITABLE),
    "mm_compaction_deferred": ("compaction", _DEFER),
    "mm_compaction_defer_compaction": ("compaction", _DEFER),
    "mm_compaction_defer_reset": ("compaction", _DEFER),
    "mm_compaction_kcompactd_sleep": ("compaction", "nid={nid:d}"),
    "mm_compaction_wakeup_kcompactd": ("compaction", _KCOMPACTD),
    "mm_compaction_kcompactd_wake": ("compaction", _KCOMPACTD),
    # include/trace/events/migrate.h
    "mm_migrate_pages": (
        "migrate",
        "nr_succeeded={succeeded:lu} nr_failed={failed:lu} nr_thp_succeeded={thp_succeeded:lu} "
        "nr_thp_failed={thp_failed:lu} nr_thp_split={thp_split:lu} "
        "nr_split={large_folio_split:lu} mode={mode:mode} reason={reason:reason}"),
    "mm_migrate_pages_start": ("migrate", "mode={mode:mode} reason={reason:reason}"),
    "set_migration_pte": ("migrate", _MIGRATION_PTE),
    "remove_migration_pte": ("migrate", _MIGRATION_PTE),
    # include/trace/events/vmscan.h
    "mm_vmscan_kswapd_sleep": ("vmscan", "nid={nid:d}"),
    "mm_vmscan_kswapd_wake": ("vmscan", "nid={nid:d} order={order:d}"),
    "mm_vmscan_wakeup_kswapd": ("vmscan", "nid={nid:d} order={order:d} gfp_flags={gfp_flags:gfp}"),
    "mm_vmscan_direct_reclaim_begin": ("vmscan", "order={order:d} gfp_flags={gfp_flags:gfp}"),
    "mm_vmscan_direct_reclaim_end": ("vmscan", "nr_reclaimed={nr_reclaimed:lu}"),
    "mm_vmscan_lru_shrink_inactive": (
        "vmscan",
        "nid={nid:d} nr_scanned={nr_scanned:d} nr_reclaimed={nr_reclaimed:d} "
        "nr_dirty={nr_dirty:d} nr_writeback={nr_writeback:d} nr_congested={nr_congested:d} "
        "nr_immediate={nr_immediate:d} nr_activate_anon={nr_activate0:d} "
        "nr_activate_file={nr_activate1:d} nr_ref_keep={nr_ref_keep:d} "
        "nr_unmap_fail={nr_unmap_fail:d} priority={priority:d} flags={reclaim_flags:wbflags}"),
    "mm_vmscan_lru_shrink_active": (
        "vmscan",
        "nid={nid:d} nr_taken={nr_taken:d} nr_active={nr_active:d} "
        "nr_deactivated={nr_deactivated:d} nr_referenced={nr_referenced:d} "
        "priority={priority:d} flags={reclaim_flags:wbflags}"),
    # include/trace/events/kmem.h
    "mm_page_alloc": (
        "kmem",
        "page={pfn:ptrn} pfn=0x{pfn:pfn0} order={order:d} migratetype={migratetype:d} "
        "gfp_flags={gfp_flags:gfp}"),
    "mm_page_free": ("kmem", "page={pfn:ptr} pfn=0x{pfn:lx} order={order:d}"),
    "mm_page_free_batched": ("kmem", "page={pfn:ptr} pfn=0x{pfn:lx} order=0"),
    "mm_page_alloc_zone_locked": (
        "kmem",
        "page={pfn:ptrn} pfn=0x{pfn:pfn0} order={order:u} migratetype={migratetype:d} "
        "percpu_refill={percpu_refill:d}"),
    "mm_page_pcpu_drain": (
        "kmem", "page={pfn:ptr} pfn=0x{pfn:lx} order={order:d} migratetype={migratetype:d}"),
    "mm_page_alloc_extfrag": (
        "kmem",
        "page={pfn:ptr} pfn=0x{pfn:lx} alloc_order={alloc_order:d} "
        "fallback_order={fallback_order:d} pageblock_order={_:pbo} "
        "alloc_migratetype={alloc_migratetype:d} fallback_migratetype={fallback_migratetype:d} "
        "fragmenting={_:frag} change_ownership={change_ownership:d}"),
}

_PLACEHOLDER = re.compile(r"\{(\w+):(\w+)\}")


@dataclass(frozen=True, slots=True)
class _EventFormat:
    name: str
    system: str
    template: str
    parts: tuple[tuple[str, str, _Conv | None], ...]  # (literal, field, conv)
    fields: tuple[str, ...]  # TP_STRUCT fields the caller gives (in print order)
    symbolic: tuple[tuple[str, Callable[[Any], str]], ...]  # fields with a printed name
    pattern: re.Pattern[str]
    readers: tuple[tuple[str, str, Callable[[str], Any]], ...]  # (group, field, read)

    def format(self, fields: Mapping[str, Any]) -> str:
        out = []
        for literal, name, conv in self.parts:
            out.append(literal)
            if conv is None:
                continue
            out.append(conv.show(fields) if conv.whole else conv.show(fields[name]))
        return "".join(out)


def _compile(name: str, system: str, template: str) -> _EventFormat:
    parts: list[tuple[str, str, _Conv | None]] = []
    regex: list[str] = ["^"]
    readers: list[tuple[str, str, Callable[[str], Any]]] = []
    fields: list[str] = []
    symbolic: list[tuple[str, Callable[[Any], str]]] = []
    pos = 0
    for i, m in enumerate(_PLACEHOLDER.finditer(template)):
        literal = template[pos:m.start()]
        field, conv_name = m.group(1), m.group(2)
        conv = _CONVS[conv_name]
        parts.append((literal, field, conv))
        regex.append(_literal_regex(literal))
        group = f"g{i}"
        regex.append(f"(?P<{group}>{conv.regex})")
        if not conv.whole and field not in fields:
            fields.append(field)
        if conv.read is not None:
            readers.append((group, field, conv.read))
        if conv_name in ("zone", "status", "mode", "reason", "sync", "gfp"):
            symbolic.append((field, conv.show if conv_name != "zone" else _symbolic(ZONE_TYPE)))
        pos = m.end()
    tail = template[pos:]
    parts.append((tail, "", None))
    regex.append(_literal_regex(tail))
    regex.append(r"\s*$")
    return _EventFormat(name, system, template, tuple(parts), tuple(fields), tuple(symbolic),
                        re.compile("".join(regex)), tuple(readers))


def _literal_regex(literal: str) -> str:
    # Runs of blanks match runs of blanks (copy and paste changes them).
    return "".join(r"\s+" if chunk.isspace() else re.escape(chunk)
                   for chunk in re.split(r"(\s+)", literal) if chunk)


_FORMATS: Final[dict[str, _EventFormat]] = {
    name: _compile(name, system, template) for name, (system, template) in _TEMPLATES.items()
}

EVENT_SYSTEMS: Final[Mapping[str, str]] = {n: f.system for n, f in _FORMATS.items()}
"""Every event this module formats → its trace system (``compaction``, ``migrate``, ``kmem``)."""

EVENT_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {n: f.fields for n, f in _FORMATS.items()}
"""Every event → the ``TP_STRUCT__entry`` fields :meth:`TraceSink.emit` must be given."""


def format_event(event: str, fields: Mapping[str, Any]) -> str:
    """Return the ``TP_printk`` text of ``event`` with ``fields`` (kernel field names).

    >>> format_event("mm_compaction_suitable", {"nid": 0, "idx": 2, "order": 9, "ret": 4})
    'node=0 zone=Normal   order=9 ret=continue'

    An event this module does not know prints its fields as ``key=value`` separated by
    blanks. A missing field raises :class:`InvalidArgument` naming it.
    """
    fmt = _FORMATS.get(event)
    if fmt is None:
        return " ".join(f"{k}={v}" for k, v in fields.items())
    try:
        return fmt.format(fields)
    except KeyError as e:
        raise InvalidArgument(
            f"trace event {event} needs the field {e.args[0]!r} "
            f"(its fields are {', '.join(fmt.fields)})"
        ) from None
    except TypeError as e:
        raise InvalidArgument(f"trace event {event}: a field has a value of the wrong type "
                              f"({e}); give ints as the kernel stores them") from None


def decode_payload(event: str, payload: str) -> dict[str, Any] | None:
    """Read a known event's TP_printk text back into its kernel fields, or None if it is not.

    ``decode_payload(e, format_event(e, f)) == f`` for every known event ``e`` and valid
    fields ``f``. Returns None for an unknown event or a text that is not in the 6.18 format.
    """
    fmt = _FORMATS.get(event)
    if fmt is None:
        return None
    m = fmt.pattern.match(payload)
    if m is None:
        return None
    out: dict[str, Any] = {}
    try:
        for group, field, read in fmt.readers:
            out[field] = read(m.group(group))
    except ValueError:
        return None
    if fmt.parts[0][2] is _CONVS["ptrn"] and re.fullmatch(r"0+|\(null\)", m.group("g0")):
        out["pfn"] = -1  # NULL page: the kernel printed pfn 0 for pfn -1
    return out


# --------------------------------------------------------------------------------------------
# Records and the sink


class TraceRecord(NamedTuple):
    """One event as the ``trace`` file shows it.

    ``timestamp`` is in seconds (µs resolution, as printed). ``fields`` holds kernel field
    names and values for the events this module knows (what :meth:`TraceSink.emit` was
    given), and the printed ``key=value`` labels otherwise. ``payload`` keeps the printed text
    of an event parsed generically, so it renders back unchanged.
    """

    comm: str
    pid: int
    cpu: int
    timestamp: float
    event: str
    fields: dict[str, Any]
    flags: str = DEFAULT_FLAGS
    payload: str | None = None


_TASK_COMM_LEN: Final = 16


class TraceSink:
    """An in-memory ftrace ring buffer the model emits trace events into.

    ``sink.emit("mm_compaction_begin", zone_start=..., migrate_pfn=..., free_pfn=...,
    zone_end=..., sync=True)`` records the event with the clock's current time and the current
    context (``comm``, ``pid``, ``cpu``, ``flags``), as a compact tuple; text is made only
    when the trace is read (:meth:`text`, :meth:`records`), as the kernel formats its binary
    records at read time.

    Cost (CPython 3.11, this machine): a disabled sink, or an event filtered out, returns
    after one set lookup, ≈0.25 µs per call with four keyword fields; a recorded event costs
    ≈0.5 µs. Guard events whose fields are costly to compute with :meth:`is_enabled` (the
    kernel's ``trace_<event>_enabled()``).

    ``events`` (or :meth:`set_event`) selects events as tracefs ``set_event`` does; None
    means every event. ``max_entries`` bounds the buffer: the oldest events are overwritten
    and ``entries_written`` keeps counting, as the ring buffer's overwrite mode does.
    """

    __slots__ = ("_append", "_buf", "_ctx", "_enabled", "_filter", "_on", "clock",
                 "entries_written")

    def __init__(
        self,
        clock: VirtualClock | None = None,
        *,
        enabled: bool = True,
        events: Iterable[str] | None = None,
        max_entries: int | None = None,
        comm: str = "swapper/0",
        pid: int = 0,
        cpu: int = 0,
    ) -> None:
        if max_entries is not None and max_entries < 1:
            raise InvalidArgument(f"max_entries must be >= 1 or None, got {max_entries!r}")
        self.clock = clock if clock is not None else VirtualClock()
        self._buf: deque[tuple[int, tuple[str, int, int, str], str, dict[str, Any]]] = deque(
            maxlen=max_entries)
        self._append = self._buf.append
        self.entries_written = 0
        self._ctx: tuple[str, int, int, str] = (comm[: _TASK_COMM_LEN - 1], pid, cpu,
                                                DEFAULT_FLAGS)
        self._enabled = bool(enabled)
        self._filter: frozenset[str] | None = None
        self._on: frozenset[str] | None = None
        if events is not None:
            self.set_event(*events)
        self._update()

    # -- emission (hot path) -----------------------------------------------------------------

    def emit(self, event: str, /, **fields: Any) -> None:
        """Record ``event`` with ``fields`` (kernel field names) at the clock's time."""
        on = self._on
        if on is not None and event not in on:
            return
        self.entries_written += 1
        self._append((self.clock.now_ns, self._ctx, event, fields))

    def is_enabled(self, event: str) -> bool:
        """Whether :meth:`emit` would record ``event`` now."""
        on = self._on
        return on is None or event in on

    # -- control -----------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Master switch (tracefs ``tracing_on``)."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = bool(value)
        self._update()

    @property
    def events(self) -> frozenset[str] | None:
        """The selected events (None: all), whether or not the sink is enabled."""
        return self._filter

    def set_event(self, *specs: str, append: bool = False) -> None:
        """Select events as ``echo SPEC... > set_event`` (``append=True``: ``>>``).

        A spec is ``system:event``, ``system:*``, ``event``, ``*:*`` or ``*`` (globs allowed),
        or one of those prefixed with ``!`` to deselect. A spec that matches no known event
        raises :class:`InvalidArgument` (tracefs answers EINVAL), except a plain event name,
        which is accepted so the model may emit events this module does not format.
        """
        current: set[str] = set(self._filter or ()) if append else set()
        if append and self._filter is None:
            current = set(_FORMATS)
        for spec in specs:
            negate = spec.startswith("!")
            pattern = spec[1:] if negate else spec
            matched = _match_events(pattern)
            if not matched:
                if ":" in pattern or any(c in pattern for c in "*?["):
                    raise InvalidArgument(
                        f"set_event {spec!r} matches no event; known systems are "
                        f"{', '.join(sorted(set(EVENT_SYSTEMS.values())))}"
                    )
                matched = {pattern}
            if negate:
                current -= matched
            else:
                current |= matched
        self._filter = frozenset(current)
        self._update()

    def enable_all(self) -> None:
        """Select every event (the sink's initial state)."""
        self._filter = None
        self._update()

    def _update(self) -> None:
        self._on = self._filter if self._enabled else frozenset()

    @property
    def comm(self) -> str:
        """The task name events are attributed to (cut to 15 characters, as TASK_COMM_LEN)."""
        return self._ctx[0]

    @comm.setter
    def comm(self, value: str) -> None:
        c = self._ctx
        self._ctx = (value[: _TASK_COMM_LEN - 1], c[1], c[2], c[3])

    @property
    def pid(self) -> int:
        """The pid events are attributed to."""
        return self._ctx[1]

    @pid.setter
    def pid(self, value: int) -> None:
        c = self._ctx
        self._ctx = (c[0], value, c[2], c[3])

    @property
    def cpu(self) -> int:
        """The CPU events are attributed to."""
        return self._ctx[2]

    @cpu.setter
    def cpu(self, value: int) -> None:
        c = self._ctx
        self._ctx = (c[0], c[1], value, c[3])

    @property
    def flags(self) -> str:
        """The irq/preempt flags column (5 characters, default ``.....``)."""
        return self._ctx[3]

    @flags.setter
    def flags(self, value: str) -> None:
        if not isinstance(value, str) or len(value) != 5:
            raise InvalidArgument(f"flags must be 5 characters like 'd..1.', got {value!r}")
        c = self._ctx
        self._ctx = (c[0], c[1], c[2], value)

    @contextmanager
    def context(self, comm: str | None = None, pid: int | None = None, cpu: int | None = None,
                flags: str | None = None) -> Iterator[TraceSink]:
        """Set the task, CPU and flags events are attributed to, restoring them on exit.

        ``with sink.context(comm="kcompactd0", pid=42, cpu=0): ...``; the same attributes may
        also be assigned directly (``sink.comm = ...``). ``comm`` is cut to 15 characters as
        the kernel's ``TASK_COMM_LEN`` does. ``flags`` is the 5-character irq/preempt column
        (the real kernel prints ``d..3.`` for events under the zone lock, e.g.
        ``mm_page_alloc_zone_locked`` and ``mm_page_pcpu_drain``).
        """
        saved = self._ctx
        try:
            if comm is not None:
                self.comm = comm
            if pid is not None:
                self.pid = pid
            if cpu is not None:
                self.cpu = cpu
            if flags is not None:
                self.flags = flags
            yield self
        finally:
            self._ctx = saved

    def clear(self) -> None:
        """Empty the buffer (``echo > trace``); ``entries_written`` restarts at 0."""
        self._buf.clear()
        self.entries_written = 0

    # -- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._buf)

    @property
    def raw(self) -> Sequence[tuple[int, tuple[str, int, int, str], str, dict[str, Any]]]:
        """The buffer's tuples ``(ns, (comm, pid, cpu, flags), event, fields)``, oldest first."""
        return self._buf

    def records(self, event: str | None = None) -> list[TraceRecord]:
        """The buffer as :class:`TraceRecord` values (timestamps rounded to µs)."""
        return [
            TraceRecord(ctx[0], ctx[1], ctx[2], ((ns + 500) // 1000) / 1e6, ev, dict(fields),
                        ctx[3])
            for ns, ctx, ev, fields in self._buf
            if event is None or ev == event
        ]

    def text(self, nr_cpus: int = 1) -> str:
        """The ``trace`` file text of the buffer (see :func:`render_trace`)."""
        return render_trace(self.records(), nr_cpus=nr_cpus,
                            entries_written=self.entries_written)


def _match_events(pattern: str) -> set[str]:
    if pattern in ("*", "*:*"):
        return set(_FORMATS)
    if ":" in pattern:
        system, name = pattern.split(":", 1)
        return {e for e, s in EVENT_SYSTEMS.items()
                if fnmatch.fnmatchcase(s, system) and fnmatch.fnmatchcase(e, name or "*")}
    return {e for e in EVENT_SYSTEMS if fnmatch.fnmatchcase(e, pattern)}


# --------------------------------------------------------------------------------------------
# The trace file

TRACE_HEADER_LINES: Final[tuple[str, ...]] = (
    "# tracer: nop",
    "#",
    "# entries-in-buffer/entries-written: {in_buffer}/{written}   #P:{nr_cpus}",
    "#",
    "#                                _-----=> irqs-off/BH-disabled",
    "#                               / _----=> need-resched",
    "#                              | / _---=> hardirq/softirq",
    "#                              || / _--=> preempt-depth",
    "#                              ||| / _-=> migrate-disable",
    "#                              |||| /     delay",
    "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
    "#              | |         |   |||||     |         |",
)
"""The header tracefs prints above the events (nop tracer, irq-info on, record-tgid off)."""


def render_line(record: TraceRecord) -> str:
    """Return one event line exactly as tracefs prints it (without the newline)."""
    us = round(record.timestamp * 1e6)
    secs, usecs = divmod(us, 1_000_000)
    if record.event in _FORMATS:
        payload = format_event(record.event, record.fields)
    elif record.payload is not None:
        payload = record.payload
    else:
        payload = format_event(record.event, record.fields)
    return (f"{record.comm:>16}-{record.pid:<7} [{record.cpu:03d}] {record.flags} "
            f"{secs:5d}.{usecs:06d}: {record.event}: {payload}")


def render_trace(
    events: Iterable[TraceRecord] | TraceSink,
    *,
    nr_cpus: int = 1,
    entries_written: int | None = None,
) -> str:
    """Return the text of tracefs ``trace`` for ``events`` (a sink, or records in order).

    ``nr_cpus`` fills ``#P:`` and ``entries_written`` the second count of the
    ``entries-in-buffer/entries-written`` line (default: the number of events, i.e. nothing
    was overwritten).
    """
    if isinstance(events, TraceSink):
        if entries_written is None:
            entries_written = events.entries_written
        events = events.records()
    lines = [render_line(r) for r in events]
    written = len(lines) if entries_written is None else entries_written
    header = "\n".join(TRACE_HEADER_LINES).format(in_buffer=len(lines), written=written,
                                                  nr_cpus=nr_cpus)
    return header + "\n" + "".join(line + "\n" for line in lines)


# comm-pid [cpu] flags timestamp: event: payload. Tolerates: a (tgid) column (record-tgid),
# no flags (trace-cmd report), "comm pid" and "system:event" (perf script), a raw counter
# instead of seconds (trace_clock counter/x86-tsc), and changed runs of blanks.
_LINE = re.compile(
    r"^\s*(?P<comm>.*?\S)[- ](?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?P<cpu>\d+)\]"
    r"(?:\s+(?P<flags>[^\s:]{4,5}))?\s+(?P<ts>\d+(?:\.\d+)?):"
    r"\s+(?:\w+:)?(?P<event>\w+):(?: (?P<payload>.*)|\s*)$"
)
_SKIP = re.compile(r"^\s*(?:#|$)|^CPU:?\s*\d+ \[LOST \d+ EVENTS\]|^##### CPU \d+ buffer started"
                   r"|^version = |^cpus=|^CPU \d+ is empty")
_KEY = re.compile(r"(?:^|(?<=[\s,(]))([A-Za-z_][\w.]*)=")
_NUM = re.compile(r"-?\d+|0x[0-9a-fA-F]+")


def _generic_fields(payload: str) -> dict[str, Any]:
    keys = list(_KEY.finditer(payload))
    out: dict[str, Any] = {}
    for i, m in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(payload)
        value = payload[m.end():end].strip().rstrip(",").strip()
        if _NUM.fullmatch(value):
            out[m.group(1)] = int(value, 0) if value.startswith("0x") else int(value)
        else:
            out[m.group(1)] = value
    return out


def parse_trace(text: str) -> list[TraceRecord]:
    """Parse ftrace text (tracefs ``trace``/``trace_pipe``, ``trace-cmd report``,
    ``perf script``) into :class:`TraceRecord` values, in the order of the text.

    Header and comment lines (``#``), blank lines and ``[LOST n EVENTS]`` markers are skipped.
    Known events in the 6.18 format come back with kernel field names and values (see
    :func:`decode_payload`); anything else with its printed ``key=value`` labels. A line that
    is not an event line raises :class:`ParseError` naming the line.
    """
    if not isinstance(text, str):
        raise ParseError(f"parse_trace() takes the trace text as str, got {type(text).__name__}; "
                         "read the file first (Path(...).read_text())")
    records: list[TraceRecord] = []
    append = records.append
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _LINE.match(line)
        if m is None:
            if _SKIP.match(line):
                continue
            raise ParseError(
                f"line {lineno}: {line[:100]!r} is not an ftrace event line "
                "(expected 'comm-pid [cpu] flags seconds: event: fields'); pass the text of "
                "tracefs 'trace' or 'trace_pipe', 'trace-cmd report' or 'perf script', "
                "without other output mixed in"
            )
        event = m.group("event")
        payload = m.group("payload") or ""
        fields = decode_payload(event, payload)
        keep = None
        if fields is None:
            fields = _generic_fields(payload)
            keep = payload
        flags = m.group("flags") or DEFAULT_FLAGS
        ts = m.group("ts")
        append(TraceRecord(m.group("comm"), int(m.group("pid")), int(m.group("cpu")),
                           float(ts), event, fields, flags if len(flags) == 5 else DEFAULT_FLAGS,
                           keep))
    return records


# --------------------------------------------------------------------------------------------
# DataFrames


def events_dataframe(
    records: Iterable[TraceRecord] | TraceSink, event: str, *, symbolic: bool = True
) -> pd.DataFrame:
    """Return one event type's records as a pandas DataFrame indexed by ``timestamp`` (s).

    Columns: ``comm``, ``pid``, ``cpu``, then the event's fields (kernel names for known
    events). With ``symbolic=True`` (default) fields the kernel prints by name (zone,
    compaction status, migrate mode and reason, gfp flags, sync) hold those names; with
    ``symbolic=False`` the stored values. Needs the optional ``data`` extra
    (``pip install 'pagelab[data]'``).
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise PagelabError(
            "events_dataframe() needs pandas; install it with: pip install 'pagelab[data]'"
        ) from None
    if isinstance(records, TraceSink):
        records = records.records(event)
    rows = [r for r in records if r.event == event]
    fmt = _FORMATS.get(event)
    columns: list[str] = list(fmt.fields) if fmt is not None else []
    for r in rows:
        for k in r.fields:
            if k not in columns:
                columns.append(k)
    data: dict[str, list[Any]] = {
        "comm": [r.comm for r in rows],
        "pid": [r.pid for r in rows],
        "cpu": [r.cpu for r in rows],
    }
    for col in columns:
        data[col] = [r.fields.get(col) for r in rows]
    if symbolic and fmt is not None:
        for field, show in fmt.symbolic:
            if field in data:
                data[field] = [None if v is None else show(v) for v in data[field]]
    index = pd.Index([r.timestamp for r in rows], name="timestamp", dtype="float64")
    frame = pd.DataFrame(data, index=index)
    for col in ("pid", "cpu"):
        frame[col] = frame[col].astype("int64")
    return frame
