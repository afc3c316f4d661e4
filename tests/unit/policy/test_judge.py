"""Judging: enforcement modes and overrides, exceptions, decisions, hot reload, policy tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import pod, review
from tests.unit.policy.test_loader_and_engines import PRIVILEGED, PRIVILEGED_TEST
from tribunal.model import Decision, Enforcement, Verdict, parse_evidence
from tribunal.policy import (
    EnforcementConfig,
    Judge,
    PolicyEvaluationError,
    PolicyLoadError,
    PolicyRuntime,
    load_enforcement,
    load_policy_set,
    run_policy_tests,
)

Build = Callable[[dict[str, str]], Path]

LATEST = (
    PRIVILEGED.replace("tribunal.admission.privileged", "tribunal.admission.latest_tag")
    .replace("enforcement: deny", "enforcement: warn")
    .replace("c.securityContext.privileged == true", 'endswith(c.image, ":latest")')
    .replace('"%s is privileged"', '"%s uses :latest"')
    .replace('"high"', '"low"')
)

PRIV_POD = pod({"name": "a", "image": "nginx:latest", "securityContext": {"privileged": True}})
LATEST_POD = pod({"name": "a", "image": "nginx:latest"})
CLEAN_POD = pod({"name": "a", "image": "nginx:1.27"})


@pytest.fixture
def judge(policy_dir: Build) -> Judge:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED, "admission/latest_tag.rego": LATEST})
    return Judge.build(load_policy_set(root))


def test_deny_policy_denies_and_orders_by_severity(judge: Judge) -> None:
    verdict = judge.judge(parse_evidence(review(PRIV_POD, uid="x1")))
    assert verdict.decision is Decision.DENY
    assert verdict.evidence_id == "x1"
    assert [v.policy for v in verdict.violations] == ["privileged", "latest_tag"]
    assert [v.enforcement for v in verdict.violations] == [Enforcement.DENY, Enforcement.WARN]
    assert verdict.policy_revision == judge.revision
    assert verdict.engine == "regorus"
    assert verdict.latency_ms > 0


def test_warn_policy_warns(judge: Judge) -> None:
    assert judge.judge(parse_evidence(review(LATEST_POD))).decision is Decision.WARN


def test_clean_object_is_allowed(judge: Judge) -> None:
    verdict = judge.judge(parse_evidence(review(CLEAN_POD)))
    assert verdict.decision is Decision.ALLOW and verdict.violations == []


# Fails at run time on a pod without labels (regorus's interpreter errors on iterating null; its RVM
# treats that as undefined): a policy bug that shows on some inputs only.
FAILS_WITHOUT_LABELS = """package tribunal.admission.buggy
import rego.v1
violations contains {"msg": "never", "severity": "low", "controls": ["x:1"], "details": {}} if {
	some c in object.get(input.event.request.object.metadata, "labels", null)
	c == "boom"
}
"""


def test_judging_many_gives_each_evidence_its_own_verdict_or_error(policy_dir: Build) -> None:
    root = policy_dir(
        {
            "admission/privileged.rego": PRIVILEGED,
            "admission/latest_tag.rego": LATEST,
            "admission/buggy.rego": FAILS_WITHOUT_LABELS,
        }
    )
    judge = Judge.build(load_policy_set(root), "regorus-interpreter")
    labelled = [
        {**p, "metadata": {**p["metadata"], "labels": {"app": "x"}}}
        for p in (PRIV_POD, LATEST_POD, CLEAN_POD)
    ]
    docs = [labelled[0], LATEST_POD, labelled[1], labelled[2]]  # the second has no labels: the policy fails
    evidences = [parse_evidence(review(d, uid=f"u{i}")) for i, d in enumerate(docs)]
    results = judge.judge_many(evidences)
    assert len(results) == 4
    failed = results[1]
    assert isinstance(failed, PolicyEvaluationError) and "buggy.rego" in str(failed)
    for evidence, result in zip(evidences[::2] + evidences[3:], results[::2] + results[3:], strict=True):
        assert isinstance(result, Verdict)
        alone = judge.judge(evidence)
        assert result.evidence_id == evidence.id
        assert result.decision is alone.decision
        assert result.violations == alone.violations
    assert [r.decision for r in results if isinstance(r, Verdict)] == [
        Decision.DENY,
        Decision.WARN,
        Decision.ALLOW,
    ]
    assert judge.judge_many([]) == []


# A violation whose severity is not on the scale: the policy's bug, named by its file and the field.
BAD_SEVERITY = """package tribunal.admission.bad_severity
import rego.v1
violations contains {"msg": "odd", "severity": "urgent", "controls": ["x:1"], "details": {}} if {
	input.event.request.object.kind == "Pod"
}
"""


def test_a_violation_breaking_the_contract_names_its_policy_file_and_field(policy_dir: Build) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED, "admission/bad_severity.rego": BAD_SEVERITY})
    judge = Judge.build(load_policy_set(root))
    with pytest.raises(
        PolicyEvaluationError, match=r"bad_severity\.rego: a violation breaks the contract at severity"
    ):
        judge.judge(parse_evidence(review(PRIV_POD)))
    [failed] = judge.judge_many([parse_evidence(review(PRIV_POD, uid="u1"))])
    assert isinstance(failed, PolicyEvaluationError) and "bad_severity.rego" in str(failed)


def test_overrides_global_and_per_namespace(policy_dir: Build) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED, "admission/latest_tag.rego": LATEST})
    config = EnforcementConfig.model_validate(
        {"policies": {"latest_tag": "deny"}, "namespaces": {"lab": {"*": "dryrun"}}}
    )
    judge = Judge.build(load_policy_set(root), enforcement=config)
    assert judge.judge(parse_evidence(review(LATEST_POD))).decision is Decision.DENY
    in_lab = judge.judge(parse_evidence(review(PRIV_POD, namespace="lab")))
    assert in_lab.decision is Decision.ALLOW
    assert {v.enforcement for v in in_lab.violations} == {Enforcement.DRYRUN}  # recorded, not acted on


def test_excepted_violation_is_kept_but_does_not_deny(policy_dir: Build) -> None:
    data = (
        'tribunal:\n  exceptions:\n    - {policy: privileged, images: ["nginx:*"], reason: "vendor image"}\n'
    )
    root = policy_dir({"admission/privileged.rego": PRIVILEGED, "data/exceptions.yaml": data})
    verdict = Judge.build(load_policy_set(root)).judge(parse_evidence(review(PRIV_POD)))
    assert verdict.decision is Decision.ALLOW
    [violation] = verdict.violations
    assert violation.exception == "vendor image"


@pytest.mark.parametrize("engine", ["regorus", "regopy"])
def test_both_engines_reach_the_same_verdict(policy_dir: Build, engine: str) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED, "admission/latest_tag.rego": LATEST})
    verdict = Judge.build(load_policy_set(root), engine).judge(parse_evidence(review(PRIV_POD)))
    assert verdict.engine == engine
    assert verdict.decision is Decision.DENY
    assert [v.policy for v in verdict.violations] == ["privileged", "latest_tag"]


def test_enforcement_file_errors_name_the_field(tmp_path: Path) -> None:
    (tmp_path / "enforcement.yaml").write_text("policies:\n  privileged: sometimes\n")
    with pytest.raises(PolicyLoadError, match=r"enforcement\.yaml: policies\.privileged"):
        load_enforcement(tmp_path)
    assert load_enforcement(tmp_path / "absent") == EnforcementConfig()


def test_judging_from_several_threads_gives_each_its_engine(judge: Judge) -> None:
    evidence = parse_evidence(review(PRIV_POD))
    decisions: list[Decision] = []

    def work() -> None:
        decisions.extend(judge.judge(evidence).decision for _ in range(20))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert decisions == [Decision.DENY] * 60


def test_reload_swaps_to_the_new_revision(policy_dir: Build) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    runtime = PolicyRuntime(root)
    evidence = parse_evidence(review(LATEST_POD))
    old_judge, old_revision = runtime.judge, runtime.revision
    assert runtime.judge.judge(evidence).decision is Decision.ALLOW
    assert runtime.reload() is False  # nothing changed
    (root / "admission" / "latest_tag.rego").write_text(LATEST)
    assert runtime.reload() is True
    assert runtime.revision != old_revision
    assert runtime.judge.judge(evidence).decision is Decision.WARN
    assert old_judge.judge(evidence).decision is Decision.ALLOW  # in-flight work keeps its revision


def test_broken_reload_keeps_the_running_revision(policy_dir: Build) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    runtime = PolicyRuntime(root)
    revision = runtime.revision
    (root / "admission" / "broken.rego").write_text("package tribunal.admission.broken\nv if {\n")
    assert runtime.reload() is False
    assert runtime.revision == revision
    assert runtime.last_error is not None and "admission/broken.rego" in runtime.last_error
    (root / "admission" / "broken.rego").unlink()
    (root / "admission" / "latest_tag.rego").write_text(LATEST)
    assert runtime.reload() is True
    assert runtime.last_error is None


async def test_watch_picks_up_changes(policy_dir: Build) -> None:
    import asyncio

    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    runtime = PolicyRuntime(root)
    revision = runtime.revision
    task = asyncio.create_task(runtime.watch(interval=0.01))
    try:
        (root / "admission" / "latest_tag.rego").write_text(LATEST)
        for _ in range(500):
            if runtime.revision != revision:
                break
            await asyncio.sleep(0.01)
        assert runtime.revision != revision
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_policy_tests_report_passes_and_failures(policy_dir: Build) -> None:
    root = policy_dir(
        {"admission/privileged.rego": PRIVILEGED, "admission/privileged_test.rego": PRIVILEGED_TEST}
    )
    report = run_policy_tests(root)
    assert (report.passed, report.failed) == (2, 1)
    [failure] = report.failures()
    assert failure.name == "data.tribunal.admission.privileged.test_wrong_expectation"
    assert failure.location == "admission/privileged_test.rego:15"
    assert run_policy_tests(root, name_filter="plain").passed == 1
