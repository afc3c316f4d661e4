"""A test OPA server: aiohttp on loopback, in a thread of its own (the engine's client is
synchronous), serving the REST paths Tribunal's ``opa`` engine uses, with OPA's documented request
and response shapes: the Policy API (list, put, delete), the Data API (put a document, query a path
with an input) and /health. It evaluates with regorus, so what it answers is what Rego says; its
error bodies follow OPA's (``code``, ``message``, ``errors`` with a location). Not OPA: no bundles,
no decision logs, no strict mode, no conflict checks between data and rules."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import regorus
from aiohttp import web

_PARSE_ERROR = re.compile(r"-->\s*(\S+?):(\d+):(\d+).*?error:\s*([^\n]+)", re.S)


@dataclass
class OpaTestServer:
    """``start()`` binds a free port (``url``); ``stop()`` always stops it. ``token``: the bearer
    token every request must carry. ``fail_queries``: answer every query 500, as a broken OPA would.
    ``refuse``: policy ids whose upload fails as a module OPA cannot compile.
    ``requests`` counts requests by (method, first path segments)."""

    token: str | None = None
    fail_queries: bool = False
    refuse: set[str] = field(
        default_factory=set
    )  # policy ids whose PUT is refused, as OPA refuses Rego it cannot compile
    policies: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    requests: dict[tuple[str, str], int] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        self._engine: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="opa-test-server", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the test OPA server did not start")

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def restart(self) -> None:
        """Forget every policy and data document, as a restarted OPA does (it keeps them in memory)."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._forget(), self._loop).result(10)

    async def _forget(self) -> None:
        self.policies, self.data, self._engine = {}, {}, None

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        # OPA takes request bodies up to 256 MB by default (server.decoding.max_length).
        app = web.Application(middlewares=[self._auth], client_max_size=256 * 1024 * 1024)
        app.add_routes(
            [
                web.get("/health", self._health),
                web.get("/v1/policies", self._list_policies),
                web.get("/v1/policies/", self._list_policies),
                web.put("/v1/policies/{id:.+}", self._put_policy),
                web.delete("/v1/policies/{id:.+}", self._delete_policy),
                web.put("/v1/data/{path:.+}", self._put_data),
                web.post("/v1/data/{path:.+}", self._query),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._started.set()
        try:
            loop.run_forever()
        finally:
            self._engine = None  # a regorus engine is dropped by the thread that made it
            loop.close()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        segments = request.path.strip("/").split("/")
        key = (request.method, "/".join(segments[:2]))
        self.requests[key] = self.requests.get(key, 0) + 1
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "unauthorized", "the request is missing a valid bearer token")
        response: web.StreamResponse = await handler(request)
        return response

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _list_policies(self, request: web.Request) -> web.Response:
        return web.json_response({"result": [{"id": i, "raw": raw} for i, raw in self.policies.items()]})

    async def _put_policy(self, request: web.Request) -> web.Response:
        policy_id, raw = request.match_info["id"], await request.text()
        if policy_id in self.refuse:
            location = {"file": policy_id, "row": 3, "col": 1}
            return _error(
                400,
                "invalid_parameter",
                "error(s) occurred while compiling module(s)",
                [{"code": "rego_type_error", "message": "refused by the test server", "location": location}],
            )
        candidate = {**self.policies, policy_id: raw}
        try:
            engine = _compile(candidate, self.data)
        except _CompileError as exc:
            return _error(
                400,
                "invalid_parameter",
                "error(s) occurred while compiling module(s)",
                [{"code": "rego_parse_error", "message": exc.message, "location": exc.location}],
            )
        self.policies, self._engine = candidate, engine
        return web.json_response({})

    async def _delete_policy(self, request: web.Request) -> web.Response:
        policy_id = request.match_info["id"]
        if policy_id not in self.policies:
            return _error(404, "resource_not_found", f"storage_not_found_error: policy id {policy_id!r}")
        del self.policies[policy_id]
        self._engine = None
        return web.json_response({})

    async def _put_data(self, request: web.Request) -> web.Response:
        *parents, leaf = request.match_info["path"].strip("/").split("/")
        node = self.data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = orjson.loads(await request.read())
        self._engine = None
        return web.Response(status=204)

    async def _query(self, request: web.Request) -> web.Response:
        if self.fail_queries:
            return _error(500, "internal_error", "the test server was told to fail")
        body = orjson.loads(await request.read() or b"{}")
        if self._engine is None:
            self._engine = _compile(self.policies, self.data)
        self._engine.set_input_json(orjson.dumps(body.get("input")).decode())
        rule = "data." + request.match_info["path"].strip("/").replace("/", ".")
        try:
            result = orjson.loads(self._engine.eval_rule_as_json(rule))
        except RuntimeError as exc:
            if "not a valid rule path" in str(exc):
                return web.json_response({})  # undefined: OPA answers without a result
            return _error(500, "internal_error", str(exc).split("\nStack backtrace:")[0].strip())
        return web.json_response({"result": result})


class _CompileError(Exception):
    def __init__(self, message: str, location: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.location = location


def _compile(policies: dict[str, str], data: dict[str, Any]) -> Any:
    engine = regorus.Engine()
    for policy_id, raw in policies.items():
        try:
            engine.add_policy(policy_id, raw)
        except RuntimeError as exc:
            match = _PARSE_ERROR.search(str(exc))
            if match is None:
                raise _CompileError(
                    str(exc).split("\nStack backtrace:")[0].strip(), {"file": policy_id}
                ) from None
            file, row, col, message = match.groups()
            raise _CompileError(message.strip(), {"file": file, "row": int(row), "col": int(col)}) from None
    engine.add_data_json(orjson.dumps(data).decode())
    return engine


def _error(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return web.json_response(body, status=status)


@contextlib.contextmanager
def running(token: str | None = None) -> Iterator[OpaTestServer]:
    """An OpaTestServer, started, and stopped whatever happens."""
    server = OpaTestServer(token=token)
    server.start()
    try:
        yield server
    finally:
        server.stop()
