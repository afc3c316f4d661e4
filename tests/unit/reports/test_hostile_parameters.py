"""What schemathesis found in the report path, pinned: a ``?framework=`` that is no catalogue name
(too long for the file system, a path) is "no such framework" and no file is read; a PolicyReport
never writes a string YAML readers take for a number (a namespace called ``1e10``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import RULES_DIR
from tests.unit.reports.test_builder import FRAMEWORK, Record, finding
from tribunal.reports import FrameworkError, build_report, load_framework
from tribunal.reports.formats import get_format
from tribunal.store import FindingStatus


@pytest.mark.parametrize(
    "framework_id",
    ["a" * 300, "../frameworks/cis-k8s", "/etc/passwd", "cis-k8s/../cis-k8s", "", ".", "..", "a b", "ñ"],
)
def test_a_framework_that_is_no_catalogue_name_is_no_such_framework(framework_id: str) -> None:
    with pytest.raises(FrameworkError, match="no such framework catalogue") as caught:
        load_framework(RULES_DIR, framework_id)
    assert "cis-k8s" in str(caught.value)  # the known ones are named


def test_an_include_outside_the_catalogues_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "frameworks"
    folder.mkdir()
    control = "controls: [{id: c, title: C}]\n"
    (tmp_path / "secret.yaml").write_text("id: secret\ntitle: outside\n" + control)
    (folder / "x.yaml").write_text("id: x\ntitle: X\nincludes: ['../secret']\n" + control)
    with pytest.raises(FrameworkError, match="no such framework catalogue"):
        load_framework(tmp_path, "x")


async def test_a_policyreport_quotes_strings_that_yaml_readers_take_for_numbers() -> None:
    findings = [
        finding("hostns", namespace, "web", FindingStatus.OPEN, ["cis:pid"])
        for namespace in ("1e10", "2E+5", "10", "0.5", "web")
    ]
    report = await build_report(Record(findings, []), FRAMEWORK)
    text = get_format("policyreport").render(report).decode()
    assert "namespace: '1e10'" in text and "namespace: '2E+5'" in text, text
    namespaces = {doc["metadata"].get("namespace") for doc in yaml.safe_load_all(text)}
    assert {"1e10", "2E+5", "10", "0.5", "web"} <= namespaces
    assert all(isinstance(ns, str) for ns in namespaces if ns is not None)
