"""What every alert target says about a verdict: labels, a summary, the matched violations."""

from __future__ import annotations

from typing import Any

from tribunal.actions.base import ActionError, ActionRequest

ALERTNAME = "TribunalPolicyViolation"


def alert_labels(request: ActionRequest, policy: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Alert labels for one policy of a verdict; empty values are left out."""
    verdict = request.verdict
    subject = verdict.subject
    matched = [v for v in request.violations if v.policy == policy]
    severity = max(matched, key=lambda v: v.severity.rank).severity.value if matched else request.severity
    workload = f"{subject.workload_kind}/{subject.workload_name}" if subject.workload_name else ""
    labels = {
        "alertname": ALERTNAME,
        "policy": policy,
        "severity": severity,
        "kind": verdict.kind.value,
        "decision": verdict.decision.value,
        "rule": request.rule,
        "cluster": subject.cluster or "",
        "namespace": subject.namespace or "",
        "pod": subject.pod or "",
        "workload": workload,
        "container": subject.container or "",
        "image": subject.image or "",
    }
    return {k: v for k, v in {**labels, **(extra or {})}.items() if v}


def summary(request: ActionRequest) -> str:
    subject = request.verdict.subject
    where = subject.key()
    return f"Tribunal {request.verdict.decision.value} ({request.severity}) on {where}: " + "; ".join(
        f"{v.policy}: {v.msg}" for v in request.violations
    )


def violations_json(request: ActionRequest) -> list[dict[str, Any]]:
    return [v.model_dump(mode="json") for v in request.violations]


def http_target_error(target: str, exc: BaseException) -> ActionError:
    """A connection-level failure (refused, reset, timeout): retriable."""
    return ActionError(f"{target}: {type(exc).__name__}: {exc}", retriable=True)
