"""zram: a compressed RAM block device over zsmalloc.

Models ``drivers/block/zram/zram_drv.c`` at the machine's profile: v4.8 (and v4.7 for
the pre-4.8 profile) or mainline v6.16. Each 4 KiB block ("page") of the disk is a slot of
the table: empty, a same-filled page (stored as a flag and its fill word, no memory), a
compressed object in the zsmalloc pool, or an incompressible ("huge") page stored whole.

>>> from pagelab import Machine
>>> from pagelab.drivers.zram import ContentModel, Zram
>>> m = Machine.build(memory="128M")
>>> z = Zram(m, disksize="16M", content=ContentModel(compressibility=0.7, seed=1))
>>> for i in range(64):
...     _ = z.write_token(i, 1000 + i)
>>> z.read_page(5) == z.content.page(1005)
True
>>> len(z.mm_stat().split())
9
>>> m.check_state()

Page contents come from a :class:`ContentModel`: a seeded generator that turns a content
token (the model's stand-in for a page's bytes) into 4096 real bytes, a tunable fraction of
them random and the rest a repeated motif, with optional same-filled pages. Compressed sizes
are those of real compression: lz4 (zram's lz4 backend, through the ``lz4`` package) by
default, or raw deflate from the standard library's zlib (4 KiB window; zram's "deflate"
backend exists since v6.12). The kernel's default is lzo-rle, whose sizes are close to lz4's.

Version differences modelled (v4.8 → v6.16):

* same-page detection: v4.8 only recognises zero pages (ZRAM_ZERO, ``zero_pages``); v4.13
  (8e19d540d107, "zram: extend zero pages to same element pages") stores any page made of one
  repeated ``unsigned long`` (ZRAM_SAME, ``same_pages``, counted in ``pages_stored``).
* incompressible pages: v4.8 stores a page whose compressed size exceeds ``max_zpage_size``
  (3072) uncompressed; mainline stores it whole when the compressed size reaches
  ``zs_huge_class_size()`` (v4.18), flags it ZRAM_HUGE and counts ``huge_pages`` and
  ``huge_pages_since`` (mm_stat fields 8 and 9).
* handle allocation: v4.8 tries ``__GFP_KSWAPD_RECLAIM | __GFP_NOWARN | __GFP_HIGHMEM |
  __GFP_MOVABLE`` and on failure counts a write stall and retries with ``GFP_NOIO |
  __GFP_HIGHMEM | __GFP_MOVABLE``, recompressing; v6.15 ("zram: remove two-staged handle
  allocation") makes one ``GFP_NOIO | __GFP_HIGHMEM | __GFP_MOVABLE`` attempt. v4.7 (the
  pre-4.8 profile) has the same two stages without ``__GFP_MOVABLE`` (the seed's zram patch,
  v5 of May 2016, adds the flag to both; the stages came with v4.7's per-cpu compression
  streams, 43209ea3d4a2); before v4.7 one ``GFP_NOIO | __GFP_HIGHMEM`` attempt.
* the old contents of a slot: v4.8 frees them after the new object is stored, mainline first.
* ``mm_stat``: 7 fields in v4.8, 9 in mainline (``mm_stat_show``).

Named simplifications: I/O is whole pages (no partial bvecs), there is no backing device
(writeback), no recompression, no idle tracking, and the slot lock is not modelled (callers
are sequential per slot).
"""

from __future__ import annotations

import errno
import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import lz4.block
import numpy as np

from pagelab.errors import InvalidArgument, ModelBug
from pagelab.mm import gfp as _gfp
from pagelab.mm.mm_init import parse_size
from pagelab.mm.zsmalloc import (
    ZS_MM_RO,
    ZS_MM_WO,
    ZsConfig,
    ZsPool,
    kernel_version_tuple,
    zs_create_pool,
)

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["ZRAM_HUGE", "ZRAM_SAME", "ZRAM_ZERO", "ContentModel", "Zram", "ZramStats",
           "format_mm_stat", "page_same_filled"]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
_U64 = (1 << 64) - 1
#: Compression backends the model has (``/sys/block/zramN/comp_algorithm``).
COMP_ALGORITHMS = ("lz4", "deflate")

# enum zram_pageflags (the model keeps them in their own column)
ZRAM_SAME = 1 << 0  # v4.13+: page of one repeated word; handle holds the word
ZRAM_ZERO = 1 << 0  # v4.8 name of the same bit, zero pages only
ZRAM_HUGE = 1 << 1  # stored uncompressed

#: v4.8: ``max_zpage_size = PAGE_SIZE / 4 * 3``; larger compressed pages are stored whole.
MAX_ZPAGE_SIZE_V48 = PAGE_SIZE // 4 * 3

#: zram_write_page fast path, v4.8 .. v6.14.
GFP_ZRAM_FAST = (_gfp.__GFP_KSWAPD_RECLAIM | _gfp.__GFP_NOWARN | _gfp.__GFP_HIGHMEM
                 | _gfp.__GFP_MOVABLE)
#: Slow path (v4.8 .. v6.14) and the only attempt since v6.15.
GFP_ZRAM_SLOW = _gfp.GFP_NOIO | _gfp.__GFP_HIGHMEM | _gfp.__GFP_MOVABLE
#: v4.7: the two stages without ``__GFP_MOVABLE`` (what the seed's zram patch changed).
GFP_ZRAM_FAST_V47 = GFP_ZRAM_FAST & ~_gfp.__GFP_MOVABLE
GFP_ZRAM_SLOW_V47 = GFP_ZRAM_SLOW & ~_gfp.__GFP_MOVABLE


def page_same_filled(data: bytes) -> int | None:
    """Return the repeated word if the page is one ``unsigned long`` repeated, else None.

    Models ``page_same_filled`` (v4.13+), which compares the first and last words first.
    """
    first = data[:8]
    if data[-8:] != first:
        return None
    if data != first * (PAGE_SIZE // 8):
        return None
    return int.from_bytes(first, "little")


def format_mm_stat(values: Sequence[int]) -> str:
    """``mm_stat``'s line: each column ``%8llu``-style, one space apart (``mm_stat_show``)."""
    return " ".join(f"{v:8d}" for v in values) + "\n"


class ContentModel:
    """Page contents from content tokens, with tunable compressibility.

    ``page(token)`` is deterministic in ``(seed, token)``. A page is, with probability
    ``same_filled``, one repeated 8-byte word (zero with probability ``zero_share`` of
    those); otherwise 16 chunks of 256 bytes, each beginning with random bytes and filled up
    with a 16-byte motif of the page, the random share being ``1 - compressibility`` (varied
    per page by up to ``spread``). Compressibility 0 gives random, incompressible pages;
    1 gives pages that deflate to a few dozen bytes.
    """

    def __init__(self, compressibility: float = 0.6, *, spread: float = 0.0,
                 same_filled: float = 0.0, zero_share: float = 0.8, seed: int = 0) -> None:
        for label, value in (("compressibility", compressibility), ("spread", spread),
                             ("same_filled", same_filled), ("zero_share", zero_share)):
            if not 0.0 <= value <= 1.0:
                raise InvalidArgument(f"{label}={value}: give a fraction between 0 and 1")
        self.compressibility = compressibility
        self.spread = spread
        self.same_filled = same_filled
        self.zero_share = zero_share
        self.seed = seed

    def __repr__(self) -> str:
        return (f"ContentModel(compressibility={self.compressibility}, spread={self.spread}, "
                f"same_filled={self.same_filled}, seed={self.seed})")

    def page(self, token: int) -> bytes:
        """Return the 4096 bytes of the page whose content token is ``token``.

        The bytes come from SHAKE-128 of ``(seed, token)``: the first 32 decide same-filled,
        zero and the per-page compressibility; then a 16-byte motif and the random bytes.
        """
        key = (self.seed & _U64).to_bytes(8, "little") + (token & _U64).to_bytes(8, "little")
        header = hashlib.shake_128(key).digest(32)
        u = [int.from_bytes(header[i: i + 8], "little") / 2.0 ** 64 for i in range(0, 24, 8)]
        if self.same_filled and u[0] < self.same_filled:
            word = header[24:32] if u[1] >= self.zero_share else bytes(8)
            return word * (PAGE_SIZE // 8)
        c = self.compressibility
        if self.spread:
            c = min(1.0, max(0.0, c + self.spread * (2.0 * u[2] - 1.0)))
        n_random = round((1.0 - c) * 256)
        stream = hashlib.shake_128(key).digest(48 + 16 * n_random)
        motif = stream[32:48] * 16
        random_part = stream[48:]
        chunks = [random_part[i * n_random: (i + 1) * n_random] + motif[: 256 - n_random]
                  for i in range(16)]
        return b"".join(chunks)


@dataclass
class ZramStats:
    """``struct zram_stats`` (the fields the model keeps)."""

    compr_data_size: int = 0
    pages_stored: int = 0
    same_pages: int = 0  # v4.8: zero_pages
    huge_pages: int = 0
    huge_pages_since: int = 0
    max_used_pages: int = 0
    writestall: int = 0
    notify_free: int = 0
    failed_reads: int = 0
    failed_writes: int = 0


class Zram:
    """One zram device (``struct zram``) with its table and zsmalloc pool.

    Args:
        m: the machine (its profile picks v4.7, v4.8 or mainline behaviour).
        disksize: the device size (``/sys/block/zramN/disksize``), rounded to pages.
        mem_limit: most memory the pool may use (``mem_limit``), 0 for none.
        content: the content model ``write_token`` uses.
        comp_algorithm: "lz4" (the default: the kernel's lz4 backend, through the lz4
            package's block format) or "deflate" (raw deflate, zlib, 4 KiB window; zram has a
            deflate backend since v6.12).
        comp_level: deflate level (zlib 1..9), for ``comp_algorithm="deflate"``.
        name: the device name, also the pool's.
        movable: allocate the pool's pages ``__GFP_MOVABLE`` and let zsmalloc publish them
            to migration where the kernel has the framework (the seed's "zram: use
            __GFP_MOVABLE for memory allocation"); False keeps them unmovable on any kernel.
    """

    def __init__(self, m: Machine, disksize: str | int = "64M", *, mem_limit: str | int = 0,
                 content: ContentModel | None = None, comp_algorithm: str = "lz4",
                 comp_level: int = 1, name: str = "zram0", movable: bool = True) -> None:
        size = parse_size(disksize)
        if size <= 0:
            raise InvalidArgument(f"disksize {disksize!r}: give a positive size such as '64M'")
        if comp_algorithm not in COMP_ALGORITHMS:
            raise InvalidArgument(f"comp_algorithm {comp_algorithm!r}: use one of "
                                  f"{', '.join(COMP_ALGORITHMS)}")
        if not 1 <= comp_level <= 9:
            raise InvalidArgument(f"comp_level={comp_level}: deflate levels are 1..9")
        self.m = m
        self.name = name
        self.version = kernel_version_tuple(m.profile.kernel_version)
        self.content = content if content is not None else ContentModel()
        self.comp_level = comp_level
        self.comp_algorithm = comp_algorithm
        self.disksize = -(-size // PAGE_SIZE) * PAGE_SIZE  # PAGE_ALIGN
        self.nr_pages = self.disksize >> PAGE_SHIFT
        self.limit_pages = -(-parse_size(mem_limit) // PAGE_SIZE)
        # zram_meta_alloc: the table, then the pool.
        self.handle = np.zeros(self.nr_pages, dtype=np.int64)
        self.obj_size = np.zeros(self.nr_pages, dtype=np.int32)
        self.flags = np.zeros(self.nr_pages, dtype=np.uint8)
        self._handle = self.handle.data
        self._size = self.obj_size.data
        self._flags = self.flags.data
        self.stats = ZramStats()
        self._movable = movable and m.profile.non_lru_movable
        self.pool: ZsPool = zs_create_pool(
            m, name, replace(ZsConfig.for_profile(m.profile), movable=self._movable))
        v = self.version
        self._same_filled = v >= (4, 13)
        self._huge_by_class = v >= (4, 18)
        self._free_first = v >= (5, 0)
        self._single_alloc = v >= (6, 15)
        #: v4.18+: ``huge_class_size = zs_huge_class_size(zram->mem_pool)``.
        self.huge_class_size = self.pool.zs_huge_class_size()
        self.reset_done = False
        m.state_checkers.append(self.check)

    def __repr__(self) -> str:
        return (f"Zram({self.name}, disksize={self.disksize >> 20}M, "
                f"stored={self.stats.pages_stored}, pool_pages={self.pool.zs_get_total_pages()})")

    # --- compression ---------------------------------------------------------------------------

    def zcomp_compress(self, data: bytes) -> bytes:
        """Compress a page with the device's algorithm (lz4 block, or raw deflate)."""
        if self.comp_algorithm == "lz4":
            return bytes(lz4.block.compress(data, store_size=False))
        return zlib.compress(data, self.comp_level, -12)

    def zcomp_decompress(self, data: bytes) -> bytes:
        """Decompress a page; a wrong result is a model bug (stored bytes were corrupted)."""
        try:
            if self.comp_algorithm == "lz4":
                out = bytes(lz4.block.decompress(data, uncompressed_size=PAGE_SIZE))
            else:
                out = zlib.decompress(data, -15)
        except (zlib.error, lz4.block.LZ4BlockError) as exc:
            raise ModelBug(f"zram {self.name}: stored object does not decompress: {exc}") from None
        if len(out) != PAGE_SIZE:
            raise ModelBug(f"zram {self.name}: decompressed {len(out)} bytes, not a page")
        return out

    # --- slots -----------------------------------------------------------------------------------

    def _index(self, index: int) -> None:
        if self.reset_done:
            raise InvalidArgument(f"zram {self.name} was reset; create a new device")
        if not 0 <= index < self.nr_pages:
            raise InvalidArgument(f"block {index} is outside zram {self.name} "
                                  f"(0..{self.nr_pages - 1})")

    def update_used_max(self, pages: int) -> None:
        """Raise ``max_used_pages`` to ``pages`` (``update_used_max``)."""
        self.stats.max_used_pages = max(self.stats.max_used_pages, pages)

    def zram_can_store_page(self) -> bool:
        """Return whether the pool is within ``mem_limit`` (``zram_can_store_page``)."""
        alloced_pages = self.pool.zs_get_total_pages()
        self.update_used_max(alloced_pages)
        return not self.limit_pages or alloced_pages <= self.limit_pages

    def zram_free_page(self, index: int) -> None:
        """Drop whatever slot ``index`` holds (``zram_free_page``)."""
        st = self.stats
        flags = self._flags[index]
        handle = int(self._handle[index])
        if not self._same_filled:
            # v4.8: a zero page has no handle, only the flag.
            if not handle:
                if flags & ZRAM_ZERO:
                    self._flags[index] = 0
                    st.same_pages -= 1
                return
            self.pool.zs_free(handle)
            st.compr_data_size -= self._size[index]
            st.pages_stored -= 1
            self._handle[index] = 0
            self._size[index] = 0
            self._flags[index] = 0
            return
        if flags & ZRAM_HUGE:
            st.huge_pages -= 1
        if flags & ZRAM_SAME:
            st.same_pages -= 1
        elif not handle:
            return
        else:
            self.pool.zs_free(handle)
            st.compr_data_size -= self._size[index]
        st.pages_stored -= 1
        self._handle[index] = 0
        self._size[index] = 0
        self._flags[index] = 0

    def write_page(self, index: int, data: bytes | bytearray) -> int:
        """Store 4096 bytes in block ``index`` (``zram_write_page``); 0 or a negative errno."""
        self._index(index)
        if len(data) != PAGE_SIZE:
            raise InvalidArgument(f"write_page takes {PAGE_SIZE} bytes, got {len(data)}")
        data = bytes(data)
        if self._same_filled:
            ret = self._write_page_mainline(index, data)
        else:
            ret = self._write_page_v48(index, data)
        if ret < 0:
            self.stats.failed_writes += 1
        return ret

    def write_token(self, index: int, token: int) -> int:
        """Store the page whose content token is ``token`` (its bytes from the content model)."""
        return self.write_page(index, self.content.page(token))

    def _zs_store(self, handle: int, payload: bytes) -> None:
        pool = self.pool
        if self.version >= (6, 15):
            pool.zs_obj_write(handle, payload)
        else:
            buf = pool.zs_map_object(handle, ZS_MM_WO)
            buf[: len(payload)] = payload
            pool.zs_unmap_object(handle)

    def _write_page_mainline(self, index: int, data: bytes) -> int:
        st = self.stats
        pool = self.pool
        if self._free_first:
            self.zram_free_page(index)
        element = page_same_filled(data)
        if element is not None:
            if not self._free_first:
                self.zram_free_page(index)
            self._flags[index] = ZRAM_SAME
            self._handle[index] = element if element < 1 << 63 else element - (1 << 64)
            st.same_pages += 1
            st.pages_stored += 1
            return 0
        comp = self.zcomp_compress(data)
        comp_len = len(comp)
        if comp_len >= self.huge_class_size:
            return self._write_incompressible_page(index, data)
        handle = self._alloc_handle(comp_len)
        if handle <= 0:
            return handle if handle < 0 else -errno.ENOMEM
        if not self.zram_can_store_page():
            pool.zs_free(handle)
            return -errno.ENOMEM
        self._zs_store(handle, comp)
        if not self._free_first:
            self.zram_free_page(index)
        self._handle[index] = handle
        self._size[index] = comp_len
        st.pages_stored += 1
        st.compr_data_size += comp_len
        return 0

    def _write_incompressible_page(self, index: int, data: bytes) -> int:
        """Store a page whole (``write_incompressible_page``, v6.13+; earlier inline)."""
        st = self.stats
        handle = self.pool.zs_malloc(PAGE_SIZE, self._gfp_slow())
        if handle <= 0:
            return handle if handle < 0 else -errno.ENOMEM
        if not self.zram_can_store_page():
            self.pool.zs_free(handle)
            return -errno.ENOMEM
        self._zs_store(handle, data)
        self._flags[index] = ZRAM_HUGE
        self._handle[index] = handle
        self._size[index] = PAGE_SIZE
        st.compr_data_size += PAGE_SIZE
        st.huge_pages += 1
        st.huge_pages_since += 1
        st.pages_stored += 1
        return 0

    def _alloc_handle(self, size: int) -> int:
        """zram's handle allocation in ``zram_bvec_write``/``zram_write_page``.

        v4.7..v6.14 try without direct reclaim first and, failing, count a write stall and
        retry with ``GFP_NOIO`` (the kernel then compresses again, ``compress_again``: the
        same bytes, so the model keeps the first result); v6.15 makes one ``GFP_NOIO``
        attempt. Returns the handle, or zs_malloc's failure (0, or -errno since v6.x).
        """
        pool = self.pool
        if self._single_alloc:
            return pool.zs_malloc(size, self._gfp_slow())
        handle = pool.zs_malloc(size, self._gfp_fast())
        if handle <= 0:
            self.stats.writestall += 1
            handle = pool.zs_malloc(size, self._gfp_slow())
        return handle

    def _gfp_fast(self) -> int:
        return GFP_ZRAM_FAST if self._movable else GFP_ZRAM_FAST_V47

    def _gfp_slow(self) -> int:
        return GFP_ZRAM_SLOW if self._movable else GFP_ZRAM_SLOW_V47

    def _write_page_v48(self, index: int, data: bytes) -> int:
        """v4.8 ``zram_bvec_write`` for a whole page (v4.7 with the pre-4.8 profile)."""
        st = self.stats
        pool = self.pool
        if data.count(0) == PAGE_SIZE:  # page_zero_filled
            self.zram_free_page(index)
            self._flags[index] = ZRAM_ZERO
            st.same_pages += 1
            return 0
        comp = self.zcomp_compress(data)
        clen = len(comp)
        payload = comp
        if clen > MAX_ZPAGE_SIZE_V48:
            clen = PAGE_SIZE
            payload = data
        handle = self._alloc_handle(clen)
        if not handle:
            return -errno.ENOMEM
        alloced_pages = pool.zs_get_total_pages()
        self.update_used_max(alloced_pages)
        if self.limit_pages and alloced_pages > self.limit_pages:
            pool.zs_free(handle)
            return -errno.ENOMEM
        self._zs_store(handle, payload)
        # Free memory associated with this sector now.
        self.zram_free_page(index)
        self._handle[index] = handle
        self._size[index] = clen
        st.compr_data_size += clen
        st.pages_stored += 1
        return 0

    def read_page(self, index: int) -> bytes:
        """Return the 4096 bytes of block ``index`` (``zram_read_page``); zeros if empty."""
        self._index(index)
        flags = self._flags[index]
        handle = int(self._handle[index])
        if self._same_filled:
            if flags & ZRAM_SAME or not handle:
                return (handle & ((1 << 64) - 1)).to_bytes(8, "little") * (PAGE_SIZE // 8)
        elif not handle or flags & ZRAM_ZERO:
            return bytes(PAGE_SIZE)
        size = int(self._size[index])
        pool = self.pool
        if self.version >= (6, 15):
            stored = pool.zs_obj_read_begin(handle, size)
            pool.zs_obj_read_end(handle)
        else:
            stored = bytes(pool.zs_map_object(handle, ZS_MM_RO)[:size])
            pool.zs_unmap_object(handle)
        if size == PAGE_SIZE:
            return stored
        return self.zcomp_decompress(stored)

    def discard(self, index: int, nr_pages: int = 1) -> None:
        """Discard blocks (``zram_bio_discard``): free them and count ``notify_free``."""
        for i in range(index, index + nr_pages):
            self._index(i)
            self.zram_free_page(i)
            self.stats.notify_free += 1

    def expected_page(self, token: int) -> bytes:
        """Return the bytes a page with content ``token`` holds (what a read must give back)."""
        return self.content.page(token)

    def slot_free_notify(self, index: int) -> None:
        """Swap freed its slot (``zram_slot_free_notify``)."""
        self._index(index)
        self.stats.notify_free += 1
        self.zram_free_page(index)

    def compact(self) -> int:
        """``echo 1 > /sys/block/zramN/compact``: run ``zs_compact`` on the pool."""
        self._index(0)
        return self.pool.zs_compact()

    def mem_used_total(self) -> int:
        """Return the bytes the pool holds (``mem_used_total``)."""
        return self.pool.zs_get_total_pages() << PAGE_SHIFT

    def mm_stat(self) -> str:
        """Return ``/sys/block/zramN/mm_stat`` as ``mm_stat_show`` prints it.

        Mainline: orig_data_size, compr_data_size, mem_used_total, mem_limit, mem_used_max,
        same_pages, pages_compacted, huge_pages, huge_pages_since, each ``%8llu``-style.
        v4.8: the first seven, with zero_pages as the sixth.
        """
        st = self.stats
        mem_used = 0 if self.reset_done else self.pool.zs_get_total_pages()
        pages_compacted = 0 if self.reset_done else self.pool.zs_pool_stats()["pages_compacted"]
        values = [st.pages_stored << PAGE_SHIFT, st.compr_data_size, mem_used << PAGE_SHIFT,
                  self.limit_pages << PAGE_SHIFT, st.max_used_pages << PAGE_SHIFT,
                  st.same_pages, pages_compacted]
        if self.version >= (5, 0):
            values += [st.huge_pages, st.huge_pages_since]
        return format_mm_stat(values)

    def set_mem_limit(self, limit: str | int) -> None:
        """``echo N > mem_limit``: set the pool's memory limit (0: none)."""
        self.limit_pages = -(-parse_size(limit) // PAGE_SIZE)

    def reset(self) -> None:
        """``echo 1 > reset``: free every block and destroy the pool (``zram_reset_device``)."""
        if self.reset_done:
            return
        for index in np.nonzero(self.handle | self.flags)[0].tolist():
            self.zram_free_page(index)
        self.pool.zs_destroy_pool()
        self.reset_done = True
        self.stats = ZramStats()
        if self.check in self.m.state_checkers:
            self.m.state_checkers.remove(self.check)

    def check(self) -> list[str]:
        """Return every inconsistency between the table, the stats and the pool."""
        if self.reset_done or self.pool._inflight:
            return []
        problems: list[str] = []
        name = f"zram {self.name}"
        st = self.stats
        flags = self.flags
        same = int(np.count_nonzero(flags & ZRAM_SAME))
        huge = int(np.count_nonzero(flags & ZRAM_HUGE))
        backed = (self.handle != 0) & ((flags & ZRAM_SAME) == 0)
        stored = int(np.count_nonzero(backed)) + (same if self._same_filled else 0)
        compr = int(self.obj_size[backed].sum())
        for label, counted, actual in (("pages_stored", st.pages_stored, stored),
                                       ("compr_data_size", st.compr_data_size, compr),
                                       ("same_pages", st.same_pages, same),
                                       ("huge_pages", st.huge_pages, huge)):
            if counted != actual:
                problems.append(f"{name}: {label} is {counted}, the table has {actual}")
        handles = set(self.handle[backed].tolist())
        if len(handles) != int(np.count_nonzero(backed)):
            problems.append(f"{name}: two slots share a zsmalloc handle")
        live = set(self.pool.handles())
        if not handles <= live:
            problems.append(f"{name}: slots hold freed handles {sorted(handles - live)[:5]}")
        return problems

