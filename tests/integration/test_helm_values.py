"""The chart's values as users of the peers' charts expect them: values.schema.json refuses unknown keys
and wrong types at every level (Helm enforces it on every render, install and lint: helm-python-sdk's
render runs Helm's own schema check, and the tests check the schema with jsonschema too, as Helm 3's
validator would); the pod's placement, priority and extras; a PodDisruptionBudget only with more than
one replica; the startup probe; the database URL from a Secret; Tribunal's own NetworkPolicy; the exempt
users and groups the API server itself skips (matchConditions). Every object rendered validates against
the Kubernetes schemas."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.integration.test_helm_chart import CERT_MANAGER_KINDS, CHART, render_all
from tests.kube_api import K8S_VERSION

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())
SELECTOR = {"app.kubernetes.io/name": "tribunal", "app.kubernetes.io/instance": "tribunal"}


def objects(values: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every rendered object by kind (the chart renders one of each kind used here), each validated
    against the Kubernetes schemas."""
    rendered = render_all(values)
    for obj in rendered:
        if obj["kind"] not in CERT_MANAGER_KINDS:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    return {o["kind"]: o for o in rendered}


def pod_spec(values: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = objects(values)["Deployment"]["spec"]["template"]["spec"]
    return spec


def tribunal_container(spec: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = next(c for c in spec["containers"] if c["name"] == "tribunal")
    return container


# -- values.schema.json --------------------------------------------------------------------------------


def key_paths(node: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in node.items():
        paths.add(prefix + key)
        if isinstance(value, dict) and value:
            paths |= key_paths(value, f"{prefix}{key}.")
    return paths


def schema_paths(node: dict[str, Any], prefix: str = "") -> set[str]:
    """The keys the schema names, down through the objects that refuse unknown keys (Tribunal's own
    values; maps such as podAnnotations and Kubernetes objects such as affinity are open)."""
    paths = set()
    for key, sub in node.get("properties", {}).items():
        paths.add(prefix + key)
        if sub.get("additionalProperties") is False:
            paths |= schema_paths(sub, f"{prefix}{key}.")
    return paths


def closed_objects(node: dict[str, Any], where: str = "") -> list[str]:
    """Every schema node with properties that still accepts unknown keys."""
    open_ = [] if "properties" not in node or node.get("additionalProperties") is False else [where or "/"]
    for key, sub in node.get("properties", {}).items():
        open_ += closed_objects(sub, f"{where}/{key}")
    return open_


def test_the_schema_is_a_valid_draft_7_schema_refusing_unknown_keys_everywhere() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert closed_objects(SCHEMA) == []
    assert helm.Chart.load(str(CHART)).schema == SCHEMA  # Helm loads it with the chart


def test_the_schema_names_every_value_of_values_yaml_and_no_other() -> None:
    """values.yaml and the schema stay in step: a value added to one without the other fails here.
    (`metrics` is in the schema ahead of values.yaml while its templates are being written.)"""
    in_values = {p for p in key_paths(DEFAULTS) if not p.startswith(NESTED_DEFAULTS)}
    in_schema = {p for p in schema_paths(SCHEMA) if not p.startswith(NESTED_DEFAULTS)}
    if "metrics" not in DEFAULTS:
        in_schema = {p for p in in_schema if p.split(".")[0] != "metrics"}
    assert in_values == in_schema


# Keys of an open map or a Kubernetes object (resources: requests, limits, claims as in a container).
NESTED_DEFAULTS = (
    "topologySpreadConstraints.",
    "opa.resources.",
    "resources.",
    "metrics.serviceMonitor.labels.",
    "metrics.prometheusRule.labels.",
    "metrics.dashboard.labels.",
)


def test_the_defaults_pass_the_schema_and_render() -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(DEFAULTS)
    chart = helm.Chart.load(str(CHART))
    chart.validate_schema(DEFAULTS)
    chart.validate_schema({})
    assert objects({})["Deployment"]
    report = helm.lint(str(CHART), strict=True)
    assert report["errors"] == []


WRONG = [
    # (values, the key the error names)
    pytest.param({"tls": {"cabundle": "Q0E="}}, "'cabundle'", id="tls.cabundle"),
    pytest.param({"tls": {"certManager": {"enable": False}}}, "'enable'", id="tls.certManager.enable"),
    pytest.param({"tls": {"clientAuth": {"caSecrets": "ca"}}}, "'caSecrets'", id="tls.clientAuth.caSecrets"),
    pytest.param({"tls": {"caBundle": "-----BEGIN CERTIFICATE-----"}}, "/tls/caBundle", id="caBundle-pem"),
    pytest.param({"replica": 3}, "'replica'", id="replica"),
    pytest.param({"replicas": "2"}, "/replicas", id="replicas-string"),
    pytest.param({"image": {"pullPolicy": "always"}}, "/image/pullPolicy", id="pullPolicy-case"),
    pytest.param(
        {"webhook": {"failurePolicy": "fail"}}, "/webhook/failurePolicy", id="webhook-failurePolicy"
    ),
    pytest.param({"webhook": {"timeoutSeconds": 31}}, "/webhook/timeoutSeconds", id="webhook-timeout"),
    pytest.param({"webhook": {"exemptUser": ["ci"]}}, "'exemptUser'", id="webhook.exemptUser"),
    pytest.param({"webhook": {"exemptGroups": "ci"}}, "/webhook/exemptGroups", id="exemptGroups-string"),
    pytest.param({"settings": {"exemptUsers": "ci"}}, "/settings/exemptUsers", id="exemptUsers-string"),
    pytest.param({"settings": {"engine": "rego"}}, "/settings/engine", id="engine"),
    pytest.param({"settings": {"judgeWorkers": 1.5}}, "/settings/judgeWorkers", id="judgeWorkers-float"),
    pytest.param({"settings": {"databaseURL": "postgresql://db/t"}}, "'databaseURL'", id="databaseURL"),
    pytest.param(
        {"settings": {"databaseUrlSecret": {"name": "db", "keys": "url"}}},
        "'keys'",
        id="databaseUrlSecret.keys",
    ),
    pytest.param(
        {"settings": {"databaseUrlSecret": "db"}}, "/settings/databaseUrlSecret", id="secret-string"
    ),
    pytest.param(
        {"settings": {"auth": {"kubernetes": "yes"}}}, "/settings/auth/kubernetes", id="auth-string"
    ),
    pytest.param({"settings": {"extraEnv": {"LOG_LEVEL": "debug"}}}, "'LOG_LEVEL'", id="settings.extraEnv"),
    pytest.param({"actions": {"quarantine": "true"}}, "/actions/quarantine", id="actions-string"),
    pytest.param({"actions": {"evict": True}}, "'evict'", id="actions.evict"),
    pytest.param({"rbac": {"namespaces": "shop"}}, "/rbac/namespaces", id="rbac.namespaces-string"),
    pytest.param({"opa": {"resources": {"limit": {}}}}, "'limit'", id="opa.resources.limit"),
    pytest.param({"podDisruptionBudget": {"maxUnavailable": 1}}, "'maxUnavailable'", id="pdb.maxUnavailable"),
    pytest.param({"podAnnotations": {"a": 1}}, "/podAnnotations/a", id="podAnnotations-int"),
    pytest.param({"podLabels": ["team=sec"]}, "/podLabels", id="podLabels-list"),
    pytest.param({"priorityClassName": 1000}, "/priorityClassName", id="priorityClassName-int"),
    pytest.param({"tolerations": {"key": "x"}}, "/tolerations", id="tolerations-map"),
    pytest.param({"affinity": []}, "/affinity", id="affinity-list"),
    pytest.param({"imagePullSecrets": ["regcred"]}, "/imagePullSecrets/0", id="imagePullSecrets-names"),
    pytest.param({"extraEnv": {"HTTPS_PROXY": "p"}}, "/extraEnv", id="extraEnv-map"),
    pytest.param({"extraVolumeMounts": [{"name": "x"}]}, "mountPath", id="extraVolumeMounts-no-path"),
    pytest.param({"startupProbe": {"failureThreshold": 0}}, "/startupProbe/failureThreshold", id="startup-0"),
    pytest.param({"startupProbe": {"initialDelay": 5}}, "'initialDelay'", id="startupProbe.initialDelay"),
    pytest.param({"networkPolicy": {"enable": True}}, "'enable'", id="networkPolicy.enable"),
    pytest.param({"networkPolicy": {"ingress": {"form": []}}}, "'form'", id="networkPolicy.ingress.form"),
    pytest.param(
        {"networkPolicy": {"egress": {"kafka": {"ports": ["9092"]}}}},
        "/networkPolicy/egress/kafka/ports/0",
        id="kafka-port-string",
    ),
    pytest.param(
        {"networkPolicy": {"egress": {"postgres": {}}}}, "'postgres'", id="networkPolicy.egress.postgres"
    ),
    pytest.param({"metrics": {"port": "9090"}}, "/metrics/port", id="metrics.port-string"),
    pytest.param({"metrics": {"serviceMonitor": {"enable": True}}}, "'enable'", id="serviceMonitor.enable"),
    pytest.param(
        {"metrics": {"serviceMonitor": {"interval": 30}}}, "/metrics/serviceMonitor/interval", id="interval"
    ),
    pytest.param({"metrics": {"prometheusRule": {"label": {}}}}, "'label'", id="prometheusRule.label"),
    pytest.param(
        {"metrics": {"dashboard": {"labels": {"grafana_dashboard": 1}}}}, "grafana_dashboard", id="dash"
    ),
    pytest.param({"metrics": {"grafana": {}}}, "'grafana'", id="metrics.grafana"),
]


@pytest.mark.parametrize(("values", "named"), WRONG)
def test_a_typo_or_a_wrong_type_is_refused_naming_the_key(values: dict[str, Any], named: str) -> None:
    """Helm refuses the values before rendering anything (as `helm install` and `helm template` do),
    with a message that names the key; jsonschema (the draft Helm 3's validator implements) agrees."""
    with pytest.raises(helm.HelmValuesError) as refused:
        helm.Chart.load(str(CHART)).render(
            values, name="tribunal", namespace="tribunal-system", is_install=True
        )
    assert "schema" in str(refused.value) and named in str(refused.value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate(values)


def test_helm_lint_reports_a_misspelt_key() -> None:
    """Before the schema, `tls.cabundle` rendered a webhook with no caBundle at all."""
    report = helm.lint(
        str(CHART), {"tls": {"certManager": {"enabled": False}, "cabundle": "Q0E="}}, strict=True
    )
    assert any("additional properties 'cabundle' not allowed" in e for e in report["errors"])


# -- the pod -------------------------------------------------------------------------------------------

POD_OPTIONS: dict[str, Any] = {
    "imagePullSecrets": [{"name": "regcred"}],
    "podAnnotations": {"prometheus.io/scrape": "false", "team": "security"},
    "podLabels": {"team": "security", "app.kubernetes.io/name": "not-this"},
    "priorityClassName": "system-cluster-critical",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "security", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "node-role", "operator": "In", "values": ["infra"]}]}
                ]
            }
        }
    },
    "extraEnv": [
        {"name": "HTTPS_PROXY", "value": "http://proxy:3128"},
        {"name": "TRIBUNAL_WEBHOOK_URL", "valueFrom": {"secretKeyRef": {"name": "slack", "key": "url"}}},
    ],
    "extraVolumes": [{"name": "policies", "configMap": {"name": "my-policies"}}],
    "extraVolumeMounts": [{"name": "policies", "mountPath": "/policies", "readOnly": True}],
    "settings": {"extraEnv": {"TRIBUNAL_POLICY_DIR": "/policies"}},
}


def test_the_pod_options_land_in_the_pod() -> None:
    deployment = objects(POD_OPTIONS)["Deployment"]
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert labels["team"] == "security" and labels["tribunal.io/protected"] == "true"
    assert {k: labels[k] for k in SELECTOR} == SELECTOR  # podLabels cannot change the selector's
    assert deployment["spec"]["selector"]["matchLabels"] == SELECTOR
    assert template["metadata"]["annotations"] == POD_OPTIONS["podAnnotations"]
    spec = template["spec"]
    for key in ("imagePullSecrets", "priorityClassName", "nodeSelector", "tolerations", "affinity"):
        assert spec[key] == POD_OPTIONS[key], key
    container = tribunal_container(spec)
    env = container["env"]
    assert env[-2:] == POD_OPTIONS["extraEnv"]
    assert {"name": "TRIBUNAL_POLICY_DIR", "value": "/policies"} in env  # settings.extraEnv still
    assert container["volumeMounts"][-1] == POD_OPTIONS["extraVolumeMounts"][0]
    assert spec["volumes"][-1] == POD_OPTIONS["extraVolumes"][0]
    assert {v["name"] for v in spec["volumes"]} >= {"tls", "data", "tmp"}


def test_without_pod_options_the_pod_has_none_of_them() -> None:
    template = objects({})["Deployment"]["spec"]["template"]
    assert "annotations" not in template["metadata"]
    assert set(template["metadata"]["labels"]) == {*SELECTOR, "tribunal.io/protected"}
    spec = template["spec"]
    for key in ("imagePullSecrets", "priorityClassName", "nodeSelector", "tolerations", "affinity"):
        assert key not in spec, key
    assert [v["name"] for v in spec["volumes"]] == ["tls", "data", "tmp"]


def test_by_default_the_replicas_spread_across_nodes() -> None:
    [constraint] = pod_spec({})["topologySpreadConstraints"]
    assert constraint == {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",  # one node still runs them all
        "labelSelector": {"matchLabels": SELECTOR},
    }


def test_spread_constraints_of_ones_own() -> None:
    zones = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
    selected = {
        "maxSkew": 2,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": {"app": "other"}},
    }
    first, second = pod_spec({"topologySpreadConstraints": [zones, selected]})["topologySpreadConstraints"]
    assert first == {**zones, "labelSelector": {"matchLabels": SELECTOR}}
    assert second == selected  # a labelSelector given is kept
    assert "topologySpreadConstraints" not in pod_spec({"topologySpreadConstraints": []})


@pytest.mark.parametrize(
    ("values", "budget"),
    [
        pytest.param({}, True, id="default-2"),
        pytest.param({"replicas": 3}, True, id="3"),
        pytest.param({"replicas": 1}, False, id="1"),
        pytest.param({"replicas": 0}, False, id="0"),
        pytest.param({"replicas": 3, "podDisruptionBudget": {"enabled": False}}, False, id="disabled"),
    ],
)
def test_a_disruption_budget_only_with_more_than_one_replica(values: dict[str, Any], budget: bool) -> None:
    """minAvailable: 1 over a single replica would block every node drain."""
    rendered = objects(values)
    assert ("PodDisruptionBudget" in rendered) is budget
    if budget:
        pdb = rendered["PodDisruptionBudget"]["spec"]
        assert pdb == {"minAvailable": 1, "selector": {"matchLabels": SELECTOR}}


def test_a_startup_probe_holds_the_liveness_probe_back() -> None:
    container = tribunal_container(pod_spec({}))
    assert container["startupProbe"] == {
        "httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"},
        "periodSeconds": 2,
        "failureThreshold": 60,
    }
    slow = tribunal_container(pod_spec({"startupProbe": {"failureThreshold": 150}}))["startupProbe"]
    assert (slow["periodSeconds"], slow["failureThreshold"]) == (2, 150)


def test_the_database_url_from_a_secret() -> None:
    env = tribunal_container(pod_spec({"settings": {"databaseUrlSecret": {"name": "tribunal-db"}}}))["env"]
    [url] = [e for e in env if e["name"] == "TRIBUNAL_DATABASE_URL"]
    assert url == {
        "name": "TRIBUNAL_DATABASE_URL",
        "valueFrom": {"secretKeyRef": {"name": "tribunal-db", "key": "url"}},
    }
    values = {"settings": {"databaseUrlSecret": {"name": "tribunal-db", "key": "dsn"}}}
    env = tribunal_container(pod_spec(values))["env"]
    [url] = [e for e in env if e["name"] == "TRIBUNAL_DATABASE_URL"]
    assert url["valueFrom"]["secretKeyRef"] == {"name": "tribunal-db", "key": "dsn"}
    both = {
        "settings": {"databaseUrl": "postgresql+asyncpg://db/t", "databaseUrlSecret": {"name": "tribunal-db"}}
    }
    with pytest.raises(helm.HelmError, match=r"settings\.databaseUrl and settings\.databaseUrlSecret\.name"):
        render_all(both)
    env = tribunal_container(pod_spec({"settings": {"databaseUrl": "postgresql+asyncpg://db/t"}}))["env"]
    assert {"name": "TRIBUNAL_DATABASE_URL", "value": "postgresql+asyncpg://db/t"} in env


def test_a_priority_class_for_a_webhook_that_fails_closed() -> None:
    spec = pod_spec({"priorityClassName": "tribunal-critical", "webhook": {"failurePolicy": "Fail"}})
    assert spec["priorityClassName"] == "tribunal-critical"


# -- NetworkPolicy -------------------------------------------------------------------------------------


def network_policy(values: dict[str, Any]) -> dict[str, Any]:
    rendered = objects({"networkPolicy": {"enabled": True, **values.pop("networkPolicy", {})}, **values})
    policy: dict[str, Any] = rendered["NetworkPolicy"]
    assert policy["metadata"]["namespace"] == "tribunal-system"
    spec: dict[str, Any] = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": SELECTOR}
    return spec


def egress_ports(spec: dict[str, Any]) -> list[set[tuple[int | str, str]]]:
    return [{(p["port"], p["protocol"]) for p in rule["ports"]} for rule in spec["egress"]]


DNS = {(53, "UDP"), (53, "TCP")}
API_SERVER = {(443, "TCP"), (6443, "TCP")}


def test_no_network_policy_by_default() -> None:
    assert "NetworkPolicy" not in objects({})


def test_the_network_policy_opens_the_webhook_port_to_any_source_and_egress_to_dns_and_the_api_server() -> (
    None
):
    spec = network_policy({})
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"ports": [{"port": "https", "protocol": "TCP"}]}]  # no `from`: any source
    assert egress_ports(spec) == [DNS, API_SERVER]
    assert all("to" not in rule for rule in spec["egress"])


def test_the_network_policy_follows_the_configured_services() -> None:
    spec = network_policy(
        {
            "settings": {
                "databaseUrl": "postgresql+asyncpg://tribunal:secret@postgres.db:5433/tribunal",
                "kafkaBootstrapServers": "kafka-0.kafka:9093, kafka-1.kafka:9093,kafka-2.kafka",
                "alertmanagerUrl": "https://alertmanager.monitoring",
            },
            "metrics": {"port": 9090},
        }
    )
    assert egress_ports(spec) == [
        DNS,
        API_SERVER,
        {(5433, "TCP")},
        {(9093, "TCP"), (9092, "TCP")},
        {(443, "TCP")},
    ]
    assert [r["ports"] for r in spec["ingress"]] == [
        [{"port": "https", "protocol": "TCP"}],
        [{"port": 9090, "protocol": "TCP"}],
    ]
    spec = network_policy(
        {
            "settings": {
                "databaseUrl": "postgresql+asyncpg://tribunal@postgres/tribunal",
                "alertmanagerUrl": "http://alertmanager:9093",
            }
        }
    )
    assert egress_ports(spec) == [DNS, API_SERVER, {(5432, "TCP")}, {(9093, "TCP")}]
    # The record in the pod (SQLite) needs no egress; a URL from a Secret is PostgreSQL on 5432.
    assert egress_ports(network_policy({"settings": {"databaseUrl": "sqlite+aiosqlite:////data/t.db"}})) == [
        DNS,
        API_SERVER,
    ]
    secret = network_policy({"settings": {"databaseUrlSecret": {"name": "db"}}})
    assert egress_ports(secret) == [DNS, API_SERVER, {(5432, "TCP")}]


def test_the_network_policy_peers_and_ports_are_configurable() -> None:
    api_server = [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    prometheus = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    control_plane = [{"ipBlock": {"cidr": "172.16.0.0/28"}}]
    postgres = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "db"}}}]
    slack = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}], "ports": [{"port": 443}]}
    spec = network_policy(
        {
            "networkPolicy": {
                "ingress": {"from": control_plane, "metricsFrom": prometheus},
                "egress": {
                    "dns": {
                        "to": [
                            {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
                        ]
                    },
                    "apiServer": {"ports": [443], "to": api_server},
                    "database": {"ports": [6432], "to": postgres},
                    "extra": [slack],
                },
            },
            "settings": {"databaseUrlSecret": {"name": "db"}},
            "metrics": {"port": 9090},
        }
    )
    assert spec["ingress"][0]["from"] == control_plane and spec["ingress"][1]["from"] == prometheus
    assert spec["egress"][0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert spec["egress"][1] == {"ports": [{"port": 443, "protocol": "TCP"}], "to": api_server}
    assert spec["egress"][2] == {"ports": [{"port": 6432, "protocol": "TCP"}], "to": postgres}
    assert spec["egress"][3] == slack
    # metricsFrom empty: the metrics port is open to the same sources as the webhook port
    spec = network_policy({"networkPolicy": {"ingress": {"from": control_plane}}, "metrics": {"port": 9090}})
    assert spec["ingress"][1]["from"] == control_plane


def test_egress_can_be_left_unrestricted() -> None:
    spec = network_policy({"networkPolicy": {"egress": {"enabled": False}}})
    assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec


# -- matchConditions: exempt users and groups the API server skips -------------------------------------


def match_conditions(webhook: dict[str, Any]) -> list[dict[str, str]]:
    [hook] = objects({"webhook": webhook})["ValidatingWebhookConfiguration"]["webhooks"]
    conditions: list[dict[str, str]] = hook.get("matchConditions", [])
    return conditions


def test_exempt_users_and_groups_become_match_conditions_beside_the_system_rbac_one() -> None:
    conditions = match_conditions(
        {
            "exemptUsers": ["system:serviceaccount:argocd:argocd-application-controller", "ci"],
            "exemptGroups": ["cluster-breakglass"],
        }
    )
    assert [c["name"] for c in conditions] == ["not-system-rbac", "not-exempt-user", "not-exempt-group"]
    assert "startsWith('system:')" in conditions[0]["expression"]
    assert conditions[1]["expression"] == (
        '!(request.userInfo.username in ["system:serviceaccount:argocd:argocd-application-controller","ci"])'
    )
    assert conditions[2]["expression"] == (
        '!has(request.userInfo.groups) || !request.userInfo.groups.exists(g, g in ["cluster-breakglass"])'
    )
    # Without the cluster objects, the exempt ones alone; without any, none.
    only = match_conditions({"judgeClusterObjects": False, "exemptGroups": ["cluster-breakglass"]})
    assert [c["name"] for c in only] == ["not-exempt-group"]
    assert match_conditions({"judgeClusterObjects": False}) == []
    assert [c["name"] for c in match_conditions({})] == ["not-system-rbac"]


def test_a_name_with_quotes_stays_one_cel_string() -> None:
    [condition] = match_conditions({"judgeClusterObjects": False, "exemptUsers": ['we"ird\\name']})
    literal = condition["expression"].removeprefix("!(request.userInfo.username in ").removesuffix(")")
    assert json.loads(literal) == ['we"ird\\name']  # JSON strings are CEL strings


def test_the_settings_exemptions_are_still_tribunals_own() -> None:
    """settings.exemptUsers are sent and admitted unjudged by Tribunal (and recorded); they add no
    matchCondition."""
    rendered = objects({"settings": {"exemptUsers": ["ci"], "exemptGroups": ["ops"]}})
    [hook] = rendered["ValidatingWebhookConfiguration"]["webhooks"]
    assert [c["name"] for c in hook["matchConditions"]] == ["not-system-rbac"]
    env = {
        e["name"]: e.get("value")
        for e in tribunal_container(rendered["Deployment"]["spec"]["template"]["spec"])["env"]
    }
    assert env["TRIBUNAL_EXEMPT_USERS"] == "ci" and env["TRIBUNAL_EXEMPT_GROUPS"] == "ops"
