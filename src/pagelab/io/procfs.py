"""The kernel's memory text files, rendered byte for byte and parsed back.

Covers /proc/buddyinfo, /proc/pagetypeinfo, /proc/zoneinfo, /proc/vmstat and the debugfs files
extfrag/extfrag_index and extfrag/unusable_index, as Linux 6.18 prints them (mm/vmstat.c and
mm/page_owner.c, v6.18; checked against the files of a 6.18.44 machine in
``tests/fixtures/live``).

Each file has a frozen dataclass holding what the file shows, a ``render_*`` function that
prints it exactly as the kernel does, and a ``parse_*`` function that reads it back. Parsers
accept the kernel's text and tolerate changed runs of blanks and a missing final newline (as
left by copy and paste); anything else raises :class:`~pagelab.errors.ParseError` naming the
line and what was expected there. For every value ``x``, ``parse_X(render_X(x)) == x``.

Which zones appear follows the kernel: buddyinfo, pagetypeinfo, extfrag_index and
unusable_index list populated zones only (``walk_zones_in_node(..., assert_populated=true)``);
zoneinfo lists every zone of every online node, and for a zone with no present pages stops after
the ``protection:`` line.

Dataclass constructors check and normalise their arguments (lists and numpy arrays become
tuples of ``int``) and raise :class:`~pagelab.errors.InvalidArgument` for values the kernel
could not print.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from pagelab.errors import InvalidArgument, ParseError
from pagelab.mm.vmstat import (
    NR_PAGE_ORDERS,
    fill_contig_page_info,
    fragmentation_index,
    unusable_free_index,
)

__all__ = [
    "PAGETYPEINFO_FREE_CAP",
    "Buddyinfo",
    "BuddyinfoRow",
    "ExtfragIndex",
    "FragIndexRow",
    "Pagetypeinfo",
    "PagetypeinfoBlockRow",
    "PagetypeinfoFreeRow",
    "UnusableIndex",
    "Vmstat",
    "Zoneinfo",
    "ZoneinfoPageset",
    "ZoneinfoZone",
    "extfrag_index_from_buddyinfo",
    "extfrag_index_table",
    "parse_buddyinfo",
    "parse_extfrag_index",
    "parse_pagetypeinfo",
    "parse_unusable_index",
    "parse_vmstat",
    "parse_zoneinfo",
    "render_buddyinfo",
    "render_extfrag_index",
    "render_pagetypeinfo",
    "render_unusable_index",
    "render_vmstat",
    "render_zoneinfo",
    "unusable_index_from_buddyinfo",
    "unusable_index_table",
]

PAGETYPEINFO_FREE_CAP: Final = 100000
"""pagetypeinfo_showfree_print() stops counting a free list here and prints ``>100000``."""

_U64_MAX: Final = (1 << 64) - 1
_S64_MIN: Final = -(1 << 63)
_S64_MAX: Final = (1 << 63) - 1
_S32_MIN: Final = -(1 << 31)
_S32_MAX: Final = (1 << 31) - 1
_U32_MAX: Final = (1 << 32) - 1

_UINT_RE: Final = re.compile(r"[0-9]+")
_SINT_RE: Final = re.compile(r"-?[0-9]+")
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_]+")
_INDEX_RE: Final = re.compile(r"(-?[0-9]+)\.(-?[0-9]+)")


# ---------------------------------------------------------------------------------------------
# Argument checking for the dataclasses
# ---------------------------------------------------------------------------------------------


def _int_in(what: str, value: object, lo: int, hi: int) -> int:
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgument(f"{what} must be an integer, got {value!r}") from None
    if not lo <= v <= hi:
        raise InvalidArgument(
            f"{what} is {v}, outside {lo}..{hi} that the kernel's format can hold; "
            "pass the value the kernel would print"
        )
    return v


def _ulong(what: str, value: object) -> int:
    return _int_in(what, value, 0, _U64_MAX)


def _ints(what: str, values: Iterable[object], n: int | None, lo: int, hi: int) -> tuple[int, ...]:
    try:
        seq = list(values)
    except TypeError:
        raise InvalidArgument(f"{what} must be a sequence of integers, got {values!r}") from None
    if n is not None and len(seq) != n:
        raise InvalidArgument(f"{what} must have {n} entries (one per order), got {len(seq)}")
    return tuple(_int_in(f"{what}[{i}]", v, lo, hi) for i, v in enumerate(seq))


def _name(what: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidArgument(
            f"{what} must be a non-empty word of letters, digits and '_' "
            f"(as the kernel's names are), got {value!r}"
        )
    return value


def _node(value: object) -> int:
    return _int_in("node", value, 0, _S32_MAX)


def _pairs(what: str, items: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    out = []
    for i, item in enumerate(items):
        try:
            name, value = item
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"{what}[{i}] must be a (name, value) pair, got {item!r}"
            ) from None
        out.append((_name(f"{what}[{i}] name", name), _ulong(f"{what}[{i}] value", value)))
    return tuple(out)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


# ---------------------------------------------------------------------------------------------
# Line reader shared by the parsers
# ---------------------------------------------------------------------------------------------


_T = TypeVar("_T")


def _typed(what: str, items: Iterable[object], item_type: type[_T]) -> tuple[_T, ...]:
    """Return ``items`` as a tuple, checking each is an ``item_type`` (``what`` names them)."""
    out = tuple(items)
    for item in out:
        if not isinstance(item, item_type):
            raise InvalidArgument(f"{what} must be {item_type.__name__}, got {item!r}")
    return out  # type: ignore[return-value]


class _Lines:
    """The lines of a text with 1-based numbers, and ParseError messages that name them."""

    def __init__(self, filename: str, text: str) -> None:
        if not isinstance(text, str):
            raise InvalidArgument(
                f"parse_{filename} takes the file's text as str, got {type(text).__name__}; "
                "decode bytes first (the kernel prints ASCII)"
            )
        self.filename = filename
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline
        self.lines = lines
        self.pos = 0

    def error(self, expected: str, lineno: int | None = None) -> ParseError:
        n = self.pos + 1 if lineno is None else lineno
        if n > len(self.lines):
            found = "the end of the text"
        else:
            found = repr(self.lines[n - 1])
        return ParseError(
            f"{self.filename} line {n}: expected {expected}, found {found}; pass the complete, "
            f"unedited text of the file as Linux 6.18 prints it"
        )

    def at_end(self) -> bool:
        return self.pos >= len(self.lines)

    def peek(self) -> str | None:
        return None if self.at_end() else self.lines[self.pos]

    def take(self, expected: str) -> str:
        if self.at_end():
            raise self.error(expected)
        line = self.lines[self.pos]
        self.pos += 1
        return line

    def uint(self, token: str, expected: str, lineno: int) -> int:
        if not _UINT_RE.fullmatch(token):
            raise self.error(expected, lineno)
        v = int(token)
        if v > _U64_MAX:
            raise self.error(f"{expected} (a value below 2**64)", lineno)
        return v

    def sint(self, token: str, expected: str, lineno: int, lo: int, hi: int) -> int:
        if not _SINT_RE.fullmatch(token):
            raise self.error(expected, lineno)
        v = int(token)
        if not lo <= v <= hi:
            raise self.error(f"{expected} (a value in {lo}..{hi})", lineno)
        return v


def _node_zone_prefix(
    r: _Lines, tokens: list[str], lineno: int, zone_comma: bool = False
) -> tuple[int, str]:
    """Parse ``Node N, zone NAME`` (optionally ``NAME,``) from the first four tokens."""
    what = "'Node <n>, zone <name>'"
    if len(tokens) < 4 or tokens[0] != "Node" or tokens[2] != "zone":
        raise r.error(what, lineno)
    node_tok = tokens[1]
    if not node_tok.endswith(","):
        raise r.error(what, lineno)
    node = r.sint(node_tok[:-1], what, lineno, 0, _S32_MAX)
    zone = tokens[3]
    if zone_comma:
        if not zone.endswith(","):
            raise r.error("'Node <n>, zone <name>, type <migratetype>'", lineno)
        zone = zone[:-1]
    if not _NAME_RE.fullmatch(zone):
        raise r.error(f"{what} with a zone name of letters and digits", lineno)
    return node, zone


class _HasNode(Protocol):
    @property
    def node(self) -> int: ...


def _unique_nodes(rows: Iterable[_HasNode]) -> list[int]:
    """Node ids in order of first appearance."""
    return list(dict.fromkeys(row.node for row in rows))


# ---------------------------------------------------------------------------------------------
# /proc/buddyinfo
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuddyinfoRow:
    """One populated zone: ``nr_free[k]`` is ``zone->free_area[k].nr_free`` for k = 0..10."""

    node: int
    zone: str
    nr_free: tuple[int, ...]

    def __post_init__(self) -> None:
        _set(self, "node", _node(self.node))
        _set(self, "zone", _name("zone", self.zone))
        _set(self, "nr_free", _ints("nr_free", self.nr_free, NR_PAGE_ORDERS, 0, _U64_MAX))


@dataclass(frozen=True)
class Buddyinfo:
    """Contents of /proc/buddyinfo: one row per populated zone, in node then zone order."""

    rows: tuple[BuddyinfoRow, ...]

    def __post_init__(self) -> None:
        _set(self, "rows", _typed("Buddyinfo rows", self.rows, BuddyinfoRow))

    def row(self, node: int, zone: str) -> BuddyinfoRow:
        """The row of ``zone`` on ``node``; InvalidArgument if the file has none."""
        for r in self.rows:
            if r.node == node and r.zone == zone:
                return r
        have = ", ".join(f"{r.node}/{r.zone}" for r in self.rows)
        raise InvalidArgument(f"no row for node {node} zone {zone!r}; rows are: {have}")


def _buddyinfo_line(node: int, zone: str, counts: Iterable[str]) -> str:
    return f"Node {node}, zone {zone:>8s} " + "".join(counts) + "\n"


def render_buddyinfo(data: Buddyinfo) -> str:
    """Model of mm/vmstat.c:frag_show() / frag_show_print() (v6.18).

    ``"Node %d, zone %8s "`` then ``"%6lu "`` per order, then a newline, for each row.
    """
    return "".join(
        _buddyinfo_line(r.node, r.zone, (f"{n:6d} " for n in r.nr_free)) for r in data.rows
    )


def parse_buddyinfo(text: str) -> Buddyinfo:
    """Read /proc/buddyinfo text back into :class:`Buddyinfo` (inverse of render_buddyinfo)."""
    r = _Lines("buddyinfo", text)
    if r.at_end():
        raise r.error("'Node <n>, zone <name>' followed by 11 free-block counts")
    rows = []
    while not r.at_end():
        lineno = r.pos + 1
        tokens = r.take("a zone line").split()
        node, zone = _node_zone_prefix(r, tokens, lineno)
        counts = tokens[4:]
        if len(counts) != NR_PAGE_ORDERS:
            raise r.error(
                f"{NR_PAGE_ORDERS} free-block counts (orders 0..{NR_PAGE_ORDERS - 1}) after the "
                f"zone name, not {len(counts)}",
                lineno,
            )
        nr_free = [r.uint(t, "a free-block count (unsigned decimal)", lineno) for t in counts]
        rows.append(BuddyinfoRow(node, zone, tuple(nr_free)))
    return Buddyinfo(tuple(rows))


# ---------------------------------------------------------------------------------------------
# /proc/pagetypeinfo
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PagetypeinfoFreeRow:
    """Free blocks on ``free_area[k].free_list[migratetype]`` of one zone, k = 0..10.

    Counts at or above :data:`PAGETYPEINFO_FREE_CAP` are stored as the cap: the kernel stops
    walking a list there and prints ``>100000``.
    """

    node: int
    zone: str
    migratetype: str
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        _set(self, "node", _node(self.node))
        _set(self, "zone", _name("zone", self.zone))
        _set(self, "migratetype", _name("migratetype", self.migratetype))
        counts = _ints("counts", self.counts, NR_PAGE_ORDERS, 0, _U64_MAX)
        _set(self, "counts", tuple(min(c, PAGETYPEINFO_FREE_CAP) for c in counts))


@dataclass(frozen=True)
class PagetypeinfoBlockRow:
    """Pageblocks of one zone counted per migratetype (in ``migratetype_names`` order)."""

    node: int
    zone: str
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        _set(self, "node", _node(self.node))
        _set(self, "zone", _name("zone", self.zone))
        _set(self, "counts", _ints("counts", self.counts, None, 0, _U64_MAX))


@dataclass(frozen=True)
class Pagetypeinfo:
    """Contents of /proc/pagetypeinfo.

    ``migratetype_names`` is the kernel's ``migratetype_names[]`` as printed (6.18 x86-64
    without CONFIG_CMA: Unmovable, Movable, Reclaimable, HighAtomic, Isolate). ``free`` holds
    one row per (node, zone, migratetype); ``blocks`` one row per (node, zone); ``mixed`` the
    "Number of mixed blocks" table printed with CONFIG_PAGE_OWNER and page_owner=on, or None.
    Rows are grouped by node; each node gets its own copy of the headers, as the kernel prints.
    """

    migratetype_names: tuple[str, ...]
    free: tuple[PagetypeinfoFreeRow, ...]
    blocks: tuple[PagetypeinfoBlockRow, ...]
    mixed: tuple[PagetypeinfoBlockRow, ...] | None = None
    pageblock_order: int = 9
    pageblock_nr_pages: int = 512

    def __post_init__(self) -> None:
        names = tuple(_name("migratetype name", n) for n in self.migratetype_names)
        if not names:
            raise InvalidArgument("migratetype_names must name at least one migratetype")
        _set(self, "migratetype_names", names)
        _set(self, "free", tuple(self.free))
        _set(self, "blocks", tuple(self.blocks))
        if self.mixed is not None:
            _set(self, "mixed", tuple(self.mixed))
        _set(self, "pageblock_order", _int_in("pageblock_order", self.pageblock_order, 0, _S32_MAX))
        _set(self, "pageblock_nr_pages", _ulong("pageblock_nr_pages", self.pageblock_nr_pages))
        for row in self.free:
            if not isinstance(row, PagetypeinfoFreeRow):
                raise InvalidArgument(f"free rows must be PagetypeinfoFreeRow, got {row!r}")
            if row.migratetype not in names:
                raise InvalidArgument(
                    f"free row for node {row.node} zone {row.zone} has migratetype "
                    f"{row.migratetype!r}, which is not in migratetype_names {names}"
                )
        for table in (self.blocks, self.mixed or ()):
            for brow in table:
                if not isinstance(brow, PagetypeinfoBlockRow):
                    raise InvalidArgument(f"block rows must be PagetypeinfoBlockRow, got {brow!r}")
                if len(brow.counts) != len(names):
                    raise InvalidArgument(
                        f"block row for node {brow.node} zone {brow.zone} has "
                        f"{len(brow.counts)} counts but there are {len(names)} migratetypes"
                    )
        rank = {
            n: i
            for i, n in enumerate(_unique_nodes([*self.free, *self.blocks, *(self.mixed or ())]))
        }
        for rows in (self.free, self.blocks, self.mixed or ()):
            ranks = [rank[row.node] for row in rows]
            if ranks != sorted(ranks):
                raise InvalidArgument(
                    "pagetypeinfo rows must be grouped by node, with the nodes in the same order "
                    "in every table (the kernel prints each node's tables together); sort them"
                )

    def free_counts(self, node: int, zone: str) -> dict[str, tuple[int, ...]]:
        """Per-migratetype free counts of one zone, keyed by migratetype name."""
        return {r.migratetype: r.counts for r in self.free if r.node == node and r.zone == zone}

    def block_counts(self, node: int, zone: str) -> dict[str, int]:
        """Pageblocks per migratetype of one zone, keyed by migratetype name."""
        for r in self.blocks:
            if r.node == node and r.zone == zone:
                return dict(zip(self.migratetype_names, r.counts, strict=True))
        raise InvalidArgument(f"no block-count row for node {node} zone {zone!r}")


_PTI_FREE_TITLE: Final = "Free pages count per migrate type at order"
_PTI_BLOCKS_TITLE: Final = "Number of blocks type "
_PTI_MIXED_TITLE: Final = "Number of mixed blocks "


def _pti_free_count(n: int) -> str:
    if n >= PAGETYPEINFO_FREE_CAP:
        return f">{PAGETYPEINFO_FREE_CAP:6d} "
    return f"{n:6d} "


def _pti_block_table(title: str, names: Sequence[str], rows: Iterable[PagetypeinfoBlockRow]) -> str:
    out = [f"\n{title:<23s}" + "".join(f"{n:>12s} " for n in names) + "\n"]
    out += [
        f"Node {r.node}, zone {r.zone:>8s} " + "".join(f"{c:12d} " for c in r.counts) + "\n"
        for r in rows
    ]
    return "".join(out)


def render_pagetypeinfo(data: Pagetypeinfo) -> str:
    """Model of mm/vmstat.c:pagetypeinfo_show() (v6.18).

    Per node with memory: pageblock_order and pageblock_nr_pages, then
    pagetypeinfo_showfree() (``"Node %4d, zone %8s, type %12s "`` + ``"%s%6lu "`` per order,
    the ``%s`` being ``>`` for a list of 100000 or more), pagetypeinfo_showblockcount()
    (``"Node %d, zone %8s "`` + ``"%12lu "`` per migratetype) and, with page_owner,
    pagetypeinfo_showmixedcount() (same row format; mm/page_owner.c).
    """
    out = []
    nodes = _unique_nodes([*data.free, *data.blocks, *(data.mixed or ())])
    for node in nodes:
        out.append(f"Page block order: {data.pageblock_order}\n")
        out.append(f"Pages per block:  {data.pageblock_nr_pages}\n")
        out.append("\n")
        out.append(
            f"{_PTI_FREE_TITLE:<43s} " + "".join(f"{o:6d} " for o in range(NR_PAGE_ORDERS)) + "\n"
        )
        out += [
            f"Node {r.node:4d}, zone {r.zone:>8s}, type {r.migratetype:>12s} "
            + "".join(_pti_free_count(c) for c in r.counts)
            + "\n"
            for r in data.free
            if r.node == node
        ]
        names = data.migratetype_names
        out.append(
            _pti_block_table(_PTI_BLOCKS_TITLE, names, (r for r in data.blocks if r.node == node))
        )
        if data.mixed is not None:
            out.append(
                _pti_block_table(_PTI_MIXED_TITLE, names, (r for r in data.mixed if r.node == node))
            )
    return "".join(out)


def _pti_header_value(r: _Lines, label: str, expected: str) -> int:
    lineno = r.pos + 1
    line = r.take(expected)
    if not line.startswith(label):
        raise r.error(expected, lineno)
    return r.uint(line[len(label) :].strip(), expected, lineno)


def _pti_same_node(r: _Lines, lineno: int, node: int, section: list[int]) -> None:
    """All rows between two 'Page block order' headers belong to one node."""
    if not section:
        section.append(node)
    elif node != section[0]:
        raise r.error(f"a row for node {section[0]}, the node this section started with", lineno)


def _pti_block_rows(
    r: _Lines, names: tuple[str, ...], table: str, section: list[int]
) -> list[PagetypeinfoBlockRow]:
    rows: list[PagetypeinfoBlockRow] = []
    while True:
        line = r.peek()
        if line is None or line.strip() == "" or line.startswith("Page block order:"):
            return rows
        if not line.startswith("Node"):
            raise r.error(
                f"a {table} row 'Node <n>, zone <name> <counts>', an empty line, "
                "'Page block order:' (the next node) or the end of the text"
            )
        lineno = r.pos + 1
        tokens = r.take("a block-count row").split()
        node, zone = _node_zone_prefix(r, tokens, lineno)
        _pti_same_node(r, lineno, node, section)
        counts = tokens[4:]
        if len(counts) != len(names):
            raise r.error(
                f"{len(names)} {table} counts (one per migratetype: {' '.join(names)}), "
                f"not {len(counts)}",
                lineno,
            )
        rows.append(
            PagetypeinfoBlockRow(
                node, zone, tuple(r.uint(t, f"a {table} count", lineno) for t in counts)
            )
        )


def _pti_names(r: _Lines, title: str) -> tuple[str, ...]:
    lineno = r.pos + 1
    line = r.take(f"the '{title.strip()}' header")
    if not line.startswith(title.strip()):
        raise r.error(f"the '{title.strip()}' header", lineno)
    names = tuple(line[len(title.strip()) :].split())
    if not names or not all(_NAME_RE.fullmatch(n) for n in names):
        raise r.error(f"the '{title.strip()}' header followed by migratetype names", lineno)
    return names


def parse_pagetypeinfo(text: str) -> Pagetypeinfo:
    """Read /proc/pagetypeinfo text back into :class:`Pagetypeinfo`.

    A free count printed as ``>100000`` reads as 100000.
    """
    r = _Lines("pagetypeinfo", text)
    if r.at_end():
        raise r.error("'Page block order: <n>'")
    free: list[PagetypeinfoFreeRow] = []
    blocks: list[PagetypeinfoBlockRow] = []
    mixed: list[PagetypeinfoBlockRow] | None = None
    names: tuple[str, ...] | None = None
    order: int | None = None
    per_block: int | None = None
    section = 0
    seen_nodes: set[int] = set()
    while not r.at_end():
        section += 1
        start = r.pos + 1
        o = _pti_header_value(r, "Page block order:", "'Page block order: <n>'")
        p = _pti_header_value(r, "Pages per block:", "'Pages per block:  <n>'")
        if order is None:
            order, per_block = o, p
        elif (o, p) != (order, per_block):
            raise r.error(
                f"the same pageblock order and size as the first node ({order}, {per_block})",
                start,
            )
        lineno = r.pos + 1
        if r.take("an empty line").strip() != "":
            raise r.error("an empty line after 'Pages per block'", lineno)
        lineno = r.pos + 1
        header = r.take(f"the '{_PTI_FREE_TITLE}' header")
        if not header.startswith(_PTI_FREE_TITLE):
            raise r.error(f"the '{_PTI_FREE_TITLE}' header", lineno)
        orders = header[len(_PTI_FREE_TITLE) :].split()
        if orders != [str(k) for k in range(NR_PAGE_ORDERS)]:
            raise r.error(f"the orders 0 to {NR_PAGE_ORDERS - 1} after '{_PTI_FREE_TITLE}'", lineno)
        section_free: list[PagetypeinfoFreeRow] = []
        section_node: list[int] = []
        while True:
            line = r.peek()
            if line is None:
                raise r.error("an empty line and then the 'Number of blocks type' table")
            if line.strip() == "":
                r.pos += 1
                break
            lineno = r.pos + 1
            if not line.startswith("Node"):
                raise r.error(
                    "a free-count row 'Node <n>, zone <name>, type <migratetype> ...' or the empty "
                    "line before 'Number of blocks type'"
                )
            tokens = r.take("a free-count row").split()
            node, zone = _node_zone_prefix(r, tokens, lineno, zone_comma=True)
            _pti_same_node(r, lineno, node, section_node)
            if len(tokens) < 6 or tokens[4] != "type":
                raise r.error("'Node <n>, zone <name>, type <migratetype>'", lineno)
            mt = tokens[5]
            counts = tokens[6:]
            if len(counts) != NR_PAGE_ORDERS:
                raise r.error(
                    f"{NR_PAGE_ORDERS} free counts after the migratetype, not {len(counts)}", lineno
                )
            values = []
            for t in counts:
                capped = t.startswith(">")
                v = r.uint(t[1:] if capped else t, "a free count ('>100000' when capped)", lineno)
                if capped and v != PAGETYPEINFO_FREE_CAP:
                    raise r.error(f"'>{PAGETYPEINFO_FREE_CAP}' (the only capped value)", lineno)
                if not capped and v >= PAGETYPEINFO_FREE_CAP:
                    raise r.error(f"a count below {PAGETYPEINFO_FREE_CAP} or '>100000'", lineno)
                values.append(v)
            if not _NAME_RE.fullmatch(mt):
                raise r.error("a migratetype name after 'type'", lineno)
            section_free.append(PagetypeinfoFreeRow(node, zone, mt, tuple(values)))
        section_names = _pti_names(r, _PTI_BLOCKS_TITLE)
        if names is None:
            names = section_names
        elif section_names != names:
            raise r.error(f"the same migratetypes as the first node ({' '.join(names)})", r.pos)
        for fr in section_free:
            if fr.migratetype not in names:
                raise ParseError(
                    f"pagetypeinfo: free row for node {fr.node} zone {fr.zone} has migratetype "
                    f"{fr.migratetype!r}, which the 'Number of blocks type' header does not list "
                    f"({' '.join(names)}); pass the complete, unedited text of the file as "
                    "Linux 6.18 prints it"
                )
        free += section_free
        blocks += _pti_block_rows(r, names, "block", section_node)
        line = r.peek()
        if line is not None and line.strip() == "":
            r.pos += 1
            mixed_names = _pti_names(r, _PTI_MIXED_TITLE)
            if mixed_names != names:
                raise r.error(
                    f"the same migratetypes as 'Number of blocks type' ({' '.join(names)})", r.pos
                )
            if mixed is None:
                if section > 1:
                    raise r.error("no mixed-block table (the first node has none)", r.pos)
                mixed = []
            mixed += _pti_block_rows(r, names, "mixed-block", section_node)
        elif mixed is not None:
            raise r.error(
                "an empty line and the 'Number of mixed blocks' table (as for the first node)"
            )
        if section_node:
            if section_node[0] in seen_nodes:
                raise r.error(f"node {section_node[0]} only once (it already had a section)", start)
            seen_nodes.add(section_node[0])
        if not r.at_end() and not (r.peek() or "").startswith("Page block order:"):
            raise r.error("'Page block order: <n>' (the next node) or the end of the text")
    assert names is not None and order is not None and per_block is not None
    return Pagetypeinfo(
        names,
        tuple(free),
        tuple(blocks),
        None if mixed is None else tuple(mixed),
        order,
        per_block,
    )


# ---------------------------------------------------------------------------------------------
# /proc/zoneinfo
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneinfoPageset:
    """One CPU's ``per_cpu_pages`` of a zone plus its vmstat threshold (all printed ``%i``)."""

    cpu: int
    count: int
    high: int
    batch: int
    high_min: int
    high_max: int
    stat_threshold: int

    def __post_init__(self) -> None:
        for f in ("cpu", "count", "high", "batch", "high_min", "high_max", "stat_threshold"):
            _set(self, f, _int_in(f, getattr(self, f), _S32_MIN, _S32_MAX))


_ZONE_WMARK_FIELDS: Final = (
    "boost",
    "min",
    "low",
    "high",
    "promo",
    "spanned",
    "present",
    "managed",
    "cma",
)


@dataclass(frozen=True)
class ZoneinfoZone:
    """One zone of /proc/zoneinfo.

    ``free`` is NR_FREE_PAGES; ``boost`` the watermark boost; ``min``/``low``/``high``/
    ``promo`` the watermarks (boost included); ``spanned``/``present``/``managed``/``cma`` the
    page counts; ``protection`` the ``lowmem_reserve`` array (one entry per zone type).
    ``node_stats`` holds the "per-node stats" block printed on the node's first populated zone
    (None elsewhere). For a populated zone (``present > 0``) ``stats`` holds the zone stat
    items then the NUMA event items, ``pagesets`` one entry per online CPU, and
    ``node_unreclaimable`` (0/1) and ``start_pfn`` are set; for an unpopulated zone those are
    ``()``, ``()``, None and None, since the kernel prints nothing after ``protection``.
    """

    node: int
    zone: str
    free: int
    boost: int
    min: int
    low: int
    high: int
    promo: int
    spanned: int
    present: int
    managed: int
    cma: int
    protection: tuple[int, ...]
    node_stats: tuple[tuple[str, int], ...] | None = None
    stats: tuple[tuple[str, int], ...] = ()
    pagesets: tuple[ZoneinfoPageset, ...] = ()
    node_unreclaimable: int | None = None
    start_pfn: int | None = None

    def __post_init__(self) -> None:
        _set(self, "node", _node(self.node))
        _set(self, "zone", _name("zone", self.zone))
        _set(self, "free", _ulong("free", self.free))
        for f in _ZONE_WMARK_FIELDS:
            _set(self, f, _ulong(f, getattr(self, f)))
        protection = _ints("protection", self.protection, None, _S64_MIN, _S64_MAX)
        if not protection:
            raise InvalidArgument("protection must have one entry per zone type (MAX_NR_ZONES)")
        _set(self, "protection", protection)
        if self.node_stats is not None:
            _set(self, "node_stats", _pairs("node_stats", self.node_stats))
        _set(self, "stats", _pairs("stats", self.stats))
        pagesets = tuple(self.pagesets)
        for p in pagesets:
            if not isinstance(p, ZoneinfoPageset):
                raise InvalidArgument(f"pagesets must be ZoneinfoPageset, got {p!r}")
        _set(self, "pagesets", pagesets)
        if self.present == 0:
            if (
                self.stats
                or pagesets
                or self.node_unreclaimable is not None
                or (self.start_pfn is not None)
            ):
                raise InvalidArgument(
                    f"zone {self.zone} of node {self.node} has present 0, so the kernel prints "
                    "nothing after 'protection'; pass stats=(), pagesets=(), "
                    "node_unreclaimable=None and start_pfn=None"
                )
        else:
            if self.node_unreclaimable is None or self.start_pfn is None:
                raise InvalidArgument(
                    f"zone {self.zone} of node {self.node} is populated (present "
                    f"{self.present}); pass node_unreclaimable (0 or 1) and start_pfn"
                )
            _set(
                self,
                "node_unreclaimable",
                _int_in("node_unreclaimable", self.node_unreclaimable, 0, _U32_MAX),
            )
            _set(self, "start_pfn", _ulong("start_pfn", self.start_pfn))

    @property
    def populated(self) -> bool:
        """populated_zone(): the zone has present pages."""
        return self.present != 0

    def stat(self, name: str) -> int:
        """The value of a zone counter line (``nr_free_pages``, ``numa_hit`` ...)."""
        for n, v in self.stats:
            if n == name:
                return v
        raise InvalidArgument(f"zone {self.zone} of node {self.node} has no counter {name!r}")


@dataclass(frozen=True)
class Zoneinfo:
    """Contents of /proc/zoneinfo: every zone of every online node, in order."""

    zones: tuple[ZoneinfoZone, ...]

    def __post_init__(self) -> None:
        _set(self, "zones", _typed("Zoneinfo zones", self.zones, ZoneinfoZone))

    def zone(self, node: int, zone: str) -> ZoneinfoZone:
        """The entry of ``zone`` on ``node``; InvalidArgument if absent."""
        for z in self.zones:
            if z.node == node and z.zone == zone:
                return z
        raise InvalidArgument(f"zoneinfo has no zone {zone!r} on node {node}")


def _render_zone(z: ZoneinfoZone) -> str:
    out = [f"Node {z.node}, zone {z.zone:>8s}"]
    if z.node_stats is not None:
        out.append("\n  per-node stats")
        out += [f"\n      {name:<12s} {value}" for name, value in z.node_stats]
    out.append(
        f"\n  pages free     {z.free}"
        f"\n        boost    {z.boost}"
        f"\n        min      {z.min}"
        f"\n        low      {z.low}"
        f"\n        high     {z.high}"
        f"\n        promo    {z.promo}"
        f"\n        spanned  {z.spanned}"
        f"\n        present  {z.present}"
        f"\n        managed  {z.managed}"
        f"\n        cma      {z.cma}"
    )
    out.append("\n        protection: (" + ", ".join(str(p) for p in z.protection) + ")")
    if not z.populated:
        out.append("\n")
        return "".join(out)
    out += [f"\n      {name:<12s} {value}" for name, value in z.stats]
    out.append("\n  pagesets")
    for p in z.pagesets:
        out.append(
            f"\n    cpu: {p.cpu}"
            f"\n              count:    {p.count}"
            f"\n              high:     {p.high}"
            f"\n              batch:    {p.batch}"
            f"\n              high_min: {p.high_min}"
            f"\n              high_max: {p.high_max}"
            f"\n  vm stats threshold: {p.stat_threshold}"
        )
    out.append(
        f"\n  node_unreclaimable:  {z.node_unreclaimable}\n  start_pfn:           {z.start_pfn}\n"
    )
    return "".join(out)


def render_zoneinfo(data: Zoneinfo) -> str:
    """Model of mm/vmstat.c:zoneinfo_show() / zoneinfo_show_print() (v6.18).

    Counter lines are ``"\\n      %-12s %lu"``; watermarks and sizes use fixed labels;
    pagesets print count, high, batch, high_min, high_max (``%i``) and the CPU's vm stats
    threshold (CONFIG_SMP).
    """
    return "".join(_render_zone(z) for z in data.zones)


def _zi_fields(r: _Lines, expected: str) -> tuple[list[str], int]:
    lineno = r.pos + 1
    return r.take(expected).split(), lineno


def _zi_labelled(r: _Lines, label: Sequence[str], signed: bool = False) -> int:
    text = " ".join(label)
    expected = f"'{text} <n>'"
    tokens, lineno = _zi_fields(r, expected)
    if tokens[: len(label)] != list(label) or len(tokens) != len(label) + 1:
        raise r.error(expected, lineno)
    if signed:
        return r.sint(tokens[-1], expected, lineno, _S32_MIN, _S32_MAX)
    return r.uint(tokens[-1], expected, lineno)


def _zi_counter(r: _Lines, expected: str) -> tuple[str, int]:
    tokens, lineno = _zi_fields(r, expected)
    if len(tokens) != 2 or not _NAME_RE.fullmatch(tokens[0]):
        raise r.error(expected, lineno)
    return tokens[0], r.uint(tokens[1], expected, lineno)


def _zi_is_header(line: str | None) -> bool:
    return line is not None and line.startswith("Node ")


def _parse_zone(r: _Lines) -> ZoneinfoZone:
    tokens, lineno = _zi_fields(r, "'Node <n>, zone <name>'")
    node, zone = _node_zone_prefix(r, tokens, lineno)
    if len(tokens) != 4:
        raise r.error("'Node <n>, zone <name>' alone on its line", lineno)
    node_stats: list[tuple[str, int]] | None = None
    if (r.peek() or "").strip() == "per-node stats":
        r.pos += 1
        node_stats = []
        while (r.peek() or "").split()[:2] != ["pages", "free"]:
            if r.at_end() or _zi_is_header(r.peek()):
                raise r.error("per-node counter lines and then 'pages free <n>'")
            node_stats.append(_zi_counter(r, "a node counter line '<name> <n>' or 'pages free'"))
    free = _zi_labelled(r, ("pages", "free"))
    values = {f: _zi_labelled(r, (f,)) for f in _ZONE_WMARK_FIELDS}
    expected = "'protection: (<n>, <n>, ...)'"
    lineno = r.pos + 1
    m = re.fullmatch(r"\s*protection: \((.*)\)\s*", r.take(expected))
    if m is None:
        raise r.error(expected, lineno)
    parts = [p.strip() for p in m.group(1).split(",")]
    protection = tuple(r.sint(p, expected, lineno, _S64_MIN, _S64_MAX) for p in parts)
    w = values
    if w["present"] == 0:
        if not (r.at_end() or _zi_is_header(r.peek())):
            raise r.error(
                "the next 'Node <n>, zone <name>' or the end of the text (a zone with present 0 "
                "ends after 'protection')"
            )
        return ZoneinfoZone(
            node,
            zone,
            free,
            w["boost"],
            w["min"],
            w["low"],
            w["high"],
            w["promo"],
            w["spanned"],
            w["present"],
            w["managed"],
            w["cma"],
            protection,
            node_stats=None if node_stats is None else tuple(node_stats),
        )
    stats: list[tuple[str, int]] = []
    while (r.peek() or "").strip() != "pagesets":
        if r.at_end() or _zi_is_header(r.peek()):
            raise r.error("zone counter lines and then 'pagesets'")
        stats.append(_zi_counter(r, "a zone counter line '<name> <n>' or 'pagesets'"))
    r.pos += 1
    pagesets = []
    while (r.peek() or "").split()[:1] == ["cpu:"]:
        cpu = _zi_labelled(r, ("cpu:",), signed=True)
        count, high, batch, high_min, high_max = (
            _zi_labelled(r, (f"{f}:",), signed=True)
            for f in ("count", "high", "batch", "high_min", "high_max")
        )
        threshold = _zi_labelled(r, ("vm", "stats", "threshold:"), signed=True)
        pagesets.append(ZoneinfoPageset(cpu, count, high, batch, high_min, high_max, threshold))
    lineno = r.pos + 1
    unreclaimable = _zi_labelled(r, ("node_unreclaimable:",))
    if unreclaimable > _U32_MAX:
        raise r.error("'node_unreclaimable: <0 or 1>'", lineno)
    start_pfn = _zi_labelled(r, ("start_pfn:",))
    return ZoneinfoZone(
        node,
        zone,
        free,
        w["boost"],
        w["min"],
        w["low"],
        w["high"],
        w["promo"],
        w["spanned"],
        w["present"],
        w["managed"],
        w["cma"],
        protection,
        node_stats=None if node_stats is None else tuple(node_stats),
        stats=tuple(stats),
        pagesets=tuple(pagesets),
        node_unreclaimable=unreclaimable,
        start_pfn=start_pfn,
    )


def parse_zoneinfo(text: str) -> Zoneinfo:
    """Read /proc/zoneinfo text back into :class:`Zoneinfo` (inverse of render_zoneinfo)."""
    r = _Lines("zoneinfo", text)
    if r.at_end():
        raise r.error("'Node <n>, zone <name>'")
    zones = []
    while not r.at_end():
        zones.append(_parse_zone(r))
    return Zoneinfo(tuple(zones))


# ---------------------------------------------------------------------------------------------
# /proc/vmstat
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vmstat:
    """Contents of /proc/vmstat: every ``name value`` line in file order.

    Includes the deprecated ``nr_unstable 0`` line the kernel appends at the end. Build one
    from the model's counters with
    ``Vmstat(pagelab.mm.vmstat.vmstat_show_items(...))``.
    """

    counters: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        counters = _pairs("counters", self.counters)
        seen: set[str] = set()
        for name, _ in counters:
            if name in seen:
                raise InvalidArgument(
                    f"counter {name!r} appears twice; /proc/vmstat names are unique"
                )
            seen.add(name)
        _set(self, "counters", counters)

    def __getitem__(self, name: str) -> int:
        for n, v in self.counters:
            if n == name:
                return v
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _ in self.counters)

    def names(self) -> tuple[str, ...]:
        """Counter names in file order."""
        return tuple(n for n, _ in self.counters)

    def as_dict(self) -> dict[str, int]:
        """Name → value, in file order."""
        return dict(self.counters)


def render_vmstat(data: Vmstat) -> str:
    """Model of mm/vmstat.c:vmstat_show() (v6.18): ``name``, a space, the value, a newline."""
    return "".join(f"{name} {value}\n" for name, value in data.counters)


def parse_vmstat(text: str) -> Vmstat:
    """Read /proc/vmstat text back into :class:`Vmstat` (inverse of render_vmstat)."""
    r = _Lines("vmstat", text)
    if r.at_end():
        raise r.error("'<counter name> <value>'")
    counters = []
    seen: dict[str, int] = {}
    while not r.at_end():
        lineno = r.pos + 1
        tokens = r.take("'<counter name> <value>'").split()
        if len(tokens) != 2 or not _NAME_RE.fullmatch(tokens[0]):
            raise r.error("'<counter name> <value>'", lineno)
        name = tokens[0]
        if name in seen:
            raise r.error(f"a new counter name ({name!r} was already on line {seen[name]})", lineno)
        seen[name] = lineno
        counters.append((name, r.uint(tokens[1], f"'{name} <unsigned value>'", lineno)))
    return Vmstat(tuple(counters))


# ---------------------------------------------------------------------------------------------
# debugfs extfrag/extfrag_index and extfrag/unusable_index
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FragIndexRow:
    """One populated zone's index for orders 0..10, as the kernel's ``int`` ×1000."""

    node: int
    zone: str
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        _set(self, "node", _node(self.node))
        _set(self, "zone", _name("zone", self.zone))
        _set(self, "values", _ints("values", self.values, NR_PAGE_ORDERS, _S32_MIN, _S32_MAX))


@dataclass(frozen=True)
class ExtfragIndex:
    """Contents of debugfs extfrag/extfrag_index (__fragmentation_index ×1000 per order)."""

    rows: tuple[FragIndexRow, ...]

    def __post_init__(self) -> None:
        _set(self, "rows", _typed("ExtfragIndex rows", self.rows, FragIndexRow))


@dataclass(frozen=True)
class UnusableIndex:
    """Contents of debugfs extfrag/unusable_index (unusable_free_index ×1000 per order)."""

    rows: tuple[FragIndexRow, ...]

    def __post_init__(self) -> None:
        _set(self, "rows", _typed("UnusableIndex rows", self.rows, FragIndexRow))


def _c_divmod(value: int, divisor: int) -> tuple[int, int]:
    """C ``/`` and ``%`` on ints: the quotient truncates toward zero."""
    q = abs(value) // divisor
    if value < 0:
        q = -q
    return q, value - q * divisor


def _index_text(value: int, width: int) -> str:
    q, rem = _c_divmod(value, 1000)
    whole = f"{q:{width}d}" if width else str(q)
    return f"{whole}.{rem:03d} "


def _render_index(rows: Iterable[FragIndexRow], width: int) -> str:
    return "".join(
        _buddyinfo_line(r.node, r.zone, (_index_text(v, width) for v in r.values)) for r in rows
    )


def render_extfrag_index(data: ExtfragIndex) -> str:
    """Model of mm/vmstat.c:extfrag_show_print() (v6.18).

    ``"Node %d, zone %8s "`` then ``"%2d.%03d "`` of ``(index / 1000, index % 1000)`` in C
    arithmetic, so −1000 prints ``-1.000`` and an index of −500 prints `` 0.-500``.
    """
    return _render_index(data.rows, 2)


def render_unusable_index(data: UnusableIndex) -> str:
    """Model of mm/vmstat.c:unusable_show_print() (v6.18): as extfrag with ``"%d.%03d "``."""
    return _render_index(data.rows, 0)


def _parse_index(filename: str, text: str, width: int) -> tuple[FragIndexRow, ...]:
    r = _Lines(filename, text)
    if r.at_end():
        raise r.error("'Node <n>, zone <name>' followed by 11 index values")
    rows = []
    while not r.at_end():
        lineno = r.pos + 1
        tokens = r.take("a zone line").split()
        node, zone = _node_zone_prefix(r, tokens, lineno)
        fields = tokens[4:]
        if len(fields) != NR_PAGE_ORDERS:
            raise r.error(
                f"{NR_PAGE_ORDERS} index values (orders 0..{NR_PAGE_ORDERS - 1}) after the zone "
                f"name, not {len(fields)}",
                lineno,
            )
        values = []
        for t in fields:
            m = _INDEX_RE.fullmatch(t)
            expected = "an index value such as '0.523' or '-1.000'"
            if m is None:
                raise r.error(expected, lineno)
            value = int(m.group(1)) * 1000 + int(m.group(2))
            if not _S32_MIN <= value <= _S32_MAX or _index_text(value, width).strip() != t:
                raise r.error(f"{expected} (three decimals, as the kernel prints)", lineno)
            values.append(value)
        rows.append(FragIndexRow(node, zone, tuple(values)))
    return tuple(rows)


def parse_extfrag_index(text: str) -> ExtfragIndex:
    """Read debugfs extfrag/extfrag_index text back into :class:`ExtfragIndex`."""
    return ExtfragIndex(_parse_index("extfrag_index", text, 2))


def parse_unusable_index(text: str) -> UnusableIndex:
    """Read debugfs extfrag/unusable_index text back into :class:`UnusableIndex`."""
    return UnusableIndex(_parse_index("unusable_index", text, 0))


def extfrag_index_table(b: Buddyinfo) -> ExtfragIndex:
    """The extfrag_index the kernel would show for the zones and free counts in ``b``.

    Model of mm/vmstat.c:extfrag_show() (v6.18): both files walk the populated zones, as
    buddyinfo does, so the rows correspond one to one.
    """
    return ExtfragIndex(
        tuple(
            FragIndexRow(
                r.node,
                r.zone,
                tuple(fragmentation_index(r.nr_free, o) for o in range(NR_PAGE_ORDERS)),
            )
            for r in b.rows
        )
    )


def unusable_index_table(b: Buddyinfo) -> UnusableIndex:
    """The unusable_index the kernel would show for ``b``; model of unusable_show() (v6.18)."""
    return UnusableIndex(
        tuple(
            FragIndexRow(
                r.node,
                r.zone,
                tuple(
                    unusable_free_index(o, fill_contig_page_info(r.nr_free, o))
                    for o in range(NR_PAGE_ORDERS)
                ),
            )
            for r in b.rows
        )
    )


def extfrag_index_from_buddyinfo(b: Buddyinfo) -> str:
    """debugfs extfrag/extfrag_index text computed from a buddyinfo snapshot."""
    return render_extfrag_index(extfrag_index_table(b))


def unusable_index_from_buddyinfo(b: Buddyinfo) -> str:
    """debugfs extfrag/unusable_index text computed from a buddyinfo snapshot."""
    return render_unusable_index(unusable_index_table(b))
