"""Repository hygiene: the README's commands are the ones CI runs, and the tree lints clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _readme_command(comment: str) -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    return lines[lines.index(f"# {comment}") + 1]


def test_readme_first_screen_has_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:30])
    start = _readme_command(
        "install and start the service on 127.0.0.1:8000 (Swagger UI at http://127.0.0.1:8000/docs)"
    )
    tests = _readme_command("install and run the tests")
    assert start in first_screen and tests in first_screen
    assert re.search(r"uvicorn app\.main:app --host 127\.0\.0\.1 --port 8000$", start)
    assert tests.endswith("pytest") and "'.[dev]'" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'readme_command "install and start the service"' in ci
    assert 'readme_command "install and run the tests"' in ci


def test_every_limit_in_settings_is_listed_in_the_readme():
    from app.settings import Settings

    readme = (ROOT / "README.md").read_text()
    skip = {"problem_type_base"}  # not a limit
    missing = [
        name
        for name in Settings.model_fields
        if name not in skip and f"DERIV_{name.upper()}" not in readme
    ]
    assert not missing, f"limits missing from the README's table: {missing}"


@pytest.mark.skipif(
    shutil.which("ruff") is None and not (Path(sys.prefix) / "bin" / "ruff").exists(),
    reason="ruff is not installed",
)
def test_the_tree_is_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.prefix) / "bin" / "ruff")
    done = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def _module_imports() -> dict[str, set[str]]:
    """Each module of engine/ and app/ -> the project modules it imports when loaded
    (imports inside functions and under TYPE_CHECKING run later or never: not counted)."""
    import ast

    modules = {}
    for pkg in ("engine", "app"):
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    edges.add(sub if sub in modules else node.module)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def test_no_import_cycles_between_modules():
    graph = _module_imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_engine_has_no_web_code_and_a_small_top_level():
    graph = _module_imports()
    assert not [m for m in graph if m.startswith("engine") and
                any(e.startswith("app") for e in graph[m])]
    top = [p.name for p in (ROOT / "engine").glob("*.py")]
    assert len(top) <= 12, sorted(top)


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for pkg in ("engine", "app")
            for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
