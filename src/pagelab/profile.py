"""Kernel profiles: every version-dependent choice of the model, in one place.

A :class:`KernelProfile` names the kernel behaviour a machine follows. ``"mainline"`` is the
reference (v6.16 allocator and compaction, as on the project's machines, with the seed's
non-LRU movable protocol). Each field names the kernel commit or version it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from pagelab.errors import InvalidArgument

__all__ = ["PROFILES", "KernelProfile", "resolve_profile"]


@dataclass(frozen=True)
class KernelProfile:
    """Version-dependent behaviour of the modelled kernel.

    Attributes:
        name: label recorded in provenance and shown in reports.
        kernel_version: the kernel release whose behaviour the profile follows.
        non_lru_movable: the v4.8 framework (bda807d44454, "mm: migrate: support non-lru
            movable page migration") exists. False models v3.8..v4.7: drivers' pages are never
            isolated, except balloon pages through the v3.8 special case.
        balloon_compaction: CONFIG_BALLOON_COMPACTION=y.
        nr_isolated_v48: v4.8's NR_ISOLATED_* accounting that counts non-LRU pages too
            (fixed by "mm, compaction: fix NR_ISOLATED_* stats for pfn based migration", v4.9).
        config_cma: CONFIG_CMA=y (adds the CMA migratetype to /proc output). The project's
            reference machine (6.18, x86-64) runs without CMA.
        pcp_high_order: per-CPU lists also cache orders 1..3 and pageblock_order
            (44042b449872, "mm/page_alloc: allow high-order pages to be stored on the per-cpu
            lists", v5.13); False keeps order-0 only, as v4.8.
        alloc_nofragment: ALLOC_NOFRAGMENT for allocations whose preferred zone is Normal
            (6bb154504f8b, v5.0).
        watermark_boost: boost watermarks after fragmenting fallbacks (1c30844d2dfe, v5.0).
        fallback_smallest: a movable fallback that cannot claim the pageblock splits the
            smallest suitable block, not the largest (Vlastimil Babka, "mm, page_alloc:
            fallback to smallest page when not stealing whole pageblock", 7a8f58f39188, v4.13:
            "avoid splitting a higher-order page in a MIGRATE_UNMOVABLE or
            MIGRATE_RECLAIMABLE pageblock"). Matters only without ``rmqueue_claim_steal``,
            whose steal path takes the smallest block anyway.
        rmqueue_claim_steal: fallbacks split into claim-a-block and steal-a-page
            (v6.15, "mm: page_alloc: speed up fallbacks in rmqueue_bulk()"); False follows
            v4.8's single __rmqueue_fallback.
        migrate_batch: mainline's batched ``migrate_pages`` (v6.3+): ASYNC passes first,
            then the failures retried synchronously one by one; permanent failures returned to
            the caller. False: v4.8's 10-pass loop that puts failures back at once.
        compact_same_migratetype: async direct compaction migrates only from pageblocks of
            the request's migratetype, and non-movable orders 1..3 try async compaction
            before reclaim ("mm, compaction: restrict async compaction to pageblocks of same
            migratetype", v4.12). False follows v4.8: every ASYNC compactor scans only
            MOVABLE/CMA blocks (``migrate_async_suitable``), and only costly orders compact
            before reclaim, a ``__GFP_NORETRY`` one giving up only when compaction was
            DEFERRED (mainline also gives up on SKIPPED, a later change whose version was not
            read; the model ties it to this field).
        compact_finish_pageblock: ``__compact_finished`` finishes the current pageblock
            before reporting success, and a failed migration rescans the rest of its block
            ("mm, compaction: finish whole pageblock to reduce fragmentation", v4.12, made
            unconditional in v6.x). False follows v4.8: success as soon as the order's
            watermark holds and a suitable free block exists (the order's watermark check
            was removed in v4.12); async direct compaction skips the rest of a failed
            order-aligned block.
        fragindex_costly_only: the fragmentation index gates only costly orders ("mm,
            compaction: restrict fragindex to costly orders", v4.9); False applies it to
            every order, as v4.8.
        compaction_fast_search: mainline's scanners (Mel Gorman's series "Increase success
            rates and reduce latency of compaction", v5.1): free lists searched for a source
            and a target block, async free scanner sampling with a stride, kcompactd
            honouring skip hints. False follows v4.8: both scanners walk block by block,
            the free scanner visits every pfn, kcompactd ignores skip hints.
        compact_retry_feedback: ``should_compact_retry`` reads compaction's result and raises
            its priority before giving up (Vlastimil Babka's "reintroduce compaction feedback
            for OOM decisions", v4.9). False follows v4.8 and 4.7-stable, which carried Michal
            Hocko's stop-gap "mm, oom: prevent premature OOM killer invocation for high order
            request": orders 1..3 retry while some zone keeps its order-0 min watermark.
        shrink_slab_priority_target: a shrinker's scan target follows reclaim's priority,
            ``(freeable >> priority) * 4 / seeks`` (Josef Bacik, "mm: use sc->priority for
            slab shrink targets", 9092c71bb724, v4.16). False follows v4.8: the target is
            the share of the node's LRU pages that this ``shrink_node`` scanned,
            ``4 * nr_scanned / seeks * freeable / (lru_pages + 1)``, and what is left over
            is deferred whole.
        reclaim_activate_dirty: reclaim activates a dirty page-cache folio it must leave to
            the flusher (Johannes Weiner, "mm: vmscan: move dirty pages out of the way until
            they're flushed", c55e8d035b28, v4.12). False follows v4.8: the folio stays on
            the inactive list (``keep_locked``); both set PG_reclaim, so the end of its
            writeback moves it to the inactive tail.
        kswapd_wakes_kcompactd: ``wakeup_kswapd`` wakes kcompactd itself when kswapd has
            nothing to do (the node is balanced or hopeless) and the request cannot compact
            for itself (no ``__GFP_DIRECT_RECLAIM``): David Rientjes, "mm, page_alloc: wakeup
            kcompactd even if kswapd cannot free more memory", posted to linux-mm in March
            2018 and merged for v4.17. False follows v4.8, where kcompactd's only waker is
            kswapd going back to sleep after it reclaimed.
        nr_cpus: CPUs (per-CPU pagesets and, later, explorer CPUs).
    """

    name: str = "mainline"
    kernel_version: str = "6.16"
    non_lru_movable: bool = True
    balloon_compaction: bool = True
    nr_isolated_v48: bool = False
    config_cma: bool = False
    pcp_high_order: bool = True
    alloc_nofragment: bool = True
    watermark_boost: bool = True
    fallback_smallest: bool = True
    rmqueue_claim_steal: bool = True
    migrate_batch: bool = True
    compact_same_migratetype: bool = True
    compact_finish_pageblock: bool = True
    fragindex_costly_only: bool = True
    compaction_fast_search: bool = True
    compact_retry_feedback: bool = True
    shrink_slab_priority_target: bool = True
    reclaim_activate_dirty: bool = True
    kswapd_wakes_kcompactd: bool = True
    nr_cpus: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.nr_cpus <= 1024:
            raise InvalidArgument(f"nr_cpus={self.nr_cpus}: give between 1 and 1024 CPUs")


_V48 = KernelProfile(
    name="v4.8", kernel_version="4.8", nr_isolated_v48=True, pcp_high_order=False,
    alloc_nofragment=False, watermark_boost=False, rmqueue_claim_steal=False,
    fallback_smallest=False,
    migrate_batch=False, compact_same_migratetype=False, compact_finish_pageblock=False,
    fragindex_costly_only=False, compaction_fast_search=False, compact_retry_feedback=False,
    shrink_slab_priority_target=False, reclaim_activate_dirty=False,
    kswapd_wakes_kcompactd=False,
)

PROFILES: dict[str, KernelProfile] = {
    "mainline": KernelProfile(),
    "v4.8": _V48,
    # v4.7 is v4.8 without the seed's framework (and its NR_ISOLATED accounting).
    "pre-4.8": replace(_V48, name="pre-4.8", kernel_version="4.7", non_lru_movable=False,
                       nr_isolated_v48=False),
}


def resolve_profile(profile: str | KernelProfile, **overrides: object) -> KernelProfile:
    """Return the profile named ``profile`` (or ``profile`` itself) with ``overrides`` applied.

    A name may switch boolean fields after ``+``: ``"v4.8+watermark_boost"`` is v4.8 with
    v5.0's watermark boosting, ``"mainline+alloc_nofragment=0"`` mainline without
    ALLOC_NOFRAGMENT. The profile keeps the whole string as its name.
    """
    if isinstance(profile, KernelProfile):
        base = profile
    else:
        name, *switches = profile.split("+")
        if name not in PROFILES:
            raise InvalidArgument(
                f"unknown profile {name!r}; use one of {', '.join(PROFILES)} or a KernelProfile"
            )
        base = PROFILES[name]
        if switches:
            switched: dict[str, object] = dict(_switch(s) for s in switches)
            base = replace(base, name=profile, **switched)  # type: ignore[arg-type]
    return replace(base, **overrides) if overrides else base  # type: ignore[arg-type]


def _switch(text: str) -> tuple[str, bool]:
    """Parse one ``field`` or ``field=0|1`` of a profile name."""
    field_name, _, value = text.partition("=")
    switches = sorted(f.name for f in fields(KernelProfile) if f.type in (bool, "bool"))
    if field_name not in switches or value not in ("", "0", "1"):
        raise InvalidArgument(f"profile switch {text!r}: give a field of KernelProfile, "
                              f"optionally =0 or =1, one of: {', '.join(switches)}")
    return field_name, value != "0"
