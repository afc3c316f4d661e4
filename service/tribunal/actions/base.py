"""What every action target shares: the request it is handed, its errors, its registry entry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

from tribunal.model import Evidence, TribunalError, Verdict, Violation

if TYPE_CHECKING:
    from tribunal.actions.images import ImageBlocklist
    from tribunal.actions.kafka import AlertPublisher
    from tribunal.actions.kube import KubeClient
    from tribunal.settings import ActionSettings

PROTECTED_LABEL = "tribunal.io/protected"
"""Objects carrying this label with value ``true`` are never touched by cluster actions."""


class ActionError(TribunalError):
    """An action failed. ``retriable`` errors (connection errors, timeouts, 429, 5xx) are retried by
    the dispatcher with backoff; the others stop at once. ``status`` is the HTTP status when one was
    received."""

    def __init__(self, message: str, *, retriable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.status = status


class ActionSkipped(TribunalError):
    """The action decided not to act (protected object, nothing to do); not a failure."""


def http_error(target: str, status: int, text: str = "") -> ActionError:
    """The error for an HTTP answer: retriable on 429 and 5xx, final on other statuses."""
    retriable = status == 429 or status >= 500
    detail = f": {text[:200]}" if text else ""
    return ActionError(f"{target} answered HTTP {status}{detail}", retriable=retriable, status=status)


class EmptyParams(BaseModel):
    """Parameters of an action that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ActionRequest:
    """One action to take on one verdict: the matched rule's name, the violations it matched, the
    validated ``params``, and the rule's dedupe window (seconds; alerts use it for ``endsAt``)."""

    evidence: Evidence | None
    verdict: Verdict
    rule: str
    violations: tuple[Violation, ...]
    params: BaseModel
    dedupe_seconds: float

    @property
    def policies(self) -> list[str]:
        return sorted({v.policy for v in self.violations})

    @property
    def severity(self) -> str:
        """The highest severity among the matched violations."""
        worst = max(self.violations, key=lambda v: v.severity.rank, default=None)
        return worst.severity.value if worst is not None else "info"


class ActionTarget(Protocol):
    """One way of acting. ``plan`` says what ``run`` would do (dry-run, no I/O); ``run`` does it and
    returns details for the recorded outcome, raising :class:`ActionError` or :class:`ActionSkipped`.
    Targets never retry: the dispatcher does."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def plan(self, request: ActionRequest) -> dict[str, Any]: ...

    async def run(self, request: ActionRequest) -> dict[str, Any]: ...


@dataclass
class TargetDeps:
    """What targets are built from; each target takes only what it needs. Missing dependencies make
    the targets that need them fail with a clear error when a rule uses them."""

    settings: ActionSettings
    kube: Callable[[], Awaitable[KubeClient]] | None = None
    http: Callable[[], Any] | None = None  # -> aiohttp.ClientSession
    blocklist: ImageBlocklist | None = None
    publisher: AlertPublisher | None = None
    alertmanager_url: str | None = None


@dataclass(frozen=True)
class TargetSpec:
    """A registry entry: rule ``type`` (the action) and ``target`` name, its parameter model and how
    to build it. ``destructive`` actions pass the blast-radius guard; ``runs_last`` actions start only
    after the rule's other actions have finished (terminate)."""

    action: str
    name: str
    params: type[BaseModel]
    build: Callable[[TargetDeps], ActionTarget]
    destructive: bool = False
    runs_last: bool = False
    touches_cluster: bool = False
