"""The virtio memory balloon: a guest driver that gives pages to its host, and can move them.

Models ``drivers/virtio/virtio_balloon.c`` (v4.8 and v6.16; the balloon page protocol is in
:mod:`pagelab.mm.balloon_compaction`). This is the framework's first user and a template for
driver authors: the driver owns a :class:`BalloonDevInfo`, fills and empties it under its
``balloon_lock`` mutex, and supplies one callback, :meth:`Balloon.migratepage`.

>>> from pagelab import Machine
>>> from pagelab.drivers.virtio_balloon import Balloon
>>> m = Machine.build(memory="256M")
>>> b = Balloon(m)
>>> b.inflate(64), b.deflate(16), len(b.host_pfns)
(64, 16, 48)
>>> m.check_state()

The host side is a set: ``host_pfns`` holds the pfns the host believes are in the balloon
(told by ``tell_host`` on the inflate and deflate virtqueues). A page the host holds has no
guest contents (token 0). When compaction migrates a balloon page, the driver inflates the
new page and deflates the old one, so the host follows the page to its new pfn.
:meth:`Balloon.check` (run by ``m.check_state()``) verifies that the host and the guest agree.

Named simplifications: a virtqueue round trip is a set update (the host acks at once); the
stats and free-page-reporting queues are not modelled; one balloon page is one 4 KiB page
(VIRTIO_BALLOON_PAGES_PER_PAGE = 1 on x86-64).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pagelab.errors import InvalidArgument
from pagelab.mm import balloon_compaction as bc
from pagelab.mm import migrate as mg
from pagelab.mm import page_flags as pf
from pagelab.mm import swap
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import get_page

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["VIRTIO_BALLOON_ARRAY_PFNS_MAX", "Balloon"]

#: Pages told to the host per virtqueue message (``ARRAY_SIZE(vb->pfns)``).
VIRTIO_BALLOON_ARRAY_PFNS_MAX = 256


class Balloon:
    """``struct virtio_balloon``: one virtio balloon device on machine ``m``.

    Args:
        m: the machine (its profile selects v4.8, mainline or pre-4.8 balloon behaviour).
        deflate_on_oom: the host offers VIRTIO_BALLOON_F_DEFLATE_ON_OOM. Without it the driver
            takes ballooned pages out of their zone's ``managed_pages``
            (``adjust_managed_page_count``), as the kernel does.
    """

    def __init__(self, m: Machine, *, deflate_on_oom: bool = False) -> None:
        self.m = m
        self.deflate_on_oom = deflate_on_oom
        self.num_pages = 0
        self.balloon_lock = bc.ModelLock(m, "balloon_lock")
        self.vb_dev_info = bc.BalloonDevInfo(m)
        if m.profile.balloon_compaction:
            self.vb_dev_info.migratepage = self.migratepage
        self.host_pfns: set[int] = set()
        m.state_checkers.append(self.check)

    def __repr__(self) -> str:
        return (f"Balloon(num_pages={self.num_pages}, "
                f"isolated={self.vb_dev_info.isolated_pages})")

    # --- talking to the host -------------------------------------------------------------

    def tell_host(self, vq: str, pfns: list[int]) -> None:
        """Send pfns on the ``"inflate"`` or ``"deflate"`` virtqueue (``tell_host``).

        On inflate the host takes the frames and their contents are gone (token 0).
        """
        if vq == "inflate":
            self.host_pfns.update(pfns)
            self.m.mem.token[np.asarray(pfns, dtype=np.int64)] = 0
        else:
            self.host_pfns.difference_update(pfns)

    def _adjust_managed(self, pfn: int, count: int) -> None:
        """``adjust_managed_page_count`` unless the host may deflate on OOM."""
        if not self.deflate_on_oom:
            self.m.page_zone(pfn).managed_pages += count

    # --- inflate and deflate ---------------------------------------------------------------

    def inflate(self, n: int) -> int:
        """Give ``n`` pages to the host; return how many were given (fewer when memory ran out).

        Works in virtqueue-sized steps, as ``update_balloon_size_func`` does.
        """
        if n < 0:
            raise InvalidArgument(f"inflate({n}): give a number of pages >= 0")
        done = 0
        while done < n:
            step = self.fill_balloon(min(n - done, VIRTIO_BALLOON_ARRAY_PFNS_MAX))
            done += step
            if not step:
                break
        return done

    def deflate(self, n: int) -> int:
        """Take up to ``n`` pages back from the host; return how many came back.

        Fewer come back when the balloon holds fewer, or when the rest are isolated for
        migration at the moment.
        """
        if n < 0:
            raise InvalidArgument(f"deflate({n}): give a number of pages >= 0")
        done = 0
        while done < n:
            step = self.leak_balloon(min(n - done, VIRTIO_BALLOON_ARRAY_PFNS_MAX))
            done += step
            if not step:
                break
        return done

    def fill_balloon(self, num: int) -> int:
        """Allocate up to ``num`` pages, enqueue them and tell the host (``fill_balloon``)."""
        m = self.m
        pages = m.alloc_list_head()
        for _ in range(num):
            page = bc.balloon_page_alloc(m)
            if page < 0:
                break  # "Out of puff! Can't get 1 pages"
            bc.balloon_page_push(m, pages, page)
        pfns: list[int] = []
        with self.balloon_lock:
            while (page := bc.balloon_page_pop(m, pages)) >= 0:
                bc.balloon_page_enqueue(m, self.vb_dev_info, page)
                pfns.append(page)
                self.num_pages += 1
                self._adjust_managed(page, -1)
            if pfns:
                self.tell_host("inflate", pfns)
        m.release_list_head(pages)
        return len(pfns)

    def leak_balloon(self, num: int) -> int:
        """Dequeue up to ``num`` pages, tell the host, then free them (``leak_balloon``)."""
        m = self.m
        pages = m.alloc_list_head()
        pfns: list[int] = []
        with self.balloon_lock:
            for _ in range(min(num, self.num_pages)):
                page = bc.balloon_page_dequeue(m, self.vb_dev_info)
                if page < 0:
                    break
                pfns.append(page)
                m.mem.list_add(page, pages)
                self.num_pages -= 1
            if pfns:
                self.tell_host("deflate", pfns)  # before freeing: VIRTIO_BALLOON_F_MUST_TELL_HOST
            self.release_pages_balloon(pages)
        m.release_list_head(pages)
        return len(pfns)

    def release_pages_balloon(self, pages: int) -> None:
        """Free the deflated pages on list ``pages`` (``release_pages_balloon``)."""
        mem = self.m.mem
        for page in list(mem.list_entries(pages)):
            self._adjust_managed(page, 1)
            mem.list_del(page)
            swap.put_page(self.m, page)  # the balloon reference

    # --- migration ---------------------------------------------------------------------------

    def migratepage(self, m: Machine, vb_dev_info: bc.BalloonDevInfo, newpage: int, page: int,
                    mode: mg.MigrateMode) -> int:
        """Move balloon page ``page`` to ``newpage`` (``virtballoon_migratepage``).

        Both pages are locked by the VM. Inflation and deflation may sleep holding
        ``balloon_lock``, so the driver only tries it: -EAGAIN asks the VM to retry. Then:
        take the balloon's reference on ``newpage``, insert it and uncount the isolated page
        under ``pages_lock`` (BALLOON_MIGRATE), tell the host "inflate new, deflate old",
        ``balloon_page_delete(page)`` (an isolated page: its ``lru`` is left alone) and drop
        the balloon's reference on ``page``; the VM frees it.
        """
        if not self.balloon_lock.trylock():
            return -mg.EAGAIN
        get_page(m, newpage)  # balloon reference
        if m.page_zone(page) is not m.page_zone(newpage):
            self._adjust_managed(page, 1)
            self._adjust_managed(newpage, -1)
        with vb_dev_info.pages_lock:
            bc.balloon_page_insert(m, vb_dev_info, newpage)
            vb_dev_info.isolated_pages -= 1
            m.vm_events[vs.BALLOON_MIGRATE] += 1
        self.tell_host("inflate", [newpage])
        bc.balloon_page_delete(m, page)
        self.tell_host("deflate", [page])
        self.balloon_lock.unlock()
        swap.put_page(m, page)  # balloon reference
        return mg.MIGRATEPAGE_SUCCESS

    # --- invariants ----------------------------------------------------------------------------

    def owned_pages(self) -> tuple[list[int], list[int]]:
        """Return ``(listed, isolated)``: the balloon's pages on its list and those isolated."""
        m = self.m
        b = self.vb_dev_info
        listed = list(m.mem.list_entries(b.pages))
        if not m.profile.balloon_compaction:
            return listed, []
        mem = m.mem
        ours = np.nonzero(((mem.mapcount >> 24) & 0xFF == pf.PGTY_offline)
                          & (mem.private == b.id))[0]
        on_list = set(listed)
        return listed, [int(p) for p in ours if int(p) not in on_list]

    def check(self) -> list[str]:
        """Return every inconsistency between the balloon, its pages and the host."""
        m = self.m
        mem = m.mem
        b = self.vb_dev_info
        problems: list[str] = []
        listed, isolated = self.owned_pages()
        movable = m.profile.balloon_compaction and m.profile.non_lru_movable
        v47 = m.profile.balloon_compaction and not m.profile.non_lru_movable
        for pfn in listed:
            if mem.refcount_mv[pfn] < 1:
                problems.append(f"balloon page {pfn:#x} has refcount {mem.refcount_mv[pfn]}")
            if (m.profile.non_lru_movable or v47) and not pf.PageOffline(mem, pfn):
                problems.append(f"balloon page {pfn:#x} is not PageOffline: "
                                f"{mem.dump_page(pfn)}")
            if movable:
                assert b.mapping is not None
                if mem.mapping_mv[pfn] != b.mapping.mapping_word | pf.PAGE_MAPPING_MOVABLE:
                    problems.append(f"balloon page {pfn:#x} has mapping "
                                    f"{mem.mapping_mv[pfn]:#x}, not the balloon's | 0x2")
                if pf.PageIsolated(mem, pfn):
                    problems.append(f"balloon page {pfn:#x} is on the list but PG_isolated")
            if v47 and not mem.flags_mv[pfn] >> pf.PG_private & 1:
                problems.append(f"balloon page {pfn:#x} is listed without PG_private (v4.7)")
        for pfn in isolated:
            if movable and not pf.PageIsolated(mem, pfn):
                problems.append(f"balloon page {pfn:#x} is neither listed nor PG_isolated: "
                                f"{mem.dump_page(pfn)}")
            if v47 and mem.flags_mv[pfn] >> pf.PG_private & 1:
                problems.append(f"balloon page {pfn:#x} is off the list with PG_private")
        if len(isolated) != b.isolated_pages:
            problems.append(f"balloon isolated_pages = {b.isolated_pages}, but "
                            f"{len(isolated)} of its pages are off its list")
        owned = set(listed) | set(isolated)
        if self.host_pfns != owned:
            lost = sorted(self.host_pfns - owned)[:5]
            unknown = sorted(owned - self.host_pfns)[:5]
            problems.append(f"host and guest disagree: host holds pfns the balloon does not "
                            f"{[hex(p) for p in lost]}, the balloon holds pfns the host does "
                            f"not know {[hex(p) for p in unknown]}")
        if self.num_pages != len(owned):
            problems.append(f"balloon num_pages = {self.num_pages}, it holds {len(owned)} pages")
        if bc.counts_nr_balloon_pages(m):
            counted = sum(node.vm_stat[vs.NR_BALLOON_PAGES] for node in m.nodes)
            offline = int(np.count_nonzero((mem.mapcount >> 24) & 0xFF == pf.PGTY_offline))
            if counted != offline:
                problems.append(f"NR_BALLOON_PAGES = {counted}, but {offline} pages are "
                                "PageOffline (all balloons of this machine)")
        return problems
