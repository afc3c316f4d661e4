"""Prometheus metrics of the evidence pipeline, registered on a registry the caller owns (the server
exposes it on ``/metrics``; tests read values from it)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tribunal.model import Verdict

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


PolicyKinds = Callable[[], Mapping[str, tuple[str, str]]]
"""The policies loaded now: policy id -> (evidence kind, enforcement outside any namespace override)."""


class PolicyResultMetrics:
    """``tribunal_policy_results_total{policy, kind, result, enforcement}``, as Kyverno's
    ``kyverno_policy_results_total``: per policy, the evidence of its kind it passed, failed (a
    violation) or skipped (every violation covered by an exception). Counted once per evidence, when
    its verdict is first recorded (redeliveries do not count again), a batch at a time: a policy of
    the evidence's kind without a violation passed it. Labels are bounded by the policy set: no
    namespaces, no subjects."""

    def __init__(self, registry: CollectorRegistry, policies: PolicyKinds) -> None:
        self.policies = policies
        self.results = Counter(
            "tribunal_policy_results",
            "Evidence judged per policy, by result (pass, fail, skip: excepted) and enforcement (deny, warn, "
            "dryrun), counted when the verdict is first recorded.",
            ["policy", "kind", "result", "enforcement"],
            registry=registry,
        )
        self._children: dict[tuple[str, str, str, str], Any] = {}

    def observe(self, verdicts: Iterable[Verdict]) -> None:
        judged: collections.Counter[str] = collections.Counter()
        results: collections.Counter[tuple[str, str, str, str]] = collections.Counter()
        objected: collections.Counter[str] = collections.Counter()  # verdicts with a violation, per policy
        for verdict in verdicts:
            kind = verdict.kind.value
            judged[kind] += 1
            if not verdict.violations:
                continue
            worst: dict[str, tuple[str, str]] = {}
            for violation in verdict.violations:
                result = "skip" if violation.exception is not None else "fail"
                if worst.get(violation.policy, ("skip",))[0] == "skip":
                    worst[violation.policy] = (result, violation.enforcement.value)
            for policy, (result, enforcement) in worst.items():
                results[(policy, kind, result, enforcement)] += 1
                objected[policy] += 1
        if not judged:
            return
        for policy, (kind, enforcement) in self.policies().items():
            passed = judged.get(kind, 0) - objected.get(policy, 0)
            if passed > 0:
                results[(policy, kind, "pass", enforcement)] += passed
        for labels, count in results.items():
            child = self._children.get(labels)
            if child is None:
                child = self._children[labels] = self.results.labels(*labels)
            child.inc(count)
