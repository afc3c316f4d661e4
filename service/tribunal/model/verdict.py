"""What judging one piece of evidence concludes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from tribunal.model.common import Severity
from tribunal.model.evidence import EvidenceKind, Subject


class Decision(StrEnum):
    ALLOW = "allow"
    WARN = "warn"
    DENY = "deny"

    @property
    def rank(self) -> int:
        return {"allow": 0, "warn": 1, "deny": 2}[self.value]


class Enforcement(StrEnum):
    """What a policy's violation does, as in Gatekeeper's enforcementAction."""

    DENY = "deny"
    WARN = "warn"
    DRYRUN = "dryrun"


class Violation(BaseModel):
    """One reason a policy objects, with the policy that raised it."""

    policy: str
    msg: str
    severity: Severity
    controls: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    enforcement: Enforcement = Enforcement.DENY
    exception: str | None = None  # the reason, when an exception in policy data covers this violation

    @property
    def effective(self) -> bool:
        """Counts towards the decision: not excepted and not dry-run."""
        return self.exception is None and self.enforcement is not Enforcement.DRYRUN


class Verdict(BaseModel):
    evidence_id: str
    kind: EvidenceKind
    subject: Subject
    decision: Decision
    violations: list[Violation] = Field(default_factory=list)
    policy_revision: str
    engine: str
    evaluated_at: datetime
    latency_ms: float = Field(description="Time the policy engine took, in milliseconds.")

    @property
    def denying(self) -> list[Violation]:
        return [v for v in self.violations if v.effective and v.enforcement is Enforcement.DENY]

    @property
    def warning(self) -> list[Violation]:
        return [v for v in self.violations if v.effective and v.enforcement is Enforcement.WARN]


def decide(violations: list[Violation]) -> Decision:
    """deny if any effective violation is enforced as deny, warn if any as warn, else allow."""
    decision = Decision.ALLOW
    for violation in violations:
        if not violation.effective:
            continue
        if violation.enforcement is Enforcement.DENY:
            return Decision.DENY
        decision = Decision.WARN
    return decision
