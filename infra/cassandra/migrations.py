"""Versioned schema migrations for a Glimpse keyspace.

Two kinds of steps, both safe to run again:
- Files `migrations/NNNN_name.cql`, applied in version order, each once. Applied
  versions are recorded in `schema_migrations(version, name, applied_at, checksum)`;
  a recorded file whose text has changed since is refused (write a new migration
  instead). `$keyspace` in a file stands for the keyspace. Statements are split on
  `;` and should be idempotent (IF NOT EXISTS), so a run interrupted half-way can
  simply run again.
- The read-model tables, generated from the projections' `Table` specs
  (`infra.cassandra.tables.ddl`): CREATE ... IF NOT EXISTS for every table and SAI
  index, then the schema fingerprint is recorded in `readmodel_schemas`. A run
  that finds its fingerprint recorded does nothing. A changed `Table` gives a new
  fingerprint; blue/green rebuilds use a new table prefix rather than ALTER.

Concurrent runs (several processes starting at once) take turns on a lease row
written with a lightweight transaction, so schema changes never race.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import SimpleStatement

from infra.cassandra.session import DDL_TIMEOUT_SECONDS, check_name
from infra.cassandra.tables import ddl, fingerprint
from projections.store import Table

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LEASE_SECONDS = 120
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.cql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def statements(self, keyspace: str) -> list[str]:
        body = "\n".join(line for line in self.text.splitlines() if not line.strip().startswith("--"))
        body = Template(body).substitute(keyspace=keyspace)
        return [s.strip() for s in body.split(";") if s.strip()]


@dataclass
class MigrationReport:
    applied: list[int] = field(default_factory=list)  # file versions applied by this run
    readmodel_created: bool = False  # whether this run created the read-model schema
    fingerprint: str | None = None


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.cql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.cql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version in {directory}: {versions}")
    return found


_BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS {ks}.schema_migrations "
    "(version int PRIMARY KEY, name text, applied_at timestamp, checksum text)",
    "CREATE TABLE IF NOT EXISTS {ks}.readmodel_schemas "
    "(fingerprint text PRIMARY KEY, table_prefix text, tables text, applied_at timestamp)",
    "CREATE TABLE IF NOT EXISTS {ks}.schema_lease (name text PRIMARY KEY, holder uuid)",
)


def _run(session: Session, cql: str, params: Sequence[object] = (), *, serial: bool = False) -> Any:
    statement = SimpleStatement(cql, consistency_level=ConsistencyLevel.LOCAL_QUORUM)
    if serial:
        statement.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
    return session.execute(statement, params, timeout=DDL_TIMEOUT_SECONDS)


class _Lease:
    def __init__(self, session: Session, keyspace: str, wait_seconds: float) -> None:
        self._session, self._ks, self._wait = session, keyspace, wait_seconds
        self._holder = uuid.uuid4()

    def __enter__(self) -> None:
        deadline = time.monotonic() + self._wait
        while True:
            taken = _run(
                self._session,
                f"INSERT INTO {self._ks}.schema_lease (name, holder) VALUES ('migrate', %s) "
                f"IF NOT EXISTS USING TTL {LEASE_SECONDS}",
                (self._holder,),
                serial=True,
            )
            if taken.was_applied:
                return
            if time.monotonic() >= deadline:
                raise MigrationError(f"another process holds the migration lease of {self._ks}")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        _run(
            self._session,
            f"DELETE FROM {self._ks}.schema_lease WHERE name = 'migrate' IF holder = %s",
            (self._holder,),
            serial=True,
        )


def applied_versions(session: Session, keyspace: str) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of every recorded migration file."""
    rows = _run(session, f"SELECT version, name, checksum FROM {check_name(keyspace)}.schema_migrations")
    return {int(v): (n, c) for v, n, c in rows}


def migrate(
    session: Session,
    keyspace: str,
    tables: Iterable[Table] | None = None,
    *,
    table_prefix: str = "rm_",
    migrations: Sequence[Migration] | None = None,
    lease_wait_seconds: float = 60.0,
) -> MigrationReport:
    """Bring the keyspace (which must exist: `session.ensure_keyspace`) up to date:
    the migration files, then the read-model tables of `tables` (none if None)."""
    ks = check_name(keyspace)
    for statement in _BOOKKEEPING:
        _run(session, statement.format(ks=ks))
    report = MigrationReport()
    todo = list(load_migrations() if migrations is None else migrations)
    with _Lease(session, ks, lease_wait_seconds):
        done = applied_versions(session, ks)
        for m in sorted(todo, key=lambda m: m.version):
            if m.version in done:
                if done[m.version][1] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version:04d}_{m.name} changed after it was applied; add a new one instead"
                    )
                continue
            for statement in m.statements(ks):
                _run(session, statement)
            _run(
                session,
                f"INSERT INTO {ks}.schema_migrations (version, name, applied_at, checksum) VALUES (%s, %s, %s, %s)",
                (m.version, m.name, datetime.now(UTC), m.checksum),
            )
            report.applied.append(m.version)
        if tables is not None:
            tables = list(tables)
            report.fingerprint = fingerprint(tables, table_prefix)
            recorded = _run(
                session, f"SELECT fingerprint FROM {ks}.readmodel_schemas WHERE fingerprint = %s", (report.fingerprint,)
            ).one()
            if recorded is None:
                for t in tables:
                    for statement in ddl(ks, t, table_prefix + t.name):
                        _run(session, statement)
                _run(
                    session,
                    f"INSERT INTO {ks}.readmodel_schemas (fingerprint, table_prefix, tables, applied_at) "
                    "VALUES (%s, %s, %s, %s)",
                    (report.fingerprint, table_prefix, ",".join(sorted(t.name for t in tables)), datetime.now(UTC)),
                )
                report.readmodel_created = True
    return report
