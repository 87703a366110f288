"""The seed's phone: apps, zram swap and GPU buffers filling memory, and the kernel asking for
order-2, 3 and 4 blocks it cannot always find.

The seed's motivation (Minchan Kim, 2016): "embedded systems use lots of non-movable pages,
e.g. zram, GPU memory"; phones then run short of small high-order blocks. This workload is a
phone's day in fast-forward on a 2 GiB machine:

* **apps** are launched, used in the foreground and sent to the background: each has a
  program text (an executable file), resources (files), a heap (anonymous pages allocated and
  freed in chunks) and GPU buffers. Launching forks the app's threads, each with an order-2
  kernel stack (``THREAD_SIZE`` 16 KiB, as before ``CONFIG_VMAP_STACK``). ActivityManager
  ranks the apps by ``oom_score_adj`` (foreground 0, previous 700, cached 900..904) and ends
  the least recently used beyond ``cached_apps``; Android's in-kernel low-memory killer
  (:mod:`pagelab.drivers.lowmemorykiller`, with ActivityManager's levels) ends apps when free
  memory and the page cache run low. system_server and the launcher are persistent. Returning
  to a cached app touches its working set again, faulting it back from zram; an app killed
  while in use is reopened.
* **the kernel** asks for order-3 blocks (SLUB's first try for an 8 KiB-object slab and socket
  page frags: neither reclaims nor compacts, both wake kswapd and fall back, with reclaim, to
  order 1 and order 0), and the camera's buffers come from ION's system heap
  (:mod:`pagelab.drivers.ion_system_heap`), whose order-4 pool asks the page allocator (with
  reclaim and compaction, once) only when it has no block left; the order-4 requests
  measured are those.
* **memory pressure** brings kswapd and direct reclaim, which swap anonymous pages to zram.
  zram's pool pages and GPU pages are movable with the seed's framework and unmovable before
  it; that is the whole difference between the two kernels this workload is run on.

Every random choice comes from ``numpy.random.SeedSequence(seed)``, one stream per actor, and
is drawn whether or not the model's allocations succeed, so two kernels see the same
sequence of requests, except for what the low-memory killer changes: an app it kills on one
kernel and not on the other is launched again (with its fork stacks) only there. Time is
virtual: the workload advances the clock by ``tick_ms`` per tick on top of what the model
charges, and runs kswapd and kcompactd between ticks.

Named simplifications: one CPU does everything (kernel threads run between ticks, and a
killed app exits at the next point the workload lets other tasks run); a slab or frag that
fell back to a smaller block lives as long as the larger one would have; THP is off, as on
the phones of the seed's time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pagelab.drivers.ion_system_heap import IonBuffer, IonSystemHeap
from pagelab.errors import BadConfiguration, InvalidArgument
from pagelab.mm import gfp as G  # noqa: N812 (the kernel's GFP names read best)
from pagelab.mm import vmstat as vs
from pagelab.mm.memory import File, MmStruct
from pagelab.mm.mm_init import arch_layout, parse_size
from pagelab.mm.mmzone import PAGE_SHIFT, pageblock_order
from pagelab.mm.page_alloc import setup_per_zone_wmarks

if TYPE_CHECKING:
    from pagelab.drivers.gpu import Gpu
    from pagelab.drivers.lowmemorykiller import LowMemoryKiller
    from pagelab.drivers.zram import Zram
    from pagelab.machine import Machine

__all__ = ["GFP_FORK", "GFP_SKB_FRAG", "GFP_SLAB_HIGH", "Phone",
           "PhoneConfig", "RequestLog", "run_phone"]

#: THREADINFO_GFP (kernel/fork.c, v4.8): ``GFP_KERNEL_ACCOUNT | __GFP_NOTRACK`` (zeroed).
GFP_FORK = G.GFP_KERNEL_ACCOUNT | G.__GFP_ZERO
#: SLUB's first try at a slab's preferred order (``allocate_slab``): no reclaim at all, not
#: even kswapd's, and so no compaction (Joonsoo Kim, "mm/slub: don't wait for high-order
#: page allocation", v4.1, cleared ``__GFP_WAIT``; Mel Gorman's 444eb2a449ef, "mm: thp: set
#: THP defrag by default to madvise and add a stall-free defrag option", v4.6, made it
#: ``~(__GFP_RECLAIM|__GFP_NOFAIL)``, as Joonsoo Kim's unmerged 2017 fix "mm/slub: wake up
#: kswapd for initial high order allocation" describes; mainline still clears
#: ``__GFP_RECLAIM``). Every modelled kernel (v4.7, v4.8, mainline) has it.
GFP_SLAB_HIGH = ((G.GFP_KERNEL | G.__GFP_COMP | G.__GFP_NOWARN | G.__GFP_NORETRY
                  | G.__GFP_NOMEMALLOC) & ~G.__GFP_RECLAIM)
#: A socket's page frag at order 3 (``skb_page_frag_refill``): "avoid direct reclaim but
#: allow kswapd to wake" (Shaohua Li, "net: don't wait for order-3 page allocation", v4.1).
GFP_SKB_FRAG = ((G.GFP_KERNEL & ~G.__GFP_DIRECT_RECLAIM) | G.__GFP_COMP | G.__GFP_NOWARN
                | G.__GFP_NORETRY)
#: What a failed order-3 try falls back to, with the caller's own gfp (reclaim allowed):
#: SLUB's minimum order for 8 KiB objects (``s->min``, order 1) and a single page for the
#: socket's frag (``alloc_page(gfp)``). These are not measured.
FALLBACKS = {"slab": (1, G.GFP_KERNEL | G.__GFP_COMP), "skb": (0, G.GFP_KERNEL)}
#: The request kinds measured, by order.
KINDS = {"fork": 2, "slab": 3, "skb": 3, "dmabuf": 4}
_KIND_IDS = {name: i for i, name in enumerate(KINDS)}

#: ActivityManager's oom_score_adj classes (ProcessList.java, Android 7).
SYSTEM_ADJ = -900
FOREGROUND_APP_ADJ = 0
PREVIOUS_APP_ADJ = 700
CACHED_APP_MIN_ADJ = 900
CACHED_APP_MAX_ADJ = 906
#: The adj levels ActivityManager hands the low-memory killer, and their minfree in KiB for
#: small (< 512 MiB) and large (>= 1 GiB, 1280x800+) devices (``mOomMinFreeLow/High``).
OOM_ADJ_LEVELS = (0, 100, 200, 300, CACHED_APP_MIN_ADJ, CACHED_APP_MAX_ADJ)
OOM_MINFREE_LOW_KB = (12288, 18432, 24576, 36864, 43008, 49152)
OOM_MINFREE_HIGH_KB = (73728, 92160, 110592, 129024, 147456, 184320)
#: The phone's display, which scales the levels as memory does (a 2016 1080p phone).
DISPLAY = (1080, 1920)


@dataclass(frozen=True)
class PhoneConfig:
    """What phone to simulate, for how long, with which drivers.

    Sizes are in bytes or with a suffix ("2G"); ``duration`` in virtual seconds.
    """

    memory: str = "2G"
    duration: float = 50.0
    seed: int = 1
    #: The machine's layout: "x86_64" (DMA, DMA32 and Normal zones) or "arm64" (a phone's:
    #: one DRAM bank from 2 GiB, all of 2 GiB in ZONE_DMA; see pagelab.mm.mm_init).
    arch: str = "x86_64"
    #: Android's vm.extra_free_kbytes, which ActivityManager sets from the screen (width x
    #: height x 4 bytes x 3 / 1024: 24,300 for 1080x1920); 0 leaves the kernel's watermarks.
    extra_free_kbytes: int = 0
    tick_ms: int = 100
    cached_apps: int = 10
    zram: bool = True
    #: zram's pool pages are movable where the kernel has the framework; False keeps them
    #: unmovable on every kernel (an ablation: v4.8 without the seed's zram patch).
    zram_movable: bool = True
    zram_fraction: float = 0.5
    compressibility: float = 0.65
    swappiness: int = 100
    gpu: bool = True
    #: The GPU driver uses the framework where the kernel has it; False keeps its pages
    #: unmovable on every kernel, as the vendor drivers of the time mostly did.
    gpu_movable: bool = True
    driver: str | None = None
    sample_every_s: float = 2.0
    #: Order-3 slab and socket-buffer requests per tick (Poisson means).
    slab_rate: float = 8.0
    skb_rate: float = 4.0
    #: Order-4 chunks of each camera/video buffer (64 KiB each).
    camera_chunks: int = 8
    #: Load Android's in-kernel low-memory killer with ActivityManager's levels (both of the
    #: seed's kernels had it); without it only the cached-app limit ends apps.
    lmk: bool = True

    def validate(self) -> None:
        """Raise InvalidArgument/BadConfiguration for values no phone can have."""
        memory = parse_size(self.memory)
        if memory < 512 << 20:
            raise BadConfiguration(f"memory {self.memory}: the phone workload needs at least "
                                   "512M (its system services alone take ~200 MiB)")
        if memory > 16 << 30:
            raise BadConfiguration(f"memory {self.memory}: give at most 16G for a phone")
        if not 0 <= self.extra_free_kbytes <= memory >> 12:
            raise InvalidArgument(f"extra_free_kbytes {self.extra_free_kbytes}: give 0 up to "
                                  f"a quarter of the memory in KiB")
        arch_layout(self.arch)  # BadConfiguration for an unknown architecture
        if not self.duration > 0:
            raise InvalidArgument(f"duration {self.duration}: give a positive number of seconds")
        if not 10 <= self.tick_ms <= 1000:
            raise InvalidArgument(f"tick_ms {self.tick_ms}: give 10..1000 ms")
        if not 1 <= self.cached_apps <= 64:
            raise InvalidArgument(f"cached_apps {self.cached_apps}: give 1..64")
        if not 0.05 <= self.zram_fraction <= 2.0:
            raise InvalidArgument(f"zram_fraction {self.zram_fraction}: give 0.05..2 of RAM")
        if not 0.0 <= self.compressibility <= 1.0:
            raise InvalidArgument(f"compressibility {self.compressibility}: give 0..1")
        if not 0 <= self.swappiness <= 200:
            raise InvalidArgument(f"swappiness {self.swappiness}: give 0..200")
        if min(self.slab_rate, self.skb_rate) < 0 or not 0 <= self.camera_chunks <= 4096:
            raise InvalidArgument("slab_rate and skb_rate must be >= 0, camera_chunks 0..4096")
        if not self.sample_every_s > 0:
            raise InvalidArgument(f"sample_every_s {self.sample_every_s}: give seconds > 0")


@dataclass
class AppSpec:
    """An app's footprint in pages: heap, program text, resources, GPU, threads."""

    name: str
    heap: int
    text: int
    resources: int
    gpu: int
    threads: int
    camera: bool = False


@dataclass
class App:
    """A running app: its process, files, heap chunks, GPU buffers and thread stacks."""

    spec: AppSpec
    mm: MmStruct
    text: File
    resources: File
    heap_chunks: list[tuple[int, int]] = field(default_factory=list)
    bos: list[Any] = field(default_factory=list)
    stacks: list[int] = field(default_factory=list)
    file_range: tuple[int, int] = (0, 0)


class RequestLog:
    """Requests in numpy columns (time, kind id, ok, latency), grown by doubling."""

    def __init__(self) -> None:
        self._n = 0
        self.time_ns = np.zeros(1024, dtype=np.int64)
        self.kind = np.zeros(1024, dtype=np.int8)
        self.ok = np.zeros(1024, dtype=np.bool_)
        self.latency_ns = np.zeros(1024, dtype=np.int64)

    def add(self, time_ns: int, kind: str, ok: bool, latency_ns: int) -> None:
        """Record one request."""
        if self._n == len(self.time_ns):
            for name in ("time_ns", "kind", "ok", "latency_ns"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.zeros_like(old)]))
        i = self._n
        self.time_ns[i] = time_ns
        self.kind[i] = _KIND_IDS[kind]
        self.ok[i] = ok
        self.latency_ns[i] = latency_ns
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def columns(self) -> dict[str, NDArray[Any]]:
        """Return the recorded columns (kind as names, order from the kind)."""
        n = self._n
        names = np.array(list(KINDS), dtype=object)
        orders = np.array(list(KINDS.values()), dtype=np.int8)
        return {"time_s": self.time_ns[:n] / 1e9, "kind": names[self.kind[:n]],
                "order": orders[self.kind[:n]], "ok": self.ok[:n].copy(),
                "latency_us": self.latency_ns[:n] / 1e3}


def _pages(size: str | int) -> int:
    return parse_size(size) >> PAGE_SHIFT


def oom_levels(total_ram: int, display: tuple[int, int] = DISPLAY) -> tuple[tuple[int, ...],
                                                                            tuple[int, ...]]:
    """Return the low-memory killer's (adj, minfree pages), as ActivityManager sets them.

    ``ProcessList.updateOomLevels`` (Android 6-7): interpolate between the low and high
    tables by the larger of a memory scale (300..700 MiB) and a display scale (480x800..
    1280x800), clamped to 0..1. No vendor overlay (``config_lowMemoryKillerMinFreeKbytes*``).
    """
    scale_mem = ((total_ram >> 20) - 300) / (700 - 300)
    scale_disp = (display[0] * display[1] - 480 * 800) / (1280 * 800 - 480 * 800)
    scale = min(max(scale_mem, scale_disp, 0.0), 1.0)
    minfree_kb = [int(low + (high - low) * scale)
                  for low, high in zip(OOM_MINFREE_LOW_KB, OOM_MINFREE_HIGH_KB, strict=True)]
    return OOM_ADJ_LEVELS, tuple(kb * 1024 >> PAGE_SHIFT for kb in minfree_kb)


def app_catalogue(rng: np.random.Generator, nr_apps: int) -> list[AppSpec]:
    """Draw the phone's apps: sizes like a 2016 phone's, one of them a camera."""
    names = ["messenger", "camera", "browser", "maps", "game", "video", "mail", "social",
             "music", "news", "shop", "photos", "bank", "notes", "weather", "calendar"]
    specs = []
    for i in range(nr_apps):
        name = names[i % len(names)] + ("" if i < len(names) else str(i // len(names)))
        heavy = name in ("game", "maps", "browser", "video")
        specs.append(AppSpec(
            name=name,
            heap=int(rng.uniform(60, 220 if heavy else 140) * 256),
            text=int(rng.uniform(8, 30) * 256),
            resources=int(rng.uniform(10, 50) * 256),
            gpu=int(rng.uniform(16, 96 if heavy else 40) * 256),
            threads=int(rng.integers(12, 40)),
            camera=name in ("camera", "video"),
        ))
    return specs


class Phone:
    """The running phone: builds its drivers on a machine and steps the workload tick by tick.

    ``machine`` must be freshly built; :meth:`run` (or :func:`run_phone`) drives it for the
    configured duration, recording every high-order request and a time series.
    """

    def __init__(self, m: Machine, config: PhoneConfig,
                 driver_factory: Callable[[Machine], Any] | None = None) -> None:
        config.validate()
        self.m = m
        self.config = config
        seeds = np.random.SeedSequence(config.seed).spawn(6)
        self.rng_apps, self.rng_use, self.rng_kernel, self.rng_gpu, self.rng_life, \
            self.rng_cat = (np.random.default_rng(s) for s in seeds)
        self.catalogue = app_catalogue(self.rng_cat, 16)
        self.apps: OrderedDict[str, App] = OrderedDict()
        self.requests = RequestLog()
        self.held: list[tuple[int, int, int]] = []  # (expiry ns, pfn, order) kernel blocks
        self.camera_bufs: list[tuple[int, IonBuffer]] = []
        self.samples: list[dict[str, float]] = []
        self.launches = 0
        self.kills = 0
        m.swappiness = config.swappiness
        m.compaction_proactiveness = 0  # the seed's kernels had no proactive compaction
        if config.extra_free_kbytes:  # init.rc writes ActivityManager's value after boot
            m.extra_free_kbytes = config.extra_free_kbytes
            setup_per_zone_wmarks(m)
        self.zram: Zram | None = None
        self.gpu: Gpu | Any | None = None
        self.lmk: LowMemoryKiller | None = None
        self.ion = IonSystemHeap(m, page_alloc=self._ion_page_alloc)
        self._setup_drivers(driver_factory)
        self.system = self._start_system()

    # --- set-up ---------------------------------------------------------------------------------

    def _setup_drivers(self, driver_factory: Callable[[Machine], Any] | None) -> None:
        from pagelab.drivers.gpu import Gpu
        from pagelab.drivers.lowmemorykiller import LowMemoryKiller
        from pagelab.drivers.zram import ContentModel, Zram
        from pagelab.mm.swapfile import swapon

        m, config = self.m, self.config
        ram = sum(z.present_pages for z in m.zones) << PAGE_SHIFT
        if config.lmk:
            self.lmk = LowMemoryKiller(m, *oom_levels(ram))
        if config.zram:
            self.zram = Zram(m, disksize=int(ram * config.zram_fraction),
                             content=ContentModel(config.compressibility, spread=0.3,
                                                  same_filled=0.05, seed=config.seed),
                             movable=config.zram_movable)
            swapon(m, self.zram)
        if driver_factory is not None:
            self.gpu = driver_factory(m)
        elif config.gpu:
            self.gpu = Gpu(m, movable=config.gpu_movable)

    def _start_system(self) -> App:
        """system_server, the launcher and services: ~200 MiB that stays."""
        spec = AppSpec("system", heap=_pages("120M"), text=_pages("30M"),
                       resources=_pages("50M"), gpu=_pages("12M"), threads=60)
        system = self._launch(spec)
        system.mm.oom_score_adj = SYSTEM_ADJ
        del self.apps[spec.name]  # persistent: not one of the apps ActivityManager caches
        return system

    # --- apps ---------------------------------------------------------------------------------

    def _launch(self, spec: AppSpec) -> App:
        m = self.m
        mm = m.spawn(spec.name)
        text = File(m, f"{spec.name}.so", exec=True)
        resources = File(m, f"{spec.name}.apk")
        app = App(spec, mm, text, resources)
        mm.at_exit.append(lambda: self._exit(app))
        self.apps[spec.name] = app
        self._update_oom_adj()
        self.launches += 1
        base = mm.next_vpn
        mm.map_file(text, spec.text)
        mm.map_file(resources, spec.resources)
        app.file_range = (base, spec.text + spec.resources)
        for _ in range(spec.threads):
            self._kernel_alloc("fork", GFP_FORK, app.stacks)
        self._grow_heap(app, spec.heap)
        self._gpu_alloc(app, spec.gpu)
        return app

    def _grow_heap(self, app: App, nr_pages: int) -> None:
        while nr_pages > 0 and not app.mm.sigkill:
            self.m.reap_killed(current=app.mm)  # victims exit while this app runs
            chunk = min(nr_pages, int(self.rng_use.integers(16, 512)))
            start = app.mm.next_vpn
            got = len(app.mm.touch(chunk))
            app.heap_chunks.append((start, got))
            nr_pages -= chunk
            if got < chunk:
                break

    def _gpu_alloc(self, app: App, nr_pages: int) -> None:
        gpu = self.gpu
        if gpu is None:
            return
        while nr_pages > 0:
            size = min(nr_pages, int(self.rng_gpu.integers(16, 256)))
            bo = gpu.allocate(size)
            if bo is None:
                break
            app.bos.append(bo)
            nr_pages -= size

    def _kill(self, app: App) -> None:
        """ActivityManager ends a cached app beyond its limit: SIGKILL, and the app exits."""
        app.mm.send_sigkill()
        self.m.reap_killed()

    def _exit(self, app: App) -> None:
        """An app's process exits: its thread stacks and GPU buffers go with it."""
        for pfn in app.stacks:
            self.m.free_pages(pfn, KINDS["fork"])
        app.stacks = []
        if self.gpu is not None:
            for bo in app.bos:
                self.gpu.release(bo)
        app.bos = []
        self.apps.pop(app.spec.name, None)
        self.kills += 1

    def switch_to(self, spec: AppSpec) -> App:
        """Bring an app to the foreground: launch it, or touch its working set again."""
        app = self.apps.get(spec.name)
        if app is None:
            while len(self.apps) > self.config.cached_apps:
                oldest = next(iter(self.apps.values()))
                self._kill(oldest)
            app = self._launch(spec)
        else:
            self.apps.move_to_end(spec.name)
            self._update_oom_adj()
            self._touch_working_set(app, 0.5)
        return app

    def _update_oom_adj(self) -> None:
        """Rank the apps for the killers, as ActivityManager's ``updateOomAdjLocked`` does.

        The foreground app gets FOREGROUND_APP_ADJ, the one before it PREVIOUS_APP_ADJ, and
        the other cached apps, most recent first, three slots between CACHED_APP_MIN_ADJ and
        CACHED_APP_MAX_ADJ (900, 902, 904) in equal shares. (Android also gives empty
        processes the odd slots; the phone has none.)
        """
        ranked = list(reversed(self.apps.values()))
        cached = ranked[2:]
        for rank, app in enumerate(ranked):
            if rank == 0:
                adj = FOREGROUND_APP_ADJ
            elif rank == 1:
                adj = PREVIOUS_APP_ADJ
            else:
                slot = (rank - 2) * 3 // len(cached)
                adj = min(CACHED_APP_MIN_ADJ + 2 * slot, CACHED_APP_MAX_ADJ)
            app.mm.oom_score_adj = adj

    def _touch_working_set(self, app: App, fraction: float) -> None:
        mm = app.mm
        vpns: list[NDArray[np.int64]] = []
        for start, n in app.heap_chunks:
            if n:
                vpns.append(np.arange(start, start + n, dtype=np.int64))
        base, n = app.file_range
        vpns.append(np.arange(base, base + n, dtype=np.int64))
        every = np.concatenate(vpns)
        pick = self.rng_use.random(len(every)) < fraction
        mm.access(every[pick])

    # --- one tick of the foreground app -------------------------------------------------------

    def _use(self, app: App) -> None:
        rng = self.rng_use
        self._touch_working_set(app, 0.04)
        # Heap churn: free a few chunks, allocate about as much again.
        for _ in range(int(rng.integers(0, 3))):
            if len(app.heap_chunks) > 4:
                start, n = app.heap_chunks.pop(int(rng.integers(0, len(app.heap_chunks))))
                if n:
                    app.mm.munmap(start, n)
        self._grow_heap(app, int(rng.integers(32, 320)))
        # Textures come and go; DMA pins buffers for a moment.
        gpu = self.gpu
        if gpu is not None and app.bos and self.rng_gpu.random() < 0.3:
            bo = app.bos.pop(int(self.rng_gpu.integers(0, len(app.bos))))
            gpu.release(bo)
            self._gpu_alloc(app, int(self.rng_gpu.integers(16, 256)))
        if gpu is not None and app.bos and hasattr(gpu, "pin"):
            bo = app.bos[int(self.rng_gpu.integers(0, len(app.bos)))]
            gpu.pin(bo)
            gpu.render(bo)
            gpu.unpin(bo)
        if app.spec.camera:
            self._camera_frame()

    def _camera_frame(self) -> None:
        """A camera buffer of ``camera_chunks`` x 64 KiB from ION's system heap."""
        now = self.m.clock.now_ns
        size = self.config.camera_chunks << (PAGE_SHIFT + 4)
        buffer = self.ion.allocate(size) if size else None
        life = int(self.rng_life.exponential(3e9))
        if buffer is not None:
            self.camera_bufs.append((now + life, buffer))

    def _ion_page_alloc(self, order: int, gfp: int) -> int | None:
        """ION's pools reach the page allocator here: order-4 requests are timed and logged."""
        if order == KINDS["dmabuf"]:
            return self._timed_alloc("dmabuf", gfp)
        return self.m.alloc_pages(order, gfp)

    # --- kernel allocations -------------------------------------------------------------------

    def _timed_alloc(self, kind: str, gfp: int) -> int | None:
        m = self.m
        start = m.clock.now_ns
        pfn = m.alloc_pages(KINDS[kind], gfp)
        m.charge(m.cost.alloc_page)
        self.requests.add(start, kind, pfn is not None, m.clock.now_ns - start)
        return pfn

    def _kernel_alloc(self, kind: str, gfp: int, into: list[int] | None = None,
                      lifetime_s: float = 0.0) -> None:
        life = self.rng_life.exponential(lifetime_s) if lifetime_s else 0.0
        pfn = self._timed_alloc(kind, gfp)
        order = KINDS[kind]
        if pfn is None and kind in FALLBACKS:
            order, fallback_gfp = FALLBACKS[kind]
            pfn = self.m.alloc_pages(order, fallback_gfp)
        if pfn is None:
            return
        if into is not None:
            into.append(pfn)
        else:
            self.held.append((self.m.clock.now_ns + int(life * 1e9), pfn, order))

    def _kernel_tick(self) -> None:
        rng = self.rng_kernel
        for _ in range(int(rng.poisson(self.config.slab_rate))):
            self._kernel_alloc("slab", GFP_SLAB_HIGH, lifetime_s=60.0)
        for _ in range(int(rng.poisson(self.config.skb_rate))):
            self._kernel_alloc("skb", GFP_SKB_FRAG, lifetime_s=0.5)
        for _ in range(int(rng.poisson(0.3))):
            self._kernel_alloc("fork", GFP_FORK, lifetime_s=8.0)

    def _expire(self) -> None:
        m = self.m
        now = m.clock.now_ns
        if self.held:
            keep = []
            for item in self.held:
                if item[0] <= now:
                    m.free_pages(item[1], item[2])
                else:
                    keep.append(item)
            self.held = keep
        if self.camera_bufs:
            keep_bufs = []
            for expiry, buffer in self.camera_bufs:
                if expiry <= now:
                    self.ion.free(buffer)
                else:
                    keep_bufs.append((expiry, buffer))
            self.camera_bufs = keep_bufs

    # --- the loop -----------------------------------------------------------------------------

    def run(self, progress: Callable[[float, float], None] | None = None) -> None:
        """Run the configured duration of virtual time, sampling as configured."""
        m, config = self.m, self.config
        tick_ns = config.tick_ms * 1_000_000
        end = m.clock.now_ns + int(config.duration * 1e9)
        start = m.clock.now_ns
        next_sample = start
        sample_ns = int(config.sample_every_s * 1e9)
        # The user opens their usual apps after boot.
        for spec in self.catalogue[1: config.cached_apps]:
            self.switch_to(spec)
        foreground = self.switch_to(self.catalogue[0])
        while m.clock.now_ns < end:
            if self.rng_apps.random() < config.tick_ms / 2500:  # a switch every ~2.5 s
                spec = self.catalogue[int(self.rng_apps.zipf(1.6) - 1) % len(self.catalogue)]
                foreground = self.switch_to(spec)
            elif foreground.mm.dead:  # the killer took the app in use: the user reopens it
                foreground = self.switch_to(foreground.spec)
            self._use(foreground)
            self._kernel_tick()
            self._expire()
            m.charge(tick_ns)
            m.run_background()
            if m.clock.now_ns >= next_sample:
                self.samples.append(self.sample((m.clock.now_ns - start) / 1e9))
                next_sample += sample_ns
                if progress is not None:
                    progress(min(m.clock.now_ns - start, end - start) / 1e9, config.duration)

    def sample(self, t: float) -> dict[str, float]:
        """One row of the time series: free memory, free blocks per order, swap, counters."""
        m = self.m
        ev = m.vm_events
        row: dict[str, float] = {"time_s": t}
        nr_free = [sum(z.nr_free[o] for z in m.populated_zones()) for o in range(11)]
        row["free_pages"] = sum(z.vm_stat[vs.NR_FREE_PAGES] for z in m.zones)
        for order in range(11):
            row[f"free_blocks_order{order}"] = nr_free[order]
        row["swap_used_pages"] = m.swap.inuse_pages if m.swap is not None else 0
        row["zram_pool_pages"] = self.zram.pool.zs_get_total_pages() if self.zram else 0
        row["ion_pool_pages"] = self.ion.pooled_pages()
        for name in ("compact_stall", "compact_success", "compact_fail", "pgmigrate_success",
                     "pswpout", "pswpin", "allocstall_normal", "allocstall_dma32",
                     "allocstall_movable", "pgsteal_kswapd", "pgsteal_direct"):
            row[name] = ev[vs.VM_EVENT_ITEMS.index(name)]
        cols = self.requests.columns()
        for kind in KINDS:
            mask = cols["kind"] == kind
            row[f"{kind}_ok"] = float(cols["ok"][mask].sum())
            row[f"{kind}_total"] = float(mask.sum())
        row["apps_cached"] = len(self.apps)
        return row

    def release_all(self) -> None:
        """Free everything the workload holds (to prove nothing was lost or leaked)."""
        for app in [*self.apps.values(), self.system]:
            self._kill(app)
        for _, pfn, order in self.held:
            self.m.free_pages(pfn, order)
        self.held = []
        for _, buffer in self.camera_bufs:
            self.ion.free(buffer)
        self.camera_bufs = []
        self.ion.destroy()


def pageblock_map(m: Machine) -> tuple[NDArray[np.int8], NDArray[np.float32]]:
    """Return, per pageblock from the first with RAM, its migratetype (-1 for a hole) and the
    fraction of its pages in use. (An arm64 phone's RAM starts at 2 GiB.)"""
    from pagelab.mm.mmzone import MIGRATETYPE_MASK

    first = m.ranges[0].start_pfn >> pageblock_order
    nr_blocks = (m.max_pfn >> pageblock_order) - first
    span = slice(first << pageblock_order, (first + nr_blocks) << pageblock_order)
    mt = (m.pageblock_flags[first: first + nr_blocks] & MIGRATETYPE_MASK).astype(np.int8)
    present = m.present[span].reshape(nr_blocks, -1)
    used = (m.mem.refcount[span] > 0).reshape(nr_blocks, -1) & present
    occupancy = used.sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    mt[present.sum(axis=1) == 0] = -1
    return mt, occupancy.astype(np.float32)


def mixed_pageblocks(m: Machine) -> int:
    """Count pageblocks holding pages allocated for another migratetype than the block's.

    The sum of pagetypeinfo's "Number of mixed blocks" rows (``page_owner``'s count).
    """
    from pagelab.io.model_procfs import pagetypeinfo_showmixedcount

    return sum(sum(pagetypeinfo_showmixedcount(m, z)) for z in m.populated_zones())


def run_phone(m: Machine, config: PhoneConfig | None = None,
              driver_factory: Callable[[Machine], Any] | None = None,
              progress: Callable[[float, float], None] | None = None) -> Phone:
    """Build the phone's drivers on ``m``, run the workload, check the state; return it."""
    phone = Phone(m, config or PhoneConfig(), driver_factory)
    phone.run(progress)
    return phone

