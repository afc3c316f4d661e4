"""The exporter protocol: a format only serialises a ``ComplianceReport``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tribunal.reports.model import ComplianceReport


class Exporter(Protocol):
    """``name`` is what ``--format`` and ``?format=`` take."""

    @property
    def name(self) -> str: ...

    @property
    def media_type(self) -> str: ...

    @property
    def suffix(self) -> str: ...

    def render(self, report: ComplianceReport) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Format:
    """An ``Exporter`` made of a name and a pure render function."""

    name: str
    media_type: str
    suffix: str
    renderer: Callable[[ComplianceReport], bytes]

    def render(self, report: ComplianceReport) -> bytes:
        return self.renderer(report)
