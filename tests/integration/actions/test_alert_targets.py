"""Webhook (JSON and Slack-compatible) over real HTTP on loopback, and the Kafka alerts topic through
the AlertPublisher protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from tests.integration.actions.conftest import verdict
from tests.unit.actions.test_falcosidekick_conventions import check_cloudevent
from tribunal.actions import build_dispatcher
from tribunal.settings import Settings


class Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], Any]] = []
        self.fail_next: list[int] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((dict(request.headers), await request.json()))
        if self.fail_next:
            return web.Response(status=self.fail_next.pop(0))
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


def write_rules(tmp_path: Path, text: str) -> Path:
    (tmp_path / "rules" / "response").mkdir(parents=True)
    (tmp_path / "rules" / "response" / "r.yaml").write_text(text)
    return tmp_path / "rules"


async def test_webhook_json_and_slack_payloads(tmp_path: Path, receiver: Receiver) -> None:
    rules = write_rules(
        tmp_path,
        "rules:\n  - name: hooks\n    dedupe: 0\n    actions:\n"
        "      - {type: alert, target: webhook, params: {headers: {X-Token: t}}}\n"
        "      - {type: alert, target: webhook, params: {format: slack}}\n",
    )
    settings = Settings.model_validate(
        {"rules_dir": rules, "actions": {"state_dir": tmp_path / "s", "webhook_url": receiver.url}}
    )
    async with build_dispatcher(settings, CollectorRegistry()) as dispatcher:
        outcomes = await dispatcher.dispatch(None, verdict())
    assert [o["status"] for o in outcomes] == ["success", "success"]
    bodies = {("blocks" in body): (headers, body) for headers, body in receiver.posts}
    headers, generic = bodies[False]
    assert headers["X-Token"] == "t"
    assert generic["rule"] == "hooks" and generic["decision"] == "deny" and generic["evidence_id"] == "ev-1"
    assert generic["violations"][0]["policy"] == "shell_in_container"
    assert generic["labels"]["pod"] == "web-7d4"
    _, slack = bodies[True]
    assert (
        slack["text"]
        == "Tribunal deny (high) on shop/-/web-7d4: shell_in_container: shell_in_container happened"
    )
    assert [b["type"] for b in slack["blocks"]] == ["header", "section", "context"]
    assert slack["blocks"][1]["text"]["text"] == "• *shell_in_container* (high): shell_in_container happened"


async def test_webhook_cloudevents_are_structured_mode_cloudevents(
    tmp_path: Path, receiver: Receiver
) -> None:
    rules = write_rules(
        tmp_path,
        "rules:\n  - name: events\n    dedupe: 0\n    actions:\n"
        "      - {type: alert, target: webhook, params: {format: cloudevents}}\n",
    )
    settings = Settings.model_validate(
        {
            "rules_dir": rules,
            "actions": {
                "state_dir": tmp_path / "s",
                "webhook_url": receiver.url,
                "external_url": "https://tribunal.example",
            },
        }
    )
    async with build_dispatcher(settings, CollectorRegistry()) as dispatcher:
        [outcome] = await dispatcher.dispatch(None, verdict())
    assert outcome["status"] == "success", outcome
    [(headers, event)] = receiver.posts
    assert headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    check_cloudevent(event)
    assert (event["type"], event["source"], event["id"]) == (
        "io.tribunal.verdict",
        "https://tribunal.example",
        "ev-1/events",
    )
    assert event["subject"] == "shop/-/web-7d4" and event["datacontenttype"] == "application/json"
    assert event["data"]["evidence_id"] == "ev-1" and event["data"]["decision"] == "deny"
    assert event["data"]["url"] == "https://tribunal.example/verdicts/ev-1"


async def test_webhook_retries_5xx_and_stops_on_400(tmp_path: Path, receiver: Receiver) -> None:
    rules = write_rules(
        tmp_path,
        f"rules:\n  - name: hook\n    dedupe: 0\n    actions: [{{type: alert, target: webhook, params: {{url: '{receiver.url}'}}}}]\n",
    )
    settings = Settings.model_validate(
        {"rules_dir": rules, "actions": {"state_dir": tmp_path / "s", "backoff_seconds": 0}}
    )
    async with build_dispatcher(settings, CollectorRegistry()) as dispatcher:
        receiver.fail_next = [503, 502]
        [ok] = await dispatcher.dispatch(None, verdict())
        receiver.fail_next = [400]
        [bad] = await dispatcher.dispatch(None, verdict())
    assert (ok["status"], ok["attempts"]) == ("success", 3)
    assert (bad["status"], bad["attempts"], bad["http_status"]) == ("failure", 1, 400)
    assert len(receiver.posts) == 4


class RetriableError(Exception):
    retriable = True


class MemoryPublisher:
    """An AlertPublisher keeping messages (the lead injects the aiokafka-backed one)."""

    def __init__(self, failures: int = 0) -> None:
        self.messages: list[tuple[str, bytes, bytes | None]] = []
        self.failures = failures

    async def publish(self, topic: str, value: bytes, key: bytes | None) -> None:
        if self.failures:
            self.failures -= 1
            raise RetriableError("leader not available")
        self.messages.append((topic, value, key))


async def test_kafka_alert_is_published_keyed_by_subject(tmp_path: Path) -> None:
    rules = write_rules(
        tmp_path, "rules:\n  - name: k\n    dedupe: 0\n    actions: [{type: alert, target: kafka}]\n"
    )
    settings = Settings.model_validate(
        {"rules_dir": rules, "actions": {"state_dir": tmp_path / "s", "backoff_seconds": 0}}
    )
    publisher = MemoryPublisher(failures=1)
    async with build_dispatcher(settings, CollectorRegistry(), publisher=publisher) as dispatcher:
        [outcome] = await dispatcher.dispatch(None, verdict())
    assert (outcome["status"], outcome["attempts"]) == ("success", 2)
    [(topic, value, key)] = publisher.messages
    assert (topic, key) == ("tribunal-alerts", b"shop/-/web-7d4")
    assert orjson.loads(value)["violations"][0]["policy"] == "shell_in_container"
