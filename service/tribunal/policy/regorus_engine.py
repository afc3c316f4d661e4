"""The default backend: Microsoft's regorus (Rust), through the ``celine-regorus`` wheel.

A regorus ``Engine`` is bound to the thread that made it (using it from another thread panics) and
holds the GIL while it evaluates, so each thread gets its own engine, built on first use; a second core
only helps through a second process."""

from __future__ import annotations

import os
import threading
from typing import Any

import orjson

# regorus reports Rego errors through Rust's anyhow, which captures a backtrace per error when
# RUST_BACKTRACE is set; evaluation raises and catches such errors internally, and the capture made
# every admission query about 15% slower here. RUST_LIB_BACKTRACE governs library errors only, so
# panics still print their backtrace. Set before regorus creates its first error.
os.environ.setdefault("RUST_LIB_BACKTRACE", "0")

import regorus

from tribunal.policy.engine import judge_query
from tribunal.policy.errors import PolicyEvaluationError, PolicyLoadError, engine_message
from tribunal.policy.loader import PolicySet


class RegorusEngine:
    name = "regorus"

    # Per thread, the engine of the revision that thread used last. Kept per thread, not per instance,
    # so an engine is only ever dropped by its own thread (dropping it elsewhere is an error in regorus).
    _per_thread = threading.local()

    def __init__(self, policy_set: PolicySet) -> None:
        self.revision = policy_set.revision
        self._policy_set = policy_set
        self._data_json = orjson.dumps(policy_set.data).decode()
        # Compile now so bad Rego fails the load; not cached: the caller's thread (a reload worker, say)
        # may never evaluate, and an engine must be dropped by the thread that made it.
        build_engine(policy_set, self._data_json)

    def _engine(self) -> Any:
        cached = getattr(self._per_thread, "cached", None)
        if cached is not None and cached[0] == self.revision:
            return cached[1]
        self._per_thread.cached = None  # drop the old revision's engine here, in its own thread
        engine = build_engine(self._policy_set, self._data_json)
        self._per_thread.cached = (self.revision, engine)
        return engine

    def evaluate(self, kind: str, input_json: bytes) -> list[dict[str, Any]]:
        engine = self._engine()
        error: str | None = None
        try:
            engine.set_input_json(input_json.decode())
            result = engine.eval_rule_as_json(judge_query(kind))
        except RuntimeError as exc:
            error = engine_message(exc)
        # The error's traceback keeps this frame alive, possibly into another thread: it must not hold
        # the engine, which only its own thread may drop.
        del engine
        if error is not None:
            raise PolicyEvaluationError(error)
        violations = orjson.loads(result)
        return violations if isinstance(violations, list) else []

    def close(self) -> None:
        cached = getattr(self._per_thread, "cached", None)
        if cached is not None and cached[0] == self.revision:
            self._per_thread.cached = None


def build_engine(policy_set: PolicySet, data_json: str | None = None) -> Any:
    """A regorus Engine with every module and the data of ``policy_set``; errors name file and line."""
    engine = regorus.Engine()
    error: str | None = None
    for module in policy_set.modules:
        try:
            engine.add_policy(module.path, module.source)
        except RuntimeError as exc:
            error = engine_message(exc)
            break
    if error is None:
        try:
            engine.add_data_json(
                data_json if data_json is not None else orjson.dumps(policy_set.data).decode()
            )
        except RuntimeError as exc:
            error = f"policy data: {engine_message(exc)}"
    if error is not None:
        # Drop the engine here, in its own thread: a traceback would keep it alive until the garbage
        # collector frees it from whatever thread it runs in, which regorus reports as an error.
        del engine
        raise PolicyLoadError(error)
    return engine
