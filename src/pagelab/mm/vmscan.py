"""Page reclaim: kswapd, direct reclaim and the LRU lists' aging (models ``mm/vmscan.c``).

Classic (non-MGLRU) reclaim as in v6.15 (commit 538d5baacd8a, read for
``docs/notes/kernel-reclaim.md``):

* **kswapd** is woken by the allocator's slow path (:func:`wakeup_kswapd`) when a zone drops
  below its low watermark, and reclaims until one zone of the node is above its high watermark
  for the requested order (:func:`balance_pgdat`). Watermark boosts are worked off without
  swapping. Before it sleeps it wakes kcompactd (:func:`kswapd_try_to_sleep`).
* **direct reclaim** (:func:`try_to_free_pages`) runs in the slow path of an allocation that
  may sleep: 32 pages, priority 12 down to 0, ``allocstall_<zone>``.
* **the LRU lists** age as in the kernel: new pages start inactive; ``shrink_active_list``
  deactivates (executable file pages that were referenced get another trip);
  ``shrink_inactive_list`` takes folios from the tail and ``shrink_folio_list`` decides with
  ``folio_check_references`` (PTE young bits and PG_referenced) whether to activate, keep or
  reclaim. Anonymous folios go to swap (zram, :mod:`pagelab.mm.swapfile`), page-cache folios
  are dropped and read back from the file on their next fault.

The kernel's counters (``pgscan_*``, ``pgsteal_*``, ``pgrefill``, ``pgactivate``,
``pgdeactivate``, ``pageoutrun``, ``allocstall_*``, ``kswapd_*_wmark_hit_quickly``,
``pswpout``) and tracepoints (``mm_vmscan_*``) are kept.

Named simplifications:

* kswapd and kcompactd are not threads: a wake-up sets ``pgdat.kswapd_woken`` and the
  workload's event loop runs :func:`kswapd_run` (one iteration of ``kswapd()``) between its
  events, on the same virtual clock. kswapd's 100 ms nap before sleeping is a deadline: a
  wake-up before it counts ``kswapd_low_wmark_hit_quickly``.
* no memory cgroups (one lruvec per node); shrinkers without memcg or NUMA awareness
  (:mod:`pagelab.mm.shrinker`; no slab caches, as the model has no slab allocator); reclaim
  never writes a dirty page-cache folio (the kernel's kswapd may, once the tail of the list is
  full of them: ``PGDAT_DIRTY``); it sets PG_reclaim and leaves it to the flusher. No throttling
  (``too_many_isolated``, ``reclaim_throttle``), no shadow entries (every refault of an
  evicted page counts as a workingset activation, which ``sc->may_deactivate`` compares with
  the last snapshot), and ``get_scan_count`` splits anon/file by swappiness without the
  ``anon_cost``/``file_cost`` feedback.
* no swap cache (zram is ``SWP_SYNCHRONOUS_IO``: the folio is freed in the pass that wrote it);
  when the device refuses a write (zram's ``mem_limit``) the folio is mapped back and kept on
  the inactive list, where the kernel keeps it dirty in the swap cache.
* large folios (THPs) are kept rather than split.
"""

from __future__ import annotations

import errno
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pagelab.errors import ModelBug
from pagelab.mm import gfp as G
from pagelab.mm import page_flags as pf
from pagelab.mm import page_io, swap, swapfile
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import trylock_page, unlock_page
from pagelab.mm.internal import MAX_RECLAIM_RETRIES
from pagelab.mm.memory import GUP_PIN_COUNTING_BIAS
from pagelab.mm.mmzone import MAX_NR_ZONES, PAGE_ALLOC_COSTLY_ORDER, pageblock_order
from pagelab.mm.page_alloc import zone_watermark_ok
from pagelab.mm.rmap import (
    PTE_NONE,
    AddressSpace,
    folio_referenced,
    make_swap_entry,
    try_to_unmap,
)
from pagelab.mm.shrinker import shrink_slab
from pagelab.mm.swap import (
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
)

if TYPE_CHECKING:
    from pagelab.machine import Machine
    from pagelab.mm.mmzone import PglistData, Zone
    from pagelab.mm.page_alloc import AllocContext

__all__ = [
    "DEF_PRIORITY",
    "MAX_RECLAIM_RETRIES",
    "SWAP_CLUSTER_MAX",
    "ScanControl",
    "balance_pgdat",
    "folio_isolate_lru",
    "folio_putback_lru",
    "isolate_lru_page",
    "kswapd_run",
    "node_page_state",
    "pgdat_balanced",
    "putback_lru_page",
    "shrink_node",
    "try_to_free_pages",
    "wakeup_kswapd",
]

SWAP_CLUSTER_MAX = 32
DEF_PRIORITY = 12
#: vm.swappiness's upper bound (``MAX_SWAPPINESS``).
MAX_SWAPPINESS = 200
#: kswapd's nap before a full sleep (``schedule_timeout(HZ/10)``).
KSWAPD_NAP_NS = 100_000_000

# folio_check_references verdicts (enum folio_references)
FOLIOREF_RECLAIM = 0
FOLIOREF_RECLAIM_CLEAN = 1
FOLIOREF_KEEP = 2
FOLIOREF_ACTIVATE = 3

# get_scan_count balance (enum scan_balance)
SCAN_EQUAL = 0
SCAN_FRACT = 1
SCAN_ANON = 2
SCAN_FILE = 3

DEACTIVATE_ANON = 1
DEACTIVATE_FILE = 2

_LRU = 1 << pf.PG_lru
_EVICTABLE_LRUS = (LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE)


@dataclass
class ScanControl:
    """``struct scan_control``: one reclaim invocation's goal, limits and tallies."""

    nr_to_reclaim: int
    gfp_mask: int
    order: int
    reclaim_idx: int
    priority: int = DEF_PRIORITY
    may_writepage: bool = True
    may_unmap: bool = True
    may_swap: bool = True
    kswapd: bool = False
    may_deactivate: int = 0
    force_deactivate: bool = False
    skipped_deactivate: bool = False
    cache_trim_mode: bool = False
    file_is_tiny: bool = False
    compaction_ready: bool = False
    nr_scanned: int = 0
    nr_reclaimed: int = 0
    nr_activate: list[int] = field(default_factory=lambda: [0, 0])


# ------------------------------------------------------------------------------- LRU basics


def folio_isolate_lru(m: Machine, pfn: int) -> bool:
    """Take a folio off its LRU list, with a reference (``folio_isolate_lru``).

    Caller holds a reference. Returns False if the folio is not on an LRU list (someone
    else isolated it first: PG_lru is test-and-cleared).
    """
    mem = m.mem
    if mem.refcount_mv[pfn] == 0:
        raise ModelBug(f"VM_BUG_ON_FOLIO(!folio_ref_count(folio)) in folio_isolate_lru at pfn "
                       f"{pfn:#x}: {mem.dump_page(pfn)}")
    flags = mem.flags_mv
    if not flags[pfn] & _LRU:
        return False
    flags[pfn] = flags[pfn] & ~_LRU
    mem.refcount_mv[pfn] += 1
    if m.preempt is not None:
        m.preempt("lru_lock", pfn)
    swap.lruvec_del_folio(m, pfn)
    return True


isolate_lru_page = folio_isolate_lru


def folio_putback_lru(m: Machine, pfn: int) -> None:
    """Put an isolated folio back on the LRU and drop the isolation reference."""
    swap.folio_add_lru(m, pfn)
    swap.put_page(m, pfn)


putback_lru_page = folio_putback_lru


def node_page_state(m: Machine, nid: int, item: int) -> int:
    """Return a node counter (``node_page_state``)."""
    return m.nodes[nid].vm_stat[item]


def _is_file_lru(lru: int) -> int:
    return int(lru >= LRU_INACTIVE_FILE)


def lruvec_lru_size(m: Machine, nid: int, lru: int, zone_idx: int) -> int:
    """Return the pages on ``lru`` in zones up to ``zone_idx`` (``lruvec_lru_size``)."""
    return sum(z.vm_stat[vs.NR_ZONE_INACTIVE_ANON + lru]
               for z in m.nodes[nid].node_zones[: zone_idx + 1])


def inactive_is_low(m: Machine, nid: int, inactive_lru: int) -> bool:
    """Is the inactive list too small next to the active one? (``inactive_is_low``).

    ``inactive * int_sqrt(10 * GiB of the pair) < active``; ratio 1 below 1 GiB.
    """
    vm = m.nodes[nid].vm_stat
    inactive = vm[vs.NR_INACTIVE_ANON + inactive_lru]
    active = vm[vs.NR_INACTIVE_ANON + inactive_lru + 1]
    gb = (inactive + active) >> (30 - 12)
    ratio = math.isqrt(10 * gb) if gb else 1
    return inactive * ratio < active


def can_reclaim_anon_pages(m: Machine) -> bool:
    """Is there swap space to reclaim anonymous pages into? (``can_reclaim_anon_pages``)."""
    return m.swap is not None and m.swap.nr_swap_pages > 0


def zone_reclaimable_pages(m: Machine, zone: Zone) -> int:
    """Pages reclaim could free in ``zone`` (``zone_reclaimable_pages``, v6.x): the file LRU,
    and the anon LRU if there is swap to put it in."""
    stat = zone.vm_stat
    nr = stat[vs.NR_ZONE_INACTIVE_FILE] + stat[vs.NR_ZONE_ACTIVE_FILE]
    if can_reclaim_anon_pages(m):
        nr += stat[vs.NR_ZONE_INACTIVE_ANON] + stat[vs.NR_ZONE_ACTIVE_ANON]
    return nr


# ------------------------------------------------------------------------------- references


def folio_check_references(m: Machine, pfn: int, exec_mapped: bool) -> int:
    """Decide a folio's fate from its accessed bits (``folio_check_references``, v6.15).

    A second page-table reference, or one with PG_referenced already set, activates;
    executable file folios activate on their first use; a single reference keeps the folio
    inactive one more round (and sets PG_referenced). Unreferenced: reclaim (a file folio with
    PG_referenced only "if clean": :func:`shrink_folio_list` keeps a dirty one).
    """

    mem = m.mem
    referenced_ptes = folio_referenced(m, pfn)
    flags = mem.flags_mv[pfn]
    referenced_folio = bool(flags >> pf.PG_referenced & 1)
    if referenced_folio:
        mem.flags_mv[pfn] = flags & ~(1 << pf.PG_referenced)
    is_file = not flags >> pf.PG_swapbacked & 1
    if referenced_ptes:
        mem.flags_mv[pfn] = mem.flags_mv[pfn] | 1 << pf.PG_referenced
        if referenced_folio or referenced_ptes > 1:
            return FOLIOREF_ACTIVATE
        if exec_mapped and is_file:
            return FOLIOREF_ACTIVATE
        return FOLIOREF_KEEP
    if referenced_folio and is_file:
        return FOLIOREF_RECLAIM_CLEAN
    return FOLIOREF_RECLAIM


def _exec_mapped(m: Machine, pfn: int) -> bool:
    owner = m.mappings.get(pf.mapping_owner(m.mem.mapping_mv[pfn]))
    return bool(getattr(owner, "exec", False))


# ------------------------------------------------------------------------------- isolation


def isolate_lru_folios(m: Machine, nid: int, lru: int, nr_to_scan: int,
                       sc: ScanControl) -> tuple[list[int], int]:
    """Take up to ``nr_to_scan`` folios from the tail of an LRU list (``isolate_lru_folios``).

    Folios of zones above ``sc.reclaim_idx`` are skipped (``pgskip_<zone>``) and go back to
    the list; the returned scan count includes them, as the kernel's does. Each folio taken
    loses PG_lru and gains the isolation reference. Returns (folios, nr_scanned).
    """
    mem = m.mem
    flags = mem.flags_mv
    ref = mem.refcount_mv
    head = m.lru_list_head(nid, lru)
    taken: list[int] = []
    skipped: list[int] = []
    nr_skipped = [0] * MAX_NR_ZONES
    scan = total_scan = 0
    zone_of = m.page_zone
    while scan < nr_to_scan and not mem.list_empty(head):
        pfn = mem.list_last(head)
        nr_pages = swap.folio_nr_pages(m, pfn)
        total_scan += nr_pages
        zone = zone_of(pfn)
        if zone.idx > sc.reclaim_idx:
            nr_skipped[zone.idx] += nr_pages
            mem.list_del(pfn)
            skipped.append(pfn)
            continue
        scan += nr_pages
        if (not flags[pfn] & _LRU or (not sc.may_unmap and pf.page_mapped(mem, pfn))
                or ref[pfn] == 0):
            mem.list_del(pfn)  # list_move back to src: rotated to the head
            mem.list_add(pfn, head)
            continue
        ref[pfn] += 1
        flags[pfn] = flags[pfn] & ~_LRU
        swap.lruvec_del_folio(m, pfn)
        taken.append(pfn)
    for pfn in reversed(skipped):
        mem.list_add_tail(pfn, head)
    for zid, nr in enumerate(nr_skipped):
        if nr:
            m.vm_events[vs.PGSCAN_SKIP_DMA + zid] += nr
    m.charge(m.cost.reclaim_scan_page * total_scan)
    return taken, total_scan


def move_folios_to_lru(m: Machine, folios: list[int]) -> int:
    """Put isolated folios back on their LRU lists and drop the isolation references.

    Models ``move_folios_to_lru``: each goes to the head of the list its flags name; a folio
    whose last reference was the isolation one is freed. Returns the pages moved.
    """
    moved = 0
    for pfn in folios:
        moved += swap.folio_nr_pages(m, pfn)
        folio_putback_lru(m, pfn)
    return moved


# ------------------------------------------------------------------------------- shrinking


def shrink_active_list(m: Machine, nid: int, nr_to_scan: int, sc: ScanControl, lru: int) -> None:
    """Age an active list: deactivate its tail (``shrink_active_list``).

    Referenced executable file folios go back to the active list (``nr_rotated``); every other
    folio loses PG_active, referenced or not. Counts ``pgrefill`` and ``pgdeactivate``.
    """
    file = _is_file_lru(lru)
    taken, nr_scanned = isolate_lru_folios(m, nid, lru, nr_to_scan, sc)
    nr_taken = len(taken)
    node = m.nodes[nid]
    node.vm_stat[vs.NR_ISOLATED_ANON + file] += nr_taken
    m.vm_events[vs.PGREFILL] += nr_scanned

    mem = m.mem
    l_active: list[int] = []
    l_inactive: list[int] = []
    nr_rotated = 0
    for pfn in taken:
        if folio_referenced(m, pfn) and file and _exec_mapped(m, pfn):
            nr_rotated += swap.folio_nr_pages(m, pfn)
            l_active.append(pfn)
            continue
        flags = mem.flags_mv[pfn]
        mem.flags_mv[pfn] = (flags & ~(1 << pf.PG_active)) | 1 << pf.PG_workingset
        l_inactive.append(pfn)
    nr_activate = move_folios_to_lru(m, l_active)
    nr_deactivate = move_folios_to_lru(m, l_inactive)
    m.vm_events[vs.PGDEACTIVATE] += nr_deactivate
    node.vm_stat[vs.NR_ISOLATED_ANON + file] -= nr_taken
    trace = m.trace
    if trace is not None:
        trace.emit("mm_vmscan_lru_shrink_active", nid=nid, nr_taken=nr_taken,
                   nr_active=nr_activate, nr_deactivated=nr_deactivate,
                   nr_referenced=nr_rotated, priority=sc.priority, reclaim_flags=file)


@dataclass
class _ReclaimStat:
    """``struct reclaim_stat`` (the fields the model fills)."""

    nr_activate: list[int] = field(default_factory=lambda: [0, 0])
    nr_ref_keep: int = 0
    nr_unmap_fail: int = 0


def shrink_inactive_list(m: Machine, nid: int, nr_to_scan: int, sc: ScanControl,
                         lru: int) -> int:
    """Reclaim from the tail of an inactive list (``shrink_inactive_list``); return pages freed.

    Counts ``pgscan_kswapd``/``pgscan_direct`` and ``pgscan_anon``/``pgscan_file`` on the
    scanned folios, ``pgsteal_*`` on the reclaimed ones; the rest go back to the LRU.
    """
    file = _is_file_lru(lru)
    taken, nr_scanned = isolate_lru_folios(m, nid, lru, nr_to_scan, sc)
    node = m.nodes[nid]
    node.vm_stat[vs.NR_ISOLATED_ANON + file] += len(taken)
    offset = 0 if sc.kswapd else 1
    m.vm_events[vs.PGSCAN_KSWAPD + offset] += nr_scanned
    m.vm_events[vs.PGSCAN_ANON + file] += nr_scanned
    if not taken:
        return 0
    stat = _ReclaimStat()
    kept, nr_reclaimed = shrink_folio_list(m, taken, sc, stat)
    move_folios_to_lru(m, kept)
    node.vm_stat[vs.NR_ISOLATED_ANON + file] -= len(taken)
    m.vm_events[vs.PGSTEAL_KSWAPD + offset] += nr_reclaimed
    m.vm_events[vs.PGSTEAL_ANON + file] += nr_reclaimed
    trace = m.trace
    if trace is not None:
        trace.emit("mm_vmscan_lru_shrink_inactive", nid=nid, nr_scanned=nr_scanned,
                   nr_reclaimed=nr_reclaimed, nr_dirty=0, nr_writeback=0, nr_congested=0,
                   nr_immediate=0, nr_activate0=stat.nr_activate[0],
                   nr_activate1=stat.nr_activate[1], nr_ref_keep=stat.nr_ref_keep,
                   nr_unmap_fail=stat.nr_unmap_fail, priority=sc.priority, reclaim_flags=file)
    return nr_reclaimed


def shrink_folio_list(m: Machine, folios: list[int], sc: ScanControl,
                      stat: _ReclaimStat) -> tuple[list[int], int]:
    """Try to free each isolated folio (``shrink_folio_list``); return (kept, pages freed).

    Order of decisions per folio, as in the kernel: trylock; unevictable → activate;
    ``folio_check_references``; an anonymous folio needs ``__GFP_IO``, no DMA pin and a swap
    slot (``add_to_swap``, else activate); ``try_to_unmap``; swap it out (``pageout``);
    ``__remove_mapping`` (refuses a folio someone else holds a reference to); free.
    Counts ``pgactivate`` once at the end.
    """
    mem = m.mem
    kept: list[int] = []
    nr_reclaimed = 0
    for pfn in folios:
        if not trylock_page(m, pfn):
            kept.append(pfn)
            continue
        verdict = _shrink_one(m, pfn, sc, stat)
        if verdict == _FREED:
            nr_reclaimed += 1
            continue
        if verdict == _ACTIVATE:
            flags = mem.flags_mv[pfn]
            if not flags >> pf.PG_mlocked & 1:
                file = int(not flags >> pf.PG_swapbacked & 1)
                mem.flags_mv[pfn] = flags | 1 << pf.PG_active
                stat.nr_activate[file] += swap.folio_nr_pages(m, pfn)
        unlock_page(m, pfn)
        kept.append(pfn)
    m.vm_events[vs.PGACTIVATE] += stat.nr_activate[0] + stat.nr_activate[1]
    sc.nr_activate[0] += stat.nr_activate[0]
    sc.nr_activate[1] += stat.nr_activate[1]
    return kept, nr_reclaimed


_FREED = 0
_KEEP = 1
_ACTIVATE = 2


def _shrink_one(m: Machine, pfn: int, sc: ScanControl, stat: _ReclaimStat) -> int:
    """One folio of :func:`shrink_folio_list`, page locked; the folio is freed on _FREED."""

    mem = m.mem
    flags = mem.flags_mv[pfn]
    sc.nr_scanned += 1
    if flags >> pf.PG_unevictable & 1:
        return _ACTIVATE
    if not sc.may_unmap and pf.page_mapped(mem, pfn):
        return _KEEP
    if flags >> pf.PG_head & 1:
        return _KEEP  # a THP would be split here; the model keeps it (see module docstring)
    references = folio_check_references(m, pfn, _exec_mapped(m, pfn))
    if references == FOLIOREF_ACTIVATE:
        return _ACTIVATE
    if references == FOLIOREF_KEEP:
        stat.nr_ref_keep += 1
        return _KEEP
    anon = bool(mem.flags_mv[pfn] >> pf.PG_swapbacked & 1)
    slot = 0
    if anon:
        if not sc.gfp_mask & G.__GFP_IO or not sc.may_swap:
            return _KEEP
        if mem.refcount_mv[pfn] >= GUP_PIN_COUNTING_BIAS:  # folio_maybe_dma_pinned
            return _KEEP
        slot = swapfile.folio_alloc_swap(m)  # add_to_swap
        if not slot:
            return _ACTIVATE
    if pf.page_mapped(mem, pfn):
        try_to_unmap(m, pfn, make_swap_entry(slot) if anon else PTE_NONE)
        if pf.page_mapped(mem, pfn):
            stat.nr_unmap_fail += 1
            return _ACTIVATE
    if not anon and mem.flags_mv[pfn] >> pf.PG_dirty & 1:
        # Only the flusher writes file folios here (see the module docstring): count it,
        # mark it to be rotated when written, and move it out of reclaim's way (v4.12+).
        m.nodes[m.page_zone(pfn).node].vm_stat[vs.NR_VMSCAN_IMMEDIATE] += 1
        mem.flags_mv[pfn] = mem.flags_mv[pfn] | 1 << pf.PG_reclaim
        return _ACTIVATE if m.profile.reclaim_activate_dirty else _KEEP
    if anon:
        if not sc.may_writepage:
            _undo_swap_out(m, pfn, slot)
            return _KEEP
        ret = page_io.swap_writepage(m, pfn, slot)
        if ret < 0:
            # The device refused (-ENOMEM over zram's mem_limit): the kernel re-dirties the
            # folio and leaves it in the swap cache on the inactive list.
            if ret != -errno.ENOMEM:
                raise ModelBug(f"swap_writepage of pfn {pfn:#x} failed with {ret}")
            _undo_swap_out(m, pfn, slot)
            return _KEEP
    if not __remove_mapping(m, pfn, anon):
        if anon:
            _undo_swap_out(m, pfn, slot)
        return _KEEP
    unlock_page(m, pfn)
    _free_reclaimed_folio(m, pfn)
    return _FREED


def _undo_swap_out(m: Machine, pfn: int, slot: int) -> None:
    """Map the folio back where its swap entry is and release the slot (see docstring)."""

    entry = make_swap_entry(slot)
    mem = m.mem
    owner = m.mappings.get(pf.mapping_owner(mem.mapping_mv[pfn]))
    mm = getattr(owner, "mm", None)
    vpn = int(mem.index_mv[pfn])
    if mm is not None and vpn < len(mm.pte) and mm.pte[vpn] == entry:
        mm.pte[vpn] = pfn
        mem.mapcount_mv[pfn] += 1
        mem.refcount_mv[pfn] += 1
        m.nodes[m.page_zone(pfn).node].vm_stat[vs.NR_ANON_MAPPED] += 1
    swapfile.swap_free(m, slot)


def __remove_mapping(m: Machine, pfn: int, anon: bool) -> bool:
    """Detach a clean, unmapped folio from its owner (``__remove_mapping``).

    The reference count must be exactly what the owner and the isolation hold (the kernel
    freezes it at that value), else someone still uses the folio. A page-cache folio leaves
    its file's xarray; an anonymous one keeps only its swap entry.
    """

    mem = m.mem
    expected = 1 if anon else 2
    if mem.refcount_mv[pfn] != expected or pf.page_mapped(mem, pfn):
        return False
    if not anon:
        owner = m.mappings.get(pf.mapping_owner(mem.mapping_mv[pfn]))
        if not isinstance(owner, AddressSpace):
            return False
        index = int(mem.index_mv[pfn])
        if owner.pages.get(index) != pfn:
            return False
        del owner.pages[index]
        m.nodes[m.page_zone(pfn).node].vm_stat[vs.NR_FILE_PAGES] -= 1
        mem.mapping_mv[pfn] = 0
    return True


def _free_reclaimed_folio(m: Machine, pfn: int) -> None:
    """Free a reclaimed folio: its refcount frozen to zero, it goes back to the buddy."""
    m.mem.refcount_mv[pfn] = 0
    m.charge(m.cost.reclaim_page)
    swap.__folio_put(m, pfn)


def shrink_list(m: Machine, nid: int, lru: int, nr_to_scan: int, sc: ScanControl) -> int:
    """Scan one list (``shrink_list``): active lists only age when allowed to deactivate."""
    if lru in (LRU_ACTIVE_ANON, LRU_ACTIVE_FILE):
        if sc.may_deactivate & (1 << _is_file_lru(lru)):
            shrink_active_list(m, nid, nr_to_scan, sc, lru)
        else:
            sc.skipped_deactivate = True
        return 0
    return shrink_inactive_list(m, nid, nr_to_scan, sc, lru)


def get_scan_count(m: Machine, nid: int, sc: ScanControl) -> list[int]:
    """How many folios of each evictable list to scan at this priority (``get_scan_count``).

    Without free swap only file lists; at priority 0 equal pressure; a tiny page cache means
    anon only; cache-trim mode file only; otherwise ``lru_size >> priority`` split by
    swappiness (anon ``swappiness``, file ``200 - swappiness``; the kernel also weighs recent
    reclaim costs, which the model does not track).
    """
    swappiness = m.swappiness
    if not sc.may_swap or not can_reclaim_anon_pages(m):
        balance = SCAN_FILE
    elif not sc.priority and swappiness:
        balance = SCAN_EQUAL
    elif sc.file_is_tiny:
        balance = SCAN_ANON
    elif sc.cache_trim_mode:
        balance = SCAN_FILE
    else:
        balance = SCAN_FRACT
    fraction = (swappiness, MAX_SWAPPINESS - swappiness)
    denominator = fraction[0] + fraction[1]
    nr = [0] * len(_EVICTABLE_LRUS)
    for lru in _EVICTABLE_LRUS:
        file = _is_file_lru(lru)
        scan = lruvec_lru_size(m, nid, lru, sc.reclaim_idx) >> sc.priority
        if balance == SCAN_FRACT:
            scan = scan * fraction[file] // denominator
        elif balance in (SCAN_FILE, SCAN_ANON) and (balance == SCAN_FILE) != bool(file):
            scan = 0
        nr[lru] = scan
    return nr


def shrink_lruvec(m: Machine, nid: int, sc: ScanControl) -> None:
    """Scan a node's lists in batches of 32 until the targets are met (``shrink_lruvec``).

    Once ``nr_to_reclaim`` is reached (except for direct reclaim at the first priority), the
    smaller of anon and file stops and the other is scaled to keep their proportion; then
    the active anon list is aged if the inactive one is low.
    """
    nr = get_scan_count(m, nid, sc)
    targets = list(nr)
    nr_reclaimed = 0
    nr_to_reclaim = sc.nr_to_reclaim
    proportional_reclaim = not sc.kswapd and sc.priority == DEF_PRIORITY
    while nr[LRU_INACTIVE_ANON] or nr[LRU_ACTIVE_FILE] or nr[LRU_INACTIVE_FILE]:
        for lru in _EVICTABLE_LRUS:
            if nr[lru]:
                nr_to_scan = min(nr[lru], SWAP_CLUSTER_MAX)
                nr[lru] -= nr_to_scan
                nr_reclaimed += shrink_list(m, nid, lru, nr_to_scan, sc)
        if nr_reclaimed < nr_to_reclaim or proportional_reclaim:
            continue
        nr_file = nr[LRU_INACTIVE_FILE] + nr[LRU_ACTIVE_FILE]
        nr_anon = nr[LRU_INACTIVE_ANON] + nr[LRU_ACTIVE_ANON]
        if not nr_file or not nr_anon:
            break
        if nr_file > nr_anon:
            scan_target = targets[LRU_INACTIVE_ANON] + targets[LRU_ACTIVE_ANON] + 1
            stop, other = LRU_INACTIVE_ANON, LRU_INACTIVE_FILE
            percentage = nr_anon * 100 // scan_target
        else:
            scan_target = targets[LRU_INACTIVE_FILE] + targets[LRU_ACTIVE_FILE] + 1
            stop, other = LRU_INACTIVE_FILE, LRU_INACTIVE_ANON
            percentage = nr_file * 100 // scan_target
        nr[stop] = nr[stop + 1] = 0
        for lru in (other, other + 1):
            nr_scanned = targets[lru] - nr[lru]
            nr[lru] = targets[lru] * (100 - percentage) // 100
            nr[lru] -= min(nr[lru], nr_scanned)
        proportional_reclaim = True
    sc.nr_reclaimed += nr_reclaimed
    if can_reclaim_anon_pages(m) and inactive_is_low(m, nid, LRU_INACTIVE_ANON):
        shrink_active_list(m, nid, SWAP_CLUSTER_MAX, sc, LRU_ACTIVE_ANON)


def prepare_scan_control(m: Machine, pgdat: PglistData, sc: ScanControl) -> None:
    """Set deactivation, cache-trim and tiny-file modes for this pass (``prepare_scan_control``).

    A list may be deactivated when its inactive part is low or when its pages refaulted
    (workingset activations) since the last snapshot; cache-trim mode reclaims file pages
    only while the inactive file list is big and nothing refaulted.
    """
    nid = pgdat.node_id
    vm = pgdat.vm_stat
    sc.may_deactivate = 0
    refaults = pgdat.refaults
    if (sc.force_deactivate or vm[vs.WORKINGSET_ACTIVATE_ANON] != refaults[0]
            or inactive_is_low(m, nid, LRU_INACTIVE_ANON)):
        sc.may_deactivate |= DEACTIVATE_ANON
    if (sc.force_deactivate or vm[vs.WORKINGSET_ACTIVATE_FILE] != refaults[1]
            or inactive_is_low(m, nid, LRU_INACTIVE_FILE)):
        sc.may_deactivate |= DEACTIVATE_FILE
    file = vm[vs.NR_INACTIVE_FILE]
    sc.cache_trim_mode = bool(file >> sc.priority) and not sc.may_deactivate & DEACTIVATE_FILE
    total_high_wmark = sum(z.high_wmark_pages() for z in pgdat.node_zones if z.managed_pages)
    free = sum(z.vm_stat[vs.NR_FREE_PAGES] for z in pgdat.node_zones)
    file = vm[vs.NR_ACTIVE_FILE] + vm[vs.NR_INACTIVE_FILE]
    anon = vm[vs.NR_INACTIVE_ANON]
    sc.file_is_tiny = (file + free <= total_high_wmark
                       and not sc.may_deactivate & DEACTIVATE_ANON
                       and bool(anon >> sc.priority))


def snapshot_refaults(pgdat: PglistData) -> None:
    """Remember the workingset activations seen so far (``snapshot_refaults``)."""
    pgdat.refaults = [pgdat.vm_stat[vs.WORKINGSET_ACTIVATE_ANON],
                      pgdat.vm_stat[vs.WORKINGSET_ACTIVATE_FILE]]


def workingset_refault(m: Machine, pfn: int, file: bool) -> None:
    """A page evicted earlier comes back (``workingset_refault``): count it, start it active.

    Named simplification: without shadow entries every refault counts as a workingset
    activation (the kernel activates only when the refault distance fits in the workingset).
    """
    node = m.nodes[m.page_zone(pfn).node]
    node.vm_stat[vs.WORKINGSET_REFAULT_ANON + file] += 1
    node.vm_stat[vs.WORKINGSET_ACTIVATE_ANON + file] += 1
    m.mem.flags_mv[pfn] = m.mem.flags_mv[pfn] | 1 << pf.PG_active | 1 << pf.PG_workingset


def shrink_node(m: Machine, pgdat: PglistData, sc: ScanControl) -> None:
    """Reclaim from one node (``shrink_node``), again while compaction still needs room.

    The LRU lists first, then the registered shrinkers (``shrink_node_memcgs`` for the root
    memcg: ``shrink_lruvec``, then ``shrink_slab`` at the same priority). Any progress resets
    ``kswapd_failures`` (direct reclaim's too).
    """
    while True:
        nr_reclaimed, nr_scanned = sc.nr_reclaimed, sc.nr_scanned
        prepare_scan_control(m, pgdat, sc)
        shrink_lruvec(m, pgdat.node_id, sc)
        shrink_slab(m, sc.gfp_mask, pgdat.node_id, sc.priority, sc.nr_scanned - nr_scanned,
                    node_lru_pages(pgdat))
        reclaimed = sc.nr_reclaimed - nr_reclaimed
        if reclaimed:
            pgdat.kswapd_failures = 0
        if not should_continue_reclaim(m, pgdat, reclaimed, sc):
            return


def node_lru_pages(pgdat: PglistData) -> int:
    """The node's pages on its four evictable LRU lists (the ``NR_*_ANON``/``NR_*_FILE`` node
    counters): v4.8's ``lru_pages``, the shrinkers' denominator."""
    return sum(pgdat.vm_stat[vs.NR_INACTIVE_ANON + lru] for lru in range(4))


def in_reclaim_compaction(sc: ScanControl) -> bool:
    """Is this reclaim for a compaction that needs free pages? (``in_reclaim_compaction``)."""
    return sc.order > 0 and (sc.order > PAGE_ALLOC_COSTLY_ORDER
                             or sc.priority < DEF_PRIORITY - 2)


def compact_gap(order: int) -> int:
    """Free pages compaction wants beyond the watermark (``compact_gap``: ``2 << order``)."""
    return 2 << order


def should_continue_reclaim(m: Machine, pgdat: PglistData, nr_reclaimed: int,
                            sc: ScanControl) -> bool:
    """Keep reclaiming for compaction? (``should_continue_reclaim``)."""
    from pagelab.mm.compaction import compaction_suitable

    if not in_reclaim_compaction(sc) or not nr_reclaimed:
        return False
    for zone in pgdat.node_zones[: sc.reclaim_idx + 1]:
        if not zone.managed_pages:
            continue
        if zone_watermark_ok(zone, sc.order, zone.min_wmark_pages(), sc.reclaim_idx, 0):
            return False
        if compaction_suitable(zone, sc.order, 0, sc.reclaim_idx):
            return False
    inactive = pgdat.vm_stat[vs.NR_INACTIVE_FILE]
    if can_reclaim_anon_pages(m):
        inactive += pgdat.vm_stat[vs.NR_INACTIVE_ANON]
    return inactive > compact_gap(sc.order)


# ------------------------------------------------------------------------------- direct reclaim


def compaction_ready(zone: Zone, sc: ScanControl) -> bool:
    """Can compaction run instead of more reclaim? (``compaction_ready``)."""
    from pagelab.mm.compaction import compaction_suitable

    if zone_watermark_ok(zone, sc.order, zone.min_wmark_pages(), sc.reclaim_idx, 0):
        return True
    if not compaction_suitable(zone, sc.order, 0, sc.reclaim_idx):
        return False
    watermark = zone.high_wmark_pages() + compact_gap(sc.order)
    return zone_watermark_ok(zone, 0, watermark, sc.reclaim_idx, 0)


def shrink_zones(m: Machine, zonelist: list[Zone], sc: ScanControl) -> None:
    """Reclaim from each node of the zonelist once (``shrink_zones``)."""
    last_node = -1
    for zone in zonelist:
        if zone.idx > sc.reclaim_idx or not zone.managed_pages:
            continue
        if sc.order > PAGE_ALLOC_COSTLY_ORDER and compaction_ready(zone, sc):
            sc.compaction_ready = True
            continue
        if zone.node == last_node:
            continue
        last_node = zone.node
        shrink_node(m, m.nodes[zone.node], sc)


def do_try_to_free_pages(m: Machine, zonelist: list[Zone], sc: ScanControl) -> int:
    """Direct reclaim's priority loop (``do_try_to_free_pages``); return pages reclaimed.

    Counts ``allocstall_<zone>`` for every pass; stops at ``nr_to_reclaim`` or when
    compaction is ready (returning 1 then). A pass that reclaimed nothing because the active
    lists were not allowed to age is repeated with forced deactivation, and a fruitless pass
    once more in full (the kernel's ``memcg_full_walk`` retry).
    """
    full_walk = False
    while True:
        m.vm_events[vs.ALLOCSTALL_DMA + sc.reclaim_idx] += 1
        sc.priority = DEF_PRIORITY
        while sc.priority >= 0:
            sc.nr_scanned = 0
            shrink_zones(m, zonelist, sc)
            if sc.nr_reclaimed >= sc.nr_to_reclaim or sc.compaction_ready:
                break
            if sc.priority < DEF_PRIORITY - 2:
                sc.may_writepage = True
            sc.priority -= 1
        for node in {z.node for z in zonelist if z.idx <= sc.reclaim_idx}:
            snapshot_refaults(m.nodes[node])
        if sc.nr_reclaimed:
            return sc.nr_reclaimed
        if sc.compaction_ready:
            return 1
        if sc.skipped_deactivate and not sc.force_deactivate:
            sc.force_deactivate = True
            sc.skipped_deactivate = False
            continue
        if not full_walk:
            full_walk = True
            continue
        return 0


def try_to_free_pages(m: Machine, zonelist: list[Zone], order: int, gfp_mask: int) -> int:
    """Direct reclaim for an allocation (``try_to_free_pages``); return pages reclaimed.

    Runs with PF_MEMALLOC set, so the allocations reclaim makes (zram's pool) may use the
    reserves and never recurse into reclaim.
    """
    sc = ScanControl(nr_to_reclaim=SWAP_CLUSTER_MAX, gfp_mask=gfp_mask, order=order,
                     reclaim_idx=G.gfp_zone(gfp_mask))
    trace = m.trace
    if trace is not None:
        trace.emit("mm_vmscan_direct_reclaim_begin", order=order, gfp_flags=gfp_mask)
    saved = m.pf_memalloc
    m.pf_memalloc = True
    try:
        nr_reclaimed = do_try_to_free_pages(m, zonelist, sc)
    finally:
        m.pf_memalloc = saved
    if trace is not None:
        trace.emit("mm_vmscan_direct_reclaim_end", nr_reclaimed=nr_reclaimed)
    return nr_reclaimed


def direct_reclaim_hook(m: Machine, gfp: int, order: int, ac: AllocContext) -> int:
    """The allocator's ``__perform_reclaim``: direct reclaim over the request's zonelist."""
    return try_to_free_pages(m, ac.zonelist, order, gfp)


# ------------------------------------------------------------------------------- kswapd


def pgdat_balanced(m: Machine, pgdat: PglistData, order: int, highest_zoneidx: int) -> bool:
    """Is one zone up to ``highest_zoneidx`` above its high watermark? (``pgdat_balanced``)."""

    mark = -1
    for zone in pgdat.node_zones[: highest_zoneidx + 1]:
        if not zone.managed_pages:
            continue
        mark = zone.high_wmark_pages()
        if zone_watermark_ok(zone, order, mark, highest_zoneidx, 0):
            return True
    return mark == -1


def pgdat_watermark_boosted(pgdat: PglistData, highest_zoneidx: int) -> bool:
    """Does any zone up to ``highest_zoneidx`` carry a watermark boost?"""
    return any(z.watermark_boost for z in pgdat.node_zones[: highest_zoneidx + 1])


def wakeup_kswapd(m: Machine, zone: Zone, gfp_flags: int, order: int,
                  highest_zoneidx: int) -> None:
    """Wake the node's kswapd for an allocation that found a zone low (``wakeup_kswapd``).

    Records the largest order and zone asked for. A hopeless node (16 fruitless runs) or a
    balanced, unboosted one is left alone — from v4.17 (profile ``kswapd_wakes_kcompactd``)
    kcompactd is woken instead, for a request that cannot compact for itself; before, a
    request that found the node balanced woke nobody. Traces ``mm_vmscan_wakeup_kswapd``.

    Simplified: the hopeless-node test (``kswapd_failures``, v4.11) and the boost test
    (v5.0) are kept on every profile: v4.8 had neither, but a seed-era node is never
    boosted, and the model's ``balance_pgdat`` (v6.15's) keeps ``kswapd_failures`` on every
    profile.
    """
    if not zone.managed_pages:
        return
    m.kswapd_wakeups += 1
    pgdat = m.nodes[zone.node]
    if pgdat.kswapd_highest_zoneidx == MAX_NR_ZONES or pgdat.kswapd_highest_zoneidx < \
            highest_zoneidx:
        pgdat.kswapd_highest_zoneidx = highest_zoneidx
    if pgdat.kswapd_order < order:
        pgdat.kswapd_order = order
    if pgdat.kswapd_woken:
        return  # already awake: waitqueue_active() is false
    if pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES or (
            pgdat_balanced(m, pgdat, order, highest_zoneidx)
            and not pgdat_watermark_boosted(pgdat, highest_zoneidx)):
        if m.profile.kswapd_wakes_kcompactd and not gfp_flags & G.__GFP_DIRECT_RECLAIM:
            from pagelab.mm.compaction import wakeup_kcompactd

            wakeup_kcompactd(m, pgdat, order, highest_zoneidx)
        return
    trace = m.trace
    if trace is not None:
        trace.emit("mm_vmscan_wakeup_kswapd", nid=pgdat.node_id, order=order,
                   gfp_flags=gfp_flags)
    if m.clock.now_ns < pgdat.kswapd_nap_until:
        m.vm_events[vs.KSWAPD_LOW_WMARK_HIT_QUICKLY] += 1
        pgdat.kswapd_nap_until = 0
    pgdat.kswapd_woken = True


def kswapd_shrink_node(m: Machine, pgdat: PglistData, sc: ScanControl) -> bool:
    """One kswapd pass over the node (``kswapd_shrink_node``); True if it scanned enough.

    Aims at the zones' high watermarks; once ``compact_gap(order)`` pages are free for a
    high-order request, reclaims for order 0 and leaves the rest to compaction.
    """
    sc.nr_to_reclaim = sum(max(z.high_wmark_pages(), SWAP_CLUSTER_MAX)
                           for z in pgdat.node_zones[: sc.reclaim_idx + 1] if z.managed_pages)
    nr_reclaimed = sc.nr_reclaimed
    shrink_node(m, pgdat, sc)
    if sc.order and sc.nr_reclaimed >= compact_gap(sc.order):
        sc.order = 0
    # Scanned (or reclaimed, when scanning large folios undercounts) enough for this pass.
    return max(sc.nr_scanned, sc.nr_reclaimed - nr_reclaimed) >= sc.nr_to_reclaim


def kswapd_age_node(m: Machine, pgdat: PglistData, sc: ScanControl) -> None:
    """Age the active anon list before reclaiming (``kswapd_age_node``)."""
    if not can_reclaim_anon_pages(m):
        return
    if inactive_is_low(m, pgdat.node_id, LRU_INACTIVE_ANON):
        shrink_active_list(m, pgdat.node_id, SWAP_CLUSTER_MAX, sc, LRU_ACTIVE_ANON)


def balance_pgdat(m: Machine, pgdat: PglistData, order: int, highest_zoneidx: int) -> int:
    """kswapd's work: reclaim until the node is balanced (``balance_pgdat``, v6.15).

    Priority 12 down to 1. Boosted watermarks are first worked off without writing or
    swapping (restart at full reclaim if the node is not balanced anyway). Counts
    ``pageoutrun`` and, when nothing at all was reclaimed, a ``kswapd_failures``; removes the
    boost it saw and wakes kcompactd for a pageblock. Returns the order it ended reclaiming
    for (0 once enough is free for compaction to take over).
    """
    from pagelab.mm.compaction import wakeup_kcompactd

    m.vm_events[vs.PAGEOUTRUN] += 1
    zones = pgdat.node_zones[: highest_zoneidx + 1]
    zone_boosts = [z.watermark_boost if z.managed_pages else 0 for z in zones]
    nr_boost_reclaim = sum(zone_boosts)
    boosted = bool(nr_boost_reclaim)
    sc = ScanControl(nr_to_reclaim=0, gfp_mask=G.GFP_KERNEL, order=order,
                     reclaim_idx=highest_zoneidx, kswapd=True)
    saved = m.pf_memalloc
    m.pf_memalloc = True
    pgdat.kswapd_running = True
    try:
        while True:
            restart = False
            sc.priority = DEF_PRIORITY
            while sc.priority >= 1:
                nr_reclaimed = sc.nr_reclaimed
                raise_priority = True
                sc.reclaim_idx = highest_zoneidx
                balanced = pgdat_balanced(m, pgdat, sc.order, highest_zoneidx)
                if not balanced and nr_boost_reclaim:
                    nr_boost_reclaim = 0
                    restart = True
                    break
                if not nr_boost_reclaim and balanced:
                    break
                if nr_boost_reclaim and sc.priority == DEF_PRIORITY - 2:
                    raise_priority = False
                sc.may_writepage = not nr_boost_reclaim
                sc.may_swap = not nr_boost_reclaim
                kswapd_age_node(m, pgdat, sc)
                sc.nr_scanned = 0
                if kswapd_shrink_node(m, pgdat, sc):
                    raise_priority = False
                nr_reclaimed = sc.nr_reclaimed - nr_reclaimed
                nr_boost_reclaim -= min(nr_boost_reclaim, nr_reclaimed)
                if nr_boost_reclaim and not nr_reclaimed:
                    break
                if raise_priority or not nr_reclaimed:
                    sc.priority -= 1
            else:
                if not sc.nr_reclaimed:
                    pgdat.kswapd_failures += 1
            if not restart:
                break
    finally:
        m.pf_memalloc = saved
        pgdat.kswapd_running = False
    snapshot_refaults(pgdat)
    if boosted:
        for zone, boost in zip(zones, zone_boosts, strict=True):
            if boost:
                zone.watermark_boost -= min(zone.watermark_boost, boost)
        wakeup_kcompactd(m, pgdat, pageblock_order, highest_zoneidx)
    return sc.order


def prepare_kswapd_sleep(m: Machine, pgdat: PglistData, order: int,
                         highest_zoneidx: int) -> bool:
    """May kswapd sleep? Hopeless or balanced nodes let it (``prepare_kswapd_sleep``)."""
    if pgdat.kswapd_failures >= MAX_RECLAIM_RETRIES:
        return True
    return pgdat_balanced(m, pgdat, order, highest_zoneidx)


def kswapd_try_to_sleep(m: Machine, pgdat: PglistData, alloc_order: int, reclaim_order: int,
                        highest_zoneidx: int) -> bool:
    """kswapd going back to sleep (``kswapd_try_to_sleep``); False if it must run again.

    When balanced it flushes compaction's skip hints, wakes kcompactd for the allocation's
    order and naps (100 ms; see the module docstring); still unbalanced counts
    ``kswapd_high_wmark_hit_quickly`` and kswapd stays awake.
    """
    from pagelab.mm.compaction import reset_isolation_suitable, wakeup_kcompactd

    if prepare_kswapd_sleep(m, pgdat, reclaim_order, highest_zoneidx):
        reset_isolation_suitable(m, pgdat)
        wakeup_kcompactd(m, pgdat, alloc_order, highest_zoneidx)
        pgdat.kswapd_nap_until = m.clock.now_ns + KSWAPD_NAP_NS
        trace = m.trace
        if trace is not None:
            trace.emit("mm_vmscan_kswapd_sleep", nid=pgdat.node_id)
        return True
    m.vm_events[vs.KSWAPD_HIGH_WMARK_HIT_QUICKLY] += 1
    return False


def kswapd_run(m: Machine, nid: int) -> bool:
    """One iteration of the ``kswapd()`` loop for node ``nid``, if it was woken.

    Reads and resets the requested order and zone, traces ``mm_vmscan_kswapd_wake``,
    ``balance_pgdat``, then :func:`kswapd_try_to_sleep`. Returns whether kswapd ran. (The
    kernel's ``kswapd_run()`` starts the thread; the model has none, so the name runs it.)
    """
    pgdat = m.nodes[nid]
    if not pgdat.kswapd_woken:
        return False
    alloc_order = pgdat.kswapd_order
    highest_zoneidx = pgdat.kswapd_highest_zoneidx
    if highest_zoneidx == MAX_NR_ZONES:
        highest_zoneidx = pgdat.nr_zones - 1
    pgdat.kswapd_order = 0
    pgdat.kswapd_highest_zoneidx = MAX_NR_ZONES
    trace = m.trace
    if trace is not None:
        trace.emit("mm_vmscan_kswapd_wake", nid=nid, order=alloc_order)
    reclaim_order = balance_pgdat(m, pgdat, alloc_order, highest_zoneidx)
    pgdat.kswapd_woken = not kswapd_try_to_sleep(m, pgdat, alloc_order, reclaim_order,
                                                 highest_zoneidx)
    return True
