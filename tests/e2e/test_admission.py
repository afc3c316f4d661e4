"""Tribunal as the cluster's validating admission webhook, called by a real kube-apiserver through the
chart's ValidatingWebhookConfiguration (as Helm renders it, with the cluster CA's caBundle) and the
chart's Service: what a user of the cluster sees when creating, updating and debugging workloads."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.e2e.conftest import RESTRICTED_CONTAINER, Published, StartTribunal, compliant_pod
from tests.integration.conftest import MemoryRecorder

pytestmark = pytest.mark.e2e


def privileged_pod(name: str = "root-shell") -> dict[str, Any]:
    pod = compliant_pod(name)
    container = copy.deepcopy(RESTRICTED_CONTAINER)
    container["securityContext"] = {"privileged": True}
    pod["spec"]["containers"] = [container]
    return pod


def denial(exc: pytest.ExceptionInfo[ApiException]) -> str:
    """The message the API server returned for a refused request."""
    return str(exc.value.body)


def exempt_answers(published: Published) -> float:
    value = published.server.registry.get_sample_value(
        "tribunal_admission_requests_total", {"decision": "exempt"}
    )
    return value or 0.0


async def recorded_decisions(recorder: MemoryRecorder, count: int) -> list[tuple[str, str]]:
    records = await recorder.wait_for(count)
    return [
        (r.evidence.subject.workload_name or r.evidence.subject.pod or "", r.verdict.decision.value)
        for r in records
    ]


async def test_a_privileged_pod_is_refused_by_the_api_server_with_tribunals_message(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal
) -> None:
    published = await tribunal()
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as refused:
        await core.create_namespaced_pod(namespace, privileged_pod())
    assert refused.value.status == 403  # Forbidden, as Tribunal answers a denial
    message = denial(refused)
    assert 'admission webhook \\"validate.tribunal.io\\" denied the request' in message
    assert "[privileged_containers]" in message
    with pytest.raises(ApiException) as missing:
        await core.read_namespaced_pod("root-shell", namespace)
    assert missing.value.status == 404
    assert ("root-shell", "deny") in await recorded_decisions(published.recorder, 1)


async def test_a_compliant_deployment_is_created_and_warn_policies_arrive_as_api_warnings(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal
) -> None:
    published = await tribunal()
    apps = client.AppsV1Api(api)
    template = compliant_pod("checkout")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {"metadata": template["metadata"], "spec": template["spec"]},
        },
    }
    _, status, headers = await apps.create_namespaced_deployment_with_http_info(namespace, deployment)
    assert status == 201
    assert "Warning" not in headers, headers.getall("Warning", [])
    stored = await apps.read_namespaced_deployment("checkout", namespace)
    assert stored.spec.replicas == 2

    latest = compliant_pod("latest")
    latest["spec"]["containers"] = [{**RESTRICTED_CONTAINER, "image": "ghcr.io/example/checkout:latest"}]
    _, status, headers = await client.CoreV1Api(api).create_namespaced_pod_with_http_info(namespace, latest)
    assert status == 201  # warn-mode policy: admitted, with the warning shown by kubectl
    warnings = headers.getall("Warning", [])
    assert any("[image_tag]" in w for w in warnings), warnings
    decisions = dict(await recorded_decisions(published.recorder, 2))
    assert decisions == {"checkout": "allow", "latest": "warn"}


async def test_a_dry_run_is_judged_and_leaves_nothing_behind(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal
) -> None:
    published = await tribunal()
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as refused:
        await core.create_namespaced_pod(namespace, privileged_pod(), dry_run="All")
    assert "[privileged_containers]" in denial(refused)
    created = await core.create_namespaced_pod(namespace, compliant_pod("dry"), dry_run="All")
    assert created.metadata.name == "dry"
    assert (await core.list_namespaced_pod(namespace)).items == []
    # Judged (the denial above), yet neither recorded nor acted on: a dry run has no side effects.
    await core.create_namespaced_pod(namespace, compliant_pod("real"))
    assert [name for name, _ in await recorded_decisions(published.recorder, 1)] == ["real"]


async def test_exempt_namespaces_pass(api: client.ApiClient, tribunal: StartTribunal) -> None:
    """kube-system is never sent (the chart's namespaceSelector); a namespace exempt in Tribunal's
    settings is sent and admitted unjudged."""
    published = await tribunal(exempt_namespaces=["kube-system", "e2e-exempt"])
    core = client.CoreV1Api(api)
    await core.create_namespace({"metadata": {"name": "e2e-exempt"}})
    try:
        for ns in ("kube-system", "e2e-exempt"):
            created = await core.create_namespaced_pod(ns, privileged_pod())
            assert created.metadata.namespace == ns
            await core.delete_namespaced_pod("root-shell", ns)
    finally:
        await core.delete_namespace("e2e-exempt")
    assert exempt_answers(published) == 1  # e2e-exempt's; kube-system's never reached Tribunal
    assert published.recorder.records == []


async def test_adding_an_ephemeral_container_is_judged(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal
) -> None:
    """`kubectl debug` adds an ephemeral container through the pods/ephemeralcontainers subresource."""
    await tribunal()
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod(namespace, compliant_pod())
    debug = {"name": "debug", "image": "busybox:1.36", "securityContext": {"privileged": True}}
    current = await core.read_namespaced_pod("web", namespace)
    body = {"metadata": {"name": "web", "resourceVersion": current.metadata.resource_version},
            "spec": {"ephemeralContainers": [debug]}}  # fmt: skip
    with pytest.raises(ApiException) as refused:
        await core.patch_namespaced_pod_ephemeralcontainers("web", namespace, body)
    assert "[privileged_containers]" in denial(refused)
    harmless = {**debug, "securityContext": {**RESTRICTED_CONTAINER["securityContext"], "runAsNonRoot": True}}
    body["spec"]["ephemeralContainers"] = [harmless]
    patched = await core.patch_namespaced_pod_ephemeralcontainers("web", namespace, body)
    assert [c.name for c in patched.spec.ephemeral_containers] == ["debug"]


async def test_a_label_only_update_of_an_admitted_pod_is_not_judged_again(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal
) -> None:
    """As Pod Security Admission: a pod admitted before a policy was enforced keeps accepting label
    and annotation edits; a change to what the policies read is judged."""
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod(namespace, privileged_pod())  # before Tribunal is installed
    await tribunal()
    relabelled = await core.patch_namespaced_pod(
        "root-shell", namespace, {"metadata": {"labels": {"team": "shop"}, "annotations": {"owner": "alice"}}}
    )
    assert relabelled.metadata.labels["team"] == "shop"
    with pytest.raises(ApiException) as refused:
        await core.patch_namespaced_pod(
            "root-shell",
            namespace,
            {"spec": {"containers": [{"name": "app", "image": "ghcr.io/example/checkout:1.5.0"}]}},
        )
    assert "[privileged_containers]" in denial(refused)


async def create_as_the_failure_policy_says(core: client.CoreV1Api, namespace: str, admitted: bool) -> str:
    """Create a compliant pod while Tribunal cannot answer: admitted (Ignore), or refused with the API
    server's "failed calling webhook" (Fail), whose message is returned."""
    if admitted:
        created = await core.create_namespaced_pod(namespace, compliant_pod())
        assert created.metadata.name == "web"
        return ""
    with pytest.raises(ApiException) as refused:
        await core.create_namespaced_pod(namespace, compliant_pod())
    assert refused.value.status == 500
    assert "failed calling webhook" in denial(refused)
    return denial(refused)


@pytest.mark.parametrize(("failure_policy", "admitted"), [("Fail", False), ("Ignore", True)])
async def test_with_tribunal_stopped_the_failure_policy_decides(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal, failure_policy: str, admitted: bool
) -> None:
    published = await tribunal(webhook_values={"failurePolicy": failure_policy, "timeoutSeconds": 2})
    await published.server.stop()
    await create_as_the_failure_policy_says(client.CoreV1Api(api), namespace, admitted)


@pytest.mark.parametrize(("failure_policy", "admitted"), [("Fail", False), ("Ignore", True)])
async def test_a_tribunal_that_never_answers_gets_the_failure_policy_after_the_timeout(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal, failure_policy: str, admitted: bool
) -> None:
    """A hung Tribunal (the connection accepted, no answer ever) costs a request the webhook's
    timeoutSeconds, then the failurePolicy decides. The stall is a stand-in: a TCP listener on
    Tribunal's endpoint that never reads, since a real Tribunal cannot be made to hang."""
    published = await tribunal(webhook_values={"failurePolicy": failure_policy, "timeoutSeconds": 1})
    await published.server.stop()
    held: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    stall = await asyncio.start_server(never_answer, published.address, published.port)
    try:
        async with asyncio.timeout(30):  # the API server gives up after 1 s; this only bounds a hang
            message = await create_as_the_failure_policy_says(client.CoreV1Api(api), namespace, admitted)
        if not admitted:
            assert "deadline exceeded" in message or "timeout" in message.lower()
    finally:
        for writer in held:
            writer.close()
        stall.close()
        await stall.wait_closed()
