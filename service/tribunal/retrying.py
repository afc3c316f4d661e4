"""Retries and backoff: Tribunal's retry loops run on tenacity (``tenacity.AsyncRetrying``).
This module holds only what those loops share and tenacity does not ship: the wait that takes a list
of delays, and the failure of an attempt, typed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tenacity import RetryCallState


def wait_delays(
    delays: Sequence[float], *, skip: int = 0, default: float = 1.0
) -> Callable[[RetryCallState], float]:
    """A tenacity ``wait``: after the n-th failed attempt, ``delays[skip + n - 1]``; past the end, the
    last delay again (``default`` when there is none). ``skip`` counts attempts made before tenacity's
    first (their waits already taken)."""
    waits = tuple(delays) or (default,)

    def wait(state: RetryCallState) -> float:
        return waits[min(skip + state.attempt_number - 1, len(waits) - 1)]

    return wait


def failure(state: RetryCallState) -> BaseException:
    """The exception the last attempt raised (in ``before_sleep``, ``retry_error_callback``)."""
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    assert exc is not None, "the attempt did not fail"
    return exc


def next_wait(state: RetryCallState) -> float:
    """The wait before the next attempt (in ``before_sleep``)."""
    action = state.next_action
    assert action is not None, "no attempt is coming"
    return float(action.sleep)
