"""TRIBUNAL_TRIVY_OPERATOR_WATCH against a real kube-apiserver: the Trivy Operator's CRDs (as the
operator ships them, ../shared/schemas/trivy-operator) installed, reports made from the operator's
published samples (../shared/fixtures/trivy) created, changed and re-applied in a test namespace,
and Tribunal listing and watching them as the chart's ServiceAccount, with nothing but the chart's
ClusterRole rendered with ``settings.trivyOperatorWatch``.

"Judged once" is read from Tribunal's own store (SQLite in tmp_path), which records a report once
per content: every verdict of a report is one row, named by the watch's source (``watch <plural>.
aquasecurity.github.io <namespace>/<name>@<resourceVersion>``). That nothing more arrives is shown
by a barrier, not a pause: a report created afterwards, of the same resource, is recorded only after
every earlier event of that resource's watch (one watch per resource, its events in order)."""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import re
import sqlite3
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient

from tests.conftest import FIXTURES, POLICY_DIR, RULES_DIR, SHARED, needs_shared
from tests.e2e.conftest import (
    RELEASE_NAMESPACE,
    apply,
    ensure_namespace,
    eventually,
    install_crds,
    render_chart,
)
from tests.e2e.control_plane import ControlPlane
from tribunal import app
from tribunal.app import build_server
from tribunal.server import Server
from tribunal.settings import Settings
from tribunal.sources.k8s_watch import WatchConfig

pytestmark = [pytest.mark.e2e, needs_shared]

GROUP, VERSION = "aquasecurity.github.io", "v1alpha1"
VULNS, AUDITS = "vulnerabilityreports", "configauditreports"
WATCHED = [VULNS, AUDITS]
CRDS = SHARED / "schemas" / "trivy-operator"
SAMPLES = FIXTURES / "trivy"
SOURCE = re.compile(r"^watch (\w+)\.aquasecurity\.github\.io (\S+)@(\d+)$")


# -- the operator's CRDs ----------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def operator_crds(control_plane: ControlPlane) -> list[str]:
    """Every CRD of ../shared/schemas/trivy-operator created in the API server, once per session, and
    Established (served); returns their plurals."""
    crds = [
        crd for path in sorted(CRDS.glob("*.yaml")) for crd in yaml.safe_load_all(path.read_text()) if crd
    ]
    return await install_crds(control_plane, crds)


# -- reports from the operator's published samples ---------------------------------------------


def sample(name: str) -> dict[str, Any]:
    path = SAMPLES / name
    doc = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def report(sample_name: str, namespace: str, name: str) -> dict[str, Any]:
    """The sample as a report to create in ``namespace`` under ``name``: its labels kept (except the
    envtest sample's ``<HASH>`` placeholders, which are no label values), the fields the API server
    sets left out. The current CRDs require a few fields that these samples, written by older
    operators, lack (``report.os``, ``publishedDate`` and ``lastModifiedDate`` of a vulnerability);
    they are added empty, as the operator writes them when Trivy does not know them."""
    doc = copy.deepcopy(sample(sample_name))
    labels = {k: v for k, v in (doc["metadata"].get("labels") or {}).items() if "<" not in str(v)}
    doc["metadata"] = {"name": name, "namespace": namespace, "labels": labels}
    body = doc["report"]
    if doc["kind"] == "VulnerabilityReport":
        body.setdefault("os", {})
        for vulnerability in body.get("vulnerabilities") or []:
            vulnerability.setdefault("publishedDate", "")
            vulnerability.setdefault("lastModifiedDate", "")
    return doc


def single_critical(namespace: str, name: str) -> dict[str, Any]:
    return report("operator-vulnerabilityreport-nginx-single-critical.json", namespace, name)


def no_vulnerabilities(namespace: str, name: str) -> dict[str, Any]:
    return report("operator-vulnerabilityreport-nginx-no-vulns.json", namespace, name)


def many_vulnerabilities(namespace: str, name: str) -> dict[str, Any]:
    return report("operator-vulnerabilityreport-nginx-many.json", namespace, name)


def nginx_audit(namespace: str, name: str) -> dict[str, Any]:
    return report("operator-configauditreport-nginx-docs.yaml", namespace, name)


def pod_audit(namespace: str, name: str) -> dict[str, Any]:
    return report("operator-configauditreport-pod-envtest.yaml", namespace, name)


async def put(api: client.ApiClient, obj: dict[str, Any], manager: str = "trivy-operator") -> str:
    """Server-side apply ``obj`` as ``manager`` (created, or changed where it exists); returns its
    resourceVersion. Retried while the API server (re)starts."""
    async with asyncio.timeout(60):
        while True:
            try:
                dynamic = await DynamicClient(api)
                resource = await dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
                applied = await dynamic.server_side_apply(
                    resource, body=obj, field_manager=manager, force_conflicts=True
                )
                return str(applied.metadata.resourceVersion)
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.2)
            except ApiException as exc:
                if exc.status not in (429, 503):
                    raise
                await asyncio.sleep(0.2)


@pytest.fixture
async def ns(api: client.ApiClient, namespace: str) -> AsyncIterator[str]:
    """The test's namespace, its reports deleted after the test (no namespace controller runs here
    to delete them with it, and the watch is cluster-wide)."""
    yield namespace
    objects = client.CustomObjectsApi(api)
    for plural in WATCHED:
        await objects.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, plural)


# -- Tribunal as the chart's ServiceAccount ----------------------------------------------------


@pytest.fixture
async def chart_kubeconfig(
    api: client.ApiClient, control_plane: ControlPlane, operator_crds: list[str], tmp_path: Path
) -> Path:
    """A kubeconfig with a token of the chart's ServiceAccount, whose only grants are the chart's
    ClusterRole and ClusterRoleBinding rendered with ``settings.trivyOperatorWatch``."""
    assert set(WATCHED) <= set(operator_crds)
    values = {"settings": {"trivyOperatorWatch": WATCHED}}
    objects = [
        o
        for o in render_chart(values)
        if o["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    ]
    assert {o["kind"] for o in objects} == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    await ensure_namespace(api, RELEASE_NAMESPACE)
    for obj in objects:
        await apply(api, obj)
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    token = await client.CoreV1Api(api).create_namespaced_service_account_token(
        account["metadata"]["name"], RELEASE_NAMESPACE, {"spec": {"expirationSeconds": 3600}}
    )
    return control_plane.write_kubeconfig(tmp_path / "tribunal.kubeconfig", token=token.status.token)


StartTribunal = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_tribunal(
    chart_kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StartTribunal]:
    """``await start_tribunal(db)``: `tribunal serve` watching WATCHED through ``chart_kubeconfig``
    and recording into the SQLite database ``db``; every one started is stopped after the test.
    ``watch_seconds``: how long each watch request lasts (the API server then ends it; 300 s in
    Tribunal, which no setting changes)."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # the kubeconfig, not in-cluster
    started: list[Server] = []

    async def start(db: Path, watch_seconds: int | None = None) -> Server:
        if watch_seconds is not None:
            monkeypatch.setattr(
                app, "WatchConfig", functools.partial(WatchConfig, timeout_seconds=watch_seconds)
            )
        settings = Settings.model_validate(
            {
                "host": "127.0.0.1",
                "port": 0,
                "policy_dir": POLICY_DIR,
                "rules_dir": RULES_DIR,
                "database_url": f"sqlite+aiosqlite:///{db}",
                "actions": {"state_dir": tmp_path / "state", "kubeconfig": chart_kubeconfig},
                "judge_workers": 0,
                "trivy_operator_watch": WATCHED,
                "plain_http": True,  # only the watch is under test here
            }
        )
        server = build_server(settings)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


# -- what Tribunal recorded --------------------------------------------------------------------

Verdicts = dict[str, list[str]]
"""``<plural>/<namespace>/<name>`` -> the decisions of its verdicts on record, oldest first."""


def verdicts(db: Path, namespace: str) -> Verdicts:
    """The verdicts on record of the reports in ``namespace`` (the watch is cluster-wide)."""
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute(
                "SELECT e.source, v.decision FROM evidence e JOIN verdicts v ON v.evidence_id = e.id"
                " WHERE e.kind = 'trivy' ORDER BY CAST(substr(e.source, instr(e.source, '@') + 1) AS INTEGER)"
            ).fetchall()
        except sqlite3.OperationalError:  # not created yet
            return {}
    found: Verdicts = {}
    for source, decision in rows:
        match = SOURCE.match(source)
        assert match, source
        if match[2].startswith(f"{namespace}/"):
            found.setdefault(f"{match[1]}/{match[2]}", []).append(decision)
    return found


async def until(db: Path, namespace: str, ready: Callable[[Verdicts], bool], seconds: float = 30) -> Verdicts:
    """The verdicts on record in ``namespace`` once ``ready`` holds for them; fails with what was
    recorded after ``seconds``."""
    seen = verdicts(db, namespace)
    try:
        async with asyncio.timeout(seconds):
            while not ready(seen):
                await asyncio.sleep(0.1)
                seen = verdicts(db, namespace)
    except TimeoutError:
        pytest.fail(f"not recorded within {seconds} s; on record: {seen}")
    return seen


async def barrier(api: client.ApiClient, db: Path, namespace: str, seconds: float = 30) -> Verdicts:
    """A new report of each watched resource, once recorded: every event before it was handled."""
    marker = f"barrier-{uuid.uuid4().hex[:6]}"
    await put(api, no_vulnerabilities(namespace, marker))
    await put(api, nginx_audit(namespace, marker))
    keys = [f"{VULNS}/{namespace}/{marker}", f"{AUDITS}/{namespace}/{marker}"]
    return await until(db, namespace, lambda v: all(k in v for k in keys), seconds)


def without_barriers(found: Verdicts) -> Verdicts:
    return {k: v for k, v in found.items() if "/barrier-" not in k}


def events(server: Server, plural: str, event: str) -> float:
    value = server.registry.get_sample_value(
        "tribunal_watch_events_total", {"resource": plural, "event": event}
    )
    return value or 0.0


async def watches_ended(control_plane: ControlPlane, plural: str) -> float:
    """How many watch requests on ``plural`` the API server has ended since it started (its metric
    ``apiserver_request_total``, counted when a request ends)."""
    context = ssl.create_default_context(cafile=str(control_plane.ca.cert_file))
    context.load_cert_chain(control_plane.admin.cert, control_plane.admin.key)
    connector = aiohttp.TCPConnector(ssl=context)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(f"{control_plane.url}/metrics") as resp,
    ):
        text = await resp.text()
    wanted = ('verb="WATCH"', f'resource="{plural}"', f'group="{GROUP}"')
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("apiserver_request_total{") and all(w in line for w in wanted)
    )


def failures(server: Server) -> float:
    return sum(
        server.registry.get_sample_value("tribunal_watch_errors_total", {"resource": plural, "cause": cause})
        or 0.0
        for plural in WATCHED
        for cause in ("api", "connection", "other")
    )


async def watches_ended_since(control_plane: ControlPlane, ended: float, more: int) -> None:
    async def check() -> bool:
        return await watches_ended(control_plane, VULNS) >= ended + more

    await eventually(check, 60, f"{more} more watches on {VULNS} ended by the API server")


async def readiness(server: Server) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/readyz") as resp:
        checks: dict[str, str] = (await resp.json())["checks"]
    return checks["trivy-operator-watch"]


# -- the tests ---------------------------------------------------------------------------------


async def test_crds_of_the_operator_are_served(api: client.ApiClient, operator_crds: list[str]) -> None:
    assert {VULNS, AUDITS, "exposedsecretreports", "clustercompliancereports"} <= set(operator_crds)
    listing = await client.CustomObjectsApi(api).list_cluster_custom_object(GROUP, VERSION, VULNS)
    assert listing["kind"] == "VulnerabilityReportList"


async def test_reports_are_judged_once_when_listed_added_and_changed_never_for_a_write_that_changes_nothing(
    api: client.ApiClient, ns: str, start_tribunal: StartTribunal, tmp_path: Path
) -> None:
    await put(api, no_vulnerabilities(ns, "nginx"))
    await put(api, nginx_audit(ns, "nginx"))
    db = tmp_path / "tribunal.db"
    server = await start_tribunal(db)

    # Listed at start: judged once each (a clean image allowed; the audit's failed checks warned).
    listed = await until(db, ns, lambda v: len(v) == 2)
    assert listed == {f"{VULNS}/{ns}/nginx": ["allow"], f"{AUDITS}/{ns}/nginx": ["warn"]}
    assert events(server, VULNS, "LISTED") >= 1

    # Added while watched: judged once each.
    await put(api, many_vulnerabilities(ns, "catalog"))
    await put(api, pod_audit(ns, "my-pod"))
    added = await until(db, ns, lambda v: len(v) == 4)
    assert added[f"{VULNS}/{ns}/catalog"] == ["deny"]
    assert added[f"{AUDITS}/{ns}/my-pod"] == ["warn"]

    # The operator rescans and finds a fixable critical CVE: new content, judged again.
    await put(api, single_critical(ns, "nginx"))
    changed = await until(db, ns, lambda v: len(v[f"{VULNS}/{ns}/nginx"]) == 2)
    assert changed[f"{VULNS}/{ns}/nginx"] == ["allow", "deny"]

    # Writes that change no report: the same apply again (the API server stores nothing, no event),
    # and the same reports applied by another field manager (a MODIFIED event: a new resourceVersion
    # and managedFields, the report as it was).
    modified_before = events(server, VULNS, "MODIFIED") + events(server, AUDITS, "MODIFIED")
    version = await put(api, single_critical(ns, "nginx"))
    assert await put(api, single_critical(ns, "nginx")) == version
    assert await put(api, single_critical(ns, "nginx"), manager="gitops") != version
    await put(api, nginx_audit(ns, "nginx"), manager="gitops")

    final = without_barriers(await barrier(api, db, ns))
    assert events(server, VULNS, "MODIFIED") + events(server, AUDITS, "MODIFIED") >= modified_before + 2
    assert final == {
        f"{VULNS}/{ns}/nginx": ["allow", "deny"],
        f"{AUDITS}/{ns}/nginx": ["warn"],
        f"{VULNS}/{ns}/catalog": ["deny"],
        f"{AUDITS}/{ns}/my-pod": ["warn"],
    }
    with sqlite3.connect(db) as conn:
        (violations,) = conn.execute(
            "SELECT v.violations FROM evidence e JOIN verdicts v ON v.evidence_id = e.id"
            " WHERE e.source LIKE ? AND v.decision = 'deny'",
            (f"watch {VULNS}.{GROUP} {ns}/nginx@%",),
        ).fetchone()
    assert "fixable_critical_high_cves" in violations
    assert await readiness(server) == "ok"


async def test_a_restarted_tribunal_judges_what_changed_while_it_was_down_and_nothing_twice(
    api: client.ApiClient, ns: str, start_tribunal: StartTribunal, tmp_path: Path
) -> None:
    db = tmp_path / "tribunal.db"
    first = await start_tribunal(db)
    await put(api, no_vulnerabilities(ns, "web"))
    await put(api, no_vulnerabilities(ns, "api"))
    await put(api, nginx_audit(ns, "web"))
    before = without_barriers(await barrier(api, db, ns))
    assert before == {
        f"{VULNS}/{ns}/web": ["allow"],
        f"{VULNS}/{ns}/api": ["allow"],
        f"{AUDITS}/{ns}/web": ["warn"],
    }
    await first.stop()

    # While Tribunal is down: a report changes, one is added, one is re-applied unchanged.
    await put(api, single_critical(ns, "api"))
    await put(api, many_vulnerabilities(ns, "catalog"))
    await put(api, no_vulnerabilities(ns, "web"), manager="gitops")
    assert without_barriers(verdicts(db, ns)) == before

    listing = await client.CustomObjectsApi(api).list_cluster_custom_object(GROUP, VERSION, VULNS)
    names = {f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in listing["items"]}
    assert {f"{ns}/web", f"{ns}/api", f"{ns}/catalog"} <= names
    second = await start_tribunal(db)
    await until(db, ns, lambda v: f"{VULNS}/{ns}/catalog" in v and len(v[f"{VULNS}/{ns}/api"]) == 2)
    after = without_barriers(await barrier(api, db, ns))
    assert events(second, VULNS, "LISTED") >= len(names)  # all seen again, web too
    assert after[f"{VULNS}/{ns}/api"] == ["allow", "deny"]
    assert after[f"{VULNS}/{ns}/catalog"] == ["deny"]
    assert after[f"{VULNS}/{ns}/web"] == ["allow"]  # listed again, unchanged: not judged twice
    assert after[f"{AUDITS}/{ns}/web"] == ["warn"]
    assert len(after) == 4


async def test_a_watch_the_api_server_ends_is_resumed_from_where_it_was_without_listing_again(
    api: client.ApiClient,
    ns: str,
    control_plane: ControlPlane,
    start_tribunal: StartTribunal,
    tmp_path: Path,
) -> None:
    await put(api, no_vulnerabilities(ns, "web"))
    in_cluster = len(
        (await client.CustomObjectsApi(api).list_cluster_custom_object(GROUP, VERSION, VULNS))["items"]
    )
    db = tmp_path / "tribunal.db"
    server = await start_tribunal(db, watch_seconds=1)
    await until(db, ns, lambda v: f"{VULNS}/{ns}/web" in v)

    # The API server ends each watch after a second; Tribunal resumes it from the resourceVersion of
    # the last event or bookmark. Three watches ended, then reports are added and changed.
    await watches_ended_since(control_plane, await watches_ended(control_plane, VULNS), 3)
    await put(api, many_vulnerabilities(ns, "catalog"))
    await put(api, single_critical(ns, "web"))
    # And resumed twice more, with those events behind it.
    await watches_ended_since(control_plane, await watches_ended(control_plane, VULNS), 2)
    await put(api, pod_audit(ns, "my-pod"))

    after = without_barriers(await barrier(api, db, ns))
    assert after == {
        f"{VULNS}/{ns}/web": ["allow", "deny"],
        f"{VULNS}/{ns}/catalog": ["deny"],
        f"{AUDITS}/{ns}/my-pod": ["warn"],
    }
    # Listed once, at start: every watch after was resumed, none refused (410) or failed.
    assert events(server, VULNS, "LISTED") == in_cluster
    assert failures(server) == 0


async def test_the_watch_survives_an_api_server_restart(
    api: client.ApiClient,
    ns: str,
    control_plane: ControlPlane,
    start_tribunal: StartTribunal,
    tmp_path: Path,
) -> None:
    db = tmp_path / "tribunal.db"
    server = await start_tribunal(db)
    await put(api, no_vulnerabilities(ns, "web"))
    await put(api, pod_audit(ns, "my-pod"))
    before = await until(db, ns, lambda v: len(v) == 2)
    assert before == {f"{VULNS}/{ns}/web": ["allow"], f"{AUDITS}/{ns}/my-pod": ["warn"]}

    # In a thread: Tribunal's event loop runs on, and its watches see the API server go and come back.
    await control_plane.restart_apiserver_async()

    await put(api, many_vulnerabilities(ns, "catalog"))
    await put(api, single_critical(ns, "web"))
    await put(api, nginx_audit(ns, "nginx"))
    # The watch may be listing again after a backoff (doubling up to 30 s) while the API server starts.
    await until(db, ns, lambda v: len(v) == 4 and len(v[f"{VULNS}/{ns}/web"]) == 2, seconds=120)
    after = without_barriers(await barrier(api, db, ns, seconds=120))
    assert after == {
        f"{VULNS}/{ns}/web": ["allow", "deny"],
        f"{AUDITS}/{ns}/my-pod": ["warn"],
        f"{VULNS}/{ns}/catalog": ["deny"],
        f"{AUDITS}/{ns}/nginx": ["warn"],
    }

    async def ready() -> bool:
        return await readiness(server) == "ok"

    await eventually(ready, 60, "the watch ready again (a listing succeeded)")
    assert failures(server) >= 1  # it did see the API server go: the outage was real
