"""Annotated dependencies, so route signatures read as prose.

They are ``async`` on purpose: a plain ``def`` dependency would cost every
request a trip through the threadpool just to fetch an object.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.service import Service


async def get_service(request: Request) -> Service:
    """The app's engine bridge, built once at startup."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
