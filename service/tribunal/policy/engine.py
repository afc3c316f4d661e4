"""The PolicyEngine protocol and the registry of backends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tribunal.policy.loader import JUDGE_PACKAGE, PolicySet


class PolicyEngine(Protocol):
    """Evaluates one revision of the policies. ``evaluate`` returns the raw violations that
    ``data.tribunal.lib.judge.<kind>`` gathers for one input (each with ``policy`` and ``exception``)."""

    name: str
    revision: str

    def evaluate(self, kind: str, input_json: bytes) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def judge_query(kind: str) -> str:
    return f"data.{JUDGE_PACKAGE}.{kind}"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """What a backend needs beyond the policies: the OPA server's URL, bearer token and per-request
    timeout, for ``opa``. Picklable: judge workers build their engines from it."""

    opa_url: str | None = None
    opa_token: str | None = None
    opa_timeout_seconds: float = 2.0  # as Settings.opa_timeout_seconds


EngineFactory = Callable[[PolicySet, EngineOptions], PolicyEngine]


def engine_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def create_engine(name: str, policy_set: PolicySet, options: EngineOptions | None = None) -> PolicyEngine:
    """A compiled engine of backend ``name`` for ``policy_set``; raises PolicyLoadError on bad Rego."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown policy engine {name!r}; choose one of {', '.join(_REGISTRY)}") from None
    return factory(policy_set, options or EngineOptions())


def _regorus(policy_set: PolicySet, options: EngineOptions) -> PolicyEngine:
    from tribunal.policy.regorus_engine import RegorusEngine

    return RegorusEngine(policy_set)


def _regorus_interpreter(policy_set: PolicySet, options: EngineOptions) -> PolicyEngine:
    from tribunal.policy.regorus_engine import RegorusEngine

    return RegorusEngine(policy_set, vm_kinds=(), name="regorus-interpreter")


def _regopy(policy_set: PolicySet, options: EngineOptions) -> PolicyEngine:
    from tribunal.policy.regopy_engine import RegopyEngine

    return RegopyEngine(policy_set)


def _opa(policy_set: PolicySet, options: EngineOptions) -> PolicyEngine:
    from tribunal.policy.opa_engine import OpaEngine

    return OpaEngine(policy_set, options)


# One line per backend.
_REGISTRY: dict[str, EngineFactory] = {
    "regorus": _regorus,
    "regorus-interpreter": _regorus_interpreter,
    "regopy": _regopy,
    "opa": _opa,
}
