"""Registered graphs (and shared check results) kept in Redis, so every replica finds them.

``DERIV_GRAPH_STORE_URL=redis://host:port/db`` selects it. Redis holds each graph once, in
the compact form of ``app.graph_codec``, under ``deriv:graph:<id>`` with a TTL that every
use renews; each replica keeps its decoded graphs in the in-process LRU
(``app.graph_store.GraphStore``) in front, so a hit costs one round trip (the TTL's
renewal, which also tells a deleted graph from a live one) and never a decode.

Faults never become 500s: when Redis cannot be reached, a replica serves ``graph_id``
requests from its own copy, answers a 503 problem with ``Retry-After`` when it has none
(``StoreUnavailable``), and says ``degraded`` on ``/readyz``. After a failure it leaves Redis
alone for ``RETRY_SECONDS`` (so a dead Redis costs requests nothing), then tries again:
it reconnects by itself. Redis bounds its own memory (``maxmemory`` + ``allkeys-lru``,
deploy/README.md): an evicted graph is a 404, and registering it again restores it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app import graph_codec
from app.graph_store import GraphNotFound, GraphStore, GraphTooLarge, StoredGraph, StoreUnavailable

logger = logging.getLogger("app.store")

KEY_PREFIX = "deriv:"
MAC_BYTES = 32  # HMAC-SHA256 in front of each shared check structure
RETRY_SECONDS = 1.0  # after a failure, how long Redis is taken as down without asking it
PING_SECONDS = 1.0  # /readyz asks Redis at most this often

T = TypeVar("T")


class SharedStore:
    """One Redis connection pool behind a breaker: every call either answers or raises
    ``StoreUnavailable`` within ``timeout`` seconds, and a failure opens the breaker for
    ``RETRY_SECONDS``."""

    def __init__(self, url: str, timeout: float) -> None:
        # One retry on a fresh connection: after a Redis restart the pooled connections are
        # dead, and the first command on each should reconnect rather than fail.
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout,
            retry=Retry(NoBackoff(), 1), retry_on_timeout=False, health_check_interval=30,
        )  # fmt: skip
        self._down_until = 0.0
        self._checked_at = -PING_SECONDS
        self._up = True
        self._lock = threading.Lock()

    def call(self, what: str, command: Callable[[redis.Redis], T]) -> T:
        """``command(client)``'s answer; StoreUnavailable (saying ``what`` failed) when Redis
        is down or the breaker is open."""
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(what, retry_after=2)
        try:
            answer = command(self.client)
        except redis.RedisError as exc:
            self._failed(exc)
            raise StoreUnavailable(what, retry_after=2) from exc
        self._succeeded()
        return answer

    def state(self) -> str:
        """``ready`` when Redis answered lately, else ``degraded`` (pings at most once per
        ``PING_SECONDS``; readiness probes must not become load)."""
        now = time.monotonic()
        if now - self._checked_at >= PING_SECONDS and now >= self._down_until:
            self._checked_at = now
            try:
                self.call("the readiness probe could not ping it", lambda r: r.ping())
            except StoreUnavailable:
                pass
        return "ready" if self._up else "degraded"

    def close(self) -> None:
        self.client.close()

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self._down_until = time.monotonic() + RETRY_SECONDS
            if self._up:
                logger.warning("graph store unreachable: %s", exc)
            self._up = False

    def _succeeded(self) -> None:
        if not self._up:
            with self._lock:
                if not self._up:
                    logger.warning("graph store reachable again")
                self._up = True


class RedisGraphStore:
    """The graph store interface of ``app.graph_store.GraphStore``, shared through Redis.

    ``restore(gid, nodes)`` turns stored wire nodes back into a validated graph (the
    service's job: the store never sees the engine); it raises ``UnreadableGraph`` when the
    nodes do not hash to ``gid``.
    """

    def __init__(
        self,
        shared: SharedStore,
        local: GraphStore,
        ttl_seconds: int,
        max_bytes: int,
        restore: Callable[[str, list[dict[str, Any]]], StoredGraph],
        secret: bytes = b"",
    ) -> None:
        self.shared = shared
        self.local = local
        self.ttl = ttl_seconds
        self.max_bytes = max_bytes
        self.restore = restore
        # SymPy's derivatives are shared only under a secret (they become code when read)
        self.checks = SharedCheckCache(shared, ttl_seconds, secret) if secret else None

    @property
    def nbytes(self) -> int:
        return self.local.nbytes

    def __len__(self) -> int:
        return len(self.local)

    def state(self) -> str:
        return self.shared.state()

    def put(self, stored: StoredGraph) -> tuple[StoredGraph, bool]:
        """Store ``stored`` in Redis (unless there) and here: (the graph, whether it is new
        to Redis). Refused with StoreUnavailable rather than kept here alone, since an id
        other replicas do not know would be a 404 on them."""
        blob = graph_codec.encode(stored)
        if len(blob) > self.max_bytes:
            raise GraphTooLarge(
                len(blob), self.max_bytes, "bytes (compressed)", "graph_store_max_bytes"
            )
        key = graph_key(stored.graph_id)

        def write(r: redis.Redis) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            pipe.set(key, blob, nx=True, ex=self.ttl)
            pipe.expire(key, self.ttl)
            return pipe.execute()

        kept, new_here = self.local.put(stored)  # the per-process bounds first (413)
        try:
            created, _ = self.shared.call("the graph cannot be registered", write)
        except StoreUnavailable:
            if new_here:
                self.local.discard(stored.graph_id)
            raise
        return kept, bool(created)

    def get(self, gid: str) -> StoredGraph:
        """The graph registered as ``gid``: this replica's copy while Redis still has it (or
        cannot be asked), else Redis's, decoded and kept here."""
        key = graph_key(gid)
        if gid in self.local:
            try:
                alive = self.shared.call("", lambda r: r.expire(key, self.ttl))
            except StoreUnavailable:
                return self.local.get(gid)  # degraded: the copy is still this graph
            if not alive:  # deleted elsewhere, or evicted by Redis
                self.local.discard(gid)
                raise GraphNotFound(gid)
            return self.local.get(gid)
        blob = self.shared.call(
            f"graph {gid[:80]!r} cannot be fetched", lambda r: r.getex(key, ex=self.ttl)
        )
        if blob is None:
            raise GraphNotFound(gid)
        try:
            stored = self.restore(gid, graph_codec.decode(blob))
        except graph_codec.UnreadableGraph as exc:
            logger.warning("dropping unreadable stored graph %s: %s", gid[:80], exc)
            self.shared.call("", lambda r: r.delete(key))
            raise GraphNotFound(gid) from exc
        kept, _ = self.local.put(stored)
        return kept

    def delete(self, gid: str) -> None:
        """Forget ``gid`` everywhere: in Redis (other replicas drop their copies at their next
        use) and here; GraphNotFound if neither had it."""
        removed = self.shared.call(
            "the graph cannot be deleted", lambda r: r.delete(graph_key(gid))
        )
        here = gid in self.local
        self.local.discard(gid)
        if not removed and not here:
            raise GraphNotFound(gid)

    def close(self) -> None:
        self.shared.close()


class SharedCheckCache:
    """Derived check structures (engine.check.shared_checks) under ``deriv:check:...``,
    signed with HMAC-SHA256 under the replicas' shared secret: they are compiled into code
    when read, so bytes anyone else wrote into Redis are ignored, never loaded. Best
    effort: with Redis down each replica derives and keeps its own."""

    def __init__(self, shared: SharedStore, ttl_seconds: int, secret: bytes) -> None:
        self.shared = shared
        self.ttl = ttl_seconds
        self.secret = secret

    def _mac(self, key: str, body: bytes) -> bytes:
        return hmac.new(self.secret, key.encode() + b"\0" + body, hashlib.sha256).digest()

    def get(self, key: str) -> bytes | None:
        try:
            blob = self.shared.call("", lambda r: r.getex(KEY_PREFIX + key, ex=self.ttl))
        except StoreUnavailable:
            return None
        if blob is None:
            return None
        mac, body = blob[:MAC_BYTES], blob[MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(key, body)):
            logger.warning("ignoring a shared check structure with a bad signature: %s", key)
            return None
        return body

    def put(self, key: str, blob: bytes) -> None:
        signed = self._mac(key, blob) + blob
        try:
            self.shared.call("", lambda r: r.set(KEY_PREFIX + key, signed, ex=self.ttl))
        except StoreUnavailable:
            pass


def graph_key(gid: str) -> str:
    return f"{KEY_PREFIX}graph:{gid}"
