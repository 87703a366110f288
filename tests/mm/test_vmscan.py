"""Reclaim: kswapd to the high watermark, direct reclaim, LRU aging, swap to zram and back,
file pages dropped and re-read, the counters and tracepoints (mm/vmscan.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pagelab import Machine
from pagelab.drivers.zram import ContentModel, Zram
from pagelab.io.ftrace import format_event, parse_trace, render_trace
from pagelab.mm import gfp as G
from pagelab.mm import page_flags as pf
from pagelab.mm import vmscan
from pagelab.mm import vmstat as vs
from pagelab.mm.memory import File
from pagelab.mm.swap import LRU_INACTIVE_ANON
from pagelab.mm.swapfile import swapon


def phone(memory: str = "128M", *, zram: str = "128M", mem_limit: str | int = 0,
          seed: int = 1) -> tuple[Machine, Zram]:
    m = Machine.build(memory=memory, seed=seed, thp=False)
    z = Zram(m, disksize=zram, mem_limit=mem_limit, content=ContentModel(0.6, seed=seed))
    swapon(m, z)
    m.swappiness = 100
    return m, z


def free_pages(m: Machine) -> int:
    return sum(z.vm_stat[vs.NR_FREE_PAGES] for z in m.zones)


def fill_below_low(m: Machine, task: object, step: int = 256) -> None:
    """Fault pages in until the allocator has woken kswapd (a zone below its low mark)."""
    while not m.nodes[0].kswapd_woken:
        got = task.touch(step)  # type: ignore[attr-defined]
        assert len(got) == step


def test_kswapd_wakes_at_low_and_reclaims_to_high() -> None:
    m, _ = phone()
    task = m.spawn("app")
    fill_below_low(m, task)
    pgdat = m.nodes[0]
    assert not vmscan.pgdat_balanced(m, pgdat, 0, pgdat.nr_zones - 1) or pgdat.kswapd_woken
    m.run_background()
    assert not pgdat.kswapd_woken
    assert vmscan.pgdat_balanced(m, pgdat, 0, pgdat.nr_zones - 1)
    ev = m.vmstat
    assert ev["pageoutrun"] >= 1
    assert ev["pgsteal_kswapd"] > 0 and ev["pgscan_kswapd"] >= ev["pgsteal_kswapd"]
    assert ev["pswpout"] == ev["pgsteal_anon"] > 0  # only anon: no files here
    assert ev["pgsteal_direct"] == 0 and ev["allocstall_movable"] == 0
    assert task.verify() == []  # type: ignore[attr-defined]
    m.check_state()


def test_direct_reclaim_keeps_allocations_going_and_counts_stalls() -> None:
    m, z = phone(zram="512M")
    task = m.spawn("app")
    want = free_pages(m) * 3 // 2
    # More than the free memory, never letting kswapd run: only direct reclaim makes room.
    got = task.touch(want)
    assert len(got) == want
    ev = m.vmstat
    assert ev["allocstall_movable"] > 0  # GFP_HIGHUSER_MOVABLE: reclaim_idx ZONE_MOVABLE
    assert ev["pgsteal_direct"] > 0 and ev["pgscan_direct"] >= ev["pgsteal_direct"]
    assert ev["pgscan_kswapd"] == 0
    assert task.nr_swapped() == ev["pswpout"] - ev["pswpin"]
    assert z.stats.pages_stored == task.nr_swapped()
    assert task.verify() == []
    m.check_state()


def test_swapped_pages_come_back_with_their_contents() -> None:
    m, z = phone()
    task = m.spawn("app")
    n = free_pages(m) + 4000
    task.touch(n)
    swapped = task.nr_swapped()
    assert swapped > 4000
    tokens = task.tokens[:n].copy()
    # Migrate zram's pool pages (the seed's point) before reading everything back.
    m.compact_memory()
    major = task.access(np.arange(n))
    assert major >= swapped - 1  # each swapped page faulted back (reads may swap others out)
    assert m.vmstat["pswpin"] == m.vmstat["pgmajfault"] == major
    assert m.vmstat["workingset_refault_anon"] == major
    assert np.array_equal(task.tokens[:n], tokens)
    assert task.verify() == []
    m.check_state()
    task.exit()
    assert m.swap is not None and m.swap.inuse_pages == 0
    assert z.stats.pages_stored == 0
    m.check_state()


def test_file_pages_are_dropped_and_read_back() -> None:
    m, _ = phone()
    lib = File(m, "libfoo.so")
    reader = m.spawn("reader")
    reader.map_file(lib, 2000)
    tokens = reader.tokens[:2000].copy()
    hog = m.spawn("hog")
    hog.touch(free_pages(m) + 3000)
    m.run_background()
    dropped = 2000 - reader.nr_resident()
    assert dropped > 0 and m.vmstat["pgsteal_file"] >= dropped
    assert len(lib.pages) == 2000 - dropped
    major = reader.access(np.arange(2000))
    assert major >= dropped
    assert np.array_equal(reader.tokens[:2000], tokens)
    assert reader.verify() == []
    m.check_state()
    reader.munmap(0, 2000)
    hog.exit()
    m.check_state()


def test_folio_check_references_follows_the_kernel_rules() -> None:
    m, _ = phone("64M", zram="16M")
    task = m.spawn("app")
    pfns = [int(p) for p in task.touch(4)]
    exe = File(m, "app", exec=True)
    data = File(m, "data")
    epfn = int(task.map_file(exe, 1)[0])
    dpfn = int(task.map_file(data, 1)[0])
    mem = m.mem
    # A fresh anon page is young once: keep it, remembering the reference.
    assert vmscan.folio_check_references(m, pfns[0], False) == vmscan.FOLIOREF_KEEP
    assert mem.flags_mv[pfns[0]] >> pf.PG_referenced & 1
    # Not touched since: reclaim (anon ignores PG_referenced).
    assert vmscan.folio_check_references(m, pfns[0], False) == vmscan.FOLIOREF_RECLAIM
    # Touched again after the first look: activate.
    vmscan.folio_check_references(m, pfns[1], False)
    task.access([1])
    assert vmscan.folio_check_references(m, pfns[1], False) == vmscan.FOLIOREF_ACTIVATE
    # Executable file pages activate on their first reference.
    assert vmscan.folio_check_references(m, epfn, True) == vmscan.FOLIOREF_ACTIVATE
    # A referenced file page with no young PTE is reclaimed if clean.
    vmscan.folio_check_references(m, dpfn, False)
    assert vmscan.folio_check_references(m, dpfn, False) == vmscan.FOLIOREF_RECLAIM_CLEAN


@pytest.mark.parametrize(("inactive", "active", "low"), [
    (100, 100, False), (100, 101, True), (0, 1, True),
    # 2 GiB pair: ratio int_sqrt(20) = 4.
    (131072, 393216, False), (100000, 424288, True),
])
def test_inactive_is_low_uses_the_sqrt_ratio(inactive: int, active: int, low: bool) -> None:
    m, _ = phone("64M", zram="16M")
    vm = m.nodes[0].vm_stat
    vm[vs.NR_INACTIVE_ANON], vm[vs.NR_ACTIVE_ANON] = inactive, active
    assert vmscan.inactive_is_low(m, 0, LRU_INACTIVE_ANON) is low
    vm[vs.NR_INACTIVE_ANON] = vm[vs.NR_ACTIVE_ANON] = 0


def test_hot_pages_survive_and_cold_ones_go() -> None:
    m, _ = phone()
    hot = m.spawn("hot")
    cold = m.spawn("cold")
    hot.touch(3000)
    cold.touch(3000)
    hog = m.spawn("hog")
    for _ in range(60):
        hot.access(np.arange(3000))
        hog.touch(1000)
        m.run_background()
    assert cold.nr_swapped() > hot.nr_swapped()
    assert m.nodes[0].vm_stat[vs.NR_ACTIVE_ANON] > 0
    assert m.vmstat["pgactivate"] > 0 and m.vmstat["pgdeactivate"] > 0
    for task in (hot, cold, hog):
        assert task.verify() == []
    m.check_state()


def test_pinned_pages_are_not_swapped_out() -> None:
    m, _ = phone()
    task = m.spawn("dma")
    pfns = task.touch(500)
    task.pin(pfns)
    m.spawn("hog").touch(free_pages(m) + 5000)
    assert task.nr_resident() == 500
    assert np.array_equal(task.mapped_pfns(), pfns)
    task.unpin(pfns)
    m.check_state()


def test_zram_mem_limit_keeps_pages_in_memory() -> None:
    m, z = phone("32M", zram="32M", mem_limit="128K")
    task = m.spawn("app")
    task.touch(free_pages(m) - 100)
    zonelist = m.zonelist(0, 3)
    for _ in range(20):  # direct reclaim passes until zram says -ENOMEM
        vmscan.try_to_free_pages(m, zonelist, 0, G.GFP_KERNEL)
        if z.stats.failed_writes:
            break
    assert z.stats.failed_writes > 0
    assert z.pool.zs_get_total_pages() * 4096 <= (128 << 10) + 4 * 4096
    assert task.nr_swapped() == z.stats.pages_stored  # refused pages stayed mapped
    assert task.verify() == []
    m.check_state()


def test_no_swap_means_file_only_and_anon_stays() -> None:
    m = Machine.build(memory="128M", seed=1, thp=False)
    lib = File(m, "lib")
    task = m.spawn("app")
    task.map_file(lib, 3000)
    anon = task.touch(free_pages(m) - 500)
    m.run_background()
    assert m.vmstat["pgscan_anon"] == 0 and m.vmstat["pswpout"] == 0
    assert task.nr_resident() >= len(anon)
    m.check_state()


def test_counters_add_up_and_trace_reparses() -> None:
    m, _ = phone()
    sink = m.enable_tracing([
        "mm_vmscan_kswapd_wake", "mm_vmscan_kswapd_sleep", "mm_vmscan_wakeup_kswapd",
        "mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end",
        "mm_vmscan_lru_shrink_inactive", "mm_vmscan_lru_shrink_active"])
    task = m.spawn("app")
    lib = File(m, "lib")
    task.map_file(lib, 1000)
    for _ in range(8):
        task.touch(6000)
        m.run_background()
    ev = m.vmstat
    assert ev["pgscan_kswapd"] + ev["pgscan_direct"] == ev["pgscan_anon"] + ev["pgscan_file"]
    assert ev["pgsteal_kswapd"] + ev["pgsteal_direct"] == ev["pgsteal_anon"] + ev["pgsteal_file"]
    text = render_trace(sink)
    records = parse_trace(text)
    assert records
    for r in records:  # every line decodes into its fields, which format back into the line
        assert r.payload is None and f"{r.event}: {format_event(r.event, r.fields)}" in text
    shrunk = [r for r in records if r.event == "mm_vmscan_lru_shrink_inactive"]
    assert sum(r.fields["nr_reclaimed"] for r in shrunk) == ev["pgsteal_anon"] + ev["pgsteal_file"]
    begins = sum(r.event == "mm_vmscan_direct_reclaim_begin" for r in records)
    ends = sum(r.event == "mm_vmscan_direct_reclaim_end" for r in records)
    assert begins == ends
    wakes = sum(r.event == "mm_vmscan_kswapd_wake" for r in records)
    assert wakes == ev["pageoutrun"]
    assert m.nodes[0].vm_stat[vs.NR_ISOLATED_ANON] == m.nodes[0].vm_stat[vs.NR_ISOLATED_FILE] == 0


class ReclaimMachine(RuleBasedStateMachine):
    """Faults, accesses, unmaps, reclaim and compaction in any order: nothing is lost."""

    def __init__(self) -> None:
        super().__init__()
        self.m, self.z = phone("96M", zram="96M", seed=7)
        self.tasks = [self.m.spawn(f"t{i}") for i in range(3)]
        self.lib = File(self.m, "lib", exec=True)
        self.tasks[0].map_file(self.lib, 500)

    @rule(i=st.integers(0, 2), n=st.integers(1, 6000))
    def touch(self, i: int, n: int) -> None:
        self.tasks[i].touch(n)

    @precondition(lambda self: any(t.next_vpn for t in self.tasks))
    @rule(i=st.integers(0, 2), frac=st.floats(0.0, 1.0), data=st.data())
    def access(self, i: int, frac: float, data: st.DataObject) -> None:
        t = self.tasks[i]
        if not t.next_vpn:
            return
        seed = data.draw(st.integers(0, 2**16))
        vpns = np.nonzero(np.random.default_rng(seed).random(t.next_vpn) < frac)[0]
        t.access(vpns)

    @rule(i=st.integers(0, 2), start=st.integers(0, 20000), n=st.integers(1, 4000))
    def munmap(self, i: int, start: int, n: int) -> None:
        t = self.tasks[i]
        if start < t.next_vpn:
            t.munmap(start, min(n, t.next_vpn - start))

    @rule()
    def background(self) -> None:
        self.m.run_background()

    @rule()
    def compact(self) -> None:
        self.m.compact_memory()

    @invariant()
    def nothing_lost(self) -> None:
        self.m.check_state()
        swapped = sum(t.nr_swapped() for t in self.tasks)
        assert self.m.swap is not None and self.m.swap.inuse_pages == swapped
        assert self.z.stats.pages_stored == swapped


TestReclaimMachine = ReclaimMachine.TestCase
TestReclaimMachine.settings = settings(max_examples=12, stateful_step_count=20, deadline=None)


@pytest.mark.parametrize(("profile", "dirty_lru"), [("v4.8", "inactive_file"),
                                                    ("mainline", "active_file")])
def test_dirty_file_pages_wait_for_the_flusher(profile: str, dirty_lru: str) -> None:
    """Reclaim frees clean page cache but leaves dirty pages to the flusher: PG_reclaim set,
    nr_vmscan_immediate_reclaim counted, kept inactive (v4.8) or activated (v4.12+); the end
    of their writeback rotates an inactive one to the tail, where reclaim frees it."""
    from pagelab.mm.filemap import FGP_CREAT, folio_end_writeback
    from pagelab.mm.filemap import __filemap_get_folio as get_folio
    from pagelab.mm.page_writeback import folio_clear_dirty_for_io, folio_mark_dirty
    from pagelab.mm.swap import LRU_INACTIVE_FILE, lru_names

    m = Machine.build(memory="64M", profile=profile, seed=1)
    f = File(m, "f")
    pfns = [get_folio(m, f, i, FGP_CREAT, G.GFP_HIGHUSER_MOVABLE, token=i + 1) for i in range(8)]
    for pfn in pfns[::2]:
        folio_mark_dirty(m, pfn)
    sc = vmscan.ScanControl(nr_to_reclaim=32, gfp_mask=G.GFP_KERNEL, order=0, reclaim_idx=3)
    folios, _ = vmscan.isolate_lru_folios(m, 0, LRU_INACTIVE_FILE, 8, sc)
    kept, freed = vmscan.shrink_folio_list(m, folios, sc, vmscan._ReclaimStat())
    vmscan.move_folios_to_lru(m, kept)
    assert freed == 4 and sorted(kept) == sorted(pfns[::2])
    assert sorted(f.pages.values()) == sorted(pfns[::2])
    assert m.vmstat["nr_vmscan_immediate_reclaim"] == 4
    for pfn in kept:
        assert m.mem.flags_mv[pfn] >> pf.PG_reclaim & 1
        assert lru_names[vmscan.swap.folio_lru_list(m, pfn)] == dirty_lru
    for pfn in kept:
        folio_clear_dirty_for_io(m, pfn)
        folio_end_writeback(m, pfn)
        assert not m.mem.flags_mv[pfn] >> pf.PG_reclaim & 1
    assert m.vmstat["pgrotated"] == (4 if dirty_lru == "inactive_file" else 0)
    if dirty_lru == "inactive_file":
        folios, _ = vmscan.isolate_lru_folios(m, 0, LRU_INACTIVE_FILE, 4, sc)
        kept, freed = vmscan.shrink_folio_list(m, folios, sc, vmscan._ReclaimStat())
        assert freed == 4 and not f.pages
    m.check_state()


@pytest.mark.parametrize(("profile", "wakes"), [("v4.8", False), ("mainline", True),
                                                ("v4.8+kswapd_wakes_kcompactd", True)])
def test_hopeless_node_wakes_kcompactd_from_v4_17(profile: str, wakes: bool) -> None:
    """A request that may not compact, on a node kswapd has given up on but whose free
    memory is all order-0: v4.17's ``wakeup_kswapd`` wakes kcompactd in kswapd's stead;
    v4.8's wakes nobody. A request that may compact for itself wakes nobody on either."""
    m = Machine.build(memory="64M", profile=profile, seed=1)
    task = m.spawn("fragmenter")
    pfns = task.touch(free_pages(m) - 300)
    zone = max(m.populated_zones(), key=lambda z: z.managed_pages)
    task.unmap(pfns[pfns % 2 == 0])
    while any(zone.nr_free[3:]):  # what was left below the watermarks
        assert m.alloc_pages(3, "GFP_KERNEL") is not None
    assert not any(zone.nr_free[3:])
    pgdat = m.nodes[0]
    pgdat.kswapd_failures = vmscan.MAX_RECLAIM_RETRIES  # kswapd gave up and sleeps
    pgdat.kswapd_woken = pgdat.kcompactd_woken = False
    vmscan.wakeup_kswapd(m, zone, G.GFP_KERNEL, 3, zone.idx)
    assert not pgdat.kswapd_woken and not pgdat.kcompactd_woken
    vmscan.wakeup_kswapd(m, zone, G.GFP_ATOMIC, 3, zone.idx)
    assert not pgdat.kswapd_woken
    assert pgdat.kcompactd_woken == wakes
    assert pgdat.kcompactd_max_order == (3 if wakes else 0)
