"""Property test of the file reader behind ``tribunal judge``: whatever a file holds (random bytes,
JSON values, documents shaped like evidence, YAML punctuation), reading it yields Evidence or an
EvidenceError naming that file, never another exception; and one bad file never stops the next one
from being judged."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import pod, review
from tests.unit.model.json_strategies import documents, fast, json_values
from tribunal.model import Evidence, EvidenceError
from tribunal.sources import expand_paths, read_evidence

SUFFIXES = [".json", ".jsonl", ".ndjson", ".yaml", ".yml", ".txt", ""]
GOOD = orjson.dumps(review(pod(), uid="the-good-one"))


def _as_bytes(value: object, how: str) -> bytes:
    if how == "json":
        return orjson.dumps(value)
    if how == "yaml":
        return yaml.safe_dump(value).encode()
    return b"\n".join(orjson.dumps(v) for v in (value if isinstance(value, list) else [value]))


contents = st.one_of(
    st.binary(max_size=512),
    st.text(alphabet=st.sampled_from(list("{}[]:,-\"'&*!|>#\n\t ab1")), max_size=200).map(str.encode),
    st.builds(_as_bytes, json_values(), st.sampled_from(["json", "yaml", "lines"])),
    st.builds(_as_bytes, documents(), st.sampled_from(["json", "yaml", "lines"])),
)


@fast(150)
@given(files=st.lists(st.tuples(contents, st.sampled_from(SUFFIXES)), min_size=1, max_size=4))
def test_any_file_yields_evidence_or_an_error_naming_it_and_the_good_file_is_still_judged(
    tmp_path_factory: object, files: list[tuple[bytes, str]]
) -> None:
    folder = Path(tmp_path_factory.mktemp("files"))  # type: ignore[attr-defined]
    paths = []
    for number, (data, suffix) in enumerate(files):
        path = folder / f"f{number}{suffix}"
        path.write_bytes(data)
        paths.append(str(path))
    good = folder / "zz-good.json"
    good.write_bytes(GOOD)
    seen_good = False
    for path in [*paths, str(good)]:
        for item in read_evidence(path):
            assert isinstance(item, Evidence | EvidenceError), type(item)
            if isinstance(item, EvidenceError):
                assert str(item).startswith(path), str(item)
            elif path == str(good):
                seen_good = item.id == "the-good-one"
    assert seen_good
    skipped: list[str] = []
    expanded = expand_paths([str(folder)], skipped)
    assert str(good) in expanded and sorted([*expanded, *skipped]) == sorted([*paths, str(good)])
