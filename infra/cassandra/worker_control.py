"""The projection workers' pause switch in Cassandra (`infra.worker.pause.PauseControl`).

Table `worker_control` (migration 0003): one partition per worker group; the pause (request
id and lease) in static columns, so taking, renewing and lifting it are lightweight
transactions on one cell, and one row per worker process with its heartbeat and the
pause it acknowledged (and the offsets it had applied then). Worker rows expire a day
after their last heartbeat, so dead workers do not pile up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import SimpleStatement

from infra.cassandra.session import check_name
from infra.worker.pause import Partition, PauseState, WorkerRow

ROW_TTL_SECONDS = 24 * 3600


def _seconds(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:  # the driver returns naive UTC datetimes
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _positions(body: str | None) -> dict[Partition, int]:
    out: dict[Partition, int] = {}
    for key, offset in (orjson.loads(body) if body else {}).items():
        topic, _, partition = key.rpartition(":")
        out[(topic, int(partition))] = int(offset)
    return out


class CassandraWorkerControl:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._ks = check_name(keyspace)

    def _run(self, cql: str, params: Sequence[Any]) -> Any:
        statement = SimpleStatement(cql.replace("$ks", self._ks), consistency_level=ConsistencyLevel.LOCAL_QUORUM)
        statement.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
        return self._session.execute(statement, params)

    def state(self, group: str) -> PauseState:
        rows = list(
            self._run(
                "SELECT pause, pause_until, worker, heartbeat, acked, positions FROM $ks.worker_control "
                "WHERE group_name = %s",
                (group,),
            )
        )
        if not rows:
            return PauseState()
        request, until = rows[0][0], _seconds(rows[0][1])
        workers = tuple(
            WorkerRow(worker, _seconds(heartbeat), acked, _positions(positions))
            for _, _, worker, heartbeat, acked, positions in rows
            if worker is not None  # a partition with the pause only has no worker row
        )
        return PauseState(request, until, workers)

    def heartbeat(self, group: str, worker: str, now: float) -> None:
        self._run(
            f"UPDATE $ks.worker_control USING TTL {ROW_TTL_SECONDS} SET heartbeat = %s "
            "WHERE group_name = %s AND worker = %s",
            (_when(now), group, worker),
        )

    def ack(self, group: str, worker: str, request: str | None, positions: Mapping[Partition, int]) -> None:
        body = orjson.dumps({f"{t}:{p}": o for (t, p), o in sorted(positions.items())}).decode()
        self._run(
            f"UPDATE $ks.worker_control USING TTL {ROW_TTL_SECONDS} SET acked = %s, positions = %s "
            "WHERE group_name = %s AND worker = %s",
            (request, body, group, worker),
        )

    def take(self, group: str, request: str, until: float, replacing: str | None) -> bool:
        return bool(
            self._run(
                "UPDATE $ks.worker_control SET pause = %s, pause_until = %s WHERE group_name = %s IF pause = %s",
                (request, _when(until), group, replacing),
            ).was_applied
        )

    def renew(self, group: str, request: str, until: float) -> bool:
        return bool(
            self._run(
                "UPDATE $ks.worker_control SET pause_until = %s WHERE group_name = %s IF pause = %s",
                (_when(until), group, request),
            ).was_applied
        )

    def lift(self, group: str, request: str) -> bool:
        return bool(
            self._run(
                "UPDATE $ks.worker_control SET pause = null, pause_until = null WHERE group_name = %s IF pause = %s",
                (group, request),
            ).was_applied
        )
