"""A tape records the ops of its own thread and asyncio task only, as TF's tape stack is
per thread: concurrent requests never record, nor watch the variables of, each other."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

import engine as tf


def test_a_tape_records_no_op_of_another_thread():
    started, done = threading.Event(), threading.Event()
    other = tf.Variable(2.0)
    seen = {}

    def worker():
        started.wait()
        seen["y"] = tf.sin(other) * 3.0  # while the main thread's tape records
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    x = tf.Variable(0.5)
    with tf.GradientTape() as tape:
        y = x * x
        started.set()
        done.wait(5)
    t.join()
    assert [e.op.name for e in tape.entries] == ["mul"]
    assert tape.watched_variables() == (x,)
    assert tape.gradient(seen["y"], other) is None
    np.testing.assert_allclose(float(y), 0.25)


def test_a_tape_records_no_op_of_another_asyncio_task():
    x, other = tf.Variable(0.5), tf.Variable(2.0)

    async def recorder(entered: asyncio.Event, go: asyncio.Event) -> tf.GradientTape:
        with tf.GradientTape() as tape:
            y = x * x
            entered.set()
            await go.wait()  # the other task runs its ops here, on this thread
            y = y + 1.0
        assert float(tape.gradient(y, x)) == 1.0
        return tape

    async def bystander(entered: asyncio.Event, go: asyncio.Event) -> None:
        await entered.wait()
        tf.sin(other) * 3.0
        go.set()

    async def main() -> tf.GradientTape:
        entered, go = asyncio.Event(), asyncio.Event()
        tape, _ = await asyncio.gather(recorder(entered, go), bystander(entered, go))
        return tape

    tape = asyncio.run(main())
    assert [e.op.name for e in tape.entries] == ["mul", "add"]
    assert tape.watched_variables() == (x,)


def test_a_thread_started_inside_a_tape_does_not_record_on_it():
    x = tf.Variable(1.5)
    out = {}
    with tf.GradientTape() as tape:
        t = threading.Thread(target=lambda: out.setdefault("y", tf.exp(x)))
        t.start()
        t.join()
    assert tape.entries == []
    assert tape.watched_variables() == ()
    assert float(out["y"]) == np.exp(1.5)
