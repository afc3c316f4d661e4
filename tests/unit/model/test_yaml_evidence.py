"""The one YAML reader of evidence: JSON values only. Aliases, non-JSON tags, non-string keys, nesting past
the bound and numbers JSON cannot carry are each refused with an EvidenceError naming the source, the
problem and the line; whatever it returns, orjson can serialise."""

from __future__ import annotations

import random

import orjson
import pytest
import yaml

from tests.conftest import BILLION_LAUGHS
from tribunal.model import EvidenceError, yaml_evidence
from tribunal.model.detect import MAX_DEPTH
from tribunal.model.yaml_evidence import load_yaml_documents


@pytest.fixture(autouse=True, params=["libyaml", "python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test with libyaml's parser (when PyYAML has it) and with PyYAML's own."""
    if request.param == "python":
        monkeypatch.setattr(yaml_evidence, "_Parser", yaml.loader.Loader)
    elif not yaml.__with_libyaml__:
        pytest.skip("PyYAML without libyaml")


def _error(data: bytes | str) -> EvidenceError:
    with pytest.raises(EvidenceError) as caught:
        load_yaml_documents(data, "report.yaml")
    assert caught.value.source == "report.yaml"
    return caught.value


def test_json_values_come_back_as_json() -> None:
    docs = load_yaml_documents(
        b"a: 1\nb: 1.5\nc: true\nd: ~\ne: text\nf: [1, 'x']\ng: {h: null}\n---\n- 2\n", "r.yaml"
    )
    assert docs == [
        {"a": 1, "b": 1.5, "c": True, "d": None, "e": "text", "f": [1, "x"], "g": {"h": None}},
        [2],
    ]


def test_timestamps_stay_the_text_they_were() -> None:
    # JSON has no timestamps: an unquoted one is the string the producer wrote, as in its JSON.
    [doc] = load_yaml_documents(b"time: 2024-05-01T10:00:00.123456789Z\nday: 2024-05-01\n", "r.yaml")
    assert doc == {"time": "2024-05-01T10:00:00.123456789Z", "day": "2024-05-01"}


def test_empty_documents_are_skipped() -> None:
    assert load_yaml_documents(b"---\n---\na: 1\n---\n", "r.yaml") == [{"a": 1}]
    assert load_yaml_documents(b"# nothing\n", "r.yaml") == []


def test_the_billion_laughs_is_refused_at_its_first_alias() -> None:
    assert len(BILLION_LAUGHS) < 400
    error = _error(BILLION_LAUGHS)
    assert "aliases are not accepted" in error.message
    assert "line 2" in error.message


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (b"data: !!binary aGVsbG8=\n", "!!binary"),
        (b"names: !!set {a, b}\n", "!!set"),
        (b"pairs: !!omap [{a: 1}]\n", "!!omap"),
        (b"when: !!timestamp 2024-05-01\n", "!!timestamp"),
        (b"x: !!python/object/apply:os.system ['true']\n", "!!python/object/apply:os.system"),
        (b"x: !!python/name:os.system\n", "!!python/name:os.system"),
        (b"x: !custom 1\n", "!custom"),
        (b"x: !!seq {a: 1}\n", "!!seq"),
    ],
)
def test_non_json_tags_are_refused_by_name(text: bytes, named: str) -> None:
    error = _error(text)
    assert named in error.message and "line 1" in error.message


def test_json_tags_are_accepted() -> None:
    [doc] = load_yaml_documents(
        b"a: !!str 1\nb: !!int '2'\nc: !!map {d: !!seq [!!null '', !!bool yes]}\n", "r"
    )
    assert doc == {"a": "1", "b": 2, "c": {"d": [None, True]}}


def test_a_json_tag_on_a_value_it_cannot_read_is_refused() -> None:
    assert "!!int" in _error(b"a: !!int twelve\n").message


@pytest.mark.parametrize(
    ("text", "got"),
    [
        (b"SchemaVersion: 2\n1: one\n", "int"),
        (b"true: x\n", "bool"),
        (b"on: push\n", "bool"),
        (b"~: x\n", "null"),
        (b"1.5: x\n", "float"),
        (b"? [a, b]\n: x\n", "sequence"),
        (b"? {a: 1}\n: x\n", "mapping"),
    ],
)
def test_mapping_keys_must_be_strings(text: bytes, got: str) -> None:
    error = _error(text)
    assert "mapping keys must be strings" in error.message and got in error.message
    assert "line" in error.message


def test_quoted_keys_are_strings() -> None:
    assert load_yaml_documents(b"'1': one\n\"true\": x\n", "r") == [{"1": "one", "true": "x"}]


@pytest.mark.parametrize(
    "text",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b"{a: " * 100_000 + b"1" + b"}" * 100_000,
        b"".join(b"  " * i + b"-\n" for i in range(3000)),
        b"".join(b" " * i + b"a:\n" for i in range(3000)),
    ],
    ids=["flow sequences", "flow mappings", "block sequences", "block mappings"],
)
def test_nesting_deeper_than_the_bound_is_refused(text: bytes) -> None:
    error = _error(text)
    assert f"nested deeper than {MAX_DEPTH} levels" in error.message and "line" in error.message


def test_nesting_up_to_the_bound_is_read() -> None:
    [doc] = load_yaml_documents(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, "r")
    for _ in range(MAX_DEPTH - 1):
        doc = doc[0]
    assert doc == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"a: .inf\n", "not a JSON number"),
        (b"a: -.inf\n", "not a JSON number"),
        (b"a: .nan\n", "not a JSON number"),
        (b"a: 1.0e+999\n", "not a JSON number"),
        (b"a: 18446744073709551616\n", "64-bit"),
        (b"a: -9223372036854775809\n", "64-bit"),
        (b"a: " + b"9" * 5000 + b"\n", "64-bit"),
        (b"<<: {a: 1}\n", "merge keys"),
        (b'a: "\\ud800"\n', "Unicode"),
    ],
)
def test_values_json_cannot_carry_are_refused(text: bytes, problem: str) -> None:
    assert problem in _error(text).message


def test_invalid_yaml_is_an_error_on_one_line() -> None:
    error = _error(b"a: [b\n")
    assert error.message.startswith("not valid YAML") and "\n" not in error.message


def test_invalid_utf8_is_an_error() -> None:
    assert "not valid YAML" in _error(b"a: \xff\n").message


def test_whatever_it_reads_orjson_can_write() -> None:
    """Mutations of documents with every construct above: each either reads as JSON values that
    orjson serialises, or is refused with an EvidenceError; nothing else escapes."""
    corpus = [
        BILLION_LAUGHS,
        b"a: !!binary aGVsbG8=\nb: [1, {c: 2}]\n'k': \"v\\u0041\"\n",
        b"SchemaVersion: 2\nResults:\n  - Target: x\n    Vulnerabilities: [{VulnerabilityID: CVE-1}]\n",
        b"? [a]\n: b\n<<: {c: 1}\nd: &x 1\ne: *x\nf: 2024-05-01\n",
        b"- [[[[{a: .inf, b: 0x1F, c: 0o17, d: 1_000, e: 190:20:30, f: yes}]]]]\n",
    ]
    alphabet = b"[]{}:,-&*!?|>'\"\n #%@`.~0123456789abcdefxyz\\u"
    rng = random.Random(23)
    for _ in range(3000):
        data = bytearray(rng.choice(corpus))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data) + 1)
            if rng.random() < 0.5 and data:
                del data[at : at + rng.randint(1, 4)]
            else:
                data[at:at] = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
        try:
            docs = load_yaml_documents(bytes(data), "fuzz.yaml")
        except EvidenceError:
            continue
        orjson.dumps(docs)
