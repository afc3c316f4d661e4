"""`tribunal serve` as its own process, stopped as Kubernetes stops it: on SIGTERM it reports not
ready but goes on answering reviews for the shutdown delay (the API server sends them until the
endpoint is gone), then stops and exits 0; SIGINT stops it at once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import POLICY_DIR, PROJECT, RULES_DIR, pod, review
from tests.integration.conftest import free_port

PRIVILEGED = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}


@contextlib.asynccontextmanager
async def _serving(
    tmp_path: Path, tls_pair: tuple[Path, Path], delay: float
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, Path]]:
    """A ``tribunal serve`` process (process, base URL, log file), killed at the end if still running."""
    port = free_port()
    env = {
        **os.environ,
        "TRIBUNAL_HOST": "127.0.0.1",
        "TRIBUNAL_PORT": str(port),
        "TRIBUNAL_TLS_CERT_FILE": str(tls_pair[0]),
        "TRIBUNAL_TLS_KEY_FILE": str(tls_pair[1]),
        "TRIBUNAL_POLICY_DIR": str(POLICY_DIR),
        "TRIBUNAL_RULES_DIR": str(RULES_DIR),
        "TRIBUNAL_JUDGE_WORKERS": "1",
        "TRIBUNAL_SHUTDOWN_DELAY_SECONDS": str(delay),
        "TRIBUNAL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'tribunal.db'}",
        "TRIBUNAL_ACTIONS__STATE_DIR": str(tmp_path / "state"),
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tribunal.cli",
            "serve",
            env=env,
            cwd=PROJECT,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        yield process, f"https://127.0.0.1:{port}", log_path
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _ready(http: aiohttp.ClientSession, url: str) -> int | None:
    """/readyz's status, or None when nothing answers."""
    try:
        async with http.get(f"{url}/readyz") as resp:
            return resp.status
    except aiohttp.ClientConnectionError:
        return None


async def _wait_ready(
    http: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process, log: Path
) -> None:
    for _ in range(600):
        if await _ready(http, url) == 200:
            return
        assert process.returncode is None, log.read_text()
        await asyncio.sleep(0.05)
    pytest.fail(f"tribunal serve never became ready:\n{log.read_text()}")


async def test_sigterm_leaves_the_endpoint_before_the_port_closes(
    tmp_path: Path, tls_pair: tuple[Path, Path], client_ssl: ssl.SSLContext
) -> None:
    async with (
        _serving(tmp_path, tls_pair, delay=3) as (process, url, log),
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl, force_close=True)) as http,
    ):
        await _wait_ready(http, url, process, log)
        process.send_signal(signal.SIGTERM)
        for _ in range(200):
            if await _ready(http, url) == 503:
                break
            await asyncio.sleep(0.01)
        async with http.get(f"{url}/readyz") as resp:
            body = await resp.json()
        assert resp.status == 503 and body["checks"]["shutdown"].startswith("stopping"), body
        # Not ready, yet still answering: a review sent now is judged as usual.
        async with http.post(f"{url}/validate", json=review(pod(PRIVILEGED), uid="late")) as resp:
            assert resp.status == 200
            answer = (await resp.json())["response"]
        assert answer["uid"] == "late" and answer["allowed"] is False
        assert process.returncode is None
        await asyncio.wait_for(process.wait(), 60)
        assert await _ready(http, url) is None  # the port is closed now
    text = log.read_text()
    assert process.returncode == 0, text
    assert "SIGTERM: not ready, serving 3 s more" in text and "stopping: finishing in-flight requests" in text


async def test_sigint_stops_at_once(
    tmp_path: Path, tls_pair: tuple[Path, Path], client_ssl: ssl.SSLContext
) -> None:
    async with _serving(tmp_path, tls_pair, delay=120) as (process, url, log):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as http:
            await _wait_ready(http, url, process, log)
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)  # far less than the 120 s delay SIGTERM would take
    text = log.read_text()
    assert process.returncode == 0, text
    assert "SIGTERM" not in text and "stopping: finishing in-flight requests" in text


async def test_serve_without_a_certificate_refuses_to_start_unless_plain_http_is_asked_for(
    tmp_path: Path,
) -> None:
    """TLS is on by default: `tribunal serve` with no certificate names what to set and exits 1 without
    listening; --plain-http serves plain HTTP (a TLS-terminating proxy in front)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUNAL_")}
    env["TRIBUNAL_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'tribunal.db'}"
    port = free_port()
    args = [sys.executable, "-m", "tribunal.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--policies", str(POLICY_DIR), "--rules", str(RULES_DIR)]  # fmt: skip
    refused = await asyncio.create_subprocess_exec(
        *args, cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        _, stderr = await refused.communicate()
    assert refused.returncode == 1
    assert "no TLS certificate" in stderr.decode() and "TRIBUNAL_PLAIN_HTTP" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    plain = await asyncio.create_subprocess_exec(
        *args,
        "--plain-http",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as session, asyncio.timeout(60):
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.1)
    finally:
        plain.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            await plain.wait()
