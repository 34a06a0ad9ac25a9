"""Reservations, idempotent command results and projection positions in Cassandra.

The Kafka event log (infra/kafka/eventlog.py) composes this store with a producer:
claim reservations here, produce the events, release what the command gave up, then
store the command's result with its token. Projection workers save the offsets they
applied here, and the consistency waiter reads them back.

- `reserve` claims each reservation with a lightweight transaction (INSERT ... IF NOT
  EXISTS), one at a time in a fixed order (so two commands claiming the same pair
  cannot each take one and both lose). On a conflict it releases what this call
  claimed and raises `ReservationTaken`: nothing stays claimed. As in the SQLite log,
  a claim held by anyone, the same owner included, is taken.
- `release` deletes a claim only if the given owner holds it (DELETE ... IF owner = ?).
- `put_result` writes once (IF NOT EXISTS): the first answer to a scope wins forever.
- Positions are the offset of the last record applied, per (topic, partition). A
  consistency token `topic:partition:offset,...` is reached when every listed
  partition's applied offset is at least the token's (`token_reached`).
Tables come from migrations/0001_command_store.cql (`infra.cassandra.migrations`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from cassandra.cluster import Session
from cassandra.query import PreparedStatement

from commands.ports import Reservation, ReservationTaken, StoredResult
from infra.cassandra.session import Statements, check_name
from infra.remote_consistency import parse_token, reached

log = logging.getLogger(__name__)

Partition = tuple[str, int]  # (topic, partition)


class CassandraCommandStore:
    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._ks = check_name(keyspace)
        self._statements = Statements(session, keyspace, _CQL)

    def _statement(self, name: str) -> PreparedStatement:
        return self._statements[name]

    # -- reservations ----------------------------------------------------------
    def reserve(self, reservations: Sequence[Reservation]) -> None:
        """Claim all or none: raises ReservationTaken (after undoing this call's claims)."""
        claimed: list[Reservation] = []
        for r in sorted(reservations, key=lambda r: (r.kind, r.key)):
            try:
                applied = self._session.execute(self._statement("claim"), (r.kind, r.key, r.owner)).was_applied
            except BaseException:
                # A timed-out LWT may still have been applied: undo it too (by owner, so only if ours).
                self._undo([*claimed, r])
                raise
            if not applied:
                self._undo(claimed)
                raise ReservationTaken(r)
            claimed.append(r)

    def _undo(self, claimed: Sequence[Reservation]) -> None:
        try:
            self.release(claimed)
        except Exception:
            # The caller gets the original error; the claims stay until an operator frees them.
            log.exception("could not undo the reservations %s", list(claimed))

    def release(self, reservations: Sequence[Reservation]) -> None:
        for r in reservations:
            self._session.execute(self._statement("release"), (r.kind, r.key, r.owner))

    def owner(self, kind: str, key: str) -> int | None:
        found = self._session.execute(self._statement("owner"), (kind, key)).one()
        return None if found is None else int(found[0])

    # -- idempotent results ----------------------------------------------------
    def put_result(self, result: StoredResult) -> None:
        """Store the first answer for `result.scope`; a later one for the same scope is ignored."""
        self._session.execute(
            self._statement("put_result"),
            (result.scope, result.fingerprint, result.status, result.body, result.token),
        )

    def get_result(self, scope: str) -> StoredResult | None:
        found = self._session.execute(self._statement("get_result"), (scope,)).one()
        if found is None:
            return None
        fingerprint, status, body, token = found
        return StoredResult(scope, fingerprint, int(status), bytes(body or b""), token or "")

    stored_result = get_result  # the EventLog port's name for it

    # -- projection positions --------------------------------------------------
    def save_positions(self, group: str, positions: Mapping[Partition, int]) -> None:
        """Record the offset of the last record applied per (topic, partition)."""
        statement = self._statement("save_position")
        futures = [
            self._session.execute_async(statement, (group, topic, partition, offset))
            for (topic, partition), offset in positions.items()
        ]
        for future in futures:
            future.result()

    def positions(self, group: str) -> dict[Partition, int]:
        rows = self._session.execute(self._statement("positions"), (group,))
        return {(topic, int(partition)): int(offset) for topic, partition, offset in rows}


def token_reached(positions: Mapping[Partition, int], token: str) -> bool:
    """Has every partition named by the token applied at least its offset? An empty token is reached."""
    return reached(parse_token(token), positions)


_CQL = {
    "claim": "INSERT INTO $ks.reservations (kind, key, owner) VALUES (?, ?, ?) IF NOT EXISTS",
    "release": "DELETE FROM $ks.reservations WHERE kind = ? AND key = ? IF owner = ?",
    "owner": "SELECT owner FROM $ks.reservations WHERE kind = ? AND key = ?",
    "put_result": (
        "INSERT INTO $ks.command_results (scope, fingerprint, status, body, consistency_token) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
    ),
    "get_result": "SELECT fingerprint, status, body, consistency_token FROM $ks.command_results WHERE scope = ?",
    "save_position": (
        "INSERT INTO $ks.projection_positions (group_name, topic, kafka_partition, applied_offset) VALUES (?, ?, ?, ?)"
    ),
    "positions": "SELECT topic, kafka_partition, applied_offset FROM $ks.projection_positions WHERE group_name = ?",
}
