"""Tokens -> contract node dicts, by precedence climbing (a Pratt parser).

Binding, loosest first: ``+ -``; explicit ``* / @``; implicit multiplication (``2x``,
``x y``, ``(x+1)(x-1)``, ``2 sin x``), which binds tighter, so ``1/2x`` is ``1/(2x)``;
unary ``- +``; ``^`` (right-associative, ``-x^2`` is ``-(x^2)``) and superscripts
(``x²``, ``x⁻¹``). A function name followed by ``(`` is a call; otherwise it applies to the one
factor that follows: the implicit product up to the next explicit operator or the
next function name, so ``sin x^2`` is ``sin(x^2)``, ``sin 2x`` is ``sin(2x)`` and
``sin x cos x`` is ``sin(x)*cos(x)``; ``sin^2 x`` is ``sin(x)^2``.

Each token is read once and each node emitted once, so parsing is linear. The parser
recurses only into nesting (brackets, signs, powers, functions), which is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.graphs import infix_functions as fn
from engine.graphs.infix_functions import Arg, CallError, Ref
from engine.graphs.infix_tokens import Token, fail

BINARY = {
    "+": (10, "add"),
    "-": (10, "sub"),
    "*": (20, "mul"),
    "/": (20, "div"),
    "@": (20, "matmul"),
}
IMPLICIT, UNARY, POWER = 21, 30, 40
MAX_NESTING = 200  # levels of recursion: brackets, signs, powers, functions (twice)
MAX_TREE_DEPTH = 2000  # operations in one chain (``x+x+...``), as Python's parser allowed
MISPLACED = {
    "=": "= can only name the whole expression, at its start: g = x^2",
    "==": "a comparison is not allowed in an expression",
    "%": "% (modulo) is not allowed: the op table has no modulo",
    "//": "// (floor division) is not allowed; floor(x / y) gives it",
    ";": "; is not allowed: one expression per text",
    ",": "a comma only separates a call's arguments, as in max(x, y)",
    "~": "unary ~ is not allowed; only - and +",
    "[": "a list is not allowed in an expression; use ( ) for grouping",
    "{": "braces are not allowed; use ( ) for grouping",
    ")": "unmatched )",
}
for _cmp in ("!=", "<", ">", "<=", ">="):
    MISPLACED[_cmp] = MISPLACED["=="]


@dataclass(frozen=True, slots=True)
class Context:
    in_abs: bool = False  # a "|" in operator position closes the bars
    func_arg: bool = False  # the argument of a function written without parentheses


TOP = Context()


class Nodes:
    """The node dicts of one or more expressions: leaves first, then ops, with
    generated ids (_1, _2, ...) that avoid every name in ``taken``."""

    def __init__(self, taken: set[str]):
        self.taken = taken
        self.leaves: dict[str, dict[str, Any]] = {}  # first appearance first
        self.ops: list[dict[str, Any]] = []
        self.depth: dict[str, int] = {}
        self.counter = 0

    def leaf(self, name: str) -> str:
        if name not in self.leaves:
            value = fn.CONSTANTS.get(name)
            self.leaves[name] = (
                {"id": name, "op": "variable"}
                if value is None
                else {"id": name, "op": "constant", "value": value}
            )
        return name

    def add(
        self, op: str, inputs: list[Ref], attrs: dict[str, Any] | None, nid: str | None = None
    ) -> str:
        nid = nid or self.fresh()
        node: dict[str, Any] = {"id": nid, "op": op, "inputs": inputs}
        if attrs:
            node["attrs"] = attrs
        self.ops.append(node)
        self.depth[nid] = 1 + max(
            (self.depth.get(x, 0) for x in inputs if type(x) is str), default=0
        )
        return nid

    def fresh(self) -> str:
        self.counter += 1
        while f"_{self.counter}" in self.taken:
            self.counter += 1
        return f"_{self.counter}"

    def all(self) -> list[dict[str, Any]]:
        return [*self.leaves.values(), *self.ops]


class Parser:
    """One expression's tokens -> nodes appended to a shared ``Nodes``."""

    def __init__(self, text: str, tokens: list[Token], nodes: Nodes):
        self.text, self.tokens, self.nodes = text, tokens, nodes
        self.i = 0
        self.nesting = 0

    def parse(self) -> Ref:
        """The whole text as one operand: a node id, or a number."""
        try:
            ref, _ = self.expression(0, TOP)
        except RecursionError:  # a caller already deep in the stack: a typed error still
            raise self.error(
                self.peek().pos, "the expression is too deeply nested to parse"
            ) from None
        tok = self.peek()
        if tok.kind != "end":
            raise self.misplaced(tok)
        return ref

    # ------------------------------------------------------------------ tokens

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def error(self, pos: int, why: str) -> Exception:
        return fail(self.text, pos, why)

    def misplaced(self, tok: Token, operand_pos: int | None = None) -> Exception:
        if tok.kind == "end":
            return self.error(tok.pos, "the expression ends where an operand should be")
        if tok.kind == "num":
            return self.error(
                tok.pos,
                f"a number right after an operand; for a product "
                f"write *{tok.text}, for a power ^{tok.text}",
            )
        if tok.text == "." and operand_pos is not None:
            return self.error(operand_pos, "attribute access is not allowed in an expression")
        if tok.text == "[" and operand_pos is not None:
            return self.error(operand_pos, "indexing is not allowed in an expression")
        return self.error(tok.pos, MISPLACED.get(tok.text, f"{tok.text!r} is not allowed here"))

    # ------------------------------------------------------------------ grammar

    def expression(self, min_bp: int, ctx: Context) -> tuple[Ref, int]:
        """An operand whose operators all bind at least ``min_bp``: (ref, its start)."""
        start = self.peek().pos
        self.descend(start)
        left = self.prefix(ctx)
        while True:
            tok = self.peek()
            text = tok.text if tok.kind == "op" else ""
            if text in BINARY:
                bp, op = BINARY[text]
                if bp < min_bp:
                    break
                self.take()
                right, _ = self.expression(bp + 1, ctx)
                left = self.emit(op, [left, right], None, tok.pos)
            elif text in ("^", "sup"):
                if POWER < min_bp:
                    break
                self.take()
                right = tok.value if text == "sup" else self.expression(POWER, ctx)[0]
                left = self.emit("pow", [left, right], None, tok.pos)
            elif self.starts_factor(tok, ctx):
                if IMPLICIT < min_bp:
                    break
                right, _ = self.expression(IMPLICIT + 1, ctx)
                left = self.emit("mul", [left, right], None, tok.pos)
            elif tok.kind == "end" or text in (")", ",", "|") or tok.kind == "name":
                break
            else:
                raise self.misplaced(tok, start)
        self.nesting -= 1
        return left, start

    def descend(self, pos: int) -> None:
        """One level deeper (``self.nesting -= 1`` on the way back). A function counts
        twice, as its call takes twice the frames: the bound keeps a parse within about
        500 frames of Python's stack, whatever the configured limits."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(
                pos,
                f"the expression is too deeply nested to parse (more than {MAX_NESTING} levels)",
            )

    def starts_factor(self, tok: Token, ctx: Context) -> bool:
        """Whether ``tok``, right after an operand, starts an implicit product's factor."""
        if tok.kind == "name":
            return not (ctx.func_arg and fn.is_function(tok.text))
        if tok.kind == "op":
            return tok.text == "(" or (tok.text == "|" and not ctx.in_abs)
        return False

    def prefix(self, ctx: Context) -> Ref:
        tok = self.take()
        if tok.kind == "num":
            assert tok.value is not None
            return tok.value
        if tok.kind == "name":
            return self.name(tok, ctx)
        if tok.text in ("-", "+"):
            operand, _ = self.expression(UNARY, ctx)
            if tok.text == "+":
                return operand
            if type(operand) is not str:
                return -operand  # -2 is a number, not neg(2)
            return self.emit("neg", [operand], None, tok.pos)
        if tok.text == "(":
            if self.peek().text == ")":
                raise self.error(tok.pos, "empty parentheses")
            inner, _ = self.expression(0, TOP)
            self.close(tok, ")")
            return inner
        if tok.text == "|":
            inner, _ = self.expression(0, Context(in_abs=True))
            self.close(tok, "|")
            return self.emit("abs", [inner], None, tok.pos)
        if tok.kind == "end":
            raise self.misplaced(tok)
        if tok.text in BINARY or tok.text in ("^", "sup"):
            shown = self.text[tok.pos] if tok.text == "sup" else tok.text
            raise self.error(tok.pos, f"an operand is missing before {shown}")
        if tok.text == ".":
            raise self.error(tok.pos, "'.' is not allowed here")
        raise self.misplaced(tok)

    def close(self, opening: Token, closing: str) -> None:
        tok = self.peek()
        if tok.kind == "op" and tok.text == closing:
            self.take()
            return
        if tok.kind == "end":
            raise self.error(opening.pos, f"{opening.text} is never closed")
        raise self.misplaced(tok)

    def name(self, tok: Token, ctx: Context) -> Ref:
        name, nxt = tok.text, self.peek()
        calls = nxt.kind == "op" and nxt.text == "(" and not nxt.spaced
        if name in fn.CONSTANTS:
            if calls:
                hint = "" if name != "e" else ", or exp(...) for the exponential"
                raise self.error(
                    tok.pos,
                    f"{name} is the constant {fn.SPELLED[name]}; write "
                    f"{name}*(...) for a product{hint}",
                )
            return self.nodes.leaf(name)
        if fn.is_function(name):
            return self.apply(tok, ctx)
        why = fn.reserved(name)
        if why:
            raise self.error(tok.pos, why)
        if calls:
            hint = fn.suggest(name)
            if hint:
                raise self.error(tok.pos, f"unknown function {name}{hint}")
            raise self.error(
                tok.pos,
                f"{name} is not a function; for a product write {name}*(...) or {name} (...)",
            )
        return self.nodes.leaf(name)

    def apply(self, tok: Token, ctx: Context) -> Ref:
        """``name(args...)``, ``name^k x`` or ``name x``: the function ``tok`` applied."""
        name = tok.text
        self.descend(tok.pos)
        power = self.power_of(name)
        nxt = self.peek()
        if nxt.kind == "op" and nxt.text == "(":
            args, axis = self.arguments(name)
        elif nxt.kind in ("num", "name") or (nxt.kind == "op" and nxt.text in "(|"):
            arg, start = self.expression(IMPLICIT, Context(ctx.in_abs, func_arg=True))
            args, axis = [Arg(arg, start)], None
        else:
            raise self.error(
                tok.pos, f"{name} needs an argument right after it: {name}(x) or {name} x"
            )
        try:
            out = fn.call(name, args, axis, lambda op, xs, at: self.emit(op, xs, at, tok.pos))
        except CallError as e:
            raise self.error(tok.pos if e.pos is None else e.pos, e.why) from None
        self.nesting -= 1
        return out if power is None else self.emit("pow", [out, power], None, tok.pos)

    def power_of(self, name: str) -> int | None:
        """The k of ``sin^k x`` or ``sin² x``, a power of the function's value; None if
        none. A negative k is refused: ``sin⁻¹`` means the inverse to many readers."""
        tok = self.peek()
        if tok.kind != "op" or tok.text not in ("^", "sup"):
            return None
        self.take()
        if tok.text == "^":
            exponent = self.take()
            power = exponent.value if exponent.kind == "num" else None
        else:
            power = tok.value
        if type(power) is int and power >= 0:
            return power
        inverse = f"a{name}"
        hint = f"; for the inverse write {inverse}(x) or arc{name}(x)" if inverse in fn.OPS else ""
        raise self.error(
            tok.pos,
            f"{name}^k x takes a whole number k >= 0, as in {name}^2 x; write "
            f"{name}(x)^-1 for any other power{hint}",
        )

    def arguments(self, name: str) -> tuple[list[Arg], Arg | None]:
        opening = self.take()
        args: list[Arg] = []
        axis: Arg | None = None
        if self.peek().text == ")":
            raise self.error(opening.pos, f"{name}() needs an argument")
        while True:
            tok, nxt = self.peek(), self.peek(1)
            if tok.kind == "name" and nxt.kind == "op" and nxt.text == "=":
                if tok.text != "axis":
                    raise self.error(
                        tok.pos,
                        f"{name}() takes positional arguments only, and axis= for reductions",
                    )
                self.i += 2
                ref, start = self.expression(0, TOP)
                axis = Arg(ref, start)
            else:
                if axis is not None:
                    raise self.error(tok.pos, "a positional argument after axis=")
                ref, start = self.expression(0, TOP)
                args.append(Arg(ref, start))
            if self.peek().text != ",":
                break
            self.take()
        self.close(opening, ")")
        return args, axis

    def emit(self, op: str, inputs: list[Ref], attrs: dict[str, Any] | None, pos: int) -> str:
        nid = self.nodes.add(op, inputs, attrs)
        if self.nodes.depth[nid] > MAX_TREE_DEPTH:
            raise self.error(
                pos,
                f"the expression is too deeply nested to parse (a chain of "
                f"more than {MAX_TREE_DEPTH} operations)",
            )
        return nid
