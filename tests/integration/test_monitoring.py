"""Monitoring as the chart ships it: the ServiceMonitor, the PrometheusRule (checked and unit-tested by
Prometheus's own `promtool`) and the Grafana dashboard render and hold together; every metric they
use is one a real Tribunal serves; per-policy results are counted from every source; /metrics on its
own plain-HTTP port; the process_* metrics."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests import components
from tests.conftest import PROJECT, falco_alert, pod, review
from tests.integration.conftest import StartServer
from tests.integration.test_helm_chart import CHART, deployment_settings, render, render_all
from tests.kube_api import K8S_VERSION
from tribunal.policy import load_policy_set
from tribunal.sources.metrics import PipelineMetrics

PROMTOOL_TESTS = Path(__file__).parent / "promtool" / "alerts_test.yaml"
DASHBOARD = CHART / "dashboards" / "tribunal.json"
OPERATIONS = PROJECT / "docs" / "operations.md"
ALL_ON: dict[str, Any] = {
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
        "dashboard": {"enabled": True},
    }
}
OWN_PORT: dict[str, Any] = {"metrics": {**ALL_ON["metrics"], "port": 9090}}
PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        components.missing("promtool", "Debian's `prometheus` package provides it (`make system-deps`)")
    return path


def rules(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rendered PrometheusRule's spec: a Prometheus rule file."""
    spec: dict[str, Any] = render(values or ALL_ON)["PrometheusRule"]["spec"]
    return spec


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rules()["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def panels(board: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[str]:
    return [t["expr"] for p in panels(dashboard()) for t in p.get("targets", [])]


# ------------------------------------------------------------------------------------------------
# The chart


def test_monitoring_is_off_by_default() -> None:
    kinds = {o["kind"] for o in render_all()}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    service = render()["Service"]["spec"]
    assert [p["name"] for p in service["ports"]] == ["https"]


@pytest.mark.parametrize("values", [ALL_ON, OWN_PORT], ids=["main-port", "own-port"])
def test_monitoring_objects_render_and_validate(values: dict[str, Any]) -> None:
    everything = render_all(values)
    kinds = [o["kind"] for o in everything]
    assert kinds.count("ServiceMonitor") == kinds.count("PrometheusRule") == kinds.count("ConfigMap") == 1
    for obj in everything:
        if obj["apiVersion"].startswith(("v1", "apps/", "policy/", "rbac.", "admissionregistration.")):
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    objects = render(values)
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert objects[kind]["apiVersion"] == "monitoring.coreos.com/v1"
        assert objects[kind]["metadata"]["namespace"] == "tribunal-system"
        assert objects[kind]["metadata"]["labels"]["release"] == "prometheus"
    monitor = objects["ServiceMonitor"]["spec"]
    service = objects["Service"]
    # The ServiceMonitor selects the Service, and names one of its ports.
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["namespaceSelector"] == {"matchNames": ["tribunal-system"]}
    (endpoint,) = monitor["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["interval"] == "30s"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    if values is OWN_PORT:
        assert endpoint["scheme"] == "http" and endpoint["port"] == "metrics"
        assert env["TRIBUNAL_METRICS_PORT"] == "9090"
        assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    else:
        # The main port: TLS verified with the release's CA, the Prometheus service account's token.
        assert endpoint["scheme"] == "https" and endpoint["port"] == "https"
        assert endpoint["tlsConfig"]["serverName"] == "tribunal.tribunal-system.svc"
        assert endpoint["tlsConfig"]["ca"] == {"secret": {"name": "tribunal-tls", "key": "ca.crt"}}
        assert "bearerTokenFile" in endpoint
        assert "TRIBUNAL_METRICS_PORT" not in env
    configmap = objects["ConfigMap"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["tribunal.json"]) == dashboard()


def test_a_read_token_secret_authenticates_the_scrape() -> None:
    values = {**ALL_ON, "settings": {"auth": {"readTokenSecret": "tribunal-read"}}}
    (endpoint,) = render(values)["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "tribunal-read", "key": "token"},
    }
    assert "bearerTokenFile" not in endpoint


def test_the_metrics_port_is_a_setting_tribunal_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    assert deployment_settings(OWN_PORT, monkeypatch).metrics_port == 9090
    assert deployment_settings({}, monkeypatch).metrics_port == 0


def test_dashboard_labels_are_configurable() -> None:
    values = {"metrics": {"dashboard": {"enabled": True, "labels": {"grafana_dashboard": "tribunal"}}}}
    assert render(values)["ConfigMap"]["metadata"]["labels"]["grafana_dashboard"] == "tribunal"


# ------------------------------------------------------------------------------------------------
# The rules, by promtool


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    tool = promtool()
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules(), sort_keys=False), encoding="utf-8")
    result = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_promtool_unit_tests_of_every_alert(tmp_path: Path) -> None:
    tool = promtool()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules(), sort_keys=False), encoding="utf-8")
    shutil.copy(PROMTOOL_TESTS, tmp_path / PROMTOOL_TESTS.name)
    result = subprocess.run(
        [tool, "test", "rules", PROMTOOL_TESTS.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every alert has a test in which it fires, and one in which it does not.
    tests = yaml.safe_load(PROMTOOL_TESTS.read_text(encoding="utf-8"))["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for alert in alerts():
        mine = [c for c in cases if c["alertname"] == alert["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{alert['alert']}: no test where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{alert['alert']}: no test where it stays quiet"


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown``."""
    anchors = set()
    for line in markdown.splitlines():
        if match := re.match(r"#{1,6} (.+)", line):
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_alert_has_a_severity_a_summary_and_a_runbook_in_the_operations_guide() -> None:
    anchors = github_anchors(OPERATIONS.read_text(encoding="utf-8"))
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names))
    assert {
        "TribunalWebhookErrors",
        "TribunalWebhookLatencyHigh",
        "TribunalFailurePolicyAnswers",
        "TribunalKafkaConsumerLag",
        "TribunalDeadLetterGrowth",
        "TribunalRecorderDropping",
        "TribunalOutboxBacklog",
        "TribunalActionFailures",
    } <= set(names)
    for alert in alerts():
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        url = alert["annotations"]["runbook_url"]
        assert url.startswith("https://") and "docs/operations.md#" in url, url
        assert url.rsplit("#", 1)[1] in anchors, f"{alert['alert']}: no runbook section {url}"


def test_the_rules_select_the_release_scraped_by_its_service_monitor() -> None:
    for alert in alerts():
        selectors = re.findall(r"\{([^}]*)\}", alert["expr"])
        assert selectors, alert["alert"]
        for selector in selectors:
            assert selector.startswith('job="tribunal", namespace="tribunal-system"'), alert["alert"]


# ------------------------------------------------------------------------------------------------
# The dashboard


def test_the_dashboard_is_a_well_formed_grafana_dashboard() -> None:
    board = dashboard()
    assert board["uid"] == "tribunal" and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    assert {"namespace", "job"} <= set(variables)
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = {p["title"] for p in board["panels"] if p["type"] == "row"}
    assert titles == {"Admission", "Verdicts", "Pipeline", "Actions"}
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"], panel["title"]
            # every query is scoped to the chosen namespace and job
            for selector in re.findall(r"(?:tribunal|process)_\w+\{([^}]*)\}", target["expr"]):
                assert 'namespace=~"$namespace", job=~"$job"' in selector, target["expr"]
    cells: set[tuple[int, int]] = set()
    for panel in panels(board):  # no two panels overlap
        g = panel["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, panel["title"]
        cells |= mine
    queries = " ".join(dashboard_queries())
    for shown in (
        "tribunal_admission_requests_total",
        "tribunal_policy_results_total",
        "tribunal_actions_total",
    ):
        assert shown in queries
    assert "tribunal_kafka_consumer_lag" in queries and "tribunal_evidence_processed_total" in queries


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    tool = promtool()
    # Grafana's variables replaced by what they stand for, each query checked as a recording rule.
    substitutions = {"$__rate_interval": "1m", "$__range": "6h", "$namespace": ".*", "$job": ".*"}
    records = []
    for i, expr in enumerate(dashboard_queries()):
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        records.append({"record": f"dashboard:query{i}", "expr": expr})
    path = tmp_path / "dashboard.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}), encoding="utf-8")
    result = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------------
# The metrics they use exist, on a real server


METRIC = re.compile(r"\b((?:tribunal|process)_[a-z0-9_]+)")
SUFFIXES = {"_total": "counter", "_bucket": "histogram", "_count": "histogram", "_sum": "histogram"}


def referenced_metrics() -> set[str]:
    exprs = [a["expr"] for a in alerts()] + dashboard_queries()
    return {name for expr in exprs for name in METRIC.findall(expr)}


def families(text: str) -> dict[str, str]:
    """Metric family name -> type, as a scrape of ``text`` reads them (counters without _total)."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def family_of(name: str, served: dict[str, str]) -> tuple[str, str | None]:
    for suffix, kind in SUFFIXES.items():
        if name.endswith(suffix) and name.removesuffix(suffix) in served:
            return name.removesuffix(suffix), kind
    return name, None


async def scrape(http: aiohttp.ClientSession, url: str, **kw: Any) -> str:
    async with http.get(url, **kw) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


async def test_every_metric_the_rules_and_dashboard_use_is_served(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server(store=True)
    served = families(await scrape(http, f"{server.url}/metrics"))
    # The Kafka pipeline's metrics are registered when consumers run (TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS,
    # or `tribunal consume`): their registry as the server and `tribunal consume` build it.
    consumer_registry = CollectorRegistry()
    PipelineMetrics(consumer_registry)
    served.update(families(generate_latest(consumer_registry).decode()))
    referenced = referenced_metrics()
    assert len(referenced) >= 20
    for name in sorted(referenced):
        family, kind = family_of(name, served)
        assert family in served, f"{name} is used by a rule or the dashboard but not served"
        if kind is not None:
            assert served[family] == kind, f"{name}: {served[family]}, used as a {kind}"
        else:
            assert served[family] in {"gauge", "untyped", "info"}, (
                f"{name}: a {served[family]} without suffix"
            )


async def test_policy_results_count_each_policy_once_per_recorded_evidence_from_every_source(  # type: ignore[no-untyped-def]
    start_server: StartServer, http
) -> None:
    server, _ = await start_server(store=True)
    policies = load_policy_set(PROJECT / "policies").policies.values()
    admission = {p.id for p in policies if p.kind == "admission"}
    falco = {p.id for p in policies if p.kind == "falco"}
    for uid, containers in (
        ("m-1", PRIVILEGED),
        ("m-2", PRIVILEGED),
        ("m-3", {"name": "app", "image": "nginx:1.27"}),
    ):
        async with http.post(f"{server.url}/validate", json=review(pod(containers), uid=uid)) as response:
            assert response.status == 200
    # the same review again: answered, but recorded once, so counted once
    async with http.post(f"{server.url}/validate", json=review(pod(PRIVILEGED), uid="m-1")) as response:
        assert response.status == 200
    async with http.post(f"{server.url}/ingest/falco", json=falco_alert()) as response:
        assert response.status < 300, await response.text()

    def results(text: str) -> dict[tuple[str, str, str], float]:
        counts: dict[tuple[str, str, str], float] = {}
        for family in text_string_to_metric_families(text):
            if family.name == "tribunal_policy_results":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        key = (sample.labels["policy"], sample.labels["kind"], sample.labels["result"])
                        counts[key] = counts.get(key, 0) + sample.value
                        assert sample.labels["enforcement"] in {"deny", "warn", "dryrun"}
                        assert set(sample.labels) == {"policy", "kind", "result", "enforcement"}
        return counts

    def per_policy(counts: dict[tuple[str, str, str], float], kind: str) -> dict[str, float]:
        totals: dict[str, float] = {}
        for (policy, k, _), value in counts.items():
            if k == kind:
                totals[policy] = totals.get(policy, 0) + value
        return totals

    expected = {"admission": dict.fromkeys(admission, 3), "falco": dict.fromkeys(falco, 1)}
    counts: dict[tuple[str, str, str], float] = {}
    for _ in range(100):  # recorded in the background
        counts = results(await scrape(http, f"{server.url}/metrics"))
        if all(per_policy(counts, kind) == want for kind, want in expected.items()):
            break
        await asyncio.sleep(0.1)
    # Each admission policy judged each of the three reviews once: pass, fail or skip.
    assert per_policy(counts, "admission") == dict.fromkeys(admission, 3)
    assert per_policy(counts, "falco") == dict.fromkeys(falco, 1)
    privileged = [p for p in admission if "privileged" in p]
    assert privileged and all(counts.get((p, "admission", "fail"), 0) >= 2 for p in privileged)
    assert {result for _, _, result in counts} <= {"pass", "fail", "skip"}


async def test_process_metrics_are_served(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server()
    served = families(await scrape(http, f"{server.url}/metrics"))
    for name in ("process_cpu_seconds", "process_resident_memory_bytes", "process_start_time_seconds"):
        assert name in served
    assert "python_info" in served


async def test_metrics_on_their_own_port_are_plain_http_and_unauthenticated(  # type: ignore[no-untyped-def]
    start_server: StartServer, http
) -> None:
    port = components.free_port()
    server, _ = await start_server(metrics_port=port, auth={"anonymous": False})
    assert server.metrics_url == f"http://127.0.0.1:{port}/metrics"
    async with http.get(f"{server.url}/metrics") as response:
        assert response.status == 401  # the main port still asks for a token
    async with aiohttp.ClientSession() as plain:
        text = await scrape(plain, f"http://127.0.0.1:{port}/metrics")
        assert "tribunal_admission_requests_total" in text or "tribunal_admission_requests" in text
        async with plain.get(f"http://127.0.0.1:{port}/verdicts") as response:
            assert response.status == 404  # that port serves /metrics and nothing else
    await server.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as plain, plain.get(f"http://127.0.0.1:{port}/metrics"):
            pass
