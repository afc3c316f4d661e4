"""Per-policy enforcement (deny | warn | dryrun): a policy's METADATA gives the default, the
operator's ``rules/enforcement.yaml`` overrides it globally and per namespace."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tribunal.model import Enforcement
from tribunal.policy.errors import PolicyLoadError

ENFORCEMENT_FILE = "enforcement.yaml"


class EnforcementConfig(BaseModel):
    """``policies``: policy id → mode; ``namespaces``: namespace → (policy id or ``*`` → mode)."""

    model_config = ConfigDict(extra="forbid")

    policies: dict[str, Enforcement] = Field(default_factory=dict)
    namespaces: dict[str, dict[str, Enforcement]] = Field(default_factory=dict)

    def resolve(self, policy_id: str, default: Enforcement, namespace: str | None = None) -> Enforcement:
        if namespace is not None and namespace in self.namespaces:
            scoped = self.namespaces[namespace]
            if policy_id in scoped:
                return scoped[policy_id]
            if "*" in scoped:
                return scoped["*"]
        return self.policies.get(policy_id, default)

    def check_policies(self, known: Iterable[str], source: str = ENFORCEMENT_FILE) -> None:
        """PolicyLoadError naming the first policy id no policy has (a typo would silently leave a
        policy at its default enforcement), with the closest known id."""
        ids = sorted(set(known))
        named = [("policies", pid) for pid in self.policies]
        named += [(f"namespaces.{ns}", pid) for ns, scoped in self.namespaces.items() for pid in scoped]
        for where, pid in named:
            if pid != "*" and pid not in ids:
                close = difflib.get_close_matches(pid, ids, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PolicyLoadError(f"{source}: {where}.{pid}: no policy has the id {pid!r}{hint}")


def load_enforcement(rules_dir: Path | str | None) -> EnforcementConfig:
    """``<rules_dir>/enforcement.yaml``, or no overrides when it is absent."""
    if rules_dir is None:
        return EnforcementConfig()
    path = Path(rules_dir) / ENFORCEMENT_FILE
    if not path.exists():
        return EnforcementConfig()
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return EnforcementConfig.model_validate(loaded)
    except yaml.YAMLError as exc:
        raise PolicyLoadError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise PolicyLoadError(f"{path}: {where}: {err['msg']}") from None
