"""The one internal shape of a compliance report; every export format only serialises it.
Its JSON form is the ``json`` format (schema id in ``SCHEMA``; docs/reports.md describes it)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from tribunal.model import EvidenceKind, Severity

SCHEMA = "https://tribunal.dev/schemas/compliance-report/v1"
CLUSTER_SCOPE = "(cluster)"  # the scope of evidence with no namespace


class ControlStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_ASSESSED = "not-assessed"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resource(_Model):
    """A subject that fails (or is excepted from) a control, with the evidence behind it."""

    subject_key: str = Field(description="namespace/kind/name, '-' where unknown")
    namespace: str | None
    workload_kind: str | None = None
    workload_name: str | None = None
    image: str | None = None
    evidence_kind: EvidenceKind
    policy: str
    severity: Severity
    status: str = Field(description="open or excepted")
    message: str
    first_seen: datetime
    last_seen: datetime
    count: int = Field(description="verdicts that found this violation")
    evidence_ids: list[str] = Field(description="the latest evidence first, then the first")
    exception: str | None = None


class ScopeResult(_Model):
    """A control in one scope (a namespace, or the cluster scope)."""

    scope: str
    status: ControlStatus
    verdicts: int = Field(description="verdicts of the control's evidence kinds in this scope and period")
    failing: list[Resource] = Field(default_factory=list)
    excepted: list[Resource] = Field(default_factory=list)


class ControlResult(_Model):
    id: str = Field(description="<framework>:<control id>, as policies name it")
    control_id: str
    framework: str
    title: str
    description: str = ""
    group: str = ""
    policies: list[str]
    evidence: list[EvidenceKind] | None = Field(
        None,
        description="the kinds of evidence that assess the control (pass it where one was judged and "
        "nothing fails it); empty: not assessed; null: unknown (the policies could not be read)",
    )
    status: ControlStatus
    scopes: list[ScopeResult]

    @property
    def failing(self) -> list[Resource]:
        return [r for s in self.scopes for r in s.failing]


class Summary(_Model):
    controls: int
    passed: int
    failed: int
    not_assessed: int
    score: float | None = Field(description="percent of assessed controls passing; null when none assessed")
    failing_resources: int
    verdicts: int


class TrendPoint(_Model):
    day: date
    verdicts: int = Field(description="verdicts of the framework's evidence kinds that day")
    violations: int = Field(description="violations of the framework's policies that day")
    failing_controls: int = Field(description="controls with at least one violation that day")


class FrameworkRef(_Model):
    id: str
    title: str
    version: str = ""
    url: str = ""


class Filters(_Model):
    namespace: str | None = None
    since: datetime | None = None


class ComplianceReport(_Model):
    schema_: str = Field(SCHEMA, alias="$schema")
    generated_at: datetime
    framework: FrameworkRef
    filters: Filters
    summary: Summary
    scopes: list[str]
    controls: list[ControlResult]
    trend: list[TrendPoint]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
