"""The package as users install it: one import name, nothing a user's own files can shadow,
and a structure without import cycles or oversized modules.

The import graph is read from the source with `ast` (every import, those inside
functions and `TYPE_CHECKING` blocks too), through the same folder-to-package
mapping as `[tool.setuptools.package-dir]` in pyproject.toml.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

MAX_MODULE_LINES = 400
PACKAGE_DIRS: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
"""Import name → folder, e.g. `agentflows.tasks` → `tasks`."""


def modules() -> dict[str, Path]:
    """Every module of the package by its import name."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        root = REPO / folder
        for path in root.rglob("*.py"):
            relative = path.relative_to(root).with_suffix("")
            if "migrations" in relative.parts or any(p in PACKAGE_DIRS.values() for p in relative.parts[:1]):
                continue
            parts = [p for p in relative.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `path` imports, wherever in the file the import stands."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name.startswith("agentflows"):
                targets.add(name)
    return targets


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) - {name} for name, path in known.items()}


def package_of(module: str) -> str:
    """The top-level folder a module lives in (`flows` for the root package's own modules)."""
    owner = max((p for p in PACKAGE_DIRS if module == p or module.startswith(p + ".")), key=len)
    return PACKAGE_DIRS[owner]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk (each reported once, from where it was entered)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_no_module_imports_itself_back() -> None:
    assert cycles(graph()) == []


def test_the_top_level_folders_import_each_other_one_way() -> None:
    between: dict[str, set[str]] = {}
    for module, targets in graph().items():
        between.setdefault(package_of(module), set()).update(
            package_of(t) for t in targets if package_of(t) != package_of(module)
        )

    assert cycles(between) == []
    assert "flows" not in between.get("tasks", set()) and between.get("blocks", set()) <= {"tasks"}


def test_no_module_of_flows_or_tasks_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for path in [*(REPO / "flows").rglob("*.py"), *(REPO / "tasks").rglob("*.py")]
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


# -- the wheel ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source")  # a copy: building writes build/ and *.egg-info into the tree
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    for name in listed.stdout.splitlines():
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("agentflows-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_installs_one_import_name_with_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()

    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"agentflows"}
    assert "agentflows/py.typed" in names
    assert {"agentflows/agent_definitions/quiz.yaml", "agentflows/agent_definitions/prompts/router/classify.md"} <= set(
        names
    )
    assert any(n.startswith("agentflows/tasks/storage/migrations/versions/") for n in names)
    assert {"agentflows/viewer/templates/content.html", "agentflows/viewer/static/viewer.css"} <= set(names)
    assert {
        "agentflows/agent_definitions/knowledge/lesson_plan/style_guide.md",
        "agentflows/tasks/knowledge/index.py",
    } <= (set(names))
    assert {"agentflows/agent_definitions/evals/quiz.yaml", "agentflows/evals/flow.py"} <= set(names)


@pytest.fixture
def shadowing_folder(tmp_path: Path) -> Iterator[Path]:
    """A working folder with a `tasks.py` and a `flows/` package of its own, as users' projects have."""
    folder = tmp_path / "project"
    (folder / "flows").mkdir(parents=True)
    (folder / "tasks.py").write_text("raise SystemExit('the user tasks.py was imported')\n")
    (folder / "flows" / "__init__.py").write_text("raise SystemExit('the user flows/ was imported')\n")
    yield folder


@pytest.mark.slow
def test_an_installed_wheel_runs_beside_a_users_own_tasks_and_flows(
    wheel: Path, shadowing_folder: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "AGENTFLOWS_HOME": str(tmp_path / "home")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=shadowing_folder, env=env, capture_output=True, text=True, timeout=600
        )

    imported = run("-c", "import agentflows; agentflows.run_agent; print(agentflows.__file__)")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().startswith(str(target))  # the wheel's copy, not the repository's
    quiz = run("-m", "agentflows.cli", "run", "quiz", "-p", "topic=Tides")
    assert quiz.returncode == 0, quiz.stderr
    assert "wrote file://" in quiz.stdout
