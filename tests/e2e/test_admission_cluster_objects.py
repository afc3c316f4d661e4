"""RBAC objects and Services reach Tribunal through the chart's webhook registration, called by a real
kube-apiserver: a ClusterRole with a wildcard verb is admitted with Tribunal's warning, a Service with
externalIPs is refused, and the API server's own system:* roles never wait on Tribunal."""

from __future__ import annotations

import uuid

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.e2e.conftest import StartTribunal

pytestmark = pytest.mark.e2e


async def test_a_wildcard_cluster_role_is_warned_and_a_system_one_is_not_sent(
    api: client.ApiClient, tribunal: StartTribunal
) -> None:
    published = await tribunal()
    rbac = client.RbacAuthorizationV1Api(api)
    suffix = uuid.uuid4().hex[:8]
    system = {
        "metadata": {"name": f"system:e2e-{suffix}"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }
    wildcard = {
        "metadata": {"name": f"e2e-wildcard-{suffix}"},
        "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}],
    }
    try:
        _, status, headers = await rbac.create_cluster_role_with_http_info(system)
        assert status == 201 and "Warning" not in headers  # matchConditions: never sent
        _, status, headers = await rbac.create_cluster_role_with_http_info(wildcard)
        assert status == 201  # rbac_wildcards warns by default
        warnings = headers.getall("Warning", [])
        assert any("[rbac_wildcards]" in w for w in warnings), warnings
        [record] = await published.recorder.wait_for(1)
        assert record.evidence.subject.workload_kind == "ClusterRole"
        assert record.evidence.subject.workload_name == wildcard["metadata"]["name"]
        assert record.verdict.decision.value == "warn"
    finally:
        for name in (system["metadata"]["name"], wildcard["metadata"]["name"]):
            try:
                await rbac.delete_cluster_role(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise


async def test_a_service_with_external_ips_is_refused(
    api: client.ApiClient, namespace: str, tribunal: StartTribunal
) -> None:
    await tribunal()
    core = client.CoreV1Api(api)
    service = {
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}, "externalIPs": ["203.0.113.7"]},
    }
    with pytest.raises(ApiException) as refused:
        await core.create_namespaced_service(namespace, service)
    assert refused.value.status == 403
    assert "[service_external_ips]" in str(refused.value.body)
    del service["spec"]["externalIPs"]
    created = await core.create_namespaced_service(namespace, service)
    assert created.spec.type == "ClusterIP"
