"""One Alembic revision per schema version (see ``tribunal.store.migrations``)."""
