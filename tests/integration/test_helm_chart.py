"""The Helm chart rendered by Helm's own engine (helm-python-sdk, no cluster): every Kubernetes object
validates against the Kubernetes schemas, the Deployment's settings are ones Tribunal reads, the
webhook registration is what docs/operations.md recommends, and the RBAC follows the `actions` and
`rbac` values while the Deployment tells Tribunal the same (tests/e2e/test_actions_rbac.py asks a real
authorizer)."""

from __future__ import annotations

import os
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


# The values matrix of the cluster actions' RBAC (values.yaml `actions` and `rbac`).
CLUSTER_ACTIONS = ["annotate", "label", "event", "quarantine", "terminate"]
ALL_ON = {"actions": {**dict.fromkeys(CLUSTER_ACTIONS, True), "owners": True}}
ALL_OFF = {"actions": {**dict.fromkeys(CLUSTER_ACTIONS, False), "owners": False}}
SCOPED = {"rbac": {"scope": "namespaces", "namespaces": ["shop", "payments"]}}
MATRIX = [
    pytest.param({}, id="default"),
    pytest.param(ALL_OFF, id="all-off"),
    pytest.param(ALL_ON, id="all-on"),
    pytest.param(SCOPED, id="scope-namespaces"),
    pytest.param({"settings": {"trivyOperatorWatch": ["vulnerabilityreports"]}}, id="trivy-watch"),
    pytest.param({"policyReports": {"api": "both"}}, id="policy-reports-both"),
]


@pytest.mark.parametrize("values", MATRIX)
def test_every_object_validates_against_the_kubernetes_schemas(values: dict[str, Any]) -> None:
    everything = render_all(values)
    kinds = {o["kind"] for o in everything}
    assert kinds - {"ClusterRole", "ClusterRoleBinding", "RoleBinding"} == {
        "Deployment",
        "Service",
        "ServiceAccount",
        "ValidatingWebhookConfiguration",
        "PodDisruptionBudget",
        *CERT_MANAGER_KINDS,
    }
    for obj in everything:
        if obj["kind"] not in CERT_MANAGER_KINDS:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in everything]
    assert len(names) == len(set(names))  # no object rendered twice
    objects = render(values)
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
    # the cluster actions the chart grants by default, no owners, every namespace
    assert settings.actions.cluster_actions == ["annotate", "label", "event", "quarantine"]
    assert settings.actions.owners is False and settings.actions.namespaces == []


def deployment_settings(values: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as Tribunal reads them in the chart's pod: from the Deployment's literal variables."""
    container = render(values)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    for name in [n for n in os.environ if n.startswith("TRIBUNAL_")]:
        monkeypatch.delenv(name)
    for e in container["env"]:
        if "value" in e:
            monkeypatch.setenv(e["name"], e["value"])
    return Settings()


@pytest.mark.parametrize(
    ("values", "cluster_actions", "owners", "namespaces"),
    [
        pytest.param({}, ["annotate", "label", "event", "quarantine"], False, [], id="default"),
        pytest.param(ALL_OFF, [], False, [], id="all-off"),
        pytest.param(ALL_ON, CLUSTER_ACTIONS, True, [], id="all-on"),
        pytest.param(
            {"actions": {"event": False, "terminate": True}},
            ["annotate", "label", "quarantine", "terminate"],
            False,
            [],
            id="terminate-no-event",
        ),
        pytest.param(
            SCOPED, ["annotate", "label", "event", "quarantine"], False, ["shop", "payments"], id="scope"
        ),
    ],
)
def test_the_deployment_tells_tribunal_what_the_rbac_grants(
    monkeypatch: pytest.MonkeyPatch,
    values: dict[str, Any],
    cluster_actions: list[str],
    owners: bool,
    namespaces: list[str],
) -> None:
    """TRIBUNAL_ACTIONS__CLUSTER_ACTIONS, __OWNERS and __NAMESPACES as Settings parses them: Tribunal
    skips, with the reason, what the chart does not grant."""
    actions = deployment_settings(values, monkeypatch).actions
    assert (actions.cluster_actions, actions.owners, actions.namespaces) == (
        cluster_actions,
        owners,
        namespaces,
    )


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


def by_name(values: dict[str, Any] | None = None) -> dict[tuple[str, str | None, str], dict[str, Any]]:
    """Every rendered object by (kind, namespace, name)."""
    return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in render_all(values)}


def test_watching_trivy_operator_reports_grants_list_and_watch_on_them_only() -> None:
    objects = by_name({"settings": {"trivyOperatorWatch": ["vulnerabilityreports", "configauditreports"]}})
    role = objects[("ClusterRole", None, "tribunal-trivy-operator-watch")]
    assert role["rules"] == [
        {
            "apiGroups": ["aquasecurity.github.io"],
            "resources": ["vulnerabilityreports", "configauditreports"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    binding = objects[("ClusterRoleBinding", None, "tribunal-trivy-operator-watch")]
    assert binding["roleRef"]["name"] == "tribunal-trivy-operator-watch"
    assert binding["subjects"] == [SUBJECT]
    pod = objects[("Deployment", "tribunal-system", "tribunal")]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["TRIBUNAL_TRIVY_OPERATOR_WATCH"] == "vulnerabilityreports,configauditreports"
    plain = render_all({})
    assert not [o for o in plain if "trivy" in o["metadata"]["name"]]
    for role in (o for o in plain if o["kind"] == "ClusterRole"):
        assert all(r.get("apiGroups") != ["aquasecurity.github.io"] for r in role["rules"])


# -- the cluster actions' RBAC: exactly what the enabled actions need ---------------------------------

SUBJECT = {"kind": "ServiceAccount", "name": "tribunal", "namespace": "tribunal-system"}
POD_METADATA = {("", "pods", "get"), ("", "pods", "patch")}
NEEDS = {  # what each action calls (tribunal/actions/kube.py), as (group, resource, verb)
    "annotate": POD_METADATA,
    "label": POD_METADATA,
    "event": {("events.k8s.io", "events", "create")},
    "quarantine": POD_METADATA
    | {("networking.k8s.io", "networkpolicies", "get"), ("networking.k8s.io", "networkpolicies", "create")},
    "terminate": {("", "pods", "get"), ("", "pods", "delete"), ("", "pods/eviction", "create")},
}
OWNER_NEEDS = {
    (group, resource, verb)
    for group, resources in (
        ("apps", ("replicasets", "deployments", "statefulsets", "daemonsets")),
        ("batch", ("jobs", "cronjobs")),
    )
    for resource in resources
    for verb in ("get", "patch")
}


def flatten(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def only(*enabled: str, owners: bool = False) -> dict[str, Any]:
    return {"actions": {**{a: a in enabled for a in CLUSTER_ACTIONS}, "owners": owners}}


@pytest.mark.parametrize(
    ("values", "granted"),
    [
        pytest.param({}, NEEDS["annotate"] | NEEDS["event"] | NEEDS["quarantine"], id="default"),
        pytest.param(ALL_ON, set().union(*NEEDS.values()) | OWNER_NEEDS, id="all-on"),
        pytest.param(ALL_OFF, set(), id="all-off"),
        *[pytest.param(only(action), NEEDS[action], id=f"{action}-only") for action in CLUSTER_ACTIONS],
        pytest.param(only("label", owners=True), NEEDS["label"] | OWNER_NEEDS, id="label-owners"),
        pytest.param(
            only("event", "terminate", owners=True), NEEDS["event"] | NEEDS["terminate"], id="owners-unused"
        ),
    ],
)
def test_the_actions_role_grants_exactly_what_the_enabled_actions_need(
    values: dict[str, Any], granted: set[tuple[str, str, str]]
) -> None:
    """Per action alone and together: the rules of the actions' ClusterRole are exactly the enabled
    actions' needs (owners' get/patch on workloads only with annotate or label), with no wildcard,
    and no role or binding when nothing is enabled."""
    objects = by_name(values)
    role = objects.get(("ClusterRole", None, "tribunal-actions"))
    binding = objects.get(("ClusterRoleBinding", None, "tribunal-actions"))
    if not granted:
        assert role is None and binding is None
        return
    assert role is not None and binding is not None
    assert flatten(role["rules"]) == granted
    assert "*" not in {
        x for rule in role["rules"] for key in ("apiGroups", "resources", "verbs") for x in rule[key]
    }
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "tribunal-actions",
    }
    assert binding["subjects"] == [SUBJECT]
    assert not [o for o in objects.values() if o["kind"] in ("Role", "RoleBinding")]


def test_scope_namespaces_binds_the_actions_role_in_each_namespace_only() -> None:
    objects = by_name(SCOPED)
    assert ("ClusterRoleBinding", None, "tribunal-actions") not in objects
    role = objects[
        ("ClusterRole", None, "tribunal-actions")
    ]  # bound per namespace: a RoleBinding grants it there
    assert flatten(role["rules"]) == NEEDS["annotate"] | NEEDS["event"] | NEEDS["quarantine"]
    bindings = {key[1]: o for key, o in objects.items() if key[0] == "RoleBinding"}
    assert set(bindings) == {"shop", "payments"}
    for binding in bindings.values():
        assert binding["metadata"]["name"] == "tribunal-actions"
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "tribunal-actions",
        }
        assert binding["subjects"] == [SUBJECT]
    # the server's token reviews stay cluster-wide
    assert objects[("ClusterRoleBinding", None, "tribunal-auth-delegator")]["subjects"] == [SUBJECT]


@pytest.mark.parametrize(
    ("rbac", "message"),
    [
        ({"scope": "namespaces"}, r"rbac\.scope=namespaces needs rbac\.namespaces"),
        ({"scope": "namespace", "namespaces": ["shop"]}, r"rbac\.scope is \"namespace\""),
    ],
)
def test_a_scope_that_would_not_match_tribunals_settings_is_refused(
    rbac: dict[str, Any], message: str
) -> None:
    """No namespaces would grant nothing while Tribunal, given none, acts everywhere; a misspelt scope
    would silently grant cluster-wide."""
    with pytest.raises(Exception, match=message):
        render_all({"rbac": rbac})


def test_without_rbac_create_nothing_is_granted_but_tribunal_still_knows_what_is_enabled() -> None:
    objects = render_all({"rbac": {"create": False}, "actions": {"terminate": True}})
    assert not [
        o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    ]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TRIBUNAL_ACTIONS__CLUSTER_ACTIONS"] == "annotate,label,event,quarantine,terminate"


def test_the_webhook_sends_services_service_accounts_and_rbac_but_not_bootstrap_rbac() -> None:
    """The service, service_account_token and rbac_* policies see their objects; the API server's own
    system:* roles and bindings never wait on Tribunal; webhook.judgeClusterObjects=false leaves the
    workloads alone."""
    [hook] = render({})["ValidatingWebhookConfiguration"]["webhooks"]
    resources = {(g, r) for rule in hook["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    rbac = "rbac.authorization.k8s.io"
    assert {("", "services"), ("", "serviceaccounts")} <= resources
    assert {(rbac, r) for r in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")} <= resources
    assert {("", "pods"), ("apps", "deployments"), ("batch", "cronjobs")} <= resources
    [condition] = hook["matchConditions"]
    assert "startsWith('system:')" in condition["expression"]
    [hook] = render({"webhook": {"judgeClusterObjects": False}})["ValidatingWebhookConfiguration"]["webhooks"]
    assert {r for rule in hook["rules"] for r in rule["resources"]} == {
        "pods",
        "replicationcontrollers",
        "pods/ephemeralcontainers",
        "deployments",
        "statefulsets",
        "daemonsets",
        "replicasets",
        "jobs",
        "cronjobs",
    }
    assert "matchConditions" not in hook


def test_mtls_on_validate_mounts_the_api_servers_client_ca_and_names() -> None:
    off = render()["Deployment"]["spec"]["template"]["spec"]
    assert "TRIBUNAL_TLS_CLIENT_CA_FILE" not in {e["name"] for e in off["containers"][0]["env"]}
    with pytest.raises(Exception, match=r"tls\.clientAuth\.caSecret"):
        render({"tls": {"clientAuth": {"enabled": True}}})
    spec = render(
        {
            "tls": {
                "clientAuth": {
                    "enabled": True,
                    "caSecret": "apiserver-webhook-ca",
                    "names": ["kube-apiserver"],
                }
            }
        }
    )["Deployment"]["spec"]["template"]["spec"]
    [container] = [c for c in spec["containers"] if c["name"] == "tribunal"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TRIBUNAL_TLS_CLIENT_CA_FILE"] == "/client-ca/ca.crt"
    assert env["TRIBUNAL_TLS_CLIENT_NAMES"] == "kube-apiserver"
    assert {"name": "client-ca", "mountPath": "/client-ca", "readOnly": True} in container["volumeMounts"]
    [volume] = [v for v in spec["volumes"] if v["name"] == "client-ca"]
    assert volume["secret"]["secretName"] == "apiserver-webhook-ca"


# -- PolicyReports in the cluster (policyReports) -------------------------------------------------------

REPORT_VERBS = ["create", "get", "list", "patch", "delete"]
WG_RULE = {
    "apiGroups": ["wgpolicyk8s.io"],
    "resources": ["policyreports", "clusterpolicyreports"],
    "verbs": REPORT_VERBS,
}
OPENREPORTS_RULE = {
    "apiGroups": ["openreports.io"],
    "resources": ["reports", "clusterreports"],
    "verbs": REPORT_VERBS,
}


@pytest.mark.parametrize(
    ("api", "rules"),
    [
        pytest.param(None, [WG_RULE], id="default"),
        pytest.param("openreports.io", [OPENREPORTS_RULE], id="openreports"),
        pytest.param("both", [WG_RULE, OPENREPORTS_RULE], id="both"),
    ],
)
def test_policy_reports_are_on_and_granted_exactly_the_reports(
    monkeypatch: pytest.MonkeyPatch, api: str | None, rules: list[dict[str, Any]]
) -> None:
    values: dict[str, Any] = {"policyReports": {"api": api}} if api else {}
    objects = by_name(values)
    role = objects[("ClusterRole", None, "tribunal-policy-reports")]
    assert role["rules"] == rules
    binding = objects[("ClusterRoleBinding", None, "tribunal-policy-reports")]
    assert binding["roleRef"]["name"] == "tribunal-policy-reports"
    assert binding["subjects"] == [SUBJECT]
    # With the default replicas each on its own SQLite, the pods would rewrite the reports from their own
    # findings: written only with a shared database (or a single replica).
    assert deployment_settings(values, monkeypatch).policy_reports is False
    assert deployment_settings({**values, "replicas": 1}, monkeypatch).policy_reports is True
    shared = {**values, "settings": {"databaseUrl": "postgresql+asyncpg://tribunal@db/tribunal"}}
    settings = deployment_settings(shared, monkeypatch)
    assert settings.policy_reports is True
    assert settings.policy_reports_api == (api or "wgpolicyk8s.io")
    assert settings.policy_reports_interval_seconds == 60
    assert settings.policy_reports_max_results == 500


def test_policy_reports_off_grant_nothing_and_tell_tribunal_so(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"policyReports": {"enabled": False}}
    objects = render_all(values)
    assert not [o for o in objects if "policy-reports" in o["metadata"]["name"]]
    for role in (o for o in objects if o["kind"] == "ClusterRole"):
        assert all(
            not {"wgpolicyk8s.io", "openreports.io"} & set(r.get("apiGroups") or []) for r in role["rules"]
        )
    assert deployment_settings(values, monkeypatch).policy_reports is False
    # Without rbac.create the chart grants nothing, and Tribunal still writes the reports it is told to.
    unmanaged = render_all({"rbac": {"create": False}})
    assert not [o for o in unmanaged if "policy-reports" in o["metadata"]["name"]]
    assert deployment_settings({"rbac": {"create": False}, "replicas": 1}, monkeypatch).policy_reports is True
    for rbac in (True, False):
        with pytest.raises(Exception, match=r"policyReports\.api"):
            render_all({"policyReports": {"api": "kyverno.io"}, "rbac": {"create": rbac}})
