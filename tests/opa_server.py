"""The real OPA server (``opa run --server``, the binary `make tools` builds into .tools/bin) for the
tests of the ``opa`` engine: on a free loopback port, in a temporary folder of its own, always stopped.

``running_opa()`` yields an :class:`OpaServer`: its ``url``, what OPA holds (``policies()``,
``data(path)``), what it was asked (``received()`` from its access log, ``decisions()`` from its
console decision log), and ``stop()`` / ``restart()`` (the same port, every policy and data document
gone, as a restarted sidecar). ``token=`` starts it with ``--authentication=token
--authorization=basic`` and a ``system.authz`` policy that admits only that bearer token (and an
unauthenticated ``/health``, as OPA's documentation shows, for the readiness probe)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from tests import components
from tribunal import devtools

START_SECONDS = 30


class OpaServer:
    def __init__(self, binary: Path, root: Path, token: str | None = None) -> None:
        self.binary, self.root, self.token = binary, root, token
        self.port = components.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "opa.log"  # appended to across restarts
        self.process: subprocess.Popen[bytes] | None = None
        self._files: list[Path] = []
        if token is not None:
            authz = root / "system_authz.rego"
            authz.write_text(
                "package system.authz\n\n"
                "default allow := false\n\n"
                f"allow if input.identity == {json.dumps(token)}\n\n"
                'allow if input.path == ["health"]\n'
            )
            self._files.append(authz)

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("OPA is already running")
        command = [
            str(self.binary), "run", "--server", "--addr", f"127.0.0.1:{self.port}",
            "--skip-version-check", "--log-format=json", "--log-level=info", "--shutdown-grace-period=1",
            "--set", "decision_logs.console=true",
        ]  # fmt: skip
        if self.token is not None:
            command += ["--authentication=token", "--authorization=basic"]
        command += [str(path) for path in self._files]
        with open(self.log, "ab") as log_file:
            self.process = subprocess.Popen(
                command, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=devtools.die_with_parent
            )
        components.wait_until(self._healthy, self.process, "opa", self.log, START_SECONDS)

    def stop(self) -> None:
        """Stop the process (OPA is then unreachable on ``url``); stopping a stopped server is a no-op."""
        if self.process is not None:
            components.stop(self.process)

    def restart(self) -> None:
        """A new OPA process on the same port: it holds no policy and no data (OPA keeps them in memory)."""
        self.stop()
        self.start()

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}
        response = requests.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def policies(self) -> dict[str, str]:
        """Policy id -> Rego source of every module OPA holds (GET /v1/policies)."""
        return {policy["id"]: policy["raw"] for policy in self._call("GET", "/v1/policies")["result"]}

    def put_policy(self, policy_id: str, raw: str) -> None:
        """Load a module as another client of the same OPA would (PUT /v1/policies/<id>)."""
        self._call("PUT", f"/v1/policies/{policy_id}", data=raw.encode())

    def data(self, path: str) -> Any:
        """The document at ``data.<path>`` (``a/b``), None when undefined (GET /v1/data/<path>)."""
        return self._call("GET", f"/v1/data/{path.strip('/')}").get("result")

    def received(self) -> list[tuple[str, str]]:
        """(method, path) of every request OPA received, in order, its /health probes left out."""
        return [
            (entry["req_method"], entry["req_path"])
            for entry in self._log_entries()
            if entry.get("msg") == "Received request." and entry.get("req_path") != "/health"
        ]

    def decisions(self) -> list[dict[str, Any]]:
        """OPA's decision log entries (``path``, ``input``, ``result``, ...), in order."""
        return [entry for entry in self._log_entries() if entry.get("msg") == "Decision Log"]

    def _log_entries(self) -> Iterator[dict[str, Any]]:
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    yield entry


@contextlib.contextmanager
def running_opa(token: str | None = None) -> Iterator[OpaServer]:
    """The real OPA server, started (or the test skipped, failed under CI, without the binary) and
    stopped whatever happens."""
    binary = components.tool("opa")
    root = Path(tempfile.mkdtemp(prefix="tribunal-opa-"))
    try:
        server = OpaServer(binary, root, token)
        try:
            server.start()
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
