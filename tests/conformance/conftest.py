"""Conformance: the whole policy library against the public samples of ../shared/fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, POLICY_DIR, RULES_DIR
from tests.opa_server import OpaServer, running_opa
from tribunal.model import Evidence, EvidenceError
from tribunal.policy import EngineOptions, Judge, PolicySet, load_enforcement, load_policy_set
from tribunal.sources import expand_paths, read_evidence

EVIDENCE_FOLDERS = ("admission", "falco", "trivy")


def fixture_documents() -> list[Evidence | EvidenceError]:
    if not FIXTURES.is_dir():
        return []
    found: list[Evidence | EvidenceError] = []
    for folder in EVIDENCE_FOLDERS:
        for path in expand_paths([str(FIXTURES / folder)]):
            found.extend(read_evidence(path))
    return found


@pytest.fixture(scope="session")
def library() -> PolicySet:
    return load_policy_set(POLICY_DIR)


@pytest.fixture(scope="session")
def opa_server() -> Iterator[OpaServer]:
    """The real OPA server (``opa run --server``, tests/opa_server.py) the ``opa`` engine judges on."""
    with running_opa() as server:
        yield server


@pytest.fixture(scope="session")
def judges(library: PolicySet, opa_server: OpaServer) -> Iterator[dict[str, Judge]]:
    enforcement = load_enforcement(RULES_DIR)
    built = {name: Judge.build(library, name, enforcement) for name in ("regorus", "regopy")}
    built["opa"] = Judge.build(library, "opa", enforcement, EngineOptions(opa_url=opa_server.url))
    yield built
    built["opa"].engine.close()


@pytest.fixture(scope="session")
def shared_evidence() -> list[Evidence]:
    if not FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is absent")
    documents = fixture_documents()
    errors = [str(d) for d in documents if isinstance(d, EvidenceError)]
    assert errors == [], errors
    return [d for d in documents if isinstance(d, Evidence)]


def relative(source: str) -> str:
    return Path(source).name
