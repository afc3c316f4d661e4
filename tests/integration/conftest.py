"""Real databases for the store tests: SQLite in a temporary folder, and a fresh PostgreSQL database on
the machine's server (created per test, dropped after; skipped with the reason when no server answers)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import POLICY_DIR, pod, review
from tribunal.model import parse_evidence
from tribunal.policy import Judge, load_policy_set
from tribunal.store import Record

# The server's maintenance connection; override for another server.
PG_ADMIN_DSN = os.environ.get("TRIBUNAL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


async def _pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL server reachable at {PG_ADMIN_DSN}: {exc}")


async def _create_pg_database() -> str:
    name = f"tribunal_test_{uuid.uuid4().hex[:12]}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def _drop_pg_database(name: str) -> None:
    admin = await _pg_admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind; PostgreSQL's is dropped after the test, whatever happens."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'tribunal.db'}"
        return
    name = await _create_pg_database()
    try:
        yield _pg_url(name)
    finally:
        await _drop_pg_database(name)


@pytest.fixture(scope="session")
def judge() -> Judge:
    return Judge.build(load_policy_set(POLICY_DIR))


MakeRecord = Callable[..., Record]


@pytest.fixture(scope="session")
def make_record(judge: Judge) -> MakeRecord:
    return make_record_with(judge)


def make_record_with(judge: Judge) -> MakeRecord:
    """A judged AdmissionReview of one pod: privileged or not, at ``minutes`` after T0."""

    def build(
        uid: str, *, name: str = "web", namespace: str = "shop", privileged: bool = False, minutes: float = 0
    ) -> Record:
        obj = pod(
            {
                "name": "app",
                "image": "registry.k8s.io/app:1.0",
                "securityContext": {
                    "privileged": privileged,
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            },
            name=name,
        )
        obj["metadata"]["namespace"] = namespace
        ev = parse_evidence(review(obj, uid=uid, namespace=namespace), "test")
        ev = ev.model_copy(update={"received_at": T0 + timedelta(minutes=minutes)})
        return Record(ev, judge.judge(ev), raw=b'{"doc": "' + uid.encode() + b'"}')

    return build
