"""Schema migrations with Alembic, run from code (what `agentflows db upgrade` calls).

The migration scripts ship inside the package (`tasks/storage/migrations`), so
upgrading works from any working directory and from an installed wheel.

Policy: the embedded SQLite database is migrated when a store opens it; any
other database is migrated by `agentflows db upgrade` and a store refuses to
open it until then. Migrations run in one transaction that holds a lock (an
exclusive transaction on SQLite, an advisory lock on PostgreSQL), so processes
that migrate the same database at once do it one after the other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK = 0x61676E74
"""PostgreSQL advisory lock key held while migrating (any constant; "agnt")."""

# Alembic's `context` and `op` are module-level proxies: one migration at a time per process.
_in_process = threading.Lock()


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest revision the shipped migrations define."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """Every revision the shipped migrations define."""
    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}


def revision_of(connection: Connection) -> str | None:
    """The revision the database is at (None for a database agentflows never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The revision the database behind `engine` is at."""
    with engine.connect() as connection:
        return revision_of(connection)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    with _locked(engine) as connection:
        _run(command.upgrade, connection, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database down to `revision` (`base` removes every table)."""
    with _locked(engine) as connection:
        _run(command.downgrade, connection, revision)


def _run(operation: Any, connection: Connection, revision: str) -> None:
    config = _config()
    config.attributes["connection"] = connection
    operation(config, revision)


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other migration of the same database runs beside."""
    with _in_process:
        if engine.dialect.name != "sqlite":
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
                yield connection
            return
        # pysqlite opens transactions lazily, after the revision was read; take the write lock first.
        exclusive = create_engine(engine.url, poolclass=NullPool, connect_args={"timeout": 60, "isolation_level": None})
        event.listen(exclusive, "begin", lambda connection: connection.exec_driver_sql("BEGIN EXCLUSIVE"))
        try:
            with exclusive.begin() as connection:
                yield connection
        finally:
            exclusive.dispose()
