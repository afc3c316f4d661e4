"""Hypothesis strategies for the property tests of the parsers: JSON values as orjson reads them,
documents that look like each kind of evidence, and real samples (examples/ and ../shared/fixtures,
where present) mutated a few places at a time."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import orjson
import yaml
from hypothesis import strategies as st

from tests.conftest import PROJECT, shared_fixtures


def fast(examples: int) -> hypothesis.settings:
    """Fast and reproducible: ``examples`` examples (TRIBUNAL_HYPOTHESIS_EXAMPLES overrides, for a
    longer hunt, then with a random seed), no example database on disk, no deadline (CI machines
    vary), the same seed on every run otherwise, so a failure is the same failure everywhere."""
    hunt = os.environ.get("TRIBUNAL_HYPOTHESIS_EXAMPLES")
    return hypothesis.settings(
        max_examples=int(hunt) if hunt else examples,
        deadline=None,
        database=None,
        derandomize=not hunt,
        suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.data_too_large],
    )


FAST = fast(100)

# Keys that steer arbitrary documents into every branch of detection and validation.
KEYS = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "metadata",
        "request",
        "response",
        "uid",
        "object",
        "oldObject",
        "operation",
        "userInfo",
        "username",
        "groups",
        "namespace",
        "name",
        "labels",
        "annotations",
        "spec",
        "containers",
        "image",
        "dryRun",
        "subResource",
        "rule",
        "priority",
        "time",
        "output",
        "output_fields",
        "tags",
        "uuid",
        "hostname",
        "SchemaVersion",
        "ArtifactName",
        "ArtifactType",
        "ClusterName",
        "Results",
        "Resources",
        "Vulnerabilities",
        "Misconfigurations",
        "Secrets",
        "VulnerabilityID",
        "Metadata",
        "RepoDigests",
        "report",
        "artifact",
        "registry",
        "repository",
        "tag",
        "digest",
        "status",
        "version",
        "group",
        "template",
        "a.b",
        "",
    ]
) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "admission.k8s.io/v1",
            "admission.k8s.io/v1beta1",
            "aquasecurity.github.io/v1alpha1",
            "AdmissionReview",
            "Pod",
            "Deployment",
            "CronJob",
            "CREATE",
            "UPDATE",
            "Warning",
            "info",
            "2024-05-01T10:00:00Z",
            "nginx:1.27",
            "<NA>",
            "",
            " ",
            "v1",
            2,
            2.0,
            0,
            -1,
            2**64 - 1,
        ]
    )
)


def json_values(max_leaves: int = 25) -> st.SearchStrategy[Any]:
    """Any JSON value orjson can read back (64-bit integers, finite floats, Unicode text)."""
    return st.recursive(
        SCALARS,
        lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=6),
        max_leaves=max_leaves,
    )


def _kind_like() -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the fields detection looks at, and arbitrary values in them."""
    value = json_values(10)
    admission = st.fixed_dictionaries(
        {
            "apiVersion": st.sampled_from(["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]) | value,
            "kind": st.just("AdmissionReview") | value,
        },
        optional={
            "request": st.dictionaries(KEYS, value, max_size=8) | value,
            "response": value,
            "metadata": value,
        },
    )
    manifest = st.fixed_dictionaries(
        {
            "apiVersion": st.text(max_size=10),
            "kind": st.sampled_from(["Pod", "Deployment", "CronJob", "X"]),
            "metadata": st.dictionaries(KEYS, value, max_size=4),
        },
        optional={"spec": st.dictionaries(KEYS, value, max_size=4) | value},
    )
    falco = st.fixed_dictionaries(
        {"rule": value, "priority": value},
        optional={"time": value, "output_fields": value, "tags": value, "uuid": value, "hostname": value},
    )
    trivy = st.fixed_dictionaries(
        {"SchemaVersion": st.just(2) | value, "ArtifactName": value},
        optional={"Results": value, "Metadata": value, "ArtifactType": value},
    )
    cluster = st.fixed_dictionaries(
        {"ClusterName": value}, optional={"Resources": value, "Vulnerabilities": value}
    )
    operator = st.fixed_dictionaries(
        {"apiVersion": st.just("aquasecurity.github.io/v1alpha1"), "kind": value},
        optional={"metadata": value, "report": st.dictionaries(KEYS, value, max_size=4) | value},
    )
    return admission | manifest | falco | trivy | cluster | operator


def documents() -> st.SearchStrategy[Any]:
    """Arbitrary JSON values, and objects shaped like each kind of evidence."""
    return json_values() | _kind_like()


def _load(path: Path) -> Iterator[tuple[str, Any]]:
    text = path.read_text()
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield f"{path.name}:{number}", json.loads(line)
    elif path.suffix in (".yaml", ".yml"):
        for number, doc in enumerate(yaml.safe_load_all(text), 1):
            if doc is not None:
                yield f"{path.name}#{number}", doc
    else:
        yield path.name, json.loads(text)


def real_samples(max_bytes: int = 64 * 1024) -> list[tuple[str, Any]]:
    """The bundled examples and the shared fixtures (those up to ``max_bytes``), parsed."""
    files = [p for p in sorted((PROJECT / "examples").rglob("*")) if p.suffix in (".json", ".jsonl", ".yaml")]
    for folder in ("admission", "falco", "trivy", "manifests"):
        files += shared_fixtures(folder, ".json", ".jsonl", ".yaml")
    return [sample for path in files if path.stat().st_size <= max_bytes for sample in _load(path)]


def _paths(doc: Any, limit: int = 400) -> list[tuple[str | int, ...]]:
    """Paths to the nodes of ``doc``, breadth first (the root, its members, theirs…), at most ``limit``."""
    found: list[tuple[str | int, ...]] = []
    queue: list[tuple[tuple[str | int, ...], Any]] = [((), doc)]
    while queue and len(found) < limit:
        path, node = queue.pop(0)
        found.append(path)
        if isinstance(node, dict):
            queue += [((*path, k), v) for k, v in node.items()]
        elif isinstance(node, list):
            queue += [((*path, i), v) for i, v in enumerate(node)]
    return found


def _parent(doc: Any, path: tuple[str | int, ...]) -> Any:
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn, samples: list[tuple[str, Any]]) -> tuple[str, Any]:
    """A real sample with one to three of its nodes replaced by another JSON value, deleted, or
    wrapped in a list."""
    name, original = draw(st.sampled_from(samples))
    doc = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        how = draw(st.sampled_from(["replace", "replace", "delete", "wrap"]))
        if not path:
            doc = draw(json_values()) if how != "wrap" else [doc]
            continue
        parent, key = _parent(doc, path), path[-1]
        if how == "delete":
            del parent[key]
        elif how == "wrap":
            parent[key] = [parent[key]]
        else:
            parent[key] = draw(json_values(8))
        if not isinstance(doc, dict | list):
            break
    return name, doc


def as_read(doc: Any) -> tuple[Any, bytes]:
    """``doc`` as the server reads it: its JSON text, and that text parsed again."""
    raw = orjson.dumps(doc)
    return orjson.loads(raw), raw
