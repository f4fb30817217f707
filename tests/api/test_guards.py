"""The checks that run on raw bytes before any JSON parsing."""

from __future__ import annotations

import pytest

from app.guards import is_json_media_type, nesting_exceeds


@pytest.mark.parametrize(
    ("body", "limit", "exceeds"),
    [
        (b"{}", 1, False),
        (b'{"a": [[1]]}', 3, False),
        (b'{"a": [[1]]}', 2, True),
        (b"[" * 10 + b"]" * 10, 10, False),
        (b"[" * 11 + b"]" * 11, 10, True),
        (b"[[],[],[],[],[],[],[],[],[],[],[],[]]", 2, False),  # many brackets, shallow
        (b'{"s": "[[[[[[[[[[[[[["}', 2, False),  # brackets inside a string do not nest
        (b'{"s": "\\"[[[[[[[[[[[["}', 2, False),  # nor after an escaped quote
        (b"[" * 100_000, 64, True),
    ],
)
def test_nesting_is_measured_on_raw_bytes(body, limit, exceeds):
    assert nesting_exceeds(body, limit) is exceeds


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Application/JSON", True),
        ("application/problem+json", True),
        ("application/vnd.api+json", True),
        ("text/json", False),
        ("text/plain", False),
        ("application/jsonx", False),
        ("multipart/form-data; boundary=x", False),
        ("", False),
        (None, False),
    ],
)
def test_only_json_media_types_pass(content_type, ok):
    assert is_json_media_type(content_type) is ok
