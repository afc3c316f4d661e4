"""Loading a policy directory and evaluating it on the embedded engines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tribunal.policy import PolicyEvaluationError, PolicyLoadError, create_engine, load_policy_set

PRIVILEGED = """# METADATA
# title: Privileged
# custom:
#   severity: high
#   enforcement: deny
#   controls: ["pss-baseline:privileged-containers"]
package tribunal.admission.privileged

import rego.v1

violations contains {"msg": sprintf("%s is privileged", [c.name]), "severity": "high",
                     "controls": ["pss-baseline:privileged-containers"], "details": {"image": c.image}} if {
	some c in input.event.request.object.spec.containers
	c.securityContext.privileged == true
}
"""

PRIVILEGED_TEST = """package tribunal.admission.privileged

import rego.v1

test_privileged_denied if {
	count(violations) == 1 with input as {"event": {"request": {"object": {"spec": {"containers": [
		{"name": "a", "image": "x:1", "securityContext": {"privileged": true}}]}}}}}
}

test_plain_allowed if {
	count(violations) == 0 with input as {"event": {"request": {"object": {"spec": {"containers": [
		{"name": "a"}]}}}}}
}

test_wrong_expectation if {
	count(violations) == 5 with input as {}
}
"""

INPUT = {
    "kind": "admission",
    "subject": {"namespace": "dev"},
    "event": {
        "request": {
            "object": {
                "spec": {
                    "containers": [{"name": "a", "image": "nginx:1", "securityContext": {"privileged": True}}]
                }
            }
        }
    },
}

Build = Callable[[dict[str, str]], Path]


def test_metadata_becomes_policy_info(policy_dir: Build) -> None:
    policy_set = load_policy_set(policy_dir({"admission/privileged.rego": PRIVILEGED}))
    info = policy_set.policies["privileged"]
    assert (info.kind, info.severity.value, info.enforcement.value) == ("admission", "high", "deny")
    assert info.controls == ["pss-baseline:privileged-containers"]
    assert info.path == "admission/privileged.rego"


def test_tests_are_left_out_unless_asked(policy_dir: Build) -> None:
    root = policy_dir(
        {"admission/privileged.rego": PRIVILEGED, "admission/privileged_test.rego": PRIVILEGED_TEST}
    )
    assert not any(m.is_test for m in load_policy_set(root).modules)
    assert any(m.is_test for m in load_policy_set(root, include_tests=True).modules)


def test_revision_changes_with_any_file(policy_dir: Build) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    before = load_policy_set(root).revision
    assert load_policy_set(root).revision == before
    (root / "data.json").write_text('{"tribunal": {"config": {"x": 1}}}')
    assert load_policy_set(root).revision != before


def test_conflicting_data_files_are_refused(policy_dir: Build) -> None:
    root = policy_dir(
        {"a.json": '{"tribunal": {"config": {"x": 1}}}', "b.yaml": "tribunal: {config: {x: 2}}"}
    )
    with pytest.raises(PolicyLoadError, match=r"data\.tribunal\.config\.x is already set"):
        load_policy_set(root)


def test_extra_data_overrides(policy_dir: Build, tmp_path: Path) -> None:
    root = policy_dir({"a.json": '{"tribunal": {"config": {"x": 1, "y": 1}}}'})
    extra = tmp_path / "extra.yaml"
    extra.write_text("tribunal: {config: {x: 2}}")
    assert load_policy_set(root, [extra]).data == {"tribunal": {"config": {"x": 2, "y": 1}}}


def test_bad_metadata_names_the_file(policy_dir: Build) -> None:
    bad = PRIVILEGED.replace("enforcement: deny", "enforcement: maybe")
    with pytest.raises(PolicyLoadError, match=r"admission/privileged\.rego: METADATA custom\.enforcement"):
        load_policy_set(policy_dir({"admission/privileged.rego": bad}))


def test_missing_judge_package_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text("package x\n")
    with pytest.raises(PolicyLoadError, match=r"tribunal\.lib\.judge"):
        load_policy_set(tmp_path)


@pytest.mark.parametrize("engine", ["regorus", "regorus-interpreter", "regopy"])
def test_engines_gather_violations_with_policy_ids(policy_dir: Build, engine: str) -> None:
    root = policy_dir({"admission/privileged.rego": PRIVILEGED})
    result = create_engine(engine, load_policy_set(root)).evaluate("admission", orjson.dumps(INPUT))
    assert result == [
        {
            "msg": "a is privileged",
            "severity": "high",
            "controls": ["pss-baseline:privileged-containers"],
            "details": {"image": "nginx:1"},
            "policy": "privileged",
            "exception": None,
        }
    ]
    assert create_engine(engine, load_policy_set(root)).evaluate("falco", b'{"kind": "falco"}') == []


@pytest.mark.parametrize("engine", ["regorus", "regorus-interpreter", "regopy"])
def test_exceptions_in_data_mark_violations(policy_dir: Build, engine: str) -> None:
    exceptions = '{"tribunal": {"exceptions": [{"policy": "priv*", "namespaces": ["de*"], "reason": "lab"}]}}'
    root = policy_dir({"admission/privileged.rego": PRIVILEGED, "exceptions.json": exceptions})
    [violation] = create_engine(engine, load_policy_set(root)).evaluate("admission", orjson.dumps(INPUT))
    assert violation["exception"] == "lab"
    other = {**INPUT, "subject": {"namespace": "prod"}}
    [violation] = create_engine(engine, load_policy_set(root)).evaluate("admission", orjson.dumps(other))
    assert violation["exception"] is None


@pytest.mark.parametrize("engine", ["regorus", "regorus-interpreter", "regopy"])
def test_syntax_error_names_file_and_line(policy_dir: Build, engine: str) -> None:
    broken = "package tribunal.admission.broken\n\nimport rego.v1\n\nv if {\n\tinput.x ==\n}\n"
    root = policy_dir({"admission/broken.rego": broken})
    with pytest.raises(PolicyLoadError) as caught:
        create_engine(engine, load_policy_set(root))
    message = str(caught.value)
    assert "admission/broken.rego:" in message
    assert ":6:" in message or ":7:" in message
    assert "Stack backtrace" not in message


def test_runtime_error_is_raised_with_file_and_line(policy_dir: Build) -> None:
    bad = (
        "package tribunal.admission.bad\n\nimport rego.v1\n\n"
        'violations contains {"msg": concat(", ", input.event.x), "severity": "low", "controls": [], '
        '"details": {}} if input.event.x\n'
    )
    root = policy_dir({"admission/bad.rego": bad})
    with pytest.raises(PolicyEvaluationError, match=r"admission/bad\.rego:5"):
        create_engine("regorus-interpreter", load_policy_set(root)).evaluate(
            "admission", b'{"kind": "admission", "event": {"x": 7}}'
        )
    # On the RVM (regorus's default for admission) the failing expression is undefined instead.
    assert (
        create_engine("regorus", load_policy_set(root)).evaluate(
            "admission", b'{"kind": "admission", "event": {"x": 7}}'
        )
        == []
    )


# Iterating null: an error on regorus's interpreter, undefined on its RVM (as on OPA by default).
ITERATES_NULL = """package tribunal.admission.buggy
import rego.v1
violations contains {"msg": "never", "severity": "low", "controls": ["x:1"], "details": {}} if {
	some c in object.get(input, "labels", null)
	c == "boom"
}
"""


def test_vm_treats_some_runtime_errors_as_undefined(policy_dir: Build) -> None:
    root = policy_dir({"admission/buggy.rego": ITERATES_NULL})
    with pytest.raises(PolicyEvaluationError, match=r"admission/buggy\.rego:4"):
        create_engine("regorus-interpreter", load_policy_set(root)).evaluate(
            "admission", b'{"kind": "admission"}'
        )
    assert (
        create_engine("regorus", load_policy_set(root)).evaluate("admission", b'{"kind": "admission"}') == []
    )


def test_unknown_engine_is_refused(policy_dir: Build) -> None:
    with pytest.raises(ValueError, match="unknown policy engine"):
        create_engine("nope", load_policy_set(policy_dir({})))


def test_regopy_output_with_raw_newlines_is_read(policy_dir: Build) -> None:
    newline = (
        "package tribunal.falco.nl\n\nimport rego.v1\n\n"
        'violations contains {"msg": input.event.output, "severity": "low", "controls": ["x"], '
        '"details": {}} if input.event.output\n'
    )
    engine = create_engine("regopy", load_policy_set(policy_dir({"runtime/nl.rego": newline})))
    [violation] = engine.evaluate("falco", orjson.dumps({"kind": "falco", "event": {"output": "a\nb"}}))
    assert violation["msg"] == "a\nb"


NETWORK_POLICY = """package tribunal.admission.phone_home

import rego.v1

# http.send(...) in a comment is fine, and so is "http.send(" in a string:
note := "http.send({})"

violations contains v if {
	resp := http.send({"method": "GET", "url": "https://attacker.example/"})
	v := {"msg": resp.body, "severity": "high", "controls": [], "details": {}}
}
"""


@pytest.mark.parametrize("engine", ["regorus", "regopy"])
def test_network_builtins_are_refused_at_load_with_the_file_and_line(policy_dir, engine: str) -> None:  # type: ignore[no-untyped-def]
    root = policy_dir({"admission/phone_home.rego": NETWORK_POLICY})
    with pytest.raises(PolicyLoadError) as refused:
        create_engine(engine, load_policy_set(root))
    assert "admission/phone_home.rego:9:10: http.send reaches the network" in str(refused.value)
    assert "TRIBUNAL_POLICY_ALLOW_NETWORK" in str(refused.value)
    lookup = NETWORK_POLICY.replace(
        'http.send({"method": "GET", "url": "https://attacker.example/"})', 'net.lookup_ip_addr("x.example")'
    )
    root = policy_dir({"admission/phone_home.rego": lookup})
    with pytest.raises(PolicyLoadError, match=r"phone_home.rego:9:\d+: net.lookup_ip_addr"):
        load_policy_set(root)


def test_network_builtins_load_when_allowed_and_mentions_never_count(policy_dir) -> None:  # type: ignore[no-untyped-def]
    root = policy_dir({"admission/phone_home.rego": NETWORK_POLICY})
    assert "phone_home" in load_policy_set(root, allow_network=True).policies
    harmless = NETWORK_POLICY.replace("resp := http.send", "resp := my_http.send").replace("resp.body", '"x"')
    root = policy_dir({"admission/phone_home.rego": harmless})
    load_policy_set(root)  # a rule named like it, a comment and a string: no call
