"""Tokens checked by the real API server, as kube-rbac-proxy checks them: Tribunal runs with a token of
the chart's ServiceAccount and only the rights the chart gives it (system:auth-delegator), and callers
are ServiceAccounts bound to the chart's reader, metrics-reader and ingester ClusterRoles."""

from __future__ import annotations

import json
import ssl
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from tests.conftest import falco_alert
from tests.e2e.conftest import (
    RELEASE_NAMESPACE,
    SERVICE_HOST,
    StartTribunal,
    apply,
    ensure_namespace,
    render_chart,
)
from tests.e2e.control_plane import ControlPlane

pytestmark = pytest.mark.e2e


async def service_account_token(api: client.ApiClient, namespace: str, name: str) -> str:
    """A token of ServiceAccount ``namespace/name`` (created if missing) from the TokenRequest API."""
    await ensure_namespace(api, namespace)
    await apply(
        api,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
    )
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    answer = await client.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
    return str(answer.status.token)


async def bind(api: client.ApiClient, cluster_role: str, namespace: str, name: str) -> None:
    await apply(
        api,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"e2e-{name}-{cluster_role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )


@pytest.fixture
async def guarded_tribunal(
    api: client.ApiClient, control_plane: ControlPlane, tribunal: StartTribunal, tmp_path: Path
) -> str:
    """Tribunal with TRIBUNAL_AUTH__KUBERNETES, talking to the API server as the chart's
    ServiceAccount with the chart's rights (its auth ClusterRoles and bindings as Helm renders them)."""
    for obj in render_chart():
        if obj["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
            await ensure_namespace(api, RELEASE_NAMESPACE)
            await apply(api, obj)
    token = await service_account_token(api, RELEASE_NAMESPACE, "tribunal")
    kubeconfig = control_plane.write_kubeconfig(tmp_path / "tribunal.kubeconfig", token=token)
    published = await tribunal(
        auth={"kubernetes": True, "cache_seconds": 0},
        actions={"state_dir": tmp_path / "state", "kubeconfig": kubeconfig},
    )
    return f"https://{published.address}:{published.port}"


@pytest.fixture
async def https(webhook_pair: tuple[Path, Path]) -> Any:
    context = ssl.create_default_context(cafile=str(webhook_pair[0].parent / "ca.crt"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield session


async def call(
    https: aiohttp.ClientSession, method: str, url: str, token: str | None = None, **kw: Any
) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with https.request(method, url, headers=headers, server_hostname=SERVICE_HOST, **kw) as response:
        return response.status


async def test_the_chart_roles_decide_who_may_read_scrape_and_ingest(
    api: client.ApiClient, guarded_tribunal: str, https: aiohttp.ClientSession
) -> None:
    suffix = uuid.uuid4().hex[:6]
    callers = {
        "prometheus": "tribunal-metrics-reader",
        "auditor": "tribunal-reader",
        "trivy": "tribunal-ingester",
    }
    tokens = {}
    for name, role in callers.items():
        await bind(api, role, "e2e-callers", f"{name}-{suffix}")
        tokens[name] = await service_account_token(api, "e2e-callers", f"{name}-{suffix}")
    tokens["nobody"] = await service_account_token(api, "e2e-callers", f"nobody-{suffix}")
    url = guarded_tribunal
    alert = json.dumps(falco_alert()).encode()
    expected = {
        # (method, path): status for prometheus, auditor, trivy, nobody
        ("GET", "/metrics"): (200, 200, 403, 403),
        ("GET", "/verdicts"): (403, 200, 403, 403),
        ("GET", "/reports/compliance?framework=pss-baseline"): (403, 200, 403, 403),
        ("POST", "/ingest/falco"): (403, 403, 202, 403),
    }
    for (method, path), statuses in expected.items():
        got = []
        for name in ("prometheus", "auditor", "trivy", "nobody"):
            got.append(
                await call(https, method, url + path, tokens[name], data=alert if method == "POST" else None)
            )
        assert tuple(got) == statuses, (method, path, got)


async def test_tokens_the_api_server_does_not_accept_get_401(
    api: client.ApiClient, guarded_tribunal: str, https: aiohttp.ClientSession
) -> None:
    url = guarded_tribunal
    assert await call(https, "GET", f"{url}/metrics") == 401
    assert await call(https, "GET", f"{url}/metrics", "not-a-token") == 401
    # A real token for another audience is refused by the API server's own TokenReview.
    await ensure_namespace(api, "e2e-callers")
    await apply(
        api,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "aud", "namespace": "e2e-callers"},
        },
    )
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": ["vault"]},
    }
    answer = await client.CoreV1Api(api).create_namespaced_service_account_token(
        "aud", "e2e-callers", request
    )
    assert await call(https, "GET", f"{url}/metrics", answer.status.token) == 401
    # The open doors need nothing.
    assert await call(https, "GET", f"{url}/healthz") == 200
