"""GET /v1/ops: the op catalogue rendered from the engine's table."""

from __future__ import annotations

CONTRACT_OPS = """
variable constant
neg abs sign exp log log1p expm1 sqrt square reciprocal sin cos tan asin acos atan sinh cosh
tanh asinh acosh atanh sigmoid relu softplus floor ceil identity stop_gradient
add sub mul div pow maximum minimum atan2
sum mean prod max min logsumexp softmax
reshape transpose broadcast_to expand_dims squeeze concat stack slice
matmul inv det solve
""".split()


def _ops(client) -> dict[str, dict]:
    r = client.get("/v1/ops")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    return {op["name"]: op for op in r.json()["ops"]}


def test_catalogue_lists_every_contract_op(client):
    missing = set(CONTRACT_OPS) - set(_ops(client))
    assert not missing


def test_each_op_has_arity_attrs_formula_and_convention(client):
    for name, op in _ops(client).items():
        assert set(op) >= {"name", "arity", "attrs", "formula", "convention"}, name
        assert op["arity"] is None or isinstance(op["arity"], int), name
        assert isinstance(op["formula"], str) and op["formula"], name
        assert isinstance(op["convention"], str), name
        for attr in op["attrs"].values():
            assert set(attr) >= {"kind", "default", "required", "doc"}, name


def test_variadic_ops_have_null_arity_and_reductions_take_axis(client):
    ops = _ops(client)
    assert ops["concat"]["arity"] is None and ops["stack"]["arity"] is None
    assert ops["add"]["arity"] == 2 and ops["exp"]["arity"] == 1
    assert {"axis", "keepdims"} <= set(ops["sum"]["attrs"])


def test_kink_conventions_are_stated(client):
    ops = _ops(client)
    for name in ("abs", "relu", "maximum", "minimum"):
        assert ops[name]["convention"], name
