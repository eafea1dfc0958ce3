"""The package's layers, read from its imports: no circle, and no import that points up a layer; and
no test module imports another (what tests share lives in tests/helpers.py and tests/conftest.py).

Every import counts -- top-level, inside functions and under ``TYPE_CHECKING`` -- because a lazy import
that only works thanks to its laziness is a circle all the same.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ssrbench"
TESTS = Path(__file__).resolve().parent

# lowest first, one folder a floor (run/ holds four, its modules named); a module may import its own layer or any
# below it. The leaderboard package sits just above core and depends on nothing else of ssrbench, so every layer can
# read and write results.
LAYERS = [
    ("core", ["__init__", "core"]),
    ("results", ["leaderboard"]),
    ("models", ["models", "data"]),
    ("tasks", ["pretext"]),
    ("defense", ["defense"]),
    ("attacks", ["adversarial"]),
    ("training", ["training"]),
    ("run: configs, evaluation", ["run", "run.config", "run.evaluate", "run.testing", "run.suites"]),
    ("run: sweep", ["run.sweep"]),
    ("run: spec, units", ["run.spec", "run.units"]),
    ("run: runner", ["run.runner", "run.reproduce", "run.estimate"]),
    ("run: executors", ["run.ray_address", "run.ray_executor"]),
    ("studies", ["studies"]),
    ("cli", ["cli"]),
    # the old paths plugins import (docs/plugins.md), re-exported for one release; nothing of ssrbench imports them
    ("deprecated", ["budget", "config", "testing"]),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"] or ["__init__"]
        out[".".join(parts)] = path
    return out


def _layer(module: str) -> int:
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (rank, len(p))
    if best is None:
        raise AssertionError(f"ssrbench.{module} is in no layer: add it to LAYERS in {__file__}")
    return best[0]


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """ssrbench modules imported by ``module`` (names relative to the package)."""
    is_pkg = path.name == "__init__.py"
    here = module.split(".") if module != "__init__" else []
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name == "ssrbench" or a.name.startswith("ssrbench.")]
            targets = [t.removeprefix("ssrbench").lstrip(".") or "__init__" for t in targets]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_pkg else here[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and (node.module == "ssrbench" or node.module.startswith("ssrbench.")):
                stem = node.module.removeprefix("ssrbench").lstrip(".")
            else:
                continue
            for alias in node.names:  # `from . import x` may name a submodule
                sub = f"{stem}.{alias.name}" if stem else alias.name
                targets.append(sub if sub in known else (stem or "__init__"))
        found.update(t for t in targets if t != module)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: {t for t in _imports(m, p, known) if t in known} for m, p in mods.items()}


DEPRECATED = dict(LAYERS)["deprecated"]
FOLDERS = {prefix.split(".")[0] for _, prefixes in LAYERS for prefix in prefixes if prefix not in DEPRECATED}


def test_the_folders_are_the_layers():
    """The package holds its layers' folders and nothing else but ``__init__`` and the deprecated re-exports."""
    top = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py"} - {"__init__"}
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert top == set(DEPRECATED), f"modules outside the layer folders: {sorted(top - set(DEPRECATED))}"
    assert folders == FOLDERS - {"__init__"}, (sorted(folders), sorted(FOLDERS))


@pytest.mark.parametrize("old", DEPRECATED)
def test_a_deprecated_path_warns_and_is_the_moved_module(old):
    """The import paths docs/plugins.md once gave keep working for one release: the same module, with a warning."""
    import importlib

    sys.modules.pop(f"ssrbench.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"ssrbench.{old} moved to ssrbench\\.(core|run)\\.{old}"):
        moved = importlib.import_module(f"ssrbench.{old}")
    assert moved is importlib.import_module(f"ssrbench.{_new(old)}")


def _new(old: str) -> str:
    return next(f"{floor}.{old}" for floor in ("core", "run") if (PACKAGE / floor / f"{old}.py").is_file())


def test_every_module_has_a_layer():
    for m in _modules():
        _layer(m)


def test_no_import_points_up_a_layer():
    upward = []
    for mod, targets in _graph().items():
        for t in targets:
            if _layer(t) > _layer(mod):
                upward.append(
                    f"ssrbench.{mod} ({LAYERS[_layer(mod)][0]}) imports ssrbench.{t} ({LAYERS[_layer(t)][0]})"
                )
    assert not upward, "\n".join(sorted(upward))


def test_no_import_circle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t]
                pytest.fail("import circle: " + " -> ".join(f"ssrbench.{c}" for c in cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_leaderboard_package_depends_only_on_leaves():
    leaves = set(LAYERS[0][1])
    for mod, targets in _graph().items():
        if mod.startswith("leaderboard"):
            outside = {t for t in targets if not t.startswith("leaderboard") and t.split(".")[0] not in leaves}
            assert not outside, f"ssrbench.{mod} imports {sorted(outside)}"


def test_the_checker_sees_a_planted_circle(tmp_path, monkeypatch):
    """The walk itself can fail: a two-module circle and an upward import are both caught."""
    pkg = tmp_path / "ssrbench"
    (pkg / "pretext").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "pretext" / "__init__.py").write_text("")
    (pkg / "run").mkdir()
    (pkg / "run" / "__init__.py").write_text("")
    (pkg / "pretext" / "base.py").write_text("from ..run.runner import run\n")
    (pkg / "run" / "runner.py").write_text("def run():\n    from ..pretext.base import x\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    with pytest.raises(AssertionError, match="ssrbench.pretext.base .tasks. imports ssrbench.run.runner"):
        test_no_import_points_up_a_layer()
    with pytest.raises(pytest.fail.Exception, match="import circle"):
        test_no_import_circle()


def _test_module_imports(path: Path) -> list[str]:
    """Where ``path`` imports a test module: ``from .test_x``, ``from . import test_x``, ``from tests.test_x``,
    ``import tests.test_x``, or ``__import__``/``import_module`` of "tests.test_x" or ".test_x"."""

    def is_test(name: str) -> bool:
        return name.split(".")[0].startswith("test_")

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            if not node.level:  # absolute: only tests.test_x, or test_x from tests
                parts = parts[1:] if parts[0] == "tests" else ["not a test"]
            if is_test(parts[0]) if parts and parts[0] else any(is_test(a.name) for a in node.names):
                names = [node.module or ", ".join(a.name for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("tests.") and is_test(a.name[6:])]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            arg = node.args[0].value
            if (
                func in ("__import__", "import_module")
                and isinstance(arg, str)
                and arg.startswith((".", "tests."))
                and is_test(arg.removeprefix("tests.").lstrip("."))
            ):
                names = [arg]
        found += [f"{path.name}:{node.lineno} imports {n}" for n in names]
    return found


def test_no_test_module_imports_another():
    """Importing a test module ties the two together: an edit to one breaks the other, running one file
    imports (and may collect) the other's tests and fixtures. What tests share lives in tests/helpers.py
    (helpers, constants) and tests/conftest.py (fixtures)."""
    found = [hit for path in sorted(TESTS.glob("*.py")) for hit in _test_module_imports(path)]
    assert not found, "\n".join(found)


def test_the_checker_sees_a_test_module_imported_by_another(tmp_path):
    """Each way of importing a test module is caught; helpers, conftest and the package are not."""
    bad = [
        "from .test_leaderboard import FIXTURE",
        "from . import test_plugins",
        "from tests.test_resume import x",
        "from tests import test_seeds",
        "import tests.test_resume",
        "def f():\n    from .test_precision import _data",
        "m = __import__('tests.test_leaderboard', fromlist=['FIXTURE'])",
        "import importlib\nm = importlib.import_module('.test_plugins', 'tests')",
    ]
    for i, source in enumerate(bad):
        (tmp_path / f"test_bad{i}.py").write_text(source + "\n")
        assert len(_test_module_imports(tmp_path / f"test_bad{i}.py")) == 1, source
    good = tmp_path / "test_good.py"
    good.write_text(
        "from .helpers import FIXTURE\nfrom .conftest import REPO\nfrom . import helpers\n"
        "import tests.helpers\nfrom ssrbench.testing import check_task_contract\n"
        "from test_utils import x\nm = __import__('os')\n"
    )
    assert _test_module_imports(good) == []
