"""``terminate``: evict the pod (policy/v1 Eviction, so PodDisruptionBudgets are honoured: the API
server answers 429 while a budget forbids it, and the dispatcher retries), or delete it when asked;
both with a grace period. Runs after the rule's other actions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tribunal.actions.base import ActionRequest, ActionSkipped, ActionTarget, TargetDeps, TargetSpec
from tribunal.actions.kube import KubeClient, is_protected, pod_of


class TerminateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["evict", "delete"] = "evict"
    grace_period_seconds: int = Field(30, ge=0, le=3600)


def build_eviction(namespace: str, pod: str, params: TerminateParams) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": namespace},
        "deleteOptions": {"gracePeriodSeconds": params.grace_period_seconds},
    }


class Terminate:
    def __init__(self, deps: TargetDeps) -> None:
        self._kube = deps.kube

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, TerminateParams)
        namespace, pod = pod_of(request.verdict.subject.namespace, request.verdict.subject.pod)
        return {"would": f"{params.mode} pod {namespace}/{pod} (grace {params.grace_period_seconds}s)"}

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, TerminateParams)
        namespace, name = pod_of(request.verdict.subject.namespace, request.verdict.subject.pod)
        if self._kube is None:
            raise ActionSkipped("no Kubernetes client is configured")
        kube: KubeClient = await self._kube()
        pod = await kube.get_pod(namespace, name)
        if is_protected(pod):
            raise ActionSkipped(f"pod {namespace}/{name} is labelled tribunal.io/protected=true")
        if params.mode == "evict":
            await kube.evict_pod(namespace, name, build_eviction(namespace, name, params))
        else:
            await kube.delete_pod(namespace, name, params.grace_period_seconds)
        return {
            "pod": f"{namespace}/{name}",
            "mode": params.mode,
            "grace_period_seconds": params.grace_period_seconds,
        }


def _build(deps: TargetDeps) -> ActionTarget:
    return Terminate(deps)


SPEC = TargetSpec(
    "terminate", "kubernetes", TerminateParams, _build, destructive=True, runs_last=True, touches_cluster=True
)
