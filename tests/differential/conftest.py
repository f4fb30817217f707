"""The long twins run only when asked for (``-m slow``): a plain run keeps the quick ones."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="the differential-long profile runs with -m slow")
    for item in items:
        if item.get_closest_marker("slow") and "differential" in item.nodeid:
            item.add_marker(skip)
