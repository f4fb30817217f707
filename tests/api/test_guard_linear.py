"""The raw-bytes depth guard runs in linear time and measures the depth the parser sees.

A body of ``[`` x100, a quote, then ``\\"`` repeated once made a regex over JSON strings
scan to the end of the body from every quote: 4 s for 32 KB, on the event loop.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from app.guards import nesting_exceeds

ATTACK_KB = 200


def attack(kilobytes: int, opening: int = 100) -> bytes:
    """``opening`` brackets, then an unterminated string of escaped quotes."""
    return b"[" * opening + b'"' + b'\\"' * (kilobytes * 512)


def test_the_escaped_quotes_body_is_measured_in_linear_time():
    body = attack(ATTACK_KB)
    start, cpu = time.perf_counter(), time.process_time()
    assert nesting_exceeds(body, 64) is True  # the 100 brackets before the string count
    assert time.process_time() - cpu < 0.25  # the regex it replaces took minutes
    assert time.perf_counter() - start < 1.0


def test_the_escaped_quotes_body_is_answered_at_once_over_http(make_client):
    client = make_client(max_body_bytes=4 * ATTACK_KB * 1024)
    headers = {"content-type": "application/json"}
    assert client.post("/v1/evaluate", content=b"[", headers=headers).status_code == 400  # warm
    for body, status, slug in (
        (attack(ATTACK_KB), 413, "nesting-too-deep"),  # 100 levels: the guard refuses it
        (attack(ATTACK_KB, opening=10), 400, "malformed-json"),  # shallow: the parser does
    ):
        start, cpu = time.perf_counter(), time.process_time()
        r = client.post("/v1/evaluate", content=body, headers=headers)
        took, used = time.perf_counter() - start, time.process_time() - cpu
        assert r.status_code == status, r.text[:300]
        assert r.json()["type"].endswith(slug)
        # CPU time does not grow when other processes load the machine, wall time does;
        # both count this process's other threads too (a new app warms its SymPy pool).
        # The regex this replaces took minutes on such a body: seconds are a clear line.
        assert used < 2.0, f"{len(body)} bytes took {used:.2f} s of CPU"
        assert took < 3.0, f"{len(body)} bytes answered in {took:.2f} s"


def test_an_unterminated_or_stray_quote_does_not_crash_it():
    assert nesting_exceeds(b"[" * 70 + b'"abc', 64) is True  # before the string: counted
    assert nesting_exceeds(b'"' + b"[" * 100, 64) is False  # inside it: not
    assert nesting_exceeds(b'\\"' + b"[" * 100, 64) is True  # an escaped quote opens nothing
    assert nesting_exceeds(b"\\" * 7 + b"[" * 100, 64) is True
    assert nesting_exceeds(b'["\\\\"' + b"[" * 100, 64) is True  # "\\" closes: even run


def depth(value: Any) -> int:
    """Nesting of arrays/objects, as the parser builds it (the reference)."""
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


TRICKY = st.text(alphabet=st.sampled_from('[]{}"\\ aé\n\t/u0'), max_size=12)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TRICKY
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(TRICKY | st.text(max_size=4), inner, max_size=4),
    max_leaves=40,
)


@given(
    value=JSON_VALUES,
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
    delta=st.integers(-2, 2),
)
@example(value={"s": "[[[["}, ascii_only=True, indent=None, delta=0)  # brackets in a string
@example(value={"s": '"[[[['}, ascii_only=True, indent=None, delta=0)  # after an escaped quote
@example(value=["\\", "[[[[", "\\\\"], ascii_only=False, indent=None, delta=0)  # even runs
def test_it_agrees_with_the_parsed_depth(value, ascii_only, indent, delta):
    body = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
    real = depth(json.loads(body))
    limit = max(real + delta, 0)
    assert nesting_exceeds(body, limit) is (real > limit)


@given(inner=JSON_VALUES, levels=st.integers(1, 80))
def test_it_agrees_on_deep_bodies_with_strings(inner, levels):
    value: Any = inner
    for i in range(levels):
        value = [value, '"]}\\'] if i % 2 else {"[": value}
    body = json.dumps(value).encode()
    real = depth(value)
    for limit in (real - 1, real, 64):
        assert nesting_exceeds(body, limit) is (real > limit)
