"""The dispatcher's gate on what the installation may do in the cluster (ActionSettings.cluster_actions
and .namespaces, which the chart sets from the same values as its RBAC): a cluster action not enabled,
or in a namespace outside the listed ones, is "skipped" with the reason and its target never called,
dry-run included; actions that do not touch the cluster are not gated."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tribunal.actions import RulesRuntime, default_registry
from tribunal.actions.base import ActionRequest
from tribunal.actions.dispatcher import Dispatcher
from tribunal.model import Decision, EvidenceKind, Severity, Subject, Verdict, Violation
from tribunal.settings import ActionSettings

RULES = """rules:
  - name: r
    dedupe: 0
    actions:
      - {type: annotate}
      - {type: quarantine}
      - {type: terminate}
      - {type: alert}
"""
NOT_ENABLED = (
    "the {} action is not enabled in this installation "
    "(TRIBUNAL_ACTIONS__CLUSTER_ACTIONS; the chart's actions values)"
)


class Recording:
    """A target that records every plan and run it is asked for."""

    def __init__(self, calls: list[tuple[str, str, str | None]], action: str) -> None:
        self.calls, self.action = calls, action

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        self.calls.append(("plan", self.action, request.verdict.subject.namespace))
        return {"would": self.action}

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        self.calls.append(("run", self.action, request.verdict.subject.namespace))
        return {"ran": self.action}


def verdict(namespace: str) -> Verdict:
    return Verdict(
        evidence_id="ev-1",
        kind=EvidenceKind.FALCO,
        subject=Subject(namespace=namespace, pod="web-7d4"),
        decision=Decision.DENY,
        violations=[Violation(policy="shell_in_container", msg="m", severity=Severity.HIGH)],
        policy_revision="rev",
        engine="regorus",
        evaluated_at=datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        latency_ms=1.0,
    )


def dispatcher(
    tmp_path: Path, settings: ActionSettings, calls: list[tuple[str, str, str | None]], **kwargs: Any
) -> tuple[Dispatcher, CollectorRegistry]:
    (tmp_path / "response").mkdir(exist_ok=True)
    (tmp_path / "response" / "rules.yaml").write_text(RULES)
    targets: dict[tuple[str, str], Any] = {
        (action, target): Recording(calls, action)
        for action, target in (
            ("annotate", "kubernetes"),
            ("quarantine", "kubernetes"),
            ("terminate", "kubernetes"),
            ("alert", "alertmanager"),
        )
    }
    registry = CollectorRegistry()
    runtime = RulesRuntime(tmp_path, default_registry())
    return Dispatcher(runtime, targets, settings, registry, **kwargs), registry


def statuses(outcomes: list[dict[str, Any]]) -> dict[str, tuple[str, str | None]]:
    return {o["action"]: (o["status"], o.get("reason")) for o in outcomes}


async def test_an_action_not_enabled_is_skipped_with_the_reason_and_never_called(tmp_path: Path) -> None:
    calls: list[tuple[str, str, str | None]] = []
    settings = ActionSettings(cluster_actions=["annotate", "quarantine"])
    gate, registry = dispatcher(tmp_path, settings, calls)
    outcomes = await gate.dispatch(None, verdict("shop"))
    assert statuses(outcomes) == {
        "annotate": ("success", None),
        "quarantine": ("success", None),
        "terminate": ("skipped", NOT_ENABLED.format("terminate")),
        "alert": ("success", None),  # not a cluster action: not gated
    }
    assert sorted(calls) == [("run", a, "shop") for a in ("alert", "annotate", "quarantine")]
    labels = {"action": "terminate", "target": "kubernetes", "status": "skipped"}
    assert registry.get_sample_value("tribunal_actions_total", labels) == 1


async def test_a_namespace_outside_the_listed_ones_is_skipped_with_the_reason(tmp_path: Path) -> None:
    calls: list[tuple[str, str, str | None]] = []
    settings = ActionSettings(namespaces=["shop", "payments"])  # every cluster action enabled
    gate, _ = dispatcher(tmp_path, settings, calls)
    inside = await gate.dispatch(None, verdict("payments"))
    assert {status for status, _ in statuses(inside).values()} == {"success"}
    calls.clear()
    outside = await gate.dispatch(None, verdict("staging"))
    reason = "namespace staging is outside those this installation acts in (shop, payments)"
    assert statuses(outside) == {
        "annotate": ("skipped", reason),
        "quarantine": ("skipped", reason),
        "terminate": ("skipped", reason),
        "alert": ("success", None),
    }
    assert calls == [("run", "alert", "staging")]


async def test_the_gate_holds_in_dry_run_too(tmp_path: Path) -> None:
    """A dry run plans only what the installation may do: a plan for the rest would be a lie."""
    calls: list[tuple[str, str, str | None]] = []
    settings = ActionSettings(cluster_actions=["annotate"], namespaces=["shop"])
    gate, _ = dispatcher(tmp_path, settings, calls, dry_run=True)
    here = await gate.dispatch(None, verdict("shop"))
    elsewhere = await gate.dispatch(None, verdict("staging"))
    assert [statuses(here)[a][0] for a in ("annotate", "quarantine", "terminate", "alert")] == [
        "dry_run",
        "skipped",
        "skipped",
        "dry_run",
    ]
    assert {statuses(elsewhere)[a][0] for a in ("annotate", "quarantine", "terminate")} == {"skipped"}
    assert sorted(calls) == [
        ("plan", "alert", "shop"),
        ("plan", "alert", "staging"),
        ("plan", "annotate", "shop"),
    ]


@pytest.mark.parametrize("value", ["annotate,label,event", " annotate , label,event "])
def test_cluster_actions_are_read_comma_separated(value: str) -> None:
    assert ActionSettings.model_validate({"cluster_actions": value}).cluster_actions == [
        "annotate",
        "label",
        "event",
    ]


def test_an_unknown_cluster_action_is_refused() -> None:
    with pytest.raises(ValueError, match="cluster_actions"):
        ActionSettings.model_validate({"cluster_actions": "annotate,explode"})
