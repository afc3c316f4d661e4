"""Fixtures that start real components on free loopback ports and always stop them."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import POLICY_DIR, RULES_DIR
from tribunal.app import build_server
from tribunal.server import Server, generate_self_signed
from tribunal.settings import Settings
from tribunal.store import Record


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
async def start_server(tls_pair: tuple[Path, Path]) -> AsyncIterator[StartServer]:
    """``await start_server(**settings)``: a real Tribunal server on a free port, TLS on by default."""
    started: list[Server] = []

    async def start(tls: bool = True, **overrides: Any) -> tuple[Server, MemoryRecorder]:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "policy_dir": POLICY_DIR,
            "rules_dir": RULES_DIR,
            "policy_reload_interval": 0.2,
            **overrides,
        }
        if tls:
            values.setdefault("tls_cert_file", tls_pair[0])
            values.setdefault("tls_key_file", tls_pair[1])
        recorder = MemoryRecorder()
        server = build_server(Settings.model_validate(values), recorder=recorder)
        await server.start()
        started.append(server)
        return server, recorder

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def http(client_ssl: ssl.SSLContext) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as session:
        yield session
