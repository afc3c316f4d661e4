"""Judge evidence: one engine query per evidence, violations typed, enforcement applied, a Verdict out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from tribunal.model import Decision, Enforcement, Evidence, Severity, Verdict, Violation, decide
from tribunal.policy.enforcement import EnforcementConfig
from tribunal.policy.engine import EngineOptions, PolicyEngine, create_engine
from tribunal.policy.errors import PolicyEvaluationError
from tribunal.policy.loader import PolicySet


class EvaluationWatch(Protocol):
    """Told before the engine starts on each evidence of a ``judge_many`` call (its index), and
    when it is done with all of them: a judge worker limits each evaluation's CPU time with it."""

    def evaluating(self, index: int) -> None: ...

    def done(self) -> None: ...


class Judge:
    """One compiled revision of the policies plus the enforcement overrides. Immutable: a reload
    builds a new Judge and swaps the reference."""

    def __init__(
        self,
        policy_set: PolicySet,
        engine: PolicyEngine,
        enforcement: EnforcementConfig | None = None,
        engine_options: EngineOptions | None = None,
    ) -> None:
        self.policy_set = policy_set
        self.engine = engine
        self.enforcement = enforcement or EnforcementConfig()
        self.engine_options = engine_options or EngineOptions()

    @classmethod
    def build(
        cls,
        policy_set: PolicySet,
        engine_name: str = "regorus",
        enforcement: EnforcementConfig | None = None,
        engine_options: EngineOptions | None = None,
    ) -> Judge:
        engine = create_engine(engine_name, policy_set, engine_options)
        return cls(policy_set, engine, enforcement, engine_options)

    @property
    def revision(self) -> str:
        return self.policy_set.revision

    def judge(self, evidence: Evidence, context: dict[str, Any] | None = None) -> Verdict:
        """The verdict on ``evidence``; raises PolicyEvaluationError when the policies fail on it."""
        raw, latency_ms = self._evaluate(evidence, evidence.policy_input_json(context))
        return self._verdict(evidence, raw, latency_ms)

    def judge_many(
        self, evidences: Sequence[Evidence], watch: EvaluationWatch | None = None
    ) -> list[Verdict | Exception]:
        """The verdict on each of ``evidences``, or the exception judging it raised (a
        PolicyEvaluationError when the policies failed on it), in order. ``watch`` is told when each
        evaluation starts and when the last is done.

        Judged in passes (every input, then every engine query, then every verdict) rather than one
        evidence at a time: the engine's code and data stay in the CPU's caches from one query to the
        next, which measured 4-9% less CPU per evidence than interleaving queries with Python."""
        inputs: list[bytes | Exception] = []
        for evidence in evidences:
            try:
                inputs.append(evidence.policy_input_json())
            except Exception as exc:
                inputs.append(exc)
        evaluated: list[tuple[list[dict[str, Any]], float] | Exception] = []
        try:
            for index, (evidence, input_json) in enumerate(zip(evidences, inputs, strict=True)):
                if isinstance(input_json, Exception):
                    evaluated.append(input_json)
                    continue
                if watch is not None:
                    watch.evaluating(index)
                try:
                    evaluated.append(self._evaluate(evidence, input_json))
                except Exception as exc:
                    evaluated.append(exc)
        finally:
            if watch is not None:
                watch.done()
        verdicts: list[Verdict | Exception] = []
        for evidence, result in zip(evidences, evaluated, strict=True):
            if isinstance(result, Exception):
                verdicts.append(result)
                continue
            try:
                verdicts.append(self._verdict(evidence, *result))
            except Exception as exc:
                verdicts.append(exc)
        return verdicts

    def _evaluate(self, evidence: Evidence, input_json: bytes) -> tuple[list[dict[str, Any]], float]:
        """The engine's raw violations for ``input_json`` and the query's time in milliseconds."""
        started = time.perf_counter()
        try:
            raw = self.engine.evaluate(evidence.kind.value, input_json)
        except PolicyEvaluationError as exc:
            raise PolicyEvaluationError(f"{evidence.source or evidence.id}: {exc}") from None
        return raw, (time.perf_counter() - started) * 1000

    def _verdict(self, evidence: Evidence, raw: list[dict[str, Any]], latency_ms: float) -> Verdict:
        """The Verdict on ``raw``, the engine's violations: every violation validated in one call of
        pydantic's (one call per violation took 21 µs per verdict here, this 17)."""
        namespace = evidence.subject.namespace
        fields = [self._violation_fields(item, namespace) for item in raw]
        try:
            verdict = Verdict.model_validate(
                {
                    "evidence_id": evidence.id,
                    "kind": evidence.kind,
                    "subject": evidence.subject,
                    "decision": Decision.ALLOW,  # decided below, on the validated violations
                    "violations": fields,
                    "policy_revision": self.revision,
                    "engine": self.engine.name,
                    "evaluated_at": datetime.now(UTC),
                    "latency_ms": round(latency_ms, 4),
                }
            )
        except ValidationError as exc:
            raise self._contract_error(exc, fields) from None
        verdict.violations.sort(key=_violation_order)
        verdict.decision = decide(verdict.violations)
        return verdict

    def _violation_fields(self, item: dict[str, Any], namespace: str | None) -> dict[str, Any]:
        """A Violation's fields from one engine result: the policy's metadata fills what the result
        leaves out, and its enforcement is resolved for ``namespace``."""
        policy_id = str(item.get("policy", ""))
        info = self.policy_set.policy(policy_id)
        default = info.enforcement if info else Enforcement.DENY
        return {
            "policy": policy_id,
            "msg": item.get("msg", ""),
            "severity": item.get("severity") or (info.severity if info else Severity.MEDIUM),
            "controls": item.get("controls") or (info.controls if info else []),
            "details": item.get("details") or {},
            "enforcement": self.enforcement.resolve(policy_id, default, namespace),
            "exception": item.get("exception"),
        }

    def _contract_error(self, exc: ValidationError, fields: list[dict[str, Any]]) -> PolicyEvaluationError:
        """The first error of ``exc``, named by the file of the policy whose violation broke the contract."""
        err = exc.errors(include_url=False)[0]
        loc = err["loc"]
        if len(loc) >= 2 and loc[0] == "violations" and isinstance(loc[1], int):
            policy_id = fields[loc[1]]["policy"]
            info = self.policy_set.policy(policy_id)
            where, loc = (info.path if info else policy_id), loc[2:]
        else:
            where = "the verdict"
        return PolicyEvaluationError(
            f"{where}: a violation breaks the contract at {'.'.join(map(str, loc))}: {err['msg']}"
        )


def _violation_order(violation: Violation) -> tuple[int, str, str]:
    """Worst first, then by policy and message."""
    return (-violation.severity.rank, violation.policy, violation.msg)
