"""Response rules (``rules/response/*.yaml``): which verdicts lead to which actions.

A rule matches a verdict's effective violations by evidence kind, policy id globs, minimum severity,
namespace globs and labels, and lists actions to take, in order. Rules apply in file-name order, then
in file order; a matched rule with ``continue: false`` stops the later ones."""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tribunal.actions.base import TargetSpec
from tribunal.model import Decision, Evidence, EvidenceKind, Severity, TribunalError, Verdict, Violation
from tribunal.model.labels import labels_of
from tribunal.policy import files_fingerprint

log = logging.getLogger(__name__)

RESPONSE_DIR = "response"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class RulesError(TribunalError, ValueError):
    """A response rule file is unreadable or invalid; names the file, the rule and the field."""

    def __init__(self, file: str, message: str, rule: str | None = None, field: str | None = None) -> None:
        self.file, self.rule, self.field, self.message = file, rule, field, message
        where = file + (f": rule {rule!r}" if rule else "") + (f": {field}" if field else "")
        super().__init__(f"{where}: {message}")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a text such as ``90``, ``30s``, ``5m``, ``1h``, ``250ms``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text like 30s, 5m, 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (a number of seconds or a text like 30s, 5m, 1h)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


class RuleMatch(BaseModel):
    """What a rule matches. Empty lists match anything; every given criterion must hold."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[EvidenceKind] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    policies: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    min_severity: Severity = Severity.INFO
    namespaces: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


class RuleAction(BaseModel):
    """One action: ``type`` (annotate, label, event, quarantine, terminate, block-image, alert),
    ``target`` where the action has several (alert: alertmanager, webhook, kafka), ``params``."""

    model_config = ConfigDict(extra="forbid")

    type: str
    target: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)


class ResponseRule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$", max_length=63)
    description: str = ""
    enabled: bool = True
    match: RuleMatch = Field(default_factory=RuleMatch)
    actions: list[RuleAction] = Field(min_length=1)
    dedupe: float = Field(300.0, description="Seconds within which identical matches act once.")
    dry_run: bool = False
    continue_: bool = Field(True, alias="continue")

    @field_validator("dedupe", mode="before")
    @classmethod
    def _dedupe(cls, value: Any) -> float:
        return parse_duration(value)


@dataclass(frozen=True)
class BoundAction:
    """A rule action resolved against the registry, with validated parameters."""

    spec: TargetSpec
    params: BaseModel
    timeout: float | None


@dataclass(frozen=True)
class LoadedRule:
    rule: ResponseRule
    actions: tuple[BoundAction, ...]
    file: str

    @property
    def name(self) -> str:
        return self.rule.name


@dataclass(frozen=True)
class RuleMatchResult:
    rule: LoadedRule
    violations: tuple[Violation, ...]


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[LoadedRule, ...]
    revision: str

    def match(
        self, verdict: Verdict, evidence: Evidence | None = None, labels: Mapping[str, str] | None = None
    ) -> list[RuleMatchResult]:
        """The rules that apply to ``verdict``, in order, each with the violations it matched.
        ``labels`` (the subject's) stand in for reading them from ``evidence``."""
        if labels is None:
            labels = subject_labels(evidence) if evidence is not None else {}
        matched: list[RuleMatchResult] = []
        for loaded in self.rules:
            violations = _matching(loaded.rule, verdict, labels)
            if not violations:
                continue
            matched.append(RuleMatchResult(loaded, violations))
            if not loaded.rule.continue_:
                break
        return matched


def _matching(rule: ResponseRule, verdict: Verdict, labels: Mapping[str, str]) -> tuple[Violation, ...]:
    if not rule.enabled:
        return ()
    m = rule.match
    if m.kinds and verdict.kind not in m.kinds:
        return ()
    if m.decisions and verdict.decision not in m.decisions:
        return ()
    namespace = verdict.subject.namespace or ""
    if m.namespaces and not any(fnmatch.fnmatchcase(namespace, p) for p in m.namespaces):
        return ()
    for key, pattern in m.labels.items():
        if key not in labels or not fnmatch.fnmatchcase(labels[key], pattern):
            return ()
    return tuple(
        v
        for v in verdict.violations
        if v.effective
        and v.severity.rank >= m.min_severity.rank
        and any(fnmatch.fnmatchcase(v.policy, p) for p in m.policies)
    )


def subject_labels(evidence: Evidence) -> dict[str, str]:
    """Labels of the object the evidence is about (see :func:`tribunal.model.labels.labels_of`)."""
    return labels_of(evidence.kind, evidence.event())


class TargetRegistry:
    """Action targets by (action, target name); the first target registered for an action is its
    default. Built from specs, so tests can build their own."""

    def __init__(self, specs: tuple[TargetSpec, ...]) -> None:
        self.specs = specs
        self._by_key: dict[tuple[str, str], TargetSpec] = {}
        self.defaults: dict[str, str] = {}
        for spec in specs:
            if (spec.action, spec.name) in self._by_key:
                raise ValueError(f"action target {spec.action}/{spec.name} registered twice")
            self._by_key[(spec.action, spec.name)] = spec
            self.defaults.setdefault(spec.action, spec.name)

    def resolve(self, action: str, target: str | None) -> TargetSpec:
        """The spec for ``action`` and ``target`` (the action's default when None); KeyError names the
        choices."""
        if action not in self.defaults:
            raise KeyError(f"unknown action type {action!r} (one of: {', '.join(sorted(self.defaults))})")
        name = target or self.defaults[action]
        spec = self._by_key.get((action, name))
        if spec is None:
            names = sorted(n for a, n in self._by_key if a == action)
            raise KeyError(f"unknown target {name!r} for action {action!r} (one of: {', '.join(names)})")
        return spec


def load_rules(rules_dir: Path | str, registry: TargetRegistry) -> RuleSet:
    """Every ``<rules_dir>/response/*.yaml`` (and ``.yml``); none is an empty rule set."""
    root = Path(rules_dir) / RESPONSE_DIR
    files = sorted(p for p in root.glob("*") if p.suffix in (".yaml", ".yml")) if root.is_dir() else []
    digest = hashlib.sha256()
    loaded: list[LoadedRule] = []
    seen: dict[str, str] = {}
    for path in files:
        text = _read(path)
        digest.update(path.name.encode() + b"\0" + text.encode() + b"\0")
        for rule in load_rule_text(text, str(path), registry):
            if rule.name in seen:
                raise RulesError(str(path), f"name already used in {seen[rule.name]}", rule.name, "name")
            seen[rule.name] = str(path)
            loaded.append(rule)
    return RuleSet(rules=tuple(loaded), revision=digest.hexdigest()[:16])


def load_rule_text(text: str, file: str, registry: TargetRegistry) -> list[LoadedRule]:
    """The rules of one file's text (``rules:`` a list of rules)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(file, f"not valid YAML: {exc}") from None
    if doc is None:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("rules", []), list):
        raise RulesError(file, "a response rule file holds a mapping with a list `rules`", field="rules")
    unknown = sorted(set(doc) - {"rules"})
    if unknown:
        raise RulesError(file, f"unknown top-level key(s): {', '.join(unknown)}", field=unknown[0])
    rules: list[LoadedRule] = []
    for index, raw in enumerate(doc.get("rules") or []):
        label = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else None
        label = label or f"#{index + 1}"
        if not isinstance(raw, dict):
            raise RulesError(file, "a rule must be a mapping", label)
        try:
            rule = ResponseRule.model_validate(raw)
        except ValidationError as exc:
            raise _validation_error(exc, file, label) from None
        actions = tuple(_bind(action, i, file, rule.name, registry) for i, action in enumerate(rule.actions))
        rules.append(LoadedRule(rule=rule, actions=actions, file=file))
    return rules


def _bind(action: RuleAction, index: int, file: str, rule: str, registry: TargetRegistry) -> BoundAction:
    where = f"actions[{index}]"
    try:
        spec = registry.resolve(action.type, action.target)
    except KeyError as exc:
        field = f"{where}.target" if action.target and action.type in registry.defaults else f"{where}.type"
        raise RulesError(file, str(exc.args[0]), rule, field) from None
    try:
        params = spec.params.model_validate(action.params)
    except ValidationError as exc:
        raise _validation_error(exc, file, rule, prefix=f"{where}.params") from None
    return BoundAction(spec=spec, params=params, timeout=action.timeout)


def _validation_error(exc: ValidationError, file: str, rule: str, prefix: str = "") -> RulesError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in first["loc"]).replace(".[", "[")
    field = ".".join(x for x in (prefix, loc) if x) or None
    message = first["msg"]
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return RulesError(file, message, rule, field)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(str(path), f"cannot read: {exc}") from None


class RulesRuntime:
    """The live rule set: loaded at start (a bad set raises), then hot-reloaded by ``reload``/``watch``.
    A bad revision keeps the last good set and is reported in ``last_error`` (see ``probe``)."""

    def __init__(self, rules_dir: Path | str, registry: TargetRegistry) -> None:
        self.rules_dir = Path(rules_dir)
        self.registry = registry
        self.last_error: str | None = None
        self._fingerprint = self._stat_fingerprint()
        self._rules = load_rules(self.rules_dir, registry)

    @property
    def rules(self) -> RuleSet:
        return self._rules

    def probe(self) -> str | None:
        """For a ReadinessCheck: None when the files on disk are the rules in force, else the error."""
        return self.last_error

    def _stat_fingerprint(self) -> str:
        root = self.rules_dir / RESPONSE_DIR
        return files_fingerprint(sorted(root.glob("*")) if root.is_dir() else [])

    def reload(self, *, force: bool = False) -> bool:
        """Swap in the files' current rules if they changed; True when the rule set changed."""
        fingerprint = self._stat_fingerprint()
        if not force and fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        try:
            rules = load_rules(self.rules_dir, self.registry)
        except RulesError as exc:
            self.last_error = str(exc)
            log.error("response rules reload failed, keeping revision %s: %s", self._rules.revision, exc)
            return False
        self.last_error = None
        if rules.revision == self._rules.revision:
            return False
        log.info("response rules reloaded: revision %s -> %s", self._rules.revision, rules.revision)
        self._rules = rules
        return True
