"""The Kubernetes API, through kubernetes-asyncio, as the cluster actions need it: plain dicts in and
out, and errors as :class:`ActionError` (retriable on connection errors, timeouts, 429 and 5xx).

The only module that calls kubernetes-asyncio (which is untyped)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from tribunal.actions.base import PROTECTED_LABEL, ActionError, ActionSkipped, http_error
from tribunal.settings import ActionSettings

T = TypeVar("T")
MERGE_PATCH = "application/merge-patch+json"

# Owner kinds the annotate action follows and patches: apiVersion/kind -> (API class, read, patch).
_OWNERS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("apps/v1", "ReplicaSet"): ("AppsV1Api", "read_namespaced_replica_set", "patch_namespaced_replica_set"),
    ("apps/v1", "Deployment"): ("AppsV1Api", "read_namespaced_deployment", "patch_namespaced_deployment"),
    ("apps/v1", "StatefulSet"): (
        "AppsV1Api",
        "read_namespaced_stateful_set",
        "patch_namespaced_stateful_set",
    ),
    ("apps/v1", "DaemonSet"): ("AppsV1Api", "read_namespaced_daemon_set", "patch_namespaced_daemon_set"),
    ("batch/v1", "Job"): ("BatchV1Api", "read_namespaced_job", "patch_namespaced_job"),
    ("batch/v1", "CronJob"): ("BatchV1Api", "read_namespaced_cron_job", "patch_namespaced_cron_job"),
}


def owner_supported(api_version: str, kind: str) -> bool:
    return (api_version, kind) in _OWNERS


class KubeClient:
    """A kubernetes-asyncio ``ApiClient`` with the calls the actions make. ``request_timeout`` bounds
    each call (seconds)."""

    def __init__(self, api: Any, field_manager: str = "tribunal", request_timeout: float = 10.0) -> None:
        self.api = api
        self.field_manager = field_manager
        self.request_timeout = request_timeout
        self._core = client.CoreV1Api(api)
        self._apis: dict[str, Any] = {
            "CoreV1Api": self._core,
            "AppsV1Api": client.AppsV1Api(api),
            "BatchV1Api": client.BatchV1Api(api),
        }
        self._events = client.EventsV1Api(api)
        self._net = client.NetworkingV1Api(api)

    async def close(self) -> None:
        await self.api.close()

    async def _call(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_request_timeout", self.request_timeout)
        try:
            result = await fn(*args, **kwargs)
        except ApiException as exc:
            body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            raise http_error(f"kubernetes {what}", int(exc.status or 0), body) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ActionError(f"kubernetes {what}: {type(exc).__name__}: {exc}", retriable=True) from None
        if result is None:
            return {}
        sanitized: Any = self.api.sanitize_for_serialization(result)
        return sanitized if isinstance(sanitized, dict) else {}

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            f"get pod {namespace}/{name}", self._core.read_namespaced_pod, name, namespace
        )
        return result

    async def patch_pod(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            f"patch pod {namespace}/{name}",
            self._core.patch_namespaced_pod,
            name,
            namespace,
            patch,
            field_manager=self.field_manager,
            _content_type=MERGE_PATCH,
        )
        return result

    async def get_owner(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        api, read, _ = _OWNERS[(api_version, kind)]
        result: dict[str, Any] = await self._call(
            f"get {kind} {namespace}/{name}", getattr(self._apis[api], read), name, namespace
        )
        return result

    async def patch_owner(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        api, _, method = _OWNERS[(api_version, kind)]
        result: dict[str, Any] = await self._call(
            f"patch {kind} {namespace}/{name}",
            getattr(self._apis[api], method),
            name,
            namespace,
            patch,
            field_manager=self.field_manager,
            _content_type=MERGE_PATCH,
        )
        return result

    async def create_event(self, namespace: str, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            f"create event in {namespace}",
            self._events.create_namespaced_event,
            namespace,
            event,
            field_manager=self.field_manager,
        )
        return result

    async def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The NetworkPolicy, or None when there is none."""
        try:
            result: dict[str, Any] = await self._call(
                f"get networkpolicy {namespace}/{name}",
                self._net.read_namespaced_network_policy,
                name,
                namespace,
            )
        except ActionError as exc:
            if exc.status == 404:
                return None
            raise
        return result

    async def create_network_policy(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            f"create networkpolicy in {namespace}",
            self._net.create_namespaced_network_policy,
            namespace,
            body,
            field_manager=self.field_manager,
        )
        return result

    async def evict_pod(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            f"evict pod {namespace}/{name}",
            self._core.create_namespaced_pod_eviction,
            name,
            namespace,
            body,
        )
        return result

    async def delete_pod(self, namespace: str, name: str, grace_period_seconds: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            f"delete pod {namespace}/{name}",
            self._core.delete_namespaced_pod,
            name,
            namespace,
            grace_period_seconds=grace_period_seconds,
        )
        return result


class KubeConnector:
    """Connects on first use (so a service with no cluster rules never needs a kubeconfig): to
    ``kube_api_url`` when set, else in-cluster when running in a pod, else the kubeconfig."""

    def __init__(self, settings: ActionSettings, *, actions: bool = True) -> None:
        """``actions``: this connection runs the cluster actions, so ``settings.cluster`` gates it
        (the token reviews and the Trivy Operator watch connect whatever it says)."""
        self.settings = settings
        self.actions = actions
        self._client: KubeClient | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> KubeClient:
        async with self._lock:
            if self._client is None:
                self._client = await self._connect()
            return self._client

    async def _connect(self) -> KubeClient:
        if self.actions and not self.settings.cluster:
            raise ActionSkipped(
                "cluster actions are off (TRIBUNAL_ACTIONS__CLUSTER=false; `tribunal dev` acts on a "
                "cluster only when TRIBUNAL_ACTIONS__KUBECONFIG or TRIBUNAL_ACTIONS__CLUSTER=true names one)"
            )
        configuration = client.Configuration()
        try:
            if self.settings.kube_api_url:
                configuration.host = self.settings.kube_api_url.rstrip("/")
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=configuration)
            else:
                await config.load_kube_config(
                    config_file=str(self.settings.kubeconfig) if self.settings.kubeconfig else None,
                    context=self.settings.kube_context,
                    client_configuration=configuration,
                )
        except Exception as exc:  # kubernetes-asyncio raises ConfigException and file errors
            raise ActionError(f"kubernetes: no usable configuration: {exc}") from None
        return KubeClient(
            client.ApiClient(configuration),
            field_manager=self.settings.field_manager,
            request_timeout=self.settings.timeout_seconds,
        )

    async def close(self) -> None:
        if self._client is not None:
            client_, self._client = self._client, None
            await client_.close()


def pod_of(verdict_subject_namespace: str | None, pod: str | None) -> tuple[str, str]:
    """(namespace, pod) of a verdict's subject; ActionSkipped when it names no pod."""
    if not verdict_subject_namespace or not pod:
        raise ActionSkipped("the verdict names no pod to act on")
    return verdict_subject_namespace, pod


def is_protected(obj: dict[str, Any]) -> bool:
    """True when the object is labelled ``tribunal.io/protected=true``."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return str(labels.get(PROTECTED_LABEL, "")).lower() == "true"


async def owners_of(
    kube: KubeClient, namespace: str, pod: dict[str, Any], depth: int = 3
) -> list[dict[str, Any]]:
    """The pod's controlling owners, nearest first (ReplicaSet, then its Deployment...), following
    ``ownerReferences`` with ``controller: true`` through the kinds Tribunal can patch."""
    found: list[dict[str, Any]] = []
    current = pod
    for _ in range(depth):
        refs = (current.get("metadata") or {}).get("ownerReferences") or []
        ref = next((r for r in refs if r.get("controller")), None)
        if ref is None or not owner_supported(ref.get("apiVersion", ""), ref.get("kind", "")):
            break
        try:
            current = await kube.get_owner(ref["apiVersion"], ref["kind"], namespace, ref["name"])
        except ActionError as exc:
            if exc.status == 404:  # the owner is gone (being deleted): the pod is all there is
                break
            raise
        current.setdefault("apiVersion", ref["apiVersion"])
        current.setdefault("kind", ref["kind"])
        found.append(current)
    return found
