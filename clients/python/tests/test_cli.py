"""The ``deriv`` command against a live service, as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


def deriv(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script when there is one, else ``python -m derivative_client``."""
    script = Path(sys.executable).with_name("deriv")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "derivative_client"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, env=env)


def test_a_readable_table_of_the_seed_example(base_url):
    done = deriv("x**2 + y**3", "--at", "x=2,y=3", "--url", base_url)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.strip()}
    assert rows["value"] == ["31"] and rows["d/dx"] == ["4"] and rows["d/dy"] == ["27"]
    assert "check: sympy agree" in done.stdout


def test_hessian_table(base_url):
    done = deriv("x**3", "--at", "x=3", "--hessian", "--url", base_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines.index("Hessian (rows and columns: x)")
    assert lines[header + 2].split() == ["x", "18"]
    assert "d/dx" in done.stdout and "27" in done.stdout


def test_json_is_the_services_answer(base_url):
    done = deriv("x**2 + y**3", "--at", "x=2,y=3", "--json", "--url", base_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["gradient"]["gradients"] == {"x": 4.0, "y": 27.0}


def test_symbolic_formulas(base_url):
    done = deriv("x**2 + y**3", "--at", "x=2,y=3", "--symbolic", "--url", base_url)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.strip()}
    assert rows["d/dx"][-1] == "2*x" and rows["d/dy"][-1] == "3*y**2"


def test_a_refusal_is_a_message_and_status_1(base_url):
    done = deriv("x +", "--at", "x=1", "--url", base_url)
    assert done.returncode == 1 and done.stdout == ""
    assert "422" in done.stderr and "(field expression)" in done.stderr


def test_an_unreachable_service_is_status_3():
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = deriv("x", "--at", "x=1", "--url", f"http://127.0.0.1:{port}")
    assert done.returncode == 3 and "cannot reach" in done.stderr


def test_a_bad_point_is_a_usage_error():
    done = deriv("x", "--at", "x=two")
    assert done.returncode == 2 and "not a number" in done.stderr
