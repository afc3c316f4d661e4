"""``sarif``: SARIF 2.1.0 as GitHub code scanning (and other SARIF viewers) take it.

Two producers share the conventions here:

- the compliance report (:func:`build`): one rule per control, one result per failing resource (level
  from its severity), located by a stable ``k8s://<namespace>/<kind>/<name>`` URI (``-`` where a part is
  unknown) as the resource has no file;
- ``tribunal judge --format sarif`` (:class:`JudgeSarif`): one rule per policy, one result per violation,
  located in the judged file (relative to the current directory, ``uriBaseId`` ``%SRCROOT%``) at the line
  where its document starts.

Every result has a physical location, a ``partialFingerprints`` entry that does not depend on the line,
and a rule with the metadata GitHub shows (``shortDescription``, ``fullDescription``, ``helpUri``,
``properties.tags`` with ``security``, ``properties.precision`` and ``properties.security-severity``)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import yaml

from tribunal import __version__
from tribunal.model import Evidence, EvidenceKind, Severity, Verdict, Violation
from tribunal.policy import PolicyInfo
from tribunal.reports.formats.base import Format
from tribunal.reports.model import ComplianceReport

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/tribunal-dev/tribunal"
POLICY_DOCS = f"{INFORMATION_URI}/blob/main/docs/policies.md#the-policy-library"
SRCROOT = "%SRCROOT%"
LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub's bands: over 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "1.0",
}
# Rego checks of a manifest or report are exact; a Falco alert is a heuristic of Falco's rule.
PRECISION: dict[str, str] = {
    EvidenceKind.ADMISSION: "very-high",
    EvidenceKind.TRIVY: "very-high",
    EvidenceKind.FALCO: "high",
}


def k8s_uri(namespace: str | None, kind: str | None, name: str | None) -> str:
    """The stable location of a cluster resource: ``k8s://<namespace>/<kind>/<name>``, ``-`` for an
    unknown part, each part percent-encoded (an image name keeps no ``/`` of its own)."""
    parts = (namespace or "-", kind or "-", name or "-")
    return "k8s://" + "/".join(quote(p, safe="") for p in parts)


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _document(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": runs}


def _driver(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "driver": {
            "name": "Tribunal",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": INFORMATION_URI,
            "rules": rules,
        }
    }


# The compliance report ---------------------------------------------------------------------------------


def build(report: ComplianceReport) -> dict[str, Any]:
    rules, results = [], []
    for index, control in enumerate(report.controls):
        failing = [r for scope in control.scopes for r in scope.failing]
        tags = ["security", report.framework.id, *([control.group] if control.group else [])]
        properties: dict[str, Any] = {
            "tags": tags,
            "precision": "very-high",
            "policies": control.policies,
            "evidence": None if control.evidence is None else [k.value for k in control.evidence],
            "status": control.status.value,
        }
        if failing:
            worst = max((r.severity for r in failing), key=lambda s: s.rank)
            properties["security-severity"] = SECURITY_SEVERITY[worst]
        rule: dict[str, Any] = {
            "id": control.id,
            "name": control.control_id,
            "shortDescription": {"text": control.title},
            "fullDescription": {"text": control.description or control.title},
            "helpUri": report.framework.url or POLICY_DOCS,
            "properties": properties,
        }
        rules.append(rule)
        for scope in control.scopes:
            for r in scope.failing:
                name = r.workload_name or r.image
                results.append(
                    {
                        "ruleId": control.id,
                        "ruleIndex": index,
                        "kind": "fail",
                        "level": LEVELS[r.severity],
                        "message": {"text": f"{r.subject_key}: {r.message} (policy {r.policy})"},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": k8s_uri(r.namespace, r.workload_kind, name)},
                                    "region": {"startLine": 1},
                                },
                                "logicalLocations": [
                                    {
                                        "name": name or r.subject_key,
                                        "fullyQualifiedName": r.subject_key,
                                        "kind": "resource",
                                    }
                                ],
                            }
                        ],
                        "partialFingerprints": {"tribunalFinding/v1": f"{r.policy}|{r.subject_key}"},
                        "properties": {
                            "scope": scope.scope,
                            "policy": r.policy,
                            "severity": r.severity.value,
                            "evidenceIds": r.evidence_ids,
                            "firstSeen": r.first_seen.isoformat(),
                            "lastSeen": r.last_seen.isoformat(),
                            "count": r.count,
                        },
                    }
                )
    run = {
        "tool": _driver(rules),
        "automationDetails": {"id": f"tribunal/compliance/{report.framework.id}/"},
        "invocations": [{"executionSuccessful": True, "endTimeUtc": report.generated_at.isoformat()}],
        "results": results,
        "properties": {
            "framework": report.framework.model_dump(),
            "summary": report.summary.model_dump(),
        },
    }
    return _document([run])


def render(report: ComplianceReport) -> bytes:
    return orjson.dumps(build(report), option=orjson.OPT_INDENT_2) + b"\n"


FORMAT = Format("sarif", "application/sarif+json", ".sarif", render)


# tribunal judge --format sarif ----------------------------------------------------------------------------


def policy_rule(info: PolicyInfo) -> dict[str, Any]:
    """A policy as a SARIF ``reportingDescriptor``."""
    frameworks = sorted({c.split(":", 1)[0] for c in info.controls if ":" in c})
    title = info.title or info.id
    return {
        "id": info.id,
        "name": "".join(part.capitalize() for part in info.id.split("_")),
        "shortDescription": {"text": title},
        "fullDescription": {"text": info.description or title},
        "helpUri": POLICY_DOCS,
        "help": {"text": f"{title}: {info.description or title} See {POLICY_DOCS}"},
        "defaultConfiguration": {"level": LEVELS[info.severity]},
        "properties": {
            "tags": ["security", info.kind, *frameworks],
            "precision": PRECISION.get(info.kind, "high"),
            "security-severity": SECURITY_SEVERITY[info.severity],
            "severity": info.severity.value,
            "controls": info.controls,
        },
    }


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


def yaml_document_lines(data: bytes | str) -> list[int]:
    """The 1-based line where each non-empty document of a YAML stream starts (its first node), in
    the order, and with the same skipping of empty documents, as the evidence reader numbers them
    (``file#n``). Empty when the text does not parse."""
    lines: list[int] = []
    try:
        expect_root = False
        for event in yaml.parse(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, yaml.DocumentStartEvent):
                expect_root = True
            elif expect_root and isinstance(event, yaml.NodeEvent):
                expect_root = False
                empty = (
                    isinstance(event, yaml.ScalarEvent)
                    and event.tag is None
                    and event.implicit[0]
                    and event.value in _NULLS
                )
                if not empty:
                    mark = event.start_mark
                    lines.append(mark.line + 1 if mark is not None else 1)
    except yaml.YAMLError:
        return []
    return lines


class JudgeSarif:
    """Collects the verdicts of ``tribunal judge`` and builds one SARIF run of them. ``policies`` are
    the loaded policies (every one becomes a rule); file locations are made relative to ``base``."""

    def __init__(self, policies: Mapping[str, PolicyInfo], base: Path | str | None = None) -> None:
        self.base = Path(base or os.getcwd()).resolve()
        self._rules: dict[str, dict[str, Any]] = {pid: policy_rule(policies[pid]) for pid in sorted(policies)}
        self._results: list[dict[str, Any]] = []
        self._notifications: list[dict[str, Any]] = []
        self._lines: dict[str, list[int]] = {}
        self._indices: dict[str, int] = {}

    def error(self, message: str) -> None:
        """A document that could not be judged: a tool execution notification."""
        self._notifications.append({"level": "error", "message": {"text": message}})

    def add(self, path: str, evidence: Evidence, verdict: Verdict) -> None:
        """The violations of ``verdict`` on ``evidence``, read from ``path`` (``-`` for stdin)."""
        location = self._location(path, evidence)
        for violation in verdict.violations:
            self._results.append(self._result(violation, evidence, location))

    def _uri_and_line(self, path: str, evidence: Evidence) -> tuple[str | None, int]:
        name = "<stdin>" if path == "-" else path
        suffix = evidence.source[len(name) :] if evidence.source.startswith(name) else ""
        if path == "-":
            return None, 1
        resolved = Path(path).resolve()
        try:
            uri = resolved.relative_to(self.base).as_posix()
        except ValueError:
            uri = Path(os.path.relpath(resolved, self.base)).as_posix()
        line = 1
        if suffix.startswith(":") and suffix[1:].isdigit():  # JSON Lines: file:line
            line = int(suffix[1:])
        elif suffix.startswith("#") and suffix[1:].isdigit():  # a YAML stream: file#document
            starts, number = self._document_lines(path, resolved), int(suffix[1:])
            if 0 < number <= len(starts):
                line = starts[number - 1]
        elif not suffix and resolved.suffix.lower() in (".yaml", ".yml"):  # past leading comments
            starts = self._document_lines(path, resolved)
            line = starts[0] if starts else 1
        return quote(uri, safe="/"), line

    def _document_lines(self, path: str, resolved: Path) -> list[int]:
        if path not in self._lines:
            try:
                self._lines[path] = yaml_document_lines(resolved.read_bytes())
            except OSError:
                self._lines[path] = []
        return self._lines[path]

    def _location(self, path: str, evidence: Evidence) -> dict[str, Any]:
        subject = evidence.subject
        name = subject.workload_name or subject.pod or subject.image
        uri, line = self._uri_and_line(path, evidence)
        artifact = (
            {"uri": uri, "uriBaseId": SRCROOT}
            if uri is not None
            else {"uri": k8s_uri(subject.namespace, subject.workload_kind, name)}
        )
        return {
            "physicalLocation": {"artifactLocation": artifact, "region": {"startLine": line}},
            "logicalLocations": [
                {"name": name or subject.key(), "fullyQualifiedName": subject.key(), "kind": "resource"}
            ],
        }

    def _result(self, violation: Violation, evidence: Evidence, location: dict[str, Any]) -> dict[str, Any]:
        if violation.policy not in self._rules:  # a violation of a policy the set does not describe
            self._rules[violation.policy] = policy_rule(
                PolicyInfo(
                    id=violation.policy,
                    kind=evidence.kind.value,
                    package="",
                    path="",
                    severity=violation.severity,
                )
            )
        artifact = location["physicalLocation"]["artifactLocation"]["uri"]
        subject_key = evidence.subject.key()
        result: dict[str, Any] = {
            "ruleId": violation.policy,
            "ruleIndex": self._index(violation.policy),
            "kind": "fail",
            "level": LEVELS[violation.severity],
            "message": {"text": f"{violation.msg} ({subject_key})"},
            "locations": [location],
            "partialFingerprints": {
                "tribunalFinding/v1": _fingerprint(violation.policy, artifact, subject_key, violation.msg)
            },
            "properties": {
                "severity": violation.severity.value,
                "enforcement": violation.enforcement.value,
                "controls": violation.controls,
                "evidenceId": evidence.id,
                "source": evidence.source,
            },
        }
        if violation.exception is not None:
            result["suppressions"] = [
                {"kind": "external", "status": "accepted", "justification": violation.exception}
            ]
        return result

    def _index(self, policy: str) -> int:
        if policy not in self._indices:
            self._indices = {pid: n for n, pid in enumerate(self._rules)}
        return self._indices[policy]

    def build(self, end: datetime | None = None) -> dict[str, Any]:
        rules = list(self._rules.values())  # rules of unknown policies come last: indices hold
        run: dict[str, Any] = {
            "tool": _driver(rules),
            "automationDetails": {"id": "tribunal/judge/"},
            "originalUriBaseIds": {SRCROOT: {"uri": self.base.as_uri() + "/"}},
            "invocations": [
                {
                    "executionSuccessful": not self._notifications,
                    "endTimeUtc": (end or datetime.now(UTC)).isoformat(),
                    **({"toolExecutionNotifications": self._notifications} if self._notifications else {}),
                }
            ],
            "results": self._results,
        }
        return _document([run])

    def render(self, end: datetime | None = None) -> bytes:
        return orjson.dumps(self.build(end), option=orjson.OPT_INDENT_2) + b"\n"
