"""``ProblemError``: an RFC 9457 problem answered by the service, as a Python exception."""

from __future__ import annotations

from typing import Any

import httpx


class ProblemError(Exception):
    """The service refused the request (4xx) or failed (5xx).

    ``node`` or ``field`` names the culprit when the service knows it; ``request_id`` is the
    ``X-Request-ID`` to quote when reporting a fault. ``body`` holds every member sent
    (``errors``, ``limit``, ``estimate``...).
    """

    def __init__(
        self,
        status: int,
        type: str = "about:blank",  # noqa: A002 - the problem's own member name
        title: str = "",
        detail: str = "",
        node: str | None = None,
        field: str | None = None,
        request_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.node = node
        self.field = field
        self.request_id = request_id
        self.body = body or {}
        where = f" (node {node})" if node else f" (field {field})" if field else ""
        super().__init__(f"{status} {title}: {detail}{where}".strip())

    @property
    def slug(self) -> str:
        """The last part of ``type``: ``graph-not-found``, ``saturated``, ``cost-limit``..."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]

    @classmethod
    def from_response(cls, response: httpx.Response) -> ProblemError:
        """Read a problem body; a non-problem error body still gives status and text."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {"detail": response.text[:2000]}
        return cls(
            status=response.status_code,
            type=str(body.get("type", "about:blank")),
            title=str(body.get("title", response.reason_phrase)),
            detail=str(body.get("detail", "")),
            node=body.get("node"),
            field=body.get("field"),
            request_id=response.headers.get("x-request-id") or body.get("request_id"),
            body=body,
        )
