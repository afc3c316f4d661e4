"""TRIBUNAL_ENGINE=opa: the real opa-python-client against the real OPA server (``opa run --server``,
tests/opa_server.py). What is pushed and removed, the errors a bad module, a module OPA's own compiler
refuses, a missing token, an unreachable or failing server give, the webhook judging on it, and a
restarted OPA that lost the policies."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest

from tests.conftest import POLICY_DIR, pod, review
from tests.integration.conftest import StartServer
from tests.opa_server import OpaServer, running_opa
from tribunal.model import Decision, parse_evidence
from tribunal.policy import EngineOptions, Judge, PolicyEvaluationError, PolicyLoadError, load_policy_set
from tribunal.policy.opa_engine import OpaEngine

PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}
RULE = """package tribunal.admission.no_latest
import rego.v1
violations contains {"msg": "latest", "severity": "low", "controls": ["x:1"], "details": {}} if {
	some c in input.event.request.object.spec.containers
	endswith(c.image, ":latest")
}
"""
JUDGE_QUERY = ("POST", "/v1/data/tribunal/lib/judge/admission")


@pytest.fixture
def opa() -> Iterator[OpaServer]:
    with running_opa() as server:
        yield server


def test_building_pushes_every_module_and_the_data_and_removes_only_its_own_stale_modules(
    opa: OpaServer, policy_dir
) -> None:  # type: ignore[no-untyped-def]
    opa.put_policy("tribunal/admission/gone.rego", "package tribunal.admission.gone\n")
    opa.put_policy("team/other.rego", "package team.other\n")  # not Tribunal's: left alone
    policies = policy_dir({"admission/no_latest.rego": RULE, "data.yaml": "tribunal:\n  config: {a: 1}\n"})
    engine = OpaEngine(load_policy_set(policies), EngineOptions(opa_url=opa.url))
    try:
        held = opa.policies()
        assert set(held) == {
            "team/other.rego",
            "tribunal/lib/judge.rego",
            "tribunal/admission/no_latest.rego",
        }
        assert held["tribunal/admission/no_latest.rego"] == RULE
        assert held["tribunal/lib/judge.rego"] == (POLICY_DIR / "lib" / "judge.rego").read_text()
        assert opa.data("tribunal/config") == {"a": 1}
        assert ("DELETE", "/v1/policies/tribunal/admission/gone.rego") in opa.received()
        doc = review(pod({"name": "app", "image": "nginx:latest"}), uid="o-1")
        raw = engine.evaluate("admission", parse_evidence(doc, "t").policy_input_json())
        assert [(v["policy"], v["msg"], v["exception"]) for v in raw] == [("no_latest", "latest", None)]
        assert opa.received()[-1] == JUDGE_QUERY  # OPA evaluated it
    finally:
        engine.close()


def test_rego_that_does_not_compile_never_reaches_opa(opa: OpaServer, policy_dir) -> None:  # type: ignore[no-untyped-def]
    policies = policy_dir({"admission/broken.rego": "package tribunal.admission.broken\n\nx := \n"})
    with pytest.raises(PolicyLoadError, match=r"admission/broken\.rego:4:1"):
        OpaEngine(load_policy_set(policies), EngineOptions(opa_url=opa.url))
    assert opa.received() == []  # compiled locally first: OPA was not asked anything
    assert opa.policies() == {}


def test_a_module_opa_refuses_is_named_with_its_line(opa: OpaServer, policy_dir) -> None:  # type: ignore[no-untyped-def]
    """regorus compiles it (it has no type checker); OPA's type checker refuses the built-in call."""
    mistyped = RULE.replace('endswith(c.image, ":latest")', "endswith(c.image, 5)")
    policies = load_policy_set(policy_dir({"admission/no_latest.rego": mistyped}))
    with pytest.raises(
        PolicyLoadError,
        match=r"^admission/no_latest\.rego:5:\d+: endswith: invalid argument\(s\) \(OPA server at http",
    ):
        OpaEngine(policies, EngineOptions(opa_url=opa.url))
    assert ("PUT", "/v1/policies/tribunal/admission/no_latest.rego") in opa.received()
    assert "tribunal/admission/no_latest.rego" not in opa.policies()


def test_a_token_is_sent_when_opa_requires_one(policy_dir) -> None:  # type: ignore[no-untyped-def]
    with running_opa(token="s3cret") as server:
        policies = load_policy_set(policy_dir({"admission/no_latest.rego": RULE}))
        for token in (None, "wrong"):
            with pytest.raises(PolicyLoadError, match="401"):
                OpaEngine(policies, EngineOptions(opa_url=server.url, opa_token=token))
        assert not [pid for pid in server.policies() if pid.startswith("tribunal/")]
        OpaEngine(policies, EngineOptions(opa_url=server.url, opa_token="s3cret")).close()
        assert {"tribunal/lib/judge.rego", "tribunal/admission/no_latest.rego"} <= set(server.policies())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, "set TRIBUNAL_OPA_URL"),
        ("opa:8181", "expected http"),
        ("http://opa:8181/v1", "no path"),
    ],
)
def test_a_missing_or_malformed_url_is_refused(url: str | None, expected: str) -> None:
    with pytest.raises(PolicyLoadError, match=expected):
        OpaEngine(load_policy_set(POLICY_DIR), EngineOptions(opa_url=url))


def test_a_stopped_server_fails_the_evaluation_and_the_load(opa: OpaServer) -> None:
    library = load_policy_set(POLICY_DIR)
    options = EngineOptions(opa_url=opa.url, opa_timeout_seconds=1)
    judge = Judge.build(library, "opa", engine_options=options)
    try:
        evidence = parse_evidence(review(pod(PRIVILEGED), uid="o-2"), "review.json")
        assert judge.judge(evidence).decision is Decision.DENY
        opa.stop()
        with pytest.raises(
            PolicyEvaluationError, match=r"review\.json: OPA server at http://127\.0\.0\.1:\d+ unreachable"
        ):
            judge.judge(evidence)
    finally:
        judge.engine.close()
    with pytest.raises(PolicyLoadError, match=r"OPA server at http://127\.0\.0\.1:\d+: cannot load"):
        OpaEngine(library, options)


def test_an_opa_error_while_judging_is_an_evaluation_error(opa: OpaServer, policy_dir) -> None:  # type: ignore[no-untyped-def]
    """A complete rule with two values: regorus compiles it, OPA answers the query 500 internal_error."""
    conflicting = """package tribunal.admission.conflicting
import rego.v1
severity := "low" if input.event.request.object.spec.containers
severity := "high" if input.event.request.object.metadata.name
violations contains {"msg": "m", "severity": severity, "controls": ["x:1"], "details": {}}
"""
    policies = load_policy_set(policy_dir({"admission/conflicting.rego": conflicting}))
    judge = Judge.build(policies, "opa", engine_options=EngineOptions(opa_url=opa.url))
    try:
        evidence = parse_evidence(review(pod(PRIVILEGED), uid="o-4"), "review.json")
        with pytest.raises(
            PolicyEvaluationError,
            match=r"review\.json: OPA server at .+internal_error: error\(s\) occurred while evaluating query; "
            r"rule data\.tribunal\.admission\.conflicting\.severity produced conflicting values",
        ):
            judge.judge(evidence)
    finally:
        judge.engine.close()


async def test_the_webhook_judges_on_opa_and_fails_closed_when_it_breaks(  # type: ignore[no-untyped-def]
    start_server: StartServer, http: aiohttp.ClientSession, opa: OpaServer
) -> None:
    server, _ = await start_server(engine="opa", opa_url=opa.url, judge_workers=1)
    async with http.post(f"{server.url}/validate", json=review(pod(PRIVILEGED), uid="w-1")) as resp:
        answer = (await resp.json())["response"]
    assert answer["uid"] == "w-1" and answer["allowed"] is False
    assert "[privileged_containers]" in answer["status"]["message"]
    # Judged by OPA, in the worker process: OPA's decision log holds this review and its verdict.
    [decision] = [d for d in opa.decisions() if d["input"]["event"]["request"]["uid"] == "w-1"]
    assert decision["path"] == "tribunal/lib/judge/admission"
    assert "privileged_containers" in {v["policy"] for v in decision["result"]}
    opa.stop()
    async with http.post(f"{server.url}/validate", json=review(pod(PRIVILEGED), uid="w-2")) as resp:
        answer = (await resp.json())["response"]
    assert answer["allowed"] is False and answer["status"]["code"] == 500
    assert "OPA server at" in answer["status"]["message"]
    assert answer["auditAnnotations"]["failure-policy"] == "fail_closed"


def test_an_opa_that_lost_the_policies_gets_them_again_instead_of_allowing(opa: OpaServer) -> None:
    judge = Judge.build(load_policy_set(POLICY_DIR), "opa", engine_options=EngineOptions(opa_url=opa.url))
    try:
        evidence = parse_evidence(review(pod(PRIVILEGED), uid="o-3"), "review.json")
        assert judge.judge(evidence).decision is Decision.DENY
        first = opa.process
        opa.restart()  # the sidecar restarted: a new OPA process on the same port, holding nothing
        assert opa.process is not first and first is not None and first.returncode is not None
        assert opa.policies() == {}
        verdict = judge.judge(evidence)
        assert verdict.decision is Decision.DENY
        assert "privileged_containers" in {v.policy for v in verdict.violations}
        held = opa.policies()  # pushed again
        assert "tribunal/lib/judge.rego" in held
        assert "tribunal/admission/privileged_containers.rego" in held
    finally:
        judge.engine.close()
