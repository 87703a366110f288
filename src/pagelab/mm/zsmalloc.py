"""zsmalloc: the allocator of compressed objects behind zram, with non-LRU page migration.

Models ``mm/zsmalloc.c``. Two eras are modelled, chosen by the machine's profile
(:meth:`ZsConfig.for_profile`):

* **v4.8** (the seed's kernel; also v4.7 with ``non_lru_movable=False``): zspages of up to
  ``ZS_MAX_ZSPAGE_ORDER`` = 2, i.e. 4 pages (``get_pages_per_zspage``), four fullness groups
  (ZS_EMPTY, ZS_ALMOST_EMPTY, ZS_ALMOST_FULL, ZS_FULL) with the "higher inuse first" insert,
  a spinlock per size class, a per-zspage migrate rwlock and a pin bit in every handle
  (HANDLE_PIN_BIT), objects encoded ``((pfn << OBJ_INDEX_BITS) | obj_idx) << OBJ_TAG_BITS``,
  PG_private on the first page and PG_private_2 on the last, huge pages marked
  PG_owner_priv_1, the first-object offset in ``page->units`` (over ``_mapcount``).
  ``zs_page_isolate`` takes the zspage off its fullness list and refuses empty zspages;
  ``zs_page_migrate`` returns -EBUSY for them (48b4800a1c6a, "zsmalloc: page migration
  support"). v4.14 (77ff465799c6) migrates empty zspages.
* **mainline** (v6.16, the project's reference kernel): chains of up to
  CONFIG_ZSMALLOC_CHAIN_SIZE = 8 pages picked by least waste (``calculate_zspage_chain_size``,
  v6.3), twelve ZS_INUSE_RATIO_* fullness groups (v6.3), a pool rwlock plus class locks and a
  zspage lock instead of handle pins (v5.17, "zsmalloc: replace per zpage lock with
  pool->migrate_lock"; the pool lock is called ``lock`` and the zspage lock became
  preemptible in v6.15; v6.2 to about v6.8 used one pool spinlock instead [U]),
  no zspage isolation (v5.17, c4549b871102), ``obj = (pfn << OBJ_INDEX_BITS) | obj_idx``, the
  PGTY_zsmalloc page type with the first-object offset in its low 24 bits (v6.11 [U]), and
  ``zs_page_migrate`` that gives up with -EINVAL when a reader holds the zspage lock
  (v6.15, "zsmalloc: make zspage lock preemptible").

Version thresholds between those two points are in :class:`ZsConfig`, each naming its commit
(marked [U] where the release was not verified); a profile with another ``kernel_version``
gets the nearest combination, which is only as good as those thresholds.

**Object bytes are real.** Every zspage page has a ``bytearray`` of PAGE_SIZE, keyed by pfn,
holding exactly what the kernel's page holds: allocated objects start with their handle
header (``handle | OBJ_ALLOCATED_TAG``), free objects with their free-list link
(``next << OBJ_TAG_BITS``), and payloads straddle page boundaries. Migration copies the whole
4 KiB (``copy_page``) to the new pfn, so it moves exactly the bytes that live in the page,
and the kernel's walks (``obj_allocated``, ``find_alloced_obj``) read the headers from the
bytes. Keeping per-object bytes instead would make migration a relabelling and hide a wrong
offset or a missed straddling object; a page-sized buffer per page is what makes those bugs
visible. The page's content token is copied with it.

Named simplifications: handles and ``struct zspage`` come from Python objects, not from the
``zs_handle``/``zspage`` kmem caches (no slab in the model, so their allocation never fails);
the deferred-free work runs at the next entry into the pool (or :meth:`ZsPool.flush_work`),
as a workqueue would soon after; one ``AddressSpace`` per pool stands for v4.8's
``pool->inode->i_mapping`` (mainline's ``zsmalloc_mops`` is global and finds the pool
through the zspage; the observable difference is only the mapping word); versions between
v5.17 and v6.14 use the v6.15 lock structure (the v6.2.. single pool spinlock is not
modelled; a sequential run gives the same results);
``zs_map_object`` is kept on mainline pools although v6.16 replaced it by
``zs_obj_read_begin``/``zs_obj_write`` (both APIs exist on every pool). The pre-4.8 profile
(v4.7) uses v4.8's structures without movability (v4.7 had no ``struct zspage`` and freed
zspages without page locks; the model's trylock of unmovable pages always succeeds).

Spinning locks (class lock, handle pin, zspage and pool rwlocks) call ``m.preempt`` before
each acquisition and ``m.wait(what, pfn, ready=...)`` while contended: the schedule explorer
blocks the spinning CPU until the lock is free, and a sequential run reports the contended
lock as the deadlock it would be.

>>> from pagelab import Machine
>>> from pagelab.mm.zsmalloc import zs_create_pool
>>> m = Machine.build(memory="64M")
>>> pool = zs_create_pool(m, "demo")
>>> h = pool.zs_malloc(100, 0x100cca)
>>> pool.zs_obj_write(h, b"x" * 100)
>>> pool.zs_obj_read(h, 100) == b"x" * 100
True
>>> pool.zs_free(h); m.check_state()
"""

from __future__ import annotations

import errno
import struct
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from pagelab.errors import InvalidArgument, ModelBug
from pagelab.mm import gfp as _gfp
from pagelab.mm import migrate as mg
from pagelab.mm import page_flags as pf
from pagelab.mm import swap
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import get_page, lock_page, trylock_page, unlock_page
from pagelab.mm.rmap import AddressSpace
from pagelab.mm.shrinker import (
    SHRINK_STOP,
    ShrinkControl,
    Shrinker,
    register_shrinker,
    unregister_shrinker,
)

if TYPE_CHECKING:
    from pagelab.machine import Machine
    from pagelab.profile import KernelProfile

__all__ = [
    "OBJ_ALLOCATED_TAG",
    "OBJ_TAG_BITS",
    "ZS_HANDLE_SIZE",
    "ZS_MAX_ALLOC_SIZE",
    "ZS_MIN_ALLOC_SIZE",
    "ZS_MM_RO",
    "ZS_MM_RW",
    "ZS_MM_WO",
    "ZS_SIZE_CLASSES",
    "ZS_SIZE_CLASS_DELTA",
    "SizeClass",
    "ZsConfig",
    "ZsPage",
    "ZsPool",
    "calculate_zspage_chain_size",
    "get_pages_per_zspage",
    "get_size_class_index",
    "kernel_version_tuple",
    "size_class_table",
    "zs_create_pool",
    "zs_destroy_pool",
]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK_LOW = PAGE_SIZE - 1

ZS_ALIGN = 8
ZS_HANDLE_SIZE = 8
ZSPAGE_MAGIC = 0x58
#: Head of an allocated object: ``handle | OBJ_ALLOCATED_TAG``.
OBJ_ALLOCATED_TAG = 1
OBJ_TAG_BITS = 1
#: v4.8: bit 0 of the value a handle holds is a bit spinlock (pin_tag/unpin_tag).
HANDLE_PIN_BIT = 0
CLASS_BITS = 8
ZS_MAX_ALLOC_SIZE = PAGE_SIZE
ZS_SIZE_CLASS_DELTA = PAGE_SIZE >> CLASS_BITS
#: ``MAX(32, ZS_MAX_PAGES_PER_ZSPAGE << PAGE_SHIFT >> OBJ_INDEX_BITS)``: 32 for every chain
#: size and OBJ_INDEX_BITS the model uses (4 << 12 >> 29 and 8 << 12 >> 24 are both < 32).
ZS_MIN_ALLOC_SIZE = 32
#: ``DIV_ROUND_UP(ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE, ZS_SIZE_CLASS_DELTA) + 1``
ZS_SIZE_CLASSES = -(-(ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA) + 1

#: ``fullness_threshold_frac`` (v4.8): ZS_ALMOST_EMPTY when inuse <= 3 * objs / 4.
fullness_threshold_frac = 4

# enum fullness_group, v4.8
ZS_EMPTY = 0
ZS_ALMOST_EMPTY = 1
ZS_ALMOST_FULL = 2
ZS_FULL = 3
NR_ZS_FULLNESS = 4
# enum zs_stat_type, v4.8 (CLASS_EMPTY..CLASS_FULL alias the fullness groups)
OBJ_ALLOCATED = 4
OBJ_USED = 5
# enum fullness_group, v6.3+
ZS_INUSE_RATIO_0 = 0
ZS_INUSE_RATIO_10 = 1
ZS_INUSE_RATIO_99 = 10
ZS_INUSE_RATIO_100 = 11
NR_FULLNESS_GROUPS = 12
# enum class_stat_type, v6.3+
ZS_OBJS_ALLOCATED = NR_FULLNESS_GROUPS
ZS_OBJS_INUSE = NR_FULLNESS_GROUPS + 1

# enum zs_mapmode
ZS_MM_RW = 0
ZS_MM_RO = 1
ZS_MM_WO = 2

MIGRATEPAGE_SUCCESS = 0

_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1
_WORD = struct.Struct("<Q")
_GFP_HIGHMEM = _gfp.__GFP_HIGHMEM
_GFP_MOVABLE = _gfp.__GFP_MOVABLE
_PRIVATE = 1 << pf.PG_private
_PRIVATE_2 = 1 << pf.PG_private_2
_HUGE_OBJECT = 1 << pf.PG_owner_priv_1  # v4.8 PageHugeObject
_ISOLATED = 1 << pf.PG_isolated
#: Low 24 bits of page_type carry first_obj_offset (FIRST_OBJ_PAGE_TYPE_MASK, v6.12+).
FIRST_OBJ_PAGE_TYPE_MASK = 0xFFFFFF


def kernel_version_tuple(version: str) -> tuple[int, int]:
    """Return ``(major, minor)`` of a kernel version string such as ``"6.16"`` or ``"4.8.15"``."""
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise InvalidArgument(f"kernel version {version!r} is not of the form 6.16") from None


# --- geometry ----------------------------------------------------------------------------------


def get_size_class_index(size: int) -> int:
    """Return the size-class slot for an object of ``size`` bytes (``get_size_class_index``).

    ``DIV_ROUND_UP(size - ZS_MIN_ALLOC_SIZE, ZS_SIZE_CLASS_DELTA)``, 0 up to the minimum,
    capped at the last slot. ``size`` already includes ZS_HANDLE_SIZE.
    """
    idx = 0
    if size > ZS_MIN_ALLOC_SIZE:
        idx = -(-(size - ZS_MIN_ALLOC_SIZE) // ZS_SIZE_CLASS_DELTA)
    return min(ZS_SIZE_CLASSES - 1, idx)


def get_pages_per_zspage(class_size: int, max_pages: int = 4) -> int:
    """Return the pages per zspage that use most of the memory (``get_pages_per_zspage``, v4.8).

    For k = 1..ZS_MAX_PAGES_PER_ZSPAGE the used percentage ``(k*4096 - k*4096 % size) * 100 /
    (k*4096)`` (integer); the first k with the strictly largest value wins.
    """
    max_usedpc = 0
    max_usedpc_order = 1
    for i in range(1, max_pages + 1):
        zspage_size = i * PAGE_SIZE
        waste = zspage_size % class_size
        usedpc = (zspage_size - waste) * 100 // zspage_size
        if usedpc > max_usedpc:
            max_usedpc = usedpc
            max_usedpc_order = i
    return max_usedpc_order


def calculate_zspage_chain_size(class_size: int, max_pages: int = 8) -> int:
    """Return the chain length with the least waste (``calculate_zspage_chain_size``, v6.3).

    Power-of-two sizes use one page; otherwise the first k in 1..CONFIG_ZSMALLOC_CHAIN_SIZE
    with the strictly smallest ``k*4096 % size``.
    """
    if class_size & (class_size - 1) == 0:
        return 1
    min_waste = 1 << 62
    chain_size = 1
    for i in range(1, max_pages + 1):
        waste = (i * PAGE_SIZE) % class_size
        if waste < min_waste:
            min_waste = waste
            chain_size = i
    return chain_size


@dataclass(frozen=True)
class ZsConfig:
    """The zsmalloc behaviour of one kernel version; each field names where it changed.

    Attributes:
        kernel_version: ``(major, minor)`` the configuration follows.
        movable: zspage pages are non-LRU movable (v4.8, 48b4800a1c6a); False models v4.7:
            no __GFP_MOVABLE, never ``__SetPageMovable``.
        chain_size: ZS_MAX_PAGES_PER_ZSPAGE: 4 (``1 << ZS_MAX_ZSPAGE_ORDER``) until v6.2,
            CONFIG_ZSMALLOC_CHAIN_SIZE (default 8) since v6.3 ("zsmalloc: make zspage chain
            size configurable").
        least_waste_chain: ``calculate_zspage_chain_size`` (v6.3) instead of
            ``get_pages_per_zspage``.
        ratio_fullness: the ZS_INUSE_RATIO_* groups (v6.3, "zsmalloc: fine-grained inuse
            ratio based fullness grouping") instead of EMPTY/ALMOST_EMPTY/ALMOST_FULL/FULL;
            ``insert_zspage`` then always adds at the head (the "higher inuse first" insert
            was removed in the same series [U]).
        migrate_empty: empty zspages may be isolated and migrated (v4.14, 77ff465799c6).
        legacy_locking: v4.8's locking: handle pin bits, a per-zspage migrate rwlock, class
            spinlocks, zspage isolation off the fullness lists, ``obj << OBJ_TAG_BITS``
            and PG_owner_priv_1 for huge pages. Replaced in v5.17 (Minchan Kim, "zsmalloc:
            replace per zpage lock with pool->migrate_lock" and "zsmalloc: remove zspage
            isolation for migration").
        last_page_private2: PG_private_2 marks the last page (removed by "mm/zsmalloc: remove
            redundant SetPagePrivate2 in create_page_chain", v4.12 [U]).
        page_type_zsmalloc: pages carry PGTY_zsmalloc and first_obj_offset in the low 24
            bits of page_type ("mm: zsmalloc: use a proper page type", v6.11 [U]); before,
            the offset is the whole ``units``/``page_type`` word over ``_mapcount``.
        zspage_trylock_migrate: ``zs_page_migrate`` trylocks the zspage lock and returns
            -EINVAL if a reader holds it (v6.15, "zsmalloc: make zspage lock preemptible").
        migrate_moves_nr_zspages: migration moves NR_ZSPAGES to the new page's zone (Chanho
            Min's fix of 91537fee0013 "mm: add NR_ZSMALLOC to vmstat", Cc stable 4.9+, after
            v4.10 [U]); v4.8 leaves the count on the old zone until the page is freed.
    """

    kernel_version: tuple[int, int]
    movable: bool = True
    chain_size: int = 8
    least_waste_chain: bool = True
    ratio_fullness: bool = True
    migrate_empty: bool = True
    legacy_locking: bool = False
    last_page_private2: bool = False
    page_type_zsmalloc: bool = True
    zspage_trylock_migrate: bool = True
    migrate_moves_nr_zspages: bool = True

    @classmethod
    def for_profile(cls, profile: KernelProfile) -> ZsConfig:
        """Return the configuration of ``profile.kernel_version`` (and its non_lru_movable)."""
        v = kernel_version_tuple(profile.kernel_version)
        return cls(
            kernel_version=v,
            movable=profile.non_lru_movable,
            chain_size=8 if v >= (6, 3) else 4,
            least_waste_chain=v >= (6, 3),
            ratio_fullness=v >= (6, 3),
            migrate_empty=v >= (4, 14),
            legacy_locking=v < (5, 17),
            last_page_private2=v < (4, 12),
            page_type_zsmalloc=v >= (6, 11),
            zspage_trylock_migrate=v >= (6, 15),
            migrate_moves_nr_zspages=v >= (4, 11),
        )

    @property
    def obj_index_bits(self) -> int:
        """``OBJ_INDEX_BITS`` on x86-64: 64 - (46 - 12) - 1 = 29 (v4.8, MAX_PHYSMEM_BITS 46);
        64 - (52 - 12) = 24 since v5.17 (MAX_POSSIBLE_PHYSMEM_BITS 52, no tag bit)."""
        return 29 if self.legacy_locking else 24

    @property
    def obj_tag_shift(self) -> int:
        """Bits ``location_to_obj`` shifts the object left by (OBJ_TAG_BITS in v4.8, else 0)."""
        return OBJ_TAG_BITS if self.legacy_locking else 0

    def pages_per_zspage(self, size: int) -> int:
        """Return the chain length of a class of ``size`` bytes for this version."""
        if self.least_waste_chain:
            return calculate_zspage_chain_size(size, self.chain_size)
        return get_pages_per_zspage(size, self.chain_size)


def size_class_table(config: ZsConfig) -> list[tuple[int, int, int, int]]:
    """Return the pool's distinct classes as ``(index, size, pages_per_zspage, objs_per_zspage)``.

    Walks slots from the largest down, merging a slot into the previously created class when
    both pages and objects per zspage agree (``can_merge`` in ``zs_create_pool``).
    """
    out: list[tuple[int, int, int, int]] = []
    prev: tuple[int, int, int, int] | None = None
    for i in range(ZS_SIZE_CLASSES - 1, -1, -1):
        size = min(ZS_MIN_ALLOC_SIZE + i * ZS_SIZE_CLASS_DELTA, ZS_MAX_ALLOC_SIZE)
        ppz = config.pages_per_zspage(size)
        opz = ppz * PAGE_SIZE // size
        if prev is not None and prev[2] == ppz and prev[3] == opz:
            continue
        prev = (i, size, ppz, opz)
        out.append(prev)
    out.reverse()
    return out


# --- intrusive lists (list_head) ------------------------------------------------------------


class _ListNode:
    """A ``struct list_head``: list heads and the zspage's ``list`` member."""

    __slots__ = ("next", "prev")

    def __init__(self) -> None:
        self.next: _ListNode = self
        self.prev: _ListNode = self


def _list_empty(head: _ListNode) -> bool:
    return head.next is head


def _list_add(new: _ListNode, head: _ListNode) -> None:
    nxt = head.next
    new.next = nxt
    new.prev = head
    nxt.prev = new
    head.next = new


def _list_del_init(entry: _ListNode) -> None:
    entry.prev.next = entry.next
    entry.next.prev = entry.prev
    entry.next = entry
    entry.prev = entry


def _list_splice_init(src: _ListNode, head: _ListNode) -> None:
    """Move every entry of ``src`` to the front of ``head`` (``list_splice_init``)."""
    if _list_empty(src):
        return
    first = src.next
    last = src.prev
    at = head.next
    first.prev = head
    head.next = first
    last.next = at
    at.prev = last
    src.next = src
    src.prev = src


def _list_entries(head: _ListNode) -> Iterator[ZsPage]:
    cur = head.next
    while cur is not head:
        nxt = cur.next
        yield cast(ZsPage, cur)
        cur = nxt


# --- structures --------------------------------------------------------------------------------


class ZsPage(_ListNode):
    """``struct zspage``: a chain of pages holding objects of one class.

    ``fullness``, ``klass`` (the class index), ``isolated`` (v4.8: pages isolated for
    migration) and ``magic`` are the kernel's bitfields; ``huge`` is mainline's
    ``zspage->huge`` (v4.8 marks the page PG_owner_priv_1 instead). The zspage lock is
    ``readers``/``writer`` (v4.8's migrate rwlock, mainline's zspage lock).
    """

    __slots__ = ("first_page", "freeobj", "fullness", "huge", "id", "inuse", "isolated",
                 "klass", "magic", "readers", "writer")

    def __init__(self, zspage_id: int) -> None:
        super().__init__()
        self.id = zspage_id
        self.magic = ZSPAGE_MAGIC
        self.klass = 0
        self.fullness = 0
        self.isolated = 0
        self.huge = False
        self.inuse = 0
        self.freeobj = 0
        self.first_page = 0
        self.readers = 0
        self.writer = False

    def __repr__(self) -> str:
        return (f"ZsPage(id={self.id}, class={self.klass}, inuse={self.inuse}, "
                f"fullness={self.fullness}, isolated={self.isolated}, "
                f"first_page={self.first_page:#x})")


class _Lock:
    """A spinlock (class lock) or the reader/writer state of an rwlock (pool lock)."""

    __slots__ = ("owner", "readers", "writer")

    def __init__(self) -> None:
        self.owner: int | None = None
        self.readers = 0
        self.writer = False


class SizeClass:
    """``struct size_class``: objects of one size, their zspages by fullness, stats, lock."""

    __slots__ = ("fullness_list", "index", "lock", "objs_per_zspage", "pages_per_zspage",
                 "size", "stats")

    def __init__(self, index: int, size: int, pages_per_zspage: int, objs_per_zspage: int,
                 nr_groups: int, nr_stats: int) -> None:
        self.index = index
        self.size = size
        self.pages_per_zspage = pages_per_zspage
        self.objs_per_zspage = objs_per_zspage
        self.fullness_list = [_ListNode() for _ in range(nr_groups)]
        self.stats = [0] * nr_stats
        self.lock = _Lock()

    def __repr__(self) -> str:
        return (f"SizeClass(index={self.index}, size={self.size}, "
                f"pages_per_zspage={self.pages_per_zspage}, "
                f"objs_per_zspage={self.objs_per_zspage})")


class _Mapping:
    """One ``zs_map_object`` or ``zs_obj_read_begin`` in progress: what to write back/unlock."""

    __slots__ = ("buf", "mm", "zspage")

    def __init__(self, zspage: ZsPage, mm: int, buf: bytearray) -> None:
        self.zspage = zspage
        self.mm = mm
        self.buf = buf


# Pools per machine, for the NR_ZSPAGES check (zone counters are shared by all pools).
_POOLS: weakref.WeakKeyDictionary[Machine, list[ZsPool]] = weakref.WeakKeyDictionary()


def _check_nr_zspages(m: Machine) -> list[str]:
    pools = _POOLS.get(m, [])
    if any(p._inflight for p in pools):
        return []
    counted = sum(z.vm_stat[vs.NR_ZSPAGES] for z in m.zones)
    held = sum(len(p._data) for p in pools)
    if counted != held:
        return [f"NR_ZSPAGES is {counted} in the zones, zsmalloc pools hold {held} pages"]
    return []


def zs_create_pool(m: Machine, name: str, config: ZsConfig | None = None) -> ZsPool:
    """Create a pool (``zs_create_pool``); ``config`` defaults to the machine's profile."""
    return ZsPool(m, name, config)


def zs_destroy_pool(pool: ZsPool) -> None:
    """Destroy a pool (``zs_destroy_pool``); every object must have been freed."""
    pool.zs_destroy_pool()


class ZsPool:
    """``struct zs_pool``: size classes, zspages, handles, stats, and the migration callbacks.

    The pool is its own ``a_ops``: :meth:`isolate_page`, :meth:`migratepage` and
    :meth:`putback_page` are ``zs_page_isolate``, ``zs_page_migrate`` and
    ``zs_page_putback``. A handle is an 8-aligned integer standing for the address of a
    ``zs_handle`` slot; ``zs_malloc`` returns 0 (v4.8) or a negative errno (mainline) on
    failure.
    """

    def __init__(self, m: Machine, name: str = "zram0", config: ZsConfig | None = None) -> None:
        self.m = m
        self.name = name
        self.config = config if config is not None else ZsConfig.for_profile(m.profile)
        cfg = self.config
        self._legacy = cfg.legacy_locking
        self._movable = cfg.movable
        self._tag_shift = cfg.obj_tag_shift
        self._index_bits = cfg.obj_index_bits
        self._index_mask = (1 << self._index_bits) - 1
        if cfg.ratio_fullness:
            self._nr_groups = NR_FULLNESS_GROUPS
            self._fg_full = ZS_INUSE_RATIO_100
            self._stat_allocated = ZS_OBJS_ALLOCATED
            self._stat_inuse = ZS_OBJS_INUSE
        else:
            self._nr_groups = NR_ZS_FULLNESS
            self._fg_full = ZS_FULL
            self._stat_allocated = OBJ_ALLOCATED
            self._stat_inuse = OBJ_USED
        nr_stats = self._stat_inuse + 1
        #: ``pool->size_class[]``: merged slots share one SizeClass.
        self.size_class: list[SizeClass] = [cast(SizeClass, None)] * ZS_SIZE_CLASSES
        self.huge_class_size = 0
        prev: SizeClass | None = None
        for i in range(ZS_SIZE_CLASSES - 1, -1, -1):
            size = min(ZS_MIN_ALLOC_SIZE + i * ZS_SIZE_CLASS_DELTA, ZS_MAX_ALLOC_SIZE)
            ppz = cfg.pages_per_zspage(size)
            opz = ppz * PAGE_SIZE // size
            # Walking down, the first class that is not huge gives huge_class_size: any
            # object at least that big (before the handle is added) ends up in a huge class
            # (zs_create_pool, v4.18+; v4.8 has no zs_huge_class_size, zram uses 3072).
            if ppz != 1 and opz != 1 and not self.huge_class_size:
                self.huge_class_size = size - (ZS_HANDLE_SIZE - 1)
            if prev is not None and prev.pages_per_zspage == ppz and prev.objs_per_zspage == opz:
                self.size_class[i] = prev
                continue
            prev = SizeClass(i, size, ppz, opz, self._nr_groups, nr_stats)
            self.size_class[i] = prev
        #: Each class once (merged slots share one), in ``size_class`` order.
        self._distinct_classes = [k for i, k in enumerate(self.size_class) if k.index == i]
        #: The pool's mapping (v4.8 ``pool->inode->i_mapping`` with ``zsmalloc_aops``).
        self.mapping = AddressSpace(m, f"zsmalloc:{name}", a_ops=self)
        self.pages_allocated = 0
        #: ``zs_pool_stats``: pages freed by zs_compact.
        self.pages_compacted = 0
        #: Pool pages moved by page migration (not a kernel statistic: the model's tally).
        self.pages_migrated = 0
        self.compaction_in_progress = False
        self.lock = _Lock()  # mainline pool->lock (rwlock)
        self.zspages: dict[int, ZsPage] = {}
        self._next_zspage_id = 1
        #: Handle slots: value = encoded obj (with the pin bit in v4.8), -1 when free.
        self._hval: list[int] = [-1]
        self._free_slots: list[int] = []
        self._nr_handles = 0
        #: The bytes of every zspage page, by pfn.
        self._data: dict[int, bytearray] = {}
        self._mapped: dict[int, _Mapping] = {}
        #: ``pool->free_work`` scheduled (``kick_deferred_free``).
        self.free_work_pending = False
        #: Run pending free work at the next entry into the pool (a workqueue runs it soon).
        self.auto_run_work = True
        self._inflight = 0
        self.destroyed = False
        pools = _POOLS.setdefault(m, [])
        if not pools:
            m.state_checkers.append(lambda: _check_nr_zspages(m))
        pools.append(self)
        m.state_checkers.append(self.check)
        # zs_register_shrinker (v4.2+): reclaim compacts the pool (seeks DEFAULT_SEEKS, batch 0).
        self.shrinker = Shrinker(f"mm-zspool:{name}", count_objects=self.zs_shrinker_count,
                                 scan_objects=self.zs_shrinker_scan)
        register_shrinker(m, self.shrinker)

    def __repr__(self) -> str:
        return (f"ZsPool({self.name!r}, pages_allocated={self.pages_allocated}, "
                f"objects={self._nr_handles}, kernel={self.config.kernel_version})")

    # --- locks and preemption points -----------------------------------------------------------

    def _spin_lock(self, lock: _Lock, what: str, pfn: int = -1) -> None:
        m = self.m
        if m.preempt is not None:
            m.preempt(what, pfn)
        while lock.owner is not None:
            m.wait(what, pfn, ready=lambda: lock.owner is None)
        lock.owner = m.cpu

    def _spin_unlock(self, lock: _Lock, what: str, pfn: int = -1) -> None:
        lock.owner = None
        if self.m.preempt is not None:
            self.m.preempt(what + "_unlock", pfn)

    def _class_lock(self, klass: SizeClass) -> None:
        self._spin_lock(klass.lock, "zs_class_lock")

    def _class_unlock(self, klass: SizeClass) -> None:
        self._spin_unlock(klass.lock, "zs_class_lock")

    def _pool_read_lock(self) -> None:
        m = self.m
        lock = self.lock
        if m.preempt is not None:
            m.preempt("zs_pool_lock", -1)
        while lock.writer:
            m.wait("zs_pool_lock", -1, ready=lambda: not lock.writer)
        lock.readers += 1

    def _pool_read_unlock(self) -> None:
        self.lock.readers -= 1
        if self.m.preempt is not None:
            self.m.preempt("zs_pool_lock_unlock", -1)

    def _pool_write_lock(self) -> None:
        m = self.m
        lock = self.lock
        if m.preempt is not None:
            m.preempt("zs_pool_lock", -1)
        while lock.writer or lock.readers:
            m.wait("zs_pool_lock", -1, ready=lambda: not (lock.writer or lock.readers))
        lock.writer = True

    def _pool_write_unlock(self) -> None:
        self.lock.writer = False
        if self.m.preempt is not None:
            self.m.preempt("zs_pool_lock_unlock", -1)

    def migrate_read_lock(self, zspage: ZsPage) -> None:
        """Take the zspage lock for reading (v4.8 ``migrate_read_lock``, ``zspage_read_lock``)."""
        m = self.m
        if m.preempt is not None:
            m.preempt("zs_zspage_lock", zspage.first_page)
        while zspage.writer:
            m.wait("zs_zspage_lock", zspage.first_page, ready=lambda: not zspage.writer)
        zspage.readers += 1

    def migrate_read_unlock(self, zspage: ZsPage) -> None:
        """Release a read hold of the zspage lock."""
        zspage.readers -= 1
        if self.m.preempt is not None:
            self.m.preempt("zs_zspage_lock_unlock", zspage.first_page)

    def migrate_write_lock(self, zspage: ZsPage) -> None:
        """Take the zspage lock for writing, waiting for readers (v4.8 ``migrate_write_lock``)."""
        m = self.m
        if m.preempt is not None:
            m.preempt("zs_zspage_lock", zspage.first_page)
        while zspage.writer or zspage.readers:
            m.wait("zs_zspage_lock", zspage.first_page,
                   ready=lambda: not (zspage.writer or zspage.readers))
        zspage.writer = True

    def zspage_write_trylock(self, zspage: ZsPage) -> bool:
        """Take the zspage lock for writing if nobody holds it (``zspage_write_trylock``)."""
        if self.m.preempt is not None:
            self.m.preempt("zs_zspage_lock", zspage.first_page)
        if zspage.writer or zspage.readers:
            return False
        zspage.writer = True
        return True

    def migrate_write_unlock(self, zspage: ZsPage) -> None:
        """Release the zspage write lock."""
        zspage.writer = False
        if self.m.preempt is not None:
            self.m.preempt("zs_zspage_lock_unlock", zspage.first_page)

    def _slot(self, handle: int) -> int:
        slot = handle >> 3
        if handle <= 0 or handle & 7 or slot >= len(self._hval) or self._hval[slot] < 0:
            raise InvalidArgument(f"{handle:#x} is not a live handle of pool {self.name!r}; "
                                  "pass a handle returned by zs_malloc and not yet freed")
        return slot

    def pin_tag(self, handle: int) -> None:
        """Spin on the handle's pin bit (v4.8 ``pin_tag``, ``bit_spin_lock(HANDLE_PIN_BIT)``)."""
        m = self.m
        slot = handle >> 3
        if m.preempt is not None:
            m.preempt("zs_handle_pin", -1)
        hval = self._hval
        while hval[slot] & (1 << HANDLE_PIN_BIT):
            m.wait("zs_handle_pin", -1, ready=lambda: not hval[slot] & (1 << HANDLE_PIN_BIT))
        self._hval[slot] |= 1 << HANDLE_PIN_BIT

    def trypin_tag(self, handle: int) -> bool:
        """Take the pin bit if it is free (v4.8 ``trypin_tag``)."""
        slot = handle >> 3
        if self.m.preempt is not None:
            self.m.preempt("zs_handle_pin", -1)
        if self._hval[slot] & (1 << HANDLE_PIN_BIT):
            return False
        self._hval[slot] |= 1 << HANDLE_PIN_BIT
        return True

    def testpin_tag(self, handle: int) -> bool:
        """Return whether the handle is pinned (v4.8 ``testpin_tag``)."""
        return bool(self._hval[handle >> 3] & (1 << HANDLE_PIN_BIT))

    def unpin_tag(self, handle: int) -> None:
        """Release the pin bit (v4.8 ``unpin_tag``)."""
        self._hval[handle >> 3] &= ~(1 << HANDLE_PIN_BIT)
        if self.m.preempt is not None:
            self.m.preempt("zs_handle_unpin", -1)

    # --- handles and object encoding -----------------------------------------------------------

    def cache_alloc_handle(self) -> int:
        """Return a fresh handle (``cache_alloc_handle``; the kmem cache never fails here)."""
        if self._free_slots:
            slot = self._free_slots.pop()
            self._hval[slot] = 0
        else:
            slot = len(self._hval)
            if slot >= 1 << 27:
                raise ModelBug("zsmalloc: more than 2**27 live handles; the model stores "
                               "handle | OBJ_ALLOCATED_TAG in page->index (int32)")
            self._hval.append(0)
        self._nr_handles += 1
        return slot << 3

    def cache_free_handle(self, handle: int) -> None:
        """Return a handle to the cache (``cache_free_handle``)."""
        slot = handle >> 3
        self._hval[slot] = -1
        self._free_slots.append(slot)
        self._nr_handles -= 1

    def handle_to_obj(self, handle: int) -> int:
        """Return the value stored in a handle (``handle_to_obj``; v4.8: pin bit included)."""
        return self._hval[handle >> 3]

    def record_obj(self, handle: int, obj: int) -> None:
        """Store an encoded object in a handle (``record_obj``)."""
        self._hval[handle >> 3] = obj

    def location_to_obj(self, pfn: int, obj_idx: int) -> int:
        """Encode ``(pfn, obj_idx)`` (``location_to_obj``; v4.8 shifts by OBJ_TAG_BITS)."""
        return ((pfn << self._index_bits) | (obj_idx & self._index_mask)) << self._tag_shift

    def obj_to_location(self, obj: int) -> tuple[int, int]:
        """Decode an object into ``(pfn, obj_idx)`` (``obj_to_location``)."""
        obj >>= self._tag_shift
        return obj >> self._index_bits, obj & self._index_mask

    # --- page linkage --------------------------------------------------------------------------

    def get_zspage(self, pfn: int) -> ZsPage:
        """Return the zspage of a page (``get_zspage``: page->private, BUG_ON bad magic)."""
        zspage = self.zspages.get(self.m.mem.private_mv[pfn])
        if zspage is None or zspage.magic != ZSPAGE_MAGIC:
            raise ModelBug(f"BUG_ON(zspage->magic != ZSPAGE_MAGIC) in get_zspage at pfn "
                           f"{pfn:#x}: {self.m.mem.dump_page(pfn)}")
        return zspage

    def _is_huge(self, zspage: ZsPage) -> bool:
        if self._legacy:
            return bool(self.m.mem.flags_mv[zspage.first_page] & _HUGE_OBJECT)
        return zspage.huge

    def get_next_page(self, pfn: int) -> int:
        """Return the next page of the chain, 0 for none (``get_next_page``: page->index)."""
        mem = self.m.mem
        if self._legacy:
            if mem.flags_mv[pfn] & _HUGE_OBJECT:
                return 0
        elif self.get_zspage(pfn).huge:
            return 0
        return int(mem.index_mv[pfn])

    def zspage_pages(self, zspage: ZsPage) -> list[int]:
        """Return the pfns of a zspage in chain order."""
        pages = []
        pfn = zspage.first_page
        while pfn:
            pages.append(pfn)
            pfn = self.get_next_page(pfn)
        return pages

    def get_first_obj_offset(self, pfn: int) -> int:
        """Return the offset of the first object starting in the page (``get_first_obj_offset``)."""
        value = self.m.mem.mapcount_mv[pfn]
        if self.config.page_type_zsmalloc:
            return (value + (1 << 32)) & FIRST_OBJ_PAGE_TYPE_MASK
        return int(value)

    def set_first_obj_offset(self, pfn: int, offset: int) -> None:
        """Store the first-object offset (``page->units`` in v4.8; low bits of page_type)."""
        mem = self.m.mem
        if self.config.page_type_zsmalloc:
            mem.mapcount_mv[pfn] = ((pf.PGTY_zsmalloc << 24) | offset) - (1 << 32)
        else:
            mem.mapcount_mv[pfn] = offset

    def _set_flag(self, pfn: int, bit: int) -> None:
        flags = self.m.mem.flags_mv
        flags[pfn] = flags[pfn] | bit

    def _clear_flag(self, pfn: int, bit: int) -> None:
        flags = self.m.mem.flags_mv
        flags[pfn] = flags[pfn] & ~bit

    def create_page_chain(self, klass: SizeClass, zspage: ZsPage, pages: list[int]) -> None:
        """Link pages into a zspage (``create_page_chain``).

        private -> zspage, index -> next page; PG_private on the first page (and PG_private_2
        on the last, v4.8); a one-page, one-object class is huge (PG_owner_priv_1 in v4.8,
        ``zspage->huge`` since v5.17).
        """
        mem = self.m.mem
        huge = klass.objs_per_zspage == 1 and klass.pages_per_zspage == 1
        nr_pages = klass.pages_per_zspage
        prev = 0
        for i, pfn in enumerate(pages):
            mem.private_mv[pfn] = zspage.id
            mem.index_mv[pfn] = 0
            if i == 0:
                zspage.first_page = pfn
                self._set_flag(pfn, _PRIVATE)
                if huge:
                    if self._legacy:
                        self._set_flag(pfn, _HUGE_OBJECT)
                    else:
                        zspage.huge = True
            else:
                mem.index_mv[prev] = pfn
            if self.config.last_page_private2 and i == nr_pages - 1:
                self._set_flag(pfn, _PRIVATE_2)
            prev = pfn

    def _word(self, pfn: int, off: int) -> int:
        return int(_WORD.unpack_from(self._data[pfn], off)[0])

    def _set_word(self, pfn: int, off: int, value: int) -> None:
        _WORD.pack_into(self._data[pfn], off, value & _U64)

    def init_zspage(self, klass: SizeClass, zspage: ZsPage) -> None:
        """Write the free list through the new zspage's objects (``init_zspage``).

        Each free object's first word is ``next_index << OBJ_TAG_BITS``; the last holds
        ``-1 << OBJ_TAG_BITS``; every page records where its first object starts.
        """
        size = klass.size
        freeobj = 1
        off = 0
        page = zspage.first_page
        while page:
            self.set_first_obj_offset(page, off)
            link = off
            off += size
            while off < PAGE_SIZE:
                self._set_word(page, link, (freeobj << OBJ_TAG_BITS) & _U32)
                freeobj += 1
                link += size
                off += size
            next_page = self.get_next_page(page)
            if next_page:
                self._set_word(page, link, (freeobj << OBJ_TAG_BITS) & _U32)
                freeobj += 1
            else:
                self._set_word(page, link, -1 << OBJ_TAG_BITS)
            page = next_page
            off %= PAGE_SIZE
        zspage.freeobj = 0

    # --- fullness groups -----------------------------------------------------------------------

    def get_fullness_group(self, klass: SizeClass, zspage: ZsPage) -> int:
        """Return the group a zspage belongs in by its ``inuse`` (``get_fullness_group``)."""
        inuse = zspage.inuse
        objs = klass.objs_per_zspage
        if self.config.ratio_fullness:
            if inuse == 0:
                return ZS_INUSE_RATIO_0
            if inuse == objs:
                return ZS_INUSE_RATIO_100
            return 100 * inuse // objs // 10 + 1
        if inuse == 0:
            return ZS_EMPTY
        if inuse == objs:
            return ZS_FULL
        if inuse <= 3 * objs // fullness_threshold_frac:
            return ZS_ALMOST_EMPTY
        return ZS_ALMOST_FULL

    def insert_zspage(self, klass: SizeClass, zspage: ZsPage, fullness: int) -> None:
        """Add a zspage to a fullness list (``insert_zspage``).

        v4.8: "We want to see more ZS_FULL pages and less almost empty/full. Put pages with
        higher ->inuse first": a zspage with fewer objects than the head goes second.
        """
        klass.stats[fullness] += 1
        head = klass.fullness_list[fullness]
        if not self.config.ratio_fullness:
            first = head.next
            if first is not head and zspage.inuse < cast(ZsPage, first).inuse:
                _list_add(zspage, first)
                return
        else:
            zspage.fullness = fullness
        _list_add(zspage, head)

    def remove_zspage(self, klass: SizeClass, zspage: ZsPage, fullness: int) -> None:
        """Take a zspage off a fullness list (``remove_zspage``)."""
        if _list_empty(klass.fullness_list[fullness]):
            raise ModelBug(f"VM_BUG_ON(list_empty(&class->fullness_list[{fullness}])) in "
                           f"remove_zspage: {zspage}")
        if self._legacy and zspage.isolated:
            raise ModelBug(f"VM_BUG_ON(is_zspage_isolated(zspage)) in remove_zspage: {zspage}")
        _list_del_init(zspage)
        klass.stats[fullness] -= 1

    def fix_fullness_group(self, klass: SizeClass, zspage: ZsPage) -> int:
        """Move a zspage to the list matching its ``inuse`` (``fix_fullness_group``).

        v4.8 leaves an isolated zspage off the lists but records its new group.
        """
        newfg = self.get_fullness_group(klass, zspage)
        if newfg == zspage.fullness:
            return newfg
        if not (self._legacy and zspage.isolated):
            self.remove_zspage(klass, zspage, zspage.fullness)
            self.insert_zspage(klass, zspage, newfg)
        zspage.fullness = newfg
        return newfg

    def putback_zspage(self, klass: SizeClass, zspage: ZsPage) -> int:
        """Put a zspage on the list of its group and return the group (``putback_zspage``)."""
        if self._legacy and zspage.isolated:
            raise ModelBug(f"VM_BUG_ON(is_zspage_isolated(zspage)) in putback_zspage: {zspage}")
        fullness = self.get_fullness_group(klass, zspage)
        self.insert_zspage(klass, zspage, fullness)
        zspage.fullness = fullness
        return fullness

    def find_get_zspage(self, klass: SizeClass) -> ZsPage | None:
        """Return a zspage with a free object, fullest first (``find_get_zspage``).

        v4.8 looks at ALMOST_FULL, ALMOST_EMPTY, EMPTY; mainline at RATIO_99 down to RATIO_0.
        """
        top = ZS_INUSE_RATIO_99 if self.config.ratio_fullness else ZS_ALMOST_FULL
        lists = klass.fullness_list
        for i in range(top, -1, -1):
            head = lists[i]
            if head.next is not head:
                return cast(ZsPage, head.next)
        return None

    # --- zspage life cycle ---------------------------------------------------------------------

    def alloc_zspage(self, klass: SizeClass, gfp: int, nid: int) -> ZsPage | None:
        """Allocate and initialise a zspage of order-0 pages (``alloc_zspage``).

        Each page counts in its zone's NR_ZSPAGES. On a failed page allocation the pages
        already taken are freed and NULL returned.
        """
        m = self.m
        mem = m.mem
        pages: list[int] = []
        for _ in range(klass.pages_per_zspage):
            pfn = m.alloc_page_raw(gfp, 0, nid)
            if pfn < 0:
                while pages:
                    p = pages.pop()
                    m.page_zone(p).vm_stat[vs.NR_ZSPAGES] -= 1
                    if self.config.page_type_zsmalloc:
                        mem.mapcount_mv[p] = pf.MAPCOUNT_NONE  # __ClearPageZsmalloc
                    del self._data[p]
                    swap.put_page(m, p)  # __free_page
                return None
            if pfn == 0:
                raise ModelBug("zsmalloc got pfn 0: page->index uses 0 as the NULL link")
            if self.config.page_type_zsmalloc:
                mem.mapcount_mv[pfn] = pf.PAGE_TYPE_ZSMALLOC  # __SetPageZsmalloc
            m.page_zone(pfn).vm_stat[vs.NR_ZSPAGES] += 1
            mem.token_mv[pfn] = m.new_token()
            self._data[pfn] = bytearray(PAGE_SIZE)
            pages.append(pfn)
        zspage = ZsPage(self._next_zspage_id)
        self._next_zspage_id += 1
        self.zspages[zspage.id] = zspage
        self.create_page_chain(klass, zspage, pages)
        self.init_zspage(klass, zspage)
        zspage.klass = klass.index
        return zspage

    def SetZsPageMovable(self, zspage: ZsPage) -> None:
        """Make every page of a new zspage movable (``SetZsPageMovable``).

        trylock each page (WARN if that fails: nobody else can know the page yet),
        ``__SetPageMovable`` with the pool's mapping, unlock.
        """
        m = self.m
        page = zspage.first_page
        while page:
            if not trylock_page(m, page):
                m.warn_once("SetZsPageMovable", f"WARN_ON(!trylock_page(page)) in "
                            f"SetZsPageMovable at pfn {page:#x}")
            mg.SetPageMovable(m, page, self.mapping)
            unlock_page(m, page)
            page = self.get_next_page(page)

    def reset_page(self, pfn: int) -> None:
        """Give a page back its ordinary fields before it is freed (``reset_page``).

        ``__ClearPageMovable`` (page locked), clear PG_private (and PG_private_2,
        PG_owner_priv_1 in v4.8), private = 0, ``_mapcount`` reset (``__ClearPageZsmalloc``
        on mainline), index = 0. The page's bytes leave the pool.
        """
        mem = self.m.mem
        if self._movable:
            mg.ClearPageMovable(self.m, pfn)
        flags = mem.flags_mv
        flags[pfn] = flags[pfn] & ~(_PRIVATE | _PRIVATE_2 | _HUGE_OBJECT)
        mem.private_mv[pfn] = 0
        mem.mapcount_mv[pfn] = pf.MAPCOUNT_NONE
        mem.index_mv[pfn] = 0
        del self._data[pfn]

    def trylock_zspage(self, zspage: ZsPage) -> bool:
        """Lock every page of the zspage, or none (``trylock_zspage``)."""
        m = self.m
        locked: list[int] = []
        for page in self.zspage_pages(zspage):
            if not trylock_page(m, page):
                for p in locked:
                    unlock_page(m, p)
                return False
            locked.append(page)
        return True

    def lock_zspage(self, zspage: ZsPage) -> None:
        """Lock every page of the zspage, sleeping (``lock_zspage``).

        Mainline (2022, "zsmalloc: fix races between asynchronous zspage free and page
        migration") walks the chain under the zspage read lock and waits for a locked page
        outside it, holding a reference, because the page may migrate away meanwhile.
        """
        m = self.m
        if self._legacy:
            for page in self.zspage_pages(zspage):
                lock_page(m, page)
            return
        while True:
            self.migrate_read_lock(zspage)
            page = zspage.first_page
            if trylock_page(m, page):
                break
            get_page(m, page)
            self.migrate_read_unlock(zspage)
            while pf.PageLocked(m.mem, page):
                m.wait("page_lock", page)
            swap.put_page(m, page)
        curr = page
        while True:
            page = self.get_next_page(curr)
            if not page:
                break
            if trylock_page(m, page):
                curr = page
            else:
                get_page(m, page)
                self.migrate_read_unlock(zspage)
                while pf.PageLocked(m.mem, page):
                    m.wait("page_lock", page)
                swap.put_page(m, page)
                self.migrate_read_lock(zspage)
        self.migrate_read_unlock(zspage)

    def __free_zspage(self, klass: SizeClass, zspage: ZsPage) -> None:
        """Free a locked, empty zspage (``__free_zspage``; class lock held)."""
        m = self.m
        mem = m.mem
        if zspage.inuse:
            raise ModelBug(f"VM_BUG_ON(get_zspage_inuse(zspage)) in __free_zspage: {zspage}")
        if zspage.fullness != 0:
            raise ModelBug(f"VM_BUG_ON(fullness != ZS_EMPTY) in __free_zspage: {zspage}")
        page = zspage.first_page
        while page:
            if not pf.PageLocked(mem, page):
                raise ModelBug(f"VM_BUG_ON_PAGE(!PageLocked(page)) in __free_zspage at pfn "
                               f"{page:#x}: {mem.dump_page(page)}")
            nxt = self.get_next_page(page)
            self.reset_page(page)
            unlock_page(m, page)
            m.page_zone(page).vm_stat[vs.NR_ZSPAGES] -= 1
            swap.put_page(m, page)
            page = nxt
        zspage.magic = 0
        del self.zspages[zspage.id]
        klass.stats[self._stat_allocated] -= klass.objs_per_zspage
        self.pages_allocated -= klass.pages_per_zspage

    def free_zspage(self, klass: SizeClass, zspage: ZsPage) -> None:
        """Free an empty zspage now, or schedule the deferred free (``free_zspage``).

        zs_free cannot sleep, so it only trylocks the pages; if one is locked (the VM is
        migrating it), the zspage stays on the empty list for ``async_free_zspage``.
        """
        if zspage.inuse:
            raise ModelBug(f"VM_BUG_ON(get_zspage_inuse(zspage)) in free_zspage: {zspage}")
        if _list_empty(zspage):
            raise ModelBug(f"VM_BUG_ON(list_empty(&zspage->list)) in free_zspage: {zspage}")
        if not self.trylock_zspage(zspage):
            self.kick_deferred_free()
            return
        self.remove_zspage(klass, zspage, zspage.fullness)
        self.__free_zspage(klass, zspage)

    def kick_deferred_free(self) -> None:
        """Schedule ``pool->free_work`` (``kick_deferred_free``)."""
        self.free_work_pending = True

    def async_free_zspage(self) -> None:
        """The deferred-free work (``async_free_zspage``).

        Splice every class's empty list away under the class lock, then lock each zspage's
        pages (sleeping) and free it under the class lock. Mainline also takes the zspages
        out of the group's count (v4.8 left CLASS_EMPTY counting them).
        """
        self.free_work_pending = False
        free_pages = _ListNode()
        for i in range(ZS_SIZE_CLASSES):
            klass = self.size_class[i]
            if klass.index != i:
                continue
            self._class_lock(klass)
            _list_splice_init(klass.fullness_list[0], free_pages)
            self._class_unlock(klass)
        for zspage in list(_list_entries(free_pages)):
            _list_del_init(zspage)
            self.lock_zspage(zspage)
            klass = self.size_class[zspage.klass]
            self._class_lock(klass)
            if not self._legacy:
                klass.stats[ZS_INUSE_RATIO_0] -= 1
            self.__free_zspage(klass, zspage)
            self._class_unlock(klass)

    def flush_work(self) -> None:
        """Run the deferred-free work if it is scheduled (``flush_work(&pool->free_work)``)."""
        if self.free_work_pending:
            self._inflight += 1
            try:
                self.async_free_zspage()
            finally:
                self._inflight -= 1

    def _enter(self) -> None:
        if self.destroyed:
            raise InvalidArgument(f"zsmalloc pool {self.name!r} was destroyed")
        if self.free_work_pending and self.auto_run_work and not self._inflight:
            self.flush_work()
        self._inflight += 1

    # --- objects ----------------------------------------------------------------------------------

    def obj_malloc(self, klass: SizeClass, zspage: ZsPage, handle: int) -> int:
        """Take the first free object of a zspage for ``handle`` (``obj_malloc``).

        The object's header gets ``handle | OBJ_ALLOCATED_TAG`` (a huge page keeps it in
        ``page->index`` instead). Returns the encoded object.
        """
        mem = self.m.mem
        handle |= OBJ_ALLOCATED_TAG
        obj = zspage.freeobj
        offset = obj * klass.size
        m_page = zspage.first_page
        for _ in range(offset >> PAGE_SHIFT):
            m_page = int(mem.index_mv[m_page])
        m_offset = offset & PAGE_MASK_LOW
        link = self._word(m_page, m_offset)
        zspage.freeobj = (link >> OBJ_TAG_BITS) & _U32
        if self._is_huge(zspage):
            mem.index_mv[zspage.first_page] = handle
        else:
            self._set_word(m_page, m_offset, handle)
        zspage.inuse += 1
        return self.location_to_obj(m_page, obj)

    def obj_free(self, class_size: int, obj: int) -> None:
        """Put an object back on its zspage's free list (``obj_free``).

        v4.8 writes the link word even for a huge page (its ``page->index`` keeps the stale
        handle); mainline clears ``page->index`` instead.
        """
        if self._legacy:
            obj &= ~OBJ_ALLOCATED_TAG
        f_page, f_objidx = self.obj_to_location(obj)
        f_offset = (class_size * f_objidx) & PAGE_MASK_LOW
        zspage = self.get_zspage(f_page)
        if self._legacy or not zspage.huge:
            self._set_word(f_page, f_offset, (zspage.freeobj << OBJ_TAG_BITS) & _U32)
        else:
            self.m.mem.index_mv[f_page] = 0
        zspage.freeobj = f_objidx
        zspage.inuse -= 1

    def obj_allocated(self, pfn: int, off: int) -> int:
        """Return the handle of the object starting at ``off`` in ``pfn``, 0 if it is free.

        ``obj_allocated`` (mainline) / ``obj_to_head`` + OBJ_ALLOCATED_TAG (v4.8): the header
        word, or ``page->index`` of a huge page.
        """
        mem = self.m.mem
        if self._legacy:
            huge = bool(mem.flags_mv[pfn] & _HUGE_OBJECT)
        else:
            huge = self.get_zspage(pfn).huge
        head = int(mem.index_mv[pfn]) if huge else self._word(pfn, off)
        if not head & OBJ_ALLOCATED_TAG:
            return 0
        return head & ~OBJ_ALLOCATED_TAG

    def _object_span(self, pfn: int, off: int, length: int) -> list[tuple[int, int, int]]:
        """Return the (pfn, offset, length) pieces of ``length`` bytes from ``off`` in ``pfn``."""
        pieces = []
        while length > 0:
            n = min(length, PAGE_SIZE - off)
            pieces.append((pfn, off, n))
            length -= n
            if length > 0:
                pfn = self.get_next_page(pfn)
                if not pfn:
                    raise ModelBug("BUG_ON(!pages[1]): an object runs past its zspage")
                off = 0
        return pieces

    def _read_bytes(self, pfn: int, off: int, length: int) -> bytearray:
        out = bytearray()
        for p, o, n in self._object_span(pfn, off, length):
            out += self._data[p][o: o + n]
        return out

    def _write_bytes(self, pfn: int, off: int, data: bytes | bytearray) -> None:
        pos = 0
        for p, o, n in self._object_span(pfn, off, len(data)):
            self._data[p][o: o + n] = data[pos: pos + n]
            pos += n

    def zs_object_copy(self, klass: SizeClass, dst: int, src: int) -> None:
        """Copy a whole object, header included, across page boundaries (``zs_object_copy``)."""
        s_page, s_idx = self.obj_to_location(src)
        d_page, d_idx = self.obj_to_location(dst)
        s_off = (klass.size * s_idx) & PAGE_MASK_LOW
        d_off = (klass.size * d_idx) & PAGE_MASK_LOW
        self._write_bytes(d_page, d_off, self._read_bytes(s_page, s_off, klass.size))

    def _payload(self, zspage: ZsPage, klass: SizeClass, obj: int) -> tuple[int, int, int]:
        """Return (pfn, offset, length) of an object's payload (after the handle header)."""
        pfn, idx = self.obj_to_location(obj)
        off = (klass.size * idx) & PAGE_MASK_LOW
        if self._is_huge(zspage):
            return pfn, off, klass.size
        off += ZS_HANDLE_SIZE
        if off >= PAGE_SIZE:
            raise ModelBug("an object header straddles a page (ZS_ALIGN violated)")
        return pfn, off, klass.size - ZS_HANDLE_SIZE

    # --- the API ---------------------------------------------------------------------------------

    def zs_lookup_class_index(self, size: int) -> int:
        """Return the class index for ``size``-byte objects (``zs_lookup_class_index``)."""
        return self.size_class[get_size_class_index(size)].index

    def zs_huge_class_size(self) -> int:
        """Return the size from which objects go to a huge class (``zs_huge_class_size``)."""
        return self.huge_class_size

    def zs_get_total_pages(self) -> int:
        """Return the pages the pool holds (``zs_get_total_pages``)."""
        return self.pages_allocated

    def zs_pool_stats(self) -> dict[str, int]:
        """Return ``struct zs_pool_stats`` (``pages_compacted``)."""
        return {"pages_compacted": self.pages_compacted}

    def zs_malloc(self, size: int, gfp: int, nid: int | None = None) -> int:
        """Allocate an object of ``size`` bytes and return its handle (``zs_malloc``).

        The handle header takes ZS_HANDLE_SIZE more bytes, which choose the class. An object
        goes into the fullest zspage with room, or into a new zspage whose pages come from
        the page allocator with ``gfp`` (a pre-4.8 zsmalloc never asks for movable pages).
        Failure: 0 in v4.8, ``-EINVAL``/``-ENOSPC``/``-ENOMEM`` on mainline.
        """
        legacy = self._legacy
        if size <= 0 or size > ZS_MAX_ALLOC_SIZE:
            if legacy:
                return 0
            return -errno.EINVAL if size <= 0 else -errno.ENOSPC
        self._enter()
        try:
            handle = self.cache_alloc_handle()
            klass = self.size_class[get_size_class_index(size + ZS_HANDLE_SIZE)]
            self._class_lock(klass)
            zspage = self.find_get_zspage(klass)
            if zspage is not None:
                obj = self.obj_malloc(klass, zspage, handle)
                self.fix_fullness_group(klass, zspage)
                self.record_obj(handle, obj)
                klass.stats[self._stat_inuse] += 1
                self._class_unlock(klass)
                return handle
            self._class_unlock(klass)
            if not self._movable:
                gfp &= ~_GFP_MOVABLE
            zspage = self.alloc_zspage(klass, gfp, self.m.cpu_node if nid is None else nid)
            if zspage is None:
                self.cache_free_handle(handle)
                return 0 if legacy else -errno.ENOMEM
            self._class_lock(klass)
            obj = self.obj_malloc(klass, zspage, handle)
            newfg = self.get_fullness_group(klass, zspage)
            self.insert_zspage(klass, zspage, newfg)
            zspage.fullness = newfg
            self.record_obj(handle, obj)
            self.pages_allocated += klass.pages_per_zspage
            klass.stats[self._stat_allocated] += klass.objs_per_zspage
            klass.stats[self._stat_inuse] += 1
            if self._movable:
                self.SetZsPageMovable(zspage)
            self._class_unlock(klass)
            return handle
        finally:
            self._inflight -= 1

    def zs_free(self, handle: int) -> None:
        """Free an object (``zs_free``); an emptied zspage is freed, or its free deferred.

        v4.8: pin the handle, read-lock the zspage, lock the class; an emptied zspage that
        is isolated stays for ``zs_page_putback`` to free. Mainline: pool read lock, class
        lock.
        """
        if handle == 0 or (handle < 0 and not self._legacy):
            return  # IS_ERR_OR_NULL
        self._slot(handle)
        if handle in self._mapped:
            raise InvalidArgument(f"handle {handle:#x} is still mapped; zs_unmap_object it "
                                  "before zs_free")
        self._enter()
        try:
            if self._legacy:
                self._zs_free_legacy(handle)
            else:
                self._zs_free_mainline(handle)
            self.cache_free_handle(handle)
        finally:
            self._inflight -= 1

    def _zs_free_legacy(self, handle: int) -> None:
        self.pin_tag(handle)
        obj = self.handle_to_obj(handle)
        f_page, _ = self.obj_to_location(obj)
        zspage = self.get_zspage(f_page)
        self.migrate_read_lock(zspage)
        klass = self.size_class[zspage.klass]
        self._class_lock(klass)
        self.obj_free(klass.size, obj)
        klass.stats[OBJ_USED] -= 1
        fullness = self.fix_fullness_group(klass, zspage)
        if fullness != ZS_EMPTY:
            self.migrate_read_unlock(zspage)
        else:
            isolated = zspage.isolated
            self.migrate_read_unlock(zspage)
            # If zspage is isolated, zs_page_putback will free the zspage.
            if not isolated:
                self.free_zspage(klass, zspage)
        self._class_unlock(klass)
        self.unpin_tag(handle)

    def _zs_free_mainline(self, handle: int) -> None:
        self._pool_read_lock()
        obj = self.handle_to_obj(handle)
        f_page, _ = self.obj_to_location(obj)
        zspage = self.get_zspage(f_page)
        klass = self.size_class[zspage.klass]
        self._class_lock(klass)
        self._pool_read_unlock()
        klass.stats[ZS_OBJS_INUSE] -= 1
        self.obj_free(klass.size, obj)
        fullness = self.fix_fullness_group(klass, zspage)
        if fullness == ZS_INUSE_RATIO_0:
            self.free_zspage(klass, zspage)
        self._class_unlock(klass)

    def _lock_object(self, handle: int) -> tuple[ZsPage, SizeClass, int]:
        """Pin/lock an object against migration and return (zspage, class, obj)."""
        if self._legacy:
            self.pin_tag(handle)
            obj = self.handle_to_obj(handle)
            zspage = self.get_zspage(self.obj_to_location(obj)[0])
            self.migrate_read_lock(zspage)
        else:
            self._pool_read_lock()
            obj = self.handle_to_obj(handle)
            zspage = self.get_zspage(self.obj_to_location(obj)[0])
            self.migrate_read_lock(zspage)
            self._pool_read_unlock()
        return zspage, self.size_class[zspage.klass], obj

    def _unlock_object(self, handle: int, zspage: ZsPage) -> None:
        self.migrate_read_unlock(zspage)
        if self._legacy:
            self.unpin_tag(handle)

    def zs_map_object(self, handle: int, mm: int = ZS_MM_RW) -> bytearray:
        """Map an object and return its payload (``zs_map_object``).

        Returns a buffer of the class's payload length (class size minus the handle header,
        or the whole page of a huge object) holding the stored bytes (ZS_MM_WO: zeros, as
        the kernel skips the read for a straddling object). Until :meth:`zs_unmap_object`
        the object cannot move: v4.8 holds the pin bit and the migrate read lock, mainline
        the zspage read lock. Writes to the buffer reach the pages at unmap unless ZS_MM_RO.
        """
        self._slot(handle)
        if handle in self._mapped:
            raise InvalidArgument(f"handle {handle:#x} is already mapped; only one mapping "
                                  "per object (and per CPU) at a time")
        self._enter()
        try:
            zspage, klass, obj = self._lock_object(handle)
            pfn, off, length = self._payload(zspage, klass, obj)
            buf = bytearray(length) if mm == ZS_MM_WO else self._read_bytes(pfn, off, length)
            self._mapped[handle] = _Mapping(zspage, mm, buf)
            return buf
        finally:
            self._inflight -= 1

    def zs_unmap_object(self, handle: int) -> None:
        """Write the mapping back (unless ZS_MM_RO) and release it (``zs_unmap_object``)."""
        mapping = self._mapped.pop(handle, None)
        if mapping is None:
            raise InvalidArgument(f"handle {handle:#x} is not mapped")
        self._inflight += 1
        try:
            if mapping.mm != ZS_MM_RO:
                zspage = mapping.zspage
                pfn, off, length = self._payload(zspage, self.size_class[zspage.klass],
                                                 self.handle_to_obj(handle))
                self._write_bytes(pfn, off, bytes(mapping.buf[:length]))
            self._unlock_object(handle, mapping.zspage)
        finally:
            self._inflight -= 1

    def zs_obj_read_begin(self, handle: int, mem_len: int | None = None) -> bytes:
        """Start reading an object and return its first ``mem_len`` bytes (``zs_obj_read_begin``).

        The zspage read lock is held until :meth:`zs_obj_read_end` (v6.15+; on a v4.8 pool
        the same as ``zs_map_object(ZS_MM_RO)``).
        """
        buf = self.zs_map_object(handle, ZS_MM_RO)
        return bytes(buf if mem_len is None else buf[:mem_len])

    def zs_obj_read_end(self, handle: int) -> None:
        """Finish a read started with :meth:`zs_obj_read_begin` (``zs_obj_read_end``)."""
        self.zs_unmap_object(handle)

    def zs_obj_write(self, handle: int, data: bytes | bytearray) -> None:
        """Write ``data`` at the start of an object's payload (``zs_obj_write``, v6.15+)."""
        self._slot(handle)
        self._enter()
        try:
            zspage, klass, obj = self._lock_object(handle)
            pfn, off, length = self._payload(zspage, klass, obj)
            if len(data) > length:
                self._unlock_object(handle, zspage)
                raise InvalidArgument(f"{len(data)} bytes do not fit in an object of class "
                                      f"{klass.index} (payload {length} bytes)")
            self._write_bytes(pfn, off, data)
            self._unlock_object(handle, zspage)
        finally:
            self._inflight -= 1

    def zs_obj_read(self, handle: int, mem_len: int) -> bytes:
        """Return the first ``mem_len`` bytes of an object (read_begin + read_end)."""
        data = self.zs_obj_read_begin(handle, mem_len)
        self.zs_obj_read_end(handle)
        return data

    # --- zs_compact -------------------------------------------------------------------------------

    def zs_can_compact(self, klass: SizeClass) -> int:
        """Return the pages compaction could free in a class (``zs_can_compact``)."""
        allocated = klass.stats[self._stat_allocated]
        used = klass.stats[self._stat_inuse]
        if allocated <= used:
            return 0
        return (allocated - used) // klass.objs_per_zspage * klass.pages_per_zspage

    def find_alloced_obj(self, klass: SizeClass, pfn: int, obj_idx: int) -> tuple[int, int]:
        """Return the next allocated object's handle from ``obj_idx`` in the page, and its index.

        v4.8 pins the handle and skips objects whose pin is held (``find_alloced_obj``).
        """
        offset = self.get_first_obj_offset(pfn) + klass.size * obj_idx
        while offset < PAGE_SIZE:
            handle = self.obj_allocated(pfn, offset)
            if handle and (not self._legacy or self.trypin_tag(handle)):
                return handle, obj_idx
            offset += klass.size
            obj_idx += 1
        return 0, obj_idx

    def _migrate_zspage_legacy(self, klass: SizeClass, cc: list[int]) -> int:
        """Move objects from ``cc = [s_page, d_page, obj_idx]`` (v4.8 ``migrate_zspage``)."""
        s_page, d_page, obj_idx = cc
        d_zspage = self.get_zspage(d_page)
        ret = 0
        while True:
            handle, obj_idx = self.find_alloced_obj(klass, s_page, obj_idx)
            if not handle:
                s_page = self.get_next_page(s_page)
                if not s_page:
                    break
                obj_idx = 0
                continue
            if d_zspage.inuse == klass.objs_per_zspage:
                self.unpin_tag(handle)
                ret = -errno.ENOMEM
                break
            used_obj = self.handle_to_obj(handle)
            free_obj = self.obj_malloc(klass, d_zspage, handle)
            klass.stats[OBJ_USED] += 1
            self.zs_object_copy(klass, free_obj, used_obj)
            obj_idx += 1
            # record_obj would drop HANDLE_PIN_BIT, which zs_free et al. spin on: keep it.
            self.record_obj(handle, free_obj | (1 << HANDLE_PIN_BIT))
            self.unpin_tag(handle)
            self.obj_free(klass.size, used_obj)
            klass.stats[OBJ_USED] -= 1
        cc[0] = s_page
        cc[2] = obj_idx
        return ret

    def _isolate_zspage_legacy(self, klass: SizeClass, source: bool) -> ZsPage | None:
        groups = (ZS_ALMOST_EMPTY, ZS_ALMOST_FULL) if source else (ZS_ALMOST_FULL,
                                                                    ZS_ALMOST_EMPTY)
        for fg in groups:
            head = klass.fullness_list[fg]
            if head.next is not head:
                zspage = cast(ZsPage, head.next)
                self.remove_zspage(klass, zspage, fg)
                return zspage
        return None

    def _zs_compact_class_legacy(self, klass: SizeClass) -> None:
        """v4.8 ``__zs_compact``: drain the emptiest zspages into the fullest (class lock held)."""
        self._class_lock(klass)
        src: ZsPage | None = None
        while True:
            src = self._isolate_zspage_legacy(klass, True)
            if src is None:
                break
            if not self.zs_can_compact(klass):
                break
            cc = [src.first_page, 0, 0]
            dst: ZsPage | None = None
            while True:
                dst = self._isolate_zspage_legacy(klass, False)
                if dst is None:
                    break
                cc[1] = dst.first_page
                # If there is no more space in dst_page, resched and see if anyone had
                # allocated another zspage.
                if not self._migrate_zspage_legacy(klass, cc):
                    break
                self.putback_zspage(klass, dst)
            # Stop if we couldn't find slot.
            if dst is None:
                break
            self.putback_zspage(klass, dst)
            if self.putback_zspage(klass, src) == ZS_EMPTY:
                self.free_zspage(klass, src)
                self.pages_compacted += klass.pages_per_zspage
            src = None
            self._class_unlock(klass)
            if self.m.preempt is not None:
                self.m.preempt("cond_resched", -1)
            self._class_lock(klass)
        if src is not None:
            self.putback_zspage(klass, src)
        self._class_unlock(klass)

    def _migrate_zspage_mainline(self, klass: SizeClass, src: ZsPage, dst: ZsPage) -> None:
        """Mainline ``migrate_zspage``: move objects until dst is full or src is empty."""
        obj_idx = 0
        s_page = src.first_page
        while True:
            handle, obj_idx = self.find_alloced_obj(klass, s_page, obj_idx)
            if not handle:
                s_page = self.get_next_page(s_page)
                if not s_page:
                    break
                obj_idx = 0
                continue
            used_obj = self.handle_to_obj(handle)
            free_obj = self.obj_malloc(klass, dst, handle)
            self.zs_object_copy(klass, free_obj, used_obj)
            obj_idx += 1
            self.record_obj(handle, free_obj)
            self.obj_free(klass.size, used_obj)
            if dst.inuse == klass.objs_per_zspage:
                break
            if src.inuse == 0:
                break

    def _isolate_zspage_mainline(self, klass: SizeClass, source: bool) -> ZsPage | None:
        """``isolate_src_zspage`` (RATIO_10 upwards) / ``isolate_dst_zspage`` (RATIO_99 down)."""
        groups = (range(ZS_INUSE_RATIO_10, ZS_INUSE_RATIO_99 + 1) if source
                  else range(ZS_INUSE_RATIO_99, ZS_INUSE_RATIO_10 - 1, -1))
        for fg in groups:
            head = klass.fullness_list[fg]
            if head.next is not head:
                zspage = cast(ZsPage, head.next)
                self.remove_zspage(klass, zspage, fg)
                return zspage
        return None

    def _zs_compact_class_mainline(self, klass: SizeClass) -> int:
        """Mainline ``__zs_compact``; returns the pages it freed."""
        src: ZsPage | None = None
        dst: ZsPage | None = None
        pages_freed = 0
        self._pool_write_lock()
        self._class_lock(klass)
        while self.zs_can_compact(klass):
            if dst is None:
                dst = self._isolate_zspage_mainline(klass, False)
                if dst is None:
                    break
            src = self._isolate_zspage_mainline(klass, True)
            if src is None:
                break
            if not self.zspage_write_trylock(src):
                break
            self._migrate_zspage_mainline(klass, src, dst)
            self.migrate_write_unlock(src)
            fg = self.putback_zspage(klass, src)
            if fg == ZS_INUSE_RATIO_0:
                self.free_zspage(klass, src)
                pages_freed += klass.pages_per_zspage
            src = None
            if self.get_fullness_group(klass, dst) == ZS_INUSE_RATIO_100:
                self.putback_zspage(klass, dst)
                dst = None
                self._class_unlock(klass)
                self._pool_write_unlock()
                if self.m.preempt is not None:
                    self.m.preempt("cond_resched", -1)
                self._pool_write_lock()
                self._class_lock(klass)
        if src is not None:
            self.putback_zspage(klass, src)
        if dst is not None:
            self.putback_zspage(klass, dst)
        self._class_unlock(klass)
        self._pool_write_unlock()
        return pages_freed

    def zs_compact(self) -> int:
        """Compact every class, largest first (``zs_compact``).

        Moves objects from the emptiest zspages into the fullest and frees the emptied ones.
        Returns the cumulative ``pages_compacted`` (v4.8) or the pages freed by this call
        (mainline, which also refuses to run twice at once: ``compaction_in_progress``).
        """
        self._enter()
        try:
            if self._legacy:
                for i in range(ZS_SIZE_CLASSES - 1, -1, -1):
                    klass = self.size_class[i]
                    if klass.index == i:
                        self._zs_compact_class_legacy(klass)
                return self.pages_compacted
            if self.compaction_in_progress:
                return 0
            self.compaction_in_progress = True
            pages_freed = 0
            for i in range(ZS_SIZE_CLASSES - 1, -1, -1):
                klass = self.size_class[i]
                if klass.index == i:
                    pages_freed += self._zs_compact_class_mainline(klass)
            self.pages_compacted += pages_freed
            self.compaction_in_progress = False
            return pages_freed
        finally:
            self._inflight -= 1

    def zs_shrinker_count(self, sc: ShrinkControl | None = None) -> int:
        """Return the pages compaction could free (``zs_shrinker_count``): the sum of
        :meth:`zs_can_compact` over the pool's distinct classes."""
        return sum(map(self.zs_can_compact, self._distinct_classes))

    def zs_shrinker_scan(self, sc: ShrinkControl) -> int:
        """Compact the pool for reclaim (``zs_shrinker_scan``): pages freed, or SHRINK_STOP.

        v4.8 measures the call's work as the growth of ``pages_compacted``; mainline's
        ``zs_compact`` returns it.
        """
        if self._legacy:
            before = self.pages_compacted
            pages_freed = self.zs_compact() - before
        else:
            pages_freed = self.zs_compact()
        return pages_freed if pages_freed else SHRINK_STOP

    # --- migration callbacks (zsmalloc_aops / zsmalloc_mops) ----------------------------------

    def zs_page_isolate(self, page: int, mode: int) -> bool:
        """Let the VM isolate a zspage page (``zs_page_isolate``; page locked by the VM).

        v4.8: refuse an empty zspage (until v4.14) and a zspage that ``zs_compact`` has taken
        off the lists; the first isolated page takes the zspage off its fullness list so no
        object is allocated in it. Mainline: always true (v5.17 removed zspage isolation).
        """
        m = self.m
        mem = m.mem
        pf.VM_BUG_ON_PAGE(pf.PageIsolated(mem, page), mem, page, "PageIsolated(page)")
        if not self._legacy:
            return True
        pf.VM_BUG_ON_PAGE(not mg.PageMovable(m, page), mem, page, "!PageMovable(page)")
        self._inflight += 1
        try:
            zspage = self.get_zspage(page)
            klass = self.size_class[zspage.klass]
            self._class_lock(klass)
            if zspage.inuse == 0 and not self.config.migrate_empty:
                self._class_unlock(klass)
                return False
            # zspage is isolated for object migration
            if _list_empty(zspage) and not zspage.isolated:
                self._class_unlock(klass)
                return False
            # First isolation of a page of this zspage: no more allocations from it.
            if not _list_empty(zspage) and not zspage.isolated:
                self.remove_zspage(klass, zspage, zspage.fullness)
            zspage.isolated += 1
            self._class_unlock(klass)
            return True
        finally:
            self._inflight -= 1

    def replace_sub_page(self, klass: SizeClass, zspage: ZsPage, newpage: int,
                         oldpage: int) -> None:
        """Put ``newpage`` in ``oldpage``'s place in the chain (``replace_sub_page``).

        Rebuilds the chain, copies the first-object offset and a huge page's handle, and
        makes ``newpage`` movable with the pool's mapping.
        """
        mem = self.m.mem
        pages = [newpage if p == oldpage else p for p in self.zspage_pages(zspage)]
        self.create_page_chain(klass, zspage, pages)
        self.set_first_obj_offset(newpage, self.get_first_obj_offset(oldpage))
        if self._is_huge(zspage):
            mem.index_mv[newpage] = mem.index_mv[oldpage]
        mg.SetPageMovable(self.m, newpage, self.mapping)

    def _copy_page(self, newpage: int, page: int) -> None:
        self._data[newpage] = bytearray(self._data[page])
        mem = self.m.mem
        mem.token_mv[newpage] = mem.token_mv[page]

    def zs_page_migrate(self, newpage: int, page: int, mode: mg.MigrateMode) -> int:
        """Move a zspage page to ``newpage`` (``zs_page_migrate``; both pages locked).

        Copies the 4 KiB, rewrites the handle of every object that starts in the page,
        splices ``newpage`` into the chain, takes a reference on it and releases the old
        page (``reset_page`` + ``put_page``). v4.8: -EBUSY for an empty zspage (until
        v4.14), -EAGAIN if an object is pinned. Mainline (v6.15+): -EINVAL if a reader
        holds the zspage lock.
        """
        self._inflight += 1
        try:
            if self._legacy:
                return self._zs_page_migrate_legacy(newpage, page)
            return self._zs_page_migrate_mainline(newpage, page)
        finally:
            self._inflight -= 1

    def _zs_page_migrate_legacy(self, newpage: int, page: int) -> int:
        m = self.m
        mem = m.mem
        pf.VM_BUG_ON_PAGE(not mg.PageMovable(m, page), mem, page, "!PageMovable(page)")
        pf.VM_BUG_ON_PAGE(not pf.PageIsolated(mem, page), mem, page, "!PageIsolated(page)")
        zspage = self.get_zspage(page)
        # Concurrent compactor cannot migrate any subpage in zspage.
        self.migrate_write_lock(zspage)
        klass = self.size_class[zspage.klass]
        size = klass.size
        offset = self.get_first_obj_offset(page)
        self._class_lock(klass)
        try:
            if zspage.inuse == 0:
                if not self.config.migrate_empty:
                    return -errno.EBUSY
                # v4.14: skip the object scan of an empty zspage.
                offset = PAGE_SIZE
            pos = offset
            ret = -errno.EAGAIN
            pinned_all = True
            while pos < PAGE_SIZE:
                handle = self.obj_allocated(page, pos)
                if handle and not self.trypin_tag(handle):
                    pinned_all = False
                    break
                pos += size
            if pinned_all:
                # Here, any user cannot access all objects in the zspage so let's move.
                self._copy_page(newpage, page)
                for addr in range(offset, pos, size):
                    handle = self.obj_allocated(page, addr)
                    if handle:
                        if not self.testpin_tag(handle):
                            raise ModelBug("BUG() in zs_page_migrate: an object of the page "
                                           "lost its pin")
                        _, obj_idx = self.obj_to_location(self.handle_to_obj(handle))
                        self.record_obj(handle, self.location_to_obj(newpage, obj_idx)
                                        | (1 << HANDLE_PIN_BIT))
                self.replace_sub_page(klass, zspage, newpage, page)
                get_page(m, newpage)
                zspage.isolated -= 1
                # Page migration is done so let's putback isolated zspage to the list if
                # @page is the final isolated subpage in the zspage.
                if not zspage.isolated:
                    fg = self.putback_zspage(klass, zspage)
                    if fg == ZS_EMPTY and self.config.migrate_empty:
                        self.kick_deferred_free()  # putback_zspage_deferred (v4.14)
                if self.config.migrate_moves_nr_zspages and m.page_zone(newpage) is not \
                        m.page_zone(page):
                    m.page_zone(page).vm_stat[vs.NR_ZSPAGES] -= 1
                    m.page_zone(newpage).vm_stat[vs.NR_ZSPAGES] += 1
                self.reset_page(page)
                swap.put_page(m, page)
                page = newpage
                self.pages_migrated += 1
                ret = MIGRATEPAGE_SUCCESS
            for addr in range(offset, pos, size):
                handle = self.obj_allocated(page, addr)
                if handle:
                    if not self.testpin_tag(handle):
                        raise ModelBug("BUG() in zs_page_migrate: unpinning an unpinned object")
                    self.unpin_tag(handle)
            return ret
        finally:
            self._class_unlock(klass)
            self.migrate_write_unlock(zspage)

    def _zs_page_migrate_mainline(self, newpage: int, page: int) -> int:
        m = self.m
        mem = m.mem
        pf.VM_BUG_ON_PAGE(not pf.PageIsolated(mem, page), mem, page, "!PageIsolated(page)")
        # The page is locked, so this pointer must remain valid.
        zspage = self.get_zspage(page)
        # The pool lock protects the race between zpage migration and zs_free.
        self._pool_write_lock()
        klass = self.size_class[zspage.klass]
        # The class lock protects zpage alloc/free in the zspage.
        self._class_lock(klass)
        if self.config.zspage_trylock_migrate:
            locked = self.zspage_write_trylock(zspage)
        else:
            self.migrate_write_lock(zspage)
            locked = True
        if not locked:
            self._class_unlock(klass)
            self._pool_write_unlock()
            return -errno.EINVAL
        # We're committed, tell the world that this is a Zsmalloc page.
        if self.config.page_type_zsmalloc:
            mem.mapcount_mv[newpage] = pf.PAGE_TYPE_ZSMALLOC
        offset = self.get_first_obj_offset(page)
        size = klass.size
        # Here, any user cannot access all objects in the zspage so let's move.
        self._copy_page(newpage, page)
        for addr in range(offset, PAGE_SIZE, size):
            handle = self.obj_allocated(page, addr)
            if handle:
                _, obj_idx = self.obj_to_location(self.handle_to_obj(handle))
                self.record_obj(handle, self.location_to_obj(newpage, obj_idx))
        self.replace_sub_page(klass, zspage, newpage, page)
        # Since we complete the data copy and set up new zspage structure, it's okay to
        # release the locks.
        self._pool_write_unlock()
        self._class_unlock(klass)
        self.migrate_write_unlock(zspage)
        get_page(m, newpage)
        if self.config.migrate_moves_nr_zspages and m.page_zone(newpage) is not \
                m.page_zone(page):
            m.page_zone(page).vm_stat[vs.NR_ZSPAGES] -= 1
            m.page_zone(newpage).vm_stat[vs.NR_ZSPAGES] += 1
        self.reset_page(page)
        swap.put_page(m, page)
        self.pages_migrated += 1
        return MIGRATEPAGE_SUCCESS

    def zs_page_putback(self, page: int) -> None:
        """Take back a page whose migration failed (``zs_page_putback``; page locked).

        v4.8: the last isolated page puts the zspage back on its list; an empty zspage is
        then freed by the deferred work (the page lock is held here). Mainline: nothing.
        """
        m = self.m
        mem = m.mem
        pf.VM_BUG_ON_PAGE(not pf.PageIsolated(mem, page), mem, page, "!PageIsolated(page)")
        if not self._legacy:
            return
        pf.VM_BUG_ON_PAGE(not mg.PageMovable(m, page), mem, page, "!PageMovable(page)")
        self._inflight += 1
        try:
            zspage = self.get_zspage(page)
            klass = self.size_class[zspage.klass]
            self._class_lock(klass)
            zspage.isolated -= 1
            if not zspage.isolated:
                fg = self.putback_zspage(klass, zspage)
                # Due to page_lock, we cannot free zspage immediately so let's defer.
                if fg == ZS_EMPTY:
                    self.kick_deferred_free()
            self._class_unlock(klass)
        finally:
            self._inflight -= 1

    # The a_ops the VM calls (pagelab.mm.migrate.NonLruMovableOps).

    def isolate_page(self, m: Machine, page: int, mode: int) -> bool:
        """``a_ops->isolate_page``: :meth:`zs_page_isolate`."""
        return self.zs_page_isolate(page, mode)

    def migratepage(self, m: Machine, mapping: AddressSpace, newpage: int, page: int,
                    mode: mg.MigrateMode) -> int:
        """``a_ops->migratepage``: :meth:`zs_page_migrate`."""
        return self.zs_page_migrate(newpage, page, mode)

    def putback_page(self, m: Machine, page: int) -> None:
        """``a_ops->putback_page``: :meth:`zs_page_putback`."""
        self.zs_page_putback(page)

    # --- teardown ------------------------------------------------------------------------------

    def zs_destroy_pool(self) -> None:
        """Destroy the pool (``zs_destroy_pool``): flush the free work; no object may remain."""
        if self.destroyed:
            return
        self.flush_work()
        if self._nr_handles or self.zspages:
            raise InvalidArgument(f"zsmalloc pool {self.name!r} still holds {self._nr_handles} "
                                  f"objects in {len(self.zspages)} zspages; zs_free them first")
        self.destroyed = True
        m = self.m
        unregister_shrinker(m, self.shrinker)
        if self.check in m.state_checkers:
            m.state_checkers.remove(self.check)
        pools = _POOLS.get(m, [])
        if self in pools:
            pools.remove(self)
        m.mappings.pop(self.mapping.id, None)

    # --- introspection and the invariant check -------------------------------------------------

    def pages(self) -> list[int]:
        """Return every page the pool holds (pfns, in no particular order)."""
        return list(self._data)

    def handles(self) -> list[int]:
        """Return every live handle."""
        return [slot << 3 for slot, v in enumerate(self._hval) if v >= 0]

    def object_location(self, handle: int) -> tuple[int, int]:
        """Return ``(pfn, byte offset)`` where the object of ``handle`` starts."""
        self._slot(handle)
        pfn, idx = self.obj_to_location(self.handle_to_obj(handle))
        klass = self.size_class[self.get_zspage(pfn).klass]
        return pfn, (klass.size * idx) & PAGE_MASK_LOW

    def class_of(self, handle: int) -> SizeClass:
        """Return the size class an object lives in."""
        self._slot(handle)
        pfn, _ = self.obj_to_location(self.handle_to_obj(handle))
        return self.size_class[self.get_zspage(pfn).klass]

    def check(self) -> list[str]:
        """Return every inconsistency of the pool; registered with ``m.state_checkers``.

        Checks the fullness lists and their counts, each zspage's chain (private, index
        links, PG_private/PG_private_2, page type, first-object offsets), its objects (the
        free list, ``inuse``, every allocated header against its handle's encoded location),
        the class and pool counters, and that every page is owned: refcount 1 (2 while
        isolated by the VM, with PG_isolated), mapping ``pool mapping | 0x2`` when movable.
        Skipped while an operation on the pool is in flight.
        """
        if self._inflight or self.destroyed:
            return []
        problems: list[str] = []
        try:
            self._check(problems)
        except ModelBug as exc:  # a broken chain found by get_zspage & co.
            problems.append(f"zsmalloc {self.name}: {exc}")
        return problems[:20]

    def _check(self, problems: list[str]) -> None:
        name = f"zsmalloc {self.name}"
        legacy = self._legacy
        on_list: dict[int, int] = {}
        for i, klass in enumerate(self.size_class):
            if klass.index != i:
                continue
            for fg, head in enumerate(klass.fullness_list):
                n = 0
                prev: _ListNode = head
                for zspage in _list_entries(head):
                    if zspage.prev is not prev:
                        problems.append(f"{name} class {i} list {fg}: broken prev link")
                        break
                    prev = zspage
                    n += 1
                    on_list[zspage.id] = fg
                    if zspage.klass != i:
                        problems.append(f"{name}: {zspage} on the lists of class {i}")
                    if zspage.fullness != fg:
                        problems.append(f"{name}: {zspage} is on list {fg}")
                    if self.get_fullness_group(klass, zspage) != fg:
                        problems.append(f"{name}: {zspage} belongs in group "
                                        f"{self.get_fullness_group(klass, zspage)}, is on {fg}")
                    if n > len(self.zspages):
                        problems.append(f"{name} class {i} list {fg}: cycle")
                        break
                # v4.8 never took spliced-off empty zspages out of CLASS_EMPTY.
                if not (legacy and fg == ZS_EMPTY) and klass.stats[fg] != n:
                    problems.append(f"{name} class {i}: stat of group {fg} is "
                                    f"{klass.stats[fg]}, the list holds {n}")
        owned: set[int] = set()
        allocated: dict[int, int] = {}
        used: dict[int, int] = {}
        pages_total = 0
        headers: dict[int, int] = {}
        for zid, zspage in self.zspages.items():
            if zspage.magic != ZSPAGE_MAGIC or zspage.id != zid:
                problems.append(f"{name}: {zspage} has bad magic or id")
                continue
            klass = self.size_class[zspage.klass]
            allocated[klass.index] = allocated.get(klass.index, 0) + klass.objs_per_zspage
            used[klass.index] = used.get(klass.index, 0) + zspage.inuse
            pages_total += klass.pages_per_zspage
            if zid not in on_list and not (legacy and zspage.isolated):
                problems.append(f"{name}: {zspage} is on no fullness list and not isolated")
            if legacy and zspage.isolated and zid in on_list:
                problems.append(f"{name}: isolated {zspage} is on a fullness list")
            self._check_zspage(zspage, klass, owned, headers, problems)
        for i, klass in enumerate(self.size_class):
            if klass.index != i:
                continue
            if klass.stats[self._stat_allocated] != allocated.get(i, 0):
                problems.append(f"{name} class {i}: OBJ_ALLOCATED "
                                f"{klass.stats[self._stat_allocated]}, zspages hold "
                                f"{allocated.get(i, 0)}")
            if klass.stats[self._stat_inuse] != used.get(i, 0):
                problems.append(f"{name} class {i}: OBJ_USED {klass.stats[self._stat_inuse]}, "
                                f"zspages have {used.get(i, 0)} in use")
        if self.pages_allocated != pages_total:
            problems.append(f"{name}: pages_allocated {self.pages_allocated}, zspages hold "
                            f"{pages_total}")
        if set(self._data) != owned:
            stray = sorted(set(self._data) - owned)[:5]
            missing = sorted(owned - set(self._data))[:5]
            problems.append(f"{name}: page bytes kept for {stray} outside any zspage, "
                            f"missing for {missing}")
        live = {slot << 3 for slot, v in enumerate(self._hval) if v >= 0}
        if len(live) != self._nr_handles:
            problems.append(f"{name}: {len(live)} live handles, counted {self._nr_handles}")
        if set(headers) != live:
            missing = sorted(live - set(headers))[:5]
            extra = sorted(set(headers) - live)[:5]
            problems.append(f"{name}: handles without an object {missing}, objects with a dead "
                            f"handle {extra}")
        problems.extend(f"{name}: mapped handle {handle:#x} is not live"
                        for handle in self._mapped if handle not in live)

    def _check_zspage(self, zspage: ZsPage, klass: SizeClass, owned: set[int],
                      headers: dict[int, int], problems: list[str]) -> None:
        m = self.m
        mem = m.mem
        name = f"zsmalloc {self.name} {zspage}"
        cfg = self.config
        pages: list[int] = []
        pfn = zspage.first_page
        while pfn and len(pages) <= klass.pages_per_zspage:
            pages.append(pfn)
            pfn = self.get_next_page(pfn) if mem.private_mv[pfn] == zspage.id else 0
        if len(pages) != klass.pages_per_zspage or len(set(pages)) != len(pages):
            problems.append(f"{name}: chain {[hex(p) for p in pages]} is not "
                            f"{klass.pages_per_zspage} distinct pages")
            return
        huge = klass.objs_per_zspage == 1 and klass.pages_per_zspage == 1
        isolated_pages = 0
        for i, page in enumerate(pages):
            owned.add(page)
            flags = mem.flags_mv[page]
            where = f"{name} page {i} pfn {page:#x}"
            if mem.private_mv[page] != zspage.id:
                problems.append(f"{where}: private {mem.private_mv[page]}")
            if bool(flags & _PRIVATE) != (i == 0):
                problems.append(f"{where}: PG_private {'set' if i else 'clear'}")
            if cfg.last_page_private2 and bool(flags & _PRIVATE_2) != (i == len(pages) - 1):
                problems.append(f"{where}: PG_private_2 wrong for its place in the chain")
            if self._legacy and bool(flags & _HUGE_OBJECT) != (huge and i == 0):
                problems.append(f"{where}: PG_owner_priv_1 (HugeObject) wrong")
            if not self._legacy and zspage.huge != huge:
                problems.append(f"{name}: huge bit {zspage.huge} for a class with "
                                f"{klass.objs_per_zspage} objects")
            if cfg.page_type_zsmalloc and not pf.PageZsmalloc(mem, page):
                problems.append(f"{where}: not PageZsmalloc: {mem.dump_page(page)}")
            expected_off = (-(i * PAGE_SIZE)) % klass.size if i else 0
            if self.get_first_obj_offset(page) != expected_off:
                problems.append(f"{where}: first_obj_offset {self.get_first_obj_offset(page)},"
                                f" expected {expected_off}")
            if i + 1 < len(pages) and mem.index_mv[page] != pages[i + 1]:
                problems.append(f"{where}: index does not link to the next page")
            if i + 1 == len(pages) and not huge and mem.index_mv[page] != 0:
                problems.append(f"{where}: last page links on to {mem.index_mv[page]:#x}")
            isolated = bool(flags & _ISOLATED)
            isolated_pages += isolated
            ref = mem.refcount_mv[page]
            if ref != 1 + isolated:
                problems.append(f"{where}: refcount {ref} (isolated={isolated}): "
                                f"{mem.dump_page(page)}")
            if self._movable:
                if mem.mapping_mv[page] != self.mapping.mapping_word | pf.PAGE_MAPPING_MOVABLE:
                    problems.append(f"{where}: mapping {mem.mapping_mv[page]:#x} is not the "
                                    f"pool's | PAGE_MAPPING_MOVABLE")
            else:
                if mem.mapping_mv[page] != 0 or isolated:
                    problems.append(f"{where}: an unmovable zspage page has mapping "
                                    f"{mem.mapping_mv[page]:#x} / PG_isolated {isolated}")
            if page not in self._data:
                problems.append(f"{where}: no bytes")
                return
        if self._legacy and isolated_pages != zspage.isolated:
            problems.append(f"{name}: {isolated_pages} pages PG_isolated, zspage counts "
                            f"{zspage.isolated}")
        # Objects: walk every object of the zspage, in index order.
        size = klass.size
        n_alloc = 0
        free_state: dict[int, bool] = {}
        for idx in range(klass.objs_per_zspage):
            offset = idx * size
            page = pages[offset >> PAGE_SHIFT]
            off = offset & PAGE_MASK_LOW
            if huge:
                # v4.8 leaves a freed huge object's handle in page->index.
                handle = self.obj_allocated(page, off) if zspage.inuse else 0
            else:
                handle = self.obj_allocated(page, off)
            if handle:
                n_alloc += 1
                if handle in headers:
                    problems.append(f"{name}: handle {handle:#x} heads two objects")
                headers[handle] = page
                slot = handle >> 3
                if slot >= len(self._hval) or self._hval[slot] < 0:
                    problems.append(f"{name}: object {idx} has dead handle {handle:#x}")
                    continue
                value = self._hval[slot]
                if self._legacy:
                    value &= ~(1 << HANDLE_PIN_BIT)
                if value != self.location_to_obj(page, idx):
                    problems.append(f"{name}: handle {handle:#x} holds {value:#x}, the object is "
                                    f"{idx} in pfn {page:#x}")
            free_state[idx] = not handle
        if n_alloc != zspage.inuse:
            problems.append(f"{name}: {n_alloc} objects carry a handle, inuse {zspage.inuse}")
            return
        # The free list: objs - inuse entries from freeobj, each a free object, no repeats.
        idx = zspage.freeobj
        seen: set[int] = set()
        for _ in range(klass.objs_per_zspage - zspage.inuse):
            if idx >= klass.objs_per_zspage or idx in seen or not free_state.get(idx, False):
                problems.append(f"{name}: free list reaches object {idx} (seen {len(seen)})")
                return
            seen.add(idx)
            offset = idx * size
            idx = (self._word(pages[offset >> PAGE_SHIFT], offset & PAGE_MASK_LOW)
                   >> OBJ_TAG_BITS) & _U32
