"""``Location`` of a registered graph: a path from the configured prefix, never the Host.

It was ``request.url_for(...)``, an absolute URL on whatever host the client named, so
``Host: evil.example`` got a link to evil.example handed back by the service.
"""

from __future__ import annotations

import pytest

from tests.api.support import SEED_3

EVIL = "evil.example"


def register(client, **headers: str) -> tuple[str, str]:
    r = client.post("/v1/graphs", json=SEED_3, headers=headers)
    assert r.status_code in (200, 201), r.text
    return r.json()["graph_id"], r.headers["location"]


@pytest.mark.parametrize("host", [EVIL, f"{EVIL}:8443", "127.0.0.1"])
def test_the_host_header_never_appears_in_location(make_client, host):
    gid, location = register(make_client(), host=host)
    assert location == f"/v1/graphs/{gid}"
    assert host not in location


def test_a_configured_root_path_prefixes_location(make_client):
    client = make_client(root_path="/derive/")
    gid, location = register(client, host=EVIL, **{"x-forwarded-host": EVIL})
    assert location == f"/derive/v1/graphs/{gid}"
    assert client.get(location).json()["graph_id"] == gid  # the prefix is routable


def test_a_trusted_forwarded_prefix_is_used_and_an_untrusted_one_ignored(make_client):
    trusted = make_client(trust_forwarded_prefix=True)
    gid, location = register(trusted, host=EVIL, **{"x-forwarded-prefix": "/gw"})
    assert location == f"/gw/v1/graphs/{gid}"
    _, location = register(make_client(), host=EVIL, **{"x-forwarded-prefix": "/gw"})
    assert location == f"/v1/graphs/{gid}"
    # a prefix that is not a plain path falls back to the configured one
    _, location = register(trusted, host=EVIL, **{"x-forwarded-prefix": "//evil.example"})
    assert location == f"/v1/graphs/{gid}"
    _, location = register(trusted, **{"x-forwarded-prefix": "https://evil.example/x"})
    assert location == f"/v1/graphs/{gid}"


def test_location_resolves_to_the_graph(make_client):
    client = make_client()
    gid, location = register(client, host=EVIL)
    assert client.get(location).json()["graph_id"] == gid
