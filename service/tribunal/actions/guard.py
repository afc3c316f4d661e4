"""Limits on acting: deduplication of repeated matches, and the blast-radius guard on destructive
actions. Both take a ``clock`` (monotonic seconds) so tests control time.

Each limit is a Protocol the dispatcher uses (:class:`DedupeWindows`, :class:`DestructiveBudget`), kept
in this process by :class:`Deduper` and :class:`BlastRadiusGuard`, or shared by the replicas on one
database by ``tribunal.store.shared`` (chosen in ``app.py``)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol


class DedupeWindows(Protocol):
    """Where dedupe windows are kept. ``claim(key, window, owner)`` is 0 when the caller is the first
    in the window (it acts, and the window starts), else the number of repeats so far (it does not
    act); ``release(key)`` ends the window at once (the action failed: the next occurrence tries
    again). ``owner`` is the evidence id acting: a shared store lets the window's own evidence act
    again (the outbox sweep replaying it after its replica died mid-way), counting no repeat."""

    async def claim(self, key: tuple[str, ...], window: float, owner: str | None = None) -> int: ...

    async def release(self, key: tuple[str, ...]) -> None: ...


class DestructiveBudget(Protocol):
    """The blast-radius budget: ``take(namespace)`` takes one of the namespace's destructive actions
    of the sliding minute, or is False when they are used up."""

    async def take(self, namespace: str) -> bool: ...


@dataclass
class _Seen:
    until: float
    repeats: int = 0


class Deduper:
    """Remembers keys for a window: ``check(key, window)`` is 0 the first time (act), else the number
    of repeats so far within the window (skip). Expired keys are dropped as new ones arrive."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self._seen: dict[tuple[str, ...], _Seen] = {}

    def check(self, key: tuple[str, ...], window: float) -> int:
        if window <= 0:
            return 0
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and seen.until > now:
            seen.repeats += 1
            return seen.repeats
        if len(self._seen) >= self.max_keys:
            self._seen = {k: v for k, v in self._seen.items() if v.until > now}
        self._seen[key] = _Seen(until=now + window)
        return 0

    def forget(self, key: tuple[str, ...]) -> None:
        """Let the next match act again (after the action failed)."""
        self._seen.pop(key, None)

    async def claim(self, key: tuple[str, ...], window: float, owner: str | None = None) -> int:
        return self.check(key, window)

    async def release(self, key: tuple[str, ...]) -> None:
        self.forget(key)


class BlastRadiusGuard:
    """Allows at most ``per_minute`` destructive actions per namespace in any sliding minute, and none
    in ``exempt`` namespaces."""

    def __init__(
        self, per_minute: int, exempt: Iterable[str] = (), clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.exempt = frozenset(exempt)
        self.clock = clock
        self._recent: dict[str, deque[float]] = {}

    def is_exempt(self, namespace: str | None) -> bool:
        return namespace is not None and namespace in self.exempt

    def allow(self, namespace: str) -> bool:
        """Take a slot for ``namespace``; False when its minute is used up."""
        now = self.clock()
        recent = self._recent.setdefault(namespace, deque())
        while recent and recent[0] <= now - 60.0:
            recent.popleft()
        if len(recent) >= self.per_minute:
            return False
        recent.append(now)
        return True

    async def take(self, namespace: str) -> bool:
        return self.allow(namespace)
