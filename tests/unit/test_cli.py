"""The ``tribunal`` command line: judge output and exit codes, policy test."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import falco_alert, pod, review
from tests.unit.policy.test_loader_and_engines import PRIVILEGED, PRIVILEGED_TEST
from tests.unit.policy.test_regorus_vm import WITH_OUTSIDE_TESTS
from tribunal.cli import Progress, main

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


def test_fail_on_deny_exits_3(policy_dir: Build, files: dict[str, Path]) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    assert main(["judge", "--policies", str(root), "--fail-on", "deny", str(files["deny"])]) == 3
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
    tmp_path: Path, policy_dir: Build, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = policy_dir({"admission/broken.rego": "package tribunal.admission.broken\n\nx := \n"})
    assert main(["judge", "--policies", str(broken), str(files["deny"])]) == 1
    assert "policy error" in capsys.readouterr().err
    # a folder that is not there is a settings error naming the flag, the variable and the default
    assert main(["judge", "--policies", str(tmp_path / "none"), str(files["deny"])]) == 1
    err = capsys.readouterr().err
    assert "policy_dir" in err and "--policies" in err and "TRIBUNAL_POLICY_DIR" in err


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


def test_a_usage_error_exits_2_and_is_not_the_fail_on_code() -> None:
    with pytest.raises(SystemExit) as usage:
        main(["judge", "--fail-on", "sometimes", "x.json"])
    assert usage.value.code == 2


def test_an_unjudgeable_review_is_one_error_line_and_the_next_file_is_judged(
    policy_dir: Build, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "a-bad.yaml").write_text("apiVersion: admission.k8s.io/v1\nkind: AdmissionReviewz\n")
    (folder / "b-good.json").write_text(json.dumps(review(pod(), uid="after")))
    assert main(["judge", "--policies", str(root), str(folder)]) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line)["evidence_id"] for line in out.splitlines()] == ["after"]
    [line] = err.splitlines()
    assert line.startswith(f"tribunal: error: {folder / 'a-bad.yaml'}: kind: ")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("port: [\n", "not valid YAML at line 2"),
        ("- port\n", "must hold a mapping of settings"),
        ("prot: 8443\n", "unknown setting 'prot' (did you mean 'port'?)"),
        ("folder", "a folder, not a settings file"),
    ],
    ids=["missing", "invalid yaml", "a list", "unknown key", "a folder"],
)
def test_a_bad_config_file_is_one_line_naming_the_file(
    tmp_path: Path,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    expected: str,
) -> None:
    config = tmp_path / "settings.yaml"
    if content == "folder":
        config.mkdir()
    elif content is not None:
        config.write_text(content)
    assert main(["--config", str(config), "judge", str(files["allow"])]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tribunal: error: --config {config}: ") and expected in err, err
    assert len(err.splitlines()) == 1


def test_an_unknown_policy_id_in_enforcement_yaml_is_refused_with_the_closest_id(
    policy_dir: Build, tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "enforcement.yaml").write_text("policies: {privileged_containerz: warn}\n")
    assert main(["judge", "--policies", str(root), "--rules", str(rules), str(files["deny"])]) == 1
    err = capsys.readouterr().err
    assert "policies.privileged_containerz: no policy has the id 'privileged_containerz'" in err
    (rules / "enforcement.yaml").write_text("namespaces: {shop: {'*': dryrun}}\npolicies: {}\n")
    assert main(["judge", "--policies", str(root), "--rules", str(rules), str(files["deny"])]) == 0


def test_no_evidence_is_an_error_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.txt").write_text("x")
    assert main(["judge", str(tmp_path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"tribunal: skipped {tmp_path / 'notes.txt'}: not an evidence file (.json, .jsonl, .ndjson, .yaml, .yml)",
        f"tribunal: error: no evidence in {tmp_path} (1 files skipped); --allow-empty accepts that",
    ]
    assert main(["judge", "--allow-empty", str(tmp_path)]) == 0


def test_binary_and_broken_yaml_get_one_clear_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary, broken = tmp_path / "image.json", tmp_path / "broken.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    broken.write_text("a: [1,\n  2\nb: c\n")
    assert main(["judge", str(binary), str(broken)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"tribunal: error: {binary}: a binary file, not evidence (JSON, JSON Lines or YAML text)"
    assert err[1].startswith(f"tribunal: error: {broken}: not valid YAML at line 3, column 2: ")
    assert "(in a flow sequence started at line 1, column 4)" in err[1] and "<byte string>" not in err[1]
    assert len(err) == 2


def test_a_busy_port_names_the_port_and_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["dev", "--cert-dir", str(tmp_path), "--port", "0", "--kafka-port", str(port)])
        assert code == 1
        assert capsys.readouterr().err.strip() == (
            f"tribunal dev: port {port} (the embedded Kafka broker) is in use (another `tribunal dev`?): "
            "choose another with --kafka-port, or run without Kafka: --no-kafka"
        )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_and_stays_silent_in_a_pipe() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    with Progress("judging", 10, terminal) as shown, Progress("judging", 10, pipe) as silent:
        for _ in range(10):
            shown.advance()
            silent.advance()
        shown.say("tribunal: error: x.json: broken")
        silent.say("tribunal: error: x.json: broken")
    assert "tribunal: error: x.json: broken" in terminal.getvalue()
    assert "\x1b[" in terminal.getvalue()  # the bar was drawn (and cleared)
    assert pipe.getvalue() == "tribunal: error: x.json: broken\n"
    short = _Terminal()
    with Progress("judging", 2, short) as few:  # two files: nothing to watch
        few.advance(2)
    assert short.getvalue() == ""
    unknown, piped = _Terminal(), io.StringIO()
    with Progress("reading the record", None, unknown), Progress("reading the record", None, piped):
        pass
    assert "\x1b[" in unknown.getvalue() and piped.getvalue() == ""


def test_a_busy_server_port_names_the_port_and_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.chdir(tmp_path)  # the default record (tribunal.db) and state land here
    monkeypatch.setenv("TRIBUNAL_JUDGE_WORKERS", "0")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["serve", "--plain-http", "--host", "127.0.0.1", "--port", str(port)])
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"tribunal serve: port {port} on 127.0.0.1 is in use (another Tribunal?): choose another with "
        "--port or TRIBUNAL_PORT"
    )
