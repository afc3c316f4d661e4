"""Composition root: builds Tribunal's parts from Settings. The only module that wires layers together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable
from pathlib import Path

from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, start_http_server

from tribunal.model import EvidenceKind
from tribunal.policy import JudgePool, PolicyLoadError, PolicyRuntime
from tribunal.settings import Settings
from tribunal.sources.kafka import KafkaConfig, KafkaSource, VerdictHook
from tribunal.sources.metrics import PipelineMetrics
from tribunal.store import LogRecorder, Recorder

log = logging.getLogger(__name__)


def build_policy_runtime(settings: Settings, extra_data: Iterable[Path] = ()) -> PolicyRuntime:
    """The policies of ``settings.policy_dir`` compiled on ``settings.engine``, with the enforcement
    overrides of ``settings.rules_dir``."""
    if settings.engine == "opa":
        raise PolicyLoadError(
            "engine 'opa' is not available yet (it arrives with the OPA backend); use regorus or regopy"
        )
    return PolicyRuntime(
        settings.policy_dir, engine=settings.engine, rules_dir=settings.rules_dir, extra_data=extra_data
    )


def build_judge_pool(settings: Settings, runtime: PolicyRuntime) -> JudgePool:
    """``settings.judge_workers`` worker processes (unset: one per core; 0: in-process)."""
    workers = JudgePool.default_workers() if settings.judge_workers is None else settings.judge_workers
    return JudgePool(runtime, workers, max_document_bytes=settings.max_document_bytes)


def kafka_config(settings: Settings) -> KafkaConfig:
    """The consumer's settings; requires ``kafka_bootstrap_servers``."""
    if not settings.kafka_bootstrap_servers:
        raise ValueError("kafka_bootstrap_servers is not set (TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS)")
    return KafkaConfig(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics={t: EvidenceKind(k) if k else None for t, k in settings.kafka_topic_kinds().items()},
        group_id=settings.kafka_group_id,
        verdict_topic=settings.kafka_verdict_topic,
        alerts_topic=settings.kafka_alerts_topic,
        dlq_topic=settings.kafka_dlq_topic,
        batch_size=settings.kafka_batch_size,
        max_in_flight=settings.kafka_max_in_flight,
        stop_grace=settings.kafka_stop_grace,
        commit_interval=settings.kafka_commit_interval,
        max_message_bytes=settings.max_document_bytes,
    )


def build_kafka_source(
    settings: Settings,
    pool: JudgePool,
    recorder: Recorder,
    metrics: PipelineMetrics,
    on_recorded: VerdictHook | None = None,
) -> KafkaSource:
    """The consumer group of ``settings``; the caller starts and stops it (after the pool and recorder
    start, before they stop)."""
    return KafkaSource(kafka_config(settings), pool, recorder, metrics, on_recorded=on_recorded)


async def run_consumers(
    settings: Settings, recorder: Recorder | None = None, *, metrics_port: int | None = None
) -> int:
    """``tribunal consume``: policies (hot-reloaded), judge pool, recorder and the Kafka consumers,
    until SIGTERM or SIGINT; then a graceful stop. 0 on a clean stop, 1 when the consumer failed.
    ``metrics_port``: serve the Prometheus metrics on it (``/metrics``), on ``settings.host``."""
    runtime = build_policy_runtime(settings)
    recorder = recorder or LogRecorder()
    metrics = PipelineMetrics(CollectorRegistry())
    exporter = None
    if metrics_port is not None:
        exporter, _ = start_http_server(metrics_port, settings.host, registry=metrics.registry)
    pool = build_judge_pool(settings, runtime)
    source = build_kafka_source(settings, pool, recorder, metrics)
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
            await pool.start()
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
                await pool.stop()
        finally:
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
