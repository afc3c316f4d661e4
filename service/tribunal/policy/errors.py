"""Errors of loading and evaluating policies; each names the policy file and line where it can."""

from __future__ import annotations

import re

from tribunal.model.errors import TribunalError


class PolicyError(TribunalError):
    """A policy could not be loaded, compiled or evaluated."""


class PolicyLoadError(PolicyError):
    """A policy or data file is unreadable, malformed, or does not compile."""


class PolicyEvaluationError(PolicyError):
    """Evaluating the policies on one input failed (a Rego runtime error)."""


_BACKTRACE = re.compile(r"\n*Stack backtrace:.*", re.S)


def engine_message(exc: BaseException) -> str:
    """An engine's error text without the Rust backtrace regorus appends when RUST_BACKTRACE is set."""
    return _BACKTRACE.sub("", str(exc)).strip()
