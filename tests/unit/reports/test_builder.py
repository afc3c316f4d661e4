"""The report builder's rules on a small in-memory record: fail, pass, not assessed (never passing)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

import pytest

from tribunal.model import EvidenceKind, Severity, Subject
from tribunal.reports import ControlStatus, Framework, build_report, parse_since
from tribunal.store import ActivityRow, DailyViolationsRow, FindingRow, FindingStatus

T = datetime(2025, 5, 1, tzinfo=UTC)


def finding(policy: str, ns: str, name: str, status: FindingStatus, controls: list[str]) -> FindingRow:
    return FindingRow(
        policy=policy, subject_key=f"{ns}/Pod/{name}", kind=EvidenceKind.ADMISSION, namespace=ns,
        subject=Subject(namespace=ns, workload_kind="Pod", workload_name=name), severity=Severity.HIGH,
        status=status, first_seen=T, last_seen=T, count=2, first_evidence_id=f"{name}-1",
        last_evidence_id=f"{name}-2", msg="bad", controls=controls, last_judged=T,
    )  # fmt: skip


class Record:
    """An in-memory ReportSource."""

    def __init__(self, findings: list[FindingRow], activity: list[ActivityRow]) -> None:
        self.f, self.a = findings, activity

    async def all_findings(
        self, policies: Iterable[str], namespace: str | None = None, since: datetime | None = None
    ) -> list[FindingRow]:
        return [f for f in self.f if f.policy in set(policies) and namespace in (None, f.namespace)]

    async def activity(
        self, namespace: str | None = None, since: datetime | None = None
    ) -> list[ActivityRow]:
        return [a for a in self.a if namespace in (None, a.namespace)]

    async def daily_violations(
        self, policies: Iterable[str], namespace: str | None = None, since: datetime | None = None
    ) -> list[DailyViolationsRow]:
        return [DailyViolationsRow(day=date(2025, 5, 1), namespace="a", policy="hostns", violations=3)]


FRAMEWORK = Framework.model_validate(
    {
        "id": "cis",
        "title": "CIS",
        "controls": [
            {"id": "pid", "title": "hostPID", "policies": ["hostns"]},
            {"id": "net", "title": "hostNetwork", "policies": ["hostns"]},
            {"id": "rbac", "title": "RBAC", "policies": []},
            {"id": "vuln", "title": "CVEs", "policies": ["cves"]},
        ],
    }
)


async def test_controls_by_scope() -> None:
    record = Record(
        [
            finding("hostns", "a", "web", FindingStatus.OPEN, ["cis:pid"]),
            finding("hostns", "b", "db", FindingStatus.EXCEPTED, ["cis:net"]),
            finding("hostns", "b", "old", FindingStatus.RESOLVED, ["cis:pid"]),
        ],
        [
            ActivityRow(
                day=date(2025, 5, 1),
                namespace=ns,
                kind=EvidenceKind.ADMISSION,
                verdicts=5,
                denied=1,
                warned=0,
            )
            for ns in ("a", "b")
        ],
    )
    kinds = {"hostns": EvidenceKind.ADMISSION, "cves": EvidenceKind.TRIVY}
    report = await build_report(record, FRAMEWORK, policy_kinds=kinds, now=T)
    status = {(c.control_id, s.scope): s.status for c in report.controls for s in c.scopes}
    assert status[("pid", "a")] is ControlStatus.FAIL  # the violation names cis:pid
    assert status[("net", "a")] is ControlStatus.PASS  # ... and not cis:net
    assert status[("net", "b")] is ControlStatus.PASS  # excepted: not failing
    assert status[("pid", "b")] is ControlStatus.PASS  # resolved
    assert status[("rbac", "a")] is ControlStatus.NOT_ASSESSED  # no policy: never passing
    assert status[("vuln", "a")] is ControlStatus.NOT_ASSESSED  # no trivy evidence judged there
    by_id = {c.control_id: c for c in report.controls}
    assert [r.evidence_ids for r in by_id["pid"].failing] == [["web-2", "web-1"]]
    assert [r.subject_key for s in by_id["net"].scopes for r in s.excepted] == ["b/Pod/db"]
    assert (report.summary.passed, report.summary.failed, report.summary.not_assessed) == (1, 1, 2)
    assert report.summary.score == 50.0
    assert [(p.violations, p.failing_controls) for p in report.trend] == [(3, 2)]


async def test_an_empty_record_assesses_nothing() -> None:
    report = await build_report(Record([], []), FRAMEWORK, now=T)
    assert {c.status for c in report.controls} == {ControlStatus.NOT_ASSESSED}
    assert report.summary.score is None and report.scopes == []


def test_since_takes_iso_times_and_spans() -> None:
    assert parse_since("2025-01-31") == datetime(2025, 1, 31, tzinfo=UTC)
    assert parse_since("2025-01-31T12:00Z") == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert parse_since("30d", now=T) == datetime(2025, 4, 1, tzinfo=UTC)
    assert parse_since("12h", now=T) == datetime(2025, 4, 30, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="since: 'yesterday'"):
        parse_since("yesterday")


def _activity(kind: EvidenceKind, ns: str = "a") -> ActivityRow:
    return ActivityRow(day=date(2025, 5, 1), namespace=ns, kind=kind, verdicts=4, denied=0, warned=1)


RUNTIME = Framework.model_validate(
    {
        "id": "cis",
        "title": "CIS",
        "controls": [
            # privileged containers: admission assesses it; a Falco alert can only show it failing
            {"id": "priv", "title": "privileged", "policies": ["privileged", "falco_alert"], "evidence": ["admission"]},
            {"id": "mon", "title": "runtime monitoring", "policies": ["falco_alert"], "evidence": ["falco"]},
            {"id": "fs", "title": "immutable fs", "policies": ["falco_alert"], "evidence": []},
        ],
    }
)  # fmt: skip
KINDS = {"privileged": EvidenceKind.ADMISSION, "falco_alert": EvidenceKind.FALCO}


def _falco_finding(controls: list[str]) -> FindingRow:
    f = finding("falco_alert", "a", "web", FindingStatus.OPEN, controls)
    return f.model_copy(update={"kind": EvidenceKind.FALCO})


async def test_a_control_passes_only_on_the_evidence_that_assesses_it() -> None:
    only_falco = Record([], [_activity(EvidenceKind.FALCO)])
    report = await build_report(only_falco, RUNTIME, policy_kinds=KINDS, now=T)
    status = {c.control_id: c.status for c in report.controls}
    assert status == {
        "priv": ControlStatus.NOT_ASSESSED,  # Falco evidence judged, but no alert shows no privileged pod
        "mon": ControlStatus.PASS,
        "fs": ControlStatus.NOT_ASSESSED,  # evidence: [] never passes
    }
    assert {c.control_id: c.evidence for c in report.controls} == {
        "priv": [EvidenceKind.ADMISSION],
        "mon": [EvidenceKind.FALCO],
        "fs": [],
    }
    both = Record([], [_activity(EvidenceKind.FALCO), _activity(EvidenceKind.ADMISSION)])
    report = await build_report(both, RUNTIME, policy_kinds=KINDS, now=T)
    assert report.controls[0].status is ControlStatus.PASS


async def test_a_runtime_alert_fails_only_the_controls_it_names() -> None:
    alert = _falco_finding(["cis:priv", "cis:mon"])
    report = await build_report(
        Record([alert], [_activity(EvidenceKind.FALCO)]), RUNTIME, policy_kinds=KINDS, now=T
    )
    status = {c.control_id: c.status for c in report.controls}
    assert status == {"priv": ControlStatus.FAIL, "mon": ControlStatus.FAIL, "fs": ControlStatus.NOT_ASSESSED}
    # an alert naming controls of another framework only fails none of this one's
    other = _falco_finding(["nsa:runtime"])
    report = await build_report(
        Record([other], [_activity(EvidenceKind.FALCO)]), RUNTIME, policy_kinds=KINDS, now=T
    )
    assert {c.control_id: c.status for c in report.controls}["priv"] is ControlStatus.NOT_ASSESSED
    # a violation naming no control at all speaks to every control of its policy
    bare = _falco_finding([])
    report = await build_report(
        Record([bare], [_activity(EvidenceKind.FALCO)]), RUNTIME, policy_kinds=KINDS, now=T
    )
    assert {c.status for c in report.controls} == {ControlStatus.FAIL}
