"""Reading evidence from files: JSON, JSON Lines, multi-document YAML, stdin, and bad files."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import falco_alert, pod, review
from tribunal.model import Evidence, EvidenceError
from tribunal.sources import expand_paths, read_evidence


def _read(path: Path | str) -> list[Evidence | EvidenceError]:
    return list(read_evidence(str(path)))


def test_json_file(tmp_path: Path) -> None:
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(review(pod())))
    [evidence] = _read(path)
    assert isinstance(evidence, Evidence)
    assert evidence.source == str(path)


def test_jsonl_names_the_line_of_a_bad_document(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text(json.dumps(falco_alert()) + "\n\n{not json\n" + json.dumps(falco_alert(uuid="b")) + "\n")
    items = _read(path)
    assert [type(i).__name__ for i in items] == ["Evidence", "EvidenceError", "Evidence"]
    assert isinstance(items[1], EvidenceError)
    assert items[1].source == f"{path}:3"
    assert "not valid JSON" in items[1].message


def test_multi_document_yaml_numbers_each(tmp_path: Path) -> None:
    path = tmp_path / "reviews.yaml"
    path.write_text(yaml.safe_dump_all([review(pod(), uid="a"), {"bogus": 1}]))
    first, second = _read(path)
    assert isinstance(first, Evidence) and first.source == f"{path}#1"
    assert isinstance(second, EvidenceError) and second.source == f"{path}#2"


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("a: &a [1, 2]\nb: [*a, *a]\n")
    [error] = _read(path)
    assert isinstance(error, EvidenceError)
    assert "aliases are not accepted" in error.message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("data: !!binary aGVsbG8=\n", "!!binary"),
        ("1: one\n", "mapping keys must be strings"),
        ("[" * 5000 + "]" * 5000, "nested deeper than 100 levels"),
    ],
)
def test_yaml_json_cannot_carry_is_refused_with_its_line(tmp_path: Path, text: str, problem: str) -> None:
    """Files and stdin are read by evidence's one YAML reader (tribunal.model.yaml_evidence)."""
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    [error] = _read(path)
    assert isinstance(error, EvidenceError) and error.source == str(path)
    assert problem in error.message and "line 1" in error.message


def test_truncated_json_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(review(pod()))[:120])
    [error] = _read(path)
    assert isinstance(error, EvidenceError)
    assert error.source == str(path)
    assert "not valid JSON" in error.message


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("  \n")
    [error] = _read(path)
    assert isinstance(error, EvidenceError) and "empty" in error.message


def test_missing_file_is_an_error() -> None:
    [error] = _read("/nonexistent/x.json")
    assert isinstance(error, EvidenceError) and "cannot read" in error.message


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"junk": "x" * 2000}))
    [error] = list(read_evidence(str(path), max_bytes=1000))
    assert isinstance(error, EvidenceError) and "1000 byte limit" in error.message


def test_stdin_sniffs_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    text = json.dumps(falco_alert()) + "\n" + json.dumps(falco_alert(uuid="z")) + "\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    items = _read("-")
    assert [i.source for i in items if isinstance(i, Evidence)] == ["<stdin>:1", "<stdin>:2"]


def test_stdin_sniffs_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(yaml.safe_dump(review(pod())).encode())))
    [evidence] = _read("-")
    assert isinstance(evidence, Evidence) and evidence.kind.value == "admission"


def test_directories_expand_to_evidence_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.json", "a.yaml", "sub/c.jsonl", "notes.txt"):
        (tmp_path / name).write_text("{}")
    assert expand_paths([str(tmp_path), "-"]) == [
        str(tmp_path / "a.yaml"),
        str(tmp_path / "b.json"),
        str(tmp_path / "sub/c.jsonl"),
        "-",
    ]
