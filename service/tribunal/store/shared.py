"""State the replicas on one database share (schema 5), for the actions: the dedupe windows, the
blast-radius budget of destructive actions, and the blocked images. They fit the Protocols of
``tribunal.actions`` (``DedupeWindows``, ``DestructiveBudget``, ``SharedBlocklist``) without
importing them (the store sits below the actions).

Every method raises when the database does not answer (a ``StoreError`` while the store has not
connected yet); what that means for acting is the caller's choice (docs/actions.md). The same SQL runs
on SQLite and PostgreSQL; PostgreSQL adds an advisory lock per namespace for the budget and
LISTEN/NOTIFY for the blocklist. Times come from this process's clock (``clock``): replicas are
expected to keep theirs synchronised (NTP), as Kubernetes nodes do."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import case, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from tribunal.store import schema
from tribunal.store.sql import SqlStore

log = logging.getLogger("tribunal.store")

# The channel of PostgreSQL notifications that the blocked images changed.
BLOCKED_IMAGES_CHANNEL = "tribunal_blocked_images"
# The row of ``blocked_images`` that says the table was seeded (never an image key: those are
# digests or references with a '/').
SEEDED = "tribunal:seeded"
# The first key of the budget's advisory locks (the second is the namespace's hash): "trib".
_BUDGET_LOCK_CLASS = 0x7472_6962
# Expired rows are deleted at most this often (seconds) by each replica.
CLEANUP_EVERY = 60.0


def _now() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def _write(store: SqlStore) -> AsyncIterator[AsyncConnection]:
    async with store.engine.connect() as conn:
        await conn.execution_options(tribunal_write=True)
        async with conn.begin():
            yield conn


def _insert(conn: AsyncConnection, table: Any) -> Any:
    """INSERT with ON CONFLICT for the connection's dialect."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def dedupe_key(key: tuple[str, ...]) -> str:
    """The stored form of a dedupe key: its sha256 (keys carry subjects and policy lists of any length)."""
    return hashlib.sha256("\x1f".join(key).encode()).hexdigest()


class SqlDedupeWindows:
    """Dedupe windows in table ``dedupe_windows``, one row per key: claiming is one INSERT ... ON
    CONFLICT DO UPDATE ... RETURNING, so of the replicas claiming a key at once exactly one starts its
    window; the others count a repeat. The window remembers its ``owner`` (the evidence that started
    it), which may claim it again: the outbox sweep replaying a verdict whose replica died between
    claiming and acting acts, where any other evidence is a repeat."""

    def __init__(self, store: SqlStore, clock: Callable[[], datetime] = _now) -> None:
        self.store = store
        self.clock = clock
        self._cleaned = 0.0

    async def claim(self, key: tuple[str, ...], window: float, owner: str | None = None) -> int:
        if window <= 0:
            return 0
        now = self.clock()
        owner = owner or None  # NULL never equals another: no owner, no second claim
        table = schema.dedupe_windows
        async with _write(self.store) as conn:
            until = now + timedelta(seconds=window)
            insert = _insert(conn, table).values(key=dedupe_key(key), until=until, repeats=0, owner=owner)
            expired = table.c.until <= now
            own = table.c.owner == insert.excluded.owner
            claim = insert.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "until": case((expired, insert.excluded.until), else_=table.c.until),
                    "repeats": case((expired, 0), (own, table.c.repeats), else_=table.c.repeats + 1),
                    "owner": case((expired, insert.excluded.owner), else_=table.c.owner),
                },
            ).returning(table.c.repeats, table.c.owner)
            repeats, holder = (await conn.execute(claim)).one()
            if time.monotonic() - self._cleaned > CLEANUP_EVERY:
                self._cleaned = time.monotonic()
                await conn.execute(table.delete().where(table.c.until <= now))
        return 0 if owner is not None and holder == owner else int(repeats)

    async def release(self, key: tuple[str, ...]) -> None:
        table = schema.dedupe_windows
        async with _write(self.store) as conn:
            await conn.execute(table.delete().where(table.c.key == dedupe_key(key)))


class SqlDestructiveBudget:
    """At most ``per_minute`` destructive actions per namespace in any sliding minute, counted in table
    ``destructive_actions`` (a row per action taken) by every replica. Taking a slot is one
    transaction that holds the namespace's lock: an advisory lock on PostgreSQL, the write lock on
    SQLite (``BEGIN IMMEDIATE``)."""

    def __init__(self, store: SqlStore, per_minute: int, clock: Callable[[], datetime] = _now) -> None:
        self.store = store
        self.per_minute = per_minute
        self.clock = clock
        self._cleaned = 0.0

    async def take(self, namespace: str) -> bool:
        if self.per_minute <= 0:
            return False
        now = self.clock()
        since = now - timedelta(minutes=1)
        table = schema.destructive_actions
        async with _write(self.store) as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:cls, hashtext(:namespace))"),
                    {"cls": _BUDGET_LOCK_CLASS, "namespace": namespace},
                )
            if time.monotonic() - self._cleaned > CLEANUP_EVERY:
                self._cleaned = time.monotonic()
                await conn.execute(table.delete().where(table.c.taken_at <= since))
            taken = (
                await conn.execute(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.namespace == namespace, table.c.taken_at > since)
                )
            ).scalar_one()
            if taken >= self.per_minute:
                return False
            await conn.execute(table.insert().values(namespace=namespace, taken_at=now))
        return True


class _PgListening:
    """A connection held for LISTEN; ``alive`` until PostgreSQL or the network closes it."""

    def __init__(self, conn: AsyncConnection, driver: Any, callback: Callable[..., None]) -> None:
        self._conn = conn
        self._driver = driver
        self._callback = callback

    @property
    def alive(self) -> bool:
        return not self._driver.is_closed()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.alive:
                await self._driver.remove_listener(BLOCKED_IMAGES_CHANNEL, self._callback)
        with contextlib.suppress(Exception):
            await self._conn.invalidate()  # never back into the pool: it listened
        with contextlib.suppress(Exception):
            await self._conn.close()


class SqlBlockedImages:
    """The blocked images in table ``blocked_images`` (an entry as JSON per key). On PostgreSQL a
    change notifies channel ``tribunal_blocked_images`` (at commit), which ``listen`` follows."""

    def __init__(self, store: SqlStore, clock: Callable[[], datetime] = _now) -> None:
        self.store = store
        self.clock = clock

    async def load(self) -> dict[str, dict[str, Any]]:
        table = schema.blocked_images
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(table.c.key, table.c.entry).where(table.c.key != SEEDED))).all()
        entries: dict[str, dict[str, Any]] = {}
        for key, entry in rows:
            try:
                value = orjson.loads(entry)
            except orjson.JSONDecodeError:
                log.warning("blocked image %s: its entry is not JSON; ignored", key)
                continue
            if isinstance(value, dict):
                entries[str(key)] = value
        return entries

    async def put(self, key: str, entry: dict[str, Any], same_if: Sequence[str] = ()) -> bool:
        table = schema.blocked_images
        async with _write(self.store) as conn:
            query = select(table.c.entry).where(table.c.key == key)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            stored = (await conn.execute(query)).scalar_one_or_none()
            if stored is not None and same_if:
                with contextlib.suppress(orjson.JSONDecodeError):
                    previous = orjson.loads(stored)
                    if isinstance(previous, dict) and all(previous.get(f) == entry.get(f) for f in same_if):
                        return False
            body = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS).decode()
            upsert = _insert(conn, table).values(key=key, entry=body, updated_at=self.clock())
            await conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[table.c.key],
                    set_={"entry": upsert.excluded.entry, "updated_at": upsert.excluded.updated_at},
                )
            )
            await self._notify(conn, key)
        return True

    async def seed(self, entries: dict[str, dict[str, Any]]) -> int:
        """Store ``entries`` (those whose key is free) if this database's blocklist was never seeded,
        and mark it seeded; how many were stored."""
        table = schema.blocked_images
        async with _write(self.store) as conn:
            mark = (
                _insert(conn, table)
                .values(key=SEEDED, entry="{}", updated_at=self.clock())
                .on_conflict_do_nothing(index_elements=[table.c.key])
                .returning(table.c.key)
            )
            if (await conn.execute(mark)).first() is None:
                return 0
            if not entries:
                return 0
            rows = [
                {
                    "key": key,
                    "entry": orjson.dumps(entry, option=orjson.OPT_SORT_KEYS).decode(),
                    "updated_at": self.clock(),
                }
                for key, entry in entries.items()
            ]
            stored = 0
            for row in rows:
                insert = (
                    _insert(conn, table).values(**row).on_conflict_do_nothing(index_elements=[table.c.key])
                )
                stored += len((await conn.execute(insert.returning(table.c.key))).all())
            await self._notify(conn, "seeded")
        return stored

    async def delete(self, keys: Sequence[str]) -> list[str]:
        keys = [k for k in keys if k != SEEDED]
        if not keys:
            return []
        table = schema.blocked_images
        async with _write(self.store) as conn:
            result = await conn.execute(
                table.delete().where(table.c.key.in_(list(keys))).returning(table.c.key)
            )
            removed = sorted(str(row[0]) for row in result)
            if removed:
                await self._notify(conn, ",".join(removed)[:7000])
        return removed

    async def _notify(self, conn: AsyncConnection, payload: str) -> None:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": BLOCKED_IMAGES_CHANNEL, "payload": payload},
            )

    async def listen(self, notify: Callable[[], None]) -> _PgListening | None:
        """Call ``notify`` on every change that any replica commits (PostgreSQL); None on SQLite."""
        engine = self.store.engine
        if engine.dialect.name != "postgresql":
            return None
        conn = await engine.connect()
        try:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None

            def callback(*_: Any) -> None:
                notify()

            await driver.add_listener(BLOCKED_IMAGES_CHANNEL, callback)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        return _PgListening(conn, driver, callback)
