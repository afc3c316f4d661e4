"""``annotate`` and ``label``: merge-patch the pod and its owning workloads (through ownerReferences)
with keys under ``tribunal.io/``. Only ``metadata`` is patched, never a pod template, so no rollout
is triggered."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tribunal.actions.base import ActionRequest, ActionSkipped, ActionTarget, TargetDeps, TargetSpec
from tribunal.actions.kube import KubeClient, is_protected, owners_of, pod_of

PREFIX = "tribunal.io/"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _prefixed(values: dict[str, str]) -> dict[str, str]:
    for key in values:
        if not key.startswith(PREFIX) or len(key) == len(PREFIX):
            raise ValueError(f"key {key!r} must start with {PREFIX!r}")
    return values


class AnnotateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owners: bool = Field(True, description="Also patch the owning workloads (ReplicaSet, Deployment…).")
    annotations: dict[str, str] = Field(default_factory=dict, description="Extra tribunal.io/ keys.")

    _keys = field_validator("annotations")(_prefixed)


class LabelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owners: bool = True
    labels: dict[str, str] = Field(default_factory=dict, description="Extra tribunal.io/ labels.")

    @field_validator("labels")
    @classmethod
    def _labels(cls, values: dict[str, str]) -> dict[str, str]:
        for key, value in _prefixed(values).items():
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise ValueError(f"label {key!r}: {value!r} is not a valid label value")
        return values


def verdict_annotations(request: ActionRequest) -> dict[str, str]:
    """The tribunal.io/ annotations describing the verdict: last verdict, when, evidence, policies,
    and counts of the matched violations by severity (vulnerability counts for Trivy verdicts)."""
    verdict = request.verdict
    counts = Counter(v.severity.value for v in request.violations)
    order = ("critical", "high", "medium", "low", "info")
    return {
        f"{PREFIX}last-verdict": verdict.decision.value,
        f"{PREFIX}last-verdict-at": verdict.evaluated_at.isoformat(),
        f"{PREFIX}evidence": f"{verdict.kind.value}/{verdict.evidence_id}",
        f"{PREFIX}violated-policies": ",".join(request.policies),
        f"{PREFIX}violation-counts": ",".join(f"{s}={counts[s]}" for s in order if counts[s]),
        f"{PREFIX}rule": request.rule,
    }


def verdict_labels(request: ActionRequest) -> dict[str, str]:
    return {f"{PREFIX}verdict": request.verdict.decision.value, f"{PREFIX}severity": request.severity}


class _MetadataPatch:
    """Patches ``metadata.<field>`` of the pod and, when asked, of its owners."""

    field = "annotations"

    def __init__(self, deps: TargetDeps) -> None:
        self._kube = deps.kube
        self._owners_allowed = deps.settings.owners

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def values(self, request: ActionRequest) -> dict[str, str]:
        raise NotImplementedError

    def _owners_wanted(self, request: ActionRequest) -> bool:
        """The rule's ``owners`` param, unless the installation may not patch workloads (actions.owners)."""
        return self._owners_allowed and bool(getattr(request.params, "owners", True))

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        namespace, pod = pod_of(request.verdict.subject.namespace, request.verdict.subject.pod)
        owners = " and its owning workloads" if self._owners_wanted(request) else ""
        return {
            "would": f"merge-patch {self.field} of pod {namespace}/{pod}{owners}",
            "patch": {"metadata": {self.field: self.values(request)}},
        }

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        namespace, name = pod_of(request.verdict.subject.namespace, request.verdict.subject.pod)
        kube = await _client(self._kube)
        pod = await kube.get_pod(namespace, name)
        if is_protected(pod):
            raise ActionSkipped(f"pod {namespace}/{name} is labelled tribunal.io/protected=true")
        patch = {"metadata": {self.field: self.values(request)}}
        await kube.patch_pod(namespace, name, patch)
        patched = [f"Pod/{name}"]
        skipped: list[str] = []
        if self._owners_wanted(request):
            for owner in await owners_of(kube, namespace, pod):
                ref = f"{owner['kind']}/{owner['metadata']['name']}"
                if is_protected(owner):
                    skipped.append(ref)
                    continue
                await kube.patch_owner(
                    owner["apiVersion"], owner["kind"], namespace, owner["metadata"]["name"], patch
                )
                patched.append(ref)
        result: dict[str, Any] = {"namespace": namespace, "patched": patched, "patch": patch}
        if skipped:
            result["protected"] = skipped
        return result


async def _client(factory: Any) -> KubeClient:
    if factory is None:
        raise ActionSkipped("no Kubernetes client is configured")
    kube: KubeClient = await factory()
    return kube


class Annotate(_MetadataPatch):
    field = "annotations"

    def values(self, request: ActionRequest) -> dict[str, str]:
        params = request.params
        assert isinstance(params, AnnotateParams)
        return {**verdict_annotations(request), **params.annotations}


class Label(_MetadataPatch):
    field = "labels"

    def values(self, request: ActionRequest) -> dict[str, str]:
        params = request.params
        assert isinstance(params, LabelParams)
        return {**verdict_labels(request), **params.labels}


def _annotate(deps: TargetDeps) -> ActionTarget:
    return Annotate(deps)


def _label(deps: TargetDeps) -> ActionTarget:
    return Label(deps)


ANNOTATE = TargetSpec("annotate", "kubernetes", AnnotateParams, _annotate, touches_cluster=True)
LABEL = TargetSpec("label", "kubernetes", LabelParams, _label, touches_cluster=True)
