"""Allocator-internal flags and constants (models ``mm/internal.h``, v6.16), and the
compaction priorities the allocator and compaction share (``include/linux/compaction.h``)."""

from __future__ import annotations

from enum import IntEnum

from pagelab.mm.mmzone import WMARK_HIGH, WMARK_LOW, WMARK_MIN

# alloc_flags
ALLOC_WMARK_MIN = WMARK_MIN
ALLOC_WMARK_LOW = WMARK_LOW
ALLOC_WMARK_HIGH = WMARK_HIGH
ALLOC_NO_WATERMARKS = 0x04
ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1
ALLOC_OOM = 0x08
ALLOC_NON_BLOCK = 0x10
ALLOC_MIN_RESERVE = 0x20
ALLOC_CPUSET = 0x40
ALLOC_CMA = 0x80
ALLOC_NOFRAGMENT = 0x100
ALLOC_HIGHATOMIC = 0x200
ALLOC_TRYLOCK = 0x400
ALLOC_KSWAPD = 0x800  # == __GFP_KSWAPD_RECLAIM
ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM

# fpi_t flags for the free path (mm/page_alloc.c)
FPI_NONE = 0
FPI_SKIP_REPORT_NOTIFY = 1 << 0
FPI_TO_TAIL = 1 << 1
FPI_TRYLOCK = 1 << 2

# enum rmqueue_mode (v6.15+)
RMQUEUE_NORMAL = 0
RMQUEUE_CMA = 1
RMQUEUE_CLAIM = 2
RMQUEUE_STEAL = 3

#: fallbacks[MIGRATE_PCPTYPES][MIGRATE_PCPTYPES - 1] (mm/page_alloc.c)
fallbacks = (
    (2, 1),  # UNMOVABLE -> RECLAIMABLE, MOVABLE
    (2, 0),  # MOVABLE -> RECLAIMABLE, UNMOVABLE
    (0, 1),  # RECLAIMABLE -> UNMOVABLE, MOVABLE
)

SWAP_CLUSTER_MAX = 32
MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8
#: sysctl_lowmem_reserve_ratio[MAX_NR_ZONES] defaults: DMA, DMA32, Normal, Movable, Device.
DEFAULT_LOWMEM_RESERVE_RATIO = (256, 256, 32, 0, 0)

#: Rounds of reclaim without progress before giving up (``MAX_RECLAIM_RETRIES``).
MAX_RECLAIM_RETRIES = 16
#: Direct compaction rounds that made progress before the allocator stops retrying for it
#: (``MAX_COMPACT_RETRIES``, include/linux/compaction.h).
MAX_COMPACT_RETRIES = 16


class CompactPriority(IntEnum):
    """``enum compact_priority`` (mainline): lower is more thorough.

    Aliases: ``MIN_COMPACT_PRIORITY`` = SYNC_FULL; ``MIN_COMPACT_COSTLY_PRIORITY`` and
    ``DEF_COMPACT_PRIORITY`` = SYNC_LIGHT; ``INIT_COMPACT_PRIORITY`` = ASYNC. Tracepoints print
    the number (``priority=%d``).
    """

    COMPACT_PRIO_SYNC_FULL = 0
    MIN_COMPACT_PRIORITY = 0
    COMPACT_PRIO_SYNC_LIGHT = 1
    MIN_COMPACT_COSTLY_PRIORITY = 1
    DEF_COMPACT_PRIORITY = 1
    COMPACT_PRIO_ASYNC = 2
    INIT_COMPACT_PRIORITY = 2


#: The names the allocator's compaction hook (``Machine.direct_compact``) takes, by priority.
COMPACT_PRIORITY_NAMES = ("sync_full", "sync_light", "async")
