"""Framework catalogues (``rules/frameworks/<id>.yaml``): the controls of CIS, NSA/CISA and the Pod
Security Standards, each with the policies whose verdicts evidence it and the kinds of evidence that
assess it (``evidence``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tribunal.model import EvidenceKind, TribunalError

FRAMEWORKS_DIR = "frameworks"
# A catalogue id names a file of rules/frameworks: anything else (a path, a name longer than the file
# system takes) is no catalogue, and never a path to read (``?framework=`` comes from the network).
_CATALOGUE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class FrameworkError(TribunalError, ValueError):
    """A catalogue is missing or invalid; the message names the file and the field."""


class ControlDef(BaseModel):
    """One control. ``policies`` empty means no evidence can speak to it: reported "not assessed".

    ``evidence``: the kinds of evidence (admission, falco, trivy) whose verdicts assess the control, so
    that it passes in a scope where evidence of one of them was judged and nothing fails it. Empty: no
    evidence assesses it ("not assessed"; a finding of a listed policy still fails it, as a runtime
    alert can show a privileged container but its absence shows none). Left out, it is derived from
    the kinds of the listed policies; stated, it may name no kind none of them judges
    (:func:`check_evidence`, on load)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9.:_-]*$")
    title: str = Field(min_length=1)
    description: str = ""
    group: str = ""
    policies: tuple[str, ...] = ()
    evidence: tuple[EvidenceKind, ...] | None = None
    framework: str = Field("", description="set on load: the catalogue the control comes from")

    @field_validator("evidence")
    @classmethod
    def _no_repeats(cls, evidence: tuple[EvidenceKind, ...] | None) -> tuple[EvidenceKind, ...] | None:
        if evidence is not None and len(set(evidence)) != len(evidence):
            raise ValueError("a kind of evidence appears twice")
        return evidence

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


def load_framework(
    rules_dir: Path, framework_id: str, policy_kinds: Mapping[str, EvidenceKind] | None = None
) -> Framework:
    """The catalogue ``framework_id`` with the controls of the catalogues it includes. With
    ``policy_kinds`` (policy id → the kind of evidence it judges, from the loaded policy set) each
    control's ``evidence`` is checked against its policies and derived where the catalogue leaves it
    out (:func:`check_evidence`)."""
    return _load(rules_dir / FRAMEWORKS_DIR, framework_id, (), policy_kinds)


def framework_ids(rules_dir: Path) -> list[str]:
    folder = rules_dir / FRAMEWORKS_DIR
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_frameworks(
    rules_dir: Path, policy_kinds: Mapping[str, EvidenceKind] | None = None
) -> dict[str, Framework]:
    """Every catalogue of ``rules_dir/frameworks``."""
    return {fid: load_framework(rules_dir, fid, policy_kinds) for fid in framework_ids(rules_dir)}


def policy_evidence(control: ControlDef, policy_kinds: Mapping[str, EvidenceKind]) -> set[EvidenceKind]:
    """The kinds of evidence the control's listed policies judge (policies not loaded are left out)."""
    return {policy_kinds[p] for p in control.policies if p in policy_kinds}


def check_evidence(
    framework: Framework, policy_kinds: Mapping[str, EvidenceKind], source: str = ""
) -> Framework:
    """``framework`` with every control's ``evidence`` stated: as the catalogue states it, refused when
    it names a kind that none of the control's policies judges (a catalogue cannot claim that Trivy
    reports assess a control only admission policies speak to), else the kinds of its policies. When
    some listed policies are not loaded, the stated kinds are kept as far as loaded policies judge them."""
    checked = []
    for index, control in enumerate(framework.controls):
        judged = policy_evidence(control, policy_kinds)
        stated = control.evidence
        if stated is None:
            order = list(EvidenceKind)
            control = control.model_copy(update={"evidence": tuple(sorted(judged, key=order.index))})
        elif any(p not in policy_kinds for p in control.policies):
            # A policy directory without some of the listed policies (a custom library): the claim
            # cannot be checked, and only the kinds its loaded policies judge can assess the control.
            control = control.model_copy(update={"evidence": tuple(k for k in stated if k in judged)})
        else:
            claimed = [k.value for k in stated if k not in judged]
            if claimed:
                by = ", ".join(control.policies) or "no policy"
                raise FrameworkError(
                    f"{source or framework.id}: controls[{index}] ({control.id}).evidence: "
                    f"{', '.join(claimed)} evidence is judged by none of its policies ({by})"
                )
        checked.append(control)
    return framework.model_copy(update={"controls": tuple(checked)})


def _load(
    folder: Path,
    framework_id: str,
    chain: tuple[str, ...],
    policy_kinds: Mapping[str, EvidenceKind] | None = None,
) -> Framework:
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
    if policy_kinds is not None:
        framework = check_evidence(framework, policy_kinds, str(path))
    included = [
        c
        for inc in framework.includes
        for c in _load(folder, inc, (*chain, framework_id), policy_kinds).controls
    ]
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
