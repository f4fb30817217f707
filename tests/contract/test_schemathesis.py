"""The committed OpenAPI document, fuzzed by schemathesis against a real server: zero failures.

Every check (`--checks all`: no 5xx, status codes, content types, headers and bodies as
documented, schema-invalid bodies rejected, schema-valid ones accepted, 405s that list
the right methods, ...) in every phase (examples, coverage, fuzzing, stateful), with a
fixed seed and a bounded number of examples per operation, one worker, on loopback.
``schemathesis.toml`` beside this file narrows one check, and says why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.stack import uvicorn_app

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
SCHEMA = ROOT / "openapi" / "openapi.json"
SEED = 20250101
EXAMPLES = 100
SECONDS = 240  # the whole run, as a hard bound; it takes well under half of that

pytestmark = [
    pytest.mark.contract,
    pytest.mark.timeout(SECONDS + 60),
    pytest.mark.skipif(
        shutil.which("schemathesis", path=str(Path(sys.executable).parent)) is None,
        reason="schemathesis is not installed (pip install -e '.[dev]')",
    ),
]


def test_the_openapi_document_holds_under_fuzzing(tmp_path):
    env = {"DERIV_LOG_REQUESTS": "false", "DERIV_TIME_BUDGET_SECONDS": "5"}
    with uvicorn_app(env, tmp_path / "server.log") as (base, _):
        run = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(CONFIG),
             "run", str(SCHEMA), "--url", base,
             "--checks", "all", "--workers", "1", "--seed", str(SEED),
             "--max-examples", str(EXAMPLES), "--request-timeout", "20",
             "--generation-database", "none", "--no-color"],
            cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"}, capture_output=True, text=True,
            timeout=SECONDS,
        )  # fmt: skip
    at = run.stdout.rfind("\n", 0, run.stdout.rfind("SUMMARY")) + 1
    print(run.stdout[at:] if "SUMMARY" in run.stdout else run.stdout[-3000:])  # noqa: T201
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    # every generated case passed; a warning (e.g. "mostly rejected generated data", which
    # the contract's 422s for semantically invalid graphs cause) is not a failure
    counts = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert counts and counts[1] == counts[2], run.stdout[-3000:]
    assert not re.search(r"\d+ (failed|errored)", run.stdout), run.stdout[-3000:]
    server_log = (tmp_path / "server.log").read_text(errors="replace")
    assert "unhandled error" not in server_log and "Traceback" not in server_log, server_log[-3000:]
