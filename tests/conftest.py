"""Shared fixtures: Hypothesis profiles and HTTP clients on apps built with test settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from app.settings import Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile("dev", deadline=None, max_examples=100)
# tests/differential's ``-m slow`` twins: random (not derandomised), many more examples.
hypothesis_settings.register_profile(
    "differential-long",
    deadline=None,
    max_examples=1500,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_configure(config: pytest.Config) -> None:
    # Starlette nudges towards httpx2; httpx is what the project pins for TestClient.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


def make_settings(**overrides: Any) -> Settings:
    """Settings from the defaults and ``overrides`` only: the environment is ignored."""
    return Settings.model_construct(**overrides)


def _client(settings: Settings, raise_server_exceptions: bool = True) -> TestClient:
    """A client that checks every compute answer against its response model."""
    from app.main import create_app
    from tests.api.support import ValidatingClient

    return ValidatingClient(create_app(settings), raise_server_exceptions=raise_server_exceptions)


@pytest.fixture(scope="session")
def app_settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def client(app_settings: Settings) -> Iterator[TestClient]:
    """One client for the session; the app is stateless between requests."""
    with _client(app_settings) as c:
        yield c


@pytest.fixture
def make_client() -> Callable[..., TestClient]:
    """A factory of clients on apps with overridden settings.

    They skip the app's lifespan, so they share the session's SymPy workers
    instead of stopping them when the test ends.
    """

    def make(raise_server_exceptions: bool = True, **overrides: Any) -> TestClient:
        return _client(make_settings(**overrides), raise_server_exceptions)

    return make


@pytest.fixture
def coloured_sweeps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seed rows of every coloured Hessian sweep that runs during the test
    (engine.derive.coloured_hessian), in order."""
    from engine.derive import coloured_hessian

    seen: list[int] = []
    sweep = coloured_hessian.sweep_blocks

    def spy(tape: Any, target: Any, sources: Any, seeds: Any) -> Any:
        seen.append(seeds.shape[0])
        return sweep(tape, target, sources, seeds)

    monkeypatch.setattr(coloured_hessian, "sweep_blocks", spy)
    return seen
