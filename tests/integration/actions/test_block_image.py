"""The loop from vulnerability verdicts into admission: block-image writes policy data, the policy
runtime reloads it, the admission judge denies the image; a restart keeps it; a clean report clears it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import POLICY_DIR, RULES_DIR, pod, review, trivy_report
from tests.integration.actions.conftest import MakeDispatcher
from tribunal.actions import ImageBlocklist, policy_reloader
from tribunal.model import Verdict, parse_evidence
from tribunal.policy import PolicyRuntime

CRITICAL_FIXABLE = {
    "VulnerabilityID": "CVE-2024-0001",
    "PkgName": "openssl",
    "InstalledVersion": "3.0.1",
    "FixedVersion": "3.0.2",
    "Severity": "CRITICAL",
    "Title": "openssl: remote code execution",
}


def admit(runtime: PolicyRuntime, image: str) -> Verdict:
    container = {"name": "app", "image": image}
    return runtime.judge.judge(parse_evidence(review(pod(container)), "review"))


def blocked(verdict: Verdict) -> list[str]:
    return [v.msg for v in verdict.violations if v.policy == "blocked_images"]


def runtime_with(blocklist: ImageBlocklist) -> PolicyRuntime:
    runtime = PolicyRuntime(POLICY_DIR, rules_dir=RULES_DIR, extra_data=[blocklist.path])
    blocklist.on_change = policy_reloader(runtime)
    return runtime


async def test_fixable_critical_cve_blocks_the_image_until_a_clean_report(
    tmp_path: Path, make_dispatcher: MakeDispatcher
) -> None:
    state = tmp_path / "state"
    blocklist = ImageBlocklist(state)
    runtime = runtime_with(blocklist)
    assert blocked(admit(runtime, "nginx:1.27")) == []
    dispatcher = await make_dispatcher(rules_dir=RULES_DIR, blocklist=blocklist)  # the shipped rules

    report = parse_evidence(trivy_report(CRITICAL_FIXABLE, artifact="nginx:1.27"), "trivy.json")
    outcomes = await dispatcher.dispatch(report, runtime.judge.judge(report))
    [block] = [o for o in outcomes if o["action"] == "block-image"]
    assert block["status"] == "success" and block["detail"]["changed"] is True

    denied = admit(runtime, "nginx:1.27")
    assert denied.decision.value == "deny"
    assert blocked(denied) == [
        "containers/app image 'nginx:1.27' is blocked: CVE-2024-0001 (critical) in openssl 3.0.1: fixed in 3.0.2 (image nginx:1.27)"
    ]
    assert blocked(admit(runtime, "docker.io/library/nginx:1.27")) != []  # same image, fully qualified
    assert blocked(admit(runtime, f"nginx@sha256:{'a' * 64}")) != []  # by the report's digest
    assert blocked(admit(runtime, "nginx:1.28")) == []

    # a restart: a new blocklist and runtime read the state file
    restarted_list = ImageBlocklist(state)
    restarted = runtime_with(restarted_list)
    assert blocked(admit(restarted, "nginx:1.27")) != []

    clean = parse_evidence(trivy_report(artifact="nginx:1.27"), "trivy-clean.json")
    dispatcher_after = await make_dispatcher(rules_dir=RULES_DIR, blocklist=restarted_list)
    outcomes = await dispatcher_after.dispatch(clean, restarted.judge.judge(clean))
    assert [o["status"] for o in outcomes] == ["cleared"]
    assert blocked(admit(restarted, "nginx:1.27")) == []
    assert ImageBlocklist(state).entries == {}


async def test_a_report_still_showing_the_cve_does_not_clear(
    tmp_path: Path, make_dispatcher: MakeDispatcher
) -> None:
    blocklist = ImageBlocklist(tmp_path / "state")
    runtime = runtime_with(blocklist)
    dispatcher = await make_dispatcher(rules_dir=RULES_DIR, blocklist=blocklist)
    report = parse_evidence(trivy_report(CRITICAL_FIXABLE, artifact="nginx:1.27"), "a.json")
    await dispatcher.dispatch(report, runtime.judge.judge(report))
    revision = runtime.revision
    again = parse_evidence(
        trivy_report(
            CRITICAL_FIXABLE, {**CRITICAL_FIXABLE, "VulnerabilityID": "CVE-2024-0002"}, artifact="nginx:1.27"
        ),
        "b.json",
    )
    outcomes = await dispatcher.dispatch(again, runtime.judge.judge(again))
    [block] = [o for o in outcomes if o["action"] == "block-image"]
    assert block["detail"]["changed"] is False  # already blocked: no rewrite, no recompile
    assert runtime.revision == revision
    assert blocked(admit(runtime, "nginx:1.27")) != []


def test_normalised_references_match_the_rego_helpers() -> None:
    from tribunal.actions import normalize_image

    assert normalize_image("nginx") == ("docker.io/library/nginx", "")
    assert normalize_image("nginx:1.27") == ("docker.io/library/nginx:1.27", "")
    assert normalize_image("index.docker.io/nginx:1") == ("docker.io/library/nginx:1", "")
    assert normalize_image("ghcr.io/org/app:2@sha256:ab") == ("ghcr.io/org/app:2", "sha256:ab")
    assert normalize_image("localhost:5000/app") == ("localhost:5000/app", "")
    assert normalize_image("bitnami/redis:7") == ("docker.io/bitnami/redis:7", "")
