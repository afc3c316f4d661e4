"""Fixtures of the action tests: the test Kubernetes API server, a real Alertmanager, and
dispatchers built the way ``tribunal serve`` builds them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests import components
from tribunal.actions import Dispatcher, ImageBlocklist, build_dispatcher
from tribunal.model import Decision, EvidenceKind, Severity, Subject, Verdict, Violation
from tribunal.settings import Settings


@pytest.fixture
def alertmanager_config() -> str:
    """The Alertmanager configuration (a module overrides this fixture to route on labels)."""
    return components.BLACKHOLE_ROUTE


@pytest.fixture
async def alertmanager(tmp_path: Path, alertmanager_config: str) -> AsyncIterator[str]:
    """A real Alertmanager on a free loopback port (clustering off, storage in tmp); its base URL."""
    manager = components.AlertmanagerProcess(tmp_path, alertmanager_config)
    try:
        yield await manager.start()
    finally:
        await manager.stop()


MakeDispatcher = Callable[..., Awaitable[Dispatcher]]


@pytest.fixture
async def make_dispatcher(tmp_path: Path) -> AsyncIterator[MakeDispatcher]:
    """``await make_dispatcher(rules_yaml, **settings)``: a started dispatcher reading ``rules_yaml``
    (or ``rules_dir=``), with fast retries; stopped after the test."""
    async with dispatchers(tmp_path) as make:
        yield make


@contextlib.asynccontextmanager
async def dispatchers(
    tmp_path: Path, defaults: dict[str, Any] | None = None
) -> AsyncIterator[MakeDispatcher]:
    """Makes started dispatchers as ``tribunal serve`` builds them (``build_dispatcher``), from
    ``defaults`` (settings; their ``actions`` merged key by key with each call's), fast retries; stops
    them all at the end."""
    base = dict(defaults or {})
    base_actions = base.pop("actions", {})
    started: list[Dispatcher] = []

    async def make(
        rules_yaml: str | None = None,
        *,
        rules_dir: Path | None = None,
        blocklist: ImageBlocklist | None = None,
        actions: dict[str, Any] | None = None,
        registry: CollectorRegistry | None = None,
        **overrides: Any,
    ) -> Dispatcher:
        if rules_dir is None:
            rules_dir = tmp_path / f"rules-{len(started)}"
            (rules_dir / "response").mkdir(parents=True)
            (rules_dir / "response" / "rules.yaml").write_text(rules_yaml or "rules: []\n")
        settings = Settings.model_validate(
            {
                "rules_dir": rules_dir,
                **base,
                "actions": {
                    "state_dir": tmp_path / "state",
                    "backoff_seconds": 0,
                    **base_actions,
                    **(actions or {}),
                },
                **overrides,
            }
        )
        dispatcher = build_dispatcher(settings, registry or CollectorRegistry(), blocklist=blocklist)
        await dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    try:
        yield make
    finally:
        for dispatcher in started:
            await dispatcher.stop()


def verdict(
    policy: str = "shell_in_container",
    *,
    kind: EvidenceKind = EvidenceKind.FALCO,
    namespace: str = "shop",
    pod: str | None = "web-7d4",
    severity: Severity = Severity.HIGH,
    image: str | None = "nginx:1.27",
    evidence_id: str = "ev-1",
) -> Verdict:
    """A deny verdict with one violation of ``policy``."""
    return Verdict(
        evidence_id=evidence_id,
        kind=kind,
        subject=Subject(namespace=namespace, pod=pod, container="app", image=image),
        decision=Decision.DENY,
        violations=[Violation(policy=policy, msg=f"{policy} happened", severity=severity, controls=["c:1"])],
        policy_revision="rev1",
        engine="regorus",
        evaluated_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        latency_ms=0.5,
    )
