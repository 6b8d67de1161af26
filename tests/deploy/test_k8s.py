"""deploy/k8s: every manifest against the Kubernetes 1.30 schemas (kubernetes-validate,
strict), the KEDA ScaledObject against its models plus its trigger's metadata, and what
the manifests promise: every README setting wired, probes, grace periods, resources
from measured figures, security contexts, network policies."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, ROOT

K8S = DEPLOY / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
VERSION = "1.30"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def rendered() -> list[dict[str, Any]]:
    """The kustomization as `kubectl apply -k` would send it: the listed files, with its
    namespace, common labels and image tag applied."""
    out = []
    tags = {i["name"]: i["newTag"] for i in KUSTOMIZATION.get("images", [])}
    labels = {k: v for entry in KUSTOMIZATION.get("labels", []) for k, v in entry["pairs"].items()}
    for name in KUSTOMIZATION["resources"]:
        for doc in _docs(K8S / name):
            doc = copy.deepcopy(doc)
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = KUSTOMIZATION["namespace"]
            doc["metadata"].setdefault("labels", {}).update(labels)
            for container in _containers(doc):
                if container["image"] in tags:
                    container["image"] = f"{container['image']}:{tags[container['image']]}"
            out.append(doc)
    return out


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = _pod(doc)
    return list(spec["containers"]) if spec else []


def _pod(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "Job"):
        pod: dict[str, Any] = doc["spec"]["template"]["spec"]
        return pod
    return None


def _by(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in rendered() if d["kind"] == kind and d["metadata"]["name"] == name)


def test_the_kustomization_lists_every_manifest():
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(KUSTOMIZATION["resources"]) == files


@pytest.mark.parametrize("name", KUSTOMIZATION["resources"])
def test_each_manifest_is_valid_for_kubernetes_1_30(name: str):
    for doc in _docs(K8S / name):
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked below
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_rendered_kustomization_is_valid_too():
    docs = rendered()
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        "privasync"}
    for doc in docs:
        if not doc["apiVersion"].startswith("keda.sh/"):
            kubernetes_validate.validate(doc, VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_probe_field():
    doc = copy.deepcopy(_docs(K8S / "api.yaml")[0])
    doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSecondz"] = 10
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSION, strict=True)


# -- KEDA ---------------------------------------------------------------------------------
PROMETHEUS_TRIGGER_KEYS = {"serverAddress", "query", "threshold", "activationThreshold",
                           "namespace", "customHeaders", "ignoreNullValues", "unsafeSsl",
                           "queryParameters", "authModes"}


def test_the_scaled_object_matches_kedas_models():
    from cloudcoil.models.keda import v1alpha1

    doc = _docs(K8S / "keda-scaledobject.yaml")[0]
    v1alpha1.ScaledObject.model_validate(doc)
    broken = copy.deepcopy(doc)
    broken["spec"]["maxReplicaCount"] = "ten"
    with pytest.raises(ValueError, match="maxReplicaCount"):
        v1alpha1.ScaledObject.model_validate(broken)


def test_workers_scale_on_the_outbox_backlog_through_prometheus():
    spec = _by("ScaledObject", "privasync-worker")["spec"]
    assert spec["scaleTargetRef"]["name"] == _by("Deployment", "privasync-worker")[
        "metadata"]["name"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    meta = trigger["metadata"]
    assert {"serverAddress", "query", "threshold"} <= set(meta) <= PROMETHEUS_TRIGGER_KEYS
    assert all(isinstance(v, str) for v in meta.values()), "KEDA takes metadata as strings"
    assert float(meta["threshold"]) > 0 and float(meta["activationThreshold"]) >= 0
    assert meta["serverAddress"].startswith("http")
    # Every process exports the same database-wide figure: one per destination, summed.
    assert meta["query"] == "sum(max by (destination) (privasync_jobs_pending))"


# -- settings -----------------------------------------------------------------------------
def readme_settings() -> set[str]:
    """Every variable README's settings table names (`A` / `__B` expands to A's prefix).
    Templated rows (`PRIVASYNC_RETRY__<DEST>__...`, per-destination overrides) are
    optional and not listed."""
    section = (ROOT / "README.md").read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `PRIVASYNC_"):
            continue
        first = line.split("|")[1]
        if "<" in first:
            continue
        for token in re.findall(r"`([A-Z_0-9]+)`", first):
            if token.startswith("PRIVASYNC_"):
                names.add(token)
                prefix = token.rsplit("__", 1)[0] if "__" in token else token
            else:
                names.add(prefix + token)
    return names


def partner_settings() -> set[str]:
    partners = yaml.safe_load((ROOT / "mappings" / "partners.yaml").read_text())["partners"]
    return {p[k] for p in partners.values() for k in ("secret_setting", "url_setting",
                                                      "certificate_setting") if p.get(k)}


SECRET = re.compile(r"(SECRET(?!S_DIR)|TOKEN|PASSWORD|API_KEY|SESSION_ID|DATABASE_URL|KEK)")


def test_every_readme_setting_is_in_the_configmap_or_the_secret_and_nothing_else_is():
    config = _by("ConfigMap", "privasync-config")["data"]
    secret = _by("Secret", "privasync-secrets")["stringData"]
    table = readme_settings()
    assert len(table) > 50
    wired = set(config) | set(secret)
    assert table - wired == set(), "README settings missing from deploy/k8s"
    assert wired - table - partner_settings() == set(), "unknown settings in deploy/k8s"
    assert not set(config) & set(secret)
    assert {k for k in config if SECRET.search(k)} == set(), "a secret in the ConfigMap"
    assert {k for k in secret if not SECRET.search(k)} == set()


def test_the_configmap_and_secret_values_are_settings_privasync_accepts(monkeypatch):
    from privasync.app.settings import Settings

    config = _by("ConfigMap", "privasync-config")["data"]
    secret = _by("Secret", "privasync-secrets")["stringData"]
    for key, value in {**config, **secret}.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.broker_url.startswith("redis://") and not settings.migrate_on_start
    assert settings.hubspot.access_token is None  # empty means unset
    assert settings.smtp.ca_file is None


# -- pods ---------------------------------------------------------------------------------
def _container(name: str) -> dict[str, Any]:
    return _containers(_by("Deployment", f"privasync-{name}"))[0]


def test_api_probes_are_healthz_and_readyz():
    api = _container("api")
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"


@pytest.mark.parametrize("component", ["worker", "scheduler"])
def test_worker_and_scheduler_liveness_is_privasync_health(component: str):
    probe = _container(component)["livenessProbe"]
    assert probe["exec"]["command"] == ["privasync", "health", "--component", component]
    assert probe["timeoutSeconds"] >= 5


def test_the_worker_grace_period_outlasts_its_shutdown_wait():
    config = _by("ConfigMap", "privasync-config")["data"]
    grace = _by("Deployment", "privasync-worker")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"]
    assert grace >= float(config["PRIVASYNC_WORKER__SHUTDOWN_SECONDS"]) + 10


def test_two_schedulers_two_apis_and_one_migration_job_running_db_upgrade():
    assert _by("Deployment", "privasync-scheduler")["spec"]["replicas"] == 2
    assert _by("Deployment", "privasync-api")["spec"]["replicas"] == 2
    job = _by("Job", "privasync-migrate")
    assert _containers(job)[0]["args"] == ["db", "upgrade"]
    assert _by("ConfigMap", "privasync-config")["data"]["PRIVASYNC_MIGRATE_ON_START"] == "false"


def _mib(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return float(number) * (1024 if unit == "Gi" else 1)


def measured_peak_mb() -> float:
    """The highest per-process peak memory BENCHMARKS.md reports."""
    text = (ROOT / "BENCHMARKS.md").read_text()
    lines = [ln for ln in text.splitlines() if "peak memory, MB" in ln]
    return max(float(n) for ln in lines for n in re.findall(r"\b(\d{2,4})\b", ln))


def test_every_pod_is_non_root_read_only_and_sized_from_the_measured_peak():
    peak = measured_peak_mb()
    assert 150 < peak < 1000
    pods = [d for d in rendered() if _pod(d)]
    assert len(pods) == 4
    for doc in pods:
        pod = _pod(doc)
        assert pod is not None
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        tmp = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp for m in c["volumeMounts"])
            requests, limits = c["resources"]["requests"], c["resources"]["limits"]
            assert _mib(requests["memory"]) * 1.048 >= peak, doc["metadata"]["name"]
            assert _mib(limits["memory"]) >= 2 * _mib(requests["memory"])
            assert {e["configMapRef"]["name"] for e in c["envFrom"] if "configMapRef" in e} \
                == {"privasync-config"}


def test_disruption_budgets_and_services_select_real_pods():
    labels = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
              for d in rendered() if d["kind"] == "Deployment"}
    def selects(selector: dict[str, str]) -> list[str]:
        return [n for n, lab in labels.items() if selector.items() <= lab.items()]
    for doc in rendered():
        if doc["kind"] == "PodDisruptionBudget":
            assert len(selects(doc["spec"]["selector"]["matchLabels"])) == 1
        if doc["kind"] == "Service":
            assert len(selects(doc["spec"]["selector"])) == 1


def test_only_the_api_takes_traffic():
    policies = [d for d in rendered() if d["kind"] == "NetworkPolicy"]
    assert all(p["spec"]["policyTypes"] == ["Ingress"] for p in policies)  # egress stays open
    def rules_for(component: str) -> list[Any]:
        found = [p for p in policies if component in _selected(p)]
        assert found, f"no policy covers {component}"
        return [rule for p in found for rule in p["spec"].get("ingress", [])]
    assert [p["port"] for r in rules_for("api") for p in r["ports"]] == [8000]
    assert rules_for("scheduler") == [] and rules_for("migrate") == []
    (metrics,) = rules_for("worker")  # Prometheus only, on the metrics port
    assert [p["port"] for p in metrics["ports"]] == [9100] and metrics["from"]


def _selected(policy: dict[str, Any]) -> set[str]:
    selector = policy["spec"]["podSelector"]
    found = {selector.get("matchLabels", {}).get("app.kubernetes.io/component")}
    for expr in selector.get("matchExpressions", []):
        found |= set(expr["values"])
    return {c for c in found if c}
