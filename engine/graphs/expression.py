"""Infix text as people type it -> the same Graph a JSON node list gives. Never evaluated.

The text is tokenized (``infix_tokens``) and parsed by precedence climbing
(``infix_parser``, which states the grammar) into contract node dicts, which go
through ``build_graph`` as any JSON graph does. Limits come first, on the raw text:
its length, and the nesting of brackets and runs of signs. Every free name becomes a
``variable`` valued from the request; ``e`` and ``pi`` (``π``) are constants.

``parse_named`` names outputs: ``f`` by default, ``g = ...`` (or ``g(x) = ...``) in the
text, or one name per expression of a mapping (several targets of one graph).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from engine.errors import EngineError, ExpressionError, LimitError, short
from engine.graphs import infix_functions as fn
from engine.graphs.build import ID_PATTERN, build_graph
from engine.graphs.graph import DEFAULT_LIMITS, Graph, Limits
from engine.graphs.infix_parser import Nodes, Parser
from engine.graphs.infix_tokens import Token, tokenize, where

DEFAULT_NAMES = ("f", "g", "h")  # an unnamed output's name: the first the text leaves free
# ``g = ...`` or ``g(x, y) = ...`` at the start (not ``==``)
_DERIVATIVE = re.compile(r"n(?:\^1)?/n")  # token kinds of d/dx, d^2/dx, d/dy, ...
_NAMED = re.compile(r"\s*([A-Za-z_]\w*)\s*(?:\(\s*\w+(?:\s*,\s*\w+)*\s*\)\s*)?=(?!=)")


@dataclass(frozen=True)
class NamedGraph:
    """A graph and its named outputs (the targets), in the order given."""

    graph: Graph
    outputs: tuple[str, ...]


def callable_ops(nargs: int) -> list[str]:
    """Catalogue ops an expression may call by name with ``nargs`` positional arguments."""
    return fn.callable_names(nargs)


def parse_expression(text: str, limits: Limits = DEFAULT_LIMITS) -> Graph:
    """Parse infix ``text`` into a Graph whose last node is the whole expression."""
    tokens = screen(text, limits, "expression")
    nodes = Nodes(_names(tokens))
    ref = Parser(text, tokens, nodes).parse()
    if type(ref) is not str:  # the whole expression is a number
        nodes.ops.append({"id": nodes.fresh(), "op": "constant", "value": ref})
    return build_graph(nodes.all(), limits)


# Unused value names searched for in the text's names (each search reads every name of
# the text): 3,269 names and 206,388 value names once took 130 s. The rest are refused
# later, as names of no node, without the hint.
MAX_HINTED_NAMES = 64


def parse_named(
    expressions: str | Mapping[str, str],
    limits: Limits = DEFAULT_LIMITS,
    given: Collection[str] = (),
) -> NamedGraph:
    """One expression (output ``f`` unless named ``g = ...``) or a mapping of names to
    expressions, as one graph whose outputs are nodes of those names.

    ``given``: the names the request gives values for. A value for ``e`` or ``pi`` would
    silently replace the constant, so it is an error that says so.
    """
    if isinstance(expressions, str):
        check_length(expressions, limits, "expression")  # before any regular expression
        name, body = _split(expressions, "expression")
        texts = {name: body}
    else:
        texts = _named_texts(expressions, limits)
    tokens = {name: screen(body, limits, _field(expressions, name)) for name, body in texts.items()}
    used = set().union(*(_names(t) for t in tokens.values()))
    for name in sorted(set(given) & used & set(fn.CONSTANTS)):
        raise ExpressionError(
            f"{name} is the constant {fn.SPELLED[name]} in an expression, "
            "so values cannot set it; call the variable something else",
            field=f"values.{name}",
        )
    unused = set(given) - used - set(texts)
    for name in sorted(unused & set(fn.CONSTANTS)):
        raise ExpressionError(
            f"{name} is the constant {fn.SPELLED[name]}, not a variable, "
            "so values cannot set it",
            field=f"values.{name}",
        )
    words = sorted(used)
    for name in sorted(unused)[:MAX_HINTED_NAMES]:
        hint = run_together(name, words)
        if hint:
            raise ExpressionError(hint, node=name, field=f"values.{name}")
    nodes = Nodes(used | set(texts))
    outputs: list[str] = []
    for key, body in texts.items():
        field = _field(expressions, key)
        name = key or next((n for n in DEFAULT_NAMES if n not in used), "")
        if not name:
            raise ExpressionError(
                "the text uses f, g and h as variables; name the output: y = ...", field=field
            )
        _check_output(name, used, field)
        try:
            ref = Parser(body, tokens[key], nodes).parse()
        except EngineError as e:
            raise _in(e, field) from None
        _name_output(nodes, ref, name)
        outputs.append(name)
    return NamedGraph(build_graph(nodes.all(), limits), tuple(outputs))


def run_together(name: str, words: Sequence[str]) -> str | None:
    """Why a values name the text does not use is still in it: run into a longer name,
    as ``x`` is in ``sinx`` or ``2xy``; None when no name of the text (``words``, sorted)
    contains it."""
    for word in words:
        if name == word or name not in word or fn.is_function(word):
            continue  # a function's own name (``x`` in ``max``, ``exp``) runs nothing together
        for k in range(len(word) - 1, 0, -1):  # the longest function name first
            head, rest = word[:k], word[k:]
            if fn.is_function(head) and name in rest:
                return f"`{word}` is one name: write `{head} {rest}` or `{head}({rest})`"
        i = word.index(name)
        parts = [p for p in (word[:i], name, word[i + len(name) :]) if p]
        return f"`{word}` is one name: write `{' '.join(parts)}` or `{'*'.join(parts)}`"
    return None


def _derivative_operator(text: str, tokens: list[Token], field: str) -> None:
    """``d/dx x^2`` reads as the variables d and dx: say what to write instead."""
    kinds = "".join(
        "n" if t.kind == "name" else "1" if t.kind == "num" else t.text for t in tokens[:5]
    )
    m = _DERIVATIVE.match(kinds)
    last = tokens[m.end() - 1] if m else None
    if last and tokens[0].text == "d" and last.text.startswith("d") and len(last.text) > 1:
        raise ExpressionError(
            f"{text[tokens[0].pos : last.pos + len(last.text)]} ({where(text, tokens[0].pos)})"
            ": write the function itself; the endpoints compute its derivatives "
            "(order: 2 for the second)",
            field=field,
        )


def screen(text: str, limits: Limits, field: str) -> list[Token]:
    """The tokens of ``text`` once its length and nesting are within the limits."""
    check_length(text, limits, field)
    if not text.strip():
        raise ExpressionError("the expression is empty", field=field)
    try:
        check_nesting(text, limits.max_expression_depth)
        tokens = tokenize(text)
        _derivative_operator(text, tokens, field)
        return tokens
    except EngineError as e:
        raise _in(e, field) from None


def check_length(text: str, limits: Limits, field: str) -> None:
    """A string of at most ``max_expression_length`` characters."""
    if not isinstance(text, str):
        raise ExpressionError("the expression must be a string", field=field)
    if len(text) > limits.max_expression_length:
        raise LimitError(
            f"the expression has {len(text)} characters, over the limit of "
            f"{limits.max_expression_length}",
            field=field,
        )


def check_nesting(text: str, max_depth: int) -> None:
    """Reject bracket nesting or runs of signs deeper than ``max_depth``, before parsing."""
    depth = run = 0
    for pos, ch in enumerate(text):
        if ch in "([{":
            depth += 1
            if depth > max_depth:
                raise LimitError(
                    f"brackets nested deeper than {max_depth} at {where(text, pos)}",
                    field="expression",
                )
        elif ch in ")]}":
            depth -= 1
        if ch in "+-~\u2212\u2013":
            run += 1
            if run > max_depth:
                raise LimitError(
                    f"more than {max_depth} signs in a row at {where(text, pos)}",
                    field="expression",
                )
        elif not ch.isspace():
            run = 0


def _names(tokens: list[Token]) -> set[str]:
    return {t.text for t in tokens if t.kind == "name"}


def _split(text: str, field: str) -> tuple[str, str]:
    """(the output's name or "", the expression) of ``g = ...`` / ``g(x) = ...``."""
    if not isinstance(text, str):
        raise ExpressionError("the expression must be a string", field=field)
    m = _NAMED.match(text)
    if m is None:
        return "", text
    return m.group(1), " " * m.end() + text[m.end() :]  # columns stay the text's own


def _named_texts(expressions: Mapping[str, str], limits: Limits) -> dict[str, str]:
    if not expressions:
        raise ExpressionError(
            "expressions is empty; give at least one name: text", field="expressions"
        )
    total = sum(len(t) for t in expressions.values() if isinstance(t, str))
    if total > limits.max_expression_length:
        raise LimitError(
            f"the expressions have {total} characters in all, over the limit "
            f"of {limits.max_expression_length}",
            field="expressions",
        )
    texts: dict[str, str] = {}
    for key, text in expressions.items():
        name, body = _split(text, f"expressions.{key[:128]}")
        if name and name != key:
            raise ExpressionError(
                f"expressions.{key[:40]}: the text names its output {name}, not its key",
                field=f"expressions.{key[:128]}",
            )
        if not key:
            raise ExpressionError("an output name is empty", field="expressions")
        texts[key] = body
    return texts


def _check_output(name: str, used: set[str], field: str) -> None:
    if not ID_PATTERN.fullmatch(name):
        raise ExpressionError(
            f"output name {short(name, 40)} is not a valid node id "
            "([A-Za-z_][A-Za-z0-9_.:-]*, at most 128 characters)",
            field=field,
        )
    if name in fn.CONSTANTS or fn.is_function(name) or fn.reserved(name):
        raise ExpressionError(
            f"{name} cannot name an output: it is a "
            f"{'constant' if name in fn.CONSTANTS else 'function'}",
            field=field,
        )
    if name in used:
        raise ExpressionError(
            f"{name} names an output and is a variable too; rename one", field=field
        )


def _name_output(nodes: Nodes, ref: str | int | float, name: str) -> None:
    """Make ``name`` the id of the node holding ``ref``: the root op itself, or a node
    that holds it (``identity`` of a leaf, a ``constant`` for a number)."""
    if type(ref) is not str:
        nodes.ops.append({"id": name, "op": "constant", "value": ref})
    elif nodes.ops and nodes.ops[-1]["id"] == ref and ref not in nodes.leaves:
        nodes.ops[-1]["id"] = name
        nodes.depth[name] = nodes.depth.pop(ref)
    else:
        nodes.add("identity", [ref], None, nid=name)


def _field(expressions: str | Mapping[str, str], key: str) -> str:
    return "expression" if isinstance(expressions, str) else f"expressions.{key[:128]}"


def _in(error: EngineError, field: str) -> EngineError:
    """``error`` naming ``field`` (one of several expressions) instead of "expression"."""
    if field == "expression" or error.field == field:
        return error
    return type(error)(f"{field}: {error.detail}", node=error.node, field=field)
