"""Infix text -> tokens, in one linear pass of one regular expression.

People's spellings are normalised here, so the parser sees one alphabet: ``×``, ``·``
and ``⋅`` are ``*``, ``÷`` is ``/``, ``−`` is ``-``, ``**`` is ``^``, ``π`` is the name
``pi``, superscripts (``x²``, ``x⁻¹``) are postfix powers and ``√`` is ``sqrt``. Anything no
expression can hold (a string, a Python keyword, a complex literal, a non-ASCII name)
is an error that points at its column and says what to write instead.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from dataclasses import dataclass

from engine.errors import ExpressionError, short

# Number: Python's decimal literal (underscores between digits allowed), with an
# exponent only when digits follow it: ``2e`` is 2 times e, ``2e3`` is 2000.
_DIGITS = r"\d(?:_?\d)*"
_NUMBER = rf"(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?"
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_TOKEN = re.compile(
    rf"(?P<space>\s+)|(?P<num>{_NUMBER})|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    rf"|(?P<sup>⁻?[{_SUPERSCRIPTS}]+)"
    r"|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/^@(),|=×·⋅∗÷−–√π\[\]{}.:;<>!%&~'\"#])"
)
SPELLINGS = {"×": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "−": "-", "–": "-", "**": "^"}
NAME_SPELLINGS = {"π": "pi", "√": "sqrt"}
MAX_INT_DIGITS = 400  # any integer this long is past float64's range


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num", "name", "op" or "end"
    text: str  # normalised: "*" for "×", "pi" for "π", ...
    pos: int  # offset of its first character in the text
    spaced: bool  # whitespace came right before it
    value: int | float | None = None  # a number's value


def where(text: str, pos: int) -> str:
    """'column C' (1-based, in characters), with the line when the text has several."""
    if not re.search(r"[\r\n]", text):
        return f"column {pos + 1}"
    lines = re.split(r"\r\n|\r|\n", text[:pos])
    return f"line {len(lines)}, column {len(lines[-1]) + 1}"


def fail(text: str, pos: int, why: str) -> ExpressionError:
    """The error for ``why`` at offset ``pos``."""
    return ExpressionError(f"{why} ({where(text, pos)})", field="expression")


def tokenize(text: str) -> list[Token]:
    """Every token of ``text``, ending with an "end" token."""
    tokens: list[Token] = []
    pos, spaced, n = 0, False, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise fail(text, pos, _unexpected(text[pos]))
        kind, piece = m.lastgroup or "", m.group()
        if kind == "space":
            spaced = True
        elif kind == "num":
            tokens.append(Token("num", piece, pos, spaced, _number(text, pos, piece)))
            _after_number(text, m.end())
            spaced = False
        elif kind == "sup":  # a power: "sup" tokens carry their integer exponent
            digits = "".join(str(_SUPERSCRIPTS.index(c)) for c in piece.lstrip("⁻"))
            exponent = _number(text, pos, digits)
            exponent = -exponent if piece.startswith("⁻") else exponent
            tokens.append(Token("op", "sup", pos, spaced, exponent))
            spaced = False
        elif kind == "name":
            if keyword.iskeyword(piece):
                raise fail(text, pos, f"{piece!r} is not allowed in an expression")
            tokens.append(Token("name", piece, pos, spaced))
            spaced = False
        else:
            if piece in ("'", '"'):
                raise fail(text, pos, "a string is not allowed in an expression")
            if piece in NAME_SPELLINGS:
                tokens.append(Token("name", NAME_SPELLINGS[piece], pos, spaced))
            else:
                tokens.append(Token("op", SPELLINGS.get(piece, piece), pos, spaced))
            spaced = False
        pos = m.end()
    tokens.append(Token("end", "", n, spaced))
    return tokens


def _number(text: str, pos: int, piece: str) -> int | float:
    digits = piece.replace("_", "")
    if any(c in digits for c in ".eE"):
        x = float(digits)
        if x - x == 0:  # past float64's range Python's float() says inf: refused, as in JSON
            return x
        raise fail(text, pos, "the number is too large for float64")
    if len(digits) > MAX_INT_DIGITS or int(digits) >= 2**1023:
        raise fail(text, pos, "the number is too large for float64")
    return int(digits)


def _after_number(text: str, end: int) -> None:
    """``1j`` is Python's imaginary unit: refuse it rather than read ``1*j``."""
    if end < len(text) and text[end] in "jJ" and not re.match(r"\w", text[end + 1 : end + 2]):
        raise fail(text, end, "complex numbers are not supported; for a product write 1*j")


def _unexpected(ch: str) -> str:
    """Why ``ch`` cannot start a token: a non-ASCII letter gets its ASCII name."""
    if ch.isalpha():
        name = unicodedata.name(ch, "")
        spelled = name.rsplit(" ", 1)[-1].lower() if "GREEK" in name else ""
        hint = f": write {spelled}" if spelled.isascii() and spelled.isalpha() else ""
        return f"name {ch!r} is not allowed; names are ASCII letters, digits and _{hint}"
    return f"unexpected character {short(ch)}"
