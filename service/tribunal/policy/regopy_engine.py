"""Microsoft's rego-cpp through ``regopy``: compiled once per revision (``build`` per kind, then
``query_bundle`` per input), since a fresh compile per query is several times slower."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import orjson
import regopy
from regopy.rego_shared import rego_bundle_query, rego_free_output, rego_output_ok, rego_output_string

from tribunal.policy.engine import judge_query
from tribunal.policy.errors import PolicyEvaluationError, PolicyLoadError
from tribunal.policy.loader import PolicySet


class RegopyEngine:
    name = "regopy"

    def __init__(self, policy_set: PolicySet) -> None:
        self.revision = policy_set.revision
        self._policy_set = policy_set
        self._local = threading.local()
        self._compiled()

    def _compiled(self) -> tuple[Any, dict[str, Any]]:
        compiled = getattr(self._local, "compiled", None)
        if compiled is None:
            compiled = self._local.compiled = _compile(self._policy_set)
        result: tuple[Any, dict[str, Any]] = compiled
        return result

    def evaluate(self, kind: str, input_json: bytes) -> list[dict[str, Any]]:
        interpreter, bundles = self._compiled()
        bundle = bundles.get(kind)
        if bundle is None:
            raise PolicyEvaluationError(f"no judge rule for evidence kind {kind!r}")
        interpreter.set_input_term(input_json.decode())
        # The low-level calls: regopy's Output wrapper crashes on error outputs.
        output = rego_bundle_query(interpreter._impl, bundle._impl)
        try:
            text = rego_output_string(output)
            ok = rego_output_ok(output)
        finally:
            rego_free_output(output)
        if not ok or text.startswith("(error"):
            raise PolicyEvaluationError(_error_text(text))
        if text == "undefined":
            return []
        expressions = _loads(text).get("expressions") or [[]]
        violations = expressions[0]
        return violations if isinstance(violations, list) else []

    def close(self) -> None:
        self._local = threading.local()


def _loads(text: str) -> dict[str, Any]:
    """rego-cpp's output may hold raw newlines inside strings, which strict JSON parsers refuse."""
    try:
        loaded = orjson.loads(text)
    except orjson.JSONDecodeError:
        loaded = json.loads(text, strict=False)
    return loaded if isinstance(loaded, dict) else {}


def _compile(policy_set: PolicySet) -> tuple[Any, dict[str, Any]]:
    interpreter = regopy.Interpreter()
    for module in policy_set.modules:
        try:
            interpreter.add_module(module.path, module.source)
        except regopy.RegoError as exc:
            raise PolicyLoadError(_error_text(str(exc), policy_set)) from None
    interpreter.add_data_json(orjson.dumps(policy_set.data).decode())
    bundles = {}
    for kind in policy_set.kinds:
        try:
            bundles[kind] = interpreter.build(judge_query(kind))
        except regopy.RegoError as exc:
            raise PolicyLoadError(_error_text(str(exc), policy_set)) from None
    return interpreter, bundles


_ERROR = re.compile(r"\(error \d+:([^|\s]+)\|(\d+)\|\d+\s+\(errormsg \d+:([^)]*)\)")
_MESSAGE = re.compile(r"\(errormsg \d+:([^)]*)\)")


def _error_text(text: str, policy_set: PolicySet | None = None) -> str:
    """``file:line:col: message`` for each error of a rego-cpp error tree (it gives byte offsets)."""
    sources = {m.path: m.source for m in policy_set.modules} if policy_set else {}
    found = []
    for path, offset, message in _ERROR.findall(text):
        source = sources.get(path)
        if source is not None:
            before = source[: int(offset)]
            line, col = before.count("\n") + 1, int(offset) - (before.rfind("\n") + 1) + 1
            found.append(f"{path}:{line}:{col}: {message}")
        else:
            found.append(f"{path}: {message}")
    if found:
        return "; ".join(found)
    messages = _MESSAGE.findall(text)
    return "; ".join(messages) if messages else text.strip()[:500]
