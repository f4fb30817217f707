"""Tensor, Variable and constant: immutable float64 values the tapes record.

0-d values are kept as numpy float64 scalars, not 0-d arrays: numpy's scalar
arithmetic is an order of magnitude cheaper, which is what keeps long scalar
chains fast. Both behave as arrays (``.shape``, ``.ndim``, broadcasting).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

Value = np.ndarray | np.float64

# Set by engine.ops.registry: maps an op name to its callable. Kept here as a
# hook so Tensor's operators need no import of the op table (no cycle).
OPS_FN: dict[str, Callable[..., Tensor]] = {}
# Set by engine.ops.indexing: ``x[key]`` as a recorded strided_slice.
GETITEM: list[Callable[[Tensor, Any], Tensor]] = []


def as_value(value: Any) -> Value:
    """Convert numbers and nested lists to float64; 0-d becomes a numpy scalar."""
    if type(value) is np.float64:
        return value
    arr = np.asarray(value, dtype=np.float64)
    return arr[()] if arr.ndim == 0 else arr


class Tensor:
    """An immutable value with an identity a tape can watch."""

    __slots__ = ("value", "_name", "__weakref__")
    __array_priority__ = 100  # ndarray op Tensor defers to Tensor's reflected operators

    def __init__(self, value: Any, name: str | None = None):
        self.value: Value = as_value(value)
        self._name = name

    @property
    def name(self) -> str | None:
        """The name given to a leaf or a graph node; None otherwise. An op builds its output
        without setting one: a store less on every op of a long chain."""
        try:
            return self._name
        except AttributeError:
            return None

    @name.setter
    def name(self, name: str | None) -> None:
        self._name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def size(self) -> int:
        return int(self.value.size)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    def numpy(self) -> np.ndarray:
        """The value as an ndarray (0-d for scalars), as ``tf.Tensor.numpy``."""
        return np.array(self.value, dtype=np.float64)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.value, dtype=dtype)

    def __float__(self) -> float:
        return float(self.value)

    def __int__(self) -> int:
        """As a scalar ``tf.Tensor``: ``int(t)``, so a tensor can give an axis or a count."""
        return int(self.value)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name else ""
        kind = "Variable" if isinstance(self, Variable) else "Tensor"
        return f"{kind}({np.array2string(np.asarray(self.value))}{label})"

    def __format__(self, spec: str) -> str:
        """As ``tf.Tensor``, formatted as its numpy value: the seed article's
        ``f"dy/dx: {dy_dx}"`` prints ``dy/dx: 6.0``, and ``f"{g:.2f}"`` works on a scalar."""
        return format(self.value, spec)

    __hash__ = object.__hash__  # identity, as tf.Tensor under eager execution

    # Operators dispatch to the op table so they are recorded like any op.
    def __add__(self, other: Any) -> Tensor:
        return OPS_FN["add"](self, other)

    def __radd__(self, other: Any) -> Tensor:
        return OPS_FN["add"](other, self)

    def __sub__(self, other: Any) -> Tensor:
        return OPS_FN["sub"](self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return OPS_FN["sub"](other, self)

    def __mul__(self, other: Any) -> Tensor:
        return OPS_FN["mul"](self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return OPS_FN["mul"](other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return OPS_FN["div"](self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return OPS_FN["div"](other, self)

    def __pow__(self, other: Any) -> Tensor:
        return OPS_FN["pow"](self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return OPS_FN["pow"](other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return OPS_FN["matmul"](self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return OPS_FN["matmul"](other, self)

    def __neg__(self) -> Tensor:
        return OPS_FN["neg"](self)

    def __abs__(self) -> Tensor:
        return OPS_FN["abs"](self)

    # Comparisons give 1.0/0.0 tensors with no gradient (engine.ops.logic), so that
    # ``max(a, b)`` and ``if loss > k:`` work as in TF eager. ``==`` stays identity, as
    # ``__hash__``: tapes key sets and dicts by tensors (TF 2's elementwise ``==`` makes
    # its tensors unhashable); ``equal`` is the elementwise op.
    def __lt__(self, other: Any) -> Tensor:
        return OPS_FN["less"](self, other)

    def __le__(self, other: Any) -> Tensor:
        return OPS_FN["less_equal"](self, other)

    def __gt__(self, other: Any) -> Tensor:
        return OPS_FN["greater"](self, other)

    def __ge__(self, other: Any) -> Tensor:
        return OPS_FN["greater_equal"](self, other)

    def __bool__(self) -> bool:
        """A one-element tensor's truth, as TF eager; more elements are ambiguous."""
        if self.value.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {list(self.shape)} is ambiguous; "
                "use reduce_any / reduce_all, or compare elementwise"
            )
        return bool(self.value)

    def __getitem__(self, key: Any) -> Tensor:
        """``x[1:, None, ..., 0]``: recorded as a strided_slice, with its gradient."""
        return GETITEM[0](self, key)

    def __iter__(self) -> Iterator[Tensor]:
        """The rows, each a recorded ``self[i]``, as TF eager; a scalar is not iterable."""
        if self.ndim == 0:
            raise TypeError("cannot iterate over a scalar tensor")
        return (self[i] for i in range(self.shape[0]))


def bind_operators() -> None:
    """Make ``a * b`` call the op callable itself: one Python call less per operator.

    Called once the op table is complete; until then the methods above dispatch
    through ``OPS_FN``.
    """
    for dunder, name in (
        ("__add__", "add"), ("__sub__", "sub"), ("__mul__", "mul"), ("__truediv__", "div"),
        ("__pow__", "pow"), ("__matmul__", "matmul"), ("__neg__", "neg"), ("__abs__", "abs"),
    ):
        if name in OPS_FN:
            setattr(Tensor, dunder, OPS_FN[name])


class EagerTensor(Tensor):
    """The class of every op's output, as TensorFlow's ``EagerTensor`` is of its eager
    ops': a Tensor built with no Python ``__init__`` (the op sets ``value`` itself).
    Calling the class then allocates in C, with no argument tuple, which
    ``object.__new__(Tensor)`` would build; on a long scalar chain, a few percent."""

    __slots__ = ()
    __init__ = object.__init__  # type: ignore[assignment]


class Variable(Tensor):
    """A leaf a tape watches automatically when an op reads it, as ``tf.Variable``."""

    __slots__ = ("trainable", "uid")

    def __init__(self, initial_value: Any, trainable: bool = True, name: str | None = None):
        super().__init__(initial_value, name)
        self.trainable = trainable
        self.uid = next(_variable_ids)  # order of construction (``watched_variables``)

    def read_value(self) -> Tensor:
        """The value as a tensor, recorded as an identity: its gradient reaches the variable."""
        return OPS_FN["identity"](self)

    def assign(self, value: Any) -> Variable:
        """Give the variable a new value of the same shape, as ``tf.Variable.assign``."""
        new = as_value(value.value if isinstance(value, Tensor) else value)
        if np.shape(new) != self.shape:
            raise ValueError(
                f"Cannot assign value of shape {list(np.shape(new))} to a variable of shape "
                f"{list(self.shape)}"
            )
        for check in BEFORE_ASSIGN:
            check(self)
        self.value = new
        return self

    def assign_add(self, delta: Any) -> Variable:
        return self.assign(self.value + np.asarray(delta, dtype=np.float64))

    def assign_sub(self, delta: Any) -> Variable:
        return self.assign(self.value - np.asarray(delta, dtype=np.float64))


_variable_ids = itertools.count()

# Set by engine.tape.recording: checks run before a variable takes a new value (a tape
# that recorded reading it would otherwise differentiate at the new value).
BEFORE_ASSIGN: list[Callable[[Variable], None]] = []


def constant(value: Any, name: str | None = None) -> Tensor:
    """A tensor no tape watches unless asked to, as ``tf.constant``."""
    if isinstance(value, Tensor):
        return Tensor(value.value, name or value.name)
    return Tensor(value, name)
