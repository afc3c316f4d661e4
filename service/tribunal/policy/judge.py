"""Judge evidence: one engine query per evidence, violations typed, enforcement applied, a Verdict out."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from tribunal.model import Enforcement, Evidence, Severity, Verdict, Violation, decide
from tribunal.policy.enforcement import EnforcementConfig
from tribunal.policy.engine import PolicyEngine, create_engine
from tribunal.policy.errors import PolicyEvaluationError
from tribunal.policy.loader import PolicySet


class Judge:
    """One compiled revision of the policies plus the enforcement overrides. Immutable: a reload
    builds a new Judge and swaps the reference."""

    def __init__(
        self, policy_set: PolicySet, engine: PolicyEngine, enforcement: EnforcementConfig | None = None
    ) -> None:
        self.policy_set = policy_set
        self.engine = engine
        self.enforcement = enforcement or EnforcementConfig()

    @classmethod
    def build(
        cls, policy_set: PolicySet, engine_name: str = "regorus", enforcement: EnforcementConfig | None = None
    ) -> Judge:
        return cls(policy_set, create_engine(engine_name, policy_set), enforcement)

    @property
    def revision(self) -> str:
        return self.policy_set.revision

    def judge(self, evidence: Evidence, context: dict[str, Any] | None = None) -> Verdict:
        """The verdict on ``evidence``; raises PolicyEvaluationError when the policies fail on it."""
        input_json = evidence.policy_input_json(context)
        started = time.perf_counter()
        try:
            raw = self.engine.evaluate(evidence.kind.value, input_json)
        except PolicyEvaluationError as exc:
            raise PolicyEvaluationError(f"{evidence.source or evidence.id}: {exc}") from None
        latency_ms = (time.perf_counter() - started) * 1000
        violations = sorted(
            (self._violation(item, evidence) for item in raw),
            key=lambda v: (-v.severity.rank, v.policy, v.msg),
        )
        return Verdict(
            evidence_id=evidence.id,
            kind=evidence.kind,
            subject=evidence.subject,
            decision=decide(violations),
            violations=violations,
            policy_revision=self.revision,
            engine=self.engine.name,
            evaluated_at=datetime.now(UTC),
            latency_ms=round(latency_ms, 4),
        )

    def _violation(self, item: dict[str, Any], evidence: Evidence) -> Violation:
        policy_id = str(item.get("policy", ""))
        info = self.policy_set.policy(policy_id)
        default = info.enforcement if info else Enforcement.DENY
        enforcement = self.enforcement.resolve(policy_id, default, evidence.subject.namespace)
        try:
            return Violation.model_validate(
                {
                    "policy": policy_id,
                    "msg": item.get("msg", ""),
                    "severity": item.get("severity") or (info.severity if info else Severity.MEDIUM),
                    "controls": item.get("controls") or (info.controls if info else []),
                    "details": item.get("details") or {},
                    "enforcement": enforcement,
                    "exception": item.get("exception"),
                }
            )
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = info.path if info else policy_id
            raise PolicyEvaluationError(
                f"{where}: a violation breaks the contract at {'.'.join(map(str, err['loc']))}: {err['msg']}"
            ) from None
