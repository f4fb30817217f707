"""The allocator is set up at start-up to give freed large arrays back (app.memory); the
hostile-load test (tests/load) measures what that does to a replica's RSS."""

from __future__ import annotations

import platform

from fastapi.testclient import TestClient

from app import main, memory
from tests.conftest import make_settings


def test_the_app_tunes_the_allocator_at_start_up(monkeypatch):
    calls: list[bool] = []
    monkeypatch.setattr(main, "tune_allocator", lambda: calls.append(memory.tune_allocator()))
    with TestClient(main.create_app(make_settings())) as client:
        assert client.get("/healthz").status_code == 200
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert calls == [expected]
