"""The exception roots every layer uses."""

from __future__ import annotations


class TribunalError(Exception):
    """Root of every error Tribunal raises on purpose."""


class EvidenceError(TribunalError, ValueError):
    """A document could not be read or validated as evidence.

    ``source`` names the file or message (``pod.json``, ``alerts.jsonl:3``, ``falco-events[2]@41``),
    ``field`` the dotted path of the offending field where one is known.
    """

    def __init__(self, source: str, message: str, field: str | None = None) -> None:
        self.source = source
        self.field = field
        self.message = message
        where = f"{source}: {field}: " if field else f"{source}: "
        super().__init__(where + message)
