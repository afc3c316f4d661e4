"""End-to-end fixtures: one real control plane per session (tests/e2e/control_plane.py), an admin
client for it, the chart as Helm renders it, and Tribunal serving the cluster's admission webhook over
TLS with a certificate from the cluster's CA, reached through its Service as in a cluster."""

from __future__ import annotations

import asyncio
import base64
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient

from tests import components
from tests.conftest import POLICY_DIR, PROJECT, RULES_DIR
from tests.e2e.control_plane import ControlPlane, host_address, running_control_plane
from tests.integration.conftest import MemoryRecorder
from tribunal.app import build_server
from tribunal.server import Server
from tribunal.settings import Settings

CHART = PROJECT / "helm" / "tribunal"
RELEASE_NAMESPACE = "tribunal-system"
SERVICE_HOST = f"tribunal.{RELEASE_NAMESPACE}.svc"


RESTRICTED_CONTAINER: dict[str, Any] = {
    "name": "app",
    "image": "ghcr.io/example/checkout:1.4.2",
    "resources": {
        "limits": {"cpu": "500m", "memory": "256Mi"},
        "requests": {"cpu": "100m", "memory": "128Mi"},
    },
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
}
RESTRICTED_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def compliant_pod(name: str = "web", **spec: Any) -> dict[str, Any]:
    """A pod every admission policy admits (Pod Security restricted, limits, a pinned tag)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"securityContext": RESTRICTED_POD_SECURITY, "containers": [RESTRICTED_CONTAINER], **spec},
    }


def render_chart(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object of the chart, rendered by Helm's own engine as ``helm install tribunal`` would."""
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values or {}, name="tribunal", namespace=RELEASE_NAMESPACE, is_install=True)
    return [doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc]


def chart_objects(kind: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [o for o in render_chart(values) if o["kind"] == kind]


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    with running_control_plane() as plane:
        yield plane


@pytest.fixture
async def api(control_plane: ControlPlane) -> AsyncIterator[client.ApiClient]:
    """A kubernetes-asyncio client authenticated as the test's admin (system:masters)."""
    configuration = client.Configuration()
    await config.load_kube_config(str(control_plane.admin_kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
async def namespace(api: client.ApiClient) -> AsyncIterator[str]:
    """A fresh namespace (its `default` ServiceAccount too), deleted after the test."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    await core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        await core.delete_namespace(name)


async def ensure_namespace(api: client.ApiClient, name: str) -> None:
    try:
        await client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    except ApiException as exc:
        if exc.status != 409:
            raise


async def apply(api: client.ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply ``obj`` as the test's admin (created, or updated where it exists)."""
    dynamic = await DynamicClient(api)
    resource = await dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    applied = await dynamic.server_side_apply(
        resource, body=obj, field_manager="tribunal-e2e", force_conflicts=True
    )
    return dict(applied.to_dict())


@dataclass
class Published:
    """Tribunal serving the cluster's webhook: its server, what it recorded, and its address."""

    server: Server
    recorder: MemoryRecorder
    address: str
    port: int


StartTribunal = Callable[..., Awaitable[Published]]


@pytest.fixture(scope="session")
def webhook_pair(control_plane: ControlPlane) -> tuple[Path, Path]:
    """Tribunal's serving certificate, issued by the cluster's CA for its Service's name."""
    pair = control_plane.ca.issue("tribunal-webhook", hosts=[SERVICE_HOST, f"{SERVICE_HOST}.cluster.local"])
    return pair.cert, pair.key


def ca_bundle(control_plane: ControlPlane) -> str:
    return base64.b64encode(control_plane.ca.pem).decode()


@pytest.fixture
async def tribunal(
    api: client.ApiClient, control_plane: ControlPlane, webhook_pair: tuple[Path, Path], tmp_path: Path
) -> AsyncIterator[StartTribunal]:
    """``await tribunal(**settings)``: Tribunal serving /validate over TLS on this machine's address,
    published as the chart's Service (its EndpointSlice and Endpoints point here), with the chart's
    ValidatingWebhookConfiguration installed (``webhook_values`` for the chart's ``webhook`` values).
    Everything is stopped and removed after the test."""
    address = host_address()
    if address is None:
        components.missing("a non-loopback address", "the API server reaches webhooks through Endpoints")
    started: list[Server] = []
    admission = client.AdmissionregistrationV1Api(api)

    async def start(
        webhook_values: dict[str, Any] | None = None, port: int = 0, **overrides: Any
    ) -> Published:
        port = port or components.free_port()
        values: dict[str, Any] = {
            "host": address,
            "port": port,
            "policy_dir": POLICY_DIR,
            "rules_dir": RULES_DIR,
            "tls_cert_file": webhook_pair[0],
            "tls_key_file": webhook_pair[1],
            "database_url": f"sqlite+aiosqlite:///{tmp_path / f'tribunal-{len(started)}.db'}",
            "actions": {"state_dir": tmp_path / f"state-{len(started)}"},
            "judge_workers": 0,
            "auth": {"anonymous": True},  # the tests of authentication set their own
            **overrides,
        }
        recorder = MemoryRecorder()
        server = build_server(Settings.model_validate(values), recorder=recorder)
        await server.start()
        started.append(server)
        await publish(api, address, port)
        chart_values = {
            "tls": {"certManager": {"enabled": False}, "caBundle": ca_bundle(control_plane)},
            "webhook": webhook_values or {},
        }
        for obj in chart_objects("ValidatingWebhookConfiguration", chart_values):
            await apply(api, obj)
        return Published(server, recorder, address, port)

    yield start
    for server in started:
        await server.stop()
    # The chart refuses to render without cert-manager unless it has a caBundle.
    rendered = {"tls": {"certManager": {"enabled": False}, "caBundle": ca_bundle(control_plane)}}
    for obj in chart_objects("ValidatingWebhookConfiguration", rendered):
        try:
            await admission.delete_validating_webhook_configuration(obj["metadata"]["name"])
        except ApiException as exc:
            if exc.status != 404:
                raise


async def publish(api: client.ApiClient, address: str, port: int) -> None:
    """The chart's Service for Tribunal, and the endpoints a controller would give it: this machine."""
    await ensure_namespace(api, RELEASE_NAMESPACE)
    (service,) = chart_objects("Service")
    service["spec"].pop("selector", None)  # no pods run here: the endpoints are written by hand
    await apply(api, service)
    target = service["spec"]["ports"][0]
    await apply(
        api,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "tribunal-e2e",
                "namespace": RELEASE_NAMESPACE,
                "labels": {"kubernetes.io/service-name": service["metadata"]["name"]},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": target.get("name"), "port": port, "protocol": "TCP"}],
        },
    )
    await apply(
        api,
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": service["metadata"]["name"], "namespace": RELEASE_NAMESPACE},
            "subsets": [
                {
                    "addresses": [{"ip": address}],
                    "ports": [{"name": target.get("name"), "port": port, "protocol": "TCP"}],
                }
            ],
        },
    )


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """Returns once ``check()`` holds; fails the test with ``what`` after ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"not within {seconds} s: {what}")


def established(crd: Any) -> bool:
    conditions = (crd.status and crd.status.conditions) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


async def install_crds(control_plane: ControlPlane, crds: list[dict[str, Any]]) -> list[str]:
    """Create ``crds`` (an existing one is kept) with the admin's rights and wait until each is
    Established and served (its first version lists: storage may still be initializing after
    Established); their plurals, in order."""
    configuration = client.Configuration()
    await config.load_kube_config(str(control_plane.admin_kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        extensions = client.ApiextensionsV1Api(api)
        objects = client.CustomObjectsApi(api)
        for crd in crds:
            try:
                await extensions.create_custom_resource_definition(crd)
            except ApiException as exc:
                if exc.status != 409:
                    raise

        async def served(crd: dict[str, Any]) -> bool:
            if not established(await extensions.read_custom_resource_definition(crd["metadata"]["name"])):
                return False
            group, version = crd["spec"]["group"], crd["spec"]["versions"][0]["name"]
            try:
                await objects.list_cluster_custom_object(group, version, crd["spec"]["names"]["plural"])
            except ApiException as exc:
                if exc.status not in (404, 429, 503):
                    raise
                return False
            return True

        for crd in crds:
            await eventually(functools.partial(served, crd), 60, f"CRD {crd['metadata']['name']} served")
    return [crd["spec"]["names"]["plural"] for crd in crds]
