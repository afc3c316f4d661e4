"""Helpers of the fault tests that run Tribunal as its own process: a receiver that counts the alerts
of the response rules, a rules folder with one response rule, a `tribunal` process that is always
stopped, and direct reads of a PostgreSQL or SQLite database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from tests.components import free_port
from tests.conftest import POLICY_DIR, PROJECT, RULES_DIR


class CountingReceiver:
    """The URL of the `alert` actions' webhook target: counts each alert by evidence id as it arrives.
    ``on_alert`` runs on every arrival (with the number received so far) before the answer. The port
    is chosen at once and listened on only from ``start``: before that, alerts are refused, as by a
    receiver that is down."""

    def __init__(self, on_alert: Callable[[int], None] | None = None) -> None:
        self.received: Counter[str] = Counter()
        self.on_alert = on_alert
        self.arrived = asyncio.Event()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received[str(body["evidence_id"])] += 1
        self.arrived.set()
        if self.on_alert is not None:
            self.on_alert(sum(self.received.values()))
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def duplicates(self) -> dict[str, int]:
        return {evidence_id: n for evidence_id, n in self.received.items() if n > 1}


def rules_with(tmp_path: Path, rule_yaml: str) -> Path:
    """The shipped rules with ``rule_yaml`` as the only response rule."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    shutil.rmtree(target / "response")
    (target / "response").mkdir()
    (target / "response" / "rule.yaml").write_text(rule_yaml)
    return target


def tribunal_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a `tribunal` process: the shipped policies, state in ``tmp_path``, no
    TRIBUNAL_* of the caller's, then ``settings`` (TRIBUNAL_<NAME>=value)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUNAL_")}
    env.update(
        TRIBUNAL_HOST="127.0.0.1",
        TRIBUNAL_POLICY_DIR=str(POLICY_DIR),
        TRIBUNAL_RULES_DIR=str(RULES_DIR),
        TRIBUNAL_JUDGE_WORKERS="1",
        TRIBUNAL_ACTIONS__STATE_DIR=str(tmp_path / "state"),
        TRIBUNAL_AUTH__ANONYMOUS="true",
    )
    env.update({f"TRIBUNAL_{name.upper()}": value for name, value in settings.items()})
    return env


@contextlib.asynccontextmanager
async def tribunal_process(
    command: str, env: Mapping[str, str], log_path: Path, *args: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``tribunal <command> <args>`` as its own process, its output in ``log_path`` (appended: a
    restart keeps the first run's lines); killed at the end if still running."""
    with log_path.open("ab") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tribunal.cli", command, *args,
            env=dict(env), cwd=PROJECT, stdout=log_file, stderr=log_file,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def pg_fetch(direct_url: str, sql: str) -> list[Any]:
    """The rows of ``sql`` on the database of ``direct_url`` (a SQLAlchemy asyncpg URL), read past
    any proxy."""
    conn = await asyncpg.connect(direct_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def fetch(database_url: str, sql: str) -> list[Any]:
    """The rows of ``sql`` on a SQLite (sqlite+aiosqlite:///FILE) or PostgreSQL database."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]

        def read() -> list[Any]:
            if not Path(path).exists():
                return []
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
                try:
                    return list(db.execute(sql))
                except sqlite3.OperationalError as exc:  # no such table: not created yet
                    if "no such table" in str(exc):
                        return []
                    raise

        return await asyncio.to_thread(read)
    try:
        return await pg_fetch(database_url, sql)
    except asyncpg.UndefinedTableError:
        return []


async def eventually(check: Callable[[], Any], what: str, seconds: float = 60.0, every: float = 0.1) -> Any:
    """Poll the coroutine function ``check`` until it returns something true, and return that; fail
    naming ``what`` after ``seconds`` (a hang guard, not a speed assertion)."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                result = await check()
                if result:
                    return result
                await asyncio.sleep(every)
    except TimeoutError:
        raise AssertionError(f"never happened (within {seconds:g} s): {what}") from None


async def http_status(session: aiohttp.ClientSession, url: str) -> tuple[int | None, Any]:
    """(status, JSON body) of GET ``url``, or (None, None) when nothing answers."""
    try:
        async with session.get(url) as resp:
            return resp.status, await resp.json(content_type=None)
    except aiohttp.ClientConnectionError:
        return None, None
