"""Export formats: one module each, registered here (a new format is one module and one line)."""

from __future__ import annotations

from tribunal.reports.formats import csv, html, json, oscal, policyreport, sarif
from tribunal.reports.formats.base import Exporter, Format

FORMATS: dict[str, Exporter] = {
    f.name: f
    for f in (
        json.FORMAT,
        csv.FORMAT,
        html.FORMAT,
        policyreport.FORMAT,
        sarif.FORMAT,
        oscal.FORMAT,
    )
}


def get_format(name: str) -> Exporter:
    """The exporter called ``name``; ValueError naming the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"format: unknown {name!r} (known: {', '.join(FORMATS)})") from None


__all__ = ["FORMATS", "Exporter", "Format", "get_format"]
