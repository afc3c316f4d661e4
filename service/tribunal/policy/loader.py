"""Read a policy directory: Rego modules, their METADATA, data files, and the revision hash."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tribunal.model import Enforcement, Severity
from tribunal.policy.errors import PolicyLoadError

JUDGE_PACKAGE = "tribunal.lib.judge"
"""The aggregation package: one rule per evidence kind gathers every policy's violations."""

NETWORK_BUILTINS = ("http.send", "net.lookup_ip_addr")
"""Built-ins that reach the network from inside an evaluation: refused at load unless allowed
(``TRIBUNAL_POLICY_ALLOW_NETWORK``): a policy in the admission path must not call out, and a policy
that can call out can leak every review it reads."""

_NETWORK_CALL = re.compile(r"(?<![\w.])(" + "|".join(re.escape(b) for b in NETWORK_BUILTINS) + r")\s*\(")
# Rego's comments and string literals (raw `...` and "..." with escapes), blanked before the search.
_COMMENT_OR_STRING = re.compile(r'#[^\n]*|`[^`]*`|"(?:[^"\\\n]|\\.)*"')
_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)", re.M)
_METADATA = re.compile(r"^# METADATA\n((?:#.*\n)+?)(?=package\s|[^#])", re.M)


class PolicyInfo(BaseModel):
    """What a policy's METADATA block says about it (``custom`` holds Tribunal's keys)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    kind: str
    package: str
    path: str
    title: str = ""
    description: str = ""
    version: str = "0.0.0"
    severity: Severity = Severity.MEDIUM
    enforcement: Enforcement = Enforcement.DENY
    profile: str | None = None
    controls: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Module:
    path: str
    source: str
    package: str

    @property
    def is_test(self) -> bool:
        return self.path.endswith("_test.rego")


@dataclass(frozen=True)
class PolicySet:
    """Everything one revision of the policies is made of."""

    root: str
    modules: tuple[Module, ...]
    data: dict[str, Any]
    policies: dict[str, PolicyInfo]
    revision: str
    kinds: tuple[str, ...] = field(default=("admission", "falco", "trivy"))

    def policy(self, policy_id: str) -> PolicyInfo | None:
        return self.policies.get(policy_id)


def load_policy_set(
    policy_dir: Path | str,
    extra_data: Iterable[Path] = (),
    *,
    include_tests: bool = False,
    allow_network: bool = False,
) -> PolicySet:
    """Load ``policy_dir/**.rego`` (tests only when asked), its data files and ``extra_data``.
    A module calling a network built-in (:data:`NETWORK_BUILTINS`) is refused unless ``allow_network``."""
    root = Path(policy_dir)
    if not root.is_dir():
        raise PolicyLoadError(
            f"{root}: policy directory not found (give the folder that holds your .rego files, or none "
            "to use the policies installed with Tribunal)"
        )
    digest = hashlib.sha256()
    modules: list[Module] = []
    for path in sorted(root.rglob("*.rego")):
        relative = path.relative_to(root).as_posix()
        source = _read(path)
        module = Module(path=relative, source=source, package=_package(relative, source))
        if module.is_test and not include_tests:
            continue
        if not allow_network:
            _refuse_network_calls(module)
        modules.append(module)
        digest.update(relative.encode() + b"\0" + source.encode() + b"\0")
    data: dict[str, Any] = {}
    data_files = [p for p in sorted(root.rglob("*")) if p.suffix in (".json", ".yaml", ".yml")]
    # Files in the policy directory must not contradict each other (as OPA insists); files given with
    # --data are the operator's overrides and win.
    for path, override in [*((p, False) for p in data_files), *((Path(p), True) for p in extra_data)]:
        text = _read(path)
        digest.update(str(path.name).encode() + b"\0" + text.encode() + b"\0")
        _merge(data, _parse_data(path, text), str(path), override=override)
    policies: dict[str, PolicyInfo] = {}
    for module in modules:
        info = _policy_info(module)
        if info is None:
            continue
        if info.id in policies:
            raise PolicyLoadError(
                f"{module.path}: policy id {info.id!r} is already used by {policies[info.id].path}"
            )
        policies[info.id] = info
    if not any(m.package == JUDGE_PACKAGE for m in modules):
        raise PolicyLoadError(f"{root}: no module declares package {JUDGE_PACKAGE} (policies/lib/judge.rego)")
    return PolicySet(
        root=str(root),
        modules=tuple(modules),
        data=data,
        policies=policies,
        revision=digest.hexdigest()[:16],
    )


def _refuse_network_calls(module: Module) -> None:
    blanked = _COMMENT_OR_STRING.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), module.source)
    match = _NETWORK_CALL.search(blanked)
    if match is None:
        return
    line = blanked.count("\n", 0, match.start()) + 1
    column = match.start() - (blanked.rfind("\n", 0, match.start()) + 1) + 1
    raise PolicyLoadError(
        f"{module.path}:{line}:{column}: {match.group(1)} reaches the network from inside an evaluation; "
        "refused (set TRIBUNAL_POLICY_ALLOW_NETWORK=true to allow network built-ins)"
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyLoadError(f"{path}: cannot read: {exc}") from None


def _package(path: str, source: str) -> str:
    match = _PACKAGE.search(source)
    if match is None:
        raise PolicyLoadError(f"{path}:1: no package declaration")
    return match.group(1)


def _policy_info(module: Module) -> PolicyInfo | None:
    """A PolicyInfo for modules in ``tribunal.<kind>.<id>``; None for libraries and other packages."""
    parts = module.package.split(".")
    if module.is_test or len(parts) != 3 or parts[0] != "tribunal" or parts[1] == "lib":
        return None
    meta: dict[str, Any] = {}
    match = _METADATA.search(module.source)
    if match:
        line = module.source[: match.start()].count("\n") + 1
        text = "\n".join(row[2:] if row.startswith("# ") else row[1:] for row in match.group(1).splitlines())
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise PolicyLoadError(f"{module.path}:{line}: METADATA is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise PolicyLoadError(f"{module.path}:{line}: METADATA must be a mapping")
        meta = loaded
    custom: dict[str, Any] = meta["custom"] if isinstance(meta.get("custom"), dict) else {}
    fields = {**custom, "title": meta.get("title", ""), "description": meta.get("description", "")}
    fields.update(id=parts[2], kind=parts[1], package=module.package, path=module.path)
    try:
        return PolicyInfo.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise PolicyLoadError(f"{module.path}: METADATA custom.{where}: {err['msg']}") from None


def _parse_data(path: Path, text: str) -> dict[str, Any]:
    try:
        loaded = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise PolicyLoadError(f"{path}: data file is not valid {path.suffix[1:].upper()}: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise PolicyLoadError(f"{path}: a data file must hold a mapping at the top")
    return loaded


def _merge(
    into: dict[str, Any], new: dict[str, Any], origin: str, *, override: bool, path: str = "data"
) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, origin, override=override, path=f"{path}.{key}")
        elif key in into and into[key] != value and not override:
            raise PolicyLoadError(f"{origin}: {path}.{key} is already set by another data file")
        else:
            into[key] = value
