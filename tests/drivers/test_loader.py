"""Loading pluggable drivers by name, the protocol check, and ``pagelab driver-check``."""

from __future__ import annotations

import errno
import importlib
import itertools
import re
import runpy
import sys
import textwrap
from pathlib import Path

import pytest

from pagelab.cli import main
from pagelab.drivers.gpu import Gpu
from pagelab.drivers.loader import driver_pages, load_driver, run_driver_check
from pagelab.errors import BadInput, InvalidArgument
from pagelab.mm import page_flags as pf
from pagelab.mm.filemap import get_page

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "tests.drivers.sample_driver:Sample"
_names = itertools.count()


@pytest.fixture
def on_path(monkeypatch):
    """Make the repository root importable (``tests.drivers.*``) for this test only."""
    monkeypatch.setattr(sys, "path", [str(ROOT), *sys.path])
    importlib.invalidate_caches()


@pytest.fixture
def sample(on_path):
    """The tutorial's driver module."""
    return importlib.import_module("tests.drivers.sample_driver")


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    """Write a module with a fresh name into an importable directory; return its name."""
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])

    def write(source: str) -> str:
        name = f"pagelab_test_driver_{next(_names)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return name

    return write


# --- load_driver --------------------------------------------------------------------------


def test_load_driver_returns_the_class(on_path):
    assert load_driver("pagelab.drivers.gpu:Gpu") is Gpu
    assert load_driver(SAMPLE).__name__ == "Sample"


@pytest.mark.parametrize("spec", ["", "gpu", "a:b:c", "mod:", ":Gpu", "my-mod:Gpu",
                                  "pagelab.drivers.gpu:Gpu.x", ".gpu:Gpu", "pagelab..gpu:Gpu"])
def test_bad_syntax(spec):
    with pytest.raises(InvalidArgument, match="not of the form module:Class"):
        load_driver(spec)


@pytest.mark.parametrize("spec", ["no_such_module_xyz:Driver", "pagelab.drivers.nope:Driver",
                                  "no_such_pkg_xyz.sub:Driver"])
def test_unknown_module(spec):
    with pytest.raises(InvalidArgument, match=r"no module named .*PYTHONPATH"):
        load_driver(spec)


def test_module_that_fails_to_import_is_bad_input(write_module):
    missing = write_module("import no_such_dependency_xyz\n")
    with pytest.raises(BadInput, match=r"imports 'no_such_dependency_xyz'.*install it"):
        load_driver(f"{missing}:Driver")
    broken = write_module("class Driver(:\n")
    with pytest.raises(BadInput, match=r"SyntaxError.*fix the module"):
        load_driver(f"{broken}:Driver")
    raising = write_module("raise RuntimeError('boom\\nsecond line')\n")
    with pytest.raises(BadInput, match="RuntimeError: boom second line; fix") as exc:
        load_driver(f"{raising}:Driver")
    assert "\n" not in str(exc.value)


def test_unknown_class_names_the_drivers_there(on_path):
    with pytest.raises(InvalidArgument, match=r"no class 'Nope' \(drivers there: Sample\)"):
        load_driver("tests.drivers.sample_driver:Nope")
    with pytest.raises(InvalidArgument, match="is a module, not a class"):
        load_driver("tests.drivers.sample_driver:errno")


def test_missing_parts_of_the_contract(write_module, on_path):
    with pytest.raises(InvalidArgument, match="Machine lacks isolate_page"):
        load_driver("tests.drivers.sample_driver:Machine")
    no_migrate = write_module("""
        class Driver:
            def __init__(self, m): pass
            def isolate_page(self, m, page, mode): return True
            def putback_page(self, m, page): pass
            def allocate(self, n): return None
            def release(self, h): pass
        """)
    with pytest.raises(InvalidArgument, match=r"lacks migratepage \(or migrate_page\)"):
        load_driver(f"{no_migrate}:Driver")
    no_allocate = write_module("""
        class Driver:
            def __init__(self, m): pass
            def isolate_page(self, m, page, mode): return True
            def migratepage(self, m, mapping, new, page, mode): return -11
            def putback_page(self, m, page): pass
        """)
    with pytest.raises(InvalidArgument, match="lacks allocate, release; a pluggable"):
        load_driver(f"{no_allocate}:Driver")
    bad_init = write_module("""
        from pagelab.drivers.gpu import Gpu
        class Driver(Gpu):
            def __init__(self, m, pool_size): super().__init__(m)
        """)
    with pytest.raises(InvalidArgument, match=r"cannot be built as Driver\(m\)"):
        load_driver(f"{bad_init}:Driver")


def test_movable_operations_style_driver_loads_and_passes(write_module):
    name = write_module("""
        from pagelab.drivers.gpu import Gpu
        from pagelab.mm.migrate import MovableOpsAdapter
        from pagelab.mm.rmap import AddressSpace

        class Driver(Gpu):
            '''A movable_operations driver: migrate_page(dst, src), mapping via the adapter.'''
            migratepage = None
            def __init__(self, m):
                super().__init__(m)
                self.mapping = AddressSpace(m, "mops", a_ops=MovableOpsAdapter(self))
            def migrate_page(self, m, dst, src, mode):
                return Gpu.migratepage(self, m, self.mapping, dst, src, mode)
        """)
    cls = load_driver(f"{name}:Driver")
    report = run_driver_check(cls, memory="64M")
    assert report.passed, report.problems
    assert report.phases[1].migrated == 64


# --- run_driver_check catches each broken rule ------------------------------------------------


def _broken(sample):
    """Sample drivers with one bug each, and the rule the check must name."""
    base = sample.Sample

    class NoCopy(base):
        def migratepage(self, m, mapping, newpage, page, mode):
            rc = super().migratepage(m, mapping, newpage, page, mode)
            m.mem.token_mv[newpage] = 0
            return rc

    class TouchesLru(base):
        def migratepage(self, m, mapping, newpage, page, mode):
            rc = super().migratepage(m, mapping, newpage, page, mode)
            own = m.alloc_list_head()
            m.mem.list_del(page)
            m.mem.list_add(page, own)
            return rc

    class SetsIsolated(base):
        def isolate_page(self, m, page, mode):
            m.mem.flags_mv[page] = m.mem.flags_mv[page] | 1 << pf.PG_isolated
            return True

    class NeverTakesBack(base):
        def isolate_page(self, m, page, mode):
            out = self.__dict__.setdefault("out", set())
            if page in out:
                return False
            out.add(page)
            return True

    class AlwaysBusy(base):
        def migratepage(self, m, mapping, newpage, page, mode):
            return -errno.EAGAIN

    class PositiveRc(base):
        def migratepage(self, m, mapping, newpage, page, mode):
            return 1

    class KeepsNewOnFailure(base):
        def migratepage(self, m, mapping, newpage, page, mode):
            get_page(m, newpage)
            return -errno.EBUSY

    return [(NoCopy, "copy"), (TouchesLru, "lru"),
            (SetsIsolated, "warn-isolate_movable_page"), (NeverTakesBack, "putback"),
            (AlwaysBusy, "migrate"), (PositiveRc, "migrate-rc"),
            (KeepsNewOnFailure, "failed-new")]


def test_broken_callbacks_are_named(sample):
    for cls, rule in _broken(sample):
        report = run_driver_check(cls, memory="64M", objects=2, pages=4)
        assert rule in report.problems, (cls.__name__, report.problems)
        assert not report.passed


@pytest.mark.parametrize(("helper", "rules"), [
    ("SetPageMovable", {"allocate"}),
    ("ClearPageMovable", {"clear-old", "release-clear"}),
    ("get_page", {"get-new"}),
    ("put_page", {"put-old", "release-ref", "leak"}),
])
def test_forgotten_protocol_steps_are_named(sample, monkeypatch, helper, rules):
    monkeypatch.setattr(sample, helper, lambda *args: None)
    report = run_driver_check(sample.Sample, memory="64M", objects=2, pages=4)
    assert rules <= set(report.problems), report.problems


def test_the_check_restores_the_drivers_a_ops_and_leaves_nothing(sample):
    report = run_driver_check(sample.Sample, memory="64M")
    assert report.passed, report.problems
    assert report.phases[-1].pages == 0


def test_check_arguments_are_validated():
    with pytest.raises(InvalidArgument, match="at least 1"):
        run_driver_check(Gpu, objects=0)


# --- the CLI ----------------------------------------------------------------------------------


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["driver-check", *args])
    out, err = capsys.readouterr()
    return exc.value.code or 0, out, err


def test_cli_driver_check_passes(capsys, on_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli(capsys, SAMPLE, "--memory", "64M")
    assert code == 0, out + err
    assert "release isolated" in out and out.rstrip().endswith("driver-check: PASS")
    assert err == ""


@pytest.mark.parametrize("spec", ["sample_driver", "no_such_module_xyz:Driver",
                                  "tests.drivers.sample_driver:Nope",
                                  "tests.drivers.sample_driver:Machine",
                                  "pagelab.drivers.gpu:Bo"])
def test_cli_bad_driver_exits_2_with_one_line(capsys, on_path, monkeypatch, spec):
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli(capsys, spec)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("pagelab: error: ")


def test_cli_bad_option_exits_2_with_one_line(capsys, on_path):
    code, _, err = run_cli(capsys, SAMPLE, "--pages", "0")
    assert code == 2 and len(err.splitlines()) == 1 and "at least 1" in err


def test_cli_imports_from_the_current_directory_and_reports_failures(
        capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI adds the cwd; undo it
    (tmp_path / "leaky_driver_xyz.py").write_text(textwrap.dedent("""
        from pagelab.drivers.gpu import Gpu
        from pagelab.mm.filemap import lock_page, unlock_page
        from pagelab.mm.migrate import ClearPageMovable

        class Leaky(Gpu):
            def destroy_bo(self, bo):  # the release protocol without its put_page
                for pfn in bo.pages:
                    lock_page(self.m, pfn)
                    ClearPageMovable(self.m, pfn)
                    unlock_page(self.m, pfn)
                    self.isolated.discard(pfn)
                del self.bos[bo.handle]
            release = destroy_bo
        """))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "leaky_driver_xyz:Leaky", "--memory", "64M")
    assert code == 1
    assert "FAIL [release-ref]" in out and "FAIL [leak]" in out
    assert out.rstrip().endswith("driver-check: FAIL, 2 rule(s) broken")


# --- the tutorial -----------------------------------------------------------------------------

TUTORIAL = ROOT / "docs" / "tutorial-driver.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), flags=re.DOTALL)


def test_tutorial_example_is_the_sample_driver():
    source = (ROOT / "tests" / "drivers" / "sample_driver.py").read_text()
    assert _python_blocks()[0] == source
    assert len(source.splitlines()) < 100


def test_tutorial_test_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", [str(ROOT / "tests" / "drivers"), *sys.path])
    snippet = tmp_path / "snippet.py"
    snippet.write_text(_python_blocks()[1])
    namespace = runpy.run_path(str(snippet))
    m = namespace["m"]
    assert len(driver_pages(m)) == 8 and not m.warnings
