"""When to send a request again: a 503 with ``Retry-After``, a registered graph evicted.

Shared by ``Client`` and ``AsyncClient``; each owns only its waiting and sending.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

import httpx


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), None when absent."""
    header = response.headers.get("retry-after")
    if header is None:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class RetryPolicy:
    """``retries`` more sends at most after a saturated replica's 503, each wait capped at
    ``max_wait`` seconds, so a call ends within ``retries * max_wait`` plus its sends."""

    retries: int = 2
    max_wait: float = 10.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.max_wait < 0:
            raise ValueError("retries and max_wait are non-negative")

    def wait_before_retry(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before sending again, or None to give the answer as it is."""
        if response.status_code != 503 or attempt >= self.retries:
            return None
        seconds = retry_after_seconds(response)
        return None if seconds is None else min(seconds, self.max_wait)
