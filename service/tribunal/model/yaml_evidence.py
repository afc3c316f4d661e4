"""The one YAML reader of evidence (files, stdin and HTTP ingest): YAML that says what JSON can say.

Evidence is JSON at heart (Kubernetes objects, Trivy and Falco output); YAML is only another spelling of
it, so anything JSON cannot carry is refused, each with an :class:`EvidenceError` naming the source, the
problem and the line:

- aliases (``*a``): evidence never needs them, and a few hundred bytes of nested aliases ("billion
  laughs") expand to gigabytes once the document is built or serialised;
- tags other than JSON's (``!!binary``, ``!!set``, ``!!omap``, ``!!timestamp``, ``!!python/…``, ``!local``);
  an unquoted timestamp stays the text it was, as it would be in JSON;
- mapping keys that are not strings (``1:``, ``true:``, ``on:``, ``~:``, a sequence or mapping as key),
  and merge keys (``<<``);
- numbers JSON has no room for (``.inf``, ``.nan``, integers outside 64 bits) and strings that are not
  Unicode text (a lone surrogate escape);
- nesting deeper than :data:`~tribunal.model.detect.MAX_DEPTH`, refused as the parser meets it.

The document is built from the parser's events without recursion, so no depth can exhaust the stack,
and what it returns is always serialisable by orjson. libyaml's parser is used when PyYAML has it."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import BaseResolver, Resolver

from tribunal.model.detect import MAX_DEPTH
from tribunal.model.errors import EvidenceError

_Parser: Any  # what reads the YAML text into events
try:
    from yaml._yaml import CParser

    _Parser = CParser
except ImportError:  # PyYAML built without libyaml
    _Parser = yaml.loader.BaseLoader

_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_TAG + name for name in ("str", "int", "float", "bool", "null"))
MAP, SEQ, MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"
_SCALAR_TAGS = frozenset({STR, INT, FLOAT, BOOL, NULL})
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # orjson's range: a signed or an unsigned 64-bit integer
# Longer than any 64-bit integer YAML can spell (0b and 64 binary digits, a sign), underscores aside:
# refused before Python converts it (a number of thousands of digits costs quadratic time).
MAX_INT_TEXT = 67


class _JsonResolver(BaseResolver):
    """YAML 1.1's implicit types (as ``yaml.safe_load`` reads them) less the ones JSON lacks: an
    unquoted timestamp, ``=`` and the like are strings. Merge keys are resolved, to be refused."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {  # noqa: RUF012 (PyYAML's)
        first: [(tag, regexp) for tag, regexp in resolvers if tag in (BOOL, INT, FLOAT, NULL, MERGE)]
        for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    }


_resolve: Callable[[type[ScalarNode], str, tuple[bool, bool]], str] = _JsonResolver().resolve
_CONSTRUCTOR = SafeConstructor()  # only its scalar conversions are used: they keep no state


class _Frame:
    """A mapping or sequence being built, and for a mapping the key waiting for its value."""

    __slots__ = ("container", "key")

    def __init__(self, container: dict[str, Any] | list[Any]) -> None:
        self.container = container
        self.key: str | None = None


def load_yaml_documents(data: bytes | str, source: str, *, max_depth: int = MAX_DEPTH) -> list[Any]:
    """Every document of the YAML stream ``data`` that is not empty, as JSON values; EvidenceError
    naming ``source``, the problem and its line for anything else."""
    parser: Any = None
    try:
        parser = _Parser(data)
        return _documents(parser, source, max_depth)
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own bound (1,000 flow levels)
            raise _refuse(source, f"nested deeper than {max_depth} levels", exc) from None
        raise EvidenceError(source, _yaml_problem(exc)) from None
    except RecursionError:  # not expected (nothing here recurses), but never a crash
        raise EvidenceError(source, "nested too deeply") from None
    finally:
        if parser is not None:
            parser.dispose()


def _documents(parser: Any, source: str, max_depth: int) -> list[Any]:
    documents: list[Any] = []
    stack: list[_Frame] = []
    root: Any = None

    def add(value: Any, event: Any) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        frame = stack[-1]
        if isinstance(frame.container, list):
            frame.container.append(value)
        elif frame.key is None:
            if not isinstance(value, str):
                raise _refuse(
                    source, f"mapping keys must be strings, got {_describe(value)}; quote the key", event
                )
            frame.key = value
        else:
            frame.container[frame.key] = value
            frame.key = None

    while True:
        event = parser.get_event()
        if isinstance(event, yaml.ScalarEvent):
            add(_scalar(event, source), event)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            is_mapping = isinstance(event, yaml.MappingStartEvent)
            if event.tag not in (None, "!", MAP if is_mapping else SEQ):
                raise _refuse(
                    source,
                    f"YAML tag {_shown(event.tag)} is not accepted in evidence (JSON values only)",
                    event,
                )
            if len(stack) >= max_depth:
                raise _refuse(source, f"nested deeper than {max_depth} levels", event)
            if stack and isinstance(stack[-1].container, dict) and stack[-1].key is None:
                got = "a mapping" if is_mapping else "a sequence"
                raise _refuse(source, f"mapping keys must be strings, got {got}; quote the key", event)
            container: dict[str, Any] | list[Any] = {} if is_mapping else []
            add(container, event)
            stack.append(_Frame(container))
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            stack.pop()
        elif isinstance(event, yaml.AliasEvent):
            raise _refuse(source, "YAML aliases are not accepted in evidence", event)
        elif isinstance(event, yaml.DocumentEndEvent):
            if root is not None:
                documents.append(root)
            root = None
        elif isinstance(event, yaml.StreamEndEvent):
            return documents


def _scalar(event: Any, source: str) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        # Quoted (or tagged "!"): a string; plain: what its text says.
        tag = _resolve(ScalarNode, event.value, event.implicit) if event.implicit[0] else STR
    if tag == STR:
        value: str = event.value
        if event.style == '"' and not value.isascii():
            _check_text(value, event, source)
        return value
    if tag == MERGE:
        raise _refuse(source, "YAML merge keys (<<) are not accepted in evidence", event)
    if tag not in _SCALAR_TAGS:
        raise _refuse(source, f"YAML tag {_shown(tag)} is not accepted in evidence (JSON values only)", event)
    text = _clip(event.value)
    if tag == INT and len(event.value.replace("_", "")) > MAX_INT_TEXT:
        raise _refuse(source, f"integer {text} is outside the 64-bit range JSON evidence allows", event)
    node = ScalarNode(tag, event.value, event.start_mark, event.end_mark)
    try:
        number = _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
    except Exception:  # PyYAML's conversions raise ValueError, KeyError, IndexError…
        raise _refuse(source, f"{text!r} is not a valid {_shown(tag)}", event) from None
    if isinstance(number, float) and not math.isfinite(number):
        raise _refuse(source, f"{text!r} is not a JSON number (infinite or not a number)", event)
    if isinstance(number, int) and not isinstance(number, bool) and not INT_MIN <= number <= INT_MAX:
        raise _refuse(source, f"integer {text} is outside the 64-bit range JSON evidence allows", event)
    return number


def _check_text(value: str, event: Any, source: str) -> None:
    """A double-quoted scalar may spell a lone surrogate (``"\\ud800"``), which is not Unicode text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(
            source, "a string holds a lone surrogate escape, which is not Unicode text", event
        ) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where the YAML breaks and why, and where the construct it breaks started
    (``not valid YAML at line 3, column 2: did not find expected ',' or ']' (in a flow sequence
    started at line 1, column 4)``), without PyYAML's ``in "<byte string>"`` noise."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if not problem or mark is None:
        return f"not valid YAML: {' '.join(str(exc).split())}"
    text = f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {' '.join(problem.split())}"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if (
        context
        and context_mark is not None
        and (context_mark.line, context_mark.column) != (mark.line, mark.column)
    ):
        context = context.removeprefix("while ").replace("parsing ", "in ", 1).replace("scanning ", "in ", 1)
        text += f" ({context} started at line {context_mark.line + 1}, column {context_mark.column + 1})"
    return text


def _refuse(source: str, problem: str, at: Any) -> EvidenceError:
    """The error naming ``problem`` and the line of ``at`` (an event, or a YAMLError's problem)."""
    mark = getattr(at, "start_mark", None) or getattr(at, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return EvidenceError(source, problem + where)


def _shown(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _clip(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"
