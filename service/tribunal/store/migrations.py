"""Schema migrations: Alembic's, shipped in the package (``tribunal/store/alembic``: ``env.py`` and one
revision per schema version in ``versions/``), run in place at store start by :func:`migrate`, with no
``alembic.ini``. Replicas starting together take a lock first (an advisory lock on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), so exactly one of them upgrades, in one transaction.

Schema versions stay numbers: revision ``"0004"`` is schema version 4. Releases before Alembic kept
the version in ``tribunal_schema_version`` (one row per migration applied, by a hand-written runner);
such a database is stamped at the matching revision, then upgraded. That table is still written, one
row per version applied, so a release from before Alembic refuses a newer database with its own clear
message instead of failing midway."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tribunal.store import schema
from tribunal.store.errors import StoreError

if TYPE_CHECKING:  # Alembic itself is imported when the store starts: a third of a second
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Any constant shared by every replica: the key of the PostgreSQL advisory lock held while migrating.
_PG_LOCK_KEY = 0x7472_6962_756E_616C  # "tribunal"
# Alembic's version table, named for Tribunal: a database may be shared with another Alembic user.
VERSION_TABLE = "tribunal_alembic_version"
SCRIPTS = Path(__file__).with_name("alembic")

# Alembic says which dialect it uses and whether DDL is transactional, at INFO, on every start; its
# upgrades are logged by the store ("database schema upgraded"). Unless configured otherwise.
if logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)


def revision_of(version: int) -> str:
    """The Alembic revision of schema version ``version``."""
    return f"{version:04d}"


def _version(revision: str) -> int | None:
    return int(revision) if revision.isdigit() else None


@cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(SCRIPTS))
    if scripts.get_current_head() != revision_of(LATEST):
        raise RuntimeError(f"{SCRIPTS}: the head revision is not {revision_of(LATEST)} (the latest file's)")
    return scripts


@cache
def _descriptions() -> dict[str, str]:
    """Every revision's description (the first line of its docstring), by revision."""
    return {script.revision: script.doc for script in _scripts().walk_revisions()}


def _config(conn: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = conn
    return config


def _latest() -> int:
    """The latest schema version, read from the revisions' file names (``vNNNN_<slug>.py``) without
    loading Alembic; checked against Alembic's head when the revisions are loaded."""
    found = [re.fullmatch(r"v(\d{4})_\w+\.py", path.name) for path in (SCRIPTS / "versions").iterdir()]
    return max(int(m[1]) for m in found if m)


LATEST = _latest()


def _legacy_version(conn: Connection) -> int:
    """The version the pre-Alembic runner recorded (also written since), 0 when none."""
    if not conn.dialect.has_table(conn, schema.schema_version.name):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(schema.schema_version.c.version), 0))).scalar_one())


def _alembic_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def current_version(conn: Connection) -> int:
    """The schema version of the database, 0 when it holds no Tribunal schema. A revision that is not
    a schema version (of a later, different Tribunal) counts as newer than any."""
    revision = _alembic_revision(conn)
    if revision is None:
        return _legacy_version(conn)
    version = _version(revision)
    return max(version if version is not None else LATEST + 1, _legacy_version(conn))


def _migrate(conn: Connection, target: int) -> list[int]:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    revision, legacy = _alembic_revision(conn), _legacy_version(conn)
    version = current_version(conn)
    if version > LATEST or (revision is not None and revision not in _descriptions()):
        shown = version if revision is None or _version(revision) is not None else repr(revision)
        raise StoreError(
            f"the database's schema version {shown} is newer than this Tribunal's ({LATEST}): "
            "upgrade Tribunal, or point TRIBUNAL_DATABASE_URL at another database"
        )
    from alembic import command

    config = _config(conn)
    if revision is None and legacy:  # upgraded by the runner of the releases before Alembic
        command.stamp(config, revision_of(legacy))
    if target <= version:
        return []
    command.upgrade(config, revision_of(target))
    schema.schema_version.create(conn, checkfirst=True)
    applied = list(range(version + 1, target + 1))
    for number in applied:
        conn.execute(
            schema.schema_version.insert().values(
                version=number, description=_descriptions()[revision_of(number)], applied_at=datetime.now(UTC)
            )
        )
    return applied


async def migrate(engine: AsyncEngine, target: int = LATEST) -> list[int]:
    """Upgrade the database in place to schema version ``target``; returns the versions applied
    (often none)."""
    async with engine.connect() as conn:
        await conn.execution_options(tribunal_write=True)
        async with conn.begin():
            return await conn.run_sync(_migrate, target)


async def schema_version_of(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await conn.run_sync(current_version)
