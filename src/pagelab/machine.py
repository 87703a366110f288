"""The public face: a simulated machine with its memory map, nodes, zones and counters.

>>> from pagelab import Machine
>>> m = Machine.build(memory="256M")
>>> pfn = m.alloc_pages(order=3, gfp="GFP_KERNEL")
>>> m.free_pages(pfn, order=3)
>>> m.check_state()
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import NDArray

from pagelab.errors import BadConfiguration, InvalidArgument, ModelBug
from pagelab.io.ftrace import TraceSink
from pagelab.mm import compaction, mm_init, vmscan
from pagelab.mm import page_alloc as pa
from pagelab.mm import page_flags as pf
from pagelab.mm import vmstat as vs
from pagelab.mm.gfp import parse_gfp
from pagelab.mm.internal import DEFAULT_LOWMEM_RESERVE_RATIO
from pagelab.mm.memmap import MemMap, PageView
from pagelab.mm.memory import MmStruct
from pagelab.mm.mmzone import (
    MAX_NR_ZONES,
    MAX_PAGE_ORDER,
    MIGRATE_MOVABLE,
    MIGRATE_TYPES,
    NR_PAGE_ORDERS,
    PAGE_ALLOC_COSTLY_ORDER,
    PAGE_SHIFT,
    PFN_SECTION_SHIFT,
    PglistData,
    Zone,
    pageblock_nr_pages,
    pageblock_order,
    zone_names,
)
from pagelab.mm.page_alloc import AllocContext
from pagelab.mm.shrinker import Shrinker
from pagelab.mm.swapfile import SwapInfo
from pagelab.profile import KernelProfile, resolve_profile
from pagelab.sched.clock import DEFAULT_COST_MODEL, CostModel, VirtualClock

__all__ = ["Machine"]

_LIST_HEADS_PER_ZONE = NR_PAGE_ORDERS * MIGRATE_TYPES
#: LRU lists per node (enum lru_list: inactive/active anon and file, unevictable).
NR_LRU_LISTS = 5
#: List heads available to lists created at run time (migration lists, driver lists).
DYNAMIC_LIST_HEADS = 4096
#: First id handed to an anon_vma or address_space; smaller values never look like owners
#: (TAIL_MAPPING is 0x400).
FIRST_MAPPING_ID = 0x1000


class Machine:
    """A simulated machine: memory map, pageblock bits, nodes, zones, CPUs and counters.

    Build one with :meth:`build`. All model functions (``pagelab.mm.*``) take it, or one of
    its zones, explicitly.
    """

    def __init__(
        self,
        ranges: list[mm_init.MemoryRange],
        *,
        profile: KernelProfile,
        seed: int = 0,
        movable: int = 0,
        kernel_reserved: int = 37 << 20,
        page_owner: bool = False,
        thp: bool = True,
        arch: str = "x86_64",
    ) -> None:
        mm_init.validate_ranges(ranges)
        self.arch = arch
        self.profile = profile
        self.seed = seed
        self.page_owner = page_owner
        self.thp = thp
        self.ranges = sorted(ranges, key=lambda r: r.start_pfn)
        end_pfn = max(r.end_pfn for r in ranges)
        # Cover whole MAX_ORDER blocks so that buddy pfns are always inside the map.
        self.max_pfn = -(-end_pfn // (1 << MAX_PAGE_ORDER)) * (1 << MAX_PAGE_ORDER)
        nr_nodes = max(r.nid for r in ranges) + 1
        self.nr_cpus = profile.nr_cpus
        self.cpu = 0
        self.node_cpus = [[c for c in range(self.nr_cpus) if c % nr_nodes == n]
                          for n in range(nr_nodes)]
        # List heads: every zone's free_area lists, every node's LRU lists, then a pool for
        # lists that come and go (compaction's migratepages, drivers' page lists).
        free_area_heads = nr_nodes * MAX_NR_ZONES * _LIST_HEADS_PER_ZONE
        self.lru_head_base = free_area_heads
        self.dynamic_head_base = free_area_heads + nr_nodes * NR_LRU_LISTS
        self.mem = MemMap(self.max_pfn, self.dynamic_head_base + DYNAMIC_LIST_HEADS)
        self._free_heads = list(range(self.dynamic_head_base + DYNAMIC_LIST_HEADS - 1,
                                      self.dynamic_head_base - 1, -1))
        # Owners of page->mapping values (anon_vma, address_space): id -> object.
        self.mappings: dict[int, object] = {}
        self._next_mapping_id = FIRST_MAPPING_ID
        self.pageblock_flags: NDArray[np.uint8] = np.zeros(
            (self.max_pfn >> pageblock_order) + 1, dtype=np.uint8
        )
        self.pageblock_flags_mv = self.pageblock_flags.data
        self.section_valid: NDArray[np.bool_] = np.zeros(
            (self.max_pfn >> PFN_SECTION_SHIFT) + 1, dtype=np.bool_
        )
        self.present: NDArray[np.bool_] = np.zeros(self.max_pfn, dtype=np.bool_)
        self.vm_events = [0] * vs.NR_VM_EVENT_ITEMS
        #: Where tracepoints go (None: tracing off). See :meth:`enable_tracing`.
        self.trace: TraceSink | None = None
        #: Virtual time and the cost of each modelled operation (calibrated on a real kernel).
        self.clock = VirtualClock()
        self.cost: CostModel = DEFAULT_COST_MODEL
        #: sysctl vm.stat_interval: the vmstat worker's period (``vmstat_update``), in ns.
        self.stat_interval_ns = 1_000_000_000
        self._next_vmstat_ns = self.stat_interval_ns
        # sysctls
        self.watermark_scale_factor = 10
        #: Android kernels' vm.extra_free_kbytes (out of tree; see __setup_per_zone_wmarks).
        self.extra_free_kbytes = 0
        self.watermark_boost_factor = 15000
        self.percpu_pagelist_high_fraction = 0
        self.lowmem_reserve_ratio = list(DEFAULT_LOWMEM_RESERVE_RATIO)
        self.extfrag_threshold = 500
        self.compaction_proactiveness = 20
        self.compact_unevictable_allowed = 1
        self.pcp_orders = [
            order == 0 or (profile.pcp_high_order and (
                order <= PAGE_ALLOC_COSTLY_ORDER or order == pageblock_order))
            for order in range(NR_PAGE_ORDERS)
        ]
        # Hooks where the kernel's slow path reclaims and compacts (filled by later layers).
        self.direct_compact_hook: Callable[..., int] | None = None
        self.direct_reclaim_hook: Callable[..., int] | None = None
        #: v3.8..v4.7 balloon special case, set by mm/balloon_compaction.py when a balloon
        #: device is created under a pre-4.8 profile: ``(m, pfn, isolate_mode) -> bool``,
        #: called by the migrate scanner before its compound check.
        self.balloon_isolate_hook: Callable[[Machine, int, int], bool] | None = None
        self.kswapd_wakeups = 0
        self.direct_reclaim_hook = functools.partial(vmscan.direct_reclaim_hook, self)
        #: PF_MEMALLOC: set while the current task reclaims (kswapd, direct reclaim); its own
        #: allocations may then use the reserves and never recurse into reclaim.
        self.pf_memalloc = False
        #: The swap device (``swapon``), or None.
        self.swap: SwapInfo | None = None
        #: vm.swappiness.
        self.swappiness = 60
        #: Registered shrinkers (``shrinker_list``, :mod:`pagelab.mm.shrinker`).
        self.shrinkers: list[Shrinker] = []
        #: Preemption hook: called at every lock and reference operation with (what, pfn).
        #: None in an ordinary run; the schedule explorer installs its scheduler here.
        self.preempt: Callable[[str, int], None] | None = None
        self.page_lock_owner: dict[int, int] = {}
        #: PF_MEMALLOC: set while the current task runs direct compaction (never sleeps on a
        #: page lock there).
        self.in_direct_compaction = False
        #: The result of the last direct compaction ("skipped", "deferred", "success", ...).
        self.last_compact_result = ""
        #: WARN_ON_ONCE sites that fired: key -> message (a WARN is a finding, not a crash).
        self.warnings: dict[str, str] = {}
        self._pid_seq = 100
        self.processes: list[MmStruct] = []
        self._allocations: dict[int, int] = {}
        #: Free chunks off the buddy lists but not allocated (compaction's cc->freepages).
        self.held_chunks: dict[int, int] = {}
        #: Owners' own consistency checks, run by check_state (each returns problems).
        self.state_checkers: list[Callable[[], list[str]]] = []
        self._token_seq = 0
        self._zonelists: dict[tuple[int, int], list[Zone]] = {}
        self.alloc_prep_cache: dict[tuple[int, int], tuple[AllocContext, int]] = {}
        self.nr_nodes = nr_nodes
        self._build_nodes(nr_nodes, movable)
        self._boot(kernel_reserved)
        compaction.compaction_init(self)

    # ------------------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        memory: str | int = "4G",
        *,
        profile: str | KernelProfile = "mainline",
        seed: int = 0,
        nodes: int = 1,
        cpus: int | None = None,
        movable: str | int = 0,
        kernel_reserved: str | int = "37M",
        page_owner: bool = False,
        thp: bool = True,
        ranges: list[mm_init.MemoryRange] | None = None,
        arch: str = "x86_64",
    ) -> Machine:
        """Build and boot a machine laid out like an x86-64 PC (or an arm64 phone).

        Args:
            memory: RAM size ("24G", "512M", or bytes); ignored when ``ranges`` is given.
            profile: a profile name ("mainline", "v4.8", "pre-4.8") or a KernelProfile.
            seed: root of every random choice made by workloads on this machine.
            nodes: NUMA nodes; RAM is split evenly between them.
            cpus: number of CPUs (default: the profile's).
            movable: RAM per node given to ZONE_MOVABLE (like ``movablecore=``).
            kernel_reserved: memory reserved at boot for the kernel image (at 16 MiB).
            page_owner: keep page_owner data (adds "Number of mixed blocks" to pagetypeinfo,
                as booting with ``page_owner=on`` does).
            thp: CONFIG_TRANSPARENT_HUGEPAGE with THP enabled (raises ``min_free_kbytes`` as
                khugepaged does); False for a machine without THP, like the phones of 2016.
            ranges: explicit RAM ranges (e820-like) instead of the architecture's layout.
            arch: "x86_64" (a PC: DMA below 16 MiB, DMA32 below 4 GiB, Normal above) or
                "arm64" (a phone: one DRAM bank from 2 GiB, DMA below 4 GiB, Normal above;
                see :mod:`pagelab.mm.mm_init`).
        """
        layout = mm_init.arch_layout(arch)
        prof = (resolve_profile(profile, nr_cpus=cpus) if cpus is not None
                else resolve_profile(profile))
        if ranges is None:
            ranges = layout(mm_init.parse_size(memory), nodes)
        movable_bytes = mm_init.parse_size(movable)
        nr_nodes = max((r.nid for r in ranges), default=0) + 1
        return cls(ranges, profile=prof, seed=seed,
                   movable=(movable_bytes >> PAGE_SHIFT) // max(nr_nodes, 1),
                   kernel_reserved=mm_init.parse_size(kernel_reserved), page_owner=page_owner,
                   thp=thp, arch=arch)

    def _build_nodes(self, nr_nodes: int, movable_pages_per_node: int) -> None:
        spans = mm_init.zone_spans(self.ranges, movable_pages_per_node, self.arch)
        self.nodes: list[PglistData] = []
        self.zones: list[Zone] = []
        mem = self.mem
        for nid in range(nr_nodes):
            node_ranges = [r for r in self.ranges if r.nid == nid]
            if not node_ranges:
                raise BadConfiguration(f"node {nid} has no memory; number nodes from 0 upwards")
            start = min(r.start_pfn for r in node_ranges)
            end = max(r.end_pfn for r in node_ranges)
            pgdat = PglistData(nid, start, end - start)
            pgdat.vm_stat = [0] * vs.NR_VM_NODE_STAT_ITEMS
            for zidx in range(MAX_NR_ZONES):
                span = next((s for s in spans if s.nid == nid and s.zone_idx == zidx), None)
                zstart, zend = (span.start_pfn, span.end_pfn) if span else (0, 0)
                base = (nid * MAX_NR_ZONES + zidx) * _LIST_HEADS_PER_ZONE
                zone = Zone(self, nid, zidx, zstart, zend - zstart, base, self.nr_cpus)
                zone.vm_stat = [0] * vs.NR_VM_ZONE_STAT_ITEMS
                zone.vm_numa_event = [0] * vs.NR_VM_NUMA_EVENT_ITEMS
                pgdat.node_zones.append(zone)
                self.zones.append(zone)
            self.nodes.append(pgdat)
        # zone ids in page->flags, and which pfns are present
        self._zone_table: dict[int, Zone] = {}
        flags = mem.flags
        for zone in self.zones:
            if not zone.spanned_pages:
                continue
            zone_bits = (zone.idx << pf.NODES_WIDTH) | zone.node
            self._zone_table[zone_bits] = zone
            flags[zone.zone_start_pfn: zone.zone_end_pfn] = np.uint64(
                zone_bits << pf.NODES_PGSHIFT)
        for r in self.ranges:
            self.present[r.start_pfn: r.end_pfn] = True
        sections = np.unique(np.nonzero(self.present)[0] >> PFN_SECTION_SHIFT)
        self.section_valid[sections] = True
        for zone in self.zones:
            if zone.spanned_pages:
                zone.present_pages = int(
                    self.present[zone.zone_start_pfn: zone.zone_end_pfn].sum())
                zone.contiguous = zone.present_pages == zone.spanned_pages
        for pgdat in self.nodes:
            pgdat.node_present_pages = sum(z.present_pages for z in pgdat.node_zones)
        # memmap_init: every pageblock starts MOVABLE; every page of a zone span is reserved
        # with one reference (holes stay so: init_unavailable_range) until memblock_free_all
        # hands the free ones over.
        self.pageblock_flags[:] = MIGRATE_MOVABLE
        reserved_bit = np.uint64(1 << pf.PG_reserved)
        for zone in self.zones:
            if zone.spanned_pages:
                mem.refcount[zone.zone_start_pfn: zone.zone_end_pfn] = 1
                mem.flags[zone.zone_start_pfn: zone.zone_end_pfn] |= reserved_bit
        self.page_group_by_mobility_disabled = False

    def _boot(self, kernel_reserved: int) -> None:
        reservations = mm_init.memblock_reservations(self.ranges, kernel_reserved, self.arch)
        self.reservations = reservations
        cuts = sorted({z.zone_start_pfn for z in self.zones if z.spanned_pages}
                      | {z.zone_end_pfn for z in self.zones if z.spanned_pages})
        for start, end in mm_init.free_ranges(self.ranges, reservations):
            for pfn, order in mm_init.free_chunks(start, end, cuts):
                pa.memblock_free_pages(self, pfn, order)
        total = sum(z.managed_pages for z in self.zones)
        if total == 0:
            raise BadConfiguration("no memory is left after boot reservations; give more memory")
        # build_all_zonelists: grouping by mobility needs enough pageblocks to be useful.
        self.page_group_by_mobility_disabled = total < pageblock_nr_pages * MIGRATE_TYPES
        # init_per_zone_wmark_min(), then khugepaged's set_recommended_min_free_kbytes().
        self.min_free_kbytes = pa.calculate_min_free_kbytes(self)
        pa.setup_per_zone_wmarks(self)
        pa.setup_per_zone_lowmem_reserve(self)
        if self.thp:
            self.min_free_kbytes = pa.set_recommended_min_free_kbytes(self, self.min_free_kbytes)
            pa.setup_per_zone_wmarks(self)

    # ------------------------------------------------------------------------------ lookups

    def populated_zones(self) -> list[Zone]:
        """Return the zones with present pages (``for_each_populated_zone``)."""
        return [z for z in self.zones if z.present_pages]

    def page_zone(self, pfn: int) -> Zone:
        """Return the zone of ``pfn`` from its page flags (``page_zone``)."""
        return self._zone_table[self.mem.flags_mv[pfn] >> pf.NODES_PGSHIFT]

    def pfn_valid(self, pfn: int) -> bool:
        """Return whether ``pfn`` has a struct page (its memory section exists)."""
        return 0 <= pfn < self.max_pfn and bool(self.section_valid[pfn >> PFN_SECTION_SHIFT])

    @property
    def cpu_node(self) -> int:
        """Return the node of the current CPU (``numa_node_id``)."""
        return self.cpu % len(self.nodes)

    def zonelist(self, nid: int, highest_zoneidx: int) -> list[Zone]:
        """Return the zones an allocation from node ``nid`` may use, in fallback order.

        Models ``build_zonelists`` (node order: the local node first, then the others by
        distance) filtered to populated zones at or below ``highest_zoneidx``.
        """
        key = (nid, highest_zoneidx)
        cached = self._zonelists.get(key)
        if cached is not None:
            return cached
        if not 0 <= nid < len(self.nodes):
            raise InvalidArgument(f"node {nid} does not exist; this machine has nodes "
                                  f"0..{len(self.nodes) - 1}")
        order = [nid] + [(nid + d) % len(self.nodes) for d in range(1, len(self.nodes))]
        zl = [z for n in order for z in reversed(self.nodes[n].node_zones)
              if z.idx <= highest_zoneidx and z.managed_pages]
        self._zonelists[key] = zl
        return zl

    # ------------------------------------------------------------------------------ hooks

    def wakeup_kswapd(self, zone: Zone, gfp: int, order: int, highest_zoneidx: int) -> None:
        """Wake kswapd (``wakeup_kswapd``, :mod:`pagelab.mm.vmscan`).

        kswapd then runs when :meth:`run_background` is called (the model has no threads).
        """
        vmscan.wakeup_kswapd(self, zone, gfp, order, highest_zoneidx)

    def run_background(self) -> None:
        """Run the kernel threads that were woken: kswapd, then kcompactd, on every node.

        Workloads call this between their events; the work is charged to the virtual clock
        like any other (the model has one timeline for all CPUs).
        """
        self.reap_killed()
        for pgdat in self.nodes:
            while pgdat.kswapd_woken:  # a hopeless node lets kswapd sleep (failures)
                vmscan.kswapd_run(self, pgdat.node_id)
            if pgdat.kcompactd_woken:
                compaction.kcompactd_run(self, pgdat.node_id)

    def reap_killed(self, current: MmStruct | None = None) -> int:
        """Let every task with a pending SIGKILL run and exit; return how many exited.

        A killer only signals its victim (the low-memory killer, :mod:`pagelab.drivers.
        lowmemorykiller`); the memory comes back when the victim runs ``do_exit``. Workloads
        call this between their events (:meth:`run_background` does first). ``current`` is
        the task the workload is running now: it acts on its signal only when it returns to
        user space, i.e. at the workload's next call without it.
        """
        victims = [mm for mm in self.processes
                   if mm.sigkill and not mm.dead and mm is not current]
        for mm in victims:
            mm.exit_task()
        if victims:
            self.processes = [mm for mm in self.processes if not mm.dead]
        return len(victims)

    def direct_compact(self, gfp: int, order: int, alloc_flags: int, ac: AllocContext,
                       prio: str) -> int:
        """Run direct compaction for the slow path; -1 until compaction exists."""
        if self.direct_compact_hook is None:
            return -1
        return self.direct_compact_hook(gfp, order, alloc_flags, ac, prio)

    def direct_reclaim(self, gfp: int, order: int, ac: AllocContext) -> int:
        """Run direct reclaim for the slow path; 0 pages until reclaim exists."""
        if self.direct_reclaim_hook is None:
            return 0
        return self.direct_reclaim_hook(gfp, order, ac)

    # ------------------------------------------------------------------------------ public API

    def alloc_pages(self, order: int = 0, gfp: str | int = "GFP_KERNEL",
                    nid: int | None = None) -> int | None:
        """Allocate ``2**order`` pages and return the first pfn, or None (the kernel's NULL).

        Each page gets a fresh content token. The caller owns the block until
        :meth:`free_pages`.
        """
        if not 0 <= order <= MAX_PAGE_ORDER:
            raise InvalidArgument(f"order {order} is outside 0..{MAX_PAGE_ORDER}; the buddy "
                                  f"allocator serves blocks of at most {1 << MAX_PAGE_ORDER} pages")
        mask = parse_gfp(gfp)
        pfn = pa.alloc_pages_node(self, self.cpu % self.nr_nodes if nid is None else nid, mask,
                                  order)
        if pfn < 0:
            return None
        self._allocations[pfn] = order
        token = self.new_token()
        if order == 0:
            self.mem.token_mv[pfn] = token
        else:
            self.mem.token[pfn: pfn + (1 << order)] = token
        return pfn

    def alloc_page_raw(self, gfp: int, order: int, nid: int) -> int:
        """Allocate for the model's own users (faults, drivers): -1 on failure, no bookkeeping."""
        return pa.alloc_pages_node(self, nid, gfp, order)

    def new_token(self) -> int:
        """Return a fresh content token (never 0, which means "no content")."""
        self._token_seq += 1
        return (self._token_seq & 0xFFFFFFFF) or 1

    def spawn(self, name: str = "task") -> MmStruct:
        """Start a process with an empty address space; fault pages in with ``touch``."""
        self._pid_seq += 1
        mm = MmStruct(self, name, self._pid_seq)
        self.processes.append(mm)
        return mm

    def enable_tracing(self, events: list[str] | None = None,
                       max_entries: int | None = None) -> TraceSink:
        """Start recording tracepoints (all, or those named as tracefs ``set_event`` takes)."""
        self.trace = TraceSink(self.clock, events=events, max_entries=max_entries)
        return self.trace

    def timer_tick(self) -> None:
        """Run the periodic kernel work whose time has come on the virtual clock.

        For now the vmstat worker (``vmstat_update``, every ``stat_interval``), which decays
        every CPU's pcp ``high``. Called by whatever advances the clock (faults, unmaps,
        compaction).
        """
        now = self.clock.now_ns
        while now >= self._next_vmstat_ns:
            for cpu in range(self.nr_cpus):
                pa.refresh_cpu_vm_stats(self, cpu)
            self._next_vmstat_ns += self.stat_interval_ns

    def charge(self, ns: float) -> None:
        """Advance the virtual clock by ``ns`` and run any periodic work that fell due."""
        self.clock.now_ns += int(ns)
        if self.clock.now_ns >= self._next_vmstat_ns:
            self.timer_tick()

    def warn_once(self, key: str, message: str) -> None:
        """Record a ``WARN_ON_ONCE`` that fired (the first message per site is kept)."""
        self.warnings.setdefault(key, message)

    def wait(self, what: str, pfn: int, ready: Callable[[], bool] | None = None) -> None:
        """Block the current CPU until ``what`` on ``pfn`` changes.

        In a sequential run nothing else can run, so waiting would never end: the kernel would
        hang here. The schedule explorer replaces this method to block the CPU instead, until
        ``ready()`` (when given) says the awaited change happened.
        """
        raise ModelBug(f"{what} wait on pfn {pfn:#x} would sleep forever: no other CPU can "
                       f"release it in a sequential run: {self.mem.dump_page(pfn)}")

    def free_pages(self, pfn: int, order: int = 0) -> None:
        """Free a block returned by :meth:`alloc_pages` (``__free_pages``)."""
        got = self._allocations.pop(pfn, None)
        if got is None:
            raise InvalidArgument(f"pfn {pfn:#x} is not the start of a block allocated through "
                                  "this machine; pass a pfn returned by alloc_pages")
        if got != order:
            self._allocations[pfn] = got
            raise InvalidArgument(f"pfn {pfn:#x} was allocated with order {got}, not {order}; "
                                  "free it with the order it was allocated with")
        pa.free_pages(self, pfn, order)

    def allocations(self) -> Mapping[int, int]:
        """Return the blocks allocated through :meth:`alloc_pages` (pfn → order)."""
        return dict(self._allocations)

    def compact_memory(self) -> None:
        """Compact all memory, as ``echo 1 > /proc/sys/vm/compact_memory`` does."""
        compaction.compact_memory(self)

    def drain_all_pages(self) -> None:
        """Empty every CPU's per-CPU lists into the buddy (``drain_all_pages(NULL)``)."""
        pa.drain_all_pages(self, None)

    def page(self, pfn: int) -> PageView:
        """Return a read-only view of ``struct page`` for ``pfn``, for display."""
        if not 0 <= pfn < self.max_pfn:
            raise InvalidArgument(f"pfn {pfn:#x} is outside this machine (max_pfn "
                                  f"{self.max_pfn:#x})")
        mem = self.mem
        flags = int(mem.flags[pfn])
        zone_bits = flags >> pf.NODES_PGSHIFT
        zone_idx = zone_bits >> pf.NODES_WIDTH
        ptype = pf.page_type(mem, pfn)
        return PageView(
            pfn=pfn, flags=flags & pf.PAGEFLAGS_MASK, zone=zone_names[zone_idx],
            node=zone_bits & pf.NODES_MASK, refcount=int(mem.refcount[pfn]),
            mapcount=int(mem.mapcount[pfn]), mapping=int(mem.mapping[pfn]),
            index=int(mem.index[pfn]), private=int(mem.private[pfn]),
            compound_head=pf.compound_head(mem, pfn), token=int(mem.token[pfn]),
            page_type=pf.PAGE_TYPE_NAMES.get(ptype, "") if ptype else "",
            decoded_flags=pf.decode_page_flags(mem, pfn),
        )

    @property
    def vmstat(self) -> dict[str, int]:
        """Return /proc/vmstat as a name → value dict (zone, NUMA, node items, events)."""
        return dict(vs.vmstat_show_items(
            [z.vm_stat for z in self.zones],
            [z.vm_numa_event for z in self.zones],
            [n.vm_stat for n in self.nodes],
            self.dirty_thresholds(),
            self.vm_events,
        ))

    def dirty_thresholds(self) -> tuple[int, int]:
        """Return (nr_dirty_threshold, nr_dirty_background_threshold) with default ratios."""
        from pagelab.mm.page_writeback import global_dirty_limits

        background, dirty = global_dirty_limits(self)
        return dirty, background

    def lru_list_head(self, nid: int, lru: int) -> int:
        """Return the list-head index of node ``nid``'s LRU list ``lru``."""
        return self.mem.nr_pfns + self.lru_head_base + nid * NR_LRU_LISTS + lru

    def alloc_list_head(self) -> int:
        """Return a fresh, empty list head (``LIST_HEAD(name)``) for a run-time list."""
        if not self._free_heads:
            raise BadConfiguration(f"all {DYNAMIC_LIST_HEADS} run-time list heads are in use; "
                                   "release list heads that are no longer needed")
        head = self.mem.nr_pfns + self._free_heads.pop()
        if not self.mem.list_empty(head):
            raise AssertionError(f"list head {head} handed out while not empty")
        return head

    def release_list_head(self, head: int) -> None:
        """Give back a list head from :meth:`alloc_list_head`; the list must be empty."""
        if not self.mem.list_empty(head):
            raise InvalidArgument("releasing a list head whose list is not empty; empty it first")
        self._free_heads.append(head - self.mem.nr_pfns)

    def register_mapping(self, owner: object) -> int:
        """Give ``owner`` (an anon_vma or address_space) an id for page->mapping words."""
        owner_id = self._next_mapping_id
        self._next_mapping_id += 1
        if owner_id >= 1 << 29:
            raise BadConfiguration("too many anon_vmas/address_spaces (2**29)")
        self.mappings[owner_id] = owner
        return owner_id

    def extra_owned_pages(self) -> NDArray[np.int32] | None:
        """Return, per pfn, pages held by owners other than alloc_pages callers (None: none).

        Later layers (processes, drivers) register what they hold here, so that
        ``check_state`` can prove every present page is held exactly once.
        """
        return None

    def check_state(self, owners: bool = True) -> None:
        """Check the model's invariants; raise StateCheckFailed listing every violation.

        ``owners=False`` skips the owners' own checks (processes, drivers), whose structures
        may be mid-update while a CPU holds their locks; the schedule explorer checks them only
        when every CPU is done.
        """
        from pagelab.mm.debug import check_state

        check_state(self, owners=owners)

    def procfs(self, name: str) -> str:
        """Render a /proc or debugfs file for this machine, byte for byte as the kernel does.

        ``name`` is one of buddyinfo, pagetypeinfo, zoneinfo, vmstat, extfrag_index,
        unusable_index.
        """
        from pagelab.io.model_procfs import render_machine_file

        return render_machine_file(self, name)

    def __repr__(self) -> str:
        mib = sum(z.present_pages for z in self.zones) >> (20 - PAGE_SHIFT)
        zones = ", ".join(f"{z.node}:{z.name}" for z in self.populated_zones())
        return (f"Machine({mib} MiB, nodes={len(self.nodes)}, cpus={self.nr_cpus}, "
                f"profile={self.profile.name!r}, zones=[{zones}])")

