"""The ASGI app: ``create_app(settings)`` wires routes, handlers, guards and docs.

Run it with ``uvicorn app.main:app``; tests build their own with test settings.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import threadpoolctl
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import collector_tuning, cors, docs, log_format, openapi, playground, problems
from app.activity import Activity
from app.admission import Saturated
from app.graph_store import StoreUnavailable
from app.guards import BodyGuard
from app.memory import tune_allocator
from app.observability import Observability
from app.proxy import PrefixMiddleware
from app.routes import catalogue, compute, graphs, health, metrics, pictures, symbolic
from app.service import Service
from app.settings import Settings, get_settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Pin the BLAS threads, shorten the interpreter lock's switch interval, size the
    collector's youngest generation (``app.collector_tuning``) and warm the SymPy workers
    at startup; undo them at shutdown.

    Request threads already fill the cores: BLAS threads inside each of them
    oversubscribe the cores (40 concurrent 1000x1000 inverses on 2 cores took 46 s
    with OpenBLAS's own threads, 6 s with one), so each process keeps
    ``blas_threads`` (default 1) and replicas scale out. The allocator is set up to
    give large arrays back to the system when freed, and to keep the pages of small
    ones for the next request (``app.memory``).
    """
    tune_allocator()
    thresholds = collector_tuning.tune()
    blas = pin_blas_threads(app.state.settings.blas_threads)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(app.state.settings.gil_switch_seconds)
    try:
        app.state.service.start()
        try:
            yield
        finally:
            app.state.service.stop()
    finally:  # also when the start fails
        sys.setswitchinterval(switch)
        blas.restore_original_limits()
        collector_tuning.restore(thresholds)


def pin_blas_threads(threads: int) -> Any:
    """Set every BLAS library's threads; ``.restore_original_limits()`` undoes it.

    threadpoolctl (3.8+) lets only the first thread that set OpenBLAS's process-wide
    count change it again, silently ignoring the others; the app's start-up takes that
    control over, so the pin holds whichever thread (event loop, test portal) runs it.
    """
    clear = getattr(threadpoolctl.OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    return threadpoolctl.threadpool_limits(limits=threads, user_api="blas")


def create_app(settings: Settings | None = None) -> FastAPI:
    """A fresh app serving the wire contract under ``settings`` (default: the environment)."""
    settings = settings or get_settings()
    app = FastAPI(
        title=openapi.TITLE,
        version=openapi.VERSION,
        description=openapi.DESCRIPTION,
        openapi_tags=openapi.TAGS,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=openapi.operation_id,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = Service(settings)
    app.state.activity = Activity()  # who computes: app.dispatch runs a lone request inline

    app.include_router(compute.router)
    app.include_router(symbolic.router)
    app.include_router(graphs.router)
    app.include_router(catalogue.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(pictures.router)
    docs.install(app)
    playground.install(app)
    openapi.install(app)

    app.add_exception_handler(RequestValidationError, problems.validation_handler)
    app.add_exception_handler(StarletteHTTPException, problems.http_handler)
    for cls, status, slug, title in problems.ERROR_PROBLEMS:
        app.add_exception_handler(cls, problems.engine_handler(status, slug, title))
    app.add_exception_handler(Saturated, problems.saturated_handler)
    app.add_exception_handler(StoreUnavailable, problems.saturated_handler)
    app.add_exception_handler(Exception, problems.unexpected_handler)

    # Added last runs first: the prefix is known before the guard reads the path.
    app.add_middleware(BodyGuard, settings=settings, admission=app.state.service.admission)
    # Outside the guard, so its refusals get a request id and a log line too; inside the
    # prefix middleware, so it sees the scope the router fills in (the route template).
    app.add_middleware(Observability, log_requests=settings.log_requests)
    app.add_middleware(
        PrefixMiddleware,
        root_path=settings.root_path,
        trust_forwarded_prefix=settings.trust_forwarded_prefix,
    )
    # Outermost: a browser's preflight is answered before any guard reads it.
    cors.install(app, settings.cors_origins, settings.problem_type_base)
    log_format.install()
    return app


app = create_app()
