"""``event``: a Kubernetes Event (``events.k8s.io/v1``, type Warning, reason PolicyViolation) regarding
the pod (or the admitted object) the verdict is about."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tribunal.actions.base import ActionRequest, ActionSkipped, ActionTarget, TargetDeps, TargetSpec
from tribunal.actions.kube import KubeClient

REPORTING_CONTROLLER = "tribunal.io/tribunal"
NOTE_LIMIT = 1024  # the API server rejects longer notes
_API_VERSIONS = {
    **dict.fromkeys(("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"), "apps/v1"),
    **dict.fromkeys(("Job", "CronJob"), "batch/v1"),
}


class EventParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("PolicyViolation", pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=128)
    type: str = Field("Warning", pattern=r"^(Warning|Normal)$")


def build_event(request: ActionRequest, instance: str, now: datetime | None = None) -> dict[str, Any]:
    """The Event object (a pure function, so it can be checked on its own)."""
    params = request.params
    assert isinstance(params, EventParams)
    subject = request.verdict.subject
    if not subject.namespace or not (subject.pod or subject.workload_name):
        raise ActionSkipped("the verdict names no namespaced object for an Event")
    kind, name = (
        ("Pod", subject.pod) if subject.pod else (subject.workload_kind or "Pod", subject.workload_name)
    )
    assert name is not None
    messages = "; ".join(f"{v.policy}: {v.msg}" for v in request.violations)
    note = f"Tribunal {request.verdict.decision.value} ({request.severity}): {messages}"
    if len(note.encode()) > NOTE_LIMIT:
        note = note.encode()[: NOTE_LIMIT - 3].decode(errors="ignore") + "..."
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"generateName": f"{name[:200]}.tribunal-", "namespace": subject.namespace},
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance[:128],
        "action": "Judged",
        "reason": params.reason,
        "type": params.type,
        "note": note,
        "regarding": {
            "apiVersion": _API_VERSIONS.get(kind, "v1"),
            "kind": kind,
            "name": name,
            "namespace": subject.namespace,
        },
    }


class EventTarget:
    def __init__(self, deps: TargetDeps) -> None:
        self._kube = deps.kube
        self.instance = os.environ.get("POD_NAME") or socket.gethostname() or "tribunal"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        event = build_event(request, self.instance)
        return {"would": f"create Event in {event['metadata']['namespace']}", "event": event}

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        event = build_event(request, self.instance)
        if self._kube is None:
            raise ActionSkipped("no Kubernetes client is configured")
        kube: KubeClient = await self._kube()
        created = await kube.create_event(event["metadata"]["namespace"], event)
        return {"event": (created.get("metadata") or {}).get("name"), "reason": event["reason"]}


def _build(deps: TargetDeps) -> ActionTarget:
    return EventTarget(deps)


SPEC = TargetSpec("event", "kubernetes", EventParams, _build, touches_cluster=True)
