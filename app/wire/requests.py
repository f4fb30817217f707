"""Request models: the graph, its nodes and the compute request, as the wire contract says.

Models are strict (``app.wire.bounded``): an unknown field is a 422 naming it, and
booleans must be JSON booleans. A node's form is checked here, once: the service hands
the decoded nodes to the engine, which checks only what they mean
(``engine.graphs.build.check_node``). Graph-level rules (references, cycles, arity,
attrs, shapes) are the engine's, and its errors name the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)

from app.graph_store import GRAPH_ID_PATTERN
from app.wire.bounded import ListOf, MapOf, WireModel
from app.wire.node_form import form_nodes
from app.wire.values import VALUE_SCHEMA, Value, decode
from engine.tape.collector import collector_paused

EXPRESSION_GRAMMAR = """Math as typed, instead of `graph`; parsed without eval into the same graph.
- operators, loosest first: `+ -`; `* / @` (also `×`, `·`, `÷`); implicit
  multiplication `2x`, `x y`, `3(x+1)`, `(x+1)(x-1)`, `2 sin x` (binds tighter than
  `*` and `/`: `1/2x` is `1/(2x)`); unary `-` (also `−`); `^` or `**`
  (right-associative: `2^3^2` is `2^9`, `-x^2` is `-(x^2)`), superscripts `x²` `x⁻¹`.
- functions: every op of `GET /v1/ops` without required attrs, by name, and `ln`,
  `log` (natural), `log10`, `log2`, `log(x, base)`, `arcsin`-style inverse names, `sgn`,
  `sec`, `csc`, `cot`, `√`; `|x|` is `abs(x)`. `f(a, b)` is a call; without parentheses a
  function takes the factor after it, up to the next `+ - * /` or function:
  `sin x^2` = `sin(x^2)`, `sin 2x` = `sin(2x)`, `sin x cos x` = `sin(x) cos(x)`,
  `sin^2 x` = `sin(x)^2`.
- more arguments: `max(a, b)`/`min(a, b)` are `maximum`/`minimum` (one argument: the
  reduction), `atan2(y, x)`, `pow(a, b)`, `sum(x, axis)`, `mean(x, axis=-1)`.
- constants `e`, `pi` (`π`); every other name is a variable valued from `values`; names
  are ASCII (`x1`, `theta`), so `xy` is one name: write `x y` for a product.
- the output is named `f` (`g` or `h` when `f` is a variable); `g = ...` or
  `g(x) = ...` names it.
Errors are 422 problems that give the column and say what to write instead."""

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$"

NodeId = Annotated[
    str,
    Field(
        pattern=NODE_ID_PATTERN,
        description="1 to 128 characters of [A-Za-z0-9_.:-], starting with a letter or `_`.",
    ),
]
Ref = Annotated[str, Field(min_length=1, max_length=128)]
GraphId = Annotated[
    str, Field(pattern=GRAPH_ID_PATTERN, description="`g_` and 64 hex digits (SHA-256).")
]


def _decode_input(obj: Any) -> Any:
    """A string is a reference to a node id; anything else is an inline constant."""
    if type(obj) is str:
        if not obj or len(obj) > 128:
            raise ValueError("a node reference has 1 to 128 characters")
        return obj
    return decode(obj)


Input = Annotated[
    Any,
    PlainValidator(_decode_input),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "description": "a node id"}, VALUE_SCHEMA],
            "description": "A node id (a reference) or an inline constant value.",
        }
    ),
]


class Node(WireModel):
    """One node: a leaf (`variable`, `constant`) or an op applied to its inputs."""

    id: NodeId
    op: str = Field(max_length=64, description="A name from `GET /v1/ops`.")
    inputs: ListOf[Input] = Field(
        default_factory=list,
        description="Ordered inputs: node ids (in any order; the graph is a DAG) or constants.",
    )
    attrs: dict[str, Any] = Field(
        default_factory=dict, description="Op options: `axis`, `keepdims`, `shape`, `perm`, ..."
    )
    value: Value | None = Field(
        default=None, description="A leaf's value, unless the request's `values` gives one."
    )
    trainable: StrictBool = Field(
        default=True,
        description="`variable` only: `false` leaves it unwatched unless listed in `watch`.",
    )

    @property
    def given_trainable(self) -> bool | None:
        """``trainable`` as the request gave it; None when it did not say."""
        return self.trainable if "trainable" in self.model_fields_set else None


def _checked_nodes(raw: Any, model: ValidatorFunctionWrapHandler) -> Any:
    """The node list through ``app.wire.node_form`` (one plain pass, the same checks);
    through the ``Node`` model, for its refusals, only when that pass doubts."""
    with collector_paused:  # its rescans of the young records cost more than the pass
        nodes = form_nodes(raw)
    return model(raw) if nodes is None else nodes


class Graph(WireModel):
    """A computation as a list of nodes."""

    nodes: Annotated[ListOf[Node], WrapValidator(_checked_nodes)] = Field(min_length=1)


def _exactly_one(*names: str) -> Callable[[dict[str, Any]], None]:
    """State "exactly one of these members, not null" (what the validator checks) in the
    schema's description.

    The schema stays a plain object whose members are all optional: a top-level
    ``oneOf`` next to ``properties`` is what client generators (openapi-python-client)
    and ReDoc fail on, and the validator refuses a request breaking the rule with a
    422 anyway.
    """
    listed = ", ".join(f"`{name}`" for name in names[:-1]) + f" or `{names[-1]}`"
    rule = f"Send exactly one of {listed} (not null); otherwise the answer is a 422."

    def add_rule(schema: dict[str, Any]) -> None:
        schema["description"] = f"{schema.get('description', '').rstrip()}\n\n{rule}".lstrip()

    return add_rule


class ComputeRequest(WireModel):
    """What to compute: a graph or an expression, with TensorFlow's GradientTape options."""

    model_config = ConfigDict(
        json_schema_extra=_exactly_one("graph", "expression", "expressions", "graph_id"),
    )

    graph: Graph | None = Field(default=None, description="The computation (or `expression`).")
    expression: str | None = Field(
        default=None,
        description=EXPRESSION_GRAMMAR,
        examples=["x^2 + y^3", "2x sin x", "g = e^(-x^2/2) / sqrt(2pi)"],
    )
    expressions: MapOf[str] | None = Field(
        default=None,
        description=(
            "Several named expressions instead of `expression`, e.g. "
            '`{"u": "x y", "v": "x + y"}`: one graph whose outputs are nodes named by the '
            "keys, sharing their variables. The default `target` is every output, in this "
            "order: `evaluate` gives each, `jacobian` the Jacobian of the vector function "
            "(`gradient` and `hessian` take the sum, as TF does with a list of targets). "
            "The texts count against `DERIV_MAX_EXPRESSION_CHARS` together."
        ),
        examples=[{"u": "x y", "v": "x + y"}],
    )
    graph_id: GraphId | None = Field(
        default=None,
        description=(
            "Instead of `graph` or `expression`: the id `POST /v1/graphs` gave the graph. "
            "A 404 problem means this replica does not hold it (any more): register it again."
        ),
    )
    values: MapOf[Value] = Field(
        default_factory=dict, description="Leaf values by id; override a node's own `value`."
    )
    target: Ref | ListOf[Ref] | None = Field(
        default=None,
        description="Node id or list of ids (a list is summed, as TF does). Default: last node.",
    )
    sources: ListOf[Ref] | None = Field(
        default=None, description="Ids to differentiate with respect to. Default: watched leaves."
    )
    watch: ListOf[Ref] = Field(
        default_factory=list,
        description="Extra ids to watch: constants and non-trainable variables (`tape.watch`).",
    )
    watch_accessed_variables: StrictBool = Field(
        default=True, description="`false`: only ids in `watch` are watched, as in TF."
    )
    unconnected_gradients: Literal["none", "zero"] = Field(
        default="none",
        description="A source with no path to the target: `none` gives null, `zero` zeros.",
    )
    output_gradients: MapOf[Value] | None = Field(
        default=None,
        description="Upstream gradient per target id, of the target's shape. Default: ones.",
    )
    check: Literal["auto", "sympy", "numeric", "none"] = Field(
        default="auto",
        description=(
            "Cross-check by SymPy or central differences; `auto` picks SymPy for small "
            "graphs, differences for larger ones, nothing beyond the configured bounds."
        ),
    )
    trace: StrictBool = Field(
        default=False,
        description=(
            "Include the recorded tape (every endpoint, with `points` too): entries, their "
            "leaves and a jaxpr-like text. Priced as response bytes before anything runs."
        ),
    )
    points: ListOf[MapOf[Value]] | MapOf[Value] | None = Field(
        default=None,
        description=(
            "Many points in one request (`evaluate`, `gradient`, `hessian`): a list of "
            "`values` maps, or one map of arrays whose leading axis runs over the points. "
            "The graph is validated once and run once over that batch axis; every output, "
            "gradient and Hessian gains it in front. Leaves no point names keep their "
            "`values` (shared); a source varies per point. At most `DERIV_MAX_POINTS`."
        ),
    )

    @model_validator(mode="after")
    def _one_computation(self) -> ComputeRequest:
        given = (
            (self.graph is not None)
            + (self.expression is not None)
            + (self.graph_id is not None)
            + (self.expressions is not None)
        )
        if given != 1:
            raise ValueError(
                "send exactly one of `graph`, `expression` or `graph_id` (or `expressions` "
                "instead of `expression`)"
            )
        return self


class DerivativeRequest(ComputeRequest):
    """A compute request with the highest derivative order wanted."""

    order: StrictInt = Field(
        ge=1,
        description=(
            "Every derivative from order 1 up to this one (at most "
            "`DERIV_MAX_DERIVATIVE_ORDER`, default 6; 422 beyond)."
        ),
    )


class HessianRequest(ComputeRequest):
    """A compute request with the Hessian's output format."""

    format: Literal["auto", "dense", "coo"] = Field(
        default="auto",
        description=(
            "`dense`: `hessian` blocks and `matrix`. `coo`: the sparsity pattern is "
            "detected from the graph, the Hessian is evaluated compressed (one sweep per "
            "colour of the pattern's columns), and `sparse` lists its non-zeros as "
            "coordinates; `structure` says what was found. `auto`: dense up to "
            "`DERIV_DENSE_MAX_SOURCES` source elements, `coo` beyond."
        ),
    )


class GraphRequest(WireModel):
    """A graph to register: the same `graph` or `expression` a compute request takes."""

    model_config = ConfigDict(json_schema_extra=_exactly_one("graph", "expression"))

    graph: Graph | None = Field(default=None, description="The computation (or `expression`).")
    expression: str | None = Field(
        default=None, description="Infix text instead of `graph`, as in compute requests."
    )

    @model_validator(mode="after")
    def _one_computation(self) -> GraphRequest:
        if (self.graph is None) == (self.expression is None):
            raise ValueError("send exactly one of `graph` or `expression`")
        return self


class SymbolicRequest(WireModel):
    """A function to differentiate symbolically: no values needed."""

    model_config = ConfigDict(json_schema_extra=_exactly_one("graph", "expression", "graph_id"))

    graph: Graph | None = Field(default=None, description="The computation (or `expression`).")
    expression: str | None = Field(
        default=None, description="Infix text instead of `graph`, as in compute requests."
    )
    graph_id: GraphId | None = Field(
        default=None, description="Instead of `graph` or `expression`: a registered graph's id."
    )
    values: MapOf[Value] = Field(
        default_factory=dict,
        description=(
            "Leaf values by id (optional): when every leaf has one (here or in its node's "
            "`value`), `values` of the answer gives the function and derivatives there. A "
            "leaf with no value is a scalar symbol."
        ),
    )
    target: Ref | None = Field(
        default=None, description="A scalar node to differentiate. Default: the last node."
    )
    sources: ListOf[Ref] | None = Field(
        default=None,
        description=(
            "Leaves to differentiate by, in the order of every axis; a tensor leaf counts "
            "as its elements (`w_0_1` for `w[0, 1]`). Default: every variable, sorted by id."
        ),
    )
    order: StrictInt = Field(
        default=1,
        ge=1,
        description=(
            "Every derivative from order 1 up to this one (at most "
            "`DERIV_MAX_DERIVATIVE_ORDER`; 422 beyond)."
        ),
    )
    simplify: StrictBool = Field(
        default=True,
        description=(
            "Simplify each expression within SymPy's budget; past it the text comes "
            "unsimplified, with a note."
        ),
    )

    @model_validator(mode="after")
    def _one_computation(self) -> SymbolicRequest:
        given = (self.graph is not None) + (self.expression is not None) + (
            self.graph_id is not None
        )
        if given != 1:
            raise ValueError("send exactly one of `graph`, `expression` or `graph_id`")
        return self
