"""Prometheus metrics of the evidence pipeline, registered on a registry the caller owns (the server
exposes it on ``/metrics``; tests read values from it)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ENGINE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5)


class PipelineMetrics:
    """Counts per source (``kafka``, ``http``) and evidence kind (``unknown`` before it is known)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.processed = Counter(
            "tribunal_evidence_processed",
            "Evidence judged, recorded and published.",
            ["source", "kind"],
            registry=registry,
        )
        self.failed = Counter(
            "tribunal_evidence_failed",
            "Documents that could not be judged (reason: evidence, policy, internal).",
            ["source", "kind", "reason"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "tribunal_evidence_dead_lettered",
            "Documents sent to the dead-letter topic.",
            ["source", "kind"],
            registry=registry,
        )
        self.duplicates = Counter(
            "tribunal_evidence_duplicates",
            "Evidence already judged (same evidence id): not published or acted on again.",
            ["source", "kind"],
            registry=registry,
        )
        self.latency = Histogram(
            "tribunal_evidence_latency_seconds",
            "From fetch (or request) to verdict recorded and published, per document.",
            ["source", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.engine_latency = Histogram(
            "tribunal_policy_evaluation_seconds",
            "Policy engine time of one verdict.",
            ["kind"],
            buckets=ENGINE_BUCKETS,
            registry=registry,
        )
        self.lag = Gauge(
            "tribunal_kafka_consumer_lag",
            "Messages of an assigned partition not yet processed (high watermark - next offset to commit).",
            ["topic", "partition"],
            registry=registry,
        )
        self.delivery_errors = Counter(
            "tribunal_kafka_delivery_errors",
            "Failed attempts to publish, record or commit (retried; stage: publish, record, commit, hook).",
            ["stage"],
            registry=registry,
        )
