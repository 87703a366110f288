"""The ``pagelab`` command: thin commands, each one library call and one renderer."""

from __future__ import annotations

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
def demo(
    memory: Annotated[str, typer.Option(help="RAM of the simulated machine.")] = "2G",
    steps: Annotated[int, typer.Option(help="Allocation/free steps.")] = 200_000,
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
