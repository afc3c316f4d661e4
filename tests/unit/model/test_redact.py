"""Redaction of raw evidence before it is stored (tribunal.model.redact; docs/security.md#evidence-at-rest)."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import FIXTURES, falco_alert, needs_shared, pod, review, shared_fixtures, trivy_report
from tribunal.model import EvidenceKind, parse_evidence
from tribunal.model.redact import (
    LAST_APPLIED,
    MARKER,
    Redaction,
    is_secret_name,
    redact,
    redact_text,
    redact_unjudged,
    redact_verdict,
    redact_violation_texts,
    redact_violations,
)
from tribunal.model.verdict import Violation

PASSWORD = "hunter2-Sup3r"
B64 = base64.b64encode(PASSWORD.encode()).decode()


def _raw(doc: Any) -> bytes:
    return orjson.dumps(doc)


def _redacted(kind: EvidenceKind, doc: Any, mode: Redaction | str = Redaction.SECRETS) -> dict[str, Any]:
    """``doc`` redacted, checked to be valid evidence of the same subject (and id, unless the id is
    the content's hash: the store keeps the id it was recorded under), and parsed."""
    raw = _raw(doc)
    out = redact(kind, raw, mode)
    before, after = parse_evidence(orjson.loads(raw), "t"), parse_evidence(orjson.loads(out), "t", kind)
    assert after.subject == before.subject
    assert after.id == before.id or before.id.startswith("sha256:")
    parsed: dict[str, Any] = orjson.loads(out)
    return parsed


def _secret(**extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "db"}},
        "type": "Opaque",
        "data": {"password": B64, "username": base64.b64encode(b"app").decode(), "empty": ""},
        "stringData": {"token": PASSWORD},
        **extra,
    }


def _container(name: str = "app", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "registry.k8s.io/app:1.0", **extra}


ENV = [
    {"name": "DB_PASSWORD", "value": PASSWORD},
    {"name": "apiKey", "value": PASSWORD},
    {"name": "AWS_SECRET_ACCESS_KEY", "value": PASSWORD},
    {"name": "LOG_LEVEL", "value": "debug"},
    {"name": "DATABASE_URL", "value": f"postgres://app:{PASSWORD}@db:5432/shop"},
    {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    {"name": "UNSET_TOKEN", "value": ""},
]
ENV_AFTER = [
    {"name": "DB_PASSWORD", "value": MARKER},
    {"name": "apiKey", "value": MARKER},
    {"name": "AWS_SECRET_ACCESS_KEY", "value": MARKER},
    {"name": "LOG_LEVEL", "value": "debug"},
    {"name": "DATABASE_URL", "value": f"postgres://app:{MARKER}@db:5432/shop"},
    {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    {"name": "UNSET_TOKEN", "value": ""},  # nothing to hide
]


# --------------------------------------------------------------------------------------------------
# Nothing to redact: the very same bytes


@pytest.mark.parametrize(
    ("kind", "doc"),
    [
        (EvidenceKind.ADMISSION, review(pod())),
        (EvidenceKind.ADMISSION, review(pod(_container(env=[{"name": "LOG_LEVEL", "value": "debug"}])))),
        (EvidenceKind.ADMISSION, review({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                                         "data": {"password": "not a Secret: kept"}})),
        (EvidenceKind.FALCO, falco_alert()),
        (EvidenceKind.TRIVY, trivy_report({"VulnerabilityID": "CVE-2024-1", "PkgName": "openssl"})),
    ],
)  # fmt: skip
def test_nothing_to_redact_returns_the_same_bytes(kind: EvidenceKind, doc: dict[str, Any]) -> None:
    raw = _raw(doc)
    assert redact(kind, raw) is raw
    assert redact(kind, raw, "all-env") is raw or kind is EvidenceKind.ADMISSION


def test_none_keeps_everything() -> None:
    for kind, doc in [
        (EvidenceKind.ADMISSION, review(_secret())),
        (EvidenceKind.ADMISSION, review(pod(_container(env=ENV)))),
        (EvidenceKind.FALCO, falco_alert(output=f"mysql --password={PASSWORD}")),
    ]:
        raw = _raw(doc)
        assert redact(kind, raw, Redaction.NONE) is raw
        assert redact(kind, raw, "none") is raw


def test_not_json_is_returned_as_it_is() -> None:
    assert redact(EvidenceKind.FALCO, b"password=x, not json") == b"password=x, not json"
    assert redact(EvidenceKind.ADMISSION, b'{"doc": "r1"}') == b'{"doc": "r1"}'


# --------------------------------------------------------------------------------------------------
# Admission: Secrets


def test_a_secrets_values_go_and_its_keys_stay() -> None:
    doc = review(_secret())
    out = _redacted(EvidenceKind.ADMISSION, doc)
    obj = out["request"]["object"]
    assert obj["data"] == {"password": MARKER, "username": MARKER, "empty": ""}
    assert obj["stringData"] == {"token": MARKER}
    # Everything else is as it was.
    expected = copy.deepcopy(doc)
    expected["request"]["object"]["data"] = obj["data"]
    expected["request"]["object"]["stringData"] = obj["stringData"]
    assert out == expected


def test_an_updated_secret_loses_its_values_in_both_object_and_old_object() -> None:
    old = _secret()
    new = _secret(data={"password": base64.b64encode(b"new-one").decode()})
    doc = review(new, operation="UPDATE")
    doc["request"]["oldObject"] = old
    raw = redact(EvidenceKind.ADMISSION, _raw(doc))
    assert B64.encode() not in raw and PASSWORD.encode() not in raw
    assert base64.b64encode(b"new-one") not in raw
    out = orjson.loads(raw)
    assert out["request"]["oldObject"]["data"]["password"] == MARKER
    assert out["request"]["object"]["data"] == {"password": MARKER}


def test_the_last_applied_configuration_of_a_secret_is_redacted_as_the_secret_is() -> None:
    applied = {k: v for k, v in _secret().items() if k != "metadata"} | {"metadata": {"name": "db"}}
    secret = _secret()
    secret["metadata"]["annotations"] = {LAST_APPLIED: orjson.dumps(applied).decode() + "\n", "team": "a"}
    raw = redact(EvidenceKind.ADMISSION, _raw(review(secret)))
    assert B64.encode() not in raw and PASSWORD.encode() not in raw
    annotations = orjson.loads(raw)["request"]["object"]["metadata"]["annotations"]
    assert annotations["team"] == "a"
    kept = orjson.loads(annotations[LAST_APPLIED])
    assert kept["data"] == {"password": MARKER, "username": MARKER, "empty": ""}
    assert kept["stringData"] == {"token": MARKER} and kept["metadata"] == {"name": "db"}


def test_a_last_applied_configuration_that_is_not_json_is_replaced_whole_on_a_secret() -> None:
    secret = _secret()
    secret["metadata"]["annotations"] = {LAST_APPLIED: f"password: {PASSWORD}"}
    out = _redacted(EvidenceKind.ADMISSION, review(secret))
    assert out["request"]["object"]["metadata"]["annotations"][LAST_APPLIED] == MARKER


def test_a_bare_secret_manifest_is_redacted() -> None:
    out = _redacted(EvidenceKind.ADMISSION, _secret())
    assert out["data"]["password"] == MARKER and out["stringData"]["token"] == MARKER


def test_secret_data_that_is_not_a_mapping_is_replaced_whole() -> None:
    raw = redact(EvidenceKind.ADMISSION, _raw(review(_secret(data=PASSWORD))))
    assert PASSWORD.encode() not in raw
    assert orjson.loads(raw)["request"]["object"]["data"] == MARKER


# --------------------------------------------------------------------------------------------------
# Admission: pod specs


def test_env_values_with_secret_names_go_in_every_kind_of_container() -> None:
    spec = {
        "containers": [_container(env=copy.deepcopy(ENV))],
        "initContainers": [_container("init", env=copy.deepcopy(ENV))],
        "ephemeralContainers": [_container("debug", env=copy.deepcopy(ENV))],
    }
    obj = pod(**spec)
    obj["spec"].pop("containers")
    obj["spec"].update(spec)
    out = _redacted(EvidenceKind.ADMISSION, review(obj))
    for field in ("containers", "initContainers", "ephemeralContainers"):
        assert out["request"]["object"]["spec"][field][0]["env"] == ENV_AFTER


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("Deployment", ("spec", "template", "spec")),
        ("StatefulSet", ("spec", "template", "spec")),
        ("DaemonSet", ("spec", "template", "spec")),
        ("ReplicaSet", ("spec", "template", "spec")),
        ("ReplicationController", ("spec", "template", "spec")),
        ("Job", ("spec", "template", "spec")),
        ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
    ],
)
def test_env_values_go_in_the_pod_template_of_every_workload(kind: str, path: tuple[str, ...]) -> None:
    spec: dict[str, Any] = {"containers": [_container(env=copy.deepcopy(ENV))]}
    for key in reversed(path):
        spec = {key: spec}
    obj = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w", "namespace": "shop"}, **spec}
    out = _redacted(EvidenceKind.ADMISSION, review(obj))
    node = out["request"]["object"]
    for key in path:
        node = node[key]
    assert node["containers"][0]["env"] == ENV_AFTER


def test_env_of_an_object_without_a_pod_spec_is_not_looked_for() -> None:
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"env": ENV}}
    raw = _raw(review(obj))
    assert redact(EvidenceKind.ADMISSION, raw) is raw


def test_all_env_takes_every_env_value_and_keeps_references() -> None:
    out = _redacted(EvidenceKind.ADMISSION, review(pod(_container(env=copy.deepcopy(ENV)))), "all-env")
    env = out["request"]["object"]["spec"]["containers"][0]["env"]
    assert [e.get("value") for e in env] == [MARKER] * 5 + [None, ""]
    assert env[5] == ENV[5]


def test_command_and_args_lose_passwords_and_keep_the_rest() -> None:
    container = _container(
        command=["/bin/sh", "-c", f"mysql -uroot -p{PASSWORD} shop"],
        args=[f"--db-password={PASSWORD}", "--token-file=/var/run/token", "--port=8080", "-v"],
    )
    out = _redacted(EvidenceKind.ADMISSION, review(pod(container)))
    c = out["request"]["object"]["spec"]["containers"][0]
    assert c["command"] == ["/bin/sh", "-c", f"mysql -uroot -p{MARKER} shop"]
    assert c["args"] == [f"--db-password={MARKER}", "--token-file=/var/run/token", "--port=8080", "-v"]


def test_the_last_applied_configuration_of_a_workload_loses_its_env_secrets() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "w", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [_container(env=copy.deepcopy(ENV))]}}},
    }
    applied = orjson.dumps(deployment).decode()
    deployment["metadata"]["annotations"] = {LAST_APPLIED: applied}
    raw = redact(EvidenceKind.ADMISSION, _raw(review(deployment)))
    assert PASSWORD.encode() not in raw
    annotation = orjson.loads(raw)["request"]["object"]["metadata"]["annotations"][LAST_APPLIED]
    assert orjson.loads(annotation)["spec"]["template"]["spec"]["containers"][0]["env"] == ENV_AFTER


def test_v1beta1_reviews_are_redacted_too() -> None:
    out = _redacted(EvidenceKind.ADMISSION, review(_secret(), api_version="admission.k8s.io/v1beta1"))
    assert out["request"]["object"]["data"]["password"] == MARKER


@pytest.mark.parametrize(
    "name",
    ["DB_PASSWORD", "PGPASSWD", "db_pwd", "apiKey", "API_KEY", "x-api-key", "GITHUB_TOKEN", "ClientSecret",
     "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GPG_PASSPHRASE", "GOOGLE_APPLICATION_CREDENTIALS",
     "PRIVATE_KEY", "BASIC_AUTH", "SESSION_COOKIE", "SENTRY_DSN", "REDIS_PASS", "key", "Key"],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    ["LOG_LEVEL", "HOSTNAME", "KEYCLOAK_URL", "MONKEY_PATCH", "GOMAXPROCS", "POD_NAMESPACE", "JAVA_OPTS"],
)
def test_names_that_are_not_secrets(name: str) -> None:
    assert not is_secret_name(name)


# --------------------------------------------------------------------------------------------------
# Free text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mysql -uroot -phunter2 shop; ls -p /tmp", f"mysql -uroot -p{MARKER} shop; ls -p /tmp"),
        ("/usr/bin/mysqldump -u app -pS3cr3t db", f"/usr/bin/mysqldump -u app -p{MARKER} db"),
        ("mysql -u root -p shop", "mysql -u root -p shop"),  # -p alone prompts: nothing to take
        ("curl -H 'Authorization: Bearer abc.def' https://x", f"curl -H 'Authorization: Bearer {MARKER}' https://x"),
        ('Authorization: Basic dXNlcjpwYXNz', f"Authorization: Basic {MARKER}"),
        ("authorization=abcdef", f"authorization={MARKER}"),
        ("got Bearer eyJhbGciOiJSUzI1NiJ9xyz", f"got Bearer {MARKER}"),
        ("psql postgres://app:pw@db:5432/app", f"psql postgres://app:{MARKER}@db:5432/app"),
        ("redis://:pw@cache:6379", f"redis://:{MARKER}@cache:6379"),
        ("run --password=x --db-password y PGPASSWORD=z", f"run --password={MARKER} --db-password {MARKER} PGPASSWORD={MARKER}"),
        ("--client-secret='a b' --api-key \"c d\"", f"--client-secret='{MARKER}' --api-key \"{MARKER}\""),
        ('{"password":"x","api_key": "y","user":"bob"}', f'{{"password":"{MARKER}","api_key": "{MARKER}","user":"bob"}}'),
        ("token: abc DJANGO_SECRET=zz secret_key=aa credentials=bb", f"token: {MARKER} DJANGO_SECRET={MARKER} secret_key={MARKER} credentials={MARKER}"),
        ("uri=/api?x=1&token=abc&y=2", f"uri=/api?x=1&token={MARKER}&y=2"),
        ("id AKIAIOSFODNN7EXAMPLE here", f"id {MARKER} here"),
        ("gh ghp_" + "a" * 36 + " xoxb-1234567890-abc", f"gh {MARKER} {MARKER}"),
        ("jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln end", f"jwt {MARKER} end"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----",
         f"-----BEGIN RSA PRIVATE KEY-----{MARKER}-----END RSA PRIVATE KEY-----"),
        ("cut -----BEGIN PRIVATE KEY-----MIIabc", f"cut -----BEGIN PRIVATE KEY-----{MARKER}"),
    ],
)  # fmt: skip
def test_text_patterns(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected  # redacting twice changes nothing more


@pytest.mark.parametrize(
    "text",
    [
        "K8s Secret Created (user=alice secret=db-creds ns=default)",  # Falco k8s_audit: a Secret's name
        "fetcher -secret-dir /secrets -cfgmap-dir /configs",
        'authorizationInfo=[{"granted":true,"permission":"storage.objects.get"}]',
        "file=/var/run/secrets/kubernetes.io/serviceaccount/token user=root",
        "mkdir -p /data && mysql-proxy --port=3306",
        "--token-file=/var/run/token --tls-private-key-file=/tls.key max_tokens=5",
        "token: <NA>",
        "http://example.com:8080/path",
        "Bearer of bad news",
    ],
)
def test_text_that_holds_no_secret_is_kept(text: str) -> None:
    assert redact_text(text) == text


def test_violations_lose_the_secrets_they_quote() -> None:
    violations = [
        {"policy": "shell", "msg": "Shell spawned", "details": {"cmdline": f"mysql -p{PASSWORD}", "n": 1}},
        {
            "policy": "other",
            "msg": "x",
            "details": {"list": [f"--password={PASSWORD}"], "password": "kept key"},
        },
    ]
    out = redact_violations(EvidenceKind.FALCO, _raw(violations))
    assert PASSWORD.encode() not in out
    parsed = orjson.loads(out)
    assert parsed[0]["details"] == {"cmdline": f"mysql -p{MARKER}", "n": 1}
    assert parsed[1]["details"]["list"] == [f"--password={MARKER}"]
    assert parsed[1]["details"]["password"] == "kept key"  # keys are not looked at, values alone are
    assert redact_violations(EvidenceKind.FALCO, _raw(violations), "none") == _raw(violations)
    quiet = _raw([{"policy": "p", "msg": "nothing here", "details": {"match": "a"}}])
    assert redact_violations(EvidenceKind.ADMISSION, quiet) is quiet


def test_trivy_violations_lose_the_match_of_a_secret_finding() -> None:
    violations = [
        {"policy": "exposed_secrets", "msg": "Secret 'GitHub Personal Access Token' (github-pat) exposed",
         "details": {"match": f"GITHUB_PAT={PASSWORD}", "rule_id": "github-pat", "line": "3"}},
        {"policy": "fixable_critical_high_cves", "msg": "CVE-2024-1 in openssl", "details": {"id": "CVE-2024-1"}},
    ]  # fmt: skip
    parsed = orjson.loads(redact_violations(EvidenceKind.TRIVY, _raw(violations)))
    assert parsed[0]["details"] == {"match": MARKER, "rule_id": "github-pat", "line": "3"}
    assert parsed[0]["msg"] == violations[0]["msg"] and parsed[1] == violations[1]


# --------------------------------------------------------------------------------------------------
# Falco


def test_falco_output_and_output_fields_lose_their_secrets() -> None:
    cmdline = f"mysql -uroot -p{PASSWORD} --host=db shop"
    alert = falco_alert(output=f"Shell spawned (user=root cmdline={cmdline})")
    alert["output_fields"]["proc.cmdline"] = cmdline
    alert["output_fields"]["proc.env"] = f"HOME=/root AWS_KEY=AKIAIOSFODNN7EXAMPLE API_TOKEN={PASSWORD}"
    alert["output_fields"]["proc.pid"] = 4242
    raw = redact(EvidenceKind.FALCO, _raw(alert))
    assert PASSWORD.encode() not in raw and b"AKIAIOSFODNN7EXAMPLE" not in raw
    out = _redacted(EvidenceKind.FALCO, alert)
    assert out["output"] == f"Shell spawned (user=root cmdline=mysql -uroot -p{MARKER} --host=db shop)"
    assert out["output_fields"]["proc.cmdline"] == f"mysql -uroot -p{MARKER} --host=db shop"
    assert out["output_fields"]["proc.env"] == f"HOME=/root AWS_KEY={MARKER} API_TOKEN={MARKER}"
    untouched = {k: v for k, v in alert["output_fields"].items() if k not in ("proc.cmdline", "proc.env")}
    assert {k: out["output_fields"][k] for k in untouched} == untouched
    assert (out["rule"], out["uuid"], out["tags"]) == (alert["rule"], alert["uuid"], alert["tags"])


def test_a_falco_alert_whose_keywords_hold_no_secret_comes_back_unchanged() -> None:
    alert = falco_alert(output="K8s Secret Created (user=alice secret=db-creds ns=default)")
    raw = _raw(alert)
    assert redact(EvidenceKind.FALCO, raw) is raw


def _falco_samples() -> list[tuple[str, bytes]]:
    samples = []
    for path in shared_fixtures("falco", ".json", ".jsonl"):
        lines = [path.read_bytes()] if path.suffix == ".json" else path.read_bytes().splitlines()
        samples += [(f"{path.name}:{i}", line) for i, line in enumerate(lines, 1) if line.strip()]
    return samples


@needs_shared
def test_the_shared_falco_alerts_hold_no_secret_and_are_kept_as_they_are() -> None:
    """No false positives on 35 real alerts (Secret names, authorizationInfo, -secret-dir)."""
    samples = _falco_samples()
    assert len(samples) >= 30
    changed = [name for name, raw in samples if redact(EvidenceKind.FALCO, raw) != raw]
    assert changed == []


# --------------------------------------------------------------------------------------------------
# Trivy


SECRET_FINDING = {
    "RuleID": "github-pat",
    "Category": "GitHub",
    "Severity": "CRITICAL",
    "Title": "GitHub Personal Access Token",
    "StartLine": 3,
    "EndLine": 3,
    "Match": f"GITHUB_PAT={PASSWORD}",
    "Code": {
        "Lines": [
            {"Number": 2, "Content": "# config", "IsCause": False, "Highlighted": "# config"},
            {"Number": 3, "Content": f"GITHUB_PAT={PASSWORD}", "IsCause": True, "Highlighted": f"GITHUB_PAT={PASSWORD}"},
        ]
    },
}  # fmt: skip
SECRET_AFTER = {
    **SECRET_FINDING,
    "Match": MARKER,
    "Code": {
        "Lines": [
            {"Number": 2, "Content": MARKER, "IsCause": False, "Highlighted": MARKER},
            {"Number": 3, "Content": MARKER, "IsCause": True, "Highlighted": MARKER},
        ]
    },
}


def test_trivy_secret_findings_lose_match_and_code_and_keep_the_rest() -> None:
    report = trivy_report({"VulnerabilityID": "CVE-2024-1", "PkgName": "openssl"})
    report["Results"].append({"Target": "/app/.env", "Class": "secret", "Secrets": [SECRET_FINDING]})
    out = _redacted(EvidenceKind.TRIVY, report)
    assert out["Results"][1]["Secrets"] == [SECRET_AFTER]
    assert out["Results"][0] == report["Results"][0]


def test_trivy_k8s_reports_lose_the_secrets_of_every_resource() -> None:
    resource = {
        "Namespace": "shop",
        "Kind": "Deployment",
        "Name": "web",
        "Results": [{"Target": "app", "Class": "secret", "Secrets": [SECRET_FINDING]}],
    }
    report = {"ClusterName": "kind", "Resources": [resource]}
    raw = redact(EvidenceKind.TRIVY, _raw(report))
    assert PASSWORD.encode() not in raw
    assert orjson.loads(raw)["Resources"][0]["Results"][0]["Secrets"] == [SECRET_AFTER]


def test_trivy_operator_exposed_secret_reports_lose_match() -> None:
    report = {
        "apiVersion": "aquasecurity.github.io/v1alpha1",
        "kind": "ExposedSecretReport",
        "metadata": {"name": "r", "namespace": "shop"},
        "report": {
            "artifact": {"repository": "library/app", "tag": "1"},
            "secrets": [{"category": "AWS", "match": f"AWS_SECRET={PASSWORD}", "ruleID": "aws", "severity": "HIGH",
                         "target": "/root/.aws", "title": "AWS"}],
        },
    }  # fmt: skip
    out = _redacted(EvidenceKind.TRIVY, report)
    expected = copy.deepcopy(report["report"]["secrets"][0]) | {"match": MARKER}
    assert out["report"]["secrets"] == [expected]


TRIVY_WITH_SECRETS = {
    "fs-misconfigurations-and-secrets.json": 2,
    "image-juice-shop-v10.2.0.json": 1,
    "repo-securecodebox.json": 1,
    "operator-exposedsecretreport-nginx-many.json": 2,
}


def _findings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if "report" in doc:
        return list(doc["report"].get("secrets") or [])
    return [s for r in doc.get("Results") or [] for s in r.get("Secrets") or []]


@needs_shared
@pytest.mark.parametrize("name", sorted(TRIVY_WITH_SECRETS))
def test_shared_trivy_reports_with_secrets(name: str) -> None:
    raw = (FIXTURES / "trivy" / name).read_bytes()
    doc = orjson.loads(raw)
    before = _findings(doc)
    assert len(before) == TRIVY_WITH_SECRETS[name]
    out = _redacted(EvidenceKind.TRIVY, doc)
    after = _findings(out)
    match = "match" if "report" in doc else "Match"
    for old, new in zip(before, after, strict=True):
        assert new[match] == MARKER
        assert all(line["Content"] in (MARKER, "") for line in new.get("Code", {}).get("Lines", []))
        kept = {k: v for k, v in old.items() if k not in (match, "Code")}
        assert {k: new[k] for k in kept} == kept  # rule, category, severity, title, lines, target
    # Nothing but the findings changed: the same document once they are put back.
    for old, new in zip(before, after, strict=True):
        new.update(old)
    assert out == doc


@needs_shared
def test_shared_trivy_reports_without_secret_findings_are_kept_byte_for_byte() -> None:
    paths = [p for p in shared_fixtures("trivy", ".json") if p.name not in TRIVY_WITH_SECRETS]
    assert paths
    for path in paths:
        raw = path.read_bytes()
        assert redact(EvidenceKind.TRIVY, raw) == raw, path.name


# --------------------------------------------------------------------------------------------------
# The shared AdmissionReviews


@needs_shared
def test_the_shared_reviews_still_parse_and_hold_no_secret() -> None:
    """Published manifests carry no secret: all 40 are stored as they came (no false positive), in
    both modes that redact; all-env takes only env values."""
    paths: list[Path] = shared_fixtures("admission", ".json")
    assert len(paths) == 40
    for path in paths:
        raw = path.read_bytes()
        assert redact(EvidenceKind.ADMISSION, raw) is raw or redact(EvidenceKind.ADMISSION, raw) == raw, path
        everything = redact(EvidenceKind.ADMISSION, raw, Redaction.ALL_ENV)
        if everything != raw:
            parsed = parse_evidence(orjson.loads(everything), path.name)
            assert parsed.id == parse_evidence(orjson.loads(raw), path.name).id
            assert b'"value":"' + MARKER.encode() + b'"' in everything


def test_a_dead_letter_is_redacted_by_its_kind_or_by_every_kind_when_unknown() -> None:
    alert = orjson.dumps(falco_alert(output="psql postgres://app:pa55word@db/shop", priority="Loud"))
    for kind in (EvidenceKind.FALCO, None):
        redacted = redact_unjudged(alert, kind)
        assert b"pa55word" not in redacted and orjson.loads(redacted)["priority"] == "Loud"
    assert redact_unjudged(alert, EvidenceKind.FALCO, Redaction.NONE) is alert
    clean = orjson.dumps(falco_alert(priority="Loud"))
    assert redact_unjudged(clean, None) is clean


def test_a_dead_letter_that_is_not_json_goes_through_the_text_rules_and_binary_stays() -> None:
    broken = b'{"output": "curl -H \'Authorization: Bearer abcdefghijklmnopqrstuvwxyz\'", oops'
    assert b"abcdefghijklmnop" not in redact_unjudged(broken, EvidenceKind.FALCO)
    junk = b"\xff\xfe password=hunter2"
    assert redact_unjudged(junk, None) is junk
    assert redact_unjudged(b"", None) == b""


def test_a_published_verdict_loses_the_secrets_its_violations_quote() -> None:
    verdict = {
        "evidence_id": "e1",
        "violations": [{"msg": "shell: mysql -u root --password=hunter2", "details": {"cmdline": "x"}}],
    }
    raw = orjson.dumps(verdict)
    redacted = orjson.loads(redact_verdict(EvidenceKind.FALCO, raw))
    assert redacted["violations"][0]["msg"] == f"shell: mysql -u root --password={MARKER}"
    assert redacted["evidence_id"] == "e1"
    clean = orjson.dumps({"evidence_id": "e2", "violations": [{"msg": "privileged"}]})
    assert redact_verdict(EvidenceKind.ADMISSION, clean) is clean
    assert redact_verdict(EvidenceKind.FALCO, raw, Redaction.NONE) is raw


def test_what_actions_send_out_quotes_no_secret() -> None:
    leaky = Violation(
        policy="shell_in_container",
        msg="shell: mysql -u root --password=hunter2",
        severity="high",
        details={"cmdline": "mysql --password=hunter2", "nested": [{"env": "TOKEN=abc"}], "n": 3},
    )
    clean = Violation(policy="privileged", msg="containers/app is privileged", severity="high")
    redacted = redact_violation_texts((clean, leaky))
    assert redacted[0] is clean
    assert redacted[1].msg == f"shell: mysql -u root --password={MARKER}"
    assert "hunter2" not in orjson.dumps(redacted[1].details).decode()
    assert redacted[1].details["n"] == 3 and leaky.details["cmdline"] == "mysql --password=hunter2"
    only_clean = (clean,)
    assert redact_violation_texts(only_clean) is only_clean
