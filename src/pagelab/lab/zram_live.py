"""The model's zram and zsmalloc beside the running kernel's, page for page.

The same pages (the content model's, from the same seed) go through the same three steps on
a model :class:`~pagelab.drivers.zram.Zram` and on an unused zram device of this machine
(:class:`~pagelab.io.zram_device.LiveZram`):

1. ``written``: pages 0..N-1 written once each;
2. ``discarded``: the pages of a pattern discarded (every odd page, every other run of 64
   pages, or two pages in three), which frees their objects and empties some zspages;
3. ``compacted``: ``echo 1 > compact`` (``zs_compact``).

``mm_stat`` is read after each step on both. Two kinds of pages (``content_kind``):

* ``"tail"``: random bytes, then zeros. The kernel's lz4 and the ``lz4`` package (which the
  model compresses with) give every such page the same size, so every column must agree
  exactly: what is left to differ is zram's and zsmalloc's own arithmetic — size classes,
  zspage chains, huge pages, which zspages a discard empties, and what ``zs_compact`` moves.
  On Linux 6.18 all nine columns agree at every step for all three patterns (8,192 pages).
* ``"model"``: the content model's pages. ``orig_data_size``, ``same_pages`` and the huge
  page counts still agree exactly; ``compr_data_size`` does not quite, because the two lz4
  copies choose different matches on a fifth of these pages (353 of 1,695 measured, a few
  bytes each), and ``mem_used_total`` follows within 0.6% and ``pages_compacted`` within 2%
  at 8,192 pages (1.4% and 0.7% at 4,096 pages, two in three discarded).

The model runs the mainline profile (the project's reference kernel, v6.16); the machine's
kernel is whatever it is (``uname -r``), which :func:`run_live` reports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pagelab.drivers.zram import ContentModel, Zram
from pagelab.errors import InvalidArgument
from pagelab.io.zram_device import MM_STAT_FIELDS, LiveZram, parse_mm_stat
from pagelab.machine import Machine
from pagelab.mm.mmzone import PAGE_SHIFT, PAGE_SIZE

__all__ = ["PATTERNS", "STAGES", "ZramLiveConfig", "compare_rows", "run_live", "run_model"]

STAGES = ("written", "discarded", "compacted")
#: Where the pages come from.
CONTENTS = {
    "model": "the content model's pages (ContentModel, as zram_dd and the phone use)",
    "tail": "random bytes then zeros: pages both lz4 copies compress to the same size",
}
#: A "tail" page's random head is this many bytes or more.
TAIL_HEAD_MIN = 64
#: Which pages the ``discarded`` step discards.
PATTERNS = {
    "odd": "every odd page",
    "chunks": "every other run of 64 pages",
    "thirds": "two pages in three",
}


@dataclass(frozen=True)
class ZramLiveConfig:
    """The pages written and discarded; contents as :class:`ContentModel` makes them."""

    pages: int = 8192
    pattern: str = "odd"
    compressibility: float = 0.55
    spread: float = 0.4
    same_filled: float = 0.15
    seed: int = 1
    comp_algorithm: str = "lz4"
    content_kind: str = "model"

    def validate(self) -> None:
        """Raise InvalidArgument for a check that cannot run."""
        if not 1 <= self.pages <= 1 << 20:
            raise InvalidArgument(f"pages={self.pages}: give between 1 and 1048576 (4 GiB)")
        if self.pattern not in PATTERNS:
            raise InvalidArgument(f"pattern {self.pattern!r}: give one of "
                                  f"{', '.join(PATTERNS)}")
        if self.content_kind not in CONTENTS:
            raise InvalidArgument(f"content {self.content_kind!r}: give one of "
                                  f"{', '.join(CONTENTS)}")
        if self.comp_algorithm != "lz4":
            raise InvalidArgument(f"comp_algorithm {self.comp_algorithm!r}: the check needs "
                                  f"the same compressor on both sides; give lz4")
        self.content()  # its own argument checks

    def content(self) -> ContentModel:
        return ContentModel(self.compressibility, spread=self.spread,
                            same_filled=self.same_filled, seed=self.seed)

    def pages_bytes(self) -> Iterator[bytes]:
        """The pages written, in index order."""
        if self.content_kind == "model":
            content = self.content()
            for index in range(self.pages):
                yield content.page(index + 1)  # token 0 means "no content"
            return
        for index in range(self.pages):
            rng = np.random.default_rng([self.seed, index])
            head = int(rng.integers(TAIL_HEAD_MIN, PAGE_SIZE))
            yield rng.bytes(head) + bytes(PAGE_SIZE - head)

    def discarded(self) -> list[int]:
        """The page indices the ``discarded`` step discards, in order."""
        n = self.pages
        if self.pattern == "odd":
            return list(range(1, n, 2))
        if self.pattern == "chunks":
            return [i for i in range(n) if (i >> 6) & 1]
        return [i for i in range(n) if i % 3]

    def disksize(self) -> int:
        """Bytes: the pages, rounded up to whole MiB."""
        mib = -(-(self.pages << PAGE_SHIFT) // (1 << 20))
        return mib << 20


def run_model(config: ZramLiveConfig, profile: str = "mainline") -> list[str]:
    """Run the steps on a model zram; return ``mm_stat`` after each."""
    config.validate()
    m = Machine.build(memory=max(256 << 20, 2 * config.disksize()), profile=profile,
                      seed=config.seed)
    zram = Zram(m, config.disksize(), comp_algorithm=config.comp_algorithm)
    texts = _run_steps(config, zram)
    m.check_state()
    return texts


def run_live(config: ZramLiveConfig, device: str = "zram0") -> tuple[str, list[str]]:
    """Run the steps on this machine's ``device``; return (kernel release, ``mm_stat`` after
    each). Needs root and an unused device (BadConfiguration otherwise)."""
    config.validate()
    with LiveZram(device, config.disksize(), config.comp_algorithm) as dev:
        texts = _run_steps(config, dev)
    return os.uname().release, texts


class _ZramLike(Protocol):
    """What the steps need of a zram device: the model's :class:`Zram` and
    :class:`LiveZram` both have it."""

    def write_page(self, index: int, data: bytes) -> object: ...
    def discard(self, index: int, nr_pages: int = 1) -> None: ...
    def compact(self) -> object: ...
    def mm_stat(self) -> str: ...


def _run_steps(config: ZramLiveConfig, device: _ZramLike) -> list[str]:
    """Write, discard, compact; ``mm_stat`` after each."""
    texts = []
    for index, data in enumerate(config.pages_bytes()):
        device.write_page(index, data)
    texts.append(device.mm_stat())
    for index in config.discarded():
        device.discard(index)
    texts.append(device.mm_stat())
    device.compact()
    texts.append(device.mm_stat())
    return texts


def compare_rows(model: Sequence[str], live: Sequence[str]) -> list[list[str]]:
    """Rows of (stage, column, kernel, model, model - kernel as a share of the kernel's)."""
    rows = []
    for stage, model_text, live_text in zip(STAGES, model, live, strict=True):
        ours, theirs = parse_mm_stat(model_text), parse_mm_stat(live_text)
        for name in MM_STAT_FIELDS:
            if name == "mem_limit" or name not in ours or name not in theirs:
                continue
            kernel, modelled = theirs[name], ours[name]
            share = (modelled - kernel) / kernel if kernel else float(modelled != 0)
            rows.append([stage, name, f"{kernel:,}", f"{modelled:,}", f"{share:+.2%}"])
    return rows
