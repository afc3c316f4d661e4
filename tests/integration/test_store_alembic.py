"""The store's Alembic migrations on SQLite and PostgreSQL: a database that the hand-written runner of
the releases before Alembic left at any schema version (1 to 5) upgrades to the very schema of a fresh
database; the revisions build the tables ``tribunal.store.schema`` describes; a newer database is
refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text

from tests.integration import legacy_migrations as legacy
from tests.integration.conftest import create_pg_database, drop_pg_database, pg_url
from tribunal.store import (
    SCHEMA_VERSION,
    SqlStore,
    StoreError,
    create_store_engine,
    migrate,
    schema_version_of,
)
from tribunal.store import schema as tables
from tribunal.store.migrations import VERSION_TABLE


@pytest.fixture
async def fresh_url(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A second empty database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    admin_dsn: str = request.getfixturevalue("postgres_admin")
    name = await create_pg_database(admin_dsn)
    try:
        yield pg_url(admin_dsn, name)
    finally:
        await drop_pg_database(admin_dsn, name)


def _reflect(conn: Connection) -> dict[str, Any]:
    """Every table's columns, primary key, indexes, unique constraints and foreign keys."""
    inspector = inspect(conn)
    found: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        found[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            "foreign_keys": sorted(str(f) for f in inspector.get_foreign_keys(table)),
        }
    return found


def _versions(conn: Connection) -> tuple[list[int], str | None]:
    recorded = conn.execute(select(tables.schema_version.c.version).order_by("version")).scalars().all()
    revision = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    return list(recorded), revision


async def _state(url: str) -> tuple[dict[str, Any], tuple[list[int], str | None]]:
    engine = create_store_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_reflect), await conn.run_sync(_versions)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("old", range(1, legacy.LATEST + 1))
async def test_a_database_of_every_released_schema_upgrades_to_a_fresh_ones_schema(
    database_url: str, fresh_url: str, old: int
) -> None:
    engine = create_store_engine(database_url)
    try:
        assert await legacy.migrate(engine, target=old) == list(range(1, old + 1))
        assert await schema_version_of(engine) == old
        assert await migrate(engine) == list(range(old + 1, SCHEMA_VERSION + 1))
        assert await schema_version_of(engine) == SCHEMA_VERSION
        assert await migrate(engine) == []
    finally:
        await engine.dispose()
    fresh_engine = create_store_engine(fresh_url)
    try:
        assert await migrate(fresh_engine) == list(range(1, SCHEMA_VERSION + 1))
    finally:
        await fresh_engine.dispose()

    upgraded, fresh = await _state(database_url), await _state(fresh_url)
    assert upgraded[0] == fresh[0]
    assert set(upgraded[0]) >= {"evidence", "verdicts", "findings", "blocked_images", VERSION_TABLE}
    assert "violations" not in upgraded[0]  # dropped by version 4
    assert upgraded[1] == fresh[1] == (list(range(1, SCHEMA_VERSION + 1)), f"{SCHEMA_VERSION:04d}")


async def test_the_revisions_build_the_tables_the_store_describes(database_url: str) -> None:
    async with SqlStore(database_url) as store, store.engine.connect() as conn:
        differences = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": False}), tables.metadata
            )
        )
    # Only Alembic's own version table is not described by the store's metadata.
    assert [d for d in differences if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)] == []


async def test_a_release_before_alembic_reads_the_version_and_refuses_a_newer_one(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The releases before Alembic read tribunal_schema_version: every version applied is still
    recorded there, so one that knows the latest version runs on, and an older one refuses."""
    engine = create_store_engine(database_url)
    try:
        await migrate(engine)
        assert await legacy.migrate(engine) == []
        monkeypatch.setattr(legacy, "LATEST", SCHEMA_VERSION - 1)
        with pytest.raises(
            StoreError, match=f"schema version {SCHEMA_VERSION} is newer than this Tribunal's"
        ):
            await legacy.migrate(engine, target=SCHEMA_VERSION - 1)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("revision", "shown"), [("0099", "99"), ("f00dcafe1234", "'f00dcafe1234'")])
async def test_a_newer_alembic_revision_is_refused(database_url: str, revision: str, shown: str) -> None:
    engine = create_store_engine(database_url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = :r"), {"r": revision})
        with pytest.raises(StoreError, match=f"schema version {shown} is newer than this Tribunal's"):
            await migrate(engine)
        with pytest.raises(StoreError, match="is newer"):
            await SqlStore(database_url).start()
    finally:
        await engine.dispose()
