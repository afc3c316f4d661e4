"""What the store answers: pydantic rows, query filters and keyset pagination cursors."""

from __future__ import annotations

import base64
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from tribunal.model import Decision, Enforcement, EvidenceKind, Severity, Subject
from tribunal.store.errors import StoreError

T = TypeVar("T")


class FindingStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    EXCEPTED = "excepted"


class ViolationRow(BaseModel):
    policy: str
    severity: Severity
    enforcement: Enforcement
    msg: str
    controls: list[str]
    details: dict[str, Any]
    exception: str | None = None


class VerdictRow(BaseModel):
    evidence_id: str
    kind: EvidenceKind
    subject_key: str
    namespace: str | None
    decision: Decision
    policy_revision: str
    engine: str
    received_at: datetime
    evaluated_at: datetime
    latency_ms: float
    violations: list[ViolationRow] = Field(default_factory=list)


class ActionOutcomeRow(BaseModel):
    """One action taken (or refused, deduplicated, failed) on a verdict, as the dispatcher recorded it."""

    target: str
    status: str
    recorded_at: datetime
    outcome: dict[str, Any]


class VerdictDetail(VerdictRow):
    """``GET /verdicts/{id}``: the verdict, the outcomes of its actions, and whether its actions are
    still to run (in the action outbox)."""

    actions: list[ActionOutcomeRow] = Field(default_factory=list)
    actions_pending: bool = False


class FindingRow(BaseModel):
    """One (policy, subject): since when, how often, and whether it still holds."""

    policy: str
    subject_key: str
    kind: EvidenceKind
    namespace: str | None
    subject: Subject
    severity: Severity
    status: FindingStatus
    first_seen: datetime
    last_seen: datetime
    count: int
    first_evidence_id: str
    last_evidence_id: str
    msg: str
    controls: list[str]
    exception: str | None = None
    last_judged: datetime
    resolved_at: datetime | None = None


class ActivityRow(BaseModel):
    """Verdicts per day, namespace and evidence kind (kept at write time)."""

    day: date
    namespace: str | None
    kind: EvidenceKind
    verdicts: int
    denied: int
    warned: int


class DailyViolationsRow(BaseModel):
    day: date
    namespace: str | None
    policy: str
    violations: int


class StoredEvidence(BaseModel):
    id: str
    kind: EvidenceKind
    received_at: datetime
    source: str
    subject: Subject
    raw: bytes | None = Field(None, description="The document as it arrived; None once retention pruned it.")
    pruned_at: datetime | None = None


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = None


class VerdictQuery(_Query):
    """Filters of ``GET /verdicts``; ``namespace=""`` means cluster-scoped or unknown."""

    kind: EvidenceKind | None = None
    decision: Decision | None = None
    namespace: str | None = None
    subject: str | None = Field(None, description="exact subject key, namespace/kind/name")
    policy: str | None = Field(None, description="verdicts with a violation of this policy")
    since: datetime | None = None
    until: datetime | None = None


class FindingQuery(_Query):
    """Filters of ``GET /findings``; ``since`` compares with last_seen."""

    status: FindingStatus | None = None
    policy: list[str] | None = None
    kind: EvidenceKind | None = None
    namespace: str | None = None
    subject: str | None = None
    severity: Severity | None = None
    since: datetime | None = None


class Page(BaseModel, Generic[T]):
    """One page of results, newest first; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise StoreError(f"cursor: not a cursor this store gave ({exc})") from None
    if not isinstance(values, list) or len(values) != size:
        raise StoreError("cursor: not a cursor this store gave")
    return values
