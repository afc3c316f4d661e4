"""The store's database URL is checked before anything connects: a clear error names what is wrong."""

from __future__ import annotations

import sqlite3

import pytest

from tribunal.store import StoreError, create_store_engine


def test_an_sqlite_older_than_the_writes_need_is_refused_with_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(StoreError, match=r"SQLite 3\.35 or newer .* this Python has SQLite 3\.31\.1"):
        create_store_engine("sqlite+aiosqlite:///tribunal.db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///tribunal.db", "use sqlite\\+aiosqlite://"),
        ("postgresql://db/tribunal", "use postgresql\\+asyncpg://"),
        ("mysql+aiomysql://db/tribunal", "unsupported database 'mysql'"),
    ],
)
def test_a_url_without_a_supported_async_driver_is_refused(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        create_store_engine(url)


def test_a_refused_priority_change_leaves_the_thread_as_it_was(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import os

    from tribunal.store.sql import lower_thread_priority

    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    assert lower_thread_priority(10) == 0
    assert "could not lower the priority of a database thread" in caplog.text
    assert lower_thread_priority(0) == 0  # 0 asks for nothing
