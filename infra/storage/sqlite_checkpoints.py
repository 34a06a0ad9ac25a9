"""WAL checkpoints off the event loop: one background thread copies the WAL into each database.

By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages:
that commit copies every page into the database file and syncs it. A created post
dirties tens of read-model pages (the fan-out, notifications, counters), so every few
dozen posts one request stalled the event loop for 5-15 ms of CPU and up to ~100 ms of
wall time (the syncs), and every request queued behind it waited as long: most of the
API's p99, and ~200 µs of each post's CPU on the serving thread.

Here a connection made by `connect` leaves checkpoints to a daemon thread, which runs a
PASSIVE checkpoint on its own connection every `INTERVAL_S`. PASSIVE never waits for
and never blocks readers or the writer (WAL mode lets them run during a checkpoint),
and SQLite leaves the GIL while it works, so the loop goes on serving. The data and
its durability are as before: the same WAL, copied by the same SQLite code, only on
another thread. If the thread cannot keep up (or stops), the connection's own
automatic checkpoint, raised to `BACKSTOP_PAGES`, still bounds the WAL.

A watched connection is dropped (and the thread's connection to its file closed) once
it is closed or garbage collected.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL_S = 0.1
BACKSTOP_PAGES = 20_000  # ~80 MB of WAL at 4 KiB pages


class WatchedConnection(sqlite3.Connection):
    """A plain sqlite3 connection that can be weakly referenced (the base class cannot)."""


class _Checkpointer:
    def __init__(self) -> None:
        self._forget()
        # A forked child has no checkpoint thread, and may have copied the lock while the
        # parent's thread held it: it starts afresh (its first `watch` starts its own thread).
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._watched: list[tuple[weakref.ref[WatchedConnection], str]] = []
        self._wake = threading.Event()
        self._pid = 0

    def watch(self, conn: WatchedConnection, path: str) -> None:
        with self._lock:
            self._watched.append((weakref.ref(conn), path))
            if self._pid != os.getpid():  # first use in this process (or after a fork)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True).start()
        self._wake.set()

    def _run(self) -> None:
        own: dict[str, sqlite3.Connection] = {}  # this thread's connection to each watched file
        while True:
            self._wake.wait(INTERVAL_S)
            self._wake.clear()
            with self._lock:
                live = [(ref, path) for ref, path in self._watched if _is_open(ref())]
                self._watched = live
                paths = {path for _, path in live}
            for path in list(own):
                if path not in paths:
                    own.pop(path).close()
            for path in paths:
                try:
                    conn = own.get(path)
                    if conn is None:
                        conn = own[path] = sqlite3.connect(path, isolation_level=None)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the connection's own backstop still checkpoints
                    if os.path.exists(path):  # (else its last connection closed and the file went with it)
                        log.warning("background checkpoint of %s failed: %s", path, exc)
                    bad = own.pop(path, None)
                    if bad is not None:
                        bad.close()
            if not paths:
                self._wake.wait()  # idle until something is watched


def _is_open(conn: sqlite3.Connection | None) -> bool:
    if conn is None:
        return False
    try:
        conn.total_changes  # noqa: B018 - raises once the connection is closed
    except sqlite3.ProgrammingError:
        return False
    return True


_CHECKPOINTS = _Checkpointer()


def checkpoint_in_background(conn: WatchedConnection, path: Path | str) -> None:
    """Checkpoint `conn`'s database from the background thread from now on (WAL mode only)."""
    conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
    _CHECKPOINTS.watch(conn, os.path.abspath(path))
