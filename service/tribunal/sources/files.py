"""Evidence from files and stdin: JSON, JSON Lines, YAML (several documents), for ``tribunal judge``."""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tribunal.model import Evidence, EvidenceError, EvidenceKind, parse_evidence
from tribunal.model.yaml_evidence import load_yaml_documents

EVIDENCE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".yaml", ".yml")


@dataclass(frozen=True)
class Document:
    """One parsed document and where it came from (``file``, ``file:line`` or ``file#n``)."""

    source: str
    content: Any


def expand_paths(paths: Iterable[str], skipped: list[str] | None = None) -> list[str]:
    """Files as given; directories expanded to their evidence files, sorted. The other files of a
    directory (not ``EVIDENCE_SUFFIXES``; hidden ones aside) are appended to ``skipped`` when given."""
    expanded: list[str] = []
    for raw in paths:
        path = Path(raw)
        if raw != "-" and path.is_dir():
            # Hidden files and folders (.git, .tribunal-dev) are not looked into.
            visible = (
                p
                for p in path.rglob("*")
                if not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            for found in sorted(p for p in visible if p.is_file()):
                if found.suffix.lower() in EVIDENCE_SUFFIXES:
                    expanded.append(str(found))
                elif skipped is not None:
                    skipped.append(str(found))
        else:
            expanded.append(raw)
    return expanded


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def read_documents(path: str, max_bytes: int = 64 * 1024 * 1024) -> Iterator[Document | EvidenceError]:
    """Every document of ``path`` (``-`` is stdin), or the error that stopped reading it."""
    name = "<stdin>" if path == "-" else path
    try:
        data = _read_bytes(path, max_bytes)
    except EvidenceError as exc:
        yield exc
        return
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _json_lines(name, data)
    elif suffix in (".yaml", ".yml"):
        yield from _yaml(name, data)
    elif suffix == ".json":
        yield _json(name, data)
    else:
        yield from _sniff(name, data)


def read_evidence(
    path: str, kind: EvidenceKind | None = None, max_bytes: int = 64 * 1024 * 1024
) -> Iterator[Evidence | EvidenceError]:
    """Every piece of evidence in ``path``, or an error naming the document and field at fault."""
    for item in read_documents(path, max_bytes):
        if isinstance(item, EvidenceError):
            yield item
            continue
        try:
            yield parse_evidence(item.content, item.source, kind)
        except EvidenceError as exc:
            yield exc


def _read_bytes(path: str, max_bytes: int) -> bytes:
    name = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read(max_bytes + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise EvidenceError(name, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise EvidenceError(name, f"larger than the {max_bytes} byte limit")
    if not data.strip():
        raise EvidenceError(name, "empty: no document")
    if _is_binary(data):
        raise EvidenceError(name, "a binary file, not evidence (JSON, JSON Lines or YAML text)")
    return data


def _is_binary(data: bytes) -> bool:
    """A NUL byte, or bytes that are not UTF-8, in the first 8 KiB (as git and grep tell)."""
    head = data[:8192]
    if b"\x00" in head:
        return True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return True
    return False


def _json(source: str, data: bytes) -> Document | EvidenceError:
    try:
        return Document(source, orjson.loads(data))
    except orjson.JSONDecodeError as exc:
        return EvidenceError(source, f"not valid JSON: {exc}")


def _json_lines(source: str, data: bytes) -> Iterator[Document | EvidenceError]:
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            yield _json(f"{source}:{number}", line)


def _yaml(source: str, data: bytes) -> Iterator[Document | EvidenceError]:
    """YAML as JSON values only (no aliases, no other tags, string keys, bounded nesting)."""
    try:
        documents = load_yaml_documents(data, source)
    except EvidenceError as exc:
        yield exc
        return
    if len(documents) == 1:
        yield Document(source, documents[0])
        return
    for number, doc in enumerate(documents, start=1):
        yield Document(f"{source}#{number}", doc)


def _sniff(source: str, data: bytes) -> Iterator[Document | EvidenceError]:
    """stdin or an unknown suffix: one JSON document, else JSON Lines, else YAML."""
    whole = _json(source, data)
    if isinstance(whole, Document):
        yield whole
        return
    lines = [line for line in data.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].lstrip().startswith(b"{"):
        yield from _json_lines(source, data)
        return
    if data.lstrip().startswith((b"{", b"[")):
        yield whole
        return
    yield from _yaml(source, data)
