"""The default backend: Microsoft's regorus (Rust), through the ``celine-regorus`` wheel.

regorus evaluates Rego two ways: its interpreter, which walks the policies' syntax tree, and its
virtual machine (RVM), which runs a program compiled from them. The RVM judged admission reviews about
twice as fast here (0.13 against 0.25 ms per review with the whole library) and Falco alerts about
three times, with the same violations on every sample and generated variant, so ``regorus`` runs the
kinds in ``VM_KINDS`` on it. Trivy reports stay on the interpreter: those with many findings pass the
RVM's fixed limit of 25,000 instructions. Whatever the RVM cannot run (a program it cannot compile, an
input past that limit, a result holding its undefined marker) is evaluated by the interpreter instead,
so the answer never depends on the RVM's limits. ``regorus-interpreter`` uses the interpreter alone.

A regorus ``Engine`` (and ``Rvm``) is bound to the thread that made it (using it from another thread
panics) and holds the GIL while it evaluates, so each thread gets its own, built on first use; a second
core only helps through a second process."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

# regorus reports Rego errors through Rust's anyhow, which captures a backtrace per error when
# RUST_BACKTRACE is set; evaluation raises and catches such errors internally, and the capture made
# every admission query about 15% slower here. RUST_LIB_BACKTRACE governs library errors only, so
# panics still print their backtrace. Set before regorus creates its first error.
os.environ.setdefault("RUST_LIB_BACKTRACE", "0")

import regorus
from regorus.regorus import Program, Rvm

from tribunal.policy.engine import judge_query
from tribunal.policy.errors import PolicyEvaluationError, PolicyLoadError, engine_message
from tribunal.policy.loader import PolicySet

log = logging.getLogger(__name__)

# The evidence kinds ``regorus`` judges on the RVM (see the module docstring for why only these).
VM_KINDS = frozenset({"admission", "falco"})
_VM_UNDEFINED = "<undefined>"


@dataclass
class _ThreadState:
    """What one thread evaluates one revision with: its interpreter, and its RVM when there is one."""

    key: tuple[str, frozenset[str]]
    engine: Any
    vm: Any | None


class RegorusEngine:
    """regorus: the kinds in ``vm_kinds`` on its RVM (the interpreter as fallback), the rest on its
    interpreter. With no ``vm_kinds`` it is the interpreter alone."""

    # Per thread, the engines of the revision that thread used last (one per set of RVM kinds). Kept per
    # thread, not per instance, so an engine is only ever dropped by its own thread (dropping it
    # elsewhere is an error in regorus).
    _per_thread = threading.local()

    def __init__(
        self, policy_set: PolicySet, vm_kinds: Iterable[str] = VM_KINDS, name: str = "regorus"
    ) -> None:
        self.name = name
        self.revision = policy_set.revision
        self._policy_set = policy_set
        self._data_json = orjson.dumps(policy_set.data).decode()
        # Compile now so bad Rego fails the load; not cached: the caller's thread (a reload worker, say)
        # may never evaluate, and an engine must be dropped by the thread that made it.
        build_engine(policy_set, self._data_json)
        self.vm_kinds, refused = vm_compilable(policy_set, self._data_json, vm_kinds)
        for kind, reason in refused.items():
            # Valid Rego the RVM's compiler does not take yet: the interpreter judges that kind.
            log.warning(
                "policy revision %s: regorus's RVM cannot compile the %s policies (%s); the "
                "interpreter judges them",
                self.revision,
                kind,
                reason,
            )
        self.vm_fallbacks = 0

    def _state(self) -> _ThreadState:
        key = (self.revision, self.vm_kinds)
        states: dict[tuple[str, frozenset[str]], _ThreadState] = getattr(self._per_thread, "states", {})
        state = states.get(key)
        if state is not None:
            return state
        # Drop older revisions' engines here, in their own thread.
        states = {k: s for k, s in states.items() if k[0] == self.revision}
        engine = build_engine(self._policy_set, self._data_json)
        vm = build_vm(self._policy_set, self._data_json, self.vm_kinds) if self.vm_kinds else None
        states[key] = state = _ThreadState(key, engine, vm)
        self._per_thread.states = states
        return state

    def evaluate(self, kind: str, input_json: bytes) -> list[dict[str, Any]]:
        state = self._state()
        text = input_json.decode()
        result: str | None = None
        error: str | None = None
        if state.vm is not None and kind in self.vm_kinds:
            try:
                state.vm.set_input_json(text)
                result = state.vm.execute_entry_point(judge_query(kind))
            except RuntimeError as exc:
                error = engine_message(exc)
            if error is None and result is not None and _VM_UNDEFINED in result:
                # The RVM lets its undefined marker escape as a value on some constructs (an `else`
                # after a body that fails in a way it mishandles, a missing key in an object
                # comprehension: docs/policies.md, "Engines").
                error = f"the result holds {_VM_UNDEFINED}"
                result = None
            if error is not None:
                self._fell_back(kind, error)
                error = None
        if result is None:
            engine = state.engine
            try:
                engine.set_input_json(text)
                result = engine.eval_rule_as_json(judge_query(kind))
            except RuntimeError as exc:
                error = engine_message(exc)
            # The error's traceback keeps this frame alive, possibly into another thread: it must not
            # hold the engine, which only its own thread may drop.
            del engine
        del state
        if error is not None or result is None:
            raise PolicyEvaluationError(error or "no result")
        violations = orjson.loads(result)
        return violations if isinstance(violations, list) else []

    def _fell_back(self, kind: str, reason: str) -> None:
        self.vm_fallbacks += 1
        # Rare and harmless (the interpreter answers), but worth seeing once per engine.
        level = logging.WARNING if self.vm_fallbacks == 1 else logging.DEBUG
        log.log(level, "regorus RVM could not judge a %s input (%s); the interpreter did", kind, reason)

    def close(self) -> None:
        states: dict[tuple[str, frozenset[str]], _ThreadState] = getattr(self._per_thread, "states", {})
        states.pop((self.revision, self.vm_kinds), None)


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


def vm_compilable(
    policy_set: PolicySet, data_json: str, kinds: Iterable[str]
) -> tuple[frozenset[str], dict[str, str]]:
    """The kinds whose policies the RVM compiles, and for each other kind why it does not (one kind's
    policies the RVM refuses keep only that kind on the interpreter)."""
    wanted = frozenset(kinds)
    if not wanted:
        return wanted, {}
    try:
        build_vm(policy_set, data_json, wanted)
        return wanted, {}
    except RuntimeError:
        pass
    refused: dict[str, str] = {}
    for kind in sorted(wanted):
        try:
            build_vm(policy_set, data_json, [kind])
        except RuntimeError as exc:
            refused[kind] = engine_message(exc)
    return wanted.difference(refused), refused


def build_vm(policy_set: PolicySet, data_json: str, kinds: Iterable[str]) -> Any:
    """A regorus RVM loaded with a program compiled from ``policy_set``, one entry point per kind;
    raises RuntimeError when the RVM's compiler does not take the policies."""
    program = Program.compile_from_modules(
        data_json,
        [(module.path, module.source) for module in policy_set.modules],
        [judge_query(kind) for kind in sorted(kinds)],
    )
    vm = Rvm()
    vm.load_program(program)
    vm.set_data_json(data_json)
    return vm
