"""deploy/kubernetes/: every manifest passes the Kubernetes OpenAPI schema, strictly, and the
pieces agree with each other and with Junction (probe paths, Secret keys, names, ports).

No cluster here: the schemas come from ``kubernetes-validate`` (the dev extra), offline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from junction.health import HEALTH_PATHS

MANIFESTS = Path(__file__).parents[2] / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"


def _validator() -> Any:
    try:
        import kubernetes_validate
    except ImportError:  # pragma: no cover - the dev extra installs it
        pytest.fail("kubernetes-validate is missing: pip install -e '.[dev]'")
    return kubernetes_validate


def _resources() -> Iterator[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((MANIFESTS / name).read_text()):
            if document:
                yield name, document


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _resources() if doc["kind"] == kind]


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_every_manifest_passes_the_strict_schema() -> None:
    validator = _validator()
    kinds = []
    for name, document in _resources():
        try:
            validator.validate(document, KUBERNETES_VERSION, strict=True)
        except validator.ValidationError as exc:
            pytest.fail(f"{name}: {document['kind']} {document['metadata']['name']}: {exc}")
        kinds.append(document["kind"])
    assert sorted(set(kinds)) == [
        "Deployment",
        "Ingress",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "Service",
        "StatefulSet",
    ]


def test_the_validator_refuses_a_misspelt_field() -> None:
    validator = _validator()
    deployment = _by_kind("Deployment")[0]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}
    with pytest.raises(validator.ValidationError):
        validator.validate(broken, KUBERNETES_VERSION, strict=True)


def _junction_container() -> dict[str, Any]:
    (deployment,) = _by_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def test_probes_use_the_health_routes() -> None:
    container = _junction_container()
    live, ready = (f"/{path}" for path in HEALTH_PATHS)
    assert container["livenessProbe"]["httpGet"]["path"] == live
    assert container["readinessProbe"]["httpGet"]["path"] == ready
    assert container["startupProbe"]["httpGet"]["path"] == ready


def test_replicas_share_secrets_database_and_a_read_write_many_root() -> None:
    (deployment,) = _by_kind("Deployment")
    assert deployment["spec"]["replicas"] >= 2
    container = _junction_container()
    env = {item["name"]: item for item in container["env"]}
    for name, key in [
        ("JUNCTION_TOKEN", "token"),
        ("JUNCTION_COOKIE_SECRET", "cookie-secret"),
        ("JUNCTION_DATABASE_URL", "database-url"),
    ]:
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "junction", "key": key}
    # Only JUNCTION_ variables may hold secrets: children (kernels, terminals) never get those.
    for name, item in env.items():
        assert "secretKeyRef" not in item.get("valueFrom", {}) or name.startswith("JUNCTION_")
    (claim,) = _by_kind("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "root", "persistentVolumeClaim": {"claimName": "junction-root"}}]
    root_dir = next(a for a in container["args"] if a.startswith("--root-dir="))
    assert container["volumeMounts"][0]["mountPath"] == root_dir.split("=", 1)[1]


def test_ingress_routes_to_the_service_with_websocket_timeouts() -> None:
    services = {svc["metadata"]["name"]: svc for svc in _by_kind("Service")}
    pod_labels = _by_kind("Deployment")[0]["spec"]["template"]["metadata"]["labels"]
    assert services["junction"]["spec"]["selector"].items() <= pod_labels.items()
    ingresses = _by_kind("Ingress")
    for ingress in ingresses:
        annotations = ingress["metadata"]["annotations"]
        assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == "junction"
                assert backend["port"]["name"] == "http"
    paths = {
        path["path"]: ingress["metadata"]["name"]
        for ingress in ingresses
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert paths["/terminals"] == paths["/api/terminals"] == "junction-by-client"
    assert paths["/api/collaboration"] == "junction-owner"
    assert paths["/"] == "junction"
