"""The app shortens the interpreter lock's switch interval while it serves, and gives the
old one back when it stops: computing threads then let the event loop in sooner."""

from __future__ import annotations

import sys

from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings


def test_the_switch_interval_is_the_settings_while_serving_and_restored_after():
    before = sys.getswitchinterval()
    app = create_app(make_settings(gil_switch_seconds=0.002))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert sys.getswitchinterval() == 0.002
    assert sys.getswitchinterval() == before
