"""The running kernel's zram device, for checking the model's zram and zsmalloc against it.

:class:`LiveZram` sets up an unused ``/dev/zramN`` (``comp_algorithm``, ``disksize``), writes
pages to it with ``O_DIRECT`` (so each write reaches ``zram_write_page`` at once, without the
block device's page cache), discards pages with the ``BLKDISCARD`` ioctl (``zram_bio_discard``),
runs the pool's compaction (``echo 1 > compact``, ``zs_compact``) and reads ``mm_stat``. On
leaving, it resets the device (``echo 1 > reset``), so the device ends as it was found.

It needs root and a device nobody uses: a device whose ``initstate`` is 1 (a swap device, a
mounted file system) is refused, never reset. :func:`parse_mm_stat` reads the text
``mm_stat_show`` prints (drivers/block/zram/zram_drv.c).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path
from types import TracebackType

from pagelab.errors import BadConfiguration, ParseError
from pagelab.mm.mmzone import PAGE_SIZE

__all__ = ["BLKDISCARD", "MM_STAT_FIELDS", "LiveZram", "parse_mm_stat"]

#: ``_IO(0x12, 119)`` (include/uapi/linux/fs.h): discard a byte range of a block device.
BLKDISCARD = 0x1277
#: ``mm_stat``'s columns, in order (v5.0+: nine; v4.x printed the first seven).
MM_STAT_FIELDS = ("orig_data_size", "compr_data_size", "mem_used_total", "mem_limit",
                  "mem_used_max", "same_pages", "pages_compacted", "huge_pages",
                  "huge_pages_since")


def parse_mm_stat(text: str) -> dict[str, int]:
    """Return ``mm_stat``'s columns by name; ParseError unless it has 7 or 9 integers."""
    words = text.split()
    if len(words) not in (7, len(MM_STAT_FIELDS)) or not all(
            w.lstrip("-").isdigit() for w in words):
        raise ParseError(f"mm_stat {text.strip()!r}: expected 7 or 9 integers as "
                         f"/sys/block/zramN/mm_stat prints them")
    return dict(zip(MM_STAT_FIELDS, map(int, words), strict=False))


class LiveZram:
    """An unused zram device of the running kernel, set up for one check and reset after.

    Use as a context manager: ``with LiveZram("zram0", 64 << 20, "lz4") as dev: ...``.
    """

    def __init__(self, name: str, disksize: int, comp_algorithm: str,
                 sys_block: Path = Path("/sys/block"), dev_dir: Path = Path("/dev")) -> None:
        self.name = name
        self.sysfs = sys_block / name
        self.node = dev_dir / name
        self.disksize = disksize
        self.comp_algorithm = comp_algorithm
        self.fd = -1
        self.buffer = mmap.mmap(-1, PAGE_SIZE)  # page-aligned, as O_DIRECT needs

    # --- set-up and tear-down ----------------------------------------------------------------

    def __enter__(self) -> LiveZram:
        self._check_usable()
        self._write("comp_algorithm", self.comp_algorithm)
        self._write("disksize", str(self.disksize))
        try:
            self.fd = os.open(self.node, os.O_RDWR | os.O_DIRECT)
        except OSError as exc:
            self._write("reset", "1")
            raise BadConfiguration(f"cannot open {self.node}: {exc.strerror}") from None
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self._write("reset", "1")

    def _check_usable(self) -> None:
        if not (self.sysfs / "initstate").exists():
            raise BadConfiguration(f"no {self.sysfs}: load the zram module (modprobe zram) or "
                                   f"give another device")
        if os.geteuid() != 0:
            raise BadConfiguration(f"setting up {self.name} needs root; run as root")
        if self._read("initstate").strip() != "0":
            raise BadConfiguration(f"{self.name} is in use (initstate 1): give an unused "
                                   f"zram device (cat /sys/class/zram-control/hot_add makes "
                                   f"one)")
        offered = self._read("comp_algorithm").replace("[", "").replace("]", "").split()
        if self.comp_algorithm not in offered:
            raise BadConfiguration(f"{self.name} has no {self.comp_algorithm!r} compressor; "
                                   f"this kernel offers {', '.join(offered)}")

    def _read(self, attribute: str) -> str:
        return (self.sysfs / attribute).read_text()

    def _write(self, attribute: str, value: str) -> None:
        try:
            (self.sysfs / attribute).write_text(value)
        except OSError as exc:
            raise BadConfiguration(f"cannot write {value!r} to {self.sysfs / attribute}: "
                                   f"{exc.strerror}") from None

    # --- what a check does -------------------------------------------------------------------

    def write_page(self, index: int, data: bytes) -> None:
        """Write one page at page ``index`` (one ``zram_write_page``)."""
        self.buffer.seek(0)
        self.buffer.write(data)
        os.pwritev(self.fd, [self.buffer], index * PAGE_SIZE)

    def discard(self, index: int, nr_pages: int = 1) -> None:
        """Discard ``nr_pages`` pages from page ``index`` (``zram_bio_discard``)."""
        fcntl.ioctl(self.fd, BLKDISCARD, struct.pack("QQ", index * PAGE_SIZE,
                                                     nr_pages * PAGE_SIZE))

    def compact(self) -> None:
        """``echo 1 > compact``: the pool's own compaction (``zs_compact``)."""
        self._write("compact", "1")

    def mm_stat(self) -> str:
        """Return ``mm_stat`` as the kernel prints it."""
        return self._read("mm_stat")
