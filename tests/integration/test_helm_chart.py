"""The Helm chart rendered by Helm's own engine (helm-python-sdk, no cluster): every Kubernetes object
validates against the Kubernetes schemas, the Deployment's settings are ones Tribunal reads, and the
webhook registration is what docs/operations.md recommends."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from tests.conftest import PROJECT
from tests.kube_api import K8S_VERSION
from tribunal.settings import Settings

CHART = PROJECT / "helm" / "tribunal"
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}  # CRDs: not in the Kubernetes schemas


def render(values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values or {}, name="tribunal", namespace="tribunal-system", is_install=True)
    objects = {}
    for text in manifests.values():
        for doc in yaml.safe_load_all(text):
            if doc:
                objects[doc["kind"]] = doc
    return objects


def test_lint_finds_no_error() -> None:
    report = helm.lint(str(CHART), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 3] == []


def test_every_object_validates_against_the_kubernetes_schemas() -> None:
    objects = render()
    assert set(objects) == {
        "Deployment",
        "Service",
        "ServiceAccount",
        "ValidatingWebhookConfiguration",
        "ClusterRole",
        "ClusterRoleBinding",
        "PodDisruptionBudget",
        *CERT_MANAGER_KINDS,
    }
    for kind, obj in objects.items():
        if kind not in CERT_MANAGER_KINDS:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    certificate = objects["Certificate"]["spec"]
    assert certificate["secretName"] == "tribunal-tls"
    assert "tribunal.tribunal-system.svc" in certificate["dnsNames"]


def test_the_deployment_sets_settings_tribunal_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "settings": {
            "failurePolicy": "ignore",
            "kafkaBootstrapServers": "kafka:9092",
            "exemptUsers": ["ci", "ops"],
            "judgeWorkers": 3,
        }
    }
    container = render(values)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert all(name.startswith("TRIBUNAL_") for name in env)
    for name, value in env.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRIBUNAL_NAMESPACE", "tribunal-system")  # from the downward API in the pod
    settings = Settings()
    known = {f"TRIBUNAL_{field.upper()}" for field in Settings.model_fields}
    assert {n for n in env if "__" not in n} <= known, "a variable Tribunal does not read"
    assert settings.failure_policy == "ignore"
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.exempt_users == ["ci", "ops"] and settings.exempt_namespaces == ["kube-system"]
    assert str(settings.actions.state_dir) == "/var/lib/tribunal/state"
    assert settings.judge_workers == 3
    assert container["args"] == ["serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    default = render({})["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "TRIBUNAL_JUDGE_WORKERS", "value": "1"} in default["env"]  # the CPU limit (2) minus one
    assert settings.shutdown_delay_seconds == 10


def test_a_rollout_never_leaves_the_webhook_without_an_endpoint() -> None:
    deployment = render({})["Deployment"]
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    delay = float(env["TRIBUNAL_SHUTDOWN_DELAY_SECONDS"])
    # The delay, then in-flight requests (10 s), actions (10 s) and queued verdicts (20 s) fit the grace.
    assert delay > 0 and pod["terminationGracePeriodSeconds"] >= delay + 10 + 10 + 20


def test_the_webhook_registration() -> None:
    webhook = render({"webhook": {"failurePolicy": "Ignore"}})["ValidatingWebhookConfiguration"]
    [hook] = webhook["webhooks"]
    assert hook["clientConfig"]["service"] == {
        "name": "tribunal",
        "namespace": "tribunal-system",
        "path": "/validate",
        "port": 443,
    }
    assert hook["sideEffects"] == "NoneOnDryRun" and hook["failurePolicy"] == "Ignore"
    assert hook["timeoutSeconds"] == 5
    excluded = hook["namespaceSelector"]["matchExpressions"][0]["values"]
    assert set(excluded) == {"kube-system", "tribunal-system"}
    # The CA's certificate is injected, not the serving one: renewals leave the caBundle as it is.
    assert (
        webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "tribunal-system/tribunal-ca"
    )
    assert "caBundle" not in hook["clientConfig"]


def render_all(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values or {}, name="tribunal", namespace="tribunal-system", is_install=True)
    return [doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc]


def test_cert_manager_issues_the_serving_certificate_from_a_ca_of_the_release() -> None:
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in render_all()}
    assert by_name[("Issuer", "tribunal-selfsigned")]["spec"] == {"selfSigned": {}}
    ca = by_name[("Certificate", "tribunal-ca")]["spec"]
    assert ca["isCA"] is True and ca["issuerRef"] == {"name": "tribunal-selfsigned", "kind": "Issuer"}
    assert by_name[("Issuer", "tribunal-ca")]["spec"] == {"ca": {"secretName": ca["secretName"]}}
    leaf = by_name[("Certificate", "tribunal-tls")]["spec"]
    assert leaf["issuerRef"] == {"name": "tribunal-ca", "kind": "Issuer"}
    assert "isCA" not in leaf and leaf["secretName"] == "tribunal-tls"
    # The CA outlives many serving certificates.
    hours = {name: int(spec["duration"].rstrip("h")) for name, spec in (("ca", ca), ("leaf", leaf))}
    assert hours["ca"] >= 10 * hours["leaf"]


def test_a_webhook_without_cert_manager_needs_its_ca_bundle() -> None:
    with pytest.raises(Exception, match=r"tls\.caBundle is required"):
        render_all({"tls": {"certManager": {"enabled": False}}})
    with pytest.raises(Exception, match=r"tls\.caBundle is required"):
        render_all({"tls": {"existingSecret": "my-tls"}})  # cert-manager on, but not managing this secret
    [webhook] = [o for o in render_all({"tls": {"existingSecret": "my-tls", "caBundle": "Q0E="}})
                 if o["kind"] == "ValidatingWebhookConfiguration"]  # fmt: skip
    assert "annotations" not in webhook["metadata"]  # no injector fighting the given bundle
    assert webhook["webhooks"][0]["clientConfig"]["caBundle"] == "Q0E="


def test_an_existing_secret_replaces_cert_manager() -> None:
    objects = render(
        {"tls": {"certManager": {"enabled": False}, "existingSecret": "my-tls", "caBundle": "Q0E="}}
    )
    assert not CERT_MANAGER_KINDS & set(objects)
    volumes = objects["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": "my-tls"}} in volumes
    [hook] = objects["ValidatingWebhookConfiguration"]["webhooks"]
    assert hook["clientConfig"]["caBundle"] == "Q0E="
    kubernetes_validate.validate(objects["ValidatingWebhookConfiguration"], K8S_VERSION, strict=True)


def test_an_opa_sidecar_judges_for_its_pod_alone() -> None:
    deployment = render({"opa": {"sidecar": True}})["Deployment"]
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    pod = deployment["spec"]["template"]["spec"]
    [opa] = pod["initContainers"]
    assert opa["restartPolicy"] == "Always"  # a native sidecar: running before Tribunal starts
    assert "--addr=localhost:8181" in opa["args"]  # its API never leaves the pod
    assert opa["startupProbe"]["httpGet"]["port"] == "opa-health"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["TRIBUNAL_ENGINE"] == "opa" and env["TRIBUNAL_OPA_URL"] == "http://localhost:8181"
    plain = render({})["Deployment"]["spec"]["template"]["spec"]
    assert "initContainers" not in plain
    assert "TRIBUNAL_OPA_URL" not in {e["name"] for e in plain["containers"][0]["env"]}


def test_watching_trivy_operator_reports_grants_list_and_watch_on_them_only() -> None:
    objects = render({"settings": {"trivyOperatorWatch": ["vulnerabilityreports", "configauditreports"]}})
    kubernetes_validate.validate(objects["ClusterRole"], K8S_VERSION, strict=True)
    [rule] = [r for r in objects["ClusterRole"]["rules"] if r["apiGroups"] == ["aquasecurity.github.io"]]
    assert rule == {
        "apiGroups": ["aquasecurity.github.io"],
        "resources": ["vulnerabilityreports", "configauditreports"],
        "verbs": ["get", "list", "watch"],
    }
    env = {
        e["name"]: e.get("value")
        for e in objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["TRIBUNAL_TRIVY_OPERATOR_WATCH"] == "vulnerabilityreports,configauditreports"
    plain = render({})
    assert all(r["apiGroups"] != ["aquasecurity.github.io"] for r in plain["ClusterRole"]["rules"])
