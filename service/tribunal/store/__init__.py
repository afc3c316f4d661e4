"""The record of verdicts. Sources hand each (evidence, verdict) to a ``Recorder``: ``SqlStore`` keeps
them in SQLite or PostgreSQL and answers the queries of reports and the read API; ``BackgroundRecorder``
keeps recording off the request path."""

from tribunal.store.errors import StoreError
from tribunal.store.migrations import LATEST as SCHEMA_VERSION
from tribunal.store.migrations import migrate, schema_version_of
from tribunal.store.queries import (
    ActivityRow,
    DailyViolationsRow,
    FindingQuery,
    FindingRow,
    FindingStatus,
    Page,
    StoredEvidence,
    VerdictQuery,
    VerdictRow,
    ViolationRow,
)
from tribunal.store.recorder import (
    ActionOutbox,
    BackgroundRecorder,
    ClaimingRecorder,
    LogRecorder,
    Record,
    Recorder,
    UnsettledActions,
    record_claiming,
)
from tribunal.store.sql import SqlStore, create_store_engine

__all__ = [
    "SCHEMA_VERSION",
    "ActionOutbox",
    "ActivityRow",
    "BackgroundRecorder",
    "ClaimingRecorder",
    "DailyViolationsRow",
    "FindingQuery",
    "FindingRow",
    "FindingStatus",
    "LogRecorder",
    "Page",
    "Record",
    "Recorder",
    "SqlStore",
    "StoreError",
    "StoredEvidence",
    "UnsettledActions",
    "VerdictQuery",
    "VerdictRow",
    "ViolationRow",
    "create_store_engine",
    "migrate",
    "record_claiming",
    "schema_version_of",
]
