"""``alert`` to the Kafka alerts topic. The producer is injected (the pipeline owns the aiokafka
producer): anything with aiokafka's ``send_and_wait(topic, value=, key=)`` fits, through
:class:`ProducerPublisher`, or any :class:`AlertPublisher`."""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field

from tribunal.actions.base import (
    ActionError,
    ActionRequest,
    ActionSkipped,
    ActionTarget,
    TargetDeps,
    TargetSpec,
)
from tribunal.actions.webhook import build_payload


class AlertPublisher(Protocol):
    """Publishes one message; raises an exception with ``retriable = True`` for transient failures
    (aiokafka's errors carry that attribute)."""

    async def publish(self, topic: str, value: bytes, key: bytes | None) -> None: ...


class KafkaProducerLike(Protocol):
    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> Any: ...


class ProducerPublisher:
    """An :class:`AlertPublisher` over a started aiokafka ``AIOKafkaProducer`` (owned by the caller)."""

    def __init__(self, producer: KafkaProducerLike) -> None:
        self.producer = producer

    async def publish(self, topic: str, value: bytes, key: bytes | None) -> None:
        await self.producer.send_and_wait(topic, value=value, key=key)


class KafkaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str | None = Field(None, description="Default TRIBUNAL_ACTIONS__ALERTS_TOPIC (tribunal-alerts).")


class KafkaAlert:
    def __init__(self, deps: TargetDeps) -> None:
        self.settings = deps.settings
        self.publisher = deps.publisher

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, KafkaParams)
        return {
            "would": f"produce to {params.topic or self.settings.alerts_topic}",
            "key": request.verdict.subject.key(),
        }

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, KafkaParams)
        if self.publisher is None:
            raise ActionSkipped("no Kafka producer is configured")
        topic = params.topic or self.settings.alerts_topic
        key = request.verdict.subject.key()  # one partition per subject: its alerts stay in order
        try:
            await self.publisher.publish(
                topic, orjson.dumps(build_payload(request, "json", self.settings)), key.encode()
            )
        except Exception as exc:  # a producer's own error classes; aiokafka marks transient ones
            raise ActionError(
                f"kafka {topic}: {type(exc).__name__}: {exc}",
                retriable=bool(getattr(exc, "retriable", False)),
            ) from None
        return {"topic": topic, "key": key}


def _build(deps: TargetDeps) -> ActionTarget:
    return KafkaAlert(deps)


SPEC = TargetSpec("alert", "kafka", KafkaParams, _build)
