"""The long twins run only when asked for (``-m slow``): a plain run keeps the quick ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="the differential-long profile runs with -m slow")
    for item in items:
        if item.get_closest_marker("slow") and "differential" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="module")  # not "session": it would outlive this folder
def _colour_every_sparse_pattern() -> Iterator[None]:
    """Drawn graphs have a few sources, where colours seldom pay (engine.derive.
    coloured_hessian detects a pattern when that costs less than the n-seed sweep, and
    uses its colours at a quarter of the sources or fewer): here a graph seen twice is
    always detected and any colouring with fewer colours than sources is used, so the
    roads cover the coloured sweep. The plans made so are dropped afterwards."""
    from engine.derive import coloured_hessian as ch

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ch, "worth_detecting", lambda priced, n: True)
        patch.setattr(ch, "worth_colouring", lambda colours, n: 0 < colours < n)
        yield
    ch._PLANS.clear()
