"""The append-only event log in SQLite (WAL), with reservations and idempotency records.

Appending is the commit point of every command: events, the reservations they
need and the answer replayed on retries are written in one transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from commands.ports import Reservation, ReservationTaken, StoredResult
from events.union import Event
from infra.personal_data.codec import PLAIN, EventCodec
from infra.storage.sqlite_checkpoints import WatchedConnection, checkpoint_in_background

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    aggregate_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_aggregate ON events (stream, aggregate_id, position);
CREATE TABLE IF NOT EXISTS reservations (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    owner INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS command_results (
    scope TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    position TEXT NOT NULL
) WITHOUT ROWID;
"""


# Page cache per connection, an upper bound (pages are allocated as they are read). SQLite's
# default of 2 MB holds little of a feed table, so projecting re-read pages from the OS
# all the time: 50K posts pushed into 10K users' feeds took 32 s to project, 26 s with this.
CACHE_KIB = 256 * 1024


def connect(path: Path | str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, factory=WatchedConnection)
    journal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    if journal == "wal":  # a file (an in-memory database keeps its own journal, and has no file to share)
        checkpoint_in_background(conn, path)  # not in the commit of whichever request filled the WAL
    return conn


class SqliteEventLog:
    def __init__(self, path: Path | str, codec: EventCodec = PLAIN) -> None:
        self._codec = codec
        self._conn = connect(path)
        self._conn.execute("PRAGMA secure_delete = ON")  # a released username leaves no bytes behind
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def append(
        self,
        events: Sequence[Event],
        *,
        reserve: Sequence[Reservation] = (),
        release: Sequence[Reservation] = (),
        result: StoredResult | None = None,
    ) -> str:
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                for r in release:
                    c.execute(
                        "DELETE FROM reservations WHERE kind = ? AND key = ? AND owner = ?",
                        (r.kind, r.key, r.owner),
                    )
                for r in reserve:
                    try:
                        c.execute(
                            "INSERT INTO reservations (kind, key, owner) VALUES (?, ?, ?)",
                            (r.kind, r.key, r.owner),
                        )
                    except sqlite3.IntegrityError:
                        raise ReservationTaken(r) from None
                c.executemany(
                    "INSERT INTO events (event_id, stream, aggregate_id, type, version, data) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (e.event_id, e.STREAM, e.aggregate_id, e.type, e.version, data)
                        for e, data in zip(events, self._codec.encode_many(events), strict=True)
                    ],
                )
                position = int(c.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])
                if result is not None:
                    c.execute(
                        "INSERT INTO command_results (scope, fingerprint, status, body, position) VALUES (?, ?, ?, ?, ?)",
                        (
                            result.scope,
                            result.fingerprint,
                            result.status,
                            self._codec.seal_result(result.subject, result.body),
                            str(position),
                        ),
                    )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            return str(position)

    def read(self, after: int, limit: int) -> list[tuple[int, Event]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT position, data FROM events WHERE position > ? ORDER BY position LIMIT ?",
                (after, limit),
            ).fetchall()
        return [(int(p), self._codec.decode(d)) for p, d in rows]

    def head(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])

    def stored_result(self, scope: str) -> StoredResult | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT scope, fingerprint, status, body, position FROM command_results WHERE scope = ?",
                (scope,),
            ).fetchone()
        body = None if row is None else self._codec.open_result(bytes(row[3]))
        return None if body is None else StoredResult(row[0], row[1], int(row[2]), body, str(row[4]))
