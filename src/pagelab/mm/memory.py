"""Processes and their page faults: anonymous and file-backed pages on the LRU.

Models what ``mm/memory.c`` (``do_anonymous_page``, ``do_read_fault``, ``zap_pte_range``),
``mm/mlock.c`` and ``mm/gup.c`` (FOLL_PIN) do to ``struct page`` in v6.16: a fault
allocates a movable page, sets its owner (``folio_add_new_anon_rmap`` or the page cache), maps
it once, and puts it on the LRU; an unmap drops the mapping and the reference; ``mlock`` moves
pages to the unevictable list; a pin adds ``GUP_PIN_COUNTING_BIAS`` references, which
migration refuses.

Every page a process maps carries a content token, and the process remembers the token it
wrote: :meth:`MmStruct.verify` proves that migration lost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from pagelab.errors import InvalidArgument, ModelBug
from pagelab.mm import page_flags as pf
from pagelab.mm import swap
from pagelab.mm import vmstat as vs
from pagelab.mm.filemap import filemap_add_folio
from pagelab.mm.gfp import GFP_HIGHUSER_MOVABLE, parse_gfp
from pagelab.mm.rmap import (
    PTE_NONE,
    SWP_ENTRY_BASE,
    AddressSpace,
    AnonVma,
    is_migration_entry,
    is_swap_pte,
    swp_offset,
)

if TYPE_CHECKING:
    from pagelab.machine import Machine

__all__ = ["GUP_PIN_COUNTING_BIAS", "File", "MmStruct"]

#: A FOLL_PIN reference counts this much (include/linux/mm.h).
GUP_PIN_COUNTING_BIAS = 1024

_ANON_FLAGS = 1 << pf.PG_swapbacked
#: HPAGE_PMD_ORDER on x86-64.
THP_ORDER = 9
_INITIAL_PTES = 1024


class File(AddressSpace):
    """A file whose pages are read into the page cache when a process maps them.

    ``disk`` holds the content token of each page as stored on disk: a page dropped by reclaim
    is read back with the same content. ``exec`` marks a file mapped executable (VM_EXEC:
    program text, which reclaim protects a little longer).
    """

    def __init__(self, m: Machine, name: str, a_ops: object | None = None, *,
                 exec: bool = False) -> None:
        super().__init__(m, name, a_ops)
        self.exec = exec
        self.disk: dict[int, int] = {}


class MmStruct:
    """A process's address space: a page table over virtual page numbers, and its pages.

    ``pte[vpn]`` is the pfn mapped at ``vpn``, ``PTE_NONE`` (-1), a migration entry or a
    swap entry; ``young[vpn]`` is the PTE's accessed bit (set by the fault and by
    :meth:`access`, cleared by reclaim's ``folio_referenced``). ``tokens[vpn]`` is the content
    the process last wrote there. A file page that reclaim dropped leaves its PTE none while
    the vpn stays in ``file_vpns``: the next access faults it back from the file.
    """

    def __init__(self, m: Machine, name: str, pid: int) -> None:
        self.m = m
        self.name = name
        self.pid = pid
        self.anon_vma = AnonVma(m, self)
        self.pte: NDArray[np.int64] = np.full(_INITIAL_PTES, PTE_NONE, dtype=np.int64)
        self.tokens: NDArray[np.uint32] = np.zeros(_INITIAL_PTES, dtype=np.uint32)
        self.young: NDArray[np.uint8] = np.zeros(_INITIAL_PTES, dtype=np.uint8)
        self.file_vpns: dict[int, tuple[File, int]] = {}
        self.next_vpn = 0
        self.pinned: dict[int, int] = {}
        #: PMD-mapped THPs: first virtual page -> head pfn.
        self.thp_heads: dict[int, int] = {}
        self.dead = False
        #: The task's ``signal->oom_score_adj`` (-1000..1000): who the killers choose first.
        self.oom_score_adj = 0
        #: A SIGKILL is pending (``fatal_signal_pending``); the task exits when it next runs
        #: (:meth:`Machine.reap_killed`).
        self.sigkill = False
        #: What the task's exit releases besides its address space (files, kernel stacks,
        #: driver buffers), as its owner registered it; run once by :meth:`exit_task`.
        self.at_exit: list[Callable[[], None]] = []
        m.state_checkers.append(self.check)

    def __repr__(self) -> str:
        return f"MmStruct({self.name!r}, pid={self.pid}, mapped={self.nr_mapped()})"

    # --- address space -----------------------------------------------------------------------

    def _grow(self, nr: int) -> int:
        start = self.next_vpn
        need = start + nr
        if need > len(self.pte):
            size = max(need, 2 * len(self.pte))
            self.pte = np.concatenate([self.pte, np.full(size - len(self.pte), PTE_NONE,
                                                         dtype=np.int64)])
            self.tokens = np.concatenate([self.tokens,
                                          np.zeros(size - len(self.tokens), dtype=np.uint32)])
            self.young = np.concatenate([self.young,
                                         np.zeros(size - len(self.young), dtype=np.uint8)])
        self.next_vpn = need
        return start

    def nr_mapped(self) -> int:
        """Return the number of virtual pages with a PTE: mapped, swapped or under migration."""
        return int(np.count_nonzero(self.pte[: self.next_vpn] != PTE_NONE))

    def nr_resident(self) -> int:
        """Return the number of virtual pages mapped to a page right now (RSS)."""
        return int(np.count_nonzero(self.pte[: self.next_vpn] >= 0))

    def nr_swapped(self) -> int:
        """Return the number of virtual pages whose contents are out in swap."""
        return int(np.count_nonzero(self.pte[: self.next_vpn] <= SWP_ENTRY_BASE))

    def mapped_pfns(self) -> NDArray[np.int64]:
        """Return the pfns mapped right now (migration entries excluded)."""
        ptes = self.pte[: self.next_vpn]
        return ptes[ptes >= 0]

    # --- faults ----------------------------------------------------------------------------

    def touch(self, nr_pages: int, gfp: str | int = GFP_HIGHUSER_MOVABLE) -> NDArray[np.int64]:
        """Fault in ``nr_pages`` new anonymous pages (``do_anonymous_page`` each); return pfns.

        Stops early (returning fewer pfns) when an allocation fails, as a fault that cannot
        allocate would end in the OOM path.
        """
        if nr_pages < 0:
            raise InvalidArgument(f"touch({nr_pages}): give a number of pages >= 0")
        m = self.m
        mask = parse_gfp(gfp)
        start = self._grow(nr_pages)
        mem = m.mem
        word = self.anon_vma.mapping_word
        got = np.full(nr_pages, -1, dtype=np.int64)
        alloc = m.alloc_page_raw
        nid = m.cpu % m.nr_nodes
        fault_cost = m.cost.alloc_page
        for i in range(nr_pages):
            pfn = alloc(mask, 0, nid)
            if pfn < 0:
                got = got[:i]
                self.next_vpn = start + i
                break
            vpn = start + i
            token = m.new_token()
            mem.mapping_mv[pfn] = word
            mem.index_mv[pfn] = vpn
            mem.mapcount_mv[pfn] = 0
            mem.flags_mv[pfn] = mem.flags_mv[pfn] | _ANON_FLAGS
            mem.token_mv[pfn] = token
            swap.folio_add_lru(m, pfn)
            self.pte[vpn] = pfn
            self.young[vpn] = 1
            self.tokens[vpn] = token
            got[i] = pfn
            m.charge(fault_cost)
        if len(got):
            m.nodes[nid].vm_stat[vs.NR_ANON_MAPPED] += len(got)
        return got

    def touch_thp(self, nr_huge: int) -> NDArray[np.int64]:
        """Fault in ``nr_huge`` anonymous THPs mapped by a PMD (``do_huge_pmd_anonymous_page``).

        Each is an order-9 compound folio (GFP_TRANSHUGE_LIGHT) on the LRU as one folio; the
        PMD mapping counts in ``_entire_mapcount`` (0 = mapped once), the word that aliases
        the first tail page's ``mapping``. Returns the head pfns; stops at the first failure.
        Unmap a THP with :meth:`unmap` of its head pfn (the whole PMD goes).
        """
        from pagelab.mm.gfp import GFP_TRANSHUGE_LIGHT

        m = self.m
        mem = m.mem
        nr = 1 << THP_ORDER
        heads: list[int] = []
        for _ in range(nr_huge):
            head = m.alloc_page_raw(GFP_TRANSHUGE_LIGHT, THP_ORDER, m.cpu % m.nr_nodes)
            if head < 0:
                break
            base = self._grow(nr)
            mem.mapping_mv[head] = self.anon_vma.mapping_word
            mem.index_mv[head] = base
            mem.flags_mv[head] = mem.flags_mv[head] | _ANON_FLAGS
            mem.mapping_mv[head + 1] = 0  # _entire_mapcount: -1 -> 0, mapped by one PMD
            tokens = np.arange(nr, dtype=np.uint32) + m.new_token()
            m._token_seq += nr
            mem.token[head: head + nr] = tokens
            swap.folio_add_lru(m, head)
            self.pte[base: base + nr] = np.arange(head, head + nr)
            self.tokens[base: base + nr] = tokens
            self.thp_heads[base] = head
            m.nodes[m.page_zone(head).node].vm_stat[vs.NR_ANON_MAPPED] += nr
            m.nodes[m.page_zone(head).node].vm_stat[vs.NR_ANON_THPS] += nr
            heads.append(head)
            m.charge(m.cost.alloc_page * 8)
        return np.asarray(heads, dtype=np.int64)

    def _unmap_thp(self, base: int) -> None:
        """``zap_huge_pmd``: drop the PMD mapping and the folio's reference."""
        m = self.m
        mem = m.mem
        head = self.thp_heads.pop(base)
        nr = 1 << THP_ORDER
        self.pte[base: base + nr] = PTE_NONE
        mem.mapping_mv[head + 1] = -1  # _entire_mapcount back to -1
        m.nodes[m.page_zone(head).node].vm_stat[vs.NR_ANON_MAPPED] -= nr
        m.nodes[m.page_zone(head).node].vm_stat[vs.NR_ANON_THPS] -= nr
        swap.put_page(m, head)

    def map_file(self, file: File, nr_pages: int) -> NDArray[np.int64]:
        """Map the first ``nr_pages`` of ``file``, reading missing ones into the page cache."""
        if nr_pages < 0:
            raise InvalidArgument(f"map_file(..., {nr_pages}): give a number of pages >= 0")
        m = self.m
        mem = m.mem
        base = self._grow(nr_pages)
        file.mmaps.append((self, base))
        out = np.full(nr_pages, -1, dtype=np.int64)
        for index in range(nr_pages):
            pfn = file.pages.get(index, -1)
            if pfn < 0:
                pfn = self._page_cache_read(file, index, refault=False)
                if pfn < 0:
                    break
            # The page cache holds one reference, each mapping one more.
            mem.refcount_mv[pfn] += 1
            mem.mapcount_mv[pfn] += 1
            self.pte[base + index] = pfn
            self.young[base + index] = 1
            self.tokens[base + index] = mem.token_mv[pfn]
            self.file_vpns[base + index] = (file, index)
            out[index] = pfn
        return out

    def _page_cache_read(self, file: File, index: int, refault: bool) -> int:
        """Read page ``index`` of ``file`` into a new page-cache folio; its pfn, or -1.

        What ``page_cache_ra_unbounded`` and ``filemap_add_folio`` do for one page: allocate,
        insert into the file's xarray with the on-disk contents, count a workingset refault
        when the page was evicted before (the kernel finds its shadow entry), add to the LRU.
        """
        m = self.m
        mem = m.mem
        pfn = m.alloc_page_raw(GFP_HIGHUSER_MOVABLE, 0, m.cpu % m.nr_nodes)
        if pfn < 0:
            return -1
        mem.token_mv[pfn] = self._disk_token(file, index)
        filemap_add_folio(m, file, pfn, index, refault)
        return pfn

    def _disk_token(self, file: File, index: int) -> int:
        token = file.disk.get(index)
        if token is None:
            token = file.disk[index] = self.m.new_token()
        return token

    # --- accesses and the faults they take ----------------------------------------------------

    def access(self, vpns: NDArray[np.int64] | Iterable[int]) -> int:
        """Touch virtual pages: set the young bit of present PTEs, fault the others back.

        A swapped-out page comes back from swap (``do_swap_page``: a major fault, ``pswpin``),
        a dropped file page from the file (``filemap_fault``: a major fault). Returns the
        number of major faults; stops early if a page cannot be allocated.
        """
        vpns = np.asarray(vpns if isinstance(vpns, np.ndarray) else list(vpns), dtype=np.int64)
        if len(vpns) and (vpns.min() < 0 or vpns.max() >= self.next_vpn):
            raise InvalidArgument(f"access: virtual pages must be in 0..{self.next_vpn - 1}")
        ptes = self.pte[vpns]
        present = ptes >= 0
        self.young[vpns[present]] = 1
        major = 0
        for vpn in vpns[~present]:
            vpn = int(vpn)
            pte = int(self.pte[vpn])
            if is_migration_entry(pte):
                self.m.wait("migration_entry", -2 - pte)
                continue
            if is_swap_pte(pte):
                if self.do_swap_page(vpn) < 0:
                    break
                major += 1
            elif vpn in self.file_vpns:
                if self.filemap_fault(vpn) < 0:
                    break
                major += 1
        return major

    def do_swap_page(self, vpn: int) -> int:
        """Fault a swapped-out page back in (``do_swap_page``, SWP_SYNCHRONOUS_IO path).

        Allocates a new anonymous page, reads the slot into it (checking the bytes are the
        content written), maps it young and frees the slot. Returns the pfn or -1.
        """
        from pagelab.mm import page_io, swapfile, vmscan

        m = self.m
        offset = swp_offset(int(self.pte[vpn]))
        pfn = m.alloc_page_raw(GFP_HIGHUSER_MOVABLE, 0, m.cpu % m.nr_nodes)
        if pfn < 0:
            return -1
        mem = m.mem
        page_io.swap_read_folio(m, pfn, offset, int(self.tokens[vpn]))
        mem.mapping_mv[pfn] = self.anon_vma.mapping_word
        mem.index_mv[pfn] = vpn
        mem.mapcount_mv[pfn] = 0
        mem.flags_mv[pfn] = mem.flags_mv[pfn] | _ANON_FLAGS
        vmscan.workingset_refault(m, pfn, False)
        swap.folio_add_lru(m, pfn)
        self.pte[vpn] = pfn
        self.young[vpn] = 1
        swapfile.swap_free(m, offset)
        m.nodes[m.page_zone(pfn).node].vm_stat[vs.NR_ANON_MAPPED] += 1
        m.vm_events[vs.PGMAJFAULT] += 1
        return pfn

    def filemap_fault(self, vpn: int) -> int:
        """Fault a file page back (``filemap_fault``): from the page cache or read from disk."""
        m = self.m
        mem = m.mem
        file, index = self.file_vpns[vpn]
        pfn = file.pages.get(index, -1)
        if pfn < 0:
            pfn = self._page_cache_read(file, index, refault=True)
            if pfn < 0:
                return -1
            m.vm_events[vs.PGMAJFAULT] += 1
            m.charge(m.cost.file_read_page)
        mem.refcount_mv[pfn] += 1
        mem.mapcount_mv[pfn] += 1
        self.pte[vpn] = pfn
        self.young[vpn] = 1
        if mem.token_mv[pfn] != self.tokens[vpn]:
            raise ModelBug(f"{self.name}: file page {index} read back with token "
                           f"{int(mem.token_mv[pfn]):#x}, not {int(self.tokens[vpn]):#x}")
        return pfn

    def _vpn_of(self, pfn: int) -> int:
        mem = self.m.mem
        if not 0 <= pfn < mem.nr_pfns:
            raise InvalidArgument(f"pfn {pfn:#x} is outside the machine")
        owner = self.m.mappings.get(pf.mapping_owner(mem.mapping_mv[pfn]))
        index = int(mem.index_mv[pfn])
        if owner is self.anon_vma:
            vpn = index
        elif isinstance(owner, File):
            vpn = next((b + index for mm, b in owner.mmaps if mm is self), -1)
        else:
            vpn = -1
        if vpn < 0 or vpn >= self.next_vpn or self.pte[vpn] != pfn:
            raise InvalidArgument(f"pfn {pfn:#x} is not mapped by {self.name}; pass pfns "
                                  "returned by touch() or map_file() and not yet unmapped")
        return vpn

    def unmap(self, pfns: Iterable[int]) -> None:
        """Unmap pages by pfn (``zap_pte_range``): drop the mapping and the reference.

        The head pfn of a THP from :meth:`touch_thp` unmaps the whole PMD mapping.
        """
        for pfn in np.asarray(list(pfns) if not isinstance(pfns, np.ndarray) else pfns):
            vpn = self._vpn_of(int(pfn))
            if vpn in self.thp_heads:
                self._unmap_thp(vpn)
            else:
                self.unmap_vpn(vpn)

    def munmap(self, start: int, nr_pages: int) -> None:
        """Unmap virtual pages ``start .. start + nr_pages - 1`` (``munmap``), wherever they are.

        Unlike :meth:`unmap` (by pfn), this reaches pages that are out in swap or were dropped
        from the page cache. Holes (never mapped) are skipped; THPs go whole.
        """
        if start < 0 or nr_pages < 0 or start + nr_pages > self.next_vpn:
            raise InvalidArgument(f"munmap({start}, {nr_pages}): the range must lie in "
                                  f"0..{self.next_vpn - 1}")
        for base in [b for b in self.thp_heads if start <= b < start + nr_pages]:
            self._unmap_thp(base)
        ptes = self.pte[start: start + nr_pages]
        for vpn in np.nonzero(ptes != PTE_NONE)[0] + start:
            self.unmap_vpn(int(vpn))
        for dropped in [v for v in self.file_vpns if start <= v < start + nr_pages]:
            del self.file_vpns[dropped]

    def unmap_vpn(self, vpn: int) -> None:
        """Unmap the page at virtual page ``vpn``."""
        m = self.m
        pte = int(self.pte[vpn])
        if pte == PTE_NONE:
            if self.file_vpns.pop(vpn, None) is not None:
                return  # a file page reclaim dropped: nothing mapped, nothing to free
            raise InvalidArgument(f"virtual page {vpn} of {self.name} is not mapped")
        if is_swap_pte(pte):
            from pagelab.mm import swapfile

            self.pte[vpn] = PTE_NONE
            self.pinned.pop(vpn, None)
            swapfile.swap_free(m, swp_offset(pte))  # zap_pte_range: free_swap_and_cache
            return
        if is_migration_entry(pte):
            # The kernel waits for migration to finish (migration_entry_wait).
            m.wait("migration_entry", -2 - pte)
            pte = int(self.pte[vpn])
        mem = m.mem
        self.pte[vpn] = PTE_NONE
        mem.mapcount_mv[pte] -= 1
        if vpn in self.file_vpns:
            del self.file_vpns[vpn]
        else:
            m.nodes[m.page_zone(pte).node].vm_stat[vs.NR_ANON_MAPPED] -= 1
        pins = self.pinned.pop(vpn, 0)
        if pins:
            mem.refcount_mv[pte] -= pins * GUP_PIN_COUNTING_BIAS
        swap.put_page(m, pte)
        m.charge(m.cost.free_page)

    def send_sigkill(self) -> None:
        """Deliver SIGKILL (``send_sig(SIGKILL, p, 0)``): the task exits when it next runs."""
        if not self.dead:
            self.sigkill = True

    def exit_task(self) -> None:
        """The task exits (``do_exit``): its owner's exit hooks, then ``exit_mmap``."""
        if self.dead:
            return
        hooks, self.at_exit = self.at_exit, []
        for hook in hooks:
            hook()
        if not self.dead:
            self.exit()

    def exit(self) -> None:
        """Tear the address space down (``exit_mmap``): unmap everything."""
        for base in list(self.thp_heads):
            self._unmap_thp(base)
        for vpn in np.nonzero(self.pte[: self.next_vpn] != PTE_NONE)[0]:
            self.unmap_vpn(int(vpn))
        self.file_vpns.clear()
        self.dead = True
        if self.check in self.m.state_checkers:
            self.m.state_checkers.remove(self.check)

    # --- mlock and pins ----------------------------------------------------------------------

    def mlock(self, pfns: Iterable[int]) -> None:
        """Lock pages in memory (``mlock_folio``): PG_mlocked, onto the unevictable list."""
        m = self.m
        mem = m.mem
        for pfn in np.asarray(list(pfns) if not isinstance(pfns, np.ndarray) else pfns):
            pfn = int(pfn)
            self._vpn_of(pfn)
            flags = mem.flags_mv
            if flags[pfn] >> pf.PG_mlocked & 1:
                continue
            on_lru = bool(flags[pfn] & 1 << pf.PG_lru)
            if on_lru:
                swap.lruvec_del_folio(m, pfn)
            flags[pfn] = flags[pfn] | 1 << pf.PG_mlocked | 1 << pf.PG_unevictable
            flags[pfn] = flags[pfn] & ~(1 << pf.PG_active)
            m.page_zone(pfn).vm_stat[vs.NR_MLOCK] += 1
            if on_lru:
                swap.lruvec_add_folio(m, pfn)

    def pin(self, pfns: Iterable[int]) -> None:
        """Pin pages for DMA (``pin_user_pages``: GUP_PIN_COUNTING_BIAS references each)."""
        mem = self.m.mem
        for pfn in np.asarray(list(pfns) if not isinstance(pfns, np.ndarray) else pfns):
            vpn = self._vpn_of(int(pfn))
            mem.refcount_mv[int(pfn)] += GUP_PIN_COUNTING_BIAS
            self.pinned[vpn] = self.pinned.get(vpn, 0) + 1

    def unpin(self, pfns: Iterable[int]) -> None:
        """Release pins taken by :meth:`pin` (``unpin_user_pages``)."""
        mem = self.m.mem
        for pfn in np.asarray(list(pfns) if not isinstance(pfns, np.ndarray) else pfns):
            vpn = self._vpn_of(int(pfn))
            if not self.pinned.get(vpn):
                raise InvalidArgument(f"pfn {int(pfn):#x} is not pinned")
            self.pinned[vpn] -= 1
            if not self.pinned[vpn]:
                del self.pinned[vpn]
            mem.refcount_mv[int(pfn)] -= GUP_PIN_COUNTING_BIAS

    # --- verification ------------------------------------------------------------------------

    def verify(self) -> list[str]:
        """Return problems: a mapped page whose content token is not what was written."""
        ptes = self.pte[: self.next_vpn]
        vpns = np.nonzero(ptes >= 0)[0]
        pfns = ptes[vpns]
        bad = np.nonzero(self.m.mem.token[pfns] != self.tokens[vpns])[0]
        return [f"{self.name}: vpn {int(vpns[i])} maps pfn {int(pfns[i]):#x} whose token "
                f"{int(self.m.mem.token[pfns[i]]):#x} is not the {int(self.tokens[vpns[i]]):#x} "
                "written" for i in bad[:5]]

    def check(self) -> list[str]:
        """Return problems with this process's pages (run by ``check_state``)."""
        problems = self.verify()
        mem = self.m.mem
        ptes = self.pte[: self.next_vpn]
        for vpn in np.nonzero(ptes >= 0)[0][:100000]:
            pfn = pf.compound_head(mem, int(ptes[vpn]))
            if mem.refcount_mv[pfn] <= 0 or pf.PageBuddy(mem, pfn):
                problems.append(f"{self.name}: vpn {int(vpn)} maps free pfn {pfn:#x}: "
                                f"{mem.dump_page(pfn)}")
            elif pf.PageHead(mem, pfn):
                if mem.mapping_mv[pfn + 1] < 0:  # _entire_mapcount of a PMD-mapped THP
                    problems.append(f"{self.name}: vpn {int(vpn)} maps THP {pfn:#x} whose "
                                    "entire mapcount says it is unmapped")
            elif mem.mapcount_mv[pfn] < 0:
                problems.append(f"{self.name}: vpn {int(vpn)} maps pfn {pfn:#x} with "
                                f"mapcount {mem.mapcount_mv[pfn]}")
            if len(problems) > 5:
                break
        return problems
