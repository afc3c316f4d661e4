"""The record of verdicts. Sources hand each (evidence, verdict) to a ``Recorder``; the store issue brings
the database-backed one. ``BackgroundRecorder`` keeps recording off the request path."""

from tribunal.store.recorder import BackgroundRecorder, LogRecorder, Record, Recorder

__all__ = ["BackgroundRecorder", "LogRecorder", "Record", "Recorder"]
