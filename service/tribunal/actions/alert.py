"""What every alert target says about a verdict: labels, a summary, the matched violations.

The labels follow Alertmanager's and falcosidekick's conventions, so existing routes and templates
apply: ``severity`` on Alertmanager's usual scale (``critical`` / ``warning`` / ``info``; Tribunal's own
five-step severity is in ``policy_severity``), ``source`` naming where the evidence came from (``falco``,
as falcosidekick sets it, ``trivy`` or ``admission``) and, for a Falco alert, the Falco ``rule``,
``priority`` (spelt as falcosidekick spells it: ``Critical``), ``hostname``, ``eventsource``, ``tags``
and the Kubernetes output fields falcosidekick turns into labels (``k8s_ns_name``, ``k8s_pod_name``).
Only bounded values become labels (no command lines, file names or outputs): those go in annotations
and the verdict."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from tribunal.actions.base import ActionError, ActionRequest
from tribunal.model import EvidenceKind, FalcoAlert, FalcoPriority, Severity, Violation

ALERTNAME = "TribunalPolicyViolation"

ALERTMANAGER_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "warning",
    Severity.MEDIUM: "warning",
    Severity.LOW: "info",
    Severity.INFO: "info",
}
"""Tribunal's severity on Alertmanager's usual scale. Through Falco's priorities this is falcosidekick's
mapping: Emergency, Alert, Critical -> critical; Error, Warning -> warning; the others -> info
(falcosidekick says ``information``)."""

# Falco output fields that falcosidekick turns into labels and whose values are bounded by the
# cluster's namespaces and pods (falcosidekick labels every output field; command lines and file names
# would make one alert series per event).
FALCO_LABEL_FIELDS = ("k8s.ns.name", "k8s.pod.name")
_FALCO_PRIORITY_ALIASES = {"info": "informational", "warn": "warning", "err": "error", "crit": "critical"}
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def safe_label_name(name: str) -> str:
    """A label name Alertmanager accepts (``[a-zA-Z_][a-zA-Z0-9_]*``), made as falcosidekick makes
    one: unsafe characters to ``_``, doubled ``_`` collapsed, ``_`` trimmed at both ends
    (``k8s.ns.name`` -> ``k8s_ns_name``); a leading digit gets a ``_`` before it."""
    safe = _UNSAFE.sub("_", name)
    while "__" in safe:
        safe = safe.replace("__", "_")
    safe = safe.strip("_")
    if not safe or safe[0].isdigit():
        safe = "_" + safe
    return safe


def falco_priority(value: str) -> str:
    """A Falco priority as falcosidekick writes it in its ``priority`` label (``Critical``,
    ``Informational``); an unknown value as it came."""
    lowered = value.strip().lower()
    try:
        return FalcoPriority(_FALCO_PRIORITY_ALIASES.get(lowered, lowered)).value.capitalize()
    except ValueError:
        return value


def falco_labels(request: ActionRequest, matched: list[Violation]) -> dict[str, str]:
    """falcosidekick's labels of a Falco alert: from the evidence when the request carries it, else
    from the details the runtime policies record (rule, priority, source, hostname, tags)."""
    body = request.evidence.body if request.evidence is not None else None
    if isinstance(body, FalcoAlert):
        labels = {
            "rule": body.rule,
            "priority": falco_priority(body.priority.value),
            "eventsource": body.source,
            "hostname": body.hostname,
            "tags": ",".join(sorted(body.tags)),
        }
        for name in FALCO_LABEL_FIELDS:
            labels[safe_label_name(name)] = body.field(name) or ""
        return labels
    details: Mapping[str, Any] = matched[0].details if matched else {}
    tags = details.get("tags")
    labels = {
        "rule": str(details.get("rule") or ""),
        "priority": falco_priority(str(details.get("priority") or "")),
        "eventsource": str(details.get("source") or ""),
        "hostname": str(details.get("hostname") or ""),
        "tags": ",".join(sorted(str(t) for t in tags)) if isinstance(tags, list) else "",
    }
    subject = request.verdict.subject
    labels["k8s_ns_name"] = subject.namespace or ""
    labels["k8s_pod_name"] = subject.pod or ""
    return labels


def alert_labels(
    request: ActionRequest,
    policy: str,
    extra: dict[str, str] | None = None,
    severity_map: Mapping[Severity, str] | None = None,
) -> dict[str, str]:
    """Alert labels for one policy of a verdict; empty values are left out, names made safe.
    ``severity_map`` overrides :data:`ALERTMANAGER_SEVERITY` per Tribunal severity."""
    verdict = request.verdict
    subject = verdict.subject
    matched = [v for v in request.violations if v.policy == policy]
    severity = max(matched, key=lambda v: v.severity.rank).severity if matched else Severity(request.severity)
    scale = {**ALERTMANAGER_SEVERITY, **(severity_map or {})}
    workload = f"{subject.workload_kind}/{subject.workload_name}" if subject.workload_name else ""
    labels = {
        "alertname": ALERTNAME,
        "policy": policy,
        "severity": scale[severity],
        "policy_severity": severity.value,
        "kind": verdict.kind.value,
        "source": verdict.kind.value,
        "decision": verdict.decision.value,
        "response_rule": request.rule,
        "cluster": subject.cluster or "",
        "namespace": subject.namespace or "",
        "pod": subject.pod or "",
        "workload": workload,
        "container": subject.container or "",
        "image": subject.image or "",
    }
    if verdict.kind is EvidenceKind.FALCO:
        labels.update(falco_labels(request, matched))
    merged = {**labels, **(extra or {})}
    return {safe_label_name(k): v for k, v in merged.items() if v}


def summary(request: ActionRequest) -> str:
    subject = request.verdict.subject
    where = subject.key()
    return f"Tribunal {request.verdict.decision.value} ({request.severity}) on {where}: " + "; ".join(
        f"{v.policy}: {v.msg}" for v in request.violations
    )


def violations_json(request: ActionRequest) -> list[dict[str, Any]]:
    return [v.model_dump(mode="json") for v in request.violations]


def verdict_url(external_url: str | None, evidence_id: str) -> str | None:
    """The verdict in the read API (``GET /verdicts/{id}``) under ``external_url``, or None."""
    if not external_url:
        return None
    return f"{external_url.rstrip('/')}/verdicts/{quote(evidence_id, safe='')}"


def http_target_error(target: str, exc: BaseException) -> ActionError:
    """A connection-level failure (refused, reset, timeout): retriable."""
    return ActionError(f"{target}: {type(exc).__name__}: {exc}", retriable=True)
