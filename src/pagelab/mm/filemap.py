"""The page lock and page references (models ``mm/filemap.c``'s folio lock, v6.16, and the
``get_page``/``get_page_unless_zero`` helpers of ``include/linux/mm.h`` and ``page_ref.h``).

The page lock is PG_locked on the head page. ``trylock_page`` never waits; ``lock_page``
waits for the holder. In a sequential run nobody else can release the lock, so waiting is
reported as the deadlock it would be; under the schedule explorer the machine's ``wait``
hook blocks the CPU until the holder unlocks. Every operation here is a preemption point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pagelab.errors import ModelBug
from pagelab.mm import page_flags as pf

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = [
    "get_page",
    "get_page_unless_zero",
    "lock_page",
    "page_ref_count",
    "trylock_page",
    "unlock_page",
]

_LOCKED = 1 << pf.PG_locked


def trylock_page(m: Machine, pfn: int) -> bool:
    """Take the page lock if it is free (``trylock_page``: atomic test-and-set of PG_locked)."""
    if m.preempt is not None:
        m.preempt("trylock_page", pfn)
    head = pf.compound_head(m.mem, pfn)
    flags = m.mem.flags_mv
    value = flags[head]
    if value & _LOCKED:
        return False
    flags[head] = value | _LOCKED
    m.page_lock_owner[head] = m.cpu
    return True


def lock_page(m: Machine, pfn: int) -> None:
    """Take the page lock, waiting for the holder if needed (``lock_page``)."""
    while not trylock_page(m, pfn):
        m.wait("page_lock", pf.compound_head(m.mem, pfn))


def unlock_page(m: Machine, pfn: int) -> None:
    """Release the page lock (``unlock_page``); the lock must be held."""
    head = pf.compound_head(m.mem, pfn)
    flags = m.mem.flags_mv
    value = flags[head]
    if not value & _LOCKED:
        raise ModelBug(f"VM_BUG_ON_FOLIO(!folio_test_locked(folio)) in unlock_page at pfn "
                       f"{head:#x}: {m.mem.dump_page(head)}")
    flags[head] = value & ~_LOCKED
    m.page_lock_owner.pop(head, None)
    if m.preempt is not None:
        m.preempt("unlock_page", pfn)


def page_ref_count(m: Machine, pfn: int) -> int:
    """Return ``_refcount`` of the page itself (``page_ref_count``)."""
    return int(m.mem.refcount_mv[pfn])


def get_page(m: Machine, pfn: int) -> None:
    """Take a reference on the head page (``get_page``); the page must already be in use."""
    if m.preempt is not None:
        m.preempt("get_page", pfn)
    head = pf.compound_head(m.mem, pfn)
    ref = m.mem.refcount_mv
    if ref[head] <= 0:
        raise ModelBug(f"VM_BUG_ON_PAGE(page_ref_zero_or_close_to_overflow(page)) in get_page "
                       f"at pfn {head:#x}: {m.mem.dump_page(head)}")
    ref[head] += 1


def get_page_unless_zero(m: Machine, pfn: int) -> bool:
    """Take a reference unless the count is zero (``get_page_unless_zero``).

    As in v4.8 this works on the page itself, not its head: a tail page has refcount 0, so it
    always fails — which is what makes ``isolate_movable_page`` refuse tail pages (mainline
    says so explicitly with ``folio_get_nontail_page``).
    """
    if m.preempt is not None:
        m.preempt("get_page_unless_zero", pfn)
    ref = m.mem.refcount_mv
    if ref[pfn] == 0:
        return False
    ref[pfn] += 1
    return True
