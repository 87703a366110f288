"""Build the kernel's /proc and debugfs files from a model machine.

Each ``*_of`` function reads a :class:`~pagelab.machine.Machine` the way the kernel's
``seq_file`` show function reads ``struct zone``s, and returns the data class of
:mod:`pagelab.io.procfs`; :func:`render_machine_file` turns it into the exact text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pagelab.errors import InvalidArgument
from pagelab.io import procfs
from pagelab.mm import vmstat as vs
from pagelab.mm.mmzone import (
    MIGRATE_CMA,
    MIGRATE_ISOLATE,
    MIGRATE_MOVABLE,
    MIGRATE_TYPES,
    MIGRATETYPE_MASK,
    NR_PAGE_ORDERS,
    PB_ISOLATE_BIT,
    PFN_SECTION_SHIFT,
    Zone,
    migratetype_names,
    pageblock_migratetype,
    pageblock_nr_pages,
    pageblock_order,
)

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = [
    "FILES",
    "buddyinfo_of",
    "extfrag_index_of",
    "pagetypeinfo_of",
    "pagetypeinfo_showmixedcount",
    "render_machine_file",
    "unusable_index_of",
    "vmstat_of",
    "zoneinfo_of",
]


def _printed_migratetypes(m: Machine) -> list[int]:
    """Return the migratetypes the kernel would print (no CMA without CONFIG_CMA)."""
    return [mt for mt in range(MIGRATE_TYPES) if m.profile.config_cma or mt != MIGRATE_CMA]


def buddyinfo_of(m: Machine) -> procfs.Buddyinfo:
    """Return /proc/buddyinfo of ``m`` (``frag_show_print``: populated zones, nr_free)."""
    rows = [procfs.BuddyinfoRow(z.node, z.name, tuple(z.nr_free)) for z in m.populated_zones()]
    return procfs.Buddyinfo(tuple(rows))


def _block_types(bits: np.ndarray) -> np.ndarray:
    """Vectorised ``pageblock_migratetype``: the isolate bit reads as MIGRATE_ISOLATE."""
    return np.where(bits & PB_ISOLATE_BIT, MIGRATE_ISOLATE, bits & MIGRATETYPE_MASK)


def _zone_pageblocks(m: Machine, zone: Zone) -> tuple[np.ndarray, np.ndarray]:
    """Return the pageblock indices the kernel visits for ``zone`` and their types.

    ``pagetypeinfo_showblockcount_print`` steps from ``zone_start_pfn`` by a pageblock and
    counts blocks whose pfn has an online struct page in this zone.
    """
    pfns = np.arange(zone.zone_start_pfn, zone.zone_end_pfn, pageblock_nr_pages, dtype=np.int64)
    valid = m.section_valid[pfns >> PFN_SECTION_SHIFT]
    pfns = pfns[valid]
    return pfns, _block_types(m.pageblock_flags[pfns >> pageblock_order])


def pagetypeinfo_showmixedcount(m: Machine, zone: Zone) -> list[int]:
    """Count pageblocks holding a page allocated with another migratetype, per block type.

    Models mm/page_owner.c ``pagetypeinfo_showmixedcount_print()`` (v6.18): allocated pages
    (page_owner data, kept here in ``alloc_mt``) whose gfp migratetype differs from their
    pageblock's type mark the block mixed; CMA blocks count as MOVABLE. Free and reserved
    pages are skipped.
    """
    counts = [0] * MIGRATE_TYPES
    start, end = zone.zone_start_pfn, zone.zone_end_pfn
    alloc_mt = m.mem.alloc_mt[start:end].astype(np.int16)
    block_of = (np.arange(start, end, dtype=np.int64) >> pageblock_order)
    block_mt = _block_types(m.pageblock_flags[block_of])
    in_zone = m.present[start:end]
    mixed = in_zone & (alloc_mt >= 0) & (alloc_mt != block_mt)
    for blk in np.unique(block_of[mixed]):
        mt = pageblock_migratetype(int(m.pageblock_flags[blk]))
        counts[MIGRATE_MOVABLE if mt == MIGRATE_CMA else mt] += 1
    return counts


def pagetypeinfo_of(m: Machine) -> procfs.Pagetypeinfo:
    """Return /proc/pagetypeinfo of ``m`` (free list lengths walked, blocks per type)."""
    types = _printed_migratetypes(m)
    free_rows = []
    block_rows = []
    mixed_rows = []
    for zone in m.populated_zones():
        for mt in types:
            counts = tuple(m.mem.list_len(zone.free_list(order, mt))
                           for order in range(NR_PAGE_ORDERS))
            free_rows.append(procfs.PagetypeinfoFreeRow(zone.node, zone.name, migratetype_names[mt],
                                                   counts))
        _, blk_types = _zone_pageblocks(m, zone)
        per_type = np.bincount(blk_types, minlength=MIGRATE_TYPES)
        block_rows.append(procfs.PagetypeinfoBlockRow(zone.node, zone.name,
                                                 tuple(int(per_type[mt]) for mt in types)))
        if m.page_owner:
            mixed = pagetypeinfo_showmixedcount(m, zone)
            mixed_rows.append(procfs.PagetypeinfoBlockRow(zone.node, zone.name,
                                                     tuple(mixed[mt] for mt in types)))
    return procfs.Pagetypeinfo(
        migratetype_names=tuple(migratetype_names[mt] for mt in types),
        free=tuple(free_rows), blocks=tuple(block_rows),
        mixed=tuple(mixed_rows) if m.page_owner else None,
        pageblock_order=pageblock_order, pageblock_nr_pages=pageblock_nr_pages,
    )


def calculate_normal_threshold(m: Machine, zone: Zone) -> int:
    """Return the zone's vmstat threshold (mm/vmstat.c ``calculate_normal_threshold``)."""
    mem = zone.managed_pages >> (27 - 12)
    threshold = 2 * m.nr_cpus.bit_length() * (1 + mem.bit_length())
    return min(125, threshold)


def _vm_stat_items(m: Machine) -> list[int]:
    """Return the four ``enum vm_stat_item`` values: dirty thresholds and memmap pages."""
    dirty, background = m.dirty_thresholds()
    memmap_boot = sum(r.end_pfn - r.start_pfn for r in m.reservations
                      if r.what.startswith("memmap"))
    return [dirty, background, 0, memmap_boot]


def zoneinfo_of(m: Machine) -> procfs.Zoneinfo:
    """Return /proc/zoneinfo of ``m`` (``zoneinfo_show_print``, the fields the model has)."""
    zones = []
    for pgdat in m.nodes:
        first_populated = next((z for z in pgdat.node_zones if z.present_pages), None)
        for zone in pgdat.node_zones:
            node_stats = (vs.zoneinfo_node_stat_items(pgdat.vm_stat)
                          if zone is first_populated else None)
            common = {
                "node": zone.node, "zone": zone.name,
                "free": zone.vm_stat[vs.NR_FREE_PAGES], "boost": zone.watermark_boost,
                "min": zone.min_wmark_pages(), "low": zone.low_wmark_pages(),
                "high": zone.high_wmark_pages(), "promo": zone.wmark_pages(3),
                "spanned": zone.spanned_pages, "present": zone.present_pages,
                "managed": zone.managed_pages, "cma": zone.cma_pages,
                "protection": tuple(zone.lowmem_reserve), "node_stats": node_stats,
            }
            if not zone.present_pages:
                zones.append(procfs.ZoneinfoZone(**common))  # type: ignore[arg-type]
                continue
            threshold = calculate_normal_threshold(m, zone)
            pagesets = tuple(
                procfs.ZoneinfoPageset(cpu, pcp.count, pcp.high, pcp.batch, pcp.high_min,
                                  pcp.high_max, threshold)
                for cpu, pcp in enumerate(zone.per_cpu_pageset)
            )
            zones.append(procfs.ZoneinfoZone(
                **common,  # type: ignore[arg-type]
                stats=vs.zoneinfo_zone_stat_items(zone.vm_stat, zone.vm_numa_event),
                pagesets=pagesets, node_unreclaimable=0, start_pfn=zone.zone_start_pfn,
            ))
    return procfs.Zoneinfo(tuple(zones))


def vmstat_of(m: Machine) -> procfs.Vmstat:
    """Return /proc/vmstat of ``m``."""
    return procfs.Vmstat(vs.vmstat_show_items(
        [z.vm_stat for z in m.zones], [z.vm_numa_event for z in m.zones],
        [n.vm_stat for n in m.nodes], _vm_stat_items(m), m.vm_events,
    ))


def extfrag_index_of(m: Machine) -> procfs.ExtfragIndex:
    """Return debugfs extfrag/extfrag_index of ``m``."""
    return procfs.extfrag_index_table(buddyinfo_of(m))


def unusable_index_of(m: Machine) -> procfs.UnusableIndex:
    """Return debugfs extfrag/unusable_index of ``m``."""
    return procfs.unusable_index_table(buddyinfo_of(m))


FILES = {
    "buddyinfo": lambda m: procfs.render_buddyinfo(buddyinfo_of(m)),
    "pagetypeinfo": lambda m: procfs.render_pagetypeinfo(pagetypeinfo_of(m)),
    "zoneinfo": lambda m: procfs.render_zoneinfo(zoneinfo_of(m)),
    "vmstat": lambda m: procfs.render_vmstat(vmstat_of(m)),
    "extfrag_index": lambda m: procfs.render_extfrag_index(extfrag_index_of(m)),
    "unusable_index": lambda m: procfs.render_unusable_index(unusable_index_of(m)),
}


def render_machine_file(m: Machine, name: str) -> str:
    """Return the text of /proc/``name`` (or debugfs extfrag/``name``) for machine ``m``."""
    render = FILES.get(name)
    if render is None:
        raise InvalidArgument(f"unknown file {name!r}; use one of {', '.join(FILES)}")
    return str(render(m))

