"""GFP flags by name and by value, and what they select: migratetype and zone.

Models ``include/linux/gfp_types.h`` and ``include/linux/gfp.h`` of mainline v6.16 on x86-64
without CONFIG_KASAN_HW_TAGS and CONFIG_LOCKDEP (so ``__GFP_SKIP_KASAN`` is 0 and
``__GFP_NOLOCKDEP`` does not exist), with CONFIG_SLAB_OBJ_EXT.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pagelab.errors import InvalidArgument
from pagelab.mm.mmzone import MIGRATE_UNMOVABLE, ZoneType

# enum of ___GFP_*_BIT (gfp_types.h)
___GFP_DMA = 1 << 0
___GFP_HIGHMEM = 1 << 1
___GFP_DMA32 = 1 << 2
___GFP_MOVABLE = 1 << 3
___GFP_RECLAIMABLE = 1 << 4
___GFP_HIGH = 1 << 5
___GFP_IO = 1 << 6
___GFP_FS = 1 << 7
___GFP_ZERO = 1 << 8
# bit 9 is unused since v6.8
___GFP_DIRECT_RECLAIM = 1 << 10
___GFP_KSWAPD_RECLAIM = 1 << 11
___GFP_WRITE = 1 << 12
___GFP_NOWARN = 1 << 13
___GFP_RETRY_MAYFAIL = 1 << 14
___GFP_NOFAIL = 1 << 15
___GFP_NORETRY = 1 << 16
___GFP_MEMALLOC = 1 << 17
___GFP_COMP = 1 << 18
___GFP_NOMEMALLOC = 1 << 19
___GFP_HARDWALL = 1 << 20
___GFP_THISNODE = 1 << 21
___GFP_ACCOUNT = 1 << 22
___GFP_ZEROTAGS = 1 << 23
___GFP_NO_OBJ_EXT = 1 << 24
___GFP_LAST_BIT = 25

GFP_FLAGS: dict[str, int] = {
    "__GFP_DMA": ___GFP_DMA,
    "__GFP_HIGHMEM": ___GFP_HIGHMEM,
    "__GFP_DMA32": ___GFP_DMA32,
    "__GFP_MOVABLE": ___GFP_MOVABLE,
    "__GFP_RECLAIMABLE": ___GFP_RECLAIMABLE,
    "__GFP_HIGH": ___GFP_HIGH,
    "__GFP_IO": ___GFP_IO,
    "__GFP_FS": ___GFP_FS,
    "__GFP_ZERO": ___GFP_ZERO,
    "__GFP_DIRECT_RECLAIM": ___GFP_DIRECT_RECLAIM,
    "__GFP_KSWAPD_RECLAIM": ___GFP_KSWAPD_RECLAIM,
    "__GFP_WRITE": ___GFP_WRITE,
    "__GFP_NOWARN": ___GFP_NOWARN,
    "__GFP_RETRY_MAYFAIL": ___GFP_RETRY_MAYFAIL,
    "__GFP_NOFAIL": ___GFP_NOFAIL,
    "__GFP_NORETRY": ___GFP_NORETRY,
    "__GFP_MEMALLOC": ___GFP_MEMALLOC,
    "__GFP_COMP": ___GFP_COMP,
    "__GFP_NOMEMALLOC": ___GFP_NOMEMALLOC,
    "__GFP_HARDWALL": ___GFP_HARDWALL,
    "__GFP_THISNODE": ___GFP_THISNODE,
    "__GFP_ACCOUNT": ___GFP_ACCOUNT,
    "__GFP_ZEROTAGS": ___GFP_ZEROTAGS,
    "__GFP_NO_OBJ_EXT": ___GFP_NO_OBJ_EXT,
}
__GFP_DMA = ___GFP_DMA
__GFP_HIGHMEM = ___GFP_HIGHMEM
__GFP_DMA32 = ___GFP_DMA32
__GFP_MOVABLE = ___GFP_MOVABLE
__GFP_RECLAIMABLE = ___GFP_RECLAIMABLE
__GFP_HIGH = ___GFP_HIGH
__GFP_IO = ___GFP_IO
__GFP_FS = ___GFP_FS
__GFP_ZERO = ___GFP_ZERO
__GFP_DIRECT_RECLAIM = ___GFP_DIRECT_RECLAIM
__GFP_KSWAPD_RECLAIM = ___GFP_KSWAPD_RECLAIM
__GFP_NOWARN = ___GFP_NOWARN
__GFP_RETRY_MAYFAIL = ___GFP_RETRY_MAYFAIL
__GFP_NOFAIL = ___GFP_NOFAIL
__GFP_NORETRY = ___GFP_NORETRY
__GFP_MEMALLOC = ___GFP_MEMALLOC
__GFP_COMP = ___GFP_COMP
__GFP_NOMEMALLOC = ___GFP_NOMEMALLOC
__GFP_HARDWALL = ___GFP_HARDWALL
__GFP_THISNODE = ___GFP_THISNODE
__GFP_ACCOUNT = ___GFP_ACCOUNT
__GFP_SKIP_KASAN = 0  # no CONFIG_KASAN_HW_TAGS

__GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM
GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE
GFP_MOVABLE_MASK = __GFP_RECLAIMABLE | __GFP_MOVABLE
GFP_MOVABLE_SHIFT = 3

GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM
GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS
GFP_KERNEL_ACCOUNT = GFP_KERNEL | __GFP_ACCOUNT
GFP_NOWAIT = __GFP_KSWAPD_RECLAIM | __GFP_NOWARN
GFP_NOIO = __GFP_RECLAIM
GFP_NOFS = __GFP_RECLAIM | __GFP_IO
GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL
GFP_DMA = __GFP_DMA
GFP_DMA32 = __GFP_DMA32
GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM
GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN
GFP_TRANSHUGE_LIGHT = (
    (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM
)
GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM

GFP_COMPOSITES: dict[str, int] = {
    "GFP_ATOMIC": GFP_ATOMIC,
    "GFP_KERNEL": GFP_KERNEL,
    "GFP_KERNEL_ACCOUNT": GFP_KERNEL_ACCOUNT,
    "GFP_NOWAIT": GFP_NOWAIT,
    "GFP_NOIO": GFP_NOIO,
    "GFP_NOFS": GFP_NOFS,
    "GFP_USER": GFP_USER,
    "GFP_DMA": GFP_DMA,
    "GFP_DMA32": GFP_DMA32,
    "GFP_HIGHUSER": GFP_HIGHUSER,
    "GFP_HIGHUSER_MOVABLE": GFP_HIGHUSER_MOVABLE,
    "GFP_TRANSHUGE_LIGHT": GFP_TRANSHUGE_LIGHT,
    "GFP_TRANSHUGE": GFP_TRANSHUGE,
    "__GFP_RECLAIM": __GFP_RECLAIM,
}

_ALL_NAMES = {**GFP_FLAGS, **GFP_COMPOSITES}
_VALID_BITS = (1 << ___GFP_LAST_BIT) - 1 & ~(1 << 9)


@lru_cache(maxsize=512)
def parse_gfp(gfp: str | int) -> int:
    """Return the gfp mask for ``"GFP_KERNEL|__GFP_COMP"``, ``"0xcc0"`` or an int.

    Names are the kernel's (composites and ``__GFP_*`` bits), joined with ``|``; surrounding
    spaces are ignored; ``"none"`` (an empty mask, as traces print it) is 0. Raises
    :class:`InvalidArgument` for an unknown name or a bit the kernel does not define.
    """
    if isinstance(gfp, int):
        value = gfp
    else:
        value = 0
        for part in (p.strip() for p in gfp.split("|")):
            if part in _ALL_NAMES:
                value |= _ALL_NAMES[part]
            elif part == "none":  # how show_gfp_flags prints an empty mask
                continue
            elif re.fullmatch(r"0[xX][0-9a-fA-F]+|\d+", part):
                value |= int(part, 0)
            else:
                known = ", ".join(sorted(GFP_COMPOSITES))
                raise InvalidArgument(
                    f"unknown GFP flag {part!r}; use a kernel name such as {known}, "
                    "a __GFP_* bit, or a number"
                )
    if value < 0 or value & ~_VALID_BITS:
        raise InvalidArgument(
            f"gfp mask {value:#x} has bits the kernel does not define "
            f"(valid bits: {_VALID_BITS:#x})"
        )
    return value


def gfp_names(gfp: int) -> str:
    """Return ``gfp`` as the kernel's ``show_gfp_flags`` would: composites first, then bits.

    Bits follow in bit order, as ``TRACE_GFP_FLAGS`` lists them in
    include/trace/events/mmflags.h (v6.16); an empty mask is ``"none"``.
    """
    parts = []
    rest = gfp
    for name in ("GFP_TRANSHUGE", "GFP_TRANSHUGE_LIGHT", "GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER",
                 "GFP_USER", "GFP_KERNEL_ACCOUNT", "GFP_KERNEL", "GFP_NOFS", "GFP_ATOMIC",
                 "GFP_NOIO", "GFP_NOWAIT", "GFP_DMA", "GFP_DMA32"):
        value = GFP_COMPOSITES[name]
        if value and rest & value == value:
            parts.append(name)
            rest &= ~value
    for name, value in GFP_FLAGS.items():
        if rest & value:
            parts.append(name)
            rest &= ~value
    if rest:
        parts.append(f"{rest:#x}")
    return "|".join(parts) if parts else "none"  # show_gfp_flags(0) prints "none"


def gfp_migratetype(gfp: int, page_group_by_mobility_disabled: bool = False) -> int:
    """Return the migratetype a gfp mask asks for (``gfp_migratetype``)."""
    if page_group_by_mobility_disabled:
        return MIGRATE_UNMOVABLE
    return (gfp & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT


# GFP_ZONE_TABLE on x86-64 without HIGHMEM: OPT_ZONE_HIGHMEM is ZONE_NORMAL.
_GFP_ZONE_TABLE = {
    0: ZoneType.ZONE_NORMAL,
    __GFP_DMA: ZoneType.ZONE_DMA,
    __GFP_HIGHMEM: ZoneType.ZONE_NORMAL,
    __GFP_DMA32: ZoneType.ZONE_DMA32,
    __GFP_MOVABLE: ZoneType.ZONE_NORMAL,
    __GFP_MOVABLE | __GFP_DMA: ZoneType.ZONE_DMA,
    __GFP_MOVABLE | __GFP_HIGHMEM: ZoneType.ZONE_MOVABLE,
    __GFP_MOVABLE | __GFP_DMA32: ZoneType.ZONE_DMA32,
}


def gfp_zone(gfp: int) -> int:
    """Return the highest zone an allocation with ``gfp`` may use (``gfp_zone``).

    Combinations GFP_ZONE_BAD marks (e.g. ``__GFP_DMA|__GFP_DMA32``) raise InvalidArgument,
    where the kernel would BUG().
    """
    bits = gfp & GFP_ZONEMASK
    zone = _GFP_ZONE_TABLE.get(bits)
    if zone is None:
        raise InvalidArgument(
            f"gfp zone bits {gfp_names(bits)} select no zone (GFP_ZONE_BAD); "
            "use at most one of __GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM"
        )
    return int(zone)


def gfpflags_allow_blocking(gfp: int) -> bool:
    """Return whether the caller may sleep (``__GFP_DIRECT_RECLAIM``)."""
    return bool(gfp & __GFP_DIRECT_RECLAIM)


__all__ = [name for name in dir() if name.isupper() or name.startswith("__GFP")] + [
    "gfp_migratetype", "gfp_names", "gfp_zone", "gfpflags_allow_blocking", "parse_gfp",
]
