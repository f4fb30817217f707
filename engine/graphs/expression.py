"""Infix text -> the same Graph a JSON node list gives, via ``ast`` and a strict whitelist.

Nothing is evaluated or compiled: ``ast.parse`` builds a tree and only arithmetic
(``+ - * / ** @``, unary ``-``/``+``), numbers, names and calls of catalogue ops by
name pass. Every free name becomes a ``variable`` whose value comes from the request.
Nesting (brackets, runs of signs) is measured on the raw text before parsing, since
the parser itself recurses; the tree is then walked with an explicit stack.
"""

from __future__ import annotations

import ast
import difflib
import io
import keyword
import re
import tokenize
from typing import Any

from engine.errors import ExpressionError, LimitError, short
from engine.graphs.build import ID_PATTERN, build_graph
from engine.graphs.graph import DEFAULT_LIMITS, LEAF_OPS, Graph, Limits
from engine.ops import OPS
from engine.ops.registry import OpDef

BINARY_OPS = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div",
    ast.Pow: "pow", ast.MatMult: "matmul",
}
SYMBOLS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@",
    ast.FloorDiv: "//", ast.Mod: "%", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
    ast.BitAnd: "&", ast.BitXor: "^", ast.Not: "not", ast.Invert: "~",
}
# What a rejected construct is called in the error message.
CONSTRUCTS = {
    ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "lambda",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator",
    ast.Compare: "a comparison", ast.BoolOp: "and/or", ast.IfExp: "a conditional",
    ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set",
    ast.Starred: "unpacking", ast.JoinedStr: "a string", ast.NamedExpr: "an assignment",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "a slice",
}


def parse_expression(text: str, limits: Limits = DEFAULT_LIMITS) -> Graph:
    """Parse infix ``text`` into a Graph whose last node is the whole expression."""
    if not isinstance(text, str):
        raise ExpressionError("the expression must be a string", field="expression")
    if len(text) > limits.max_expression_length:
        raise LimitError(
            f"the expression has {len(text)} characters, over the limit of "
            f"{limits.max_expression_length}", field="expression",
        )
    if not text.strip():
        raise ExpressionError("the expression is empty", field="expression")
    check_nesting(text, limits.max_expression_depth)
    screen_tokens(text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        where = f" at {position(text, e.lineno or 1, e.offset - 1)}" if e.offset else ""
        why = "" if e.msg == "invalid syntax" else f": {clip(e.msg)}"
        raise ExpressionError(f"invalid syntax{where}{why}",
                              field="expression") from None
    except (RecursionError, MemoryError):
        # CPython's parser gives up on very deep trees, e.g. a chain of ~1000 operators.
        raise ExpressionError("the expression is too deeply nested to parse",
                              field="expression") from None
    except ValueError as e:  # e.g. an integer literal of more than 4300 digits
        raise ExpressionError(f"invalid expression: {clip(str(e))}",
                              field="expression") from None
    return build_graph(_Converter(text).nodes(tree.body), limits)


def clip(message: str, limit: int = 80) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def check_nesting(text: str, max_depth: int) -> None:
    """Reject bracket nesting or runs of signs deeper than ``max_depth``, before parsing."""
    depth = run = 0
    for pos, ch in enumerate(text):
        if ch in "([{":
            depth += 1
            if depth > max_depth:
                raise LimitError(
                    f"brackets nested deeper than {max_depth} at column {pos + 1}",
                    field="expression",
                )
        elif ch in ")]}":
            depth -= 1
        if ch in "+-~":
            run += 1
            if run > max_depth:
                raise LimitError(
                    f"more than {max_depth} signs in a row at column {pos + 1}",
                    field="expression",
                )
        elif not ch.isspace():
            run = 0


def screen_tokens(text: str) -> None:
    """Reject strings and keywords before parsing: the parser would warn about some of them
    (``1if``), and no warning filter can be changed per call without a race between threads."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING:
                what = "a string"
            elif tok.type == tokenize.NAME and keyword.iskeyword(tok.string):
                what = repr(tok.string)
            else:
                continue
            raise ExpressionError(
                f"{what} is not allowed in an expression ({position(text, *tok.start)})",
                field="expression",
            )
    except (tokenize.TokenError, SyntaxError):
        pass  # ast.parse reports it, with its own message


def position(text: str, lineno: int, column: int) -> str:
    """'column C' (1-based), with the line when the text has several."""
    if re.search(r"[\r\n]", text):
        return f"line {lineno}, column {column + 1}"
    return f"column {column + 1}"


def callable_ops(nargs: int) -> list[str]:
    """Ops an expression may call with ``nargs`` positional arguments."""
    return [name for name, op in OPS.items() if _accepts(op, nargs)]


def _accepts(op: OpDef, nargs: int) -> bool:
    if any(a.required for a in op.attrs.values()):
        return False  # needs options only a JSON graph can give
    return nargs >= 1 if op.arity is None else nargs == op.arity


class _Converter:
    """Walks the tree bottom-up with an explicit stack and emits contract node dicts."""

    def __init__(self, text: str):
        self.text = text
        self.variables: dict[str, None] = {}  # ordered set, first appearance first
        self.ops: list[dict[str, Any]] = []
        self.taken: set[str] = set()
        self.counter = 0

    def nodes(self, root: ast.expr) -> list[dict[str, Any]]:
        # Generated ids (_1, _2, ...) must avoid every name the text uses.
        self.taken = {n.id for n in ast.walk(root) if isinstance(n, ast.Name)}
        done: dict[int, str | float | int] = {}  # id(ast node) -> node id or number
        stack: list[tuple[ast.expr, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            children = self.children(node)
            if expanded:
                done[id(node)] = self.emit(node, [done[id(c)] for c in children])
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(children))
        result = done[id(root)]
        out: list[dict[str, Any]] = [{"id": v, "op": "variable"} for v in self.variables]
        out += self.ops
        if not isinstance(result, str):  # the whole expression is a number
            out.append({"id": self.fresh(), "op": "constant", "value": result})
        return out

    def children(self, node: ast.expr) -> list[ast.expr]:
        """The operands of an allowed node; anything else is an ExpressionError."""
        if isinstance(node, ast.BinOp):
            op = BINARY_OPS.get(type(node.op))
            if op is None or op not in OPS:
                raise self.error(node, f"operator {SYMBOLS.get(type(node.op), '?')} is not "
                                       "allowed; use + - * / ** @")
            return [node.left, node.right]
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd):
                raise self.error(node, f"unary {SYMBOLS.get(type(node.op), '?')} is not "
                                       "allowed; only - and +")
            return [node.operand]
        if isinstance(node, ast.Call):
            return self.call_args(node)
        if isinstance(node, ast.Name):
            self.check_name(node)
            return []
        if isinstance(node, ast.Constant):
            value = node.value
            if type(value) not in (int, float):
                what = "a string" if isinstance(value, str | bytes) else short(value, 20)
                raise self.error(node, f"{what} is not allowed; only numbers")
            if type(value) is int and abs(value) >= 2**1023:
                raise self.error(node, "the number is too large for float64")
            return []
        what = CONSTRUCTS.get(type(node), type(node).__name__)
        raise self.error(node, f"{what} is not allowed in an expression")

    def call_args(self, node: ast.Call) -> list[ast.expr]:
        if not isinstance(node.func, ast.Name):
            raise self.error(node, "only catalogue functions can be called, by name: tanh(x)")
        name = node.func.id
        if node.keywords:
            raise self.error(node.keywords[0], f"{name}() takes positional arguments only")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error(arg, "unpacking is not allowed in an expression")
        op = OPS.get(name)
        if op is None:
            close = difflib.get_close_matches(name, callable_ops(len(node.args)), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise self.error(node, f"unknown function {short(name, 40)}{hint}")
        if any(a.required for a in op.attrs.values()):
            raise self.error(node, f"{name} needs attrs; use a JSON graph for it")
        if not _accepts(op, len(node.args)):
            want = "at least 1" if op.arity is None else str(op.arity)
            raise self.error(node, f"{name} takes {want} argument(s), got {len(node.args)}")
        return list(node.args)

    def check_name(self, node: ast.Name) -> None:
        name = node.id
        if name in OPS or name in LEAF_OPS:
            raise self.error(node, f"{name!r} is a function, not a variable; call it: {name}(x)")
        if not ID_PATTERN.fullmatch(name):
            raise self.error(node, f"name {short(name, 40)} is not a valid node id "
                                   "([A-Za-z_][A-Za-z0-9_]*, at most 128 characters)")

    def emit(self, node: ast.expr, args: list[Any]) -> str | float | int:
        """The node id (or folded number) that stands for ``node``."""
        if isinstance(node, ast.Name):
            self.variables.setdefault(node.id, None)
            return node.id
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp):
            (x,) = args
            if isinstance(node.op, ast.UAdd):
                return x
            if not isinstance(x, str):
                return -x  # -2 is a number, not neg(2)
            return self.add_op("neg", [x])
        if isinstance(node, ast.BinOp):
            return self.add_op(BINARY_OPS[type(node.op)], args)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return self.add_op(node.func.id, args)

    def add_op(self, op: str, inputs: list[Any]) -> str:
        nid = self.fresh()
        self.ops.append({"id": nid, "op": op, "inputs": inputs})
        return nid

    def fresh(self) -> str:
        self.counter += 1
        while f"_{self.counter}" in self.taken:
            self.counter += 1
        return f"_{self.counter}"

    def error(self, node: ast.AST, why: str) -> ExpressionError:
        return ExpressionError(f"{why} ({self.where(node)})", field="expression")

    def where(self, node: ast.AST) -> str:
        lineno = getattr(node, "lineno", 1)
        offset = getattr(node, "col_offset", 0)  # in UTF-8 bytes
        lines = re.split(r"\r\n|\r|\n", self.text)
        line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
        return position(self.text, lineno, len(line.encode()[:offset].decode("utf-8", "ignore")))
