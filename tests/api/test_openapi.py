"""The committed OpenAPI document, the seed's examples, and the docs served offline."""

from __future__ import annotations

import json
import re

import pytest

from app.openapi import OPENAPI_FILE, render
from tests.conftest import make_settings

COMPUTE = ("evaluate", "gradient", "jacobian", "hessian", "derivative")
_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def test_committed_openapi_matches_the_app(client):
    committed = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    served = client.app.openapi()
    assert committed == served, "openapi/openapi.json is stale: run `python -m app.openapi`"
    assert OPENAPI_FILE.read_text(encoding="utf-8") == render(served)


def test_openapi_json_is_served(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert r.json()["paths"].keys() == client.app.openapi()["paths"].keys()


def test_operation_ids_are_stable(client):
    ids = {
        path: next(iter(item.values()))["operationId"]
        for path, item in client.app.openapi()["paths"].items()
    }
    assert ids == {
        "/v1/evaluate": "evaluate",
        "/v1/gradient": "gradient",
        "/v1/jacobian": "jacobian",
        "/v1/hessian": "hessian",
        "/v1/derivative": "derivative",
        "/v1/symbolic": "symbolic",
        "/v1/graphs": "registerGraph",
        "/v1/graphs/{graph_id}": "getGraph",
        "/v1/ops": "listOps",
        "/healthz": "healthz",
        "/readyz": "readyz",
        "/v1/plot": "plot",
        "/v1/draw": "draw",
    }


def _examples(client, kind: str) -> dict:
    op = client.app.openapi()["paths"][f"/v1/{kind}"]["post"]
    return op["requestBody"]["content"]["application/json"]["examples"]


@pytest.mark.parametrize("kind", COMPUTE)
def test_seed_examples_are_selectable(client, kind):
    examples = _examples(client, kind)
    assert {"seed-1", "seed-2", "seed-3", "expression"} <= set(examples)
    assert all(e["summary"] for e in examples.values())
    nodes = examples["seed-3"]["value"]["graph"]["nodes"]
    assert [n["id"] for n in nodes] == ["x", "y", "x2", "y3", "z"]


@pytest.mark.parametrize("kind", COMPUTE)
def test_every_example_runs_as_it_is(client, kind):
    for name, example in _examples(client, kind).items():
        r = client.post(f"/v1/{kind}", json=example["value"])
        assert r.status_code == 200, (name, r.text)


def test_the_seed_examples_give_the_articles_numbers(client):
    grad, hess = _examples(client, "gradient"), _examples(client, "hessian")
    post = client.post
    assert post("/v1/gradient", json=grad["seed-1"]["value"]).json()["gradients"] == {"x": 6.0}
    assert post("/v1/gradient", json=grad["seed-2"]["value"]).json()["gradients"] == {"x": 27.0}
    assert post("/v1/hessian", json=hess["seed-2"]["value"]).json()["matrix"] == [[18.0]]
    for name in ("seed-3", "expression"):
        out = post("/v1/gradient", json=grad[name]["value"]).json()
        assert out["gradients"] == {"x": 4.0, "y": 27.0}


def test_problem_responses_are_documented_as_problem_json(client):
    responses = client.app.openapi()["paths"]["/v1/gradient"]["post"]["responses"]
    for status in ("400", "413", "415", "422"):
        assert list(responses[status]["content"]) == ["application/problem+json"]


def _assets(html: str) -> list[str]:
    return _ASSET.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_scripts_and_styles_from_the_service(client, page):
    r = client.get(page)
    assert r.status_code == 200
    urls = _assets(r.text)
    assert urls, "the page references no assets"
    assert not re.search(r"https?://", r.text.replace("http://www.w3.org", "")), r.text
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("stripped", [True, False], ids=["proxy-strips", "proxy-keeps"])
def test_root_path_prefixes_docs_assets_and_servers(make_client, stripped):
    client = make_client(root_path="/deriv")
    base = "" if stripped else "/deriv"
    html = client.get(f"{base}/docs").text
    urls = _assets(html)
    assert urls and all(u.startswith("/deriv/") for u in urls), urls
    assert "'/deriv/openapi.json'" in html
    for url in urls:  # as the browser asks the gateway, which forwards (stripped or not)
        assert client.get(url.removeprefix("/deriv") if stripped else url).status_code == 200
    spec = client.get(f"{base}/openapi.json").json()
    assert spec["servers"] == [{"url": "/deriv"}]
    r = client.post(f"{base}/v1/gradient", json=_examples(client, "gradient")["seed-1"]["value"])
    assert r.json()["gradients"] == {"x": 6.0}
    redoc = client.get(f"{base}/redoc").text
    assert all(u.startswith("/deriv/") for u in _assets(redoc))


def test_forwarded_prefix_is_used_only_when_trusted(make_client):
    trusting = make_client(trust_forwarded_prefix=True)
    html = trusting.get("/docs", headers={"x-forwarded-prefix": "/gw/deriv"}).text
    assert all(u.startswith("/gw/deriv/") for u in _assets(html))
    spec = trusting.get("/openapi.json", headers={"x-forwarded-prefix": "/gw/deriv/"}).json()
    assert spec["servers"] == [{"url": "/gw/deriv"}]
    hostile = trusting.get("/docs", headers={"x-forwarded-prefix": '/x"><script>'}).text
    assert "<script>alert" not in hostile and '/x"' not in hostile
    plain = make_client()
    html = plain.get("/docs", headers={"x-forwarded-prefix": "/gw"}).text
    assert all(u.startswith("/docs-assets/") for u in _assets(html))


def test_root_path_env_alias(monkeypatch):
    monkeypatch.setenv("ROOT_PATH", "/svc")
    from app.settings import Settings

    assert Settings().root_path == "/svc"
    assert make_settings().root_path == ""


def test_no_schema_mixes_a_top_level_combinator_with_properties(client):
    """openapi-python-client and ReDoc fail on a `oneOf` next to `properties`: the
    exactly-one rule lives in the description and the validator instead."""
    schemas = client.app.openapi()["components"]["schemas"]
    mixed = [
        n for n, s in schemas.items() if "properties" in s and {"oneOf", "anyOf", "allOf"} & set(s)
    ]
    assert mixed == []
    for name in ("ComputeRequest", "HessianRequest", "DerivativeRequest", "GraphRequest"):
        assert "Send exactly one of `graph`" in schemas[name]["description"], name
        assert "required" not in schemas[name] or "graph" not in schemas[name]["required"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"graph": None},
        {"expression": None},
        {"expression": "x", "graph": {"nodes": [{"id": "x", "op": "variable", "value": 1.0}]}},
    ],
    ids=["neither", "null-graph", "null-expression", "both"],
)
@pytest.mark.parametrize("path", ["/v1/gradient", "/v1/hessian", "/v1/graphs"])
def test_breaking_the_exactly_one_rule_is_a_422_naming_the_body(client, path, body):
    r = client.post(path, json=body)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "body" and "exactly one of" in r.json()["detail"]


def test_redoc_is_served_without_its_cdn_logo(client):
    script = client.get("/docs-assets/redoc.standalone.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "cdn.redoc.ly" not in script.text and "redocly logo" in script.text
    assert "/docs-assets/redoc.standalone.js" in client.get("/redoc").text
