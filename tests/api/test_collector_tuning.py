"""The app sizes the collector's youngest generation while it serves (app.collector_tuning)
and gives the old thresholds back when it stops."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from app import collector_tuning
from app.main import create_app
from tests.conftest import make_settings


def test_the_youngest_generation_is_sized_while_serving_and_restored_after():
    before = gc.get_threshold()
    with TestClient(create_app(make_settings())) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_threshold() == (collector_tuning.YOUNG_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before


def test_a_larger_threshold_of_the_hosts_is_kept():
    before = gc.get_threshold()
    gc.set_threshold(50_000, *before[1:])
    try:
        kept = collector_tuning.tune()
        assert gc.get_threshold()[0] == 50_000
        collector_tuning.restore(kept)
        assert gc.get_threshold()[0] == 50_000
    finally:
        gc.set_threshold(*before)
