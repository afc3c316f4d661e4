"""The store's schema migrations, as Alembic scripts: ``env.py`` and one file per revision in
``versions/``. ``tribunal.store.migrations.migrate`` runs them at store start; no ``alembic.ini``."""
