"""What a violation names is what its policy declares: every control a violation names (over every
shared sample) is in its policy's ``controls`` metadata, and so in a framework catalogue (the
catalogues and the metadata are held to each other by tests/unit/reports/test_frameworks.py)."""

from __future__ import annotations

from tests.conformance.conftest import relative
from tribunal.model import Evidence
from tribunal.policy import Judge, PolicySet


def test_violations_name_only_controls_their_policy_declares(
    shared_evidence: list[Evidence], library: PolicySet
) -> None:
    judge = Judge.build(library)
    undeclared = {
        (relative(e.source), v.policy, c)
        for e in shared_evidence
        for v in judge.judge(e).violations
        for c in v.controls
        if c not in library.policies[v.policy].controls
    }
    assert undeclared == set()
