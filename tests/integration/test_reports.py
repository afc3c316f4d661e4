"""Every file of ../shared/fixtures judged, recorded (SQLite and PostgreSQL) and reported: failing
controls list their resources and evidence; exports validate against their published schemas."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIXTURES, POLICY_DIR, RULES_DIR, SHARED, needs_shared
from tests.integration.conftest import create_pg_database, drop_pg_database, pg_url
from tests.unit.test_judge_sarif import check_github_requirements
from tribunal.model import EvidenceError, EvidenceKind
from tribunal.policy import Judge, load_policy_set
from tribunal.reports import FORMATS, ComplianceReport, ControlStatus, build_report, load_frameworks
from tribunal.sources import expand_paths, read_evidence
from tribunal.store import Record, SqlStore, VerdictQuery

pytestmark = needs_shared
SCHEMAS = SHARED / "schemas"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class Recorded:
    reports: dict[str, ComplianceReport]
    rendered: dict[tuple[str, str], bytes]
    evidence_policies: dict[str, set[str]] = field(default_factory=dict)  # evidence id -> violated policies
    judged: int = 0


async def _record_and_report(url: str) -> Recorded:
    policy_set = load_policy_set(POLICY_DIR)
    judge = Judge.build(policy_set)
    records = []
    for path in expand_paths([str(FIXTURES)]):
        for item in read_evidence(path):
            assert not isinstance(item, EvidenceError), item
            records.append(Record(item, judge.judge(item)))
    kinds = {p.id: EvidenceKind(p.kind) for p in policy_set.policies.values()}
    async with SqlStore(url) as store:
        for i in range(0, len(records), 40):
            await store.record(records[i : i + 40])
        out = Recorded({}, {}, judged=len(records))
        for fid, framework in load_frameworks(RULES_DIR).items():
            report = await build_report(store, framework, policy_kinds=kinds, now=NOW)
            out.reports[fid] = report
            for name, exporter in FORMATS.items():
                out.rendered[(fid, name)] = exporter.render(report)
        cursor = None
        while True:
            page = await store.verdicts(VerdictQuery(limit=1000, cursor=cursor))
            for v in page.items:
                out.evidence_policies[v.evidence_id] = {x.policy for x in v.violations}
            if (cursor := page.next_cursor) is None:
                break
    return out


@pytest.fixture(scope="session")
def recorded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('reports') / 'tribunal.db'}"
    return asyncio.run(_record_and_report(url))


@pytest.fixture(scope="session")
def recorded_postgresql(postgres_admin: str) -> Iterator[Recorded]:
    name = asyncio.run(create_pg_database(postgres_admin))
    try:
        yield asyncio.run(_record_and_report(pg_url(postgres_admin, name)))
    finally:
        asyncio.run(drop_pg_database(postgres_admin, name))


def test_failing_controls_list_the_resources_and_evidence_that_fail_them(recorded_sqlite: Recorded) -> None:
    for fid, report in recorded_sqlite.reports.items():
        failing = [c for c in report.controls if c.status is ControlStatus.FAIL]
        assert failing, f"{fid}: the fixtures break some controls"
        for control in failing:
            assert control.failing, control.id
            for resource in control.failing:
                assert resource.subject_key and resource.policy in control.policies
                assert resource.evidence_ids
                latest = resource.evidence_ids[0]
                assert resource.policy in recorded_sqlite.evidence_policies[latest], (control.id, resource)
    baseline = {c.control_id: c for c in recorded_sqlite.reports["pss-baseline"].controls}
    privileged = {r.subject_key for r in baseline["privileged-containers"].failing}
    assert "default/Pod/nginx-privileged-disallowed" in privileged
    cis = {c.control_id: c for c in recorded_sqlite.reports["cis-k8s"].controls}
    assert cis["5.3.2"].status is ControlStatus.NOT_ASSESSED  # no evidence shows NetworkPolicies
    assert {s.status for s in cis["5.3.2"].scopes} == {ControlStatus.NOT_ASSESSED}
    assert cis["5.3.2"].evidence == [] and cis["5.2.2"].evidence == [EvidenceKind.ADMISSION]
    assert recorded_sqlite.reports["cis-k8s"].summary.verdicts == len(recorded_sqlite.evidence_policies)


def _essence(report: ComplianceReport) -> list[object]:
    """The report without times (each run judges the fixtures anew, so received_at differs)."""
    return [
        (c.id, c.status, [(s.scope, s.status, s.verdicts, [(r.subject_key, r.policy, r.count, r.message,
         r.evidence_ids) for r in s.failing + s.excepted]) for s in c.scopes])
        for c in report.controls
    ]  # fmt: skip


def test_postgresql_reports_the_same_as_sqlite(
    recorded_sqlite: Recorded, recorded_postgresql: Recorded
) -> None:
    for fid, report in recorded_sqlite.reports.items():
        other = recorded_postgresql.reports[fid]
        assert other.summary == report.summary
        assert _essence(other) == _essence(report)


def test_json_round_trips_into_the_report_model(recorded_sqlite: Recorded) -> None:
    for fid, report in recorded_sqlite.reports.items():
        body = recorded_sqlite.rendered[(fid, "json")]
        assert ComplianceReport.model_validate_json(body) == report
        assert json.loads(body)["$schema"].endswith("/compliance-report/v1")


def test_csv_round_trips_one_row_per_control_per_scope(recorded_sqlite: Recorded) -> None:
    for fid, report in recorded_sqlite.reports.items():
        rows = list(csv.DictReader(io.StringIO(recorded_sqlite.rendered[(fid, "csv")].decode())))
        expected = {
            (c.id, s.scope): (s.status.value, ";".join(sorted({r.subject_key for r in s.failing})), c.title)
            for c in report.controls
            for s in c.scopes
        }
        assert len(rows) == len(expected)
        assert {
            (r["control"], r["scope"]): (r["status"], r["failing_resources"], r["title"]) for r in rows
        } == expected


def _jsonschema_validator(schema: dict[str, object]):  # type: ignore[no-untyped-def]
    import jsonschema

    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.skipif(not (SCHEMAS / "sarif-schema-2.1.0.json").is_file(), reason="../shared/schemas is absent")
def test_sarif_validates_against_the_sarif_2_1_0_schema(recorded_sqlite: Recorded) -> None:
    validator = _jsonschema_validator(json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text()))
    for fid, report in recorded_sqlite.reports.items():
        doc = json.loads(recorded_sqlite.rendered[(fid, "sarif")])
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []
        results = doc["runs"][0]["results"]
        assert len(results) == sum(len(c.failing) for c in report.controls) > 0
        rules = doc["runs"][0]["tool"]["driver"]["rules"]
        assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
        # What GitHub code scanning needs: a physical location for each result (a stable k8s:// URI,
        # the resources have no file), rule metadata with the "security" tag and security-severity.
        check_github_requirements(doc)
        for r in results:
            uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            assert uri.startswith("k8s://") and len(uri.split("/")) == 5, uri
        failing_rules = {r["ruleId"] for r in results}
        assert all("security-severity" in rule["properties"] for rule in rules if rule["id"] in failing_rules)


def _crd_validator(path: Path):  # type: ignore[no-untyped-def]
    crd = yaml.safe_load(path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha2"]
    return crd["spec"]["names"]["kind"], _jsonschema_validator(version["schema"]["openAPIV3Schema"])


@pytest.mark.skipif(not SCHEMAS.is_dir(), reason="../shared/schemas is absent")
def test_policy_reports_validate_against_the_v1alpha2_crds(recorded_sqlite: Recorded) -> None:
    validators = dict(
        _crd_validator(SCHEMAS / f"wgpolicyk8s.io_v1alpha2_{n}.yaml")
        for n in ("policyreports", "clusterpolicyreports")
    )
    for fid, report in recorded_sqlite.reports.items():
        docs = list(yaml.safe_load_all(recorded_sqlite.rendered[(fid, "policyreport")]))
        assert {d["kind"] for d in docs} == {"PolicyReport", "ClusterPolicyReport"}
        for doc in docs:
            assert doc["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
            errors = [
                f"{list(e.absolute_path)}: {e.message}" for e in validators[doc["kind"]].iter_errors(doc)
            ]
            assert errors == [], (fid, doc["metadata"])
            assert sum(doc["summary"].values()) == len(doc["results"])
            if doc["kind"] == "PolicyReport":
                assert doc["metadata"]["namespace"] in report.scopes
        fails = sum(d["summary"]["fail"] for d in docs)
        assert fails == sum(len(c.failing) for c in report.controls)


def test_oscal_assessment_results_validate_through_trestle(recorded_sqlite: Recorded) -> None:
    from trestle.oscal.assessment_results import Model

    for fid, report in recorded_sqlite.reports.items():
        doc = json.loads(recorded_sqlite.rendered[(fid, "oscal")])
        model = Model.model_validate(doc)
        (result,) = model.assessment_results.results
        assert len(result.findings or []) == len(report.controls)
        states = {
            f.target.target_id: (f.target.status.state.value if f.target.status else None)
            for f in result.findings or []
        }
        for control in report.controls:
            token = control.id.replace(":", "_")
            want = {ControlStatus.PASS: "satisfied", ControlStatus.FAIL: "not-satisfied"}.get(control.status)
            assert states[token] == want
        assert len(result.observations or []) == sum(len(c.failing) for c in report.controls)
