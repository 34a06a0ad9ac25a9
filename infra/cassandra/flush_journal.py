"""The projection worker's flush journal in Cassandra (see `infra.worker.changes.FlushJournal`).

Table `worker_flushes` (migration 0002): per consumer group, per writer (one worker
process), the serialized changes of its last batch in chunks, and a marker row
(chunk -1) naming the batch, its chunk count and whether it is done. The chunks and
the marker are written in one round; a reader trusts a marker only if every chunk
of the same batch is there, so a worker that died while journaling left nothing to
complete (and had written nothing yet). Rows are overwritten batch after batch
instead of deleted, so the partition collects no tombstones, and expire after a
week (a worker that died and was never followed by another within a week leaves its
partitions to plain redelivery).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import PreparedStatement

from infra.cassandra.session import check_name
from infra.worker.changes import BatchChanges, decode_changes, encode_changes

CHUNK_BYTES = 256 * 1024
MARKER = -1

_CQL = {
    "put": "INSERT INTO $ks.worker_flushes (group_name, writer, chunk, batch_id, body) VALUES (?, ?, ?, ?, ?)",
    "all": "SELECT writer, chunk, batch_id, body FROM $ks.worker_flushes WHERE group_name = ?",
    "marker": "SELECT batch_id, body FROM $ks.worker_flushes WHERE group_name = ? AND writer = ? AND chunk = -1",
}


class CassandraFlushJournal:
    def __init__(self, session: Session, keyspace: str, writer: str | None = None) -> None:
        self._session = session
        self._keyspace = check_name(keyspace)
        self.writer = writer or uuid.uuid4().hex
        self._timestamp: Callable[[], int] = session.cluster.timestamp_generator
        self._statements: dict[str, PreparedStatement] = {}
        self._last: tuple[str, int] | None = None  # (batch, chunks) of this writer's last record

    def _statement(self, name: str) -> PreparedStatement:
        found = self._statements.get(name)
        if found is None:
            found = self._session.prepare(_CQL[name].replace("$ks", self._keyspace))
            found.consistency_level = ConsistencyLevel.LOCAL_QUORUM
            self._statements[name] = found
        return found

    def _marker(self, batch: str, chunks: int, done: bool) -> bytes:
        return orjson.dumps({"chunks": chunks, "done": done})

    def record(self, group: str, changes: BatchChanges) -> None:
        changes.early, changes.late = self._timestamp(), self._timestamp()
        body = encode_changes(changes)
        batch = uuid.uuid4().hex
        chunks = [body[i : i + CHUNK_BYTES] for i in range(0, len(body), CHUNK_BYTES)] or [b""]
        put = self._statement("put")
        futures = [self._session.execute_async(put, (group, self.writer, n, batch, c)) for n, c in enumerate(chunks)]
        futures.append(
            self._session.execute_async(
                put, (group, self.writer, MARKER, batch, self._marker(batch, len(chunks), False))
            )
        )
        for future in futures:
            future.result()
        self._last = (batch, len(chunks))

    def done(self, group: str) -> None:
        if self._last is None:
            return
        batch, chunks = self._last
        self._session.execute(
            self._statement("put"), (group, self.writer, MARKER, batch, self._marker(batch, chunks, True))
        )
        self._last = None

    def done_async(self, group: str) -> Any:
        """`done` without waiting: the future, to wait on with the positions' writes."""
        if self._last is None:
            return None
        batch, chunks = self._last
        self._last = None
        return self._session.execute_async(
            self._statement("put"), (group, self.writer, MARKER, batch, self._marker(batch, chunks, True))
        )

    def unfinished(self, group: str) -> list[tuple[str, BatchChanges]]:
        rows = list(self._session.execute(self._statement("all"), (group,)))
        markers = {w: (batch, orjson.loads(body)) for w, chunk, batch, body in rows if chunk == MARKER}
        out = []
        for writer, (batch, marker) in markers.items():
            if marker["done"]:
                continue
            parts = {chunk: body for w, chunk, b, body in rows if w == writer and b == batch and chunk >= 0}
            if sorted(parts) != list(range(marker["chunks"])):
                continue  # died while journaling: nothing of that batch was written
            out.append((writer, decode_changes(b"".join(parts[n] for n in range(marker["chunks"])))))
        return out

    def finish(self, group: str, writer: str) -> None:
        found = self._session.execute(self._statement("marker"), (group, writer)).one()
        if found is None:
            return
        batch, body = found
        chunks = int(orjson.loads(body)["chunks"])
        self._session.execute(self._statement("put"), (group, writer, MARKER, batch, self._marker(batch, chunks, True)))
