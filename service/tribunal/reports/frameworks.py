"""Framework catalogues (``rules/frameworks/<id>.yaml``): the controls of CIS, NSA/CISA and the Pod
Security Standards, each with the policies whose verdicts evidence it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tribunal.model import TribunalError

FRAMEWORKS_DIR = "frameworks"
# A catalogue id names a file of rules/frameworks: anything else (a path, a name longer than the file
# system takes) is no catalogue, and never a path to read (``?framework=`` comes from the network).
_CATALOGUE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class FrameworkError(TribunalError, ValueError):
    """A catalogue is missing or invalid; the message names the file and the field."""


class ControlDef(BaseModel):
    """One control. ``policies`` empty means no evidence can speak to it: reported "not assessed"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9.:_-]*$")
    title: str = Field(min_length=1)
    description: str = ""
    group: str = ""
    policies: tuple[str, ...] = ()
    framework: str = Field("", description="set on load: the catalogue the control comes from")

    @property
    def full_id(self) -> str:
        """``<framework>:<id>``, as policies name controls in their violations."""
        return f"{self.framework}:{self.id}"


class Framework(BaseModel):
    """A catalogue; ``includes`` pulls in every control of other catalogues (Restricted includes Baseline)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    version: str = ""
    url: str = ""
    description: str = ""
    includes: tuple[str, ...] = ()
    controls: tuple[ControlDef, ...] = Field(min_length=1)

    @field_validator("controls")
    @classmethod
    def _unique(cls, controls: tuple[ControlDef, ...]) -> tuple[ControlDef, ...]:
        seen: set[str] = set()
        for c in controls:
            if c.id in seen:
                raise ValueError(f"control id {c.id!r} appears twice")
            seen.add(c.id)
        return controls

    @model_validator(mode="after")
    def _owned(self) -> Framework:
        owned = tuple(
            c if c.framework else c.model_copy(update={"framework": self.id}) for c in self.controls
        )
        object.__setattr__(self, "controls", owned)
        return self

    @property
    def policies(self) -> set[str]:
        return {p for c in self.controls for p in c.policies}


def load_framework(rules_dir: Path, framework_id: str) -> Framework:
    """The catalogue ``framework_id`` with the controls of the catalogues it includes."""
    return _load(rules_dir / FRAMEWORKS_DIR, framework_id, ())


def framework_ids(rules_dir: Path) -> list[str]:
    folder = rules_dir / FRAMEWORKS_DIR
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_frameworks(rules_dir: Path) -> dict[str, Framework]:
    """Every catalogue of ``rules_dir/frameworks``."""
    return {fid: load_framework(rules_dir, fid) for fid in framework_ids(rules_dir)}


def _load(folder: Path, framework_id: str, chain: tuple[str, ...]) -> Framework:
    if not _CATALOGUE_ID.fullmatch(framework_id):
        known = ", ".join(p.stem for p in sorted(folder.glob("*.yaml"))) or "none"
        raise FrameworkError(f"{framework_id[:80]!r}: no such framework catalogue (known: {known})")
    path = folder / f"{framework_id}.yaml"
    if framework_id in chain:
        raise FrameworkError(f"{path}: includes: cycle {' -> '.join((*chain, framework_id))}")
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(folder.glob("*.yaml"))) or "none"
        raise FrameworkError(f"{path}: no such framework catalogue (known: {known})")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise FrameworkError(f"{path}: not YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FrameworkError(f"{path}: cannot be read: {exc}") from None
    if not isinstance(doc, dict):
        raise FrameworkError(f"{path}: a catalogue is a mapping with id, title and controls")
    try:
        framework = Framework.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = _field(doc, first["loc"])
        raise FrameworkError(f"{path}: {field}: {first['msg']}") from None
    if framework.id != framework_id:
        raise FrameworkError(f"{path}: id: {framework.id!r} differs from the file name {framework_id!r}")
    included = [c for inc in framework.includes for c in _load(folder, inc, (*chain, framework_id)).controls]
    if not included:
        return framework
    return framework.model_copy(update={"controls": (*included, *framework.controls)})


def _field(doc: dict[str, object], loc: tuple[int | str, ...]) -> str:
    """``controls[3] (5.2.2).policies`` rather than ``controls.3.policies``."""
    parts: list[str] = []
    node: object = doc
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and key < len(node):
                node = node[key]
                if isinstance(node, dict) and "id" in node:
                    label += f" ({node['id']})"
            parts.append(label)
        else:
            node = node.get(key) if isinstance(node, dict) else None
            parts.append(("." if parts else "") + key)
    return "".join(parts)
