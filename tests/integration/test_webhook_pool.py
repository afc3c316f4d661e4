"""The admission webhook judging in real judge worker processes (the production path), and inline on
the event loop: the same answers, 400s naming the field, dry runs unrecorded, failure policy."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import expected_decisions, needs_shared, pod, review, shared_fixtures
from tests.integration.conftest import StartServer
from tests.integration.test_webhook import PRIVILEGED, RESTRICTED_OK, post
from tests.integration.test_webhook_failures import FAILING_POLICY

ALLOWED = {"deny": False, "violation": True, "allow": True, "-": True}


@needs_shared
@pytest.mark.parametrize(("workers", "judging"), [(1, "pool"), (0, "inline")])
async def test_shared_reviews_get_their_expected_decision(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, workers: int, judging: str
) -> None:
    server, recorder = await start_server(exempt_namespaces=[], judge_workers=workers, webhook_judge=judging)
    expected = expected_decisions()
    docs = {path.name: json.loads(path.read_text()) for path in shared_fixtures("admission", ".json")}
    # All at once: reviews that arrive while the worker is busy are judged together.
    answers = await asyncio.gather(*(post(http, server.url, doc) for doc in docs.values()))
    for (name, doc), (status, answer) in zip(docs.items(), answers, strict=True):
        assert status == 200, name
        response = answer["response"]
        assert response["uid"] == doc["request"]["uid"], name
        assert response["allowed"] is ALLOWED[expected[name]], name
        if expected[name] == "deny":
            assert response["status"]["code"] == 403, name
        if expected[name] == "violation":
            assert response["warnings"], name
    records = await recorder.wait_for(len(docs))
    assert {r.evidence.id for r in records} == {doc["request"]["uid"] for doc in docs.values()}
    assert all(r.raw is not None and r.evidence.subject == r.verdict.subject for r in records)


async def test_a_worker_names_the_bad_field_and_skips_dry_runs(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, recorder = await start_server(judge_workers=1, webhook_judge="pool")
    doc = review(pod(PRIVILEGED), uid="w-1")
    doc["request"]["operation"] = "EXPLODE"
    status, error = await post(http, server.url, doc)
    assert status == 400 and error["field"] == "request.operation"
    assert not error["error"].startswith("AdmissionReview")
    dry = review(pod(PRIVILEGED), uid="w-2")
    dry["request"]["dryRun"] = "true"  # the model reads it leniently: still a dry run
    status, answer = await post(http, server.url, dry)
    assert status == 200 and answer["response"]["allowed"] is False
    status, answer = await post(http, server.url, review(pod(RESTRICTED_OK), uid="w-3"))
    assert status == 200 and answer["response"]["uid"] == "w-3"
    assert [r.evidence.id for r in await recorder.wait_for(1)] == ["w-3"]


async def test_exempt_reviews_are_still_validated(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, _ = await start_server(judge_workers=1, webhook_judge="pool")
    doc = review(pod(PRIVILEGED), uid="e-1", namespace="kube-system")
    status, answer = await post(http, server.url, doc)
    assert status == 200 and answer["response"]["auditAnnotations"]["exempt"] == "namespace kube-system"
    doc["request"]["operation"] = "EXPLODE"
    status, error = await post(http, server.url, doc)
    assert status == 400 and error["field"] == "request.operation"


async def test_policy_failure_in_a_worker_gets_the_failure_policy(  # type: ignore[no-untyped-def]
    start_server: StartServer, http, policy_dir
) -> None:
    # The interpreter halts on the policy's error (the RVM would make it undefined).
    server, _ = await start_server(
        policy_dir=policy_dir({"admission/buggy.rego": FAILING_POLICY}),
        engine="regorus-interpreter",
        judge_workers=1,
        webhook_judge="pool",
    )
    status, answer = await post(http, server.url, review(pod(PRIVILEGED), uid="b-1"))
    response = answer["response"]
    assert status == 200 and response["allowed"] is False and response["status"]["code"] == 500
    assert "buggy.rego" in response["status"]["message"]
    assert response["auditAnnotations"]["failure-policy"] == "fail_closed"


async def test_verdicts_held_for_recording_are_written_on_stop(start_server: StartServer, http) -> None:  # type: ignore[no-untyped-def]
    server, recorder = await start_server(judge_workers=1, webhook_judge="pool")
    answers = await asyncio.gather(
        *(post(http, server.url, review(pod(PRIVILEGED), uid=f"st-{i}")) for i in range(5))
    )
    assert all(status == 200 for status, _ in answers)
    await server.stop()  # at once: whatever the webhook still holds back goes to the recorder
    assert sorted(r.evidence.id for r in recorder.records) == [f"st-{i}" for i in range(5)]
