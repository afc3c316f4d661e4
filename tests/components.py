"""The real components tests start, and the rule for when one is missing.

Outside CI a test whose component is missing skips with the reason (and `make test` prints how many
skipped). Under CI (``CI=true``) it fails instead: a green CI means the whole suite ran.

Each component is started on a free loopback port in a temporary folder and always stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import pytest

from tribunal import devtools

PROJECT = Path(__file__).resolve().parents[1]
TOOLS_BIN = PROJECT / ".tools" / "bin"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(component: str, hint: str) -> NoReturn:
    """Skip (fail under CI) a test whose real component is not on this machine."""
    message = f"{component} is missing: {hint}"
    if under_ci():
        pytest.fail(f"{message} (CI=true: a missing component fails, it never skips)", pytrace=False)
    pytest.skip(message)


def tool(name: str) -> Path:
    """A server `make tools` builds into .tools/bin (kube-apiserver, etcd, opa), or a missing component."""
    path = TOOLS_BIN / name
    if not os.access(path, os.X_OK):
        missing(name, "`make tools` builds it into .tools/bin")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path, seconds: float
) -> None:
    """Poll ``ready`` until it holds; a process that exits or a deadline passed raises with its log."""
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready within {seconds:.0f} s:\n{_tail(log)}")
        time.sleep(0.05)


def listening(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


def stop(process: subprocess.Popen[bytes], seconds: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``seconds``; always reaps the process."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(log: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


# --- PostgreSQL -------------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    """The directory of Debian's PostgreSQL server programs (initdb is not on PATH there)."""
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server of its own (initdb in a temporary folder, a free loopback port, trust
    authentication for the ``postgres`` role); yields its maintenance DSN and always stops it.

    PostgreSQL refuses to run as root, so under root (as CI runs) it runs as the ``postgres`` user
    that Debian's package creates.
    """
    bindir = _postgres_bin()
    if bindir is None:
        missing("PostgreSQL", "`make test` installs Debian's postgresql (or set TRIBUNAL_TEST_POSTGRES_DSN)")
    run_as: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="tribunal-pg-"))
    data, log = root / "data", root / "postgres.log"
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = free_port()
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        log.touch()
        if owner is not None:
            os.chown(log, owner.pw_uid, owner.pw_gid)
        with open(log, "ab") as log_file:
            server = subprocess.Popen(
                [*run_as, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
                stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=devtools.die_with_parent,
            )  # fmt: skip
        try:

            def accepting() -> bool:
                probe = [
                    str(bindir / "pg_isready"),
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                ]
                return subprocess.run(probe, check=False).returncode == 0

            wait_until(accepting, server, "postgres", log, 60)
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            stop(server, 20)
    finally:
        shutil.rmtree(root, ignore_errors=True)


BLACKHOLE_ROUTE = "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"


class AlertmanagerProcess:
    """The real Alertmanager (Debian's prometheus-alertmanager), started and stopped at will on a free
    loopback port each time (clustering off, storage in ``root``): one that goes down and comes back.
    Alertmanager keeps alerts in memory only, so a test reads an instance's alerts before stopping it."""

    def __init__(self, root: Path, config: str = BLACKHOLE_ROUTE) -> None:
        binary = shutil.which("prometheus-alertmanager")
        if binary is None:
            missing("prometheus-alertmanager", "`make test` installs Debian's package")
        self.binary = binary
        self.root = root
        self.config = root / "alertmanager.yml"
        self.config.write_text(config)
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        self.port = free_port()
        log = (self.root / "alertmanager.log").open("ab")
        with log:
            self.process = await asyncio.create_subprocess_exec(
                self.binary, f"--config.file={self.config}", f"--storage.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
                stdout=log, stderr=log, preexec_fn=devtools.die_with_parent,
            )  # fmt: skip
        process = self.process
        async with aiohttp.ClientSession() as session, asyncio.timeout(20):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"alertmanager exited with {process.returncode}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/-/ready") as response:
                        if response.status == 200:
                            return self.url
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not exited 10 s later."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    async def kill(self) -> None:
        """SIGKILL (a crash: what it held in memory is gone)."""
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    async def alerts(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/api/v2/alerts") as response:
            assert response.status == 200
            alerts: list[dict[str, Any]] = await response.json()
            return alerts

    async def received_total(self) -> float:
        """Alertmanager's own count of the alerts posted to it (``alertmanager_alerts_received_total``):
        every alert of every POST, a repeat of one it holds included."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as response:
            text = await response.text()
        return sum(
            float(m) for m in re.findall(r"^alertmanager_alerts_received_total\{[^}]*\} (\S+)$", text, re.M)
        )
