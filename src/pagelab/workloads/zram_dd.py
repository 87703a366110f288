"""The test in the seed's zram patch: files on an ext4 file system on zram, half deleted.

Minchan Kim's "zram: use __GFP_MOVABLE for memory allocation" (v1, March 2016, to v5, May
2016; merged in v4.8) measured what the seed buys with this test, in a 1 GiB KVM guest with
an ext4 file system on a zram device::

    for i in `seq 1 8`; do dd if=/dev/vda1 of=mnt/test$i.txt bs=128M count=1 & done
    wait `pidof dd`
    for i in `seq 1 2 8`; do rm -rf mnt/test$i.txt; done
    fstrim -v mnt
    cat /proc/buddyinfo                          # "init"
    echo 1 > /proc/sys/vm/compact_memory
    cat /proc/buddyinfo                          # "compaction"

:func:`run_zram_dd` runs it on a model machine. What each step does to memory:

* ``dd`` reads ``/dev/vda1`` through the block device's page cache, whose mapping mask is
  ``GFP_USER`` (``bdget``, fs/block_dev.c, v4.8; still ``bdev_alloc`` in v6.x): unmovable
  pages. Readahead adds ``__GFP_NORETRY | __GFP_NOWARN`` (``readahead_gfp_mask``). The eight
  readers share the cached pages; each read marks the page accessed.
* ``dd`` writes the same bytes into the file's page cache: ``grab_cache_page_write_begin``
  allocates with the inode's ``GFP_HIGHUSER_MOVABLE`` less ``__GFP_FS`` (ext4 passes
  AOP_FLAG_NOFS), marks the page accessed (FGP_ACCESSED) and the write dirties it.
* ``balance_dirty_pages``: a writer runs free below the midpoint of the background and dirty
  thresholds (``dirty_freerun_ceiling``); above it the writer wakes the flusher for
  background writeback, which runs until the dirty pages are below the background threshold,
  and pauses, giving its CPU to the next task; a writer that reaches the dirty threshold
  sleeps until the flusher brings them under it.
* the flusher (a kworker running ``wb_writeback`` for background work) is a task of its own,
  sharing the CPUs with the writers: it takes the dirty inodes in the order they were dirtied
  and writes each a chunk of pages in index order before moving to the next; ext4's delayed
  allocation gives each file its own run of blocks, and each page is stored in zram
  (``zram_bvec_write``: the pool's pages are ``__GFP_MOVABLE`` only on the seed's kernel), so
  the pool's pages come from the per-CPU lists of whichever CPU the flusher runs on.
* ``rm`` truncates the page cache of the odd-numbered files (dirty pages are dropped
  unwritten); ``fstrim`` discards their blocks, which frees their zsmalloc objects
  (``zram_bio_discard``); zspages left with live objects of the other files stay.
* ``compact_memory`` compacts every zone (order -1, MIGRATE_SYNC).

Named simplifications (each with its reason):

* ``bs=128M`` is run as ``bs`` (default 1 MiB) chunks through a buffer of that size: eight
  128 MiB buffers cannot be resident together in a 1 GiB guest without swap, and the
  changelog does not say the guest had any.
* the guest's CPUs are the profile's (2; the changelog does not give them). Each runs one
  task (a ``dd`` or the flusher) for a time slice of ``bs`` pages (1 MiB, about what a CFS
  slice of a few ms copies), then the next from one round-robin queue, the CPUs stepping in
  lockstep page by page from their own per-CPU free lists. A woken flusher goes to the head
  of the queue (CFS's wakeup preemption, roughly); a throttled writer keeps its place but
  is passed over. CFS's per-CPU run queues and load balancing are not modelled.
* between the free-run ceiling and the dirty threshold the kernel pauses a writer for a
  time and a number of pages it derives from the measured write bandwidth (``pos_ratio``,
  ``wb_min_pause``); the model has no bandwidth and pauses the writer at each of its checks,
  every ``RATELIMIT_PAGES``: it gives up the rest of its time slice.
* the flusher writes ``MIN_WRITEBACK_PAGES`` (1024 pages) per inode per turn: the kernel's
  chunk also grows with the measured write bandwidth, which the model does not estimate.
* ext4's metadata (journal, bitmaps, extent blocks, buffer heads) and ``mkfs`` are not
  modelled: they are a few MiB of the guest's memory. The guest's own user space is not
  modelled either; the machine starts with only the kernel's reservation.
* the contents of ``/dev/vda1`` come from the zram content model with
  :attr:`ZramDdConfig` ``compressibility``/``spread``/``same_filled``: the changelog does
  not say what the partition held; the defaults stand for a root file system image (a
  sixth of its blocks zero, the rest compressing 2–10 to 1).
* writeback is synchronous and dirty pages reach the LRU dirty (reclaim leaves them to the
  flusher, :mod:`pagelab.mm.vmscan`).

The published ``/proc/buddyinfo`` tables are :data:`PUBLISHED`;
:mod:`pagelab.lab.zram_dd` runs both kernels and compares.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pagelab.drivers.zram import ContentModel, Zram
from pagelab.errors import BadConfiguration, InvalidArgument, StateCheckFailed
from pagelab.machine import Machine
from pagelab.mm import gfp as G  # noqa: N812 (the kernel's flag names)
from pagelab.mm import vmstat as vs
from pagelab.mm.compaction import sysctl_compaction_handler
from pagelab.mm.filemap import FGP_ACCESSED, FGP_CREAT, folio_end_writeback

# Imported under another name: class bodies would mangle the double underscore.
from pagelab.mm.filemap import __filemap_get_folio as filemap_get_folio
from pagelab.mm.mm_init import parse_size
from pagelab.mm.mmzone import NR_PAGE_ORDERS, PAGE_SHIFT
from pagelab.mm.page_writeback import (
    folio_clear_dirty_for_io,
    folio_mark_dirty,
    global_dirty_limits,
)
from pagelab.mm.rmap import AddressSpace
from pagelab.mm.truncate import truncate_inode_pages
from pagelab.workloads.phone import mixed_pageblocks

__all__ = ["PUBLISHED", "ZramDdConfig", "ZramDdResult", "run_zram_dd"]

#: The changelog's /proc/buddyinfo (orders 0..10), "old" = before the patch, "new" = with it.
PUBLISHED: dict[str, dict[str, dict[str, tuple[int, ...]]]] = {
    "old": {
        "init": {"DMA": (208, 120, 51, 41, 11, 0, 0, 0, 0, 0, 0),
                 "DMA32": (16380, 13777, 9184, 3805, 789, 54, 3, 0, 0, 0, 0)},
        "compaction": {"DMA": (132, 82, 40, 39, 16, 2, 1, 0, 0, 0, 0),
                       "DMA32": (5219, 5526, 4969, 3455, 1831, 677, 139, 15, 0, 0, 0)},
    },
    "new": {
        "init": {"DMA": (379, 115, 97, 19, 2, 0, 0, 0, 0, 0, 0),
                 "DMA32": (18891, 16774, 10862, 3947, 637, 21, 0, 0, 0, 0, 0)},
        "compaction": {"DMA": (214, 66, 87, 29, 10, 3, 0, 0, 0, 0, 0),
                       "DMA32": (1612, 3139, 3154, 2469, 1745, 990, 384, 94, 7, 0, 0)},
    },
}

#: ``balance_dirty_pages_ratelimited`` calls in after this many pages (its first pause).
RATELIMIT_PAGES = 32
#: ``MIN_WRITEBACK_PAGES`` (fs/fs-writeback.c): 4 MiB.
MIN_WRITEBACK_PAGES = 4096 >> (PAGE_SHIFT - 10)
#: ``readahead_gfp_mask`` of the block device's ``GFP_USER`` mapping.
GFP_BDEV_READ = G.GFP_USER | G.__GFP_NORETRY | G.__GFP_NOWARN
#: ext4's ``grab_cache_page_write_begin``: the inode's mask without __GFP_FS.
GFP_EXT4_WRITE = G.GFP_HIGHUSER_MOVABLE & ~G.__GFP_FS

_COUNTERS = ("pgmigrate_success", "pgmigrate_fail", "compact_migrate_scanned",
             "compact_free_scanned", "compact_isolated", "compact_stall", "pgsteal_kswapd",
             "pgsteal_direct", "pgscan_kswapd", "pgscan_direct", "nr_vmscan_immediate_reclaim",
             "nr_dirtied", "nr_written", "pgrotated")


def _size_pages(size: str) -> int:
    """``size`` in pages; InvalidArgument unless it is a positive multiple of the page size."""
    value = parse_size(size)
    if value <= 0 or value % (1 << PAGE_SHIFT):
        raise InvalidArgument(f"{size!r}: give a positive multiple of 4K such as '1M'")
    return value >> PAGE_SHIFT


@dataclass(frozen=True)
class ZramDdConfig:
    """The test's parameters; the defaults are the changelog's (see the module docstring)."""

    memory: str = "1G"
    files: int = 8
    file_size: str = "128M"
    bs: str = "1M"
    disksize: str = "2G"
    compressibility: float = 0.55
    spread: float = 0.4
    same_filled: float = 0.15
    seed: int = 1

    def validate(self) -> None:
        """Raise InvalidArgument for an impossible test."""
        if self.files < 2:
            raise InvalidArgument(f"files={self.files}: the test deletes every other file; "
                                  f"give at least 2")
        file_pages, bs_pages = _size_pages(self.file_size), _size_pages(self.bs)
        if file_pages % bs_pages:
            raise InvalidArgument(f"file_size {self.file_size} is not a multiple of bs "
                                  f"{self.bs}")
        if self.files * file_pages > _size_pages(self.disksize):
            raise InvalidArgument(f"{self.files} files of {self.file_size} do not fit a "
                                  f"{self.disksize} zram disk: give a larger disksize")


@dataclass
class ZramDdResult:
    """What the test printed, and what else the model saw."""

    profile: str
    buddyinfo_init: str
    buddyinfo_compaction: str
    #: zone name -> free blocks per order, at "init" and after compaction.
    free_init: dict[str, list[int]]
    free_compaction: dict[str, list[int]]
    counters: dict[str, int] = field(default_factory=dict)
    mm_stat: str = ""
    pool_pages: int = 0
    pool_pages_migrated: int = 0
    mixed_blocks: int = 0
    bdev_cache_pages: int = 0
    file_cache_pages: int = 0
    #: Seconds the run took on the host (set by the lab, which times it).
    wall_s: float = 0.0


class _Dd:
    """One ``dd if=/dev/vda1 of=mnt/test$i.txt``: a process with its buffer and its file."""

    def __init__(self, m: Machine, number: int, bs_pages: int) -> None:
        self.number = number
        self.task = m.spawn(f"dd{number}")
        self.task.touch(bs_pages)  # the read buffer
        self.file = AddressSpace(m, f"test{number}.txt")
        self.copied = 0
        self.dirtied: list[int] = []  # indices dirtied since the flusher last took them
        self.throttled = False  # asleep in balance_dirty_pages


class _Flusher:
    """The writeback kworker: asleep until a writer crosses the free-run ceiling."""

    def __init__(self) -> None:
        self.woken = False
        self.inode: _Dd | None = None  # the file whose chunk it is writing
        self.chunk: deque[int] = deque()  # that chunk's page indices still to write
        self.throttled: list[_Dd] = []  # writers asleep at the dirty threshold


class ZramDd:
    """The test on one machine: /dev/vda1, zram0 with its files, the flusher."""

    def __init__(self, m: Machine, config: ZramDdConfig) -> None:
        config.validate()
        self.m = m
        self.config = config
        self.file_pages = _size_pages(config.file_size)
        self.bs_pages = _size_pages(config.bs)
        content = ContentModel(config.compressibility, spread=config.spread,
                               same_filled=config.same_filled, seed=config.seed)
        self.zram = Zram(m, config.disksize, content=content, comp_algorithm="lz4")
        self.vda1 = AddressSpace(m, "vda1")
        self.vda1_tokens = np.zeros(self.file_pages, dtype=np.uint32)
        self.dds = [_Dd(m, i + 1, self.bs_pages) for i in range(config.files)]
        self.dirty_order: deque[_Dd] = deque()  # the flusher's b_dirty list, oldest first
        self.flusher = _Flusher()
        self.runqueue: deque[_Dd | _Flusher] = deque(self.dds)  # tasks waiting for a CPU
        # After the copies, whatever compaction moves must still hold the partition's bytes.
        m.state_checkers.append(self.verify)

    # --- the steps ---------------------------------------------------------------------------

    def copy_files(self, progress: Callable[[float], None] | None = None) -> None:
        """The eight ``dd`` at once on the machine's CPUs, with the flusher, then their exits.

        Each CPU runs one task for a time slice of ``bs`` pages, then the next runnable one
        from a shared queue; the CPUs step in lockstep, one page each in turn, so each
        allocates from its own per-CPU lists as the kernel's would. A ``dd`` copies a page
        per step and, every ``RATELIMIT_PAGES`` of its own, calls
        :meth:`balance_dirty_pages`; the flusher, once woken, writes a page per step. Every
        ``RATELIMIT_PAGES`` steps the woken kernel threads (kswapd, kcompactd) run.
        """
        m = self.m
        total = self.config.files * self.file_pages
        waiting = self.runqueue
        running: list[_Dd | _Flusher | None] = [None] * m.profile.nr_cpus
        slice_left = [0] * len(running)
        done = steps = 0
        while done < total:
            for cpu in range(len(running)):
                task = running[cpu]
                if task is None or not slice_left[cpu] or not self._runnable(task):
                    if task is not None and self._alive(task):
                        waiting.append(task)  # its slice is over, or it sleeps: to the back
                    task = running[cpu] = self._pick_next(waiting)
                    slice_left[cpu] = self.bs_pages
                    if task is None:
                        continue  # idle this step
                m.cpu = cpu
                slice_left[cpu] -= 1
                steps += 1
                if isinstance(task, _Flusher):
                    self.flusher_step()
                    if not task.woken:
                        running[cpu] = None  # asleep: off the CPU until a writer wakes it
                else:
                    self._copy_page(task)
                    done += 1
                    if not task.copied % RATELIMIT_PAGES and self.balance_dirty_pages(task):
                        slice_left[cpu] = 0  # paused: the next task takes the CPU
                    if task.copied == self.file_pages:
                        running[cpu] = None  # dd exits
                if not steps % RATELIMIT_PAGES:
                    m.run_background()
            if progress is not None and not done % (64 * RATELIMIT_PAGES):
                progress(done / total)
        m.cpu = 0
        for dd in self.dds:
            dd.task.exit()
            m.processes.remove(dd.task)

    def _alive(self, task: _Dd | _Flusher) -> bool:
        """A dd that has not exited; the flusher while it has work (asleep, it leaves the
        queue until a writer wakes it)."""
        if isinstance(task, _Flusher):
            return task.woken
        return task.copied < self.file_pages

    def _runnable(self, task: _Dd | _Flusher) -> bool:
        return self._alive(task) and not (isinstance(task, _Dd) and task.throttled)

    def _pick_next(self, waiting: deque[_Dd | _Flusher]) -> _Dd | _Flusher | None:
        """The first runnable task in the queue; sleeping ones keep their place."""
        for _ in range(len(waiting)):
            task = waiting.popleft()
            if self._runnable(task):
                return task
            if self._alive(task):
                waiting.append(task)
        return None

    def _read_vda1(self, index: int) -> int:
        token = int(self.vda1_tokens[index])
        if not token:
            token = self.vda1_tokens[index] = self.m.new_token()
        pfn = filemap_get_folio(self.m, self.vda1, index, FGP_CREAT | FGP_ACCESSED,
                                GFP_BDEV_READ, token)
        if pfn < 0:
            self._out_of_memory("reading /dev/vda1")
        return token

    def _copy_page(self, dd: _Dd) -> None:
        """Read one page of vda1 into the buffer, write it to the file's page cache."""
        m = self.m
        index = dd.copied
        token = self._read_vda1(index)
        pfn = filemap_get_folio(m, dd.file, index, FGP_CREAT | FGP_ACCESSED, GFP_EXT4_WRITE,
                                token)
        if pfn < 0:
            self._out_of_memory(f"writing test{dd.number}.txt")
        m.mem.token_mv[pfn] = token  # overwritten by the copy
        if folio_mark_dirty(m, pfn):
            if not dd.dirtied and dd not in self.dirty_order:
                self.dirty_order.append(dd)
            dd.dirtied.append(index)
        dd.copied += 1

    def _out_of_memory(self, what: str) -> None:
        raise BadConfiguration(f"the machine ran out of memory {what}: {self.config.memory} is "
                               f"too small for {self.config.files} files of "
                               f"{self.config.file_size}; give more memory")

    def nr_dirty(self) -> int:
        return sum(int(p.vm_stat[vs.NR_FILE_DIRTY]) for p in self.m.nodes)

    def balance_dirty_pages(self, dd: _Dd) -> bool:
        """A writer's dirty check (``balance_dirty_pages``); True if the writer pauses.

        Below the free-run ceiling (the midpoint of the background and dirty thresholds) the
        writer runs on. Above it, it wakes the flusher for background writeback
        (``wb_start_background_writeback``) and pauses (``io_schedule_timeout``), giving
        its CPU to the next task; at the dirty threshold itself it sleeps until the flusher
        has brought the dirty pages back under it. Simplified: the kernel sizes each pause,
        and the pages between pauses, from the measured write bandwidth (``pos_ratio``,
        ``wb_min_pause``); the model pauses at every check, every ``RATELIMIT_PAGES``.
        """
        bg_thresh, thresh = global_dirty_limits(self.m)
        nr_dirty = self.nr_dirty()
        if nr_dirty <= (bg_thresh + thresh) // 2:  # dirty_freerun_ceiling
            return False
        if not self.flusher.woken:
            self.flusher.woken = True
            self.runqueue.appendleft(self.flusher)  # woken: runs next (wakeup preemption)
        if nr_dirty > thresh:
            dd.throttled = True
            self.flusher.throttled.append(dd)
        return True

    def flusher_step(self) -> None:
        """One page of background writeback (``wb_writeback``): whole chunks of the dirty
        inodes in turn, oldest dirtied first, while the dirty pages are above the background
        threshold; then the flusher sleeps and wakes the writers it throttled."""
        flusher = self.flusher
        bg_thresh, thresh = global_dirty_limits(self.m)
        dd = flusher.inode
        if dd is None or not flusher.chunk:
            if not self.dirty_order or self.nr_dirty() <= bg_thresh:
                flusher.woken = False
                self._release_writers(thresh)
                return
            dd = flusher.inode = self.dirty_order.popleft()
            flusher.chunk = deque(dd.dirtied[:MIN_WRITEBACK_PAGES])
            dd.dirtied = dd.dirtied[MIN_WRITEBACK_PAGES:]
            if not flusher.chunk:
                return
        self.writepage(dd, flusher.chunk.popleft())
        if not flusher.chunk and dd.dirtied and dd not in self.dirty_order:
            self.dirty_order.append(dd)  # requeue_io: to the back of the queue
        self._release_writers(thresh)

    def _release_writers(self, thresh: int) -> None:
        if self.flusher.throttled and self.nr_dirty() <= thresh:
            for dd in self.flusher.throttled:
                dd.throttled = False
            self.flusher.throttled.clear()

    def writepage(self, dd: _Dd, index: int) -> None:
        """Clean one page and store it in zram0 (the file's ``writepages`` for one page, then
        ``zram_bvec_write`` and ``folio_end_writeback``)."""
        m = self.m
        pfn = dd.file.pages.get(index, -1)
        if pfn < 0 or not folio_clear_dirty_for_io(m, pfn):
            return
        rc = self.zram.write_token(self.block(dd, index), int(m.mem.token_mv[pfn]))
        if rc:
            raise BadConfiguration(f"zram refused a write ({rc}): the pool could not grow; "
                                   f"give more memory")
        folio_end_writeback(m, pfn)

    def block(self, dd: _Dd, index: int) -> int:
        """The file's block on zram0 (delayed allocation: one run of blocks per file)."""
        return (dd.number - 1) * self.file_pages + index

    def remove_odd_files(self) -> None:
        """``rm -rf mnt/test{1,3,5,7}.txt`` then ``fstrim``: drop their cache, discard blocks."""
        for dd in self.dds[::2]:
            truncate_inode_pages(self.m, dd.file)
            if dd in self.dirty_order:
                self.dirty_order.remove(dd)
            dd.dirtied = []
        for dd in self.dds[::2]:
            self.zram.discard(self.block(dd, 0), self.file_pages)

    # --- checks ------------------------------------------------------------------------------

    def verify(self) -> list[str]:
        """Every kept file's cached page holds vda1's bytes, and so does every block zram has."""
        problems: list[str] = []
        mem = self.m.mem
        for dd in self.dds[1::2]:
            for index, pfn in dd.file.pages.items():
                if mem.token_mv[pfn] != self.vda1_tokens[index]:
                    problems.append(f"test{dd.number}.txt page {index}: wrong token")
            for index in range(self.file_pages):
                block = self.block(dd, index)
                if self.zram.flags[block] or self.zram.handle[block]:
                    expected = self.zram.expected_page(int(self.vda1_tokens[index]))
                    if self.zram.read_page(block) != expected:
                        problems.append(f"zram0 block {block}: wrong bytes")
        return problems


def _free_blocks(m: Machine) -> dict[str, list[int]]:
    return {z.name: [int(z.nr_free[o]) for o in range(NR_PAGE_ORDERS)]
            for z in m.populated_zones()}


def run_zram_dd(m: Machine, config: ZramDdConfig | None = None,
                progress: Callable[[str, float], None] | None = None) -> ZramDdResult:
    """Run the seed's zram test on ``m``; return the two buddyinfo tables and the counters."""
    config = config or ZramDdConfig()
    say = progress or (lambda _step, _fraction: None)
    test = ZramDd(m, config)
    before = {name: m.vmstat[name] for name in _COUNTERS}
    migrated_before = test.zram.pool.pages_migrated
    test.copy_files(lambda f: say("dd", f))
    say("rm and fstrim", 1.0)
    test.remove_odd_files()
    problems = test.verify()
    if problems:
        raise StateCheckFailed("; ".join(problems[:5]))
    init_text, free_init = m.procfs("buddyinfo"), _free_blocks(m)
    say("compact_memory", 1.0)
    sysctl_compaction_handler(m, 1)
    return ZramDdResult(
        profile=m.profile.name, buddyinfo_init=init_text,
        buddyinfo_compaction=m.procfs("buddyinfo"), free_init=free_init,
        free_compaction=_free_blocks(m),
        counters={name: m.vmstat[name] - before[name] for name in _COUNTERS},
        mm_stat=test.zram.mm_stat(), pool_pages=test.zram.pool.zs_get_total_pages(),
        pool_pages_migrated=test.zram.pool.pages_migrated - migrated_before,
        mixed_blocks=mixed_pageblocks(m),
        bdev_cache_pages=len(test.vda1.pages),
        file_cache_pages=sum(len(dd.file.pages) for dd in test.dds),
    )
