"""The arrows of docs/architecture.md, checked on the source (``ast``, nothing is imported).

Components: ``fitness.<app>`` for each app of fitness/ (a package with an ``apps.py``:
accounts, workouts, mlmodels, stats), ``fitness.<package>`` for the other packages of fitness/
(``fitness.core``: plumbing the apps share), ``fitness`` for the project modules (settings,
urls, ...), ``workers``,
``inference`` (the serving path) and ``inference.lab`` (research code). The arrows are the
module-level imports: top-level ``import``/``from`` statements, also under ``if``/``try``
and in class bodies, not under ``if TYPE_CHECKING:`` and not inside functions (deliberate
lazy imports, e.g. a task importing its service). Rules:

(a) nothing outside inference/lab/ imports ``inference.lab``, not even inside a function
    (serving code never reaches research code);
(b) ``inference`` imports neither ``fitness``, ``workers`` nor ``django``;
(c) ``fitness.mlmodels`` imports no other app of fitness/;
(d) the components' import graph has no cycle.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fitness", "workers", "inference")
LAB = "inference.lab"
#: What ``inference`` (outside the lab) must not import: the project and Django.
NOT_FROM_INFERENCE = ("fitness", "workers", "django")


@dataclass(frozen=True)
class Import:
    """One imported module: ``target`` as resolved (``from a import b`` is ``a.b`` when b is a module)."""

    path: Path  # relative to the root
    line: int
    source: str  # the importing module
    target: str
    statement: str
    module_level: bool

    def __str__(self) -> str:
        kind = "" if self.module_level else " (inside a function)"
        return f"{self.path}:{self.line}: {self.statement}{kind}"


# --- Reading the tree --------------------------------------------------------------------


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path, packages: tuple[str, ...] = PACKAGES) -> Iterator[Path]:
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" not in path.relative_to(root).parts:
                yield path


def known_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> set[str]:
    """Every module and package of the tree (migrations included: they exist to be imported)."""
    out = set()
    for package in packages:
        for path in (root / package).rglob("*.py"):
            out.add(module_name(root, path))
    return out


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def walk_imports(tree: ast.Module) -> Iterator[tuple[ast.stmt | ast.Call, bool]]:
    """Every import statement (and ``import_module("...")``/``__import__("...")`` call) with
    whether it runs when the module is imported. ``if TYPE_CHECKING:`` bodies never run."""

    def visit(node: ast.AST, module_level: bool) -> Iterator[tuple[ast.stmt | ast.Call, bool]]:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, module_level
            return
        if isinstance(node, ast.Call) and is_dynamic_import(node):
            yield node, module_level
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                yield from visit(child, module_level)
            return
        inner = module_level and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            yield from visit(child, inner)

    yield from visit(tree, True)


def is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return (
        name in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def resolve_relative(source: str, is_package: bool, level: int, module: str | None) -> str:
    base = source.split(".") if is_package else source.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_of(root: Path, path: Path, modules: set[str]) -> list[Import]:
    source = module_name(root, path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(root)
    out = []
    for node, module_level in walk_imports(tree):
        statement = ast.unparse(node)
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(source, is_package, node.level, node.module) if node.level else node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.append(full if full in modules else base)
        else:
            targets = [node.args[0].value]
        out += [Import(rel, node.lineno, source, t, statement, module_level) for t in dict.fromkeys(targets)]
    return out


def all_imports(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Import]:
    modules = known_modules(root, packages)
    return [imp for path in source_files(root, packages) for imp in imports_of(root, path, modules)]


# --- Components and rules -----------------------------------------------------------------


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def fitness_apps(root: Path) -> set[str]:
    """The Django apps of fitness/: packages directly under it with an ``apps.py``."""
    return {f"fitness.{p.parent.name}" for p in (root / "fitness").glob("*/apps.py")}


def fitness_packages(root: Path) -> set[str]:
    """Every package directly under fitness/ (the apps and shared ones such as fitness.core)."""
    return {f"fitness.{p.parent.name}" for p in (root / "fitness").glob("*/__init__.py")}


def component(module: str, packages: set[str]) -> str | None:
    """The component a module belongs to; None outside the project (Django, NumPy, ...)."""
    if within(module, LAB):
        return LAB
    for package in packages:
        if within(module, package):
            return package
    for package in PACKAGES:
        if within(module, package):
            return package
    return None


def lab_violations(imports: list[Import]) -> list[str]:
    """(a) ``inference.lab`` imported from outside inference/lab/, at any level."""
    return [str(i) for i in imports if within(i.target, LAB) and not within(i.source, LAB)]


def inference_violations(imports: list[Import]) -> list[str]:
    """(b) ``inference`` (outside the lab) importing fitness, workers or django."""
    return [
        f"{i} (inference -> {i.target.split('.')[0]})"
        for i in imports
        if i.module_level
        and within(i.source, "inference")
        and not within(i.source, LAB)
        and any(within(i.target, p) for p in NOT_FROM_INFERENCE)
    ]


def mlmodels_violations(imports: list[Import], apps: set[str]) -> list[str]:
    """(c) ``fitness.mlmodels`` importing another app of fitness/."""
    out = []
    for i in imports:
        if i.module_level and within(i.source, "fitness.mlmodels"):
            target = component(i.target, apps)
            if target in apps and target != "fitness.mlmodels":
                out.append(f"{i} (fitness.mlmodels -> {target})")
    return out


def component_graph(imports: list[Import], packages: set[str]) -> dict[str, dict[str, list[Import]]]:
    """component -> imported component -> the module-level imports that make the arrow."""
    graph: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for i in imports:
        if not i.module_level:
            continue
        src, dst = component(i.source, packages), component(i.target, packages)
        if src and dst and src != dst:
            graph[src][dst].append(i)
    return graph


def strongly_connected(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one node, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    nodes = sorted(set(graph) | {d for targets in graph.values() for d in targets})

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                out.append(sorted(members))

    for v in nodes:
        if v not in index:
            connect(v)
    return sorted(out)


def a_cycle(graph: dict[str, dict[str, list[Import]]], members: list[str]) -> list[str]:
    """One cycle through the first member, staying inside the component (breadth-first: shortest)."""
    start, inside = members[0], set(members)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, {})):
            if w == start:
                return [*paths[v], start]
            if w in inside and w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    raise AssertionError(f"{members} is not strongly connected")


def cycle_violations(imports: list[Import], packages: set[str]) -> list[str]:
    """(d) cycles among components, each with one import per arrow of the cycle."""
    graph = component_graph(imports, packages)
    out = []
    for members in strongly_connected(graph):
        cycle = a_cycle(graph, members)
        arrows = [f"    {a} -> {b}: {graph[a][b][0]}" for a, b in itertools.pairwise(cycle)]
        out.append(" -> ".join(cycle) + f" (components in the cycle: {', '.join(members)})\n" + "\n".join(arrows))
    return out


def report(title: str, violations: list[str]) -> str:
    return f"{title}:\n" + "\n".join(f"  {v}" for v in violations)


# --- The project ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project() -> tuple[list[Import], set[str]]:
    return all_imports(ROOT), fitness_apps(ROOT)


def test_the_tree_is_read(project):
    imports, apps = project
    assert {"fitness.accounts", "fitness.workouts", "fitness.mlmodels", "fitness.stats"} <= apps
    assert "fitness.core" not in apps
    assert "fitness.core" in fitness_packages(ROOT)
    assert any(i.source == "fitness.urls" for i in imports)


def test_nothing_outside_the_lab_imports_it(project):
    imports, _ = project
    violations = lab_violations(imports)
    assert not violations, report("inference.lab imported from outside inference/lab/", violations)


def test_inference_imports_neither_the_project_nor_django(project):
    imports, _ = project
    violations = inference_violations(imports)
    assert not violations, report("inference imports fitness, workers or django", violations)


def test_mlmodels_imports_no_other_app(project):
    imports, apps = project
    violations = mlmodels_violations(imports, apps)
    assert not violations, report("fitness.mlmodels imports another app", violations)


def test_components_import_no_cycle(project):
    imports, _ = project
    violations = cycle_violations(imports, fitness_packages(ROOT))
    assert not violations, report("import cycles among components", violations)


# --- The checker itself, on a made-up tree ---------------------------------------------------


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_forbidden_arrows_and_cycles(tmp_path):
    write(
        tmp_path,
        {
            "fitness/__init__.py": "",
            "fitness/urls.py": "from fitness.workouts.api import views\n",
            "fitness/workouts/__init__.py": "",
            "fitness/workouts/apps.py": "",
            "fitness/workouts/api/__init__.py": "",
            "fitness/workouts/api/views.py": "from ..services import create\n",
            "fitness/workouts/services.py": "from fitness.mlmodels.selectors import production\n",
            "fitness/workouts/migrations/__init__.py": "",
            "fitness/workouts/migrations/0001_initial.py": "from inference.lab import train\n",
            "fitness/mlmodels/__init__.py": "",
            "fitness/mlmodels/apps.py": "",
            "fitness/mlmodels/selectors.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from fitness.accounts.models import User\n"
                "from fitness.workouts import services\n"  # (c) and a cycle with workouts
                "def lazy():\n    from fitness.stats import selectors\n"  # lazy: not an arrow
            ),
            "fitness/accounts/__init__.py": "",
            "fitness/accounts/apps.py": "",
            "fitness/accounts/models.py": "",
            "fitness/stats/__init__.py": "",
            "fitness/stats/apps.py": "",
            "fitness/stats/selectors.py": "",
            "workers/__init__.py": "",
            "workers/tasks.py": (
                "import inference.pipeline\n"
                "def run():\n    from inference import lab\n"  # (a) even inside a function
                "    import importlib\n    importlib.import_module('inference.lab.train')\n"
            ),
            "inference/__init__.py": "",
            "inference/pipeline.py": "import numpy as np\nfrom . import model\n",
            "inference/model.py": (
                "try:\n    from django.conf import settings\nexcept ImportError:\n    settings = None\n"  # (b)
                "def lazy():\n    import workers\n"  # lazy: not an arrow
            ),
            "inference/lab/__init__.py": "",
            "inference/lab/train.py": "from inference.model import load\nfrom . import evaluate\n",
            "inference/lab/evaluate.py": "from .train import fit\n",  # a cycle inside one component
        },
    )
    imports = all_imports(tmp_path)
    apps = fitness_apps(tmp_path)
    assert apps == {"fitness.workouts", "fitness.mlmodels", "fitness.accounts", "fitness.stats"}

    by_source = {(i.source, i.target) for i in imports}
    assert ("fitness.workouts.api.views", "fitness.workouts.services") in by_source  # relative, resolved
    assert ("inference.pipeline", "inference.model") in by_source  # `from . import model` is the module
    assert not any(i.path.parts[-2] == "migrations" for i in imports)

    assert lab_violations(imports) == [
        "workers/tasks.py:3: from inference import lab (inside a function)",
        "workers/tasks.py:5: importlib.import_module('inference.lab.train') (inside a function)",
    ]
    assert inference_violations(imports) == [
        "inference/model.py:2: from django.conf import settings (inference -> django)"
    ]
    assert mlmodels_violations(imports, apps) == [
        "fitness/mlmodels/selectors.py:4: from fitness.workouts import services (fitness.mlmodels -> fitness.workouts)"
    ]
    cycles = cycle_violations(imports, fitness_packages(tmp_path))
    assert len(cycles) == 1, cycles
    assert cycles[0].startswith("fitness.mlmodels -> fitness.workouts -> fitness.mlmodels")
    assert "fitness/workouts/services.py:1: from fitness.mlmodels.selectors import production" in cycles[0]


def test_checker_passes_a_clean_tree(tmp_path):
    write(
        tmp_path,
        {
            "fitness/__init__.py": "",
            "fitness/mlmodels/__init__.py": "",
            "fitness/mlmodels/apps.py": "",
            "fitness/mlmodels/models.py": "from django.db import models\nimport inference.model\n",
            "fitness/mlmodels/tasks.py": "from fitness.core.tasks import RETRY\n",  # shared plumbing, not an app
            "fitness/core/__init__.py": "",
            "fitness/core/tasks.py": "from django.db import OperationalError\n",
            "fitness/workouts/__init__.py": "",
            "fitness/workouts/apps.py": "",
            "fitness/workouts/services.py": "from fitness.mlmodels import models\n",
            "fitness/workouts/tasks.py": "def task():\n    from fitness.workouts import services\n",
            "workers/__init__.py": "",
            "workers/tasks.py": "from fitness.workouts import tasks\n",
            "inference/__init__.py": "",
            "inference/model.py": "import numpy\n",
            "inference/lab/__init__.py": "",
            "inference/lab/train.py": "from inference import model\n",
        },
    )
    imports, apps = all_imports(tmp_path), fitness_apps(tmp_path)
    assert apps == {"fitness.mlmodels", "fitness.workouts"}
    assert lab_violations(imports) == []
    assert inference_violations(imports) == []
    assert mlmodels_violations(imports, apps) == []
    assert cycle_violations(imports, fitness_packages(tmp_path)) == []
