"""Per-person data keys, kept outside the event log (the port and its local adapters).

A subject (a user id) has at most one key for ever. Erasing deletes the key and
leaves a tombstone, so that no later write can create a new key for the same
person and seal fresh data that would then be readable again.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Protocol

KEY_BYTES = 32  # AES-256
_IN_CHUNK = 500  # bound parameters per query, well under SQLite's limit


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


class SubjectKeys(Protocol):
    def key(self, subject: int, *, create: bool) -> bytes | None:
        """The subject's key; with `create`, made on first use. None once erased (or
        absent and not created)."""
        ...

    def many(self, subjects: Collection[int], *, create: bool) -> dict[int, bytes | None]:
        """`key` for each subject, in as few round trips as the store allows (a batch of events)."""
        ...

    def erase(self, subject: int) -> None:
        """Delete the key for good (idempotent)."""
        ...


class MemorySubjectKeys:
    def __init__(self) -> None:
        self._keys: dict[int, bytes | None] = {}  # None: erased
        self._lock = threading.Lock()

    def key(self, subject: int, *, create: bool) -> bytes | None:
        with self._lock:
            if subject not in self._keys:
                if not create:
                    return None
                self._keys[subject] = new_key()
            return self._keys[subject]

    def many(self, subjects: Collection[int], *, create: bool) -> dict[int, bytes | None]:
        return {s: self.key(s, create=create) for s in subjects}

    def erase(self, subject: int) -> None:
        with self._lock:
            self._keys[subject] = None


class SqliteSubjectKeys:
    """Keys in their own SQLite file, beside (never inside) the log.

    `secure_delete` overwrites a deleted key's bytes on disk instead of leaving them in a
    free page; backups of this file must expire sooner than an erasure must complete.
    """

    SCHEMA = "CREATE TABLE IF NOT EXISTS subject_keys (subject INTEGER PRIMARY KEY, key BLOB)"  # key NULL: erased

    def __init__(self, path: Path | str) -> None:
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA secure_delete = ON")
        self._conn.execute("PRAGMA journal_mode = DELETE")  # no WAL copies of erased keys
        self._conn.execute("PRAGMA busy_timeout = 5000")
        self._conn.execute(self.SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def key(self, subject: int, *, create: bool) -> bytes | None:
        with self._lock:
            row = self._conn.execute("SELECT key FROM subject_keys WHERE subject = ?", (subject,)).fetchone()
            if row is None and create:
                self._conn.execute("INSERT INTO subject_keys (subject, key) VALUES (?, ?)", (subject, new_key()))
                row = self._conn.execute("SELECT key FROM subject_keys WHERE subject = ?", (subject,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def many(self, subjects: Collection[int], *, create: bool) -> dict[int, bytes | None]:
        # One transaction for all the new keys: each commit of this journal is an fsync.
        wanted = list(dict.fromkeys(subjects))
        with self._lock:
            found = self._select(wanted)
            missing = [s for s in wanted if s not in found]
            if missing and create:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(
                        "INSERT OR IGNORE INTO subject_keys (subject, key) VALUES (?, ?)",
                        [(s, new_key()) for s in missing],
                    )
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                found.update(self._select(missing))
        return {s: found.get(s) for s in wanted}

    def _select(self, subjects: list[int]) -> dict[int, bytes | None]:
        found: dict[int, bytes | None] = {}
        for i in range(0, len(subjects), _IN_CHUNK):
            chunk = subjects[i : i + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for subject, key in self._conn.execute(
                f"SELECT subject, key FROM subject_keys WHERE subject IN ({marks})", chunk
            ):
                found[subject] = None if key is None else bytes(key)
        return found

    def erase(self, subject: int) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO subject_keys (subject, key) VALUES (?, NULL)", (subject,))


class CachedSubjectKeys:
    """Keys kept in memory for `ttl` seconds: decoding a log reads one per sealed field.

    An erasure made by this process takes effect here at once; one made by another
    process within `ttl` (a stale key can still open what it sealed until then). Erased
    subjects are remembered for good: erasure is final.
    """

    def __init__(
        self,
        inner: SubjectKeys,
        ttl: float = 60.0,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._keys: dict[int, tuple[float, bytes]] = {}
        self._erased: set[int] = set()

    def key(self, subject: int, *, create: bool) -> bytes | None:
        if subject in self._erased:
            return None
        now = self._clock()
        cached = self._keys.get(subject)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = self._inner.key(subject, create=create)
        if found is None:
            self._keys.pop(subject, None)
            return None
        self._remember(subject, found, now)
        return found

    def many(self, subjects: Collection[int], *, create: bool) -> dict[int, bytes | None]:
        now = self._clock()
        out: dict[int, bytes | None] = {}
        unknown: list[int] = []
        for s in subjects:
            if s in self._erased:
                out[s] = None
                continue
            cached = self._keys.get(s)
            if cached is not None and cached[0] > now:
                out[s] = cached[1]
            else:
                unknown.append(s)
        if unknown:
            for s, found in self._inner.many(unknown, create=create).items():
                out[s] = found
                if found is None:
                    self._keys.pop(s, None)
                else:
                    self._remember(s, found, now)
        return out

    def _remember(self, subject: int, key: bytes, now: float) -> None:
        if len(self._keys) >= self._max:
            self._keys.clear()  # cheaper than LRU bookkeeping on every read; refills at once
        self._keys[subject] = (now + self._ttl, key)

    def erase(self, subject: int) -> None:
        self._inner.erase(subject)
        self._keys.pop(subject, None)
        self._erased.add(subject)
