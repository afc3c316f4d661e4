"""``tribunal policy test``: run every ``test_*`` rule of the ``*_test.rego`` files, as ``opa test`` does.

Tests run on regorus's interpreter: rego-cpp (regopy 1.5.2) crashes on several ``with input as`` forms
that tests rely on, and regorus's RVM does not take ``with`` at all; verdict parity between the engines
is held by the conformance tests instead. The report also says whether the RVM compiles the policies
(without their tests), since ``regorus`` judges admission reviews and Falco alerts there when it
does."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tribunal.policy.errors import engine_message
from tribunal.policy.loader import PolicySet, load_policy_set
from tribunal.policy.regorus_engine import VM_KINDS, build_engine, vm_compilable

_TEST_RULE = re.compile(r"^(test_\w+)\b", re.M)


@dataclass(frozen=True)
class TestResult:
    name: str  # data.<package>.<rule>
    location: str  # file:line
    passed: bool
    error: str | None = None
    duration_ms: float = 0.0


@dataclass
class TestReport:
    results: list[TestResult] = field(default_factory=list)
    # Per evidence kind, why regorus's RVM cannot compile its policies (that kind then runs on the
    # interpreter); empty when it compiles them all.
    vm_refused: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    def failures(self) -> list[TestResult]:
        return [r for r in self.results if not r.passed]


def run_policy_tests(
    policy_dir: Path | str,
    extra_data: Iterable[Path] = (),
    name_filter: str | None = None,
    *,
    allow_network: bool = False,
) -> TestReport:
    """Load ``policy_dir`` with its tests and evaluate each test rule; a test passes when it is true."""
    policy_set = load_policy_set(policy_dir, extra_data, include_tests=True, allow_network=allow_network)
    engine = build_engine(policy_set)
    pattern = re.compile(name_filter) if name_filter else None
    report = TestReport(vm_refused=_vm_refused(policy_set))
    for module in policy_set.modules:
        if not module.is_test:
            continue
        seen: set[str] = set()
        for match in _TEST_RULE.finditer(module.source):
            rule = match.group(1)
            if rule in seen:  # several bodies of one rule are one test
                continue
            seen.add(rule)
            name = f"data.{module.package}.{rule}"
            if pattern and not pattern.search(name):
                continue
            line = module.source[: match.start()].count("\n") + 1
            started = time.perf_counter()
            try:
                passed, error = orjson.loads(engine.eval_rule_as_json(name)) is True, None
            except RuntimeError as exc:
                passed, error = False, engine_message(exc)
            report.results.append(
                TestResult(
                    name=name,
                    location=f"{module.path}:{line}",
                    passed=passed,
                    error=error,
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
            )
    return report


def _vm_refused(policy_set: PolicySet) -> dict[str, str]:
    """Per kind, why the RVM refuses the policies of ``policy_set`` without its tests."""
    policies = dataclasses.replace(policy_set, modules=tuple(m for m in policy_set.modules if not m.is_test))
    return vm_compilable(policies, orjson.dumps(policies.data).decode(), VM_KINDS)[1]
