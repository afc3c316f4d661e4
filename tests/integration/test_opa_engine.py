"""TRIBUNAL_ENGINE=opa: the real opa-python-client against a test server speaking OPA's REST API
(tests/opa_api.py; no OPA server can be installed here). What is pushed and removed, the errors a
bad module, a missing token, an unreachable or failing server give, and the webhook judging on it."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest

from tests.conftest import POLICY_DIR, pod, review
from tests.integration.conftest import StartServer, free_port
from tests.opa_api import OpaTestServer, running
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


@pytest.fixture
def opa() -> Iterator[OpaTestServer]:
    with running() as server:
        yield server


def test_building_pushes_every_module_and_the_data_and_removes_only_its_own_stale_modules(
    opa: OpaTestServer, policy_dir
) -> None:  # type: ignore[no-untyped-def]
    opa.policies["tribunal/admission/gone.rego"] = "package tribunal.admission.gone\n"
    opa.policies["team/other.rego"] = "package team.other\n"  # not Tribunal's: left alone
    policies = policy_dir({"admission/no_latest.rego": RULE, "data.yaml": "tribunal:\n  config: {a: 1}\n"})
    engine = OpaEngine(load_policy_set(policies), EngineOptions(opa_url=opa.url))
    try:
        assert set(opa.policies) == {
            "team/other.rego",
            "tribunal/lib/judge.rego",
            "tribunal/admission/no_latest.rego",
        }
        assert opa.policies["tribunal/admission/no_latest.rego"] == RULE
        assert opa.data == {"tribunal": {"config": {"a": 1}}}
        doc = review(pod({"name": "app", "image": "nginx:latest"}), uid="o-1")
        raw = engine.evaluate("admission", parse_evidence(doc, "t").policy_input_json())
        assert [(v["policy"], v["msg"], v["exception"]) for v in raw] == [("no_latest", "latest", None)]
    finally:
        engine.close()


def test_rego_that_does_not_compile_never_reaches_opa(opa: OpaTestServer, policy_dir) -> None:  # type: ignore[no-untyped-def]
    policies = policy_dir({"admission/broken.rego": "package tribunal.admission.broken\n\nx := \n"})
    with pytest.raises(PolicyLoadError, match=r"admission/broken\.rego:4:1"):
        OpaEngine(load_policy_set(policies), EngineOptions(opa_url=opa.url))
    assert opa.requests == {}  # compiled locally first: OPA was not asked anything


def test_a_module_opa_refuses_is_named_with_its_line(opa: OpaTestServer, policy_dir) -> None:  # type: ignore[no-untyped-def]
    opa.refuse.add("tribunal/admission/no_latest.rego")
    policies = policy_dir({"admission/no_latest.rego": RULE})
    with pytest.raises(
        PolicyLoadError,
        match=r"^admission/no_latest\.rego:3:1: refused by the test server \(OPA server at http",
    ):
        OpaEngine(load_policy_set(policies), EngineOptions(opa_url=opa.url))


def test_a_token_is_sent_when_opa_requires_one(policy_dir) -> None:  # type: ignore[no-untyped-def]
    with running(token="s3cret") as server:
        policies = load_policy_set(policy_dir({"admission/no_latest.rego": RULE}))
        with pytest.raises(PolicyLoadError, match="401"):
            OpaEngine(policies, EngineOptions(opa_url=server.url))
        OpaEngine(policies, EngineOptions(opa_url=server.url, opa_token="s3cret")).close()
        assert server.policies  # pushed once the token was given


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


def test_an_unreachable_server_fails_the_load_and_a_failing_one_the_evaluation(
    opa: OpaTestServer,
) -> None:
    library = load_policy_set(POLICY_DIR)
    with pytest.raises(PolicyLoadError, match=r"OPA server at http://127\.0\.0\.1:\d+: cannot load"):
        OpaEngine(library, EngineOptions(opa_url=f"http://127.0.0.1:{free_port()}", opa_timeout_seconds=1))
    judge = Judge.build(library, "opa", engine_options=EngineOptions(opa_url=opa.url))
    try:
        evidence = parse_evidence(review(pod(PRIVILEGED), uid="o-2"), "review.json")
        assert judge.judge(evidence).decision is Decision.DENY
        opa.fail_queries = True
        with pytest.raises(
            PolicyEvaluationError, match=r"review\.json: OPA server at .+internal_error: the test"
        ):
            judge.judge(evidence)
    finally:
        judge.engine.close()


async def test_the_webhook_judges_on_opa_and_fails_closed_when_it_breaks(  # type: ignore[no-untyped-def]
    start_server: StartServer, http: aiohttp.ClientSession, opa: OpaTestServer
) -> None:
    server, _ = await start_server(engine="opa", opa_url=opa.url, judge_workers=1)
    async with http.post(f"{server.url}/validate", json=review(pod(PRIVILEGED), uid="w-1")) as resp:
        answer = (await resp.json())["response"]
    assert answer["uid"] == "w-1" and answer["allowed"] is False
    assert "[privileged_containers]" in answer["status"]["message"]
    assert opa.requests[("POST", "v1/data")] >= 1  # judged by the server, in the worker process
    opa.fail_queries = True
    async with http.post(f"{server.url}/validate", json=review(pod(PRIVILEGED), uid="w-2")) as resp:
        answer = (await resp.json())["response"]
    assert answer["allowed"] is False and answer["status"]["code"] == 500
    assert "OPA server at" in answer["status"]["message"]
    assert answer["auditAnnotations"]["failure-policy"] == "fail_closed"


def test_an_opa_that_lost_the_policies_gets_them_again_instead_of_allowing(opa: OpaTestServer) -> None:
    judge = Judge.build(load_policy_set(POLICY_DIR), "opa", engine_options=EngineOptions(opa_url=opa.url))
    try:
        evidence = parse_evidence(review(pod(PRIVILEGED), uid="o-3"), "review.json")
        assert judge.judge(evidence).decision is Decision.DENY
        opa.restart()  # the sidecar restarted: OPA holds nothing
        verdict = judge.judge(evidence)
        assert verdict.decision is Decision.DENY
        assert "privileged_containers" in {v.policy for v in verdict.violations}
        assert "tribunal/lib/judge.rego" in opa.policies  # pushed again
    finally:
        judge.engine.close()
