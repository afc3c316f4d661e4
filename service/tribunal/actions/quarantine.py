"""``quarantine``: ensure a deny-all NetworkPolicy selecting the quarantine label in the pod's
namespace, then label the pod with it (policy first, so the pod is isolated as soon as it is labelled)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tribunal.actions.base import (
    ActionError,
    ActionRequest,
    ActionSkipped,
    ActionTarget,
    TargetDeps,
    TargetSpec,
)
from tribunal.actions.kube import KubeClient, is_protected, pod_of


class QuarantineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(
        "tribunal.io/quarantine", pattern=r"^tribunal\.io/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
    )
    policy_name: str = Field(
        "tribunal-quarantine", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=253
    )


def build_network_policy(namespace: str, params: QuarantineParams) -> dict[str, Any]:
    """Deny-all ingress and egress for pods labelled ``<label>=true``."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": params.policy_name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "tribunal"},
        },
        "spec": {
            "podSelector": {"matchLabels": {params.label: "true"}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }


class Quarantine:
    def __init__(self, deps: TargetDeps) -> None:
        self._kube = deps.kube

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, QuarantineParams)
        namespace, pod = pod_of(request.verdict.subject.namespace, request.verdict.subject.pod)
        return {
            "would": f"ensure NetworkPolicy {namespace}/{params.policy_name}; label pod {pod} "
            f"{params.label}=true",
            "network_policy": build_network_policy(namespace, params),
        }

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, QuarantineParams)
        namespace, name = pod_of(request.verdict.subject.namespace, request.verdict.subject.pod)
        if self._kube is None:
            raise ActionSkipped("no Kubernetes client is configured")
        kube: KubeClient = await self._kube()
        pod = await kube.get_pod(namespace, name)
        if is_protected(pod):
            raise ActionSkipped(f"pod {namespace}/{name} is labelled tribunal.io/protected=true")
        created = False
        if await kube.get_network_policy(namespace, params.policy_name) is None:
            try:
                await kube.create_network_policy(namespace, build_network_policy(namespace, params))
                created = True
            except ActionError as exc:
                if exc.status != 409:  # 409: made meanwhile by another replica; it is there
                    raise
        await kube.patch_pod(namespace, name, {"metadata": {"labels": {params.label: "true"}}})
        return {"pod": f"{namespace}/{name}", "network_policy": params.policy_name, "created": created}


def _build(deps: TargetDeps) -> ActionTarget:
    return Quarantine(deps)


SPEC = TargetSpec(
    "quarantine", "kubernetes", QuarantineParams, _build, destructive=True, touches_cluster=True
)
