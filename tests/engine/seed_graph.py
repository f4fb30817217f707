"""The contract's example graph, the seed article's third example: z = x**2 + y**3 at
(2, 3). Engine tests build it from here; the web layer's copy is Swagger UI's example
(``app.examples.SEED_3``), which engine tests do not import."""

from __future__ import annotations

SEED = [
    {"id": "x", "op": "variable", "value": 2.0},
    {"id": "y", "op": "variable", "value": 3.0},
    {"id": "x2", "op": "pow", "inputs": ["x", 2]},
    {"id": "y3", "op": "pow", "inputs": ["y", 3]},
    {"id": "z", "op": "add", "inputs": ["x2", "y3"]},
]
