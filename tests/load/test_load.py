"""A bounded load test: two replicas behind the nginx gateway, a realistic mix, ~20,000 requests.

It asserts what must hold under load: no 5xx (every good request a 200), every bad
request its own 4xx problem, the replicas' own metrics agreeing with what was sent,
and each replica's resident memory not growing more than 10% from the end of the
first window of requests to the end of the run. Throughput and latency are printed,
not asserted: they depend on the machine.

Bounded by count (``LOAD_REQUESTS``) and by time (``LOAD_SECONDS``), loopback only.
Run it alone (``pytest -n 0 -m load tests/load``): beside other tests on the same
cores, the numbers it prints would measure them too.
"""

from __future__ import annotations

import os
import re
from collections import Counter

import httpx
import pytest

from tests.gateway.stack import Stack, nginx_binary
from tests.load.alone import run_alone
from tests.load.loadgen import Load, mix, summary

NGINX = nginx_binary()
TOTAL = int(os.environ.get("LOAD_REQUESTS", "20000"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
WINDOW = 10_000
MAX_RSS_GROWTH = 0.10
WARMUP = 400

pytestmark = [
    *run_alone(240),
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
]

_SAMPLE = re.compile(r'^deriv_http_requests_total\{endpoint="([^"]*)",method="([^"]*)",'
                     r'status="(\d+)"\} (\S+)$', re.MULTILINE)  # fmt: skip


def rss_kib(pid: int) -> int:
    """Resident memory of one process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def counted(addr: str) -> Counter[tuple[str, str]]:
    """A replica's request counter by (endpoint, status), from its own /metrics."""
    text = httpx.get(f"http://{addr}/metrics", timeout=10).text
    out: Counter[tuple[str, str]] = Counter()
    for endpoint, _method, status, value in _SAMPLE.findall(text):
        if endpoint != "/metrics":
            out[endpoint, status] += int(float(value))
    return out


def test_mixed_load_through_the_gateway():
    stack = Stack()
    samples: list[tuple[int, dict[str, int]]] = []
    try:
        stack.start(NGINX)
        pids = {name: stack.procs[name].pid for name in ("a", "b")}
        kinds = mix("/derive")
        warm = Load(stack.base, kinds, total=WARMUP, seconds=30, seed=1).run()
        assert all(o.status for o in warm.outcomes), Counter(o.error for o in warm.outcomes)
        before = {name: counted(stack.replicas[name]) for name in pids}

        def sample(done: int) -> None:
            samples.append((done, {name: rss_kib(pid) for name, pid in pids.items()}))

        sample(0)
        load = Load(stack.base, kinds, total=TOTAL, seconds=SECONDS, on_progress=sample)
        load.run()
        sample(len(load.outcomes))
        after = {name: counted(stack.replicas[name]) for name in pids}
    finally:
        stack.close()

    done = len(load.outcomes)
    window = min(WINDOW, done // 2)
    first = next(s for n, s in samples if n >= window)
    last = samples[-1][1]
    growth = {name: (last[name] - first[name]) / first[name] for name in last}
    report = [summary(load), "", f"RSS (KiB) after {window} and after {done} requests:"]
    for name in sorted(last):
        report.append(
            f"  replica {name}: {samples[0][1][name]} at start, {first[name]} -> {last[name]} "
            f"({growth[name]:+.1%})"
        )
    print("\n" + "\n".join(report))  # noqa: T201

    expected = {k.name: k for k in kinds}
    unanswered = [o for o in load.outcomes if o.status == 0]
    assert not unanswered, Counter(o.error for o in unanswered)
    server_errors = [o for o in load.outcomes if o.status >= 500]
    assert not server_errors, Counter((o.kind, o.status) for o in server_errors)
    wrong = [o for o in load.outcomes if o.status != expected[o.kind].expect]
    assert not wrong, Counter((o.kind, o.status) for o in wrong)
    bad = [o for o in load.outcomes if expected[o.kind].bad]
    assert bad and all(o.problem for o in bad), "a bad request's answer is not a problem"
    assert sum(not expected[o.kind].bad for o in load.outcomes) > done * 0.8

    # The replicas counted exactly what was sent, and the gateway used both.
    served = {name: after[name] - before[name] for name in after}
    assert sum(sum(c.values()) for c in served.values()) == done
    assert all(sum(c.values()) > done * 0.3 for c in served.values()), served
    ok = sum(c[endpoint, "200"] for c in served.values() for endpoint in
             ("/v1/gradient", "/v1/hessian", "/v1/evaluate", "/v1/jacobian"))  # fmt: skip
    assert ok == sum(o.status == 200 for o in load.outcomes)

    assert done >= min(TOTAL, 2_000), f"only {done} requests in {SECONDS} s"
    for name, change in growth.items():
        assert change <= MAX_RSS_GROWTH, f"replica {name} RSS grew {change:.1%}: {report}"
