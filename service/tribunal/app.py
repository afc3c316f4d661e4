"""Composition root: builds Tribunal's parts from Settings. The only module that wires layers together."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from tribunal.model import EvidenceKind
from tribunal.policy import PolicyError, PolicyLoadError, PolicyRuntime, load_policy_set
from tribunal.settings import Settings
from tribunal.store import SqlStore


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


def build_store(settings: Settings) -> SqlStore:
    """The SQL store of ``settings.database_url`` with its retention; ``start()`` it before use."""
    retention = timedelta(days=settings.retention_days) if settings.retention_days else None
    return SqlStore(settings.database_url, retention=retention)


def policy_kinds(settings: Settings) -> dict[str, EvidenceKind] | None:
    """Policy id -> the evidence kind it judges, for reports; None when the policies cannot be read."""
    try:
        policies = load_policy_set(settings.policy_dir).policies.values()
    except (PolicyError, OSError):
        return None
    return {p.id: EvidenceKind(p.kind) for p in policies}
