"""Every Trivy Operator report kind, as small as its published CRD allows (only the fields its schema
requires: ../shared/schemas/trivy-operator), is parsed and judged; so is a full one of each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import POLICY_DIR, SHARED
from tribunal.model import EvidenceKind, parse_evidence
from tribunal.model.trivy import TrivyOperatorReport
from tribunal.policy import Judge, load_policy_set

CRDS = SHARED / "schemas" / "trivy-operator"
pytestmark = pytest.mark.skipif(not CRDS.is_dir(), reason="../shared/schemas/trivy-operator is absent")


def _crds() -> list[Path]:
    return sorted(CRDS.glob("*.yaml")) if CRDS.is_dir() else []


def _instance(schema: dict[str, Any], *, full: bool) -> Any:
    """The smallest value the schema accepts (``full``: every declared property, not only required ones)."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        keys = props if full else schema.get("required", [])
        return {k: _instance(props.get(k, {}), full=full) for k in keys}
    if kind == "array":
        return [_instance(schema.get("items") or {}, full=full)]
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return 1
    return "x"


@pytest.fixture(scope="module")
def judge() -> Judge:
    return Judge.build(load_policy_set(POLICY_DIR))


@pytest.mark.parametrize("crd", _crds(), ids=lambda p: p.stem.split("_", 1)[-1])
@pytest.mark.parametrize("full", [False, True], ids=["required-only", "every-field"])
def test_each_operator_report_kind_parses_and_is_judged(crd: Path, full: bool, judge: Judge) -> None:
    doc = yaml.safe_load(crd.read_text())
    group, names = doc["spec"]["group"], doc["spec"]["names"]
    for version in doc["spec"]["versions"]:
        body = _instance(version["schema"]["openAPIV3Schema"], full=full)
        body.update(
            apiVersion=f"{group}/{version['name']}",
            kind=names["kind"],
            metadata={"name": "r", "namespace": "shop"},
        )
        evidence = parse_evidence(body)
        assert evidence.kind is EvidenceKind.TRIVY
        assert isinstance(evidence.body, TrivyOperatorReport)
        assert judge.judge(evidence).kind is EvidenceKind.TRIVY
