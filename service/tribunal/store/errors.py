"""Errors of the store."""

from __future__ import annotations

from tribunal.model import TribunalError


class StoreError(TribunalError):
    """The database cannot be used as asked (bad URL, newer schema, bad cursor)."""
