"""regorus judges admission reviews and Falco alerts on its RVM: same violations as its interpreter on
every input tried, and the interpreter answers whatever the RVM cannot (see regorus_engine's
docstring)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import FIXTURES, POLICY_DIR, PROJECT, needs_shared, pod, review
from tribunal.model import Evidence, EvidenceKind, parse_evidence
from tribunal.model.admission import POD_SPEC_PATHS
from tribunal.policy import PolicyEngine, PolicySet, create_engine, load_policy_set
from tribunal.policy.regorus_engine import RegorusEngine
from tribunal.sources import expand_paths, read_evidence

Build = Callable[[dict[str, str]], Path]

# Fragments that switch on every check of the admission library (and their compliant forms), with
# nulls and wrong types where a policy must guard against them.
CONTAINER_SETTINGS: list[dict[str, Any]] = [
    {},
    {"securityContext": None},
    {"securityContext": {"privileged": True}},
    {"securityContext": {"privileged": False, "allowPrivilegeEscalation": False}},
    {"securityContext": {"allowPrivilegeEscalation": True}},
    {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000}},
    {"securityContext": {"runAsUser": 0}},
    {"securityContext": {"runAsNonRoot": False}},
    {"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}},
    {"securityContext": {"capabilities": {"add": ["SYS_ADMIN", "NET_RAW"]}}},
    {"securityContext": {"capabilities": {"drop": None, "add": "SYS_ADMIN"}}},
    {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
    {"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
    {"securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "root"}}},
    {"securityContext": {"procMount": "Unmasked"}},
    {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
    {"securityContext": {"windowsOptions": {"hostProcess": True}}},
    {"ports": [{"containerPort": 80, "hostPort": 8080}]},
    {"ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
    {"resources": {"limits": {"cpu": "1"}}},
    {"resources": None},
    {"securityContext": {"readOnlyRootFilesystem": True, "runAsGroup": 0}, "tty": True, "stdin": True},
    {
        "securityContext": {"runAsUser": 20000, "runAsGroup": 1000},
        "livenessProbe": {"exec": {"command": ["true"]}},
    },
    {"resources": {"requests": {"cpu": "1", "memory": ""}}, "readinessProbe": {}, "restartPolicy": "Always"},
]
IMAGES = [
    "nginx",
    "nginx:latest",
    "nginx:1.27",
    "docker.io/library/nginx:1.27",
    "ghcr.io/acme/app@sha256:" + "a" * 64,
    "registry.k8s.io/pause:3.9",
    "localhost:5000/app:dev",
    "quay.io/evil/miner:1",
    "",
]
POD_SETTINGS: list[dict[str, Any]] = [
    {},
    {"hostNetwork": True, "hostPID": True, "hostIPC": True},
    {"hostNetwork": False},
    {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}},
    {"securityContext": {"runAsUser": 0, "sysctls": [{"name": "kernel.msgmax", "value": "1"}]}},
    {"securityContext": {"sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1 2"}]}},
    {"securityContext": {"seLinuxOptions": {"type": "container_t"}}},
    {"securityContext": None},
    {"volumes": [{"name": "h", "hostPath": {"path": "/var/run/docker.sock"}}]},
    {"volumes": [{"name": "c", "configMap": {"name": "x"}}, {"name": "e", "emptyDir": {}}]},
    {"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]},
    {"os": {"name": "windows"}, "securityContext": {"windowsOptions": {"hostProcess": True}}},
    {"automountServiceAccountToken": False, "securityContext": {"fsGroup": 0, "supplementalGroups": [0, 5]}},
    {
        "automountServiceAccountToken": True,
        "securityContext": {"runAsGroup": 70000, "supplementalGroups": None},
    },
]
ANNOTATIONS: list[dict[str, Any] | None] = [
    None,
    {"container.apparmor.security.beta.kubernetes.io/c0": "unconfined"},
    {"container.apparmor.security.beta.kubernetes.io/c0": "runtime/default"},
    {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"},
    {"container.seccomp.security.alpha.kubernetes.io/c1": "unconfined"},
    {"container.apparmor.security.beta.kubernetes.io/init": "unconfined"},
    {"container.apparmor.security.beta.kubernetes.io/gone": "localhost/x"},
]
WORKLOADS = ["Pod", "Deployment", "CronJob", "DaemonSet", "ConfigMap"]


def generated_reviews(count: int, seed: int = 2026) -> list[dict[str, Any]]:
    """``count`` AdmissionReviews mixing the fragments above, the same ones on every run."""
    rng = random.Random(seed)
    reviews = []
    for i in range(count):
        containers = []
        for n in range(rng.randint(1, 3)):
            settings: dict[str, Any] = {}
            for fragment in rng.sample(CONTAINER_SETTINGS, rng.randint(0, 3)):
                settings = {**settings, **fragment}
            containers.append({"name": f"c{n}", "image": rng.choice(IMAGES), **settings})
        spec: dict[str, Any] = {}
        for fragment in rng.sample(POD_SETTINGS, rng.randint(0, 2)):
            spec = {**spec, **fragment}
        if rng.random() < 0.3:
            spec["initContainers"] = [
                {"name": "init", "image": rng.choice(IMAGES), **rng.choice(CONTAINER_SETTINGS)}
            ]
        obj = pod(*containers, name=f"p{i}", **spec)
        annotations = rng.choice(ANNOTATIONS)
        if annotations is not None:
            obj["metadata"]["annotations"] = annotations
        kind = rng.choice(WORKLOADS)
        template = {"metadata": obj["metadata"], "spec": obj["spec"]}
        if kind == "Deployment" or kind == "DaemonSet":
            obj = _workload("apps/v1", kind, f"w{i}", {"template": template})
        elif kind == "CronJob":
            obj = _workload("batch/v1", kind, f"w{i}", {"jobTemplate": {"spec": {"template": template}}})
        elif kind == "ConfigMap":
            obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm{i}"},
                "data": {"a": "b"},
            }
        reviews.append(review(obj, uid=f"gen-{i}", namespace=rng.choice(["default", "prod", "dev"])))
    return reviews


def _workload(api_version: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}


def _inputs(reviews: list[dict[str, Any]]) -> list[bytes]:
    return [parse_evidence(doc).policy_input_json() for doc in reviews]


def _sorted(violations: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in violations)


def _with_exceptions(policy_set: PolicySet) -> PolicySet:
    exceptions = [
        {"policy": "privileged_*", "namespaces": ["dev"], "reason": "lab"},
        {"policy": "*", "images": ["quay.io/evil/*"], "reason": "known"},
        {"policy": "image_tag", "reason": "all"},
    ]
    data = {**policy_set.data, "tribunal": {**policy_set.data.get("tribunal", {}), "exceptions": exceptions}}
    return dataclasses.replace(policy_set, data=data, revision=policy_set.revision + "-exc")


def _compare(
    kind: str, inputs: list[bytes], policy_set: PolicySet | None = None
) -> tuple[list[int], int, int]:
    """Judge ``inputs`` with ``regorus`` (the RVM for ``kind``) and with ``regorus-interpreter``: the
    indexes where they differ, the violations the interpreter found, and the RVM's fallbacks."""
    policy_set = policy_set or load_policy_set(POLICY_DIR)
    vm = create_engine("regorus", policy_set)
    interpreter = create_engine("regorus-interpreter", policy_set)
    assert isinstance(vm, RegorusEngine) and kind in vm.vm_kinds
    differ, found = [], 0
    for i, data in enumerate(inputs):
        expected = interpreter.evaluate(kind, data)
        found += len(expected)
        if _sorted(vm.evaluate(kind, data)) != _sorted(expected):
            differ.append(i)
    return differ, found, vm.vm_fallbacks


@pytest.mark.parametrize("exceptions", [False, True], ids=["plain", "with-exceptions"])
def test_vm_and_interpreter_agree_on_generated_reviews(exceptions: bool) -> None:
    policy_set = load_policy_set(POLICY_DIR)
    if exceptions:
        policy_set = _with_exceptions(policy_set)
    differ, found, fallbacks = _compare("admission", _inputs(generated_reviews(400)), policy_set)
    assert differ == []
    assert fallbacks == 0  # the agreement is the RVM's own, not the fallback's
    assert found > 1000  # the generated reviews do break policies, with or without exceptions


def mutated_fixtures(per_fixture: int, seed: int = 4) -> list[bytes]:
    """Policy inputs of the shared AdmissionReviews, each as it is and, for those with a pod spec,
    ``per_fixture`` times with the fragments above merged into the pod spec, its containers and its
    annotations (real-world shapes: managed fields, status, owner references, v1beta1)."""
    rng = random.Random(seed)
    inputs = []
    for path in sorted((FIXTURES / "admission").glob("*.json")):
        doc = orjson.loads(path.read_bytes())
        inputs.append(parse_evidence(doc).policy_input_json())
        obj = (doc.get("request") or {}).get("object")
        spec_path = POD_SPEC_PATHS.get(obj.get("kind", "")) if isinstance(obj, dict) else None
        if spec_path is None:
            continue
        for _ in range(per_fixture):
            variant = orjson.loads(orjson.dumps(doc))
            template = variant["request"]["object"]
            for key in spec_path[:-1]:
                template = template.setdefault(key, {})
            spec = template.setdefault(spec_path[-1], {})
            annotations = rng.choice(ANNOTATIONS)
            if annotations is not None:
                template.setdefault("metadata", {})["annotations"] = annotations
            for fragment in rng.sample(POD_SETTINGS, rng.randint(1, 2)):
                spec.update(fragment)
            for container in spec.get("containers") or []:
                for fragment in rng.sample(CONTAINER_SETTINGS, rng.randint(0, 3)):
                    container.update(fragment)
                container["image"] = rng.choice(IMAGES) or container.get("image", "")
            inputs.append(parse_evidence(variant).policy_input_json())
    return inputs


@needs_shared
def test_vm_and_interpreter_agree_on_the_shared_reviews_and_their_variants() -> None:
    inputs = mutated_fixtures(per_fixture=8)
    assert len(inputs) > 200
    differ, _, fallbacks = _compare("admission", inputs)
    assert differ == [] and fallbacks == 0


def test_vm_falls_back_to_the_interpreter_past_its_instruction_limit() -> None:
    policy_set = load_policy_set(POLICY_DIR)
    many = [{"name": f"c{i}", "image": "nginx", "securityContext": {"privileged": True}} for i in range(60)]
    data = _inputs([review(pod(*many))])[0]
    vm = create_engine("regorus", policy_set)
    expected = create_engine("regorus-interpreter", policy_set).evaluate("admission", data)
    assert len([v for v in expected if v["policy"] == "privileged_containers"]) == 60
    assert _sorted(vm.evaluate("admission", data)) == _sorted(expected)
    assert isinstance(vm, RegorusEngine) and vm.vm_fallbacks == 1


# Inside an object comprehension the RVM yields a key for a missing one (its undefined marker).
LEAKS_A_KEY = """package tribunal.admission.leak
import rego.v1
names := {"a": "first"}
named := {key: v |
	some k
	v := input.fields[k]
	key := names[k]
}
violations contains {"msg": "m", "severity": "low", "controls": ["x:1"], "details": named}
"""


def test_vm_undefined_marker_goes_to_the_interpreter(policy_dir: Build) -> None:
    engine = create_engine("regorus", load_policy_set(policy_dir({"admission/leak.rego": LEAKS_A_KEY})))
    [violation] = engine.evaluate("admission", b'{"kind": "admission", "fields": {"a": "1", "b": "2"}}')
    assert violation["details"] == {"first": "1"}  # the interpreter's answer, not {"first", "<undefined>"}
    assert isinstance(engine, RegorusEngine) and engine.vm_fallbacks == 1


def falco_variants(alerts: list[dict[str, Any]], count: int, seed: int = 7) -> list[bytes]:
    """Policy inputs of ``alerts`` as they are and ``count`` variants: output fields dropped, blanked
    or turned to numbers, tags dropped (what older Falco versions and plugins send)."""
    rng = random.Random(seed)
    docs = [*alerts]
    for _ in range(count):
        doc = orjson.loads(orjson.dumps(rng.choice(alerts)))
        fields = doc.get("output_fields")
        if isinstance(fields, dict) and fields:
            for name in rng.sample(sorted(fields), rng.randint(1, max(1, len(fields) // 2))):
                roll = rng.random()
                if roll < 0.6:
                    del fields[name]
                elif roll < 0.8:
                    fields[name] = ""
                else:
                    fields[name] = 5
        if rng.random() < 0.2:
            doc.pop("tags", None)
        docs.append(doc)
    return [parse_evidence(doc, kind=EvidenceKind.FALCO).policy_input_json() for doc in docs]


def _falco_alerts(folder: Path) -> list[dict[str, Any]]:
    return [
        item.event()
        for path in expand_paths([str(folder)])
        for item in read_evidence(path, EvidenceKind.FALCO)
        if isinstance(item, Evidence)
    ]


def test_vm_and_interpreter_agree_on_falco_alerts_and_their_variants() -> None:
    alerts = _falco_alerts(PROJECT / "examples" / "falco")
    assert len(alerts) >= 2
    differ, _, fallbacks = _compare("falco", falco_variants(alerts, 100))
    assert differ == [] and fallbacks == 0


@needs_shared
def test_vm_and_interpreter_agree_on_the_shared_falco_alerts_and_their_variants() -> None:
    alerts = _falco_alerts(FIXTURES / "falco")
    assert len(alerts) == 35
    differ, _, fallbacks = _compare("falco", falco_variants(alerts, 300))
    assert differ == [] and fallbacks == 0


# Valid Rego the RVM's compiler refuses (`with` outside a test).
WITH_OUTSIDE_TESTS = """package tribunal.admission.with_data
import rego.v1
named := input.name
violations contains {"msg": n, "severity": "low", "controls": ["x:1"], "details": {}} if {
	n := named with input as {"name": "fixed"}
}
"""


def test_policies_the_vm_cannot_compile_run_on_the_interpreter(policy_dir: Build) -> None:
    engine: PolicyEngine = create_engine(
        "regorus", load_policy_set(policy_dir({"admission/with_data.rego": WITH_OUTSIDE_TESTS}))
    )
    assert isinstance(engine, RegorusEngine) and engine.vm_kinds == {"falco"}  # Falco keeps the RVM
    [violation] = engine.evaluate("admission", b'{"kind": "admission"}')
    assert violation["msg"] == "fixed" and violation["policy"] == "with_data"


def test_interpreter_engine_never_uses_the_vm(policy_dir: Build) -> None:
    engine = create_engine("regorus-interpreter", load_policy_set(POLICY_DIR))
    assert isinstance(engine, RegorusEngine) and engine.vm_kinds == frozenset()
    assert engine.name == "regorus-interpreter"
