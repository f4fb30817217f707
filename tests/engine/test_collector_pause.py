"""The cyclic collector is paused while a tape records, and always given back."""

from __future__ import annotations

import gc
import threading

import pytest

import engine as tf


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
