"""Composition root: builds Tribunal's parts from Settings. The only module that wires layers together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Info, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from tribunal import collector
from tribunal.actions import (
    ActionError,
    DedupeWindows,
    DestructiveBudget,
    ImageBlocklist,
    KubeConnector,
    SharedBlocklist,
    build_dispatcher,
    policy_reloader,
)
from tribunal.actions.outbox import OutboxSweep
from tribunal.actions.responder import Responder
from tribunal.model import EvidenceKind
from tribunal.model.redact import Redaction, redact
from tribunal.policy import (
    EngineOptions,
    JudgePool,
    PolicyError,
    PolicyRuntime,
    load_policy_set,
)
from tribunal.reports.api import read_api_routes
from tribunal.reports.cluster_reports import policy_reports
from tribunal.server import (
    Authenticator,
    CertificateReloader,
    ClientCertificates,
    Component,
    KubernetesTokenReviewer,
    ReadinessCheck,
    Server,
    register_process_metrics,
    stop_in_reverse,
)
from tribunal.server.openapi import openapi_routes
from tribunal.settings import Settings
from tribunal.sources.ingest import HttpIngest, IngestConfig
from tribunal.sources.k8s_watch import TrivyOperatorWatch, WatchConfig
from tribunal.sources.kafka import LARGE_DOCUMENT, KafkaConfig, KafkaSource, VerdictHook
from tribunal.sources.metrics import PipelineMetrics, PolicyResultMetrics
from tribunal.sources.webhook import AdmissionWebhook, WebhookConfig
from tribunal.store import (
    ActionOutbox,
    BackgroundRecorder,
    Record,
    Recorder,
    SqlBlockedImages,
    SqlDedupeWindows,
    SqlDestructiveBudget,
    SqlStore,
    UnsettledActions,
    record_claiming,
)

log = logging.getLogger("tribunal")


def build_policy_runtime(settings: Settings, extra_data: Iterable[Path] = ()) -> PolicyRuntime:
    """The policies of ``settings.policy_dir`` compiled on ``settings.engine``, with the enforcement
    overrides of ``settings.rules_dir``."""
    options = EngineOptions(
        opa_url=settings.opa_url,
        opa_token=settings.opa_token,
        opa_timeout_seconds=settings.opa_timeout_seconds,
    )
    return PolicyRuntime(
        settings.policy_dir,
        engine=settings.engine,
        rules_dir=settings.rules_dir,
        extra_data=extra_data,
        engine_options=options,
        allow_network=settings.policy_allow_network,
    )


def build_store(settings: Settings, *, wait_for_database: bool = False) -> SqlStore:
    """The SQL store of ``settings.database_url`` with its retention; ``start()`` it before use.
    ``wait_for_database``: a database that does not answer at start is retried in the background
    (the servers), instead of failing the start (one-off commands)."""
    retention = timedelta(days=settings.retention_days) if settings.retention_days else None
    return SqlStore(
        settings.database_url,
        retention=retention,
        compress_level=settings.database_compress_level,
        thread_nice=settings.database_thread_nice,
        redaction=settings.evidence_redaction,
        wait_for_database=wait_for_database,
    )


def shared_action_state(
    settings: Settings, store: SqlStore | None
) -> tuple[DedupeWindows | None, DestructiveBudget | None, SharedBlocklist | None]:
    """The dedupe windows, blast-radius budget and blocked images that the replicas on ``store``'s
    database share (``actions.shared_state``: by default on PostgreSQL only); Nones: each process
    keeps its own (SQLite, a single replica)."""
    mode = settings.actions.shared_state
    if mode == "auto":
        mode = "database" if settings.database_url.startswith("postgresql") else "local"
    if store is None or mode == "local":
        return None, None, None
    return (
        SqlDedupeWindows(store),
        SqlDestructiveBudget(store, settings.actions.destructive_per_minute),
        SqlBlockedImages(store),
    )


def build_blocklist(settings: Settings, shared: SharedBlocklist | None) -> ImageBlocklist:
    """block-image's state: ``images.json`` in ``actions.state_dir``, following ``shared`` if any."""
    return ImageBlocklist(
        settings.actions.state_dir,
        shared=shared,
        poll_seconds=settings.actions.state_poll_seconds,
        timeout=settings.actions.shared_state_timeout_seconds,
    )


def policy_kinds(settings: Settings) -> dict[str, EvidenceKind] | None:
    """Policy id -> the evidence kind it judges, for reports; None when the policies cannot be read."""
    try:
        policies = load_policy_set(
            settings.policy_dir, allow_network=settings.policy_allow_network
        ).policies.values()
    except (PolicyError, OSError):
        return None
    return {p.id: EvidenceKind(p.kind) for p in policies}


def webhook_config(settings: Settings) -> WebhookConfig:
    exempt = set(settings.exempt_namespaces)
    if settings.namespace:
        exempt.add(settings.namespace)
    return WebhookConfig(
        exempt_namespaces=frozenset(exempt),
        exempt_users=frozenset(settings.exempt_users),
        exempt_groups=frozenset(settings.exempt_groups),
        failure_policy=settings.failure_policy,
        deadline_seconds=settings.webhook_deadline_seconds,
        large_review_bytes=settings.webhook_large_review_bytes,
        dry_run=settings.dry_run,
        max_body_bytes=settings.max_request_bytes,
        body_read_timeout_seconds=settings.body_read_timeout_seconds,
    )


class _LatePublisher:
    """The Kafka alert publisher for the dispatcher, bound once the consumer (and its producer) exists."""

    def __init__(self) -> None:
        self.source: KafkaSource | None = None

    async def publish(self, topic: str, value: bytes, key: bytes | None) -> None:
        if self.source is None:
            raise RuntimeError("Kafka is not configured (TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS)")
        await self.source.publish(topic, value, key)


def count_policy_results(
    registry: CollectorRegistry, runtime: PolicyRuntime
) -> Callable[[Sequence[Record]], None]:
    """The store's ``on_recorded``: ``tribunal_policy_results_total`` of the verdicts it recorded,
    against the policies ``runtime`` has loaded now."""
    cached: tuple[object, dict[str, tuple[str, str]]] = (None, {})

    def policies() -> dict[str, tuple[str, str]]:
        nonlocal cached
        judge = runtime.judge
        if cached[0] is not judge:
            resolve = judge.enforcement.resolve
            cached = (
                judge,
                {
                    p.id: (p.kind, resolve(p.id, p.enforcement).value)
                    for p in judge.policy_set.policies.values()
                },
            )
        return cached[1]

    metrics = PolicyResultMetrics(registry, policies)
    return lambda records: metrics.observe(r.verdict for r in records)


class RecorderMetrics(Collector):
    """The background recorder's queue and counts, read when scraped: how far the store lags."""

    def __init__(self, recorder: BackgroundRecorder) -> None:
        self._recorder = recorder

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        recorder = self._recorder
        yield GaugeMetricFamily(
            "tribunal_recorder_queue", "Verdicts waiting to be written to the store.", value=recorder.queued
        )
        yield CounterMetricFamily(
            "tribunal_recorder_written", "Verdicts written to the store.", value=recorder.recorded
        )
        yield CounterMetricFamily(
            "tribunal_recorder_failed",
            "Verdicts given up after their write failed on every retry (each failure is logged).",
            value=recorder.failed,
        )
        yield CounterMetricFamily(
            "tribunal_recorder_retries",
            "Batch writes that failed and were tried again (the store down or restarting).",
            value=recorder.retries,
        )
        yield CounterMetricFamily(
            "tribunal_recorder_dropped",
            "Verdicts never written: the queue was full, or the store did not take them before a stop.",
            value=recorder.dropped,
        )


def build_server(
    settings: Settings, registry: CollectorRegistry | None = None, recorder: Recorder | None = None
) -> Server:
    """The server of ``tribunal serve``, everything on one port: the admission webhook, HTTP ingest,
    the read API, health, readiness and metrics; with ``kafka_bootstrap_servers``, the consumers too.
    Verdicts are recorded in the store of ``settings.database_url`` (or ``recorder``, for tests), then
    acted on by the response rules."""
    tls = None  # checked first: a server that could not serve must not start anything
    if settings.tls_client_ca_file and not (settings.tls_cert_file and settings.tls_key_file):
        raise ValueError(
            "TRIBUNAL_TLS_CLIENT_CA_FILE needs TLS: set TRIBUNAL_TLS_CERT_FILE and TRIBUNAL_TLS_KEY_FILE"
        )
    if settings.tls_cert_file and settings.tls_key_file:
        tls = CertificateReloader(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
    elif settings.tls_cert_file or settings.tls_key_file:
        raise ValueError("set both TRIBUNAL_TLS_CERT_FILE and TRIBUNAL_TLS_KEY_FILE, or neither")
    elif not settings.plain_http:
        raise ValueError(
            "no TLS certificate: set TRIBUNAL_TLS_CERT_FILE and TRIBUNAL_TLS_KEY_FILE (`tribunal dev` makes "
            "a self-signed pair); TRIBUNAL_PLAIN_HTTP=true serves plain HTTP, for a TLS-terminating proxy"
        )
    registry = registry or CollectorRegistry()
    # A database that does not answer at start is waited for: the server listens meanwhile, /readyz
    # says why it is not ready, and what needs the store starts once it connects.
    store = build_store(settings, wait_for_database=True)
    dedupe, budget, shared_images = shared_action_state(settings, store)
    # The block-image state file must exist before the policies load: it is their data.
    blocklist = build_blocklist(settings, shared_images)
    runtime = build_policy_runtime(settings, extra_data=[blocklist.path])
    blocklist.on_change = policy_reloader(runtime)
    register_process_metrics(registry)
    store.on_recorded = count_policy_results(registry, runtime)
    publisher = _LatePublisher()
    dispatcher = build_dispatcher(
        settings, registry, blocklist=blocklist, publisher=publisher, dedupe=dedupe, budget=budget
    )
    sink: Recorder = recorder or store
    # The store records unless a recorder is given (tests); the read API always reads the store.
    components: list[Component] = [store]
    outbox = sink if isinstance(sink, ActionOutbox) else None
    responder = Responder(
        dispatcher,
        store.record_actions if recorder is None else _ignore_actions,
        outbox=outbox,
        registry=registry,
    )
    # With the outbox, admission verdicts are recorded first and acted on once in it (a crash after
    # the write is acted on by the outbox sweep); those the store never takes are acted on all the same.
    background_recorder = BackgroundRecorder(
        sink,
        max_queue=settings.recorder_max_queue,
        act=responder.spawn if outbox is not None else None,
        act_unrecorded=responder.spawn_unrecorded if outbox is not None else None,
        owns_recorder=sink is not store,
    )
    registry.register(RecorderMetrics(background_recorder))
    # The server's event loop (TLS, HTTP, recording, the consumers) keeps a core of its own: on 2 cores
    # one worker judging with a batch always queued answered more reviews/s than two (benchmarks.md).
    pool = build_judge_pool(settings, runtime, spare_cores=1)
    # Admission has its own capacity: ingest, Kafka and the Trivy Operator watch (and oversized
    # reviews) are judged by workers of their own, at a lower CPU priority (docs/operations.md).
    bulk_pool = build_bulk_pool(settings, runtime, pool)

    async def deliver(records: Sequence[Record]) -> None:
        """Record now; act on the verdicts seen for the first time, in the background. With an
        action outbox (the store), they stay in it until their actions ran: a crash in between is
        acted on by the outbox sweep."""
        if outbox is None:
            responder.spawn(await record_claiming(sink, records))
            return
        to_act = set(await outbox.record_to_act(records))
        responder.spawn([r for r in records if r.evidence_id in to_act])

    # The webhook judges on the event loop ("inline", in-process pool) or in the judge workers ("pool").
    webhook_pool = pool if settings.webhook_judge == "pool" else JudgePool(runtime, 0)
    webhook = AdmissionWebhook(
        webhook_pool,
        background_recorder,
        webhook_config(settings),
        registry,
        revision=lambda: runtime.revision,
        # With the outbox the webhook only records; the recorder hands the verdicts on once written.
        act=dispatcher.dispatch if outbox is None else None,
        bulk=bulk_pool if bulk_pool is not pool else None,
    )
    ingest = HttpIngest(
        bulk_pool,
        deliver,
        # The ingest token is checked with every other door's credentials (build_authenticator).
        IngestConfig(
            max_body_bytes=settings.max_document_bytes,
            body_read_timeout_seconds=settings.body_read_timeout_seconds,
            max_in_flight=settings.ingest_max_in_flight,
            max_bytes_in_flight=settings.ingest_max_bytes_in_flight,
            queue_seconds=settings.ingest_queue_seconds,
        ),
        registry,
    )
    consumers: list[Component] = []
    readiness: list[ReadinessCheck] = []
    connector = KubeConnector(settings.actions, actions=False)

    async def kube_api() -> Any:
        try:
            return (await connector.client()).api
        except ActionError as exc:  # no usable cluster configuration: retried like an outage
            raise ConnectionError(str(exc)) from None

    authenticator = build_authenticator(settings, registry, kube_api)
    if settings.trivy_operator_watch:
        operator_watch = TrivyOperatorWatch(
            kube_api,
            bulk_pool,
            deliver,
            WatchConfig(plurals=tuple(settings.trivy_operator_watch)),
            registry,
        )
        consumers.append(operator_watch)
        readiness.append(ReadinessCheck("trivy-operator-watch", operator_watch.probe, fatal=False))
    if settings.kafka_bootstrap_servers:
        source = build_kafka_source(
            settings,
            bulk_pool,
            sink,
            PipelineMetrics(registry),
            responder.respond,
            hook_settles=outbox is not None,
        )
        publisher.source = source
        webhook.audit = _audit_copy(source, settings.kafka_audit_topic, settings.evidence_redaction)
        consumers.append(source)
    sweep = outbox_sweep(settings, sink, responder, registry)
    reports = policy_reports(settings, store, kube_api, registry)  # PolicyReports in the cluster
    readiness += [ReadinessCheck("policy-reports", r.probe, fatal=False) for r in reports]
    after_store = StartedWhenConnected(store, [*([sweep] if sweep is not None else []), *consumers, *reports])

    def current_policy_kinds() -> dict[str, EvidenceKind]:
        return {p.id: EvidenceKind(p.kind) for p in runtime.judge.policy_set.policies.values()}

    revision_info = Info("tribunal_policy", "The policy revision being served.", registry=registry)

    async def watch_policies() -> None:
        last = ""
        while True:
            if runtime.revision != last:
                last = runtime.revision
                revision_info.info({"revision": last, "engine": settings.engine})
            await asyncio.sleep(settings.policy_reload_interval)
            await asyncio.to_thread(runtime.reload)

    return Server(
        host=settings.host,
        port=settings.port,
        metrics_port=settings.metrics_port or None,
        registry=registry,
        routes=[
            *webhook.routes(),
            *ingest.routes(),
            *read_api_routes(store, settings.rules_dir, current_policy_kinds),
            *openapi_routes(settings.rules_dir),
        ],
        # Started in this order, stopped in reverse: the consumers finish their in-flight messages,
        # the webhook hands its verdicts to the recorder, the recorder writes what is queued (and
        # hands it to the responder), the responder finishes its actions and settles them, then the
        # dispatcher, the judge pool and the store stop. The sweep and the consumers start once the
        # store has connected.
        components=[
            _ClosedAtStop(connector.close),  # the cluster connection (auth, watch): closed last
            *components,
            pool,
            *([bulk_pool] if bulk_pool is not pool else []),
            *([webhook_pool] if webhook_pool is not pool else []),
            dispatcher,
            responder,
            background_recorder,
            webhook,
            after_store,
        ],
        background=[watch_policies],
        readiness=[
            ReadinessCheck("policies", lambda: None if runtime.revision else "no policy revision loaded"),
            ReadinessCheck("policy-reload", lambda: runtime.last_error, fatal=False),
            ReadinessCheck("response-rules", dispatcher.probe, fatal=False),
            ReadinessCheck("store", store.probe),
            ReadinessCheck("consumers", after_store.probe),
            *readiness,
        ],
        tls=tls,
        tls_reload_interval=settings.tls_reload_interval,
        client_max_size=max(settings.max_request_bytes, settings.max_document_bytes) + 1024,
        middlewares=[authenticator.middleware],
        keepalive_timeout=settings.keepalive_timeout_seconds,
    )


class StartedWhenConnected:
    """Components that need the store (the outbox sweep, the consumers): started in order once
    ``store`` has connected (at once if it has), stopped in reverse. ``probe`` (a readiness check)
    reports a start that failed after the wait; a start that fails at once raises, as it would
    without the wait."""

    def __init__(self, store: SqlStore, components: Sequence[Component]) -> None:
        self.store = store
        self.components = list(components)
        self._started: list[Component] = []
        self._task: asyncio.Task[None] | None = None
        self._error: str | None = None

    async def start(self) -> None:
        if self.store.connected:
            await self._start_all()
            return
        log.info("waiting for the database before starting %d components", len(self.components))
        self._task = asyncio.create_task(self._start_later(), name="tribunal-after-store")

    async def _start_all(self) -> None:
        for component in self.components:
            await component.start()
            self._started.append(component)

    async def _start_later(self) -> None:
        await self.store.wait_connected()
        try:
            await self._start_all()
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            log.exception("starting after the database connected failed")

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await stop_in_reverse(self._started)

    def probe(self) -> str | None:
        """What failed to start once the store connected (waiting for it is the store's check)."""
        if self._error is not None:
            return f"failed to start once the database connected: {self._error}"
        return None


class _ClosedAtStop:
    """A component that only closes something when the server stops."""

    def __init__(self, close: Callable[[], Awaitable[None]]) -> None:
        self._close = close

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._close()


def build_authenticator(
    settings: Settings, registry: CollectorRegistry, kube_api: Callable[[], Awaitable[Any]]
) -> Authenticator:
    """The guard of every door but /validate and health (server/auth.py): static tokens, and the
    cluster's TokenReview and SubjectAccessReview with ``auth.kubernetes``."""
    auth = settings.auth
    if auth.anonymous:
        log.warning("TRIBUNAL_AUTH__ANONYMOUS: ingest, the read API and /metrics are open to anyone")
    elif not (auth.kubernetes or auth.read_token or settings.ingest_token):
        log.warning(
            "no authentication configured: ingest, the read API and /metrics answer 401 "
            "(set TRIBUNAL_AUTH__KUBERNETES, TRIBUNAL_INGEST_TOKEN or TRIBUNAL_AUTH__READ_TOKEN)"
        )
    reviewer = KubernetesTokenReviewer(kube_api, auth.audiences) if auth.kubernetes else None
    return Authenticator(
        registry=registry,
        ingest_token=settings.ingest_token.get_secret_value() if settings.ingest_token else None,
        read_token=auth.read_token.get_secret_value() if auth.read_token else None,
        reviewer=reviewer,
        anonymous=auth.anonymous,
        cache_seconds=auth.cache_seconds,
        validate_clients=(
            ClientCertificates(frozenset(settings.tls_client_names)) if settings.tls_client_ca_file else None
        ),
    )


def outbox_sweep(
    settings: Settings, recorder: Recorder, responder: Responder, registry: CollectorRegistry
) -> OutboxSweep | None:
    """The sweep that acts on outbox entries whose actions never settled, when ``recorder`` keeps an
    action outbox (the SQL store); start it after the responder, stop it before. It leaves alone what
    the responder holds (acting, or settling through a store outage); a responder with the outbox
    settles what the sweep hands it."""
    if not isinstance(recorder, UnsettledActions):
        return None
    return OutboxSweep(
        recorder,
        responder.respond,
        registry,
        grace=settings.actions.outbox_grace_seconds,
        stop_grace=responder.grace,
        settle=responder.outbox is None,
        holding=responder.holds,
    )


async def _ignore_actions(evidence_id: str, outcomes: Sequence[dict[str, Any]]) -> None:
    """Where action outcomes go when a test recorder replaces the store."""
    return None


def _audit_copy(
    source: KafkaSource, topic: str, redaction: Redaction
) -> Callable[[bytes, str], Awaitable[None]]:
    """Publishes each review as received, its secrets redacted as the store's evidence is."""

    async def publish(body: bytes, uid: str) -> None:
        if len(body) > LARGE_DOCUMENT:
            body = await asyncio.to_thread(redact, EvidenceKind.ADMISSION, body, redaction)
        else:
            body = redact(EvidenceKind.ADMISSION, body, redaction)
        await source.publish(topic, body, uid.encode())

    return publish


async def serve(
    server: Server, on_ready: Callable[[], None] | None = None, shutdown_delay: float = 0.0
) -> None:
    """Run ``server`` until SIGTERM or SIGINT, then stop gracefully; ``on_ready`` runs once it listens.

    On SIGTERM (Kubernetes stopping the pod) the server first reports not ready and goes on serving
    for ``shutdown_delay`` seconds: the API server keeps sending admission reviews to a pod until
    its endpoint is gone from the Service, and a closed port then fails them (denied, with
    failurePolicy Fail). SIGINT (Ctrl-C), or a second signal during the delay, stops at once."""
    stop = asyncio.Event()
    received: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    await server.start()
    # Everything built so far (compiled policies, models, clients) lives as long as the process: keep
    # it out of the collector's full passes, which otherwise stalled the loop for tens of milliseconds
    # (measured: the webhook's p99 at 500 reviews/s went from 15-74 ms to 3.1-3.4 ms).
    collector.settle()
    if on_ready is not None:
        on_ready()
    try:
        await stop.wait()
        if shutdown_delay > 0 and received[0] is signal.SIGTERM:
            server.draining = True
            log.info("SIGTERM: not ready, serving %g s more while the endpoint is removed", shutdown_delay)
            stop.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), shutdown_delay)
        log.info("stopping: finishing in-flight requests")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.stop()


def build_judge_pool(
    settings: Settings,
    runtime: PolicyRuntime,
    *,
    spare_cores: int = 0,
    workers: int | None = None,
    niceness: int = 0,
) -> JudgePool:
    """``workers`` worker processes, by default ``settings.judge_workers`` (unset: one per core but
    ``spare_cores``; 0: in-process), ``niceness`` below the server's CPU priority."""
    if workers is None:
        workers = settings.judge_workers
    if workers is None:
        workers = JudgePool.default_workers(spare_cores)
    return JudgePool(
        runtime,
        workers,
        max_document_bytes=settings.max_document_bytes,
        cpu_limit_seconds=settings.judge_cpu_limit_seconds or None,
        niceness=niceness,
    )


def build_bulk_pool(settings: Settings, runtime: PolicyRuntime, admission: JudgePool) -> JudgePool:
    """``tribunal serve``'s judge workers for everything but admission: ``settings.bulk_judge_workers``
    (unset: one, or none when ``admission`` judges in-process: then ``admission`` itself)."""
    workers = settings.bulk_judge_workers
    if workers is None:
        workers = 1 if admission.workers else 0
    if workers == 0 and not admission.workers:
        return admission
    return build_judge_pool(settings, runtime, workers=workers, niceness=settings.bulk_judge_niceness)


def kafka_config(settings: Settings) -> KafkaConfig:
    """The consumer's settings; requires ``kafka_bootstrap_servers``."""
    if not settings.kafka_bootstrap_servers:
        raise ValueError("kafka_bootstrap_servers is not set (TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS)")
    return KafkaConfig(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics={t: EvidenceKind(k) if k else None for t, k in settings.kafka_topic_kinds().items()},
        group_id=settings.kafka_group_id,
        verdict_topic=settings.kafka_verdict_topic,
        dlq_topic=settings.kafka_dlq_topic,
        batch_size=settings.kafka_batch_size,
        max_in_flight=settings.kafka_max_in_flight,
        stop_grace=settings.kafka_stop_grace,
        commit_interval=settings.kafka_commit_interval,
        max_message_bytes=settings.max_document_bytes,
        redaction=settings.evidence_redaction,
    )


def build_kafka_source(
    settings: Settings,
    pool: JudgePool,
    recorder: Recorder,
    metrics: PipelineMetrics,
    on_recorded: VerdictHook | None = None,
    *,
    hook_settles: bool = False,
) -> KafkaSource:
    """The consumer group of ``settings``; the caller starts and stops it (after the pool and recorder
    start, before they stop). ``hook_settles``: ``on_recorded`` settles the outbox entries itself."""
    return KafkaSource(
        kafka_config(settings), pool, recorder, metrics, on_recorded=on_recorded, hook_settles=hook_settles
    )


async def run_consumers(
    settings: Settings, recorder: Recorder | None = None, *, metrics_port: int | None = None
) -> int:
    """``tribunal consume``: policies (hot-reloaded), judge pool, the store (or ``recorder``), the
    response rules and the Kafka consumers, until SIGTERM or SIGINT; then a graceful stop. 0 on a clean
    stop, 1 when the consumer failed. ``metrics_port``: serve the Prometheus metrics on it
    (``/metrics``), on ``settings.host``."""
    # A database that does not answer at start is waited for: nothing is consumed until it connects.
    store = build_store(settings, wait_for_database=True) if recorder is None else None
    dedupe, budget, shared_images = shared_action_state(settings, store)
    blocklist = build_blocklist(settings, shared_images)
    runtime = build_policy_runtime(settings, extra_data=[blocklist.path])
    blocklist.on_change = policy_reloader(runtime)
    metrics = PipelineMetrics(CollectorRegistry())
    register_process_metrics(metrics.registry)
    if store is not None:
        store.on_recorded = count_policy_results(metrics.registry, runtime)
    if metrics_port is None and settings.metrics_port:
        metrics_port = settings.metrics_port
    publisher = _LatePublisher()
    dispatcher = build_dispatcher(
        settings, metrics.registry, blocklist=blocklist, publisher=publisher, dedupe=dedupe, budget=budget
    )
    recorder = recorder or store
    assert recorder is not None
    outbox = recorder if isinstance(recorder, ActionOutbox) else None
    responder = Responder(
        dispatcher,
        store.record_actions if store is not None else _ignore_actions,
        outbox=outbox,
        registry=metrics.registry,
    )
    exporter = None
    if metrics_port is not None:
        exporter, _ = start_http_server(metrics_port, settings.host, registry=metrics.registry)
    pool = build_judge_pool(settings, runtime)
    source = build_kafka_source(
        settings, pool, recorder, metrics, responder.respond, hook_settles=outbox is not None
    )
    publisher.source = source
    sweep = outbox_sweep(settings, recorder, responder, metrics.registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watcher = asyncio.create_task(
        runtime.watch(settings.policy_reload_interval), name="tribunal-policy-watch"
    )
    code = 0
    try:
        await recorder.start()
        try:
            await dispatcher.start()
            await pool.start()
            if store is not None and not store.connected:
                log.info("waiting for the database before consuming")
                connected = asyncio.create_task(store.wait_connected(), name="tribunal-consume-store")
                stopping = asyncio.create_task(stop.wait(), name="tribunal-consume-signal")
                await asyncio.wait({connected, stopping}, return_when=asyncio.FIRST_COMPLETED)
                connected.cancel()
                stopping.cancel()
                if not store.connected:  # stopped while waiting
                    await pool.stop()
                    return 0
            if sweep is not None:
                await sweep.start()
            try:
                try:
                    await source.start()
                except KafkaError as exc:
                    log.error("cannot start the Kafka consumer: %s", exc)
                    return 1
                log.info(
                    "consuming %s as group %r (%d judge workers, policy revision %s)",
                    ", ".join(settings.kafka_topic_kinds()),
                    settings.kafka_group_id,
                    pool.workers,
                    runtime.revision,
                )
                fetching = asyncio.create_task(source.wait(), name="tribunal-consume-wait")
                stopping = asyncio.create_task(stop.wait(), name="tribunal-consume-signal")
                await asyncio.wait({fetching, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if fetching.done() and fetching.exception() is not None:
                    log.error("the consumer failed: %s", fetching.exception())
                    code = 1
                fetching.cancel()
                await source.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await fetching
            finally:
                await source.stop()
                if sweep is not None:
                    await sweep.stop()
                await pool.stop()
        finally:
            await responder.stop()
            await dispatcher.stop()
            await recorder.stop()
    finally:
        if exporter is not None:
            exporter.shutdown()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return code
