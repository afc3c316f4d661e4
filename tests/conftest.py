"""Shared test fixtures: project paths, the ../shared samples (skipped where absent), builders."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[1]
POLICY_DIR = PROJECT / "policies"
RULES_DIR = PROJECT / "rules"
SHARED = PROJECT.parent / "shared"
FIXTURES = SHARED / "fixtures"


def shared_fixtures(folder: str, *suffixes: str) -> list[Path]:
    """Files of ../shared/fixtures/<folder>; empty where ../shared is absent (tests then skip)."""
    base = FIXTURES / folder
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.suffix in suffixes)


def expected_decisions() -> dict[str, str]:
    """file name -> label (deny | violation | allow | -) from ../shared/fixtures/admission/EXPECTED.md."""
    text = (FIXTURES / "admission" / "EXPECTED.md").read_text()
    rows = re.findall(r"^\| (\S+\.json) \| (\S+) \| (\S+) \|", text, re.M)
    return {name: label for name, _kind, label in rows}


needs_shared = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures is absent")


@pytest.fixture
def policy_dir(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """A policy directory holding the project's judge aggregator plus the given files."""

    def build(files: dict[str, str]) -> Path:
        root = tmp_path / "policies"
        (root / "lib").mkdir(parents=True, exist_ok=True)
        shutil.copy(POLICY_DIR / "lib" / "judge.rego", root / "lib" / "judge.rego")
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return root

    return build


def review(
    obj: dict[str, Any] | None,
    *,
    uid: str = "u-1",
    namespace: str = "default",
    operation: str = "CREATE",
    api_version: str = "admission.k8s.io/v1",
) -> dict[str, Any]:
    """A small AdmissionReview around ``obj``."""
    kind = (obj or {}).get("kind", "Pod")
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": kind.lower() + "s"},
            "name": (obj or {}).get("metadata", {}).get("name", ""),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
        },
    }


def pod(*containers: dict[str, Any], name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": list(containers) or [{"name": "app", "image": "nginx:1.27"}], **spec},
    }


def falco_alert(**overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "uuid": "5b6f3c1e-1111-4a4a-9c9c-000000000001",
        "time": "2024-05-01T10:00:00.123456789Z",
        "rule": "Terminal shell in container",
        "priority": "Notice",
        "output": "A shell was spawned in a container with an attached terminal",
        "source": "syscall",
        "tags": ["container", "shell", "mitre_execution"],
        "hostname": "node-1",
        "output_fields": {
            "container.id": "abc123",
            "container.name": "web",
            "container.image.repository": "nginx",
            "container.image.tag": "1.27",
            "k8s.ns.name": "shop",
            "k8s.pod.name": "web-7d4",
            "proc.name": "bash",
        },
    }
    alert.update(overrides)
    return alert


def trivy_report(*vulnerabilities: dict[str, Any], artifact: str = "nginx:1.27") -> dict[str, Any]:
    return {
        "SchemaVersion": 2,
        "ArtifactName": artifact,
        "ArtifactType": "container_image",
        "Metadata": {"RepoDigests": [f"nginx@sha256:{'a' * 64}"]},
        "Results": [
            {
                "Target": artifact + " (debian 12)",
                "Class": "os-pkgs",
                "Type": "debian",
                "Vulnerabilities": list(vulnerabilities),
            }
        ],
    }


# 342 bytes that expand to 9**9 strings once aliases are followed (the classic "billion laughs").
BILLION_LAUGHS = b"""a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> Any:
    """Fail any test that leaves asyncio tasks running (kopf's rule)."""
    import asyncio

    before = asyncio.all_tasks()
    yield
    leaked = [t for t in asyncio.all_tasks() - before - {asyncio.current_task()} if not t.done()]
    assert leaked == [], f"tasks left running: {leaked}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The last line of every run: how many tests skipped (under CI only absent ../shared may skip)."""
    skipped = len(terminalreporter.stats.get("skipped", []))
    terminalreporter.write_line(f"tribunal: {skipped} test(s) skipped")
