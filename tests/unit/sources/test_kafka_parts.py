"""The Kafka source's parts that need no broker: topic settings, the seen-set, dead-letter headers,
and the consumer settings built from TRIBUNAL_* variables."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from tribunal.app import kafka_config
from tribunal.model import EvidenceKind
from tribunal.policy import Rejected
from tribunal.settings import Settings, parse_topics
from tribunal.sources.kafka import (
    H_ERROR,
    H_FIELD,
    H_OFFSET,
    H_PARTITION,
    H_REASON,
    H_TOPIC,
    SeenIds,
    _dead_letter_headers,
)


def test_topics_map_to_kinds_or_detection() -> None:
    assert parse_topics("falco-events=falco, raw ,reports=trivy") == {
        "falco-events": "falco",
        "raw": None,
        "reports": "trivy",
    }


@pytest.mark.parametrize(
    ("value", "message"), [("a=alerts", "unknown evidence kind 'alerts'"), ("a,,b", "empty topic")]
)
def test_bad_topics_are_named(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.load(kafka_topics=value)


def test_kafka_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("TRIBUNAL_KAFKA_TOPICS", "alerts=falco,any")
    monkeypatch.setenv("TRIBUNAL_KAFKA_MAX_IN_FLIGHT", "64")
    monkeypatch.setenv("TRIBUNAL_KAFKA_STOP_GRACE", "2.5")
    config = kafka_config(Settings.load())
    assert config.bootstrap_servers == "k1:9092,k2:9092"
    assert config.topics == {"alerts": EvidenceKind.FALCO, "any": None}
    assert (config.max_in_flight, config.stop_grace, config.group_id) == (64, 2.5, "tribunal")
    assert (config.verdict_topic, config.dlq_topic) == ("tribunal-verdicts", "tribunal-dlq")


def test_kafka_config_needs_brokers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(ValueError, match="TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS"):
        kafka_config(Settings.load())


def test_seen_ids_forget_the_oldest_first() -> None:
    seen = SeenIds(2)
    for evidence_id in ("a", "b", "c"):
        seen.add(evidence_id)
    assert ("a" in seen, "b" in seen, "c" in seen, len(seen)) == (False, True, True, 2)


def test_dead_letter_headers_keep_the_original_ones_and_name_the_message() -> None:
    message = ConsumerRecord(
        topic="falco-events",
        partition=2,
        offset=41,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=b"{",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=1,
        headers=(("trace", b"1"),),
    )
    rejected = Rejected("falco-events[2]@41", "evidence", "falco-events[2]@41: priority: bad", "priority")
    headers = _dead_letter_headers(message, rejected)
    assert headers[0] == ("trace", b"1")
    assert dict(headers) == {
        "trace": b"1",
        H_ERROR: b"falco-events[2]@41: priority: bad",
        H_REASON: b"evidence",
        H_TOPIC: b"falco-events",
        H_PARTITION: b"2",
        H_OFFSET: b"41",
        H_FIELD: b"priority",
    }
