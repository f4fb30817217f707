"""The cyclic collector is paused while a tape records, and always given back."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

import engine as tf
from engine.tape.collector import CollectorPause


@pytest.fixture(autouse=True)
def _collector_enabled():
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_collector_is_paused_while_recording_and_resumed_after():
    with tf.GradientTape():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_tapes_resume_only_when_the_outermost_stops():
    with tf.GradientTape():
        with tf.GradientTape():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_exception_inside_the_tape_still_resumes_the_collector():
    with pytest.raises(ZeroDivisionError), tf.GradientTape():
        _ = 1 / 0
    assert gc.isenabled()


def test_a_collector_the_caller_disabled_stays_disabled():
    gc.disable()
    with tf.GradientTape():
        pass
    assert not gc.isenabled()


def test_stop_recording_gives_the_collector_back_for_its_duration():
    with tf.GradientTape() as tape:
        with tape.stop_recording():
            assert gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_tapes_in_two_threads_share_one_pause():
    entered, leave = threading.Barrier(2), threading.Event()
    seen: list[bool] = []

    def worker() -> None:
        with tf.GradientTape():
            entered.wait()
            leave.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    with tf.GradientTape():
        entered.wait()
    seen.append(gc.isenabled())  # the other thread's tape still records
    leave.set()
    t.join(5)
    assert seen == [False]
    assert gc.isenabled()


def test_gradient_after_the_with_block_pauses_and_resumes():
    x = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        y = x * x
    assert gc.isenabled()
    assert float(tape.gradient(y, x)) == 4.0
    assert gc.isenabled()


def test_a_pause_that_never_ends_still_collects_what_cycles_hold(monkeypatch):
    """Under load some tape always records: a tape starting once the pause has lasted
    ``COLLECT_AFTER_SECONDS`` collects first, so a cycle is not held for the whole load."""
    monkeypatch.setattr(CollectorPause, "COLLECT_AFTER_SECONDS", 0.0)
    pause = CollectorPause()

    class Node:
        pass

    pause.hold()  # a long request, recording all along
    try:
        held = Node()
        held.self = held
        alive = weakref.ref(held)
        del held
        assert alive() is not None  # only the cyclic collector can free it
        pause.hold()  # another request starts meanwhile
        pause.release()
        assert alive() is None
        assert not gc.isenabled()  # and the pause goes on
    finally:
        pause.release()
    assert gc.isenabled()


def test_a_short_pause_does_not_collect(monkeypatch):
    monkeypatch.setattr(CollectorPause, "COLLECT_AFTER_SECONDS", 3600.0)
    collected: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: collected.append(generation))
    pause = CollectorPause()
    pause.hold()
    pause.hold()
    pause.release()
    pause.release()
    assert collected == []
