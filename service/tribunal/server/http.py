"""One aiohttp server for the webhook, ingest and read API: explicit start and graceful stop.

Components (evaluator, recorder, consumers…) start in order before the port opens and stop in
reverse order after it closes, so in-flight requests finish and queued records are written."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from tribunal.server.tls import CertificateReloader

Middleware = Callable[..., Any]  # an aiohttp middleware (e.g. auth.Authenticator.middleware)

log = logging.getLogger(__name__)


class Component(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class ReadinessCheck:
    """``probe()`` returns None when ready, else what is wrong. ``fatal`` checks make /readyz 503;
    the others are reported but do not take the server out of rotation (it still serves the last good
    configuration)."""

    name: str
    probe: Callable[[], str | None]
    fatal: bool = True


async def stop_in_reverse(started: list[Component]) -> None:
    """Stop and remove ``started``'s components, last started first; a failing stop is logged and
    the others still stop."""
    while started:
        component = started.pop()
        try:
            await component.stop()
        except Exception:
            log.exception("stopping %s failed", type(component).__name__)


def register_process_metrics(registry: CollectorRegistry) -> None:
    """``process_*`` (CPU, memory, open files, start time), ``python_info`` and ``python_gc_*`` on
    ``registry``, as on prometheus_client's default registry; a registry that has them is left alone."""
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        with contextlib.suppress(ValueError):  # already registered: a duplicated timeseries
            collector(registry=registry)


class Server:
    """``metrics_port``: also serve ``/metrics``, and only it, on that port of ``host``, plain HTTP
    and without the middlewares (no authentication): for a scraper without TLS or tokens."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        registry: CollectorRegistry,
        routes: Iterable[web.AbstractRouteDef] = (),
        components: Iterable[Component] = (),
        background: Iterable[Callable[[], Coroutine[Any, Any, None]]] = (),
        readiness: Iterable[ReadinessCheck] = (),
        tls: CertificateReloader | None = None,
        tls_reload_interval: float = 5.0,
        client_max_size: int = 64 * 1024 * 1024,
        shutdown_timeout: float = 10.0,
        middlewares: Iterable[Middleware] = (),
        keepalive_timeout: float = 75.0,
        metrics_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.metrics_port = metrics_port
        self.registry = registry
        self.tls = tls
        self.tls_reload_interval = tls_reload_interval
        self.components = list(components)
        self.background = list(background)
        self.readiness = list(readiness)
        self.shutdown_timeout = shutdown_timeout
        self.keepalive_timeout = keepalive_timeout
        self.app = web.Application(client_max_size=client_max_size, middlewares=list(middlewares))
        self.app.add_routes(
            [
                web.get("/healthz", self.healthz),
                web.get("/readyz", self.readyz),
                web.get("/metrics", self.metrics),
                *routes,
            ]
        )
        self._runner: web.AppRunner | None = None
        self._metrics_runner: web.AppRunner | None = None
        self._started: list[Component] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = False
        # Set when the server is about to stop: /readyz answers 503 while requests are still served.
        self.draining = False

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """The base URL, with the port actually bound (``port=0`` picks a free one)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def start(self) -> None:
        try:
            for component in self.components:
                await component.start()
                self._started.append(component)
            self._tasks = [asyncio.create_task(job()) for job in self.background]
            if self.tls is None:
                log.warning(
                    "serving plain HTTP (TRIBUNAL_PLAIN_HTTP): the API server only calls webhooks "
                    "over HTTPS; set TRIBUNAL_TLS_CERT_FILE and TRIBUNAL_TLS_KEY_FILE (or run `tribunal dev`)"
                )
            else:
                self._tasks.append(asyncio.create_task(self.tls.watch(self.tls_reload_interval)))
            self._runner = web.AppRunner(
                self.app,
                access_log=None,
                shutdown_timeout=self.shutdown_timeout,
                keepalive_timeout=self.keepalive_timeout,
            )
            await self._runner.setup()
            site = web.TCPSite(
                self._runner, self.host, self.port, ssl_context=self.tls.context if self.tls else None
            )
            await site.start()
            bound = self._runner.addresses
            if bound:
                self.port = int(bound[0][1])
            if self.metrics_port is not None:
                await self._start_metrics_port(self.metrics_port)
            self._ready = True
            log.info("listening on %s", self.url)
        except BaseException:
            await self.stop()
            raise

    async def _start_metrics_port(self, port: int) -> None:
        metrics_app = web.Application()
        metrics_app.add_routes([web.get("/metrics", self.metrics)])
        self._metrics_runner = web.AppRunner(metrics_app, access_log=None, shutdown_timeout=1.0)
        await self._metrics_runner.setup()
        await web.TCPSite(self._metrics_runner, self.host, port).start()
        bound = self._metrics_runner.addresses
        if bound:
            self.metrics_port = int(bound[0][1])
        log.info("serving /metrics on plain HTTP port %d, unauthenticated", self.metrics_port)

    @property
    def metrics_url(self) -> str | None:
        """``http://host:metrics_port/metrics`` once started with a metrics port, else None."""
        if self.metrics_port is None:
            return None
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.metrics_port}/metrics"

    async def stop(self) -> None:
        """Stop taking requests, let in-flight ones finish, then stop the components in reverse."""
        self._ready = False
        if self._metrics_runner is not None:
            metrics_runner, self._metrics_runner = self._metrics_runner, None
            await metrics_runner.cleanup()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await stop_in_reverse(self._started)

    async def healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        checks: dict[str, str] = {}
        ready = self._ready and not self.draining
        if self.draining:
            checks["shutdown"] = "stopping: serving until the endpoint is removed"
        for check in self.readiness:
            try:
                problem = check.probe()
            except Exception as exc:
                problem = f"check failed: {exc}"
            checks[check.name] = problem or "ok"
            if problem and check.fatal:
                ready = False
        if self.tls is not None and self.tls.last_error:
            checks["tls"] = self.tls.last_error
        return _json({"ready": ready, "checks": checks}, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
