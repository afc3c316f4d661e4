"""Alembic's environment for Tribunal's store.

``tribunal.store.migrations.migrate`` runs it on the connection it hands over in
``config.attributes["connection"]``, already inside the transaction that holds the migration lock, so
every revision of one upgrade and its version row commit together, or none does.

Writing a revision: copy ``script.py.mako``'s shape into ``versions/vNNNN_<slug>.py``; its ``revision``
is the next schema version, four digits ("0006"), its ``down_revision`` the one before (the history is
one line). Never edit a released revision, add one; a revision keeps its own copy of every table it
creates (never ``tribunal.store.schema``'s, which describes only the latest schema)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tribunal.store.migrations import VERSION_TABLE
from tribunal.store.schema import metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode() or not isinstance(connection, Connection):
        raise RuntimeError(
            "Tribunal's migrations run at store start (tribunal.store.migrations.migrate), on its connection"
        )
    context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
