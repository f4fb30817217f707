"""The app pins the BLAS threads at start-up (``DERIV_BLAS_THREADS``) and restores them at
shutdown: request threads already fill the cores, and BLAS threads inside each of them
oversubscribe the cores (see deploy/README.md)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_info

from app.main import create_app, pin_blas_threads
from tests.conftest import make_settings


def blas_threads() -> set[int]:
    """The thread counts of every BLAS library loaded in this process."""
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


@pytest.fixture
def blas_at_other_threads(request: pytest.FixtureRequest):
    """BLAS set to ``request.param`` threads for the test, the original count after it."""
    before = pin_blas_threads(request.param)
    assert blas_threads() == {request.param}
    yield request.param
    pin_blas_threads(1).restore_original_limits()  # take control back from the app's thread
    before.restore_original_limits()


def test_numpy_brings_a_blas_library_threadpoolctl_sees():
    assert blas_threads(), threadpool_info()


@pytest.mark.parametrize(("threads", "blas_at_other_threads"), [(1, 2), (2, 1)],
                         indirect=["blas_at_other_threads"])
def test_the_app_runs_blas_on_the_set_threads_and_restores_them(
    threads, blas_at_other_threads, monkeypatch
):
    app = create_app(make_settings(blas_threads=threads))
    # the SymPy pool is the session's (tests/conftest.py): this app leaves it alone
    monkeypatch.setattr(app.state.service, "start", lambda: None)
    monkeypatch.setattr(app.state.service, "stop", lambda: None)
    with TestClient(app) as client:  # runs the lifespan on the client's own thread
        assert client.get("/healthz").status_code == 200
        assert blas_threads() == {threads}
    assert blas_threads() == {blas_at_other_threads}


def test_the_default_is_one_thread():
    assert make_settings().blas_threads == 1
