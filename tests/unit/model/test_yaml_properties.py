"""Property tests of the YAML evidence reader (model/yaml_evidence.py), with libyaml's parser and
PyYAML's own: any text gives JSON values or an EvidenceError naming the source (never another
exception), what it gives orjson can write and is no deeper than the bound, and any JSON value
written as YAML by PyYAML reads back as itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.model.json_strategies import FAST, json_values, real_samples
from tribunal.model import EvidenceError, yaml_evidence
from tribunal.model.detect import MAX_DEPTH, check_depth
from tribunal.model.yaml_evidence import load_yaml_documents

PARSERS = ["libyaml", "python"]
# Text that makes YAML mean something: indicators, tags, anchors, escapes, and JSON's punctuation.
YAML_ALPHABET = st.sampled_from([*"&*!|>'\"%@`#:-?,[]{}\\ \t\n", "!!", "<<", "~", "0x", ".inf", "\\u", "---"])
SAMPLE_TEXTS = [yaml.safe_dump(doc, sort_keys=False) for _, doc in real_samples(16 * 1024)] or ["a: 1\n"]


@contextmanager
def parser(name: str) -> Iterator[None]:
    if name == "libyaml" and not yaml.__with_libyaml__:
        pytest.skip("PyYAML without libyaml")
    replacement = yaml.loader.Loader if name == "python" else yaml_evidence._Parser
    with mock.patch.object(yaml_evidence, "_Parser", replacement):
        yield


def _read(data: bytes | str) -> list[Any] | EvidenceError:
    try:
        documents = load_yaml_documents(data, "report.yaml")
    except EvidenceError as exc:
        error = exc
    else:
        error = None
    if error is not None:
        assert error.source == "report.yaml" and error.field is None
        assert str(error).startswith("report.yaml: ") and len(error.message) < 1024
        return error
    for doc in documents:
        orjson.dumps(doc)  # JSON values only
        check_depth(doc, "report.yaml", MAX_DEPTH)
    return documents


@pytest.mark.parametrize("name", PARSERS)
@FAST
@given(data=st.binary(max_size=200) | st.text(max_size=200))
def test_any_text_is_json_values_or_an_evidence_error(name: str, data: bytes | str) -> None:
    with parser(name):
        _read(data)


@pytest.mark.parametrize("name", PARSERS)
@FAST
@given(
    text=st.sampled_from(SAMPLE_TEXTS),
    edits=st.lists(
        st.tuples(st.floats(0, 1), YAML_ALPHABET | st.text(max_size=3), st.integers(0, 3)), max_size=4
    ),
)
def test_real_evidence_as_yaml_mutated_is_json_values_or_an_evidence_error(
    name: str, text: str, edits: list[tuple[float, str, int]]
) -> None:
    for where, insert, remove in edits:
        at = int(where * len(text))
        text = text[:at] + insert + text[at + remove :]
    with parser(name):
        _read(text)
        _read(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("name", PARSERS)
@FAST
@given(docs=st.lists(json_values(30).filter(lambda v: v is not None), min_size=1, max_size=3))
def test_json_values_written_as_yaml_read_back_as_themselves(name: str, docs: list[Any]) -> None:
    text = yaml.safe_dump_all(docs, explicit_start=True)
    with parser(name):
        assert _read(text) == docs
        assert _read(yaml.safe_dump_all(docs, default_flow_style=True)) == docs


@pytest.mark.parametrize("name", PARSERS)
@FAST
@given(depth=st.integers(1, MAX_DEPTH + 20), flow=st.booleans())
def test_nesting_is_read_up_to_the_bound_and_refused_past_it(name: str, depth: int, flow: bool) -> None:
    doc: Any = "leaf"
    for level in range(depth):
        doc = [doc] if level % 2 else {"k": doc}
    with parser(name):
        outcome = _read(yaml.safe_dump(doc, default_flow_style=flow))
    if depth <= MAX_DEPTH:
        assert outcome == [doc]
    else:
        assert isinstance(outcome, EvidenceError) and f"deeper than {MAX_DEPTH}" in outcome.message
