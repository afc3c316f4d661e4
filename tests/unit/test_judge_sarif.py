"""``tribunal judge --format sarif``: SARIF that GitHub code scanning accepts, located in the judged
manifests (file and line of the document), with the rule metadata GitHub shows; valid against the
SARIF 2.1.0 schema (../shared/schemas) and GitHub's documented requirements."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import POLICY_DIR, RULES_DIR, SHARED, falco_alert
from tribunal.cli import main
from tribunal.reports.formats.sarif import k8s_uri, yaml_document_lines

SARIF_SCHEMA = SHARED / "schemas" / "sarif-schema-2.1.0.json"
MANIFESTS = """\
# A compliant-enough pod, then an empty document, then a privileged one.
apiVersion: v1
kind: Pod
metadata: {name: calm, namespace: shop}
spec:
  containers: [{name: app, image: "registry.example/app:1.0"}]
---
---
apiVersion: v1
kind: Pod
metadata:
  name: wild
  namespace: shop
spec:
  containers:
    - name: app
      image: nginx:1.27
      securityContext: {privileged: true}
"""
WILD_LINE = 9


def judge(*args: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            ["judge", "--policies", str(POLICY_DIR), "--rules", str(RULES_DIR), "--format", "sarif", *args]
        )
    return code, json.loads(out.getvalue())


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "pods.yaml").write_text(MANIFESTS)
    (tmp_path / "alerts.jsonl").write_text("\n" + json.dumps(falco_alert()) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check_github_requirements(doc: dict[str, Any]) -> None:
    """What GitHub code scanning reads from an uploaded SARIF file (docs.github.com, "SARIF support for
    code scanning"): version 2.1.0; per run a tool.driver.name and rules; per result a ruleId, a
    message text and at least one (at most ten) locations with a physical location; a relative uri
    with a uriBaseId, or an absolute URI; rules with the metadata it shows, a numeric security-severity
    and the "security" tag that makes it count; at most 25,000 results a run."""
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-schema-2.1.0.json")
    for run in doc["runs"]:
        driver = run["tool"]["driver"]
        assert driver["name"] == "Tribunal" and driver["version"]
        rules = driver["rules"]
        assert len({r["id"] for r in rules}) == len(rules)
        for rule in rules:
            assert rule["id"] and rule["name"]
            assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
            assert rule["helpUri"].startswith("https://")
            props = rule["properties"]
            assert "security" in props["tags"]
            assert props["precision"] in ("very-high", "high", "medium", "low")
            if "security-severity" in props:
                score = props["security-severity"]
                assert isinstance(score, str) and 0.0 < float(score) <= 10.0
        assert len(run["results"]) <= 25_000
        for result in run["results"]:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            assert result["message"]["text"] and result["level"] in ("error", "warning", "note")
            assert 1 <= len(result["locations"]) <= 10
            physical = result["locations"][0]["physicalLocation"]
            artifact = physical["artifactLocation"]
            if "uriBaseId" in artifact:
                assert artifact["uriBaseId"] == "%SRCROOT%"
                assert not re.match(r"^[a-z][a-z0-9+.-]*:|^/", artifact["uri"]), artifact  # relative
            else:
                assert re.match(r"^[a-z][a-z0-9+.-]*://", artifact["uri"]), artifact  # absolute URI
            assert physical["region"]["startLine"] >= 1
            assert result["partialFingerprints"] and all(result["partialFingerprints"].values())


def check_schema(doc: dict[str, Any]) -> None:
    if not SARIF_SCHEMA.is_file():
        pytest.skip("../shared/schemas is absent")
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)] == []


def test_manifests_give_one_result_per_violation_at_the_documents_line(workdir: Path) -> None:
    code, doc = judge("deploy", "alerts.jsonl")
    assert code == 0  # exit codes unchanged: nothing asked for --fail-on
    check_github_requirements(doc)
    check_schema(doc)
    [run] = doc["runs"]
    results = run["results"]
    privileged = [r for r in results if r["ruleId"] == "privileged_containers"]
    assert len(privileged) == 1
    location = privileged[0]["locations"][0]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "deploy/pods.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": WILD_LINE},
    }
    assert location["logicalLocations"][0]["fullyQualifiedName"] == "shop/Pod/wild"
    assert privileged[0]["level"] == "error"
    rule = run["tool"]["driver"]["rules"][privileged[0]["ruleIndex"]]
    assert rule["shortDescription"]["text"] == "Privileged containers"
    assert rule["properties"]["security-severity"] == "8.0"
    assert rule["helpUri"].endswith("docs/policies.md#the-policy-library")
    # the first pod's results sit at its first line (after the comment), the Falco alert's at its line
    lines = {
        (r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
         r["locations"][0]["physicalLocation"]["region"]["startLine"])
        for r in results
    }  # fmt: skip
    assert ("deploy/pods.yaml", 2) in lines and ("deploy/pods.yaml", WILD_LINE) in lines
    assert {line for uri, line in lines if uri == "alerts.jsonl"} == {2}  # after the blank first line
    shell = [r for r in results if r["ruleId"] == "shell_in_container"]
    assert (
        shell and run["tool"]["driver"]["rules"][shell[0]["ruleIndex"]]["properties"]["precision"] == "high"
    )
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == workdir.resolve().as_uri() + "/"
    assert run["invocations"][0]["executionSuccessful"] is True
    # one result per violation, each with its own fingerprint
    fingerprints = [r["partialFingerprints"]["tribunalFinding/v1"] for r in results]
    assert len(set(fingerprints)) == len(fingerprints)


def test_fingerprints_do_not_move_with_the_line(workdir: Path) -> None:
    _, before = judge("deploy")
    (workdir / "deploy" / "pods.yaml").write_text("# a new comment\n" + MANIFESTS)
    _, after = judge("deploy")

    def prints(doc: dict[str, Any]) -> set[str]:
        return {r["partialFingerprints"]["tribunalFinding/v1"] for r in doc["runs"][0]["results"]}

    assert prints(before) == prints(after)
    [wild] = [r for r in after["runs"][0]["results"] if r["ruleId"] == "privileged_containers"]
    assert wild["locations"][0]["physicalLocation"]["region"]["startLine"] == WILD_LINE + 1


def test_exit_codes_are_unchanged_and_bad_documents_become_notifications(workdir: Path) -> None:
    code, doc = judge("--fail-on", "deny", "deploy")
    assert code == 3 and doc["runs"][0]["results"]
    (workdir / "broken.json").write_text('{"apiVersion": ')
    code, doc = judge("--fail-on", "deny", "deploy", "broken.json")
    assert code == 1
    check_schema(doc)
    [invocation] = doc["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    [note] = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "broken.json" in note["message"]["text"]


def test_stdin_is_located_by_a_stable_kubernetes_uri(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(MANIFESTS.split("---\n---\n")[1].encode()))
    monkeypatch.setattr("sys.stdin", stdin)
    code, doc = judge("-")
    assert code == 0
    check_github_requirements(doc)
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]
    }
    assert uris == {"k8s://shop/Pod/wild"}


def test_document_lines_follow_the_readers_numbering() -> None:
    text = "# c\n---\n---\na: 1\n--- {b: 2}\n---\n~\n---\n- x\n"
    assert yaml_document_lines(text) == [4, 5, 9]
    assert yaml_document_lines("a: [") == []


def test_kubernetes_uris_are_stable_and_escaped() -> None:
    assert k8s_uri("shop", "Deployment", "web") == "k8s://shop/Deployment/web"
    assert (
        k8s_uri(None, None, "docker.io/library/nginx:1.27") == "k8s://-/-/docker.io%2Flibrary%2Fnginx%3A1.27"
    )


def test_a_single_document_is_located_past_its_leading_comments(workdir: Path) -> None:
    wild = MANIFESTS.split("---\n---\n")[1]
    (workdir / "single.yaml").write_text("# one pod\n# privileged on purpose\n" + wild)
    (workdir / "single.json").write_text(json.dumps(yaml.safe_load(wild)))
    _, doc = judge("single.yaml", "single.json")
    check_schema(doc)
    located = {
        (r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
         r["locations"][0]["physicalLocation"]["region"]["startLine"])
        for r in doc["runs"][0]["results"] if r["ruleId"] == "privileged_containers"
    }  # fmt: skip
    assert located == {("single.yaml", 3), ("single.json", 1)}
