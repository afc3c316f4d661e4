"""A watch on the Trivy Operator's report resources (``aquasecurity.github.io/v1alpha1``), across the
cluster: every report listed at start, and every report added or modified after, is judged and
recorded as if it had come by HTTP ingest (``deliver``: recorded, with the action outbox, before its
actions run).

One task per resource plural, as controllers do it: list (remembering the list's resourceVersion),
then watch from there; a watch that ends (the API server's timeout) is resumed from the last
resourceVersion seen; one that is too old (410 Gone) lists again. Listing again is safe: evidence is
recorded once per id, and a report's id follows its content, so an unchanged report is not judged
into a second verdict. That content leaves out what the API server changes on a write that changes
nothing else (``metadata.resourceVersion`` and ``managedFields``: the same report applied again by
another field manager is a MODIFIED event with a new resourceVersion); ``generation``, which grows
with every change of the report itself, stays. Any other error (the API server unreachable or
restarting, RBAC, a failed write) is logged and counted, and the task lists again after a backoff
(doubling, up to ``max_backoff_seconds``), so a report missed meanwhile is caught. Deleted reports
change nothing: the verdicts stay on record.

Reports are judged in the judge workers, like every document, so a report with thousands of findings
never stalls the admissions the same server answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState

from tribunal.model import EvidenceKind
from tribunal.model.trivy import OPERATOR_API_GROUP
from tribunal.policy.pool import Judged, RawItem, Rejected
from tribunal.retrying import failure
from tribunal.sources.ingest import BatchJudge, Deliver, record_of
from tribunal.store import Record

log = logging.getLogger(__name__)

GROUP, VERSION = OPERATOR_API_GROUP, "v1alpha1"

BOOKKEEPING = ("resourceVersion", "managedFields")
"""Metadata the API server rewrites on writes that leave the report as it was: not evidence."""

ApiClientFactory = Callable[[], Awaitable[Any]]
"""Returns the kubernetes-asyncio ``ApiClient`` to use (connected on first use, shared)."""


class WatchConfig(BaseModel):
    """``plurals``: the report resources to watch (of ``OPERATOR_REPORT_PLURALS``)."""

    model_config = ConfigDict(extra="forbid")

    plurals: tuple[str, ...]
    timeout_seconds: int = Field(300, gt=0, description="How long one watch request lasts, server-side.")
    max_backoff_seconds: float = Field(30.0, gt=0)
    batch_size: int = Field(50, gt=0, description="Reports of a listing judged and recorded together.")


class TrivyOperatorWatch:
    """Lists and watches ``config.plurals``; ``start`` and ``stop`` the tasks (``on_stop`` then, to close
    the API client). ``probe`` says what the last failure was, until a listing succeeds again (a
    readiness check, not fatal)."""

    def __init__(
        self,
        api: ApiClientFactory,
        pool: BatchJudge,
        deliver: Deliver,
        config: WatchConfig,
        registry: CollectorRegistry,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.api = api
        self.pool = pool
        self.deliver = deliver
        self.config = config
        self.on_stop = on_stop
        self._tasks: list[asyncio.Task[None]] = []
        self._problems: dict[str, str] = {}
        self.events = Counter(
            "tribunal_watch_events",
            "Trivy Operator reports seen by the watch, by resource and event (LISTED, ADDED, MODIFIED, "
            "DELETED).",
            ["resource", "event"],
            registry=registry,
        )
        self.errors = Counter(
            "tribunal_watch_errors",
            "Failures of the Trivy Operator watch (each logged), by resource and cause.",
            ["resource", "cause"],
            registry=registry,
        )
        self.rejected = Counter(
            "tribunal_watch_rejected",
            "Trivy Operator reports that could not be judged (each logged), by resource and reason.",
            ["resource", "reason"],
            registry=registry,
        )

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(plural), name=f"tribunal-watch-{plural}")
            for plural in self.config.plurals
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.on_stop is not None:
            await self.on_stop()

    def probe(self) -> str | None:
        return "; ".join(f"{p}: {m}" for p, m in sorted(self._problems.items())) or None

    async def _run(self, plural: str) -> None:
        """List, then watch from there, for ever; after a failure, list again after a backoff that
        doubles from 1 s up to ``max_backoff_seconds``, from 1 s again once a listing succeeds."""
        listed = 0  # the attempt whose listing succeeded last (0: none yet)

        def backoff(state: RetryCallState) -> float:
            doublings = state.attempt_number - max(listed, 1)  # failures since, less one
            return 1.0 if doublings == 0 else min(2.0**doublings, self.config.max_backoff_seconds)

        def failed(state: RetryCallState) -> None:
            exc = failure(state)
            if isinstance(exc, ApiException):
                self._failed(plural, f"kubernetes API {exc.status}: {exc.reason}", "api")
            elif isinstance(exc, TimeoutError | aiohttp.ClientError | OSError):
                self._failed(plural, f"{type(exc).__name__}: {exc}", "connection")
            else:  # a failed write, a bug: logged with its traceback, and retried
                log.error("watch on %s failed", plural, exc_info=exc)
                self._failed(plural, f"{type(exc).__name__}: {exc}", "other")

        def on_listed(number: int) -> None:
            nonlocal listed
            listed = number

        retrying = AsyncRetrying(wait=backoff, before_sleep=failed, reraise=True)
        async for attempt in retrying:
            with attempt:
                # After a failure, list again: a report may have been missed.
                await self._list_and_watch(plural, partial(on_listed, attempt.retry_state.attempt_number))

    async def _list_and_watch(self, plural: str, listed: Callable[[], None]) -> None:
        """List, then watch from the listing's resourceVersion, resumed each time the watch ends,
        listed again when it is too old; returns never, raises on any other failure."""
        version: str | None = None
        while True:
            try:
                api = client.CustomObjectsApi(await self.api())
                if version is None:
                    version = await self._list(api, plural)
                    self._problems.pop(plural, None)
                    listed()
                started = asyncio.get_running_loop().time()
                version = await self._watch(api, plural, version)
                if asyncio.get_running_loop().time() - started < 1.0:
                    await asyncio.sleep(1.0)  # a watch the server ends at once is not resumed in a spin
            except ApiException as exc:
                if exc.status != 410:
                    raise
                log.info("watch on %s expired (410); listing again", plural)  # too old to resume
                version = None

    def _failed(self, plural: str, problem: str, cause: str) -> None:
        self._problems[plural] = problem
        self.errors.labels(plural, cause).inc()
        log.error("watch on %s.%s: %s; listing again after a backoff", plural, GROUP, problem)

    async def _list(self, api: Any, plural: str) -> str:
        """Judge every report listed; returns the listing's resourceVersion."""
        listing = await api.list_cluster_custom_object(
            GROUP, VERSION, plural, _request_timeout=self.config.timeout_seconds
        )
        items = listing.get("items") or []
        version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
        kind = str(listing.get("kind") or "").removesuffix("List")
        for i in range(0, len(items), self.config.batch_size):
            chunk = items[i : i + self.config.batch_size]
            for item in chunk:  # list items may leave out their type
                item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
                if kind:
                    item.setdefault("kind", kind)
            await self._judge(plural, "LISTED", chunk, version)
        log.info("watch on %s: %d reports listed at resourceVersion %s", plural, len(items), version)
        return version

    async def _watch(self, api: Any, plural: str, version: str) -> str:
        """Judge what changes after ``version`` until the API server ends the watch; returns the last
        resourceVersion seen. Raises ApiException(410) when ``version`` is too old."""
        stream = watch.Watch()
        try:
            async for event in stream.stream(
                api.list_cluster_custom_object,
                GROUP,
                VERSION,
                plural,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=self.config.timeout_seconds,
                _request_timeout=self.config.timeout_seconds + 30,
            ):
                kind, obj = event["type"], event["raw_object"]
                version = stream.resource_version or version
                if kind in ("ADDED", "MODIFIED"):
                    await self._judge(plural, kind, [obj], version)
                elif kind == "DELETED":
                    self.events.labels(plural, kind).inc()
        finally:
            await stream.close()
        return version

    async def _judge(self, plural: str, event: str, objects: list[dict[str, Any]], version: str) -> None:
        raws: list[bytes] = []
        items: list[RawItem] = []
        for obj in objects:
            meta = obj.get("metadata") or {}
            name = meta.get("name")
            where = f"{meta['namespace']}/{name}" if meta.get("namespace") else name
            source = f"watch {plural}.{GROUP} {where}@{meta.get('resourceVersion') or version}"
            raws.append(orjson.dumps(_without_bookkeeping(obj)))
            items.append((raws[-1], source, EvidenceKind.TRIVY))
        self.events.labels(plural, event).inc(len(items))
        records: list[Record] = []
        outcomes = await self.pool.judge_raw(items)
        for raw, (_, source, _), outcome in zip(raws, items, outcomes, strict=True):
            if isinstance(outcome, Rejected):
                self.rejected.labels(plural, outcome.reason).inc()
                log.error("%s: not judged (%s): %s", source, outcome.reason, outcome.error)
                continue
            assert isinstance(outcome, Judged)
            records.append(await record_of(outcome, raw))
        if records:
            await self.deliver(records)


def _without_bookkeeping(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without ``BOOKKEEPING`` in its metadata: its id then follows the report, not its writes."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not any(key in meta for key in BOOKKEEPING):
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k not in BOOKKEEPING}}
