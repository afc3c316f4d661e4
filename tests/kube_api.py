"""A stand-in for the Kubernetes API server, kept only for the faults a real one cannot be made to
produce on demand: a 409 from a race, a 429 or 5xx that clears after some tries, a server that keeps
failing, a watch that ends or whose history is compacted (410). Everything a real API server can show
(what the cluster actions write, RBAC's 403, a PodDisruptionBudget's 429, 404s, admission) is tested
against the real kube-apiserver of tests/e2e, under the chart's RBAC.

aiohttp on loopback, serving the REST paths the cluster actions use, validating every object it is
sent (or that a patch produces) against the Kubernetes schemas with kubernetes-validate, and answering
409/429/500 on demand. Not a real API server: no admission, no controllers, no RBAC; just the
documented request and response shapes."""

from __future__ import annotations

import asyncio
import copy
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import kubernetes_validate
import orjson
from aiohttp import web

K8S_VERSION = "1.30.0"
MERGE_PATCH = "application/merge-patch+json"

# plural -> (apiVersion, kind) for namespaced objects served under /apis/<group>/<version>/
OWNER_KINDS = {
    "replicasets": ("apps/v1", "ReplicaSet"),
    "deployments": ("apps/v1", "Deployment"),
    "statefulsets": ("apps/v1", "StatefulSet"),
    "daemonsets": ("apps/v1", "DaemonSet"),
}


@dataclass
class Request:
    method: str
    path: str
    content_type: str
    body: Any
    query: dict[str, str]


@dataclass
class Failure:
    method: str
    path: re.Pattern[str]
    status: int
    times: int


@dataclass
class TestApiServer:
    """``pods``, ``owners``, ``network_policies`` hold objects by (namespace, name) [owners also by
    plural]; ``events`` what was created; ``requests`` every request in order; ``invalid`` the
    schema errors of rejected objects (a test asserts it is empty)."""

    __test__ = False  # not a pytest test class

    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    owners: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    network_policies: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    evictions: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    # Trivy Operator reports by (plural, namespace, name), and what the watch replays: (resourceVersion,
    # event type, plural, object); resourceVersions at or below ``history_floor`` are gone (410).
    reports: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    history_floor: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None
    _uids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _version: int = 0
    _watchers: list[tuple[str, asyncio.Queue[tuple[int, str, dict[str, Any]] | None]]] = field(
        default_factory=list
    )

    # -- set-up -------------------------------------------------------------------------------
    def add_pod(
        self,
        namespace: str,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        owner: tuple[str, str] | None = None,
        image: str = "nginx:1.27",
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": self._uid(),
            "labels": labels or {},
        }
        if owner:
            api_version, kind = next(v for v in OWNER_KINDS.values() if v[1] == owner[0])
            meta["ownerReferences"] = [
                {
                    "apiVersion": api_version,
                    "kind": kind,
                    "name": owner[1],
                    "uid": self._uid(),
                    "controller": True,
                }
            ]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": image}]},
        }
        self._check(pod)
        self.pods[(namespace, name)] = pod
        return pod

    def add_owner(
        self,
        plural: str,
        namespace: str,
        name: str,
        *,
        owner: tuple[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        api_version, kind = OWNER_KINDS[plural]
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": self._uid(),
            "labels": labels or {"app": "web"},
        }
        if owner:
            owner_api, owner_kind = next(v for v in OWNER_KINDS.values() if v[1] == owner[0])
            meta["ownerReferences"] = [
                {
                    "apiVersion": owner_api,
                    "kind": owner_kind,
                    "name": owner[1],
                    "uid": self._uid(),
                    "controller": True,
                }
            ]
        template = {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
        }
        obj = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": meta,
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
        }
        self._check(obj)
        self.owners[(plural, namespace, name)] = obj
        return obj

    def put_report(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a Trivy Operator report (as the operator does): ADDED or MODIFIED."""
        stored = copy.deepcopy(obj)
        meta = stored.setdefault("metadata", {})
        key = (plural, meta.get("namespace", ""), meta["name"])
        event = "MODIFIED" if key in self.reports else "ADDED"
        self._version += 1
        meta["resourceVersion"] = str(self._version)
        self.reports[key] = stored
        self._publish(plural, event, stored)
        return stored

    def delete_report(self, plural: str, namespace: str, name: str) -> None:
        self._version += 1
        self._publish(plural, "DELETED", self.reports.pop((plural, namespace, name)))

    def compact(self) -> None:
        """Forget the watch history, as etcd's compaction does: resuming from before now gets 410."""
        self.history.clear()
        self.history_floor = self._version

    def end_watches(self) -> None:
        """End every open watch, as the API server does when its timeout passes."""
        for _, queue in self._watchers:
            queue.put_nowait(None)

    def _publish(self, plural: str, event: str, obj: dict[str, Any]) -> None:
        self.history.append((self._version, event, plural, copy.deepcopy(obj)))
        for watched, queue in self._watchers:
            if watched == plural:
                queue.put_nowait((self._version, event, copy.deepcopy(obj)))

    def fail(self, method: str, path: str, status: int, times: int = 1) -> None:
        """Answer ``status`` to the next ``times`` requests of ``method`` whose path matches ``path``."""
        self.failures.append(Failure(method, re.compile(path), status, times))

    def mutations(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.end_watches()  # an open watch would hold the shutdown until its timeout
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handling -------------------------------------------------------------------------------
    def _uid(self) -> str:
        return f"00000000-0000-0000-0000-{next(self._uids):012d}"

    def _check(self, obj: dict[str, Any]) -> str | None:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            message = f"{obj.get('kind')}: {'.'.join(str(p) for p in exc.path)}: {exc.message}"
            self.invalid.append(message)
            return message
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            body = await request.json()
        self.requests.append(
            Request(request.method, request.path, request.content_type, body, dict(request.query))
        )
        for failure in self.failures:
            if failure.times > 0 and failure.method == request.method and failure.path.search(request.path):
                failure.times -= 1
                return _status(failure.status, "injected failure")
        if (
            m := re.fullmatch(r"/apis/aquasecurity\.github\.io/v1alpha1/([a-z]+)", request.path)
        ) and request.method == "GET":
            if request.query.get("watch") in ("true", "True", "1"):
                return await self._watch_reports(request, m.group(1))
            return self._list_reports(m.group(1))
        return self._route(request.method, request.path, request.content_type, body)

    def _list_reports(self, plural: str) -> web.Response:
        items = [obj for (p, _, _), obj in sorted(self.reports.items()) if p == plural]
        return web.json_response(
            {
                "apiVersion": "aquasecurity.github.io/v1alpha1",
                "kind": "List",
                "metadata": {"resourceVersion": str(self._version)},
                "items": items,
            }
        )

    async def _watch_reports(self, request: web.Request, plural: str) -> web.StreamResponse:
        """A watch: the events after ``resourceVersion``, then live ones, one JSON object per line,
        until ``timeoutSeconds`` passes or ``end_watches``; an expired version gets an ERROR event."""
        since = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or 0) or None
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        if since < self.history_floor:
            gone = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": f"too old resource version: {since} ({self.history_floor})",
                    "reason": "Expired", "code": 410}  # fmt: skip
            await response.write(orjson.dumps({"type": "ERROR", "object": gone}) + b"\n")
            return response
        queue: asyncio.Queue[tuple[int, str, dict[str, Any]] | None] = asyncio.Queue()
        self._watchers.append((plural, queue))
        sent = since
        try:
            for version, event, watched, obj in list(self.history):
                if watched == plural and version > since:
                    await response.write(orjson.dumps({"type": event, "object": obj}) + b"\n")
                    sent = version
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    break
                if item is None:
                    break
                version, event, obj = item
                if version > sent:
                    await response.write(orjson.dumps({"type": event, "object": obj}) + b"\n")
                    sent = version
        finally:
            self._watchers.remove((plural, queue))
        await response.write_eof()
        return response

    def _route(self, method: str, path: str, content_type: str, body: Any) -> web.StreamResponse:
        if m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)(/eviction)?", path):
            return self._pod(method, (m.group(1), m.group(2)), bool(m.group(3)), content_type, body)
        if m := re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/([^/]+)/([^/]+)", path):
            return self._owner(method, (m.group(2), m.group(1), m.group(3)), content_type, body)
        if m := re.fullmatch(
            r"/apis/networking.k8s.io/v1/namespaces/([^/]+)/networkpolicies(?:/([^/]+))?", path
        ):
            return self._network_policy(method, m.group(1), m.group(2), body)
        if (
            m := re.fullmatch(r"/apis/events.k8s.io/v1/namespaces/([^/]+)/events", path)
        ) and method == "POST":
            return self._event(m.group(1), body)
        return _status(404, f"no route for {method} {path}")

    def _patched(
        self, store: dict[Any, dict[str, Any]], key: Any, content_type: str, body: Any
    ) -> web.Response:
        if content_type != MERGE_PATCH:
            return _status(415, f"expected {MERGE_PATCH}, got {content_type}")
        merged = merge_patch(copy.deepcopy(store[key]), body)
        if problem := self._check(merged):
            return _status(422, problem)
        store[key] = merged
        return web.json_response(merged)

    def _pod(
        self, method: str, key: tuple[str, str], eviction: bool, content_type: str, body: Any
    ) -> web.Response:
        if key not in self.pods:
            return _status(404, f'pods "{key[1]}" not found')
        if eviction:
            if method != "POST":
                return _status(405, "method not allowed")
            if problem := self._check(body):
                return _status(422, problem)
            self.evictions.append(body)
            del self.pods[key]
            return web.json_response(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                status=201,
            )
        if method == "GET":
            return web.json_response(self.pods[key])
        if method == "PATCH":
            return self._patched(self.pods, key, content_type, body)
        if method == "DELETE":
            return web.json_response(self.pods.pop(key))
        return _status(405, "method not allowed")

    def _owner(self, method: str, key: tuple[str, str, str], content_type: str, body: Any) -> web.Response:
        if key not in self.owners:
            return _status(404, f'{key[0]} "{key[2]}" not found')
        if method == "GET":
            return web.json_response(self.owners[key])
        if method == "PATCH":
            return self._patched(self.owners, key, content_type, body)
        return _status(405, "method not allowed")

    def _network_policy(self, method: str, namespace: str, name: str | None, body: Any) -> web.Response:
        if method == "GET" and name:
            found = self.network_policies.get((namespace, name))
            return web.json_response(found) if found else _status(404, f'networkpolicies "{name}" not found')
        if method == "POST" and not name:
            if problem := self._check(body):
                return _status(422, problem)
            key = (namespace, body["metadata"]["name"])
            if key in self.network_policies:
                return _status(409, f'networkpolicies "{key[1]}" already exists')
            self.network_policies[key] = body
            return web.json_response(body, status=201)
        return _status(405, "method not allowed")

    def _event(self, namespace: str, body: Any) -> web.Response:
        if problem := self._check(body):
            return _status(422, problem)
        created = copy.deepcopy(body)
        created["metadata"]["name"] = (
            body["metadata"].get("name") or body["metadata"]["generateName"] + f"{len(self.events):05d}"
        )
        self.events.append(created)
        return web.json_response(created, status=201)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = merge_patch(target.get(key), value)
    return target


def _status(code: int, message: str) -> web.Response:
    reasons = {
        404: "NotFound",
        409: "AlreadyExists",
        415: "UnsupportedMediaType",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        403: "Forbidden",
    }
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reasons.get(code, "Unknown"),
        "code": code,
    }
    return web.json_response(body, status=code)
