"""The one interface registered graphs are kept behind, and the choice of backend.

In-process (``app.graph_store.GraphStore``) is the default: one process needs nothing
else. ``DERIV_GRAPH_STORE_URL=redis://...`` shares graphs between replicas
(``app.redis_store``), with the in-process store as each replica's decoded cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pydantic import SecretStr

from app.graph_store import GraphStore, StoredGraph
from app.settings import Settings

Restore = Callable[[str, list[dict[str, Any]]], StoredGraph]


class GraphBackend(Protocol):
    """What the service asks of a graph store; errors are app.graph_store's exceptions."""

    @property
    def nbytes(self) -> int: ...

    def __len__(self) -> int: ...

    def put(self, stored: StoredGraph) -> tuple[StoredGraph, bool]:
        """Keep ``stored`` (unless present): (the kept graph, whether it is new)."""
        ...

    def get(self, gid: str) -> StoredGraph:
        """The graph under ``gid``; GraphNotFound, or StoreUnavailable when it cannot tell."""
        ...

    def delete(self, gid: str) -> None:
        """Forget ``gid``; GraphNotFound if it is not kept."""
        ...

    def state(self) -> str:
        """``ready``, or ``degraded`` while a shared store cannot be reached."""
        ...


def open_graph_store(settings: Settings, restore: Restore) -> GraphBackend:
    """The backend ``settings.graph_store_url`` names (empty: in-process only)."""
    local = GraphStore(
        settings.graph_cache_size, settings.graph_cache_nodes, settings.graph_cache_bytes
    )
    url = settings.graph_store_url
    if not url:
        return local
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            f"DERIV_GRAPH_STORE_URL must be redis://, rediss:// or unix://, "
            f"not {url.split(':', 1)[0]!r}"
        )
    from app.redis_store import RedisGraphStore, SharedStore  # redis only when asked for

    shared = SharedStore(url, settings.graph_store_timeout_seconds)
    secret = settings.graph_store_secret
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return RedisGraphStore(
        shared,
        local,
        settings.graph_store_ttl_seconds,
        settings.graph_store_max_bytes,
        restore,
        secret.encode(),
    )
