"""``block-image``: record the verdict's image (digest and reference) as blocked in policy data
``data.tribunal.state.images``; ``policies/admission/blocked_images.rego`` then denies new pods with
it. A later Trivy verdict on that image without the policies that blocked it clears the entry
(:meth:`BlockImage.observe`, which the dispatcher calls for every verdict)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tribunal.actions.base import ActionRequest, ActionSkipped, ActionTarget, TargetDeps, TargetSpec
from tribunal.actions.images import ImageBlocklist
from tribunal.model import EvidenceKind, Verdict


class BlockImageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=512, description="Why; default: the violation messages.")


def images_of(request: ActionRequest) -> list[tuple[str, str | None]]:
    """(image, digest) pairs the verdict is about: the subject's, and images named by the matched
    violations (cluster-wide Trivy reports name one per finding)."""
    subject = request.verdict.subject
    found: dict[str, str | None] = {}
    if subject.image:
        found[subject.image] = subject.image_digest
    for violation in request.violations:
        image = violation.details.get("image")
        if isinstance(image, str) and image and image not in found:
            found[image] = None
    return list(found.items())


class BlockImage:
    def __init__(self, deps: TargetDeps) -> None:
        self.blocklist = deps.blocklist

    async def start(self) -> None:
        if self.blocklist is not None:  # follows the blocklist the replicas share, if any
            await self.blocklist.start()

    async def stop(self) -> None:
        if self.blocklist is not None:
            await self.blocklist.stop()

    def _blocklist(self) -> ImageBlocklist:
        if self.blocklist is None:
            raise ActionSkipped("no blocked-image state is configured")
        return self.blocklist

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        images = images_of(request)
        if not images:
            raise ActionSkipped("the verdict names no image")
        return {"would": "block images at admission", "images": [i for i, _ in images]}

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, BlockImageParams)
        blocklist = self._blocklist()
        images = images_of(request)
        if not images:
            raise ActionSkipped("the verdict names no image")
        reason = params.reason or "; ".join(v.msg for v in request.violations)[:512]
        blocked: list[str] = []
        changed = False
        for image, digest in images:
            key, did = await blocklist.block(
                image,
                digest,
                reason=reason,
                policies=request.policies,
                kind=request.verdict.kind.value,
                evidence=request.verdict.evidence_id,
                rule=request.rule,
            )
            blocked.append(key)
            changed = changed or did
        held = sorted(blocklist.held & set(blocked))
        if held:  # in force here; written to the shared database when it answers again
            return {"blocked": blocked, "changed": changed, "held": held}
        return {"blocked": blocked, "changed": changed}

    async def observe(self, verdict: Verdict) -> dict[str, Any] | None:
        """Clear entries a Trivy verdict shows to be fixed: entries blocked by Trivy verdicts on the same
        image whose blocking policies no longer raise an effective violation."""
        if self.blocklist is None or verdict.kind is not EvidenceKind.TRIVY or not verdict.subject.image:
            return None
        keys = self.blocklist.find(verdict.subject.image, verdict.subject.image_digest)
        still = {v.policy for v in verdict.violations if v.effective}
        fixed = [
            k
            for k in keys
            if self.blocklist.entries[k].get("kind") == EvidenceKind.TRIVY.value
            and not set(self.blocklist.entries[k].get("policies") or []) & still
        ]
        removed = await self.blocklist.clear(fixed)
        return (
            {
                "rule": None,
                "action": "block-image",
                "target": "policy-data",
                "status": "cleared",
                "images": removed,
            }
            if removed
            else None
        )


def _build(deps: TargetDeps) -> ActionTarget:
    return BlockImage(deps)


SPEC = TargetSpec("block-image", "policy-data", BlockImageParams, _build)
