"""Graphviz runs outside the engine's admission: one layout at a time per process, killed
when its client goes away or its time is up, and a drawing that waits too long for its
turn is a 503. A stand-in ``dot`` that sleeps plays the slow layout."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from app import drawing, plotting
from app.admission import Saturated
from app.turns import Turns
from engine import budget
from engine.errors import BudgetExceeded, ComputeLimitError

SLOW = "digraph { a -> b }"


@pytest.fixture
def slow_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``dot`` that writes its pid to ``<tmp>/pids`` and sleeps: the pids file is returned."""
    pids = tmp_path / "pids"
    script = tmp_path / "dot"
    script.write_text(f"#!/bin/sh\necho $$ >> {pids}\nexec sleep 30\n")
    script.chmod(0o755)
    monkeypatch.setattr(drawing.shutil, "which", lambda _name: str(script))
    return pids


def _gone(pids: Path) -> bool:
    """Every stand-in ``dot`` that started has exited (and was reaped)."""
    for line in pids.read_text().split():
        try:
            os.kill(int(line), 0)
        except ProcessLookupError:
            continue
        return False
    return True


def test_a_cancelled_drawing_kills_its_layout_at_once(slow_dot):
    cancel = budget.Cancel()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(BudgetExceeded), budget.time_budget(None, cancel):
        drawing.render(SLOW)
    assert time.monotonic() - started < 2.0  # not the stand-in's 30 s, nor DOT_SECONDS
    assert _gone(slow_dot)


def test_a_layout_past_its_time_is_a_422_and_is_killed(slow_dot, monkeypatch):
    monkeypatch.setattr(drawing, "DOT_SECONDS", 0.3)
    with pytest.raises(ComputeLimitError, match="Graphviz took over"):
        drawing.render(SLOW)
    assert _gone(slow_dot)


def test_one_layout_at_a_time_and_a_503_past_the_wait(slow_dot, monkeypatch):
    monkeypatch.setattr(drawing, "_turns", Turns(1, 0.3, "another drawing kept Graphviz busy",
                                                      "graphviz_renders"))
    cancel = budget.Cancel()
    first_done = threading.Event()

    def first() -> None:
        with pytest.raises(BudgetExceeded), budget.time_budget(None, cancel):
            drawing.render(SLOW)
        first_done.set()

    threading.Thread(target=first).start()
    deadline = time.monotonic() + 5
    while not (slow_dot.exists() and slow_dot.read_text().strip()):  # the first holds the turn
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        with pytest.raises(Saturated, match="kept Graphviz busy") as busy:
            drawing.render(SLOW)
        assert busy.value.limit == "graphviz_renders"
        assert len(slow_dot.read_text().split()) == 1  # the second never started its own
    finally:
        cancel.set()
        assert first_done.wait(5)
    assert _gone(slow_dot)


def test_a_text_past_the_pipes_buffer_reaches_a_dot_slow_to_read_it(tmp_path, monkeypatch):
    """The input is given again on each poll: communicate() writes none it is not given,
    and a text past the pipe's buffer waited, unwritten, for a 422 at DOT_SECONDS."""
    script = tmp_path / "dot"
    script.write_text("#!/bin/sh\nsleep 0.3\nexec cat\n")
    script.chmod(0o755)
    monkeypatch.setattr(drawing.shutil, "which", lambda _name: str(script))
    text = "digraph {\n" + "".join(f"  n{i} -> n{i + 1};\n" for i in range(20_000)) + "}"
    assert 200_000 < len(text) < drawing.MAX_DOT_BYTES
    started = time.monotonic()
    assert drawing.render(text) == text.encode()  # the stand-in gives its input back
    assert time.monotonic() - started < drawing.DOT_SECONDS / 2


def test_a_request_cancelled_while_it_waits_for_a_turn_stops_waiting():
    turns = Turns(1, 30.0, "busy", "renders")
    cancel = budget.Cancel()
    with turns.turn("first"):
        threading.Timer(0.2, cancel.set).start()
        started = time.monotonic()
        with pytest.raises(BudgetExceeded), budget.time_budget(None, cancel):
            with turns.turn("waiting"):
                pytest.fail("a turn was given while another held it")
        assert time.monotonic() - started < 2.0
    with turns.turn("after"):  # the cancelled wait took no turn with it
        pass


def test_a_plot_waits_its_turn_then_is_a_503(client, monkeypatch):
    monkeypatch.setattr(plotting, "_turns", Turns(1, 0.2, "another plot kept the renderer busy",
                                                       "plot_renders"))
    body = {"expression": "sin(x)", "variable": "x", "range": [0, 1], "samples": 16}
    with plotting._turns.turn("held by the test"):
        r = client.post("/v1/plot", json=body)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "kept the renderer busy" in r.json()["detail"]
    assert r.json()["limit"] == "plot_renders"  # not the memory budget, which had room
    assert client.post("/v1/plot", json=body).status_code == 200  # the turn came back
