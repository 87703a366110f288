"""Counters named as in /proc/vmstat, and the kernel's fragmentation arithmetic.

Model of include/linux/mmzone.h (``enum zone_stat_item``, ``enum numa_stat_item``,
``enum node_stat_item``), include/linux/vmstat.h (``enum vm_stat_item``),
include/linux/vm_event_item.h (``enum vm_event_item``) and the arithmetic of
mm/vmstat.c and mm/compaction.c (v6.18).

The item lists are those of the reference machine (Linux 6.18.44, x86-64, 4 KiB pages) and
match ``tests/fixtures/live/vmstat.txt`` name for name: CONFIG_ZONE_DMA, ZONE_DMA32,
ZONE_DEVICE, NUMA, ZSMALLOC, SWAP, KSM, ZSWAP, NUMA_BALANCING, MIGRATION, COMPACTION,
HUGETLB_PAGE, TRANSPARENT_HUGEPAGE (with PUD), MEMORY_BALLOON, BALLOON_COMPACTION,
IOMMU_SUPPORT all on; CMA, UNACCEPTED_MEMORY, SHADOW_CALL_STACK, DEBUG_TLBFLUSH,
PER_VMA_LOCK_STATS, DEBUG_STACK_USAGE off. Against the v6.15-era vmstat_text, 6.18 has no
``nr_bounce`` or ``nr_writeback_temp`` and adds ``pgpromote_candidate_nrl`` and
``nr_kernel_file_pages``.

Counters are plain Python lists indexed by the module-level ints named like the kernel's enum
items: ``zone.vm_stat[NR_FREE_PAGES]``, ``pgdat.vm_stat[NR_ISOLATED_ANON]``,
``vm_events[PGMIGRATE_SUCCESS]``. Per-zone events follow the zone index, as the kernel's
``__count_zid_vm_events()`` does: ``PGALLOC_DMA + zid`` (zone ids DMA=0, DMA32=1, Normal=2,
Movable=3, Device=4 in this configuration).

Every function here takes plain integers and sequences (lists, tuples, numpy arrays), so it
works on the model's ``free_area[order].nr_free`` and on a parsed /proc/buddyinfo alike.
Arithmetic follows C: ``unsigned long`` values wrap at 2**64, divisions truncate, and a value
returned as ``int``/``unsigned int`` keeps the low 32 bits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from pagelab.errors import InvalidArgument

__all__ = [
    "COMPACTION_HPAGE_ORDER",
    "HPAGE_PMD_NR",
    "MAX_PAGE_ORDER",
    "NODE_STAT_ITEMS",
    "NR_PAGE_ORDERS",
    "NUMA_STAT_ITEMS",
    "VMSTAT_DEPRECATED_ITEMS",
    "VM_EVENT_ITEMS",
    "VM_STAT_ITEMS",
    "ZONE_STAT_ITEMS",
    "ContigPageInfo",
    "extfrag_for_order",
    "fill_contig_page_info",
    "fragmentation_index",
    "fragmentation_score_node",
    "fragmentation_score_wmark",
    "fragmentation_score_zone",
    "fragmentation_score_zone_weighted",
    "unusable_free_index",
    "vmstat_item_print_in_thp",
    "vmstat_show_items",
    "zoneinfo_node_stat_items",
    "zoneinfo_zone_stat_items",
]

# ---------------------------------------------------------------------------------------------
# Geometry used by the arithmetic below (x86-64, 4 KiB pages; include/linux/mmzone.h,
# include/linux/huge_mm.h, mm/internal.h, v6.18).
# ---------------------------------------------------------------------------------------------

MAX_PAGE_ORDER: Final = 10
"""Largest buddy order (inclusive); called MAX_ORDER before v6.8."""
NR_PAGE_ORDERS: Final = MAX_PAGE_ORDER + 1
"""Number of ``free_area`` entries per zone: orders 0..10."""
HPAGE_PMD_ORDER: Final = 9
HPAGE_PMD_NR: Final = 1 << HPAGE_PMD_ORDER
COMPACTION_HPAGE_ORDER: Final = HPAGE_PMD_ORDER
"""Order used by the proactive-compaction score (mm/compaction.c, CONFIG_TRANSPARENT_HUGEPAGE)."""

_U64: Final = (1 << 64) - 1
_U32: Final = (1 << 32) - 1

# ---------------------------------------------------------------------------------------------
# Counter names and indices. Generated from the live /proc/vmstat of 6.18.44 and checked
# against vmstat_text[] in mm/vmstat.c; tests/mm/test_vmstat.py pins both.
# ---------------------------------------------------------------------------------------------

ZONE_STAT_ITEMS: Final[tuple[str, ...]] = (
    "nr_free_pages",
    "nr_free_pages_blocks",
    "nr_zone_inactive_anon",
    "nr_zone_active_anon",
    "nr_zone_inactive_file",
    "nr_zone_active_file",
    "nr_zone_unevictable",
    "nr_zone_write_pending",
    "nr_mlock",
    "nr_zspages",
    "nr_free_cma",
)
"""Names printed for ``enum zone_stat_item``, in /proc/vmstat order."""

ZONE_STAT_ENUM: Final[tuple[str, ...]] = (
    "NR_FREE_PAGES",
    "NR_FREE_PAGES_BLOCKS",
    "NR_ZONE_INACTIVE_ANON",
    "NR_ZONE_ACTIVE_ANON",
    "NR_ZONE_INACTIVE_FILE",
    "NR_ZONE_ACTIVE_FILE",
    "NR_ZONE_UNEVICTABLE",
    "NR_ZONE_WRITE_PENDING",
    "NR_MLOCK",
    "NR_ZSPAGES",
    "NR_FREE_CMA_PAGES",
)
"""The kernel's ``enum zone_stat_item`` item names, index for index with ZONE_STAT_ITEMS."""

NR_FREE_PAGES: Final = 0
NR_FREE_PAGES_BLOCKS: Final = 1
NR_ZONE_INACTIVE_ANON: Final = 2
NR_ZONE_ACTIVE_ANON: Final = 3
NR_ZONE_INACTIVE_FILE: Final = 4
NR_ZONE_ACTIVE_FILE: Final = 5
NR_ZONE_UNEVICTABLE: Final = 6
NR_ZONE_WRITE_PENDING: Final = 7
NR_MLOCK: Final = 8
NR_ZSPAGES: Final = 9
NR_FREE_CMA_PAGES: Final = 10
NR_VM_ZONE_STAT_ITEMS: Final = 11

NUMA_STAT_ITEMS: Final[tuple[str, ...]] = (
    "numa_hit",
    "numa_miss",
    "numa_foreign",
    "numa_interleave",
    "numa_local",
    "numa_other",
)
"""Names printed for ``enum numa_stat_item``, in /proc/vmstat order."""

NUMA_STAT_ENUM: Final[tuple[str, ...]] = (
    "NUMA_HIT",
    "NUMA_MISS",
    "NUMA_FOREIGN",
    "NUMA_INTERLEAVE_HIT",
    "NUMA_LOCAL",
    "NUMA_OTHER",
)
"""The kernel's ``enum numa_stat_item`` item names, index for index with NUMA_STAT_ITEMS."""

NUMA_HIT: Final = 0
NUMA_MISS: Final = 1
NUMA_FOREIGN: Final = 2
NUMA_INTERLEAVE_HIT: Final = 3
NUMA_LOCAL: Final = 4
NUMA_OTHER: Final = 5
NR_VM_NUMA_EVENT_ITEMS: Final = 6

NODE_STAT_ITEMS: Final[tuple[str, ...]] = (
    "nr_inactive_anon",
    "nr_active_anon",
    "nr_inactive_file",
    "nr_active_file",
    "nr_unevictable",
    "nr_slab_reclaimable",
    "nr_slab_unreclaimable",
    "nr_isolated_anon",
    "nr_isolated_file",
    "workingset_nodes",
    "workingset_refault_anon",
    "workingset_refault_file",
    "workingset_activate_anon",
    "workingset_activate_file",
    "workingset_restore_anon",
    "workingset_restore_file",
    "workingset_nodereclaim",
    "nr_anon_pages",
    "nr_mapped",
    "nr_file_pages",
    "nr_dirty",
    "nr_writeback",
    "nr_shmem",
    "nr_shmem_hugepages",
    "nr_shmem_pmdmapped",
    "nr_file_hugepages",
    "nr_file_pmdmapped",
    "nr_anon_transparent_hugepages",
    "nr_vmscan_write",
    "nr_vmscan_immediate_reclaim",
    "nr_dirtied",
    "nr_written",
    "nr_throttled_written",
    "nr_kernel_misc_reclaimable",
    "nr_foll_pin_acquired",
    "nr_foll_pin_released",
    "nr_kernel_stack",
    "nr_page_table_pages",
    "nr_sec_page_table_pages",
    "nr_iommu_pages",
    "nr_swapcached",
    "pgpromote_success",
    "pgpromote_candidate",
    "pgpromote_candidate_nrl",
    "pgdemote_kswapd",
    "pgdemote_direct",
    "pgdemote_khugepaged",
    "pgdemote_proactive",
    "nr_hugetlb",
    "nr_balloon_pages",
    "nr_kernel_file_pages",
)
"""Names printed for ``enum node_stat_item``, in /proc/vmstat order."""

NODE_STAT_ENUM: Final[tuple[str, ...]] = (
    "NR_INACTIVE_ANON",
    "NR_ACTIVE_ANON",
    "NR_INACTIVE_FILE",
    "NR_ACTIVE_FILE",
    "NR_UNEVICTABLE",
    "NR_SLAB_RECLAIMABLE_B",
    "NR_SLAB_UNRECLAIMABLE_B",
    "NR_ISOLATED_ANON",
    "NR_ISOLATED_FILE",
    "WORKINGSET_NODES",
    "WORKINGSET_REFAULT_ANON",
    "WORKINGSET_REFAULT_FILE",
    "WORKINGSET_ACTIVATE_ANON",
    "WORKINGSET_ACTIVATE_FILE",
    "WORKINGSET_RESTORE_ANON",
    "WORKINGSET_RESTORE_FILE",
    "WORKINGSET_NODERECLAIM",
    "NR_ANON_MAPPED",
    "NR_FILE_MAPPED",
    "NR_FILE_PAGES",
    "NR_FILE_DIRTY",
    "NR_WRITEBACK",
    "NR_SHMEM",
    "NR_SHMEM_THPS",
    "NR_SHMEM_PMDMAPPED",
    "NR_FILE_THPS",
    "NR_FILE_PMDMAPPED",
    "NR_ANON_THPS",
    "NR_VMSCAN_WRITE",
    "NR_VMSCAN_IMMEDIATE",
    "NR_DIRTIED",
    "NR_WRITTEN",
    "NR_THROTTLED_WRITTEN",
    "NR_KERNEL_MISC_RECLAIMABLE",
    "NR_FOLL_PIN_ACQUIRED",
    "NR_FOLL_PIN_RELEASED",
    "NR_KERNEL_STACK_KB",
    "NR_PAGETABLE",
    "NR_SECONDARY_PAGETABLE",
    "NR_IOMMU_PAGES",
    "NR_SWAPCACHE",
    "PGPROMOTE_SUCCESS",
    "PGPROMOTE_CANDIDATE",
    "PGPROMOTE_CANDIDATE_NRL",
    "PGDEMOTE_KSWAPD",
    "PGDEMOTE_DIRECT",
    "PGDEMOTE_KHUGEPAGED",
    "PGDEMOTE_PROACTIVE",
    "NR_HUGETLB",
    "NR_BALLOON_PAGES",
    "NR_KERNEL_FILE_PAGES",
)
"""The kernel's ``enum node_stat_item`` item names, index for index with NODE_STAT_ITEMS."""

NR_INACTIVE_ANON: Final = 0
NR_ACTIVE_ANON: Final = 1
NR_INACTIVE_FILE: Final = 2
NR_ACTIVE_FILE: Final = 3
NR_UNEVICTABLE: Final = 4
NR_SLAB_RECLAIMABLE_B: Final = 5
NR_SLAB_UNRECLAIMABLE_B: Final = 6
NR_ISOLATED_ANON: Final = 7
NR_ISOLATED_FILE: Final = 8
WORKINGSET_NODES: Final = 9
WORKINGSET_REFAULT_ANON: Final = 10
WORKINGSET_REFAULT_FILE: Final = 11
WORKINGSET_ACTIVATE_ANON: Final = 12
WORKINGSET_ACTIVATE_FILE: Final = 13
WORKINGSET_RESTORE_ANON: Final = 14
WORKINGSET_RESTORE_FILE: Final = 15
WORKINGSET_NODERECLAIM: Final = 16
NR_ANON_MAPPED: Final = 17
NR_FILE_MAPPED: Final = 18
NR_FILE_PAGES: Final = 19
NR_FILE_DIRTY: Final = 20
NR_WRITEBACK: Final = 21
NR_SHMEM: Final = 22
NR_SHMEM_THPS: Final = 23
NR_SHMEM_PMDMAPPED: Final = 24
NR_FILE_THPS: Final = 25
NR_FILE_PMDMAPPED: Final = 26
NR_ANON_THPS: Final = 27
NR_VMSCAN_WRITE: Final = 28
NR_VMSCAN_IMMEDIATE: Final = 29
NR_DIRTIED: Final = 30
NR_WRITTEN: Final = 31
NR_THROTTLED_WRITTEN: Final = 32
NR_KERNEL_MISC_RECLAIMABLE: Final = 33
NR_FOLL_PIN_ACQUIRED: Final = 34
NR_FOLL_PIN_RELEASED: Final = 35
NR_KERNEL_STACK_KB: Final = 36
NR_PAGETABLE: Final = 37
NR_SECONDARY_PAGETABLE: Final = 38
NR_IOMMU_PAGES: Final = 39
NR_SWAPCACHE: Final = 40
PGPROMOTE_SUCCESS: Final = 41
PGPROMOTE_CANDIDATE: Final = 42
PGPROMOTE_CANDIDATE_NRL: Final = 43
PGDEMOTE_KSWAPD: Final = 44
PGDEMOTE_DIRECT: Final = 45
PGDEMOTE_KHUGEPAGED: Final = 46
PGDEMOTE_PROACTIVE: Final = 47
NR_HUGETLB: Final = 48
NR_BALLOON_PAGES: Final = 49
NR_KERNEL_FILE_PAGES: Final = 50
NR_VM_NODE_STAT_ITEMS: Final = 51

VM_STAT_ITEMS: Final[tuple[str, ...]] = (
    "nr_dirty_threshold",
    "nr_dirty_background_threshold",
    "nr_memmap_pages",
    "nr_memmap_boot_pages",
)
"""Names printed for ``enum vm_stat_item``, in /proc/vmstat order."""

VM_STAT_ENUM: Final[tuple[str, ...]] = (
    "NR_DIRTY_THRESHOLD",
    "NR_DIRTY_BG_THRESHOLD",
    "NR_MEMMAP_PAGES",
    "NR_MEMMAP_BOOT_PAGES",
)
"""The kernel's ``enum vm_stat_item`` item names, index for index with VM_STAT_ITEMS."""

NR_DIRTY_THRESHOLD: Final = 0
NR_DIRTY_BG_THRESHOLD: Final = 1
NR_MEMMAP_PAGES: Final = 2
NR_MEMMAP_BOOT_PAGES: Final = 3
NR_VM_STAT_ITEMS: Final = 4

VM_EVENT_ITEMS: Final[tuple[str, ...]] = (
    "pgpgin",
    "pgpgout",
    "pswpin",
    "pswpout",
    "pgalloc_dma",
    "pgalloc_dma32",
    "pgalloc_normal",
    "pgalloc_movable",
    "pgalloc_device",
    "allocstall_dma",
    "allocstall_dma32",
    "allocstall_normal",
    "allocstall_movable",
    "allocstall_device",
    "pgskip_dma",
    "pgskip_dma32",
    "pgskip_normal",
    "pgskip_movable",
    "pgskip_device",
    "pgfree",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pgfault",
    "pgmajfault",
    "pglazyfreed",
    "pgrefill",
    "pgreuse",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "pgsteal_khugepaged",
    "pgsteal_proactive",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgscan_khugepaged",
    "pgscan_proactive",
    "pgscan_direct_throttle",
    "pgscan_anon",
    "pgscan_file",
    "pgsteal_anon",
    "pgsteal_file",
    "zone_reclaim_success",
    "zone_reclaim_failed",
    "pginodesteal",
    "slabs_scanned",
    "kswapd_inodesteal",
    "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly",
    "pageoutrun",
    "pgrotated",
    "drop_pagecache",
    "drop_slab",
    "oom_kill",
    "numa_pte_updates",
    "numa_huge_pte_updates",
    "numa_hint_faults",
    "numa_hint_faults_local",
    "numa_pages_migrated",
    "pgmigrate_success",
    "pgmigrate_fail",
    "thp_migration_success",
    "thp_migration_fail",
    "thp_migration_split",
    "compact_migrate_scanned",
    "compact_free_scanned",
    "compact_isolated",
    "compact_stall",
    "compact_fail",
    "compact_success",
    "compact_daemon_wake",
    "compact_daemon_migrate_scanned",
    "compact_daemon_free_scanned",
    "htlb_buddy_alloc_success",
    "htlb_buddy_alloc_fail",
    "unevictable_pgs_culled",
    "unevictable_pgs_scanned",
    "unevictable_pgs_rescued",
    "unevictable_pgs_mlocked",
    "unevictable_pgs_munlocked",
    "unevictable_pgs_cleared",
    "unevictable_pgs_stranded",
    "thp_fault_alloc",
    "thp_fault_fallback",
    "thp_fault_fallback_charge",
    "thp_collapse_alloc",
    "thp_collapse_alloc_failed",
    "thp_file_alloc",
    "thp_file_fallback",
    "thp_file_fallback_charge",
    "thp_file_mapped",
    "thp_split_page",
    "thp_split_page_failed",
    "thp_deferred_split_page",
    "thp_underused_split_page",
    "thp_split_pmd",
    "thp_scan_exceed_none_pte",
    "thp_scan_exceed_swap_pte",
    "thp_scan_exceed_share_pte",
    "thp_split_pud",
    "thp_zero_page_alloc",
    "thp_zero_page_alloc_failed",
    "thp_swpout",
    "thp_swpout_fallback",
    "balloon_inflate",
    "balloon_deflate",
    "balloon_migrate",
    "swap_ra",
    "swap_ra_hit",
    "swpin_zero",
    "swpout_zero",
    "ksm_swpin_copy",
    "cow_ksm",
    "zswpin",
    "zswpout",
    "zswpwb",
    "direct_map_level2_splits",
    "direct_map_level3_splits",
    "direct_map_level2_collapses",
    "direct_map_level3_collapses",
)
"""Names printed for ``enum vm_event_item``, in /proc/vmstat order."""

VM_EVENT_ENUM: Final[tuple[str, ...]] = (
    "PGPGIN",
    "PGPGOUT",
    "PSWPIN",
    "PSWPOUT",
    "PGALLOC_DMA",
    "PGALLOC_DMA32",
    "PGALLOC_NORMAL",
    "PGALLOC_MOVABLE",
    "PGALLOC_DEVICE",
    "ALLOCSTALL_DMA",
    "ALLOCSTALL_DMA32",
    "ALLOCSTALL_NORMAL",
    "ALLOCSTALL_MOVABLE",
    "ALLOCSTALL_DEVICE",
    "PGSCAN_SKIP_DMA",
    "PGSCAN_SKIP_DMA32",
    "PGSCAN_SKIP_NORMAL",
    "PGSCAN_SKIP_MOVABLE",
    "PGSCAN_SKIP_DEVICE",
    "PGFREE",
    "PGACTIVATE",
    "PGDEACTIVATE",
    "PGLAZYFREE",
    "PGFAULT",
    "PGMAJFAULT",
    "PGLAZYFREED",
    "PGREFILL",
    "PGREUSE",
    "PGSTEAL_KSWAPD",
    "PGSTEAL_DIRECT",
    "PGSTEAL_KHUGEPAGED",
    "PGSTEAL_PROACTIVE",
    "PGSCAN_KSWAPD",
    "PGSCAN_DIRECT",
    "PGSCAN_KHUGEPAGED",
    "PGSCAN_PROACTIVE",
    "PGSCAN_DIRECT_THROTTLE",
    "PGSCAN_ANON",
    "PGSCAN_FILE",
    "PGSTEAL_ANON",
    "PGSTEAL_FILE",
    "PGSCAN_ZONE_RECLAIM_SUCCESS",
    "PGSCAN_ZONE_RECLAIM_FAILED",
    "PGINODESTEAL",
    "SLABS_SCANNED",
    "KSWAPD_INODESTEAL",
    "KSWAPD_LOW_WMARK_HIT_QUICKLY",
    "KSWAPD_HIGH_WMARK_HIT_QUICKLY",
    "PAGEOUTRUN",
    "PGROTATED",
    "DROP_PAGECACHE",
    "DROP_SLAB",
    "OOM_KILL",
    "NUMA_PTE_UPDATES",
    "NUMA_HUGE_PTE_UPDATES",
    "NUMA_HINT_FAULTS",
    "NUMA_HINT_FAULTS_LOCAL",
    "NUMA_PAGE_MIGRATE",
    "PGMIGRATE_SUCCESS",
    "PGMIGRATE_FAIL",
    "THP_MIGRATION_SUCCESS",
    "THP_MIGRATION_FAIL",
    "THP_MIGRATION_SPLIT",
    "COMPACTMIGRATE_SCANNED",
    "COMPACTFREE_SCANNED",
    "COMPACTISOLATED",
    "COMPACTSTALL",
    "COMPACTFAIL",
    "COMPACTSUCCESS",
    "KCOMPACTD_WAKE",
    "KCOMPACTD_MIGRATE_SCANNED",
    "KCOMPACTD_FREE_SCANNED",
    "HTLB_BUDDY_PGALLOC",
    "HTLB_BUDDY_PGALLOC_FAIL",
    "UNEVICTABLE_PGCULLED",
    "UNEVICTABLE_PGSCANNED",
    "UNEVICTABLE_PGRESCUED",
    "UNEVICTABLE_PGMLOCKED",
    "UNEVICTABLE_PGMUNLOCKED",
    "UNEVICTABLE_PGCLEARED",
    "UNEVICTABLE_PGSTRANDED",
    "THP_FAULT_ALLOC",
    "THP_FAULT_FALLBACK",
    "THP_FAULT_FALLBACK_CHARGE",
    "THP_COLLAPSE_ALLOC",
    "THP_COLLAPSE_ALLOC_FAILED",
    "THP_FILE_ALLOC",
    "THP_FILE_FALLBACK",
    "THP_FILE_FALLBACK_CHARGE",
    "THP_FILE_MAPPED",
    "THP_SPLIT_PAGE",
    "THP_SPLIT_PAGE_FAILED",
    "THP_DEFERRED_SPLIT_PAGE",
    "THP_UNDERUSED_SPLIT_PAGE",
    "THP_SPLIT_PMD",
    "THP_SCAN_EXCEED_NONE_PTE",
    "THP_SCAN_EXCEED_SWAP_PTE",
    "THP_SCAN_EXCEED_SHARED_PTE",
    "THP_SPLIT_PUD",
    "THP_ZERO_PAGE_ALLOC",
    "THP_ZERO_PAGE_ALLOC_FAILED",
    "THP_SWPOUT",
    "THP_SWPOUT_FALLBACK",
    "BALLOON_INFLATE",
    "BALLOON_DEFLATE",
    "BALLOON_MIGRATE",
    "SWAP_RA",
    "SWAP_RA_HIT",
    "SWPIN_ZERO",
    "SWPOUT_ZERO",
    "KSM_SWPIN_COPY",
    "COW_KSM",
    "ZSWPIN",
    "ZSWPOUT",
    "ZSWPWB",
    "DIRECT_MAP_LEVEL2_SPLIT",
    "DIRECT_MAP_LEVEL3_SPLIT",
    "DIRECT_MAP_LEVEL2_COLLAPSE",
    "DIRECT_MAP_LEVEL3_COLLAPSE",
)
"""The kernel's ``enum vm_event_item`` item names, index for index with VM_EVENT_ITEMS."""

PGPGIN: Final = 0
PGPGOUT: Final = 1
PSWPIN: Final = 2
PSWPOUT: Final = 3
PGALLOC_DMA: Final = 4
PGALLOC_DMA32: Final = 5
PGALLOC_NORMAL: Final = 6
PGALLOC_MOVABLE: Final = 7
PGALLOC_DEVICE: Final = 8
ALLOCSTALL_DMA: Final = 9
ALLOCSTALL_DMA32: Final = 10
ALLOCSTALL_NORMAL: Final = 11
ALLOCSTALL_MOVABLE: Final = 12
ALLOCSTALL_DEVICE: Final = 13
PGSCAN_SKIP_DMA: Final = 14
PGSCAN_SKIP_DMA32: Final = 15
PGSCAN_SKIP_NORMAL: Final = 16
PGSCAN_SKIP_MOVABLE: Final = 17
PGSCAN_SKIP_DEVICE: Final = 18
PGFREE: Final = 19
PGACTIVATE: Final = 20
PGDEACTIVATE: Final = 21
PGLAZYFREE: Final = 22
PGFAULT: Final = 23
PGMAJFAULT: Final = 24
PGLAZYFREED: Final = 25
PGREFILL: Final = 26
PGREUSE: Final = 27
PGSTEAL_KSWAPD: Final = 28
PGSTEAL_DIRECT: Final = 29
PGSTEAL_KHUGEPAGED: Final = 30
PGSTEAL_PROACTIVE: Final = 31
PGSCAN_KSWAPD: Final = 32
PGSCAN_DIRECT: Final = 33
PGSCAN_KHUGEPAGED: Final = 34
PGSCAN_PROACTIVE: Final = 35
PGSCAN_DIRECT_THROTTLE: Final = 36
PGSCAN_ANON: Final = 37
PGSCAN_FILE: Final = 38
PGSTEAL_ANON: Final = 39
PGSTEAL_FILE: Final = 40
PGSCAN_ZONE_RECLAIM_SUCCESS: Final = 41
PGSCAN_ZONE_RECLAIM_FAILED: Final = 42
PGINODESTEAL: Final = 43
SLABS_SCANNED: Final = 44
KSWAPD_INODESTEAL: Final = 45
KSWAPD_LOW_WMARK_HIT_QUICKLY: Final = 46
KSWAPD_HIGH_WMARK_HIT_QUICKLY: Final = 47
PAGEOUTRUN: Final = 48
PGROTATED: Final = 49
DROP_PAGECACHE: Final = 50
DROP_SLAB: Final = 51
OOM_KILL: Final = 52
NUMA_PTE_UPDATES: Final = 53
NUMA_HUGE_PTE_UPDATES: Final = 54
NUMA_HINT_FAULTS: Final = 55
NUMA_HINT_FAULTS_LOCAL: Final = 56
NUMA_PAGE_MIGRATE: Final = 57
PGMIGRATE_SUCCESS: Final = 58
PGMIGRATE_FAIL: Final = 59
THP_MIGRATION_SUCCESS: Final = 60
THP_MIGRATION_FAIL: Final = 61
THP_MIGRATION_SPLIT: Final = 62
COMPACTMIGRATE_SCANNED: Final = 63
COMPACTFREE_SCANNED: Final = 64
COMPACTISOLATED: Final = 65
COMPACTSTALL: Final = 66
COMPACTFAIL: Final = 67
COMPACTSUCCESS: Final = 68
KCOMPACTD_WAKE: Final = 69
KCOMPACTD_MIGRATE_SCANNED: Final = 70
KCOMPACTD_FREE_SCANNED: Final = 71
HTLB_BUDDY_PGALLOC: Final = 72
HTLB_BUDDY_PGALLOC_FAIL: Final = 73
UNEVICTABLE_PGCULLED: Final = 74
UNEVICTABLE_PGSCANNED: Final = 75
UNEVICTABLE_PGRESCUED: Final = 76
UNEVICTABLE_PGMLOCKED: Final = 77
UNEVICTABLE_PGMUNLOCKED: Final = 78
UNEVICTABLE_PGCLEARED: Final = 79
UNEVICTABLE_PGSTRANDED: Final = 80
THP_FAULT_ALLOC: Final = 81
THP_FAULT_FALLBACK: Final = 82
THP_FAULT_FALLBACK_CHARGE: Final = 83
THP_COLLAPSE_ALLOC: Final = 84
THP_COLLAPSE_ALLOC_FAILED: Final = 85
THP_FILE_ALLOC: Final = 86
THP_FILE_FALLBACK: Final = 87
THP_FILE_FALLBACK_CHARGE: Final = 88
THP_FILE_MAPPED: Final = 89
THP_SPLIT_PAGE: Final = 90
THP_SPLIT_PAGE_FAILED: Final = 91
THP_DEFERRED_SPLIT_PAGE: Final = 92
THP_UNDERUSED_SPLIT_PAGE: Final = 93
THP_SPLIT_PMD: Final = 94
THP_SCAN_EXCEED_NONE_PTE: Final = 95
THP_SCAN_EXCEED_SWAP_PTE: Final = 96
THP_SCAN_EXCEED_SHARED_PTE: Final = 97
THP_SPLIT_PUD: Final = 98
THP_ZERO_PAGE_ALLOC: Final = 99
THP_ZERO_PAGE_ALLOC_FAILED: Final = 100
THP_SWPOUT: Final = 101
THP_SWPOUT_FALLBACK: Final = 102
BALLOON_INFLATE: Final = 103
BALLOON_DEFLATE: Final = 104
BALLOON_MIGRATE: Final = 105
SWAP_RA: Final = 106
SWAP_RA_HIT: Final = 107
SWPIN_ZERO: Final = 108
SWPOUT_ZERO: Final = 109
KSM_SWPIN_COPY: Final = 110
COW_KSM: Final = 111
ZSWPIN: Final = 112
ZSWPOUT: Final = 113
ZSWPWB: Final = 114
DIRECT_MAP_LEVEL2_SPLIT: Final = 115
DIRECT_MAP_LEVEL3_SPLIT: Final = 116
DIRECT_MAP_LEVEL2_COLLAPSE: Final = 117
DIRECT_MAP_LEVEL3_COLLAPSE: Final = 118
NR_VM_EVENT_ITEMS: Final = 119

# Aliases the kernel defines inside the enums.
NR_ZONE_LRU_BASE: Final = NR_ZONE_INACTIVE_ANON
NR_LRU_BASE: Final = NR_INACTIVE_ANON
WORKINGSET_REFAULT_BASE: Final = WORKINGSET_REFAULT_ANON
WORKINGSET_ACTIVATE_BASE: Final = WORKINGSET_ACTIVATE_ANON
WORKINGSET_RESTORE_BASE: Final = WORKINGSET_RESTORE_ANON

VMSTAT_DEPRECATED_ITEMS: Final[tuple[tuple[str, int], ...]] = (("nr_unstable", 0),)
"""Lines vmstat_show() appends after the last counter so old userspace keeps working."""

_PRINT_IN_THP: Final = frozenset(
    {NR_ANON_THPS, NR_FILE_THPS, NR_SHMEM_THPS, NR_SHMEM_PMDMAPPED, NR_FILE_PMDMAPPED}
)


def vmstat_item_print_in_thp(item: int) -> bool:
    """Model of include/linux/mmzone.h:vmstat_item_print_in_thp() (v6.18).

    True for the node items counted in pages but printed in THPs (divided by HPAGE_PMD_NR)
    in /proc/vmstat and /proc/zoneinfo.
    """
    return item in _PRINT_IN_THP


# ---------------------------------------------------------------------------------------------
# Printed values (what vmstat_start() / zoneinfo_show_print() put on the page)
# ---------------------------------------------------------------------------------------------


def _check_len(what: str, values: Sequence[int], n: int) -> None:
    if len(values) != n:
        raise InvalidArgument(
            f"{what} has {len(values)} entries but this kernel has {n} items; "
            f"index it with the constants in pagelab.mm.vmstat and size it to {n}"
        )


def _state_pages(value: int) -> int:
    """A zone/node state item as read for printing: negative per-cpu drift reads as 0 (SMP)."""
    v = int(value)
    return v if v > 0 else 0


def _event(what: str, index: int, value: int) -> int:
    v = int(value)
    if v < 0:
        raise InvalidArgument(
            f"{what}[{index}] is {v}, but event counters only grow; "
            "find the caller that decremented it (use a state item for values that go down)"
        )
    return v & _U64


def zoneinfo_node_stat_items(node_stat: Sequence[int]) -> tuple[tuple[str, int], ...]:
    """Model of the "per-node stats" lines of mm/vmstat.c:zoneinfo_show_print() (v6.18).

    ``node_stat`` is ``pgdat.vm_stat`` (len NR_VM_NODE_STAT_ITEMS). Values are read as
    node_page_state_pages() does (negative reads as 0) and THP items are divided by
    HPAGE_PMD_NR. Returns (name, value) pairs in printed order.
    """
    _check_len("node_stat", node_stat, NR_VM_NODE_STAT_ITEMS)
    out = []
    for i, name in enumerate(NODE_STAT_ITEMS):
        pages = _state_pages(node_stat[i])
        if i in _PRINT_IN_THP:
            pages //= HPAGE_PMD_NR
        out.append((name, pages))
    return tuple(out)


def zoneinfo_zone_stat_items(
    zone_stat: Sequence[int], numa_event: Sequence[int] | None = None
) -> tuple[tuple[str, int], ...]:
    """Model of the per-zone counter lines of mm/vmstat.c:zoneinfo_show_print() (v6.18).

    ``zone_stat`` is ``zone.vm_stat``; ``numa_event`` the zone's NUMA events (zeros when
    omitted; the kernel prints them with CONFIG_NUMA). Zone items read as zone_page_state()
    does (negative reads as 0).
    """
    _check_len("zone_stat", zone_stat, NR_VM_ZONE_STAT_ITEMS)
    numa: Sequence[int] = [0] * NR_VM_NUMA_EVENT_ITEMS if numa_event is None else numa_event
    _check_len("numa_event", numa, NR_VM_NUMA_EVENT_ITEMS)
    out = [(name, _state_pages(zone_stat[i])) for i, name in enumerate(ZONE_STAT_ITEMS)]
    out += [(name, _event("numa_event", i, numa[i])) for i, name in enumerate(NUMA_STAT_ITEMS)]
    return tuple(out)


def _machine_sum(what: str, values: Sequence[int] | Sequence[Sequence[int]], n: int) -> list[int]:
    """Machine-wide values: ``values`` itself, or the sum of per-zone/per-node rows."""
    if len(values) and hasattr(values[0], "__len__"):
        total = [0] * n
        for i, row in enumerate(values):
            row_values: Sequence[int] = row  # type: ignore[assignment]
            _check_len(f"{what}[{i}]", row_values, n)
            for k in range(n):
                total[k] += int(row_values[k])
        return total
    flat: Sequence[int] = values  # type: ignore[assignment]
    _check_len(what, flat, n)
    return [int(v) for v in flat]


def vmstat_show_items(
    zone_stat: Sequence[int] | Sequence[Sequence[int]],
    numa_event: Sequence[int] | Sequence[Sequence[int]] | None,
    node_stat: Sequence[int] | Sequence[Sequence[int]],
    vm_stat: Sequence[int],
    vm_events: Sequence[int],
) -> tuple[tuple[str, int], ...]:
    """Model of mm/vmstat.c:vmstat_start() + vmstat_show() (v6.18): every /proc/vmstat line.

    ``zone_stat``, ``numa_event`` and ``node_stat`` are either the machine-wide sums (the
    kernel's ``vm_zone_stat``, ``vm_numa_event``, ``vm_node_stat``) or one row per zone / per
    node (``[z.vm_stat for z in zones]``), which are summed; ``numa_event`` may be None (all
    zero). ``vm_stat`` holds the ``enum vm_stat_item`` values computed by the caller: the two
    dirty thresholds (NR_DIRTY_THRESHOLD, NR_DIRTY_BG_THRESHOLD), optionally followed by
    NR_MEMMAP_PAGES and NR_MEMMAP_BOOT_PAGES (printed as 0 when omitted). ``vm_events`` is
    the summed ``vm_event_states``.

    Applies what vmstat_start() applies: state items that sum below 0 read as 0, THP node
    items divide by HPAGE_PMD_NR, ``pgpgin``/``pgpgout`` (counted in 512-byte sectors) halve
    to KiB; then appends the deprecated ``nr_unstable 0`` line. Returns (name, value) pairs
    in file order.
    """
    if len(vm_stat) not in (2, NR_VM_STAT_ITEMS):
        raise InvalidArgument(
            f"vm_stat has {len(vm_stat)} entries; pass the 2 dirty thresholds "
            f"(nr_dirty_threshold, nr_dirty_background_threshold) or all {NR_VM_STAT_ITEMS} "
            "enum vm_stat_item values (adding nr_memmap_pages, nr_memmap_boot_pages)"
        )
    _check_len("vm_events", vm_events, NR_VM_EVENT_ITEMS)
    zone = _machine_sum("zone_stat", zone_stat, NR_VM_ZONE_STAT_ITEMS)
    numa = (
        [0] * NR_VM_NUMA_EVENT_ITEMS
        if numa_event is None
        else _machine_sum("numa_event", numa_event, NR_VM_NUMA_EVENT_ITEMS)
    )
    node = _machine_sum("node_stat", node_stat, NR_VM_NODE_STAT_ITEMS)
    vm = [int(v) & _U64 for v in vm_stat] + [0] * (NR_VM_STAT_ITEMS - len(vm_stat))
    out = list(zoneinfo_zone_stat_items(zone, numa))
    out += zoneinfo_node_stat_items(node)
    out += zip(VM_STAT_ITEMS, vm, strict=True)
    events = [_event("vm_events", i, v) for i, v in enumerate(vm_events)]
    events[PGPGIN] //= 2
    events[PGPGOUT] //= 2
    out += zip(VM_EVENT_ITEMS, events, strict=True)
    out += VMSTAT_DEPRECATED_ITEMS
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Fragmentation arithmetic (mm/vmstat.c, mm/compaction.c)
# ---------------------------------------------------------------------------------------------


class ContigPageInfo(NamedTuple):
    """Model of ``struct contig_page_info`` (mm/vmstat.c, v6.18); all ``unsigned long``."""

    free_pages: int
    free_blocks_total: int
    free_blocks_suitable: int


def _check_order(order: int, what: str = "order") -> int:
    o = int(order)
    if not 0 <= o <= MAX_PAGE_ORDER:
        raise InvalidArgument(
            f"{what} {order} is outside 0..{MAX_PAGE_ORDER}; buddy orders on this kernel are "
            f"0..MAX_PAGE_ORDER ({MAX_PAGE_ORDER})"
        )
    return o


def fill_contig_page_info(nr_free: Sequence[int], suitable_order: int) -> ContigPageInfo:
    """Model of mm/vmstat.c:fill_contig_page_info() (v6.18).

    ``nr_free[k]`` is ``zone->free_area[k].nr_free`` (free blocks of order k, all migratetypes),
    e.g. one /proc/buddyinfo row. Counts free pages, free blocks, and how many blocks of
    ``suitable_order`` the free blocks of that order or larger would make.
    """
    _check_len("nr_free", nr_free, NR_PAGE_ORDERS)
    suitable_order = _check_order(suitable_order, "suitable_order")
    free_pages = 0
    free_blocks_total = 0
    free_blocks_suitable = 0
    for order in range(NR_PAGE_ORDERS):
        blocks = int(nr_free[order])
        if blocks < 0:
            raise InvalidArgument(
                f"nr_free[{order}] is {blocks}; free block counts cannot be negative — "
                "pass the zone's free_area[order].nr_free values"
            )
        free_blocks_total = (free_blocks_total + blocks) & _U64
        free_pages = (free_pages + (blocks << order)) & _U64
        if order >= suitable_order:
            free_blocks_suitable = (
                free_blocks_suitable + (blocks << (order - suitable_order))
            ) & _U64
    return ContigPageInfo(free_pages, free_blocks_total, free_blocks_suitable)


def _s32(value: int) -> int:
    """C conversion of an unsigned value to ``int`` (two's complement, low 32 bits)."""
    v = value & _U32
    return v - (1 << 32) if v & 0x80000000 else v


def _fragmentation_index_info(order: int, info: ContigPageInfo) -> int:
    """Model of mm/vmstat.c:__fragmentation_index() (v6.18).

    Returns the index ×1000: 0 when there are no free blocks, −1000 when a block of ``order``
    is free (the index only means something when the request would fail), otherwise
    ``1000 − (1000 + free_pages·1000/2^order) / free_blocks_total`` with the kernel's two
    unsigned 64-bit truncating divisions. Towards 0 the failure is from lack of memory,
    towards 1000 from fragmentation. It can go below 0 (e.g. a single free block of
    ``order − 1`` gives −500), which the debugfs file prints as ``0.-500``.
    """
    if order > MAX_PAGE_ORDER:  # WARN_ON_ONCE in the kernel
        return 0
    requested = 1 << order
    if not info.free_blocks_total:
        return 0
    if info.free_blocks_suitable:
        return -1000
    scaled = ((info.free_pages * 1000) & _U64) // requested
    quotient = ((1000 + scaled) & _U64) // info.free_blocks_total
    return _s32((1000 - quotient) & _U64)


def fragmentation_index(nr_free: Sequence[int], order: int) -> int:
    """Model of mm/vmstat.c:fragmentation_index() (v6.18): fill_contig_page_info + index.

    Used by compaction_suitable() for order > PAGE_ALLOC_COSTLY_ORDER against
    vm.extfrag_threshold, and printed ×1000 in debugfs extfrag/extfrag_index.
    """
    order = _check_order(order)
    return _fragmentation_index_info(order, fill_contig_page_info(nr_free, order))


def unusable_free_index(order: int, info: ContigPageInfo) -> int:
    """Model of mm/vmstat.c:unusable_free_index() (v6.18).

    The share of free memory (×1000) that cannot satisfy an allocation of ``order``: 1000
    when nothing is free, else ``(free_pages − suitable<<order)·1000 / free_pages``
    (unsigned 64-bit, truncating).
    """
    if info.free_pages == 0:
        return 1000
    unusable = (info.free_pages - ((info.free_blocks_suitable << order) & _U64)) & _U64
    return _s32(((unusable * 1000) & _U64) // info.free_pages)


def extfrag_for_order(nr_free: Sequence[int], order: int) -> int:
    """Model of mm/vmstat.c:extfrag_for_order() (v6.18).

    External fragmentation of a zone for ``order`` in percent (0..100): the share of free
    pages that sit in blocks smaller than ``2^order``; 0 when nothing is free.
    """
    order = _check_order(order)
    info = fill_contig_page_info(nr_free, order)
    if info.free_pages == 0:
        return 0
    unusable = (info.free_pages - ((info.free_blocks_suitable << order) & _U64)) & _U64
    return (((unusable * 100) & _U64) // info.free_pages) & _U32


def fragmentation_score_zone(nr_free: Sequence[int]) -> int:
    """Model of mm/compaction.c:fragmentation_score_zone() (v6.18).

    ``extfrag_for_order(zone, COMPACTION_HPAGE_ORDER)``: 0..100.
    """
    return extfrag_for_order(nr_free, COMPACTION_HPAGE_ORDER)


def fragmentation_score_zone_weighted(
    nr_free: Sequence[int], zone_present_pages: int, node_present_pages: int
) -> int:
    """Model of mm/compaction.c:fragmentation_score_zone_weighted() (v6.18).

    The zone score scaled by the zone's share of the node:
    ``present_pages · score / (node_present_pages + 1)`` (unsigned, truncating), so small
    zones such as DMA32 barely count.
    """
    present = int(zone_present_pages)
    node_present = int(node_present_pages)
    if present < 0 or node_present < 0:
        raise InvalidArgument(
            f"present page counts must be >= 0 (got zone {present}, node {node_present}); "
            "pass zone.present_pages and pgdat.node_present_pages"
        )
    score = (present * fragmentation_score_zone(nr_free)) & _U64
    return (score // ((node_present + 1) & _U64)) & _U32


def fragmentation_score_node(
    zones: Iterable[tuple[Sequence[int], int]], node_present_pages: int | None = None
) -> int:
    """Model of mm/compaction.c:fragmentation_score_node() (v6.18).

    ``zones`` lists the node's zones as ``(nr_free, present_pages)`` pairs; unpopulated zones
    (present_pages == 0) are skipped as populated_zone() does. ``node_present_pages``
    defaults to the sum of the zones' present pages, which is what the kernel keeps in
    ``pgdat->node_present_pages``. Returns the sum of the weighted zone scores.
    """
    zone_list = [(nr_free, int(present)) for nr_free, present in zones]
    if node_present_pages is None:
        node_present_pages = sum(present for _, present in zone_list)
    score = 0
    for nr_free, present in zone_list:
        if present == 0:
            continue
        score += fragmentation_score_zone_weighted(nr_free, present, node_present_pages)
    return score & _U32


def fragmentation_score_wmark(low: bool, proactiveness: int = 20) -> int:
    """Model of mm/compaction.c:fragmentation_score_wmark() (v6.18).

    With vm.compaction_proactiveness ``p`` (0..100, default 20): the low mark is
    ``max(100 − p, 5)`` and the high mark ``min(low + 10, 100)`` (80 and 90 by default).
    Proactive compaction starts when the node score exceeds the high mark and a zone stops
    when its score is at or below the low mark.
    """
    p = int(proactiveness)
    if not 0 <= p <= 100:
        raise InvalidArgument(
            f"compaction_proactiveness {proactiveness} is outside 0..100 "
            "(the sysctl's range); pass a value from 0 to 100"
        )
    wmark_low = max(100 - p, 5)
    return wmark_low if low else min(wmark_low + 10, 100)
