"""The record of verdicts. Sources hand each (evidence, verdict) to a ``Recorder``: ``SqlStore`` keeps
them in SQLite or PostgreSQL and answers the queries of reports and the read API; ``BackgroundRecorder``
keeps recording off the request path."""

from tribunal.store.errors import StoreError
from tribunal.store.migrations import LATEST as SCHEMA_VERSION
from tribunal.store.migrations import migrate, schema_version_of
from tribunal.store.queries import (
    ActionOutcomeRow,
    ActivityRow,
    DailyViolationsRow,
    FindingQuery,
    FindingRow,
    FindingStatus,
    Page,
    StoredEvidence,
    VerdictDetail,
    VerdictQuery,
    VerdictRow,
    ViolationRow,
)
from tribunal.store.recorder import (
    SETTLE_DELAYS,
    ActionOutbox,
    BackgroundRecorder,
    ClaimingRecorder,
    Connecting,
    LogRecorder,
    Outcomes,
    Record,
    Recorder,
    UnsettledActions,
    record_claiming,
    settle_until_done,
)
from tribunal.store.shared import SqlBlockedImages, SqlDedupeWindows, SqlDestructiveBudget
from tribunal.store.sql import SqlStore, create_store_engine

__all__ = [
    "SCHEMA_VERSION",
    "SETTLE_DELAYS",
    "ActionOutbox",
    "ActionOutcomeRow",
    "ActivityRow",
    "BackgroundRecorder",
    "ClaimingRecorder",
    "Connecting",
    "DailyViolationsRow",
    "FindingQuery",
    "FindingRow",
    "FindingStatus",
    "LogRecorder",
    "Outcomes",
    "Page",
    "Record",
    "Recorder",
    "SqlBlockedImages",
    "SqlDedupeWindows",
    "SqlDestructiveBudget",
    "SqlStore",
    "StoreError",
    "StoredEvidence",
    "UnsettledActions",
    "VerdictDetail",
    "VerdictQuery",
    "VerdictRow",
    "ViolationRow",
    "create_store_engine",
    "migrate",
    "record_claiming",
    "schema_version_of",
    "settle_until_done",
]
