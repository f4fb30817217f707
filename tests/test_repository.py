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
