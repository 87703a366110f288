"""The ``pagelab`` command: thin commands, each one library call and one renderer."""

from __future__ import annotations

import os
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from pagelab.errors import BadInput, PagelabError

app = typer.Typer(
    name="pagelab",
    help="A faithful, fast model of Linux physical memory: buddy allocator, migration, "
    "compaction, and the kernel's own /proc files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class FragIndex(StrEnum):
    """Which debugfs extfrag file ``pagelab frag`` prints."""

    both = "both"
    unusable = "unusable"
    extfrag = "extfrag"


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}; give a readable buddyinfo file "
                       "(default /proc/buddyinfo)") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not text; give a /proc/buddyinfo file") from None


@app.command()
def frag(
    path: Annotated[Path, typer.Argument(help="A buddyinfo file.")] = Path("/proc/buddyinfo"),
    index: Annotated[FragIndex, typer.Option(help="Print one index file only.")] = FragIndex.both,
    table: Annotated[bool, typer.Option(help="Also print a table per zone.")] = False,
) -> None:
    """Print debugfs extfrag/unusable_index and extfrag_index computed from a buddyinfo.

    The output is byte for byte what /sys/kernel/debug/extfrag/* would print for the same
    free lists, without root or debugfs.
    """
    from pagelab.io import procfs

    info = procfs.parse_buddyinfo(_read_text(path))
    if index in (FragIndex.both, FragIndex.unusable):
        out.print(procfs.unusable_index_from_buddyinfo(info), end="")
    if index in (FragIndex.both, FragIndex.extfrag):
        out.print(procfs.extfrag_index_from_buddyinfo(info), end="")
    if table:
        out.print(_frag_table(info))


def _frag_table(info: object) -> Table:
    from pagelab.io import procfs
    from pagelab.mm import vmstat as vs

    assert isinstance(info, procfs.Buddyinfo)
    table = Table(title="Free memory by order (pages of 4 KiB)")
    for col in ("node", "zone", "order", "free blocks", "free pages", "unusable", "extfrag"):
        table.add_column(col, justify="right")
    for row in info.rows:
        for order in range(vs.NR_PAGE_ORDERS):
            contig = vs.fill_contig_page_info(row.nr_free, order)
            unusable = vs.unusable_free_index(order, contig)
            ext = vs.fragmentation_index(row.nr_free, order)
            table.add_row(str(row.node), row.zone, str(order), str(row.nr_free[order]),
                          str(row.nr_free[order] << order), f"{unusable / 1000:.3f}",
                          f"{ext / 1000:.3f}")
    return table


@app.command()
def run(
    memory: Annotated[str, typer.Option(help="RAM of the phone.")] = "2G",
    duration: Annotated[float, typer.Option(help="Virtual seconds of phone use.")] = 50.0,
    seed: Annotated[int, typer.Option(help="Seed of the workload (both kernels get it).")] = 1,
    zram: Annotated[bool, typer.Option(help="Swap to zram.")] = True,
    zram_movable: Annotated[bool, typer.Option(
        help="zram's pool pages are movable where the kernel can.")] = True,
    gpu: Annotated[bool, typer.Option(help="The GPU buffer driver.")] = True,
    gpu_movable: Annotated[bool, typer.Option(
        help="The GPU driver makes its pages movable where the kernel can.")] = True,
    lmk: Annotated[bool, typer.Option(help="Android's in-kernel low-memory killer.")] = True,
    driver: Annotated[str | None, typer.Option(
        help="Your own movable driver as module:Class, used instead of the GPU driver.")]
    = None,
    before: Annotated[str, typer.Option(help="Kernel profile without the framework.")]
    = "pre-4.8",
    after: Annotated[str, typer.Option(help="Kernel profile with it (the seed's).")] = "v4.8",
    out_dir: Annotated[Path, typer.Option("--out", help="Results folder.")]
    = Path("pagelab-results"),
    jobs: Annotated[int, typer.Option(help="Processes (one kernel each).")] = 2,
    apps: Annotated[int, typer.Option(help="Apps kept cached before the oldest is killed.")]
    = 10,
    arch: Annotated[str, typer.Option(help="Layout: x86_64 (DMA, DMA32, Normal) or arm64 "
                                      "(a phone's: one DRAM bank from 2 GiB).")] = "x86_64",
    extra_free_kbytes: Annotated[int, typer.Option(
        help="Android's vm.extra_free_kbytes (ActivityManager sets 24300 on a 1080p "
        "phone); 0: the kernel's own watermarks.")] = 0,
) -> None:
    """Run the seed's experiment: a phone before and after non-LRU page migration.

    The same seeded phone workload (apps, zram swap, GPU buffers, order-2/3/4 kernel
    allocations) runs on a kernel without the v4.8 framework and on the seed's kernel; prints
    the comparison and writes procfs files, traces, time series (CSV and Parquet) and figures
    to the results folder. The current directory is importable for --driver.
    """
    from pagelab.lab.phone import check_experiment, compare, run_experiment, write_results
    from pagelab.workloads.phone import PhoneConfig

    if driver is not None and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    config = PhoneConfig(memory=memory, duration=duration, seed=seed, zram=zram, gpu=gpu,
                         zram_movable=zram_movable, gpu_movable=gpu_movable, lmk=lmk,
                         driver=driver, cached_apps=apps, arch=arch,
                         extra_free_kbytes=extra_free_kbytes)
    check_experiment(config, (before, after))  # bad input fails before the progress bar
    with Progress(console=err, transient=True) as bar:
        tasks = {k: bar.add_task(f"{k:>8} kernel", total=duration) for k in (before, after)}
        results = run_experiment(
            config, (before, after), jobs=jobs,
            progress=lambda k, done, total: bar.update(tasks[k], completed=done))
    table = Table(title=f"The phone, {memory}, {duration:g} virtual s, seed {seed}")
    table.add_column("metric")
    for r in results:
        table.add_column(f"{r.profile}", justify="right")
    for name, values in compare(results):
        table.add_row(name, *values)
    out.print(table)
    written = write_results(out_dir, results)
    out.print(f"wrote {len(written)} files to {out_dir}/")


@app.command()
def demo(
    memory: Annotated[str, typer.Option(help="RAM of the simulated machine.")] = "1G",
    steps: Annotated[int, typer.Option(help="Allocation/free steps.")] = 300_000,
    seed: Annotated[int, typer.Option(help="Seed of the workload.")] = 1,
    profile: Annotated[str, typer.Option(help="Kernel profile: mainline, v4.8, pre-4.8.")]
    = "mainline",
    fill: Annotated[float, typer.Option(help="Fraction of memory kept allocated.")] = 0.85,
) -> None:
    """Boot a simulated x86-64 machine, churn its allocator, and show the damage.

    Prints buddyinfo, pagetypeinfo and the extfrag indices before and after a seeded mix of
    movable, unmovable and reclaimable allocations of orders 0..4.
    """
    from pagelab.machine import Machine
    from pagelab.workloads.churn import ChurnSpec, run_churn

    spec = ChurnSpec(steps=steps, target_fill=fill)
    m = Machine.build(memory=memory, profile=profile, seed=seed, page_owner=True)
    out.print(f"[bold]{m!r}[/bold]\n")
    out.print("[bold]/proc/buddyinfo after boot[/bold]")
    out.print(m.procfs("buddyinfo"), end="")
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("churning", total=steps)
        result = run_churn(m, spec, progress=lambda done, total: bar.update(task, completed=done))
    m.check_state()
    summary = Table(title=f"{steps} steps, seed {seed}: requests by order")
    for col in ("order", "requested", "failed"):
        summary.add_column(col, justify="right")
    for order, n in result.requested.items():
        summary.add_row(str(order), str(n), str(result.failed[order]))
    out.print(summary)
    for name in ("buddyinfo", "pagetypeinfo", "unusable_index", "extfrag_index"):
        out.print(f"\n[bold]{name} after the churn[/bold]")
        out.print(m.procfs(name), end="")


@app.command()
def procfs(
    name: Annotated[str, typer.Argument(help="buddyinfo, pagetypeinfo, zoneinfo, vmstat, "
                                        "extfrag_index or unusable_index.")],
    memory: Annotated[str, typer.Option(help="RAM of the simulated machine.")] = "4G",
    nodes: Annotated[int, typer.Option(help="NUMA nodes.")] = 1,
    profile: Annotated[str, typer.Option(help="Kernel profile.")] = "mainline",
) -> None:
    """Print one /proc or debugfs file of a freshly booted simulated machine."""
    from pagelab.machine import Machine

    m = Machine.build(memory=memory, nodes=nodes, profile=profile)
    out.print(m.procfs(name), end="")


experiment_app = typer.Typer(help="Run a kernel experiment on a simulated machine.",
                             no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("compaction_test")
def experiment_compaction_test(
    memory: Annotated[str, typer.Option(help="RAM of the simulated machine.")] = "2G",
    profile: Annotated[str, typer.Option(help="Kernel profile.")] = "mainline",
    pin_holes: Annotated[bool, typer.Option(help="Pin what stays mapped (the failing "
                                            "variant).")] = False,
    seed: Annotated[int, typer.Option(help="Seed.")] = 1,
) -> None:
    """Run tools/testing/selftests/mm/compaction_test on a simulated machine.

    Prints buddyinfo before and after, the compaction and migration counters it moved, and
    the selftest's own TAP result; exits 1 when the selftest fails, as the selftest does.
    """
    from pagelab.machine import Machine
    from pagelab.workloads.compaction_test import run_compaction_test

    m = Machine.build(memory=memory, profile=profile, seed=seed)
    out.print(f"[bold]{m!r}[/bold]")
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("compaction_test", total=None)
        result = run_compaction_test(
            m, pin_holes=pin_holes,
            progress=lambda msg: bar.update(task, description=msg))
    m.check_state()
    out.print("\n[bold]/proc/buddyinfo before[/bold]")
    out.print(result.buddyinfo_before, end="")
    out.print("[bold]/proc/buddyinfo after the huge page allocations[/bold]")
    out.print(result.buddyinfo_after, end="")
    table = Table(title="/proc/vmstat counters moved by the test")
    table.add_column("counter")
    table.add_column("delta", justify="right")
    for name, delta in result.counters.items():
        table.add_row(name, str(delta))
    out.print(table)
    out.print(result.tap(), end="")
    out.print(f"pass criterion: more than 20 % of MemFree ({result.mem_free_kb // 5} kB) as huge "
              f"pages; got {result.nr_hugepages * result.hugepage_size_kb} kB")
    if not result.passed:
        raise typer.Exit(1)


@app.command("driver-check")
def driver_check(
    driver: Annotated[str, typer.Argument(help="The driver class as module:Class, e.g. "
                                          "pagelab.drivers.gpu:Gpu.")],
    memory: Annotated[str, typer.Option(help="RAM of the simulated machine.")] = "256M",
    objects: Annotated[int, typer.Option(help="Handles to allocate.")] = 4,
    pages: Annotated[int, typer.Option(help="Pages per handle.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the machine.")] = 0,
) -> None:
    """Check a movable driver against the non-LRU page migration protocol.

    Builds Driver(m) on a small machine, allocates pages with allocate(npages), migrates them
    through isolate_movable_page and migrate_pages, puts them back, releases a handle while
    its pages are isolated, then releases everything; checks contents (tokens), check_state
    and each callback's duties. The current directory is importable, as with uvicorn.
    Exits 1 when a rule is broken, 2 when the driver cannot be loaded. The contract is in
    docs/tutorial-driver.md.
    """
    import os

    from pagelab.drivers.loader import load_driver, run_driver_check

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    report = run_driver_check(load_driver(driver), spec=driver, memory=memory,
                              objects=objects, pages=pages, seed=seed)
    out.print(f"[bold]{report.driver}[/bold] on {report.machine}")
    table = Table(title="The driver's pages through the protocol")
    for col in ("phase", "driver pages", "isolated", "migrated", "failed", "put back"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for p in report.phases:
        table.add_row(p.phase, str(p.pages), str(p.isolated), str(p.migrated), str(p.failed),
                      str(p.put_back))
    out.print(table)
    for rule, message in report.problems.items():
        times = f" ({report.counts[rule]} times)" if report.counts[rule] > 1 else ""
        text = message if len(message) <= 400 else message[:399] + "…"
        out.print(f"FAIL [{rule}] {text}{times}", markup=False)
    if not report.passed:
        out.print(f"driver-check: FAIL, {len(report.problems)} rule(s) broken")
        raise typer.Exit(1)
    out.print("driver-check: PASS")


@experiment_app.command("fragmenter")
def experiment_fragmenter(
    memory: Annotated[str, typer.Option(help="RAM of the simulated machine.")] = "1G",
    seconds: Annotated[float, typer.Option(help="Virtual seconds of kcompactd.")] = 10.0,
    proactiveness: Annotated[int, typer.Option(help="vm.compaction_proactiveness.")] = 20,
    profile: Annotated[str, typer.Option(help="Kernel profile.")] = "mainline",
    seed: Annotated[int, typer.Option(help="Seed.")] = 1,
) -> None:
    """Fragment memory (free 3/4 of every 2 MiB) and watch proactive compaction work it off."""
    from pagelab.machine import Machine
    from pagelab.workloads.fragmenter import run_fragmenter

    m = Machine.build(memory=memory, profile=profile, seed=seed)
    if not 0 <= proactiveness <= 100:
        raise BadInput(f"proactiveness {proactiveness}: give 0..100")
    m.compaction_proactiveness = proactiveness
    out.print(f"[bold]{m!r}[/bold]")
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("kcompactd", total=None)
        result = run_fragmenter(m, seconds=seconds,
                                progress=lambda done, total: bar.update(task, completed=done,
                                                                        total=total))
    m.check_state()
    out.print("[bold]/proc/buddyinfo after fragmenting[/bold]")
    out.print(result.buddyinfo_before, end="")
    table = Table(title=f"node 0 fragmentation score (proactive compaction above "
                        f"{result.wmark_high}, down to {result.wmark_low})")
    for col in ("time (ms)", "score", "free 2 MiB blocks"):
        table.add_column(col, justify="right")
    for t, score, blocks in zip(result.times_ms, result.scores, result.order9_blocks,
                                strict=True):
        table.add_row(str(t), str(score), str(blocks))
    out.print(table)
    out.print("[bold]/proc/buddyinfo at the end[/bold]")
    out.print(result.buddyinfo_after, end="")
    for name, delta in result.counters.items():
        out.print(f"{name} {delta}")


def _rows_table(title: str, columns: list[str], rows: list[list[str]],
                text_columns: int) -> Table:
    """A table of text rows: the first ``text_columns`` columns left, the figures right."""
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < text_columns else "right")
    for row in rows:
        table.add_row(*row)
    return table


@experiment_app.command("zram_dd")
def experiment_zram_dd(
    memory: Annotated[str, typer.Option(help="RAM of the guest.")] = "1G",
    files: Annotated[int, typer.Option(help="dd processes and files.")] = 8,
    file_size: Annotated[str, typer.Option(help="Bytes each dd copies.")] = "128M",
    bs: Annotated[str, typer.Option(help="dd's buffer (and a CPU's time slice).")] = "1M",
    disksize: Annotated[str, typer.Option(help="zram0's size.")] = "2G",
    before: Annotated[str, typer.Option(help="Kernel profile without the seed.")] = "pre-4.8",
    after: Annotated[str, typer.Option(help="Kernel profile with it.")] = "v4.8",
    seed: Annotated[int, typer.Option(help="Seed (the partition's contents).")] = 1,
    jobs: Annotated[int, typer.Option(help="Processes (one kernel each).")] = 2,
) -> None:
    """Run the test in the seed's zram patch: dd eight files onto ext4 on zram, delete half,
    fstrim, compact_memory; print buddyinfo and compare with the changelog's own figures."""
    from pagelab.lab.zram_dd import check_kernels, compare_rows, run_kernels
    from pagelab.workloads.zram_dd import ZramDdConfig

    config = ZramDdConfig(memory=memory, files=files, file_size=file_size, bs=bs,
                          disksize=disksize, seed=seed)
    check_kernels(config, (before, after))  # one-line errors before the progress bar starts
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        bar.add_task(f"{before} and {after}: {files} x dd of {file_size}", total=None)
        results = run_kernels(config, (before, after), jobs=jobs)
    for result in results:
        out.print(f"[bold]{result.profile}: /proc/buddyinfo at init, then after "
                  f"compact_memory[/bold]")
        out.print(result.buddyinfo_init, end="")
        out.print(result.buddyinfo_compaction, end="")
    columns, rows = compare_rows(results)
    out.print(_rows_table("The seed's zram test: the model and the changelog's guests",
                          ["", *columns], rows, text_columns=1))


@experiment_app.command("zram_live")
def experiment_zram_live(
    pages: Annotated[int, typer.Option(help="Pages written.")] = 8192,
    pattern: Annotated[str, typer.Option(help="Pages discarded: odd, chunks or thirds.")]
    = "odd",
    compressibility: Annotated[float, typer.Option(help="Content model: share of a page "
                                                   "that compresses.")] = 0.55,
    seed: Annotated[int, typer.Option(help="Seed (the pages' contents).")] = 1,
    content: Annotated[str, typer.Option(help="model (the content model's pages) or tail "
                                         "(random bytes then zeros: same lz4 sizes on "
                                         "both sides, so every column must agree).")]
    = "model",
    device: Annotated[str, typer.Option(help="An unused zram device of this machine.")]
    = "zram0",
) -> None:
    """Write the same pages to the model's zram and to this machine's (root, an unused
    device), discard some, compact the pool; print both mm_stat after each step."""
    from pagelab.lab.zram_live import ZramLiveConfig, compare_rows, run_live, run_model

    config = ZramLiveConfig(pages=pages, pattern=pattern, compressibility=compressibility,
                            seed=seed, content_kind=content)
    config.validate()
    release, live = run_live(config, device)
    model = run_model(config)
    out.print(_rows_table(f"zram mm_stat: Linux {release} ({device}) and the model (mainline)",
                          ["step", "column", "kernel", "model", "difference"],
                          compare_rows(model, live), text_columns=2))


class Strategy(StrEnum):
    """How ``pagelab explore`` picks schedules."""

    exhaustive = "exhaustive"
    random = "random"
    hypothesis = "hypothesis"


@app.command()
def explore(
    scenario: Annotated[str, typer.Argument(help="Scenario name (see --list).")] = "",
    bound: Annotated[int, typer.Option(help="Preemption bound (exhaustive).")] = 2,
    strategy: Annotated[Strategy, typer.Option(help="exhaustive or random.")]
    = Strategy.exhaustive,
    count: Annotated[int, typer.Option(help="Schedules to try (random).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed (random).")] = 0,
    save: Annotated[Path | None, typer.Option(help="Write a failing schedule here.")] = None,
    replay: Annotated[Path | None, typer.Option(help="Re-run a saved schedule, step by "
                                                "step.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the scenarios.")] = False,
    driver: Annotated[str | None, typer.Option(help="module:Class for the user_driver "
                                               "scenario.")] = None,
    state_hashing: Annotated[bool, typer.Option(
        help="Exhaustive: skip a configuration (memory, drivers, CPU stacks) already "
        "explored with as much preemption budget left.")] = False,
) -> None:
    """Explore a scenario's interleavings on several CPUs; replay a failing schedule."""
    from pagelab.sched import explorer as ex
    from pagelab.sched.scenarios import SCENARIOS, get_scenario

    if list_:
        for name, factory in SCENARIOS.items():
            out.print(f"{name:24} {factory().description}")
        out.print(f"{'user_driver':24} your driver (--driver module:Class) against compaction "
                  "and its own release and allocation")
        return
    if replay is not None:
        name, schedule = ex.parse_replay(_read_text(replay))
        if name.startswith("driver:"):
            sc = get_scenario("user_driver", driver=name.removeprefix("driver:"))
        else:
            sc = get_scenario(name)
        result = ex.run_schedule(sc, schedule, record_pages=True)
        out.print(f"[bold]{name}[/bold]: schedule {schedule}")
        for line in ex.describe_run(result):
            out.print(line, markup=False)
        if result.failed:
            raise typer.Exit(1)
        return
    if not scenario:
        raise BadInput("give a scenario name (pagelab explore --list shows them)")
    if driver and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # drivers next to the user's work, as uvicorn does
    sc = get_scenario(scenario, driver=driver)
    found = ex.explore(sc, strategy.value, bound=bound, count=count, seed=seed,
                       state_hashing=state_hashing)
    how = f"bound {bound}" if strategy == Strategy.exhaustive else f"seed {seed}"
    if found.failure is None:
        out.print(f"{scenario}: {found.schedules} schedules ({strategy.value}, {how}) in "
                  f"{found.seconds:.2f} s: no finding")
        return
    out.print(f"[bold red]{scenario}: finding after {found.schedules} schedules[/bold red]")
    for line in ex.describe_run(found.failure)[-3:]:
        out.print(line, markup=False)
    out.print(f"schedule: {found.failure.schedule}")
    if save is not None:
        save.write_text(ex.format_schedule(sc, found.failure))
        out.print(f"replay with: pagelab explore --replay {save}")
    raise typer.Exit(1)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; bad input prints one line to stderr and exits 2."""
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        app(args=argv, prog_name="pagelab")
    except PagelabError as exc:
        err.print(f"pagelab: error: {_one_line(str(exc))}", markup=False)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
