"""The import graph: no circles, unique names, and the engine (with its CLI) free of Home Assistant."""

from __future__ import annotations

import ast
from pathlib import Path
import subprocess
import sys

ROOT = Path(__file__).parents[1]
ENGINE = ROOT / "custom_components" / "baby_monitor" / "engine"
PACKAGES = {
    "custom_components.baby_monitor": ROOT / "custom_components" / "baby_monitor",
    "baby_monitor_engine": ENGINE,
    "models": ROOT / "models",
}


def _module_name(package: str, root: Path, path: Path) -> str:
    """Dotted name of `path` inside `package` rooted at `root`."""
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    """Every module of the project, the engine under its own name only."""
    found: dict[str, Path] = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            if package != "baby_monitor_engine" and path.is_relative_to(ENGINE):
                continue
            found[_module_name(package, root, path)] = path
    return found


def _canonical(name: str) -> str:
    """Name the integration's engine by its package name: the two are one package."""
    prefix = "custom_components.baby_monitor.engine"
    if name == prefix or name.startswith(prefix + "."):
        return "baby_monitor_engine" + name.removeprefix(prefix)
    return name


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `name` imports (anywhere in the file, lazy imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [_canonical(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            base = _canonical(base)
            # `from package import module` needs the module; `from module import name` the module
            candidates = [
                submodule if (submodule := f"{base}.{alias.name}") in modules else base
                for alias in node.names
            ]
        else:
            continue
        targets.update(c for c in candidates if c in modules and c != name)
    return targets


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph (its modules, the first repeated at the end), if any."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_circle() -> None:
    """No module of the integration, the engine or models/ imports itself through others.

    A package's `__init__` counts as the modules it imports, so re-exports are edges too.
    """
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert sum(map(len, graph.values())) > 50  # the walk found the project's imports
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_no_two_modules_or_classes_share_a_name() -> None:
    """A name says which module or class it is: no `runtime.py` twice, no two `Settings`."""
    modules: dict[str, list[str]] = {}
    classes: dict[str, list[str]] = {}
    for path in sorted({*_modules().values(), *(ROOT / "e2e").rglob("*.py")}):
        shown = str(path.relative_to(ROOT))
        if path.stem not in {"__init__", "__main__"}:
            modules.setdefault(path.stem, []).append(shown)
        for node in ast.walk(ast.parse(path.read_text(), shown)):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, []).append(shown)
    assert {name: at for name, at in modules.items() if len(at) > 1} == {}
    assert {name: at for name, at in classes.items() if len(at) > 1} == {}


def test_cycle_finder_names_a_circle() -> None:
    """The check itself finds a circle when there is one."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_engine_and_cli_import_no_home_assistant() -> None:
    """`baby_monitor_engine` and its command line load without Home Assistant or a shim."""
    code = (
        "import sys\n"
        "import baby_monitor_engine, baby_monitor_engine.cli, baby_monitor_engine.sources\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in "
        "('homeassistant', 'custom_components')]\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT.parent,
    )
    assert done.stdout.strip() == "[]", done.stdout
