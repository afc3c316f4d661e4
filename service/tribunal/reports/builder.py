"""Builds a ``ComplianceReport`` (controls by scopes → pass, fail or not assessed) from the store.

It reads findings and the daily rollups the store keeps at write time, never every verdict, so a
report over millions of verdicts costs what their distinct (policy, subject) pairs cost."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from tribunal.model import EvidenceKind
from tribunal.reports.frameworks import ControlDef, Framework, policy_evidence
from tribunal.reports.model import (
    CLUSTER_SCOPE,
    ComplianceReport,
    ControlResult,
    ControlStatus,
    Filters,
    FrameworkRef,
    Resource,
    ScopeResult,
    Summary,
    TrendPoint,
)
from tribunal.store import ActivityRow, DailyViolationsRow, FindingRow, FindingStatus


class ReportSource(Protocol):
    """What the builder reads (``SqlStore`` provides it)."""

    async def all_findings(
        self, policies: Iterable[str], namespace: str | None = None, since: datetime | None = None
    ) -> list[FindingRow]: ...

    async def activity(
        self, namespace: str | None = None, since: datetime | None = None
    ) -> list[ActivityRow]: ...

    async def daily_violations(
        self, policies: Iterable[str], namespace: str | None = None, since: datetime | None = None
    ) -> list[DailyViolationsRow]: ...


def _scope(namespace: str | None) -> str:
    return namespace or CLUSTER_SCOPE


def fails(control: ControlDef, finding: FindingRow) -> bool:
    """Whether ``finding`` speaks against ``control``: its policy evidences the control, and its
    violations name this control (a policy such as host_namespaces names only the CIS number of the
    namespace it found shared; falco_alert names the controls of the Falco rule that fired), or name
    no control at all (a violation without ``controls`` speaks to every control of its policy)."""
    if finding.policy not in control.policies:
        return False
    return not finding.controls or control.full_id in finding.controls


def _resource(f: FindingRow) -> Resource:
    ids = [f.last_evidence_id] + ([f.first_evidence_id] if f.first_evidence_id != f.last_evidence_id else [])
    return Resource(
        subject_key=f.subject_key,
        namespace=f.namespace,
        workload_kind=f.subject.workload_kind,
        workload_name=f.subject.workload_name or f.subject.pod,
        image=f.subject.image,
        evidence_kind=f.kind,
        policy=f.policy,
        severity=f.severity,
        status=f.status.value,
        message=f.msg,
        first_seen=f.first_seen,
        last_seen=f.last_seen,
        count=f.count,
        evidence_ids=ids,
        exception=f.exception,
    )


async def build_report(
    source: ReportSource,
    framework: Framework,
    *,
    policy_kinds: Mapping[str, EvidenceKind] | None = None,
    namespace: str | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
) -> ComplianceReport:
    """The report of ``framework`` over the record. ``policy_kinds`` (policy id → evidence kind, from
    the loaded policy set) lets a control pass in a scope only when evidence of its kinds was judged
    there; without it, any verdict in the scope counts. ``since`` keeps subjects judged since then."""
    policies = framework.policies
    findings = await source.all_findings(policies, namespace, since)
    activity = await source.activity(namespace, since)
    daily = await source.daily_violations(policies, namespace, since)

    verdicts_by_scope: dict[str, dict[EvidenceKind, int]] = defaultdict(lambda: defaultdict(int))
    for a in activity:
        verdicts_by_scope[_scope(a.namespace)][a.kind] += a.verdicts
    by_scope: dict[str, list[FindingRow]] = defaultdict(list)
    for f in findings:
        by_scope[_scope(f.namespace)].append(f)
    scopes = sorted(set(verdicts_by_scope) | set(by_scope))
    if namespace is not None:
        scopes = [_scope(namespace)]

    controls = []
    relevant_kinds: set[EvidenceKind] = set()
    for control in framework.controls:
        kinds = _kinds(control, policy_kinds)
        # the verdicts that count for the framework: of every kind its policies judge (a Falco alert
        # can fail a control it does not assess)
        relevant_kinds |= set(EvidenceKind) if kinds is None or policy_kinds is None else kinds
        relevant_kinds |= policy_evidence(control, policy_kinds or {})
        results = []
        for scope in scopes:
            judged = sum(n for k, n in verdicts_by_scope[scope].items() if kinds is None or k in kinds)
            relevant = [f for f in by_scope[scope] if fails(control, f)]
            failing = [_resource(f) for f in relevant if f.status is FindingStatus.OPEN]
            excepted = [_resource(f) for f in relevant if f.status is FindingStatus.EXCEPTED]
            if not control.policies:
                status = ControlStatus.NOT_ASSESSED
            elif failing:
                status = ControlStatus.FAIL
            elif kinds != set() and (judged or relevant):  # no kind of evidence assesses it: never passing
                status = ControlStatus.PASS
            else:
                status = ControlStatus.NOT_ASSESSED
            results.append(
                ScopeResult(scope=scope, status=status, verdicts=judged, failing=failing, excepted=excepted)
            )
        controls.append(
            ControlResult(
                id=control.full_id,
                control_id=control.id,
                framework=control.framework,
                title=control.title,
                description=control.description,
                group=control.group,
                policies=list(control.policies),
                evidence=None if kinds is None else [k for k in EvidenceKind if k in kinds],
                status=_overall(control, results),
                scopes=results,
            )
        )

    return ComplianceReport(
        generated_at=now or datetime.now(UTC),
        framework=FrameworkRef(
            id=framework.id, title=framework.title, version=framework.version, url=framework.url
        ),
        filters=Filters(namespace=namespace, since=since),
        summary=_summary(controls, activity, relevant_kinds),
        scopes=scopes,
        controls=controls,
        trend=_trend(framework, activity, daily, relevant_kinds),
    )


def _kinds(control: ControlDef, policy_kinds: Mapping[str, EvidenceKind] | None) -> set[EvidenceKind] | None:
    """The kinds of evidence that assess ``control``: its ``evidence`` as the catalogue states it (or
    as check_evidence derived it), else the kinds of its policies; None when unknown (any counts)."""
    if not control.policies:
        return set()
    if control.evidence is not None:
        return set(control.evidence)
    if policy_kinds is None:
        return None
    return policy_evidence(control, policy_kinds) or None


def _overall(control: ControlDef, results: list[ScopeResult]) -> ControlStatus:
    if not control.policies:
        return ControlStatus.NOT_ASSESSED
    statuses = {r.status for r in results}
    if ControlStatus.FAIL in statuses:
        return ControlStatus.FAIL
    if ControlStatus.PASS in statuses:
        return ControlStatus.PASS
    return ControlStatus.NOT_ASSESSED


def _summary(controls: list[ControlResult], activity: list[ActivityRow], kinds: set[EvidenceKind]) -> Summary:
    passed = sum(c.status is ControlStatus.PASS for c in controls)
    failed = sum(c.status is ControlStatus.FAIL for c in controls)
    resources = {r.subject_key for c in controls for r in c.failing}
    return Summary(
        controls=len(controls),
        passed=passed,
        failed=failed,
        not_assessed=len(controls) - passed - failed,
        score=round(100 * passed / (passed + failed), 1) if passed + failed else None,
        failing_resources=len(resources),
        verdicts=sum(a.verdicts for a in activity if a.kind in kinds),
    )


def _trend(
    framework: Framework,
    activity: list[ActivityRow],
    daily: list[DailyViolationsRow],
    kinds: set[EvidenceKind],
) -> list[TrendPoint]:
    verdicts: dict[date, int] = defaultdict(int)
    for a in activity:
        if a.kind in kinds:
            verdicts[a.day] += a.verdicts
    violations: dict[date, int] = defaultdict(int)
    policies_that_day: dict[date, set[str]] = defaultdict(set)
    for d in daily:
        violations[d.day] += d.violations
        policies_that_day[d.day].add(d.policy)
    points = []
    for day in sorted(set(verdicts) | set(violations)):
        hit = policies_that_day[day]
        failing = sum(1 for c in framework.controls if hit.intersection(c.policies))
        points.append(
            TrendPoint(day=day, verdicts=verdicts[day], violations=violations[day], failing_controls=failing)
        )
    return points


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``--since``/``?since=``: an ISO 8601 date or time (UTC when no offset), or a span back from now
    such as ``30d``, ``12h``, ``90m``. ValueError says what is accepted."""
    text = value.strip()
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if len(text) > 1 and text[-1] in units and text[:-1].isascii() and text[:-1].isdigit():
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
        except OverflowError:  # a span reaching back before year 1
            raise ValueError(f"since: {value!r} reaches back before the year 1") from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"since: {value!r} is neither an ISO 8601 time (2025-01-31, 2025-01-31T12:00Z) "
            "nor a span (30d, 12h)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
