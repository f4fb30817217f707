"""A client generated from the served document works: openapi-python-client reads it
without a warning, and the generated package sends every request example.

The generator is installed from PyPI into a temporary venv (with the generated client
and nothing of the service), so this runs where PyPI is reachable: CI, not the quick
suite (``slow``). ``generated_client_run.py`` is what runs inside that venv.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.stack import uvicorn_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

GENERATOR = "openapi-python-client>=0.29,<0.30"
RUNNER = Path(__file__).with_name("generated_client_run.py")
# The generator's own settings: no formatter hooks (ruff need not be installed), and
# SVG answers (/v1/plot, /v1/draw) read as bytes, a media type it has no reader for.
CONFIG = """\
post_hooks: []
content_type_overrides:
  image/svg+xml: application/octet-stream
"""
WARNINGS = ("warning", "unable to process", "failure", "error", "cannot parse")
COMPUTE = ("evaluate", "gradient", "jacobian", "hessian", "derivative")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("generated") / "server.log"
    with uvicorn_app({}, log) as (url, _proc):
        yield url


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def generated(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A venv with the generator and the client it generated: its python, the output."""
    root = tmp_path_factory.mktemp("client")
    run(sys.executable, "-m", "venv", root / "venv")
    python = root / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", GENERATOR)
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    output = run(
        root / "venv" / "bin" / "openapi-python-client", "generate",
        "--url", f"{server}/openapi.json", "--meta", "setup",
        "--config", root / "config.yaml", "--output-path", root / "generated",
        cwd=root,
    )  # fmt: skip
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", root / "generated")
    return python, output


def test_the_generator_reads_the_served_document_without_warnings(generated):
    _python, output = generated
    assert not [w for w in WARNINGS if w in output.lower()], output


def test_the_generated_client_sends_every_example(server, generated):
    python, _output = generated
    report = json.loads(run(python, RUNNER, server))
    answers = report["answers"]
    assert report["round_trips"] and all(report["round_trips"].values()), report["round_trips"]
    compute = [key for key in answers if key.split("/")[2] in (*COMPUTE, "symbolic", "graphs")]
    assert len(compute) >= 20, sorted(answers)
    for key in [*compute, *(k for k in answers if "/seed-" in k)]:
        assert 200 <= answers[key]["status"] < 300, (key, answers[key])
        assert answers[key]["model"] not in ("Problem", "NoneType"), (key, answers[key])
    gradient = answers["/v1/gradient/seed-3"]["body"]
    assert gradient["gradients"] == {"x": 4.0, "y": 27.0}
    assert gradient["outputs"] == {"z": 31.0}
    assert answers["/v1/gradient/seed-1"]["body"]["gradients"] == {"x": 6.0}
    assert answers["/v1/hessian/seed-2"]["body"]["matrix"] == [[18.0]]
    assert report["by_id"]["gradients"] == {"x": 4.0, "y": 27.0}
    typed = report["typed"]
    assert "Graph" in typed["graph"] and "str" in typed["target"], typed
    assert "ComputeRequestValues" in typed["values"] and "ComputeRequestCheck" in typed["check"]
    assert not [name for name, hint in typed.items() if "Any" in hint], typed
    refusal = report["refusal"]
    assert refusal["status"] == 422 and refusal["field"] == "body"
    assert "exactly one of" in refusal["detail"] and "`graph_id`" in refusal["detail"]
