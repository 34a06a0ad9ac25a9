"""Per-person data keys in Cassandra (the `SubjectKeys` port of infra/personal_data/keys.py).

A key is made once with a lightweight transaction (INSERT ... IF NOT EXISTS), so two
processes sealing the first event of a person agree on one key. Erasure overwrites the
row with a null key and `erased = true`: a later INSERT ... IF NOT EXISTS sees the row
and makes no new key. The deleted cell lingers on disk until compaction after
`gc_grace_seconds`, like any Cassandra delete. Table: migrations/0004_subject_keys.cql.
"""

from __future__ import annotations

from collections.abc import Collection

from cassandra.cluster import Session

from infra.cassandra.session import Statements
from infra.personal_data.keys import new_key

_CQL = {
    "get": "SELECT key, erased FROM $ks.subject_keys WHERE subject = ?",
    "create": "INSERT INTO $ks.subject_keys (subject, key, erased) VALUES (?, ?, false) IF NOT EXISTS",
    "erase": "UPDATE $ks.subject_keys SET key = null, erased = true WHERE subject = ?",
}


class CassandraSubjectKeys:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._statement = Statements(session, keyspace, _CQL)

    def key(self, subject: int, *, create: bool) -> bytes | None:
        row = self._session.execute(self._statement["get"], (subject,)).one()
        if row is None and create:
            # Whoever wins the transaction, the row read back holds the one key (or the tombstone).
            self._session.execute(self._statement["create"], (subject, new_key()))
            row = self._session.execute(self._statement["get"], (subject,)).one()
        if row is None or row[1] or row[0] is None:
            return None
        return bytes(row[0])

    def many(self, subjects: Collection[int], *, create: bool) -> dict[int, bytes | None]:
        return {s: self.key(s, create=create) for s in subjects}

    def erase(self, subject: int) -> None:
        self._session.execute(self._statement["erase"], (subject,))
