"""Every limit and budget of the service, read from ``DERIV_*`` environment variables.

The service refuses work it cannot finish safely: each knob below bounds one
resource a request could otherwise exhaust (bytes, parser depth, memory, CPU).
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Limits and deployment options; each field is ``DERIV_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="DERIV_", frozen=True, extra="ignore")

    root_path: str = Field(
        default="",
        validation_alias=AliasChoices("DERIV_ROOT_PATH", "ROOT_PATH"),
        description="Path prefix a gateway mounts the service under, e.g. /deriv.",
    )
    trust_forwarded_prefix: bool = Field(
        default=False,
        description="Take the prefix from a proxy's X-Forwarded-Prefix header.",
    )
    max_body_bytes: int = Field(default=2 * MIB, ge=0, description="Request body size (413).")
    max_json_depth: int = Field(
        default=64, ge=2, description="Nesting of arrays/objects in a body, checked before parsing."
    )
    max_nodes: int = Field(default=10_000, ge=1, description="Nodes in a graph.")
    plan_cache_nodes: int = Field(
        default=40_000,
        ge=0,
        description="Nodes over the inline graphs kept built for when they are sent again.",
    )
    max_tensor_elements: int = Field(
        default=1_000_000, ge=1, description="Elements of one tensor, checked before allocation."
    )
    max_total_elements: int = Field(
        default=20_000_000, ge=1, description="Elements over all tensors of a graph."
    )
    max_inputs: int = Field(default=1_000, ge=1, description="Inputs of one node (concat, stack).")
    max_expression_chars: int = Field(default=10_000, ge=1, description="Length of `expression`.")
    max_expression_depth: int = Field(
        default=64, ge=1, description="Nesting depth of an `expression`'s syntax tree."
    )
    max_derivative_work: int = Field(
        default=1_000_000,
        ge=1,
        description=(
            "Entries of a Jacobian (target × source elements) or a Hessian (n × n for n "
            "source elements); bounds the reverse sweeps too."
        ),
    )
    max_points: int = Field(
        default=100_000, ge=1, description="Points of one request's `points` batch."
    )
    dense_max_sources: int = Field(
        default=1_000,
        ge=1,
        description=(
            "`format: auto` Hessians are dense up to this many source elements, sparse "
            "(detected pattern, compressed sweep, coordinate lists) beyond."
        ),
    )
    time_budget_seconds: float = Field(
        default=10.0, gt=0, description="Wall time for one computation before it is stopped."
    )
    sympy_max_nodes: int = Field(default=200, ge=0, description="`auto` uses SymPy up to here.")
    sympy_max_elements: int = Field(default=64, ge=0, description="`auto` SymPy element bound.")
    numeric_max_elements: int = Field(
        default=2_000, ge=0, description="`auto` uses finite differences up to here."
    )
    sympy_seconds: float = Field(default=2.0, gt=0, description="Budget of one SymPy check.")
    numeric_seconds: float = Field(
        default=2.0, gt=0, description="Budget of one finite-difference check."
    )
    sympy_workers: int = Field(
        default=2,
        ge=1,
        description=(
            "Warm SymPy worker processes shared by all requests (~67 MB RSS each); heavy "
            "checks may hold all but one, so small ones always find a worker."
        ),
    )
    blas_threads: int = Field(
        default=1,
        ge=1,
        description=(
            "Threads of the BLAS library (OpenBLAS, MKL) per process, set at start-up: "
            "request threads already use the cores, and more BLAS threads oversubscribe them."
        ),
    )
    gil_switch_seconds: float = Field(
        default=0.001,
        gt=0,
        le=0.1,
        description=(
            "How long a thread holds the interpreter lock while another waits for it "
            "(sys.setswitchinterval), set at start-up: Python's 5 ms made /healthz on the "
            "event loop wait behind four computing threads (p50 31-33 ms, p99 117-131 ms in "
            "two runs); 1 ms: 6-7 ms and 27-31 ms."
        ),
    )
    max_derivative_order: int = Field(
        default=6, ge=1, description="Highest `order` of POST /v1/derivative (422 beyond)."
    )
    graph_cache_size: int = Field(
        default=256, ge=1, description="Registered graphs kept per process (LRU)."
    )
    graph_cache_nodes: int = Field(
        default=1_000_000, ge=1, description="Nodes over all registered graphs kept per process."
    )
    max_work: float = Field(
        default=3e9,
        gt=0,
        description=(
            "Estimated work of one request, in flop-equivalents of about 1 ns of one core "
            "(engine.cost), from shapes before anything runs (422 beyond)."
        ),
    )
    max_request_bytes: float = Field(
        default=192 * MIB, gt=0, description="Estimated peak working memory of one request (422)."
    )
    max_response_bytes: float = Field(
        default=64 * MIB, gt=0, description="Estimated size of one response (422)."
    )
    memory_budget_bytes: float = Field(
        default=384 * MIB,
        gt=0,
        description=(
            "Estimated working memory of all running computations of the process; a request "
            "that does not fit waits, then gets 503 with Retry-After."
        ),
    )
    max_running: int = Field(
        default=4, ge=1, description="Computations running at once in the process (503 beyond)."
    )
    admission_wait_seconds: float = Field(
        default=2.0, ge=0, description="How long a request waits for room before its 503."
    )
    graph_cache_bytes: int = Field(
        default=64 * MIB, ge=1, description="Bytes over all registered graphs kept per process."
    )
    graph_store_url: str = Field(
        default="",
        description=(
            "Where registered graphs live: empty keeps them in each process; "
            "`redis://host:port/db` shares them (and SymPy's derivatives) between replicas."
        ),
    )
    graph_store_secret: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Shared by every replica: signs the SymPy derivatives they share through the "
            "store; empty: each replica derives its own (graphs are shared either way)."
        ),
    )
    graph_store_ttl_seconds: int = Field(
        default=86_400, ge=1, description="A shared graph is dropped this long after its last use."
    )
    graph_store_max_bytes: int = Field(
        default=8 * MIB, ge=1, description="Compressed size of one graph in the shared store (413)."
    )
    graph_store_timeout_seconds: float = Field(
        default=0.5, gt=0, description="Longest wait for the shared store on one call."
    )
    cors_origins: str = Field(
        default="",
        description=(
            "Browser origins allowed to call the API cross-site, comma-separated "
            "(`https://a.example,https://b.example`, or `*`); empty: no CORS headers at all."
        ),
    )
    problem_type_base: str = Field(
        default="tag:derivative-service,2025:problem/",
        description="Prefix of every problem `type` URI (RFC 9457).",
    )
    log_requests: bool = Field(
        default=True,
        description="One JSON line per request on the `app.requests` logger (never bodies).",
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
