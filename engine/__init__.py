"""A tape-based reverse-mode autodiff engine on float64 numpy, speaking TF's GradientTape.

Vocabulary, used the same way in every module:

- ``tape``: a recording (``GradientTape``), a Wengert list of entries.
- ``entry``: one recorded op: its ``OpDef``, input tensors, output tensor, attrs.
- ``ans``: an op's forward output.
- ``g``: the upstream cotangent reaching an op's output in the reverse sweep; it may
  carry leading batch dims (``batch + ans.shape``), one Jacobian row per batch element,
  so a Jacobian or Hessian is one vectorised sweep (``engine.ops.batching``).
- ``vjp``: an op's vector-Jacobian product rule, ``vjp(ans, *inputs, **attrs)(g)``.
- ``source``/``target``: what a gradient is taken with respect to / of.

Example (the seed article's third example)::

    import engine as tf
    x, y = tf.Variable(2.0), tf.Variable(3.0)
    with tf.GradientTape() as tape:
        z = x**2 + y**3
    tape.gradient(z, [x, y])   # [4.0, 27.0]
"""

import numpy as _np

from engine import tf_names as _tf_names
from engine.derive.sparse import SparseHessian, SparseJacobian, sparse_hessian, sparse_jacobian
from engine.ops import OPS, OPS_FN
from engine.tape.custom_gradient import custom_gradient
from engine.tape.gradient_tape import GradientTape
from engine.tensor import Tensor, Variable

# Non-finite results are reported as notes, not as numpy warnings on stderr.
_np.seterr(all="ignore")

globals().update(OPS_FN)  # engine.sin, engine.matmul, ...
# TF's spellings (engine.tf_names), over an op's own name where TF's signature differs
# (``gather(params, indices)``, ``constant(value, dtype, shape)``)
globals().update({name: getattr(_tf_names, name) for name in _tf_names.__all__})

__all__ = [
    "GradientTape", "OPS", "SparseHessian", "SparseJacobian", "Tensor", "Variable",
    "custom_gradient", "sparse_hessian", "sparse_jacobian",
    *sorted(set(OPS_FN) | set(_tf_names.__all__)),
]
