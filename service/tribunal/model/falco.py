"""A Falco alert as Falco's JSON output and falcosidekick send it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from tribunal.model.common import Severity


class FalcoPriority(StrEnum):
    EMERGENCY = "emergency"
    ALERT = "alert"
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"
    INFORMATIONAL = "informational"
    DEBUG = "debug"

    @property
    def severity(self) -> Severity:
        """Falco's eight priorities on Tribunal's five-step scale."""
        return _SEVERITY[self]


_SEVERITY = {
    FalcoPriority.EMERGENCY: Severity.CRITICAL,
    FalcoPriority.ALERT: Severity.CRITICAL,
    FalcoPriority.CRITICAL: Severity.CRITICAL,
    FalcoPriority.ERROR: Severity.HIGH,
    FalcoPriority.WARNING: Severity.MEDIUM,
    FalcoPriority.NOTICE: Severity.LOW,
    FalcoPriority.INFORMATIONAL: Severity.INFO,
    FalcoPriority.DEBUG: Severity.INFO,
}
_PRIORITY_ALIASES = {
    "info": "informational",
    "warn": "warning",
    "err": "error",
    "crit": "critical",
    "emerg": "emergency",
}
# What ``priority`` accepts, for its JSON schema (/openapi.json): a priority or alias in any case.
PRIORITY_PATTERN = (
    r"^\s*(?:"
    + "|".join("".join(f"[{c}{c.upper()}]" for c in word) for word in [*FalcoPriority, *_PRIORITY_ALIASES])
    + r")\s*$"
)


class FalcoAlert(BaseModel):
    """One alert. ``time``, ``rule`` and ``priority`` are required; the rest is optional, as in the wild."""

    model_config = ConfigDict(extra="allow")

    uuid: str | None = Field(None, max_length=128)
    time: datetime
    rule: str = Field(min_length=1, max_length=1024)
    priority: FalcoPriority
    output: str = Field("", max_length=1_048_576)
    output_fields: dict[str, Any] = Field(default_factory=dict)
    source: str = Field("syscall", max_length=256)
    tags: list[str] = Field(default_factory=list)
    hostname: str = Field("", max_length=253)

    @field_validator(
        "priority",
        mode="before",
        json_schema_input_type=Annotated[str, StringConstraints(pattern=PRIORITY_PATTERN)],
    )
    @classmethod
    def _priority_any_case(cls, value: object) -> object:
        if isinstance(value, str):
            lowered = value.strip().lower()
            return _PRIORITY_ALIASES.get(lowered, lowered)
        return value

    @field_validator("output_fields", mode="before", json_schema_input_type=dict[str, Any] | None)
    @classmethod
    def _null_fields(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("tags", mode="before", json_schema_input_type=list[str] | None)
    @classmethod
    def _null_tags(cls, value: object) -> object:
        return [] if value is None else value

    @property
    def severity(self) -> Severity:
        return self.priority.severity

    def field(self, name: str) -> str | None:
        """An output field as text, or None where Falco sent none or ``<NA>``."""
        value = self.output_fields.get(name)
        if value is None or value == "<NA>":
            return None
        return str(value)
