"""The ``tribunal`` command line: judge output and exit codes, policy test."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import falco_alert, pod, review
from tests.unit.policy.test_loader_and_engines import PRIVILEGED, PRIVILEGED_TEST
from tests.unit.policy.test_regorus_vm import WITH_OUTSIDE_TESTS
from tribunal.cli import main

Build = Callable[[dict[str, str]], Path]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    bad = pod({"name": "a", "image": "nginx:1", "securityContext": {"privileged": True}})
    paths = {
        "deny": tmp_path / "in" / "deny.json",
        "allow": tmp_path / "in" / "allow.yaml",
        "broken": tmp_path / "broken.json",
        "alerts": tmp_path / "alerts.jsonl",
    }
    paths["deny"].parent.mkdir()
    paths["deny"].write_text(json.dumps(review(bad, uid="d1")))
    paths["allow"].write_text(json.dumps(review(pod(), uid="a1")))
    paths["broken"].write_text(
        '{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {'
    )
    paths["alerts"].write_text(json.dumps(falco_alert()) + "\n")
    return paths


def test_judge_prints_one_verdict_per_line(
    policy_dir: Build, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    code = main(["judge", "--policies", str(root), str(files["deny"].parent), str(files["alerts"])])
    lines = capsys.readouterr().out.splitlines()
    verdicts = [json.loads(line) for line in lines]
    assert code == 0
    assert [(v["evidence_id"], v["decision"]) for v in verdicts] == [
        ("a1", "allow"),
        ("d1", "deny"),
        ("5b6f3c1e-1111-4a4a-9c9c-000000000001", "allow"),
    ]
    assert verdicts[1]["violations"][0]["policy"] == "privileged"


def test_fail_on_deny_exits_2(policy_dir: Build, files: dict[str, Path]) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    assert main(["judge", "--policies", str(root), "--fail-on", "deny", str(files["deny"])]) == 2
    assert main(["judge", "--policies", str(root), "--fail-on", "deny", str(files["allow"])]) == 0


def test_bad_file_is_reported_and_the_rest_judged(
    policy_dir: Build, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    code = main(["judge", "--policies", str(root), str(files["broken"]), str(files["deny"])])
    captured = capsys.readouterr()
    assert code == 1
    assert f"{files['broken']}: not valid JSON" in captured.err
    assert json.loads(captured.out)["evidence_id"] == "d1"


def test_kind_filter_refuses_other_kinds(
    policy_dir: Build, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    assert main(["judge", "--policies", str(root), "--kind", "falco", str(files["deny"])]) == 1
    assert "expected falco evidence" in capsys.readouterr().err


def test_table_format_summarises(
    policy_dir: Build, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    main(["judge", "--policies", str(root), "--format", "table", str(files["deny"].parent)])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["DECISION", "KIND", "SUBJECT", "SOURCE"]
    assert "[high/deny] privileged: a is privileged" in out
    assert "2 judged: 1 allow, 0 warn, 1 deny; 0 could not be judged" in out


def test_policy_error_exits_1(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["judge", "--policies", str(tmp_path / "none"), str(files["deny"])]) == 1
    assert "policy error" in capsys.readouterr().err


def test_policy_test_reports_failures(policy_dir: Build, capsys: pytest.CaptureFixture[str]) -> None:
    root = policy_dir(
        {"admission/privileged.rego": PRIVILEGED, "admission/privileged_test.rego": PRIVILEGED_TEST}
    )
    assert main(["policy", "test", str(root)]) == 1
    out = capsys.readouterr().out
    assert "FAIL data.tribunal.admission.privileged.test_wrong_expectation" in out
    assert out.rstrip().endswith("2 passed, 1 failed")
    assert main(["policy", "test", str(root), "--run", "denied|plain", "-v"]) == 0
    assert "PASS data.tribunal.admission.privileged.test_privileged_denied" in capsys.readouterr().out


def test_policy_test_says_when_the_rvm_cannot_compile_the_policies(
    policy_dir: Build, capsys: pytest.CaptureFixture[str]
) -> None:
    with_data = WITH_OUTSIDE_TESTS.replace(
        "package tribunal.admission.with_data", "package tribunal.admission.w"
    )
    root = policy_dir({"admission/privileged.rego": PRIVILEGED, "admission/w.rego": with_data})
    assert main(["policy", "test", str(root)]) == 0  # valid Rego: the interpreter runs it
    out = capsys.readouterr().out
    assert "regorus's RVM cannot compile the admission policies" in out and "with" in out
    assert "falco policies" not in out
    assert out.rstrip().endswith("0 passed, 0 failed")
    root = policy_dir(
        {"admission/w.rego": "package tribunal.admission.w\nimport rego.v1\nviolations := set()\n"}
    )
    assert main(["policy", "test", str(root)]) == 0
    assert "RVM" not in capsys.readouterr().out


def test_policy_list_applies_overrides(
    policy_dir: Build, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "enforcement.yaml").write_text("policies: {privileged: warn}\n")
    assert main(["policy", "list", str(root), "--rules", str(rules), "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["id"], row["kind"], row["enforcement"], row["severity"]) == (
        "privileged",
        "admission",
        "warn",
        "high",
    )
    assert main(["policy", "list", str(root), "--format", "markdown"]) == 0
    assert (
        "| admission | `privileged` | Privileged | deny | high | `pss-baseline:privileged-containers` |"
        in (capsys.readouterr().out)
    )
