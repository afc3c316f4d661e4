"""The admission webhook over real HTTPS on loopback: every shared review answered correctly, bad bodies
refused with 400 while the server keeps serving, enforcement modes, exemptions, failure policy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import (
    FIXTURES,
    POLICY_DIR,
    expected_decisions,
    needs_shared,
    pod,
    review,
    shared_fixtures,
)
from tests.integration.conftest import StartServer

DENY = {"deny"}
PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}
RESTRICTED_OK = {
    "name": "app",
    "image": "nginx:1.27",
    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
    "securityContext": {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


async def post(http: aiohttp.ClientSession, url: str, body: Any, **kw: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = kw.pop("headers", {"Content-Type": "application/json"})
    async with http.post(f"{url}/validate", data=data, headers=headers, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


@needs_shared
async def test_every_shared_review_gets_a_well_formed_answer(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, recorder = await start_server(exempt_namespaces=[])
    expected = expected_decisions()
    label_allowed = {"deny": False, "violation": True, "allow": True, "-": True}
    for path in shared_fixtures("admission", ".json"):
        doc = json.loads(path.read_text())
        status, answer = await post(http, server.url, doc)
        assert status == 200, path.name
        assert answer["apiVersion"] == doc["apiVersion"] and answer["kind"] == "AdmissionReview"
        response = answer["response"]
        assert response["uid"] == doc["request"]["uid"], path.name
        assert response["allowed"] is label_allowed[expected[path.name]], path.name
        assert response["auditAnnotations"]["policy-revision"]
        if expected[path.name] == "deny":
            assert response["status"]["code"] == 403
            assert response["status"]["message"].startswith("denied by Tribunal")
        if expected[path.name] == "violation":
            assert response["warnings"], path.name
    assert len(await recorder.wait_for(len(expected))) == len(expected)


@needs_shared
@pytest.mark.parametrize(
    ("fixture", "policy"),
    [
        ("gk-privileged-disallowed.json", "privileged_containers"),
        ("kubewarden-privileged-container.json", "privileged_containers"),
        ("gk-host-filesystem-disallowed.json", "host_path_volumes"),
        ("gk-users-disallowed.json", "run_as_root_user"),
    ],
)
async def test_privileged_hostpath_and_root_pods_are_denied_by_their_policy(
    start_server: StartServer,
    http,
    fixture: str,
    policy: str,  # type: ignore[no-untyped-def]
) -> None:
    server, _ = await start_server(exempt_namespaces=[])
    doc = json.loads((FIXTURES / "admission" / fixture).read_text())
    status, answer = await post(http, server.url, doc)
    assert status == 200
    assert answer["response"]["allowed"] is False
    assert f"[{policy}]" in answer["response"]["status"]["message"]
    assert policy in answer["response"]["auditAnnotations"]["violations"].split(",")


async def test_compliant_pod_is_allowed_without_warnings(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _recorder = await start_server()
    doc = review(pod(RESTRICTED_OK, securityContext={"runAsNonRoot": True}), uid="ok-1")
    status, answer = await post(http, server.url, doc)
    assert status == 200
    annotations = answer["response"]["auditAnnotations"]
    # The dryrun-by-default checks (docs/policies.md) are recorded in the audit log, and change nothing.
    recorded_only = {"default_namespace", "image_digest", "probes", "service_account_token"}
    assert set(annotations.pop("violations", "").split(",")) - {""} <= recorded_only
    assert answer["response"] == {
        "uid": "ok-1",
        "allowed": True,
        "auditAnnotations": {"policy-revision": annotations["policy-revision"], "decision": "allow"},
    }


async def test_warn_policies_allow_with_warnings(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server()
    latest = {**RESTRICTED_OK, "image": "nginx:latest"}
    status, answer = await post(http, server.url, review(pod(latest), uid="w-1"))
    response = answer["response"]
    assert status == 200 and response["allowed"] is True
    assert any(w.startswith("[image_tag] ") for w in response["warnings"])
    assert response["auditAnnotations"]["decision"] == "warn"


async def test_dryrun_enforcement_records_only(start_server: StartServer, http, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "enforcement.yaml").write_text(
        "policies:\n  privileged_containers: dryrun\nnamespaces:\n  sandbox:\n    '*': dryrun\n"
    )
    server, recorder = await start_server(rules_dir=rules)
    privileged_only = {
        **RESTRICTED_OK,
        "securityContext": {**RESTRICTED_OK["securityContext"], "privileged": True},
    }
    _status, answer = await post(http, server.url, review(pod(privileged_only), uid="d-1"))
    assert answer["response"]["allowed"] is True
    assert "warnings" not in answer["response"]
    # Everything in `sandbox` is dry-run, even a root container that denies elsewhere.
    root = {**RESTRICTED_OK, "securityContext": {**RESTRICTED_OK["securityContext"], "runAsUser": 0}}
    _, in_sandbox = await post(http, server.url, review(pod(root), uid="d-2", namespace="sandbox"))
    _, in_default = await post(http, server.url, review(pod(root), uid="d-3"))
    assert in_sandbox["response"]["allowed"] is True
    assert in_default["response"]["allowed"] is False
    recorded = {r.evidence.id: r.verdict for r in await recorder.wait_for(3)}
    assert [
        v.enforcement.value for v in recorded["d-1"].violations if v.policy == "privileged_containers"
    ] == ["dryrun"]


async def test_global_dry_run_allows_and_says_what_it_would_do(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server(dry_run=True)
    _, answer = await post(http, server.url, review(pod(PRIVILEGED), uid="g-1"))
    assert answer["response"]["allowed"] is True
    assert answer["response"]["auditAnnotations"]["dry-run"] == "would deny"


async def test_dry_run_request_is_judged_but_not_recorded(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, recorder = await start_server()
    doc = review(pod(PRIVILEGED), uid="dr-1")
    doc["request"]["dryRun"] = True
    _, answer = await post(http, server.url, doc)
    assert answer["response"]["allowed"] is False
    _, _ = await post(http, server.url, review(pod(PRIVILEGED), uid="dr-2"))
    assert [r.evidence.id for r in await recorder.wait_for(1)] == ["dr-2"]


async def test_v1beta1_is_answered_in_kind(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server()
    doc = review(pod(PRIVILEGED), uid="b-1", api_version="admission.k8s.io/v1beta1")
    _, answer = await post(http, server.url, doc)
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1"
    assert answer["response"]["uid"] == "b-1" and answer["response"]["allowed"] is False


async def test_exempt_namespaces_users_and_groups(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, recorder = await start_server(
        namespace="tribunal-system",
        exempt_users=["system:serviceaccount:ci:deployer"],
        exempt_groups=["breakglass"],
    )
    cases = {
        "kube-system": review(pod(PRIVILEGED), uid="e-1", namespace="kube-system"),
        "own": review(pod(PRIVILEGED), uid="e-2", namespace="tribunal-system"),
        "user": review(pod(PRIVILEGED), uid="e-3"),
        "group": review(pod(PRIVILEGED), uid="e-4"),
    }
    cases["user"]["request"]["userInfo"] = {"username": "system:serviceaccount:ci:deployer"}
    cases["group"]["request"]["userInfo"] = {"username": "alice", "groups": ["dev", "breakglass"]}
    for name, doc in cases.items():
        _, answer = await post(http, server.url, doc)
        assert answer["response"]["allowed"] is True, name
        assert "exempt" in answer["response"]["auditAnnotations"], name
    _, judged = await post(http, server.url, review(pod(PRIVILEGED), uid="e-5"))
    assert judged["response"]["allowed"] is False
    assert [r.evidence.id for r in await recorder.wait_for(1)] == ["e-5"]


def _bad_bodies(valid: bytes) -> dict[str, tuple[bytes, dict[str, str]]]:
    json_type = {"Content-Type": "application/json"}
    wrong_kind = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}).encode()
    falco = json.dumps(
        {"rule": "x", "priority": "Warning", "output": "o", "time": "2024-01-01T00:00:00Z"}
    ).encode()
    no_uid = json.loads(valid)
    del no_uid["request"]["uid"]
    bad_op = json.loads(valid)
    bad_op["request"]["operation"] = "EXPLODE"
    deep: Any = {}
    node = deep
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    deep_review = json.loads(valid)
    deep_review["request"]["object"]["metadata"]["annotations"] = deep
    return {
        "empty": (b"", json_type),
        "not json": (b"hello", json_type),
        "truncated": (valid[: len(valid) // 2], json_type),
        "json array": (b"[1, 2]", json_type),
        "wrong kind": (wrong_kind, json_type),
        "falco alert": (falco, json_type),
        "no request": (
            json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
            json_type,
        ),
        "no uid": (json.dumps(no_uid).encode(), json_type),
        "bad operation": (json.dumps(bad_op).encode(), json_type),
        "bad apiVersion": (valid.replace(b"admission.k8s.io/v1", b"admission.k8s.io/v9"), json_type),
        "too deep": (json.dumps(deep_review).encode(), json_type),
        "oversized": (b'{"kind": "AdmissionReview", "pad": "' + b"x" * 300_000 + b'"}', json_type),
        "wrong content type": (valid, {"Content-Type": "text/plain"}),
    }


async def test_malformed_bodies_get_400_and_the_server_keeps_serving(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server(max_request_bytes=256 * 1024)
    valid = json.dumps(review(pod(PRIVILEGED), uid="v-0")).encode()
    for i, (name, (body, headers)) in enumerate(_bad_bodies(valid).items()):
        status, error = await post(http, server.url, body, headers=headers)
        assert status == 400, name
        assert isinstance(error["error"], str) and error["error"], name
        good = json.loads(valid)
        good["request"]["uid"] = f"v-{i + 1}"
        status, answer = await post(http, server.url, good)
        assert status == 200 and answer["response"]["uid"] == f"v-{i + 1}", f"after {name}"
    async with http.get(f"{server.url}/metrics") as resp:
        metrics = await resp.text()
    assert f"tribunal_admission_invalid_requests_total {float(len(_bad_bodies(valid)))}" in metrics


async def test_errors_name_the_field(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server()
    doc = review(pod(PRIVILEGED), uid="f-1")
    doc["request"]["operation"] = "EXPLODE"
    status, error = await post(http, server.url, doc)
    assert status == 400
    assert error["field"] == "request.operation"
    # Refused before judging, so no answer (the failure policy's, an exempt one) can echo it.
    for namespace in ("shop", "kube-system"):
        odd = review(pod(PRIVILEGED), uid="f-2", namespace=namespace, api_version="admission.k8s.io/v9")
        status, error = await post(http, server.url, odd)
        assert status == 400 and error["field"] == "apiVersion", namespace


async def test_health_readiness_and_metrics(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server()
    await post(http, server.url, review(pod(PRIVILEGED), uid="m-1"))
    async with http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200
    async with http.get(f"{server.url}/readyz") as resp:
        body = await resp.json()
        assert resp.status == 200 and body["ready"] is True and body["checks"]["policies"] == "ok"
    async with http.get(f"{server.url}/metrics") as resp:
        text = await resp.text()
    assert 'tribunal_admission_requests_total{decision="deny"} 1.0' in text
    assert 'tribunal_admission_request_seconds_count{decision="deny"} 1.0' in text
    assert 'tribunal_policy_info{engine="regorus",revision=' in text
    assert "tribunal_recorder_queue " in text and "tribunal_recorder_failed_total 0.0" in text
    for _ in range(100):  # the verdict is written in the background
        if "tribunal_recorder_written_total 1.0" in text:
            break
        await asyncio.sleep(0.05)
        async with http.get(f"{server.url}/metrics") as resp:
            text = await resp.text()
    assert "tribunal_recorder_written_total 1.0" in text


async def test_a_bad_policy_edit_is_reported_and_the_last_good_revision_serves(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, tmp_path: Path
) -> None:
    import shutil

    policies = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, policies)
    server, _ = await start_server(policy_dir=policies)
    (policies / "admission" / "broken.rego").write_text(
        "package tribunal.admission.broken\nviolations contains x if {\n"
    )
    for _ in range(100):
        async with http.get(f"{server.url}/readyz") as resp:
            body = await resp.json()
        if body["checks"]["policy-reload"] != "ok":
            break
        await asyncio.sleep(0.05)
    assert resp.status == 200 and "broken.rego" in body["checks"]["policy-reload"]
    _, answer = await post(http, server.url, review(pod(PRIVILEGED), uid="r-1"))
    assert answer["response"]["allowed"] is False


async def test_plain_http_without_a_certificate(start_server: StartServer) -> None:
    server, _ = await start_server(tls=False)
    assert server.url.startswith("http://")
    async with aiohttp.ClientSession() as session:
        status, answer = await post(session, server.url, review(pod(PRIVILEGED), uid="p-1"))
    assert status == 200 and answer["response"]["allowed"] is False


async def test_verdicts_are_recorded_in_the_store_and_read_back(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server(store=True)
    await post(http, server.url, review(pod(PRIVILEGED), uid="s-1"))
    await post(
        http,
        server.url,
        review(pod(RESTRICTED_OK, name="api", securityContext={"runAsNonRoot": True}), uid="s-2"),
    )
    body: dict[str, Any] = {}
    for _ in range(200):  # recording is asynchronous
        async with http.get(f"{server.url}/verdicts", params={"kind": "admission"}) as resp:
            body = await resp.json()
        if len(body["items"]) == 2:
            break
        await asyncio.sleep(0.02)
    decisions = {item["evidence_id"]: item["decision"] for item in body["items"]}
    assert decisions == {"s-1": "deny", "s-2": "allow"}
    async with http.get(f"{server.url}/findings", params={"policy": "privileged_containers"}) as resp:
        findings = await resp.json()
    assert [f["status"] for f in findings["items"]] == ["open"]
    async with http.get(f"{server.url}/reports/compliance", params={"framework": "pss-baseline"}) as resp:
        report = await resp.json()
    assert resp.status == 200
    failing = {c["id"]: c for c in report["controls"] if c["status"] == "fail"}
    privileged = failing["pss-baseline:privileged-containers"]
    resources = [r for scope in privileged["scopes"] for r in scope["failing"]]
    assert [(r["subject_key"], r["evidence_ids"][0]) for r in resources] == [("default/Pod/web", "s-1")]
