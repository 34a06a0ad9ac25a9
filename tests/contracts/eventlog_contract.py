"""Behaviour every event-log adapter must share; subclass per adapter with `make()`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from commands.ports import Reservation, ReservationTaken, StoredResult
from events.accounts import AccountRegistered
from events.ids import IdGenerator

_ids = IdGenerator(shard=7)


def registered(name: str) -> AccountRegistered:
    uid = _ids()
    return AccountRegistered(
        event_id=uid,
        occurred_at=datetime.now(UTC),
        actor_id=None,
        aggregate_id=uid,
        user_id=uid,
        username=name,
        password_hash="h",
        display_name=name,
    )


class EventLogContract:
    """Appending with reservations and idempotent results: every log (SQLite, memory, Kafka)."""

    def make(self) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def log(self) -> Any:
        return self.make()

    def test_append_returns_a_token(self, log: Any) -> None:
        token = log.append([registered("t1"), registered("t2")])
        assert isinstance(token, str) and token

    def test_a_taken_reservation_writes_nothing(self, log: Any) -> None:
        log.append([registered("x")], reserve=[Reservation("username", "x", 1)])
        with pytest.raises(ReservationTaken):
            log.append(
                [registered("x2")],
                reserve=[Reservation("username", "y", 2), Reservation("username", "x", 2)],
                result=StoredResult("s", "f", 201, b"{}", ""),
            )
        assert log.stored_result("s") is None
        # "y" was not kept either: the whole append was undone.
        log.append([], reserve=[Reservation("username", "y", 3)])

    def test_release_frees_a_reservation_for_its_owner_only(self, log: Any) -> None:
        log.append([], reserve=[Reservation("like", "p:u", 1)])
        log.append([], release=[Reservation("like", "p:u", 2)])
        with pytest.raises(ReservationTaken):
            log.append([], reserve=[Reservation("like", "p:u", 3)])
        log.append([], release=[Reservation("like", "p:u", 1)])
        log.append([], reserve=[Reservation("like", "p:u", 3)])

    def test_stored_result_carries_the_token(self, log: Any) -> None:
        token = log.append([registered("r")], result=StoredResult("scope", "fp", 201, b'{"id":"1"}', ""))
        stored = log.stored_result("scope")
        assert stored == StoredResult("scope", "fp", 201, b'{"id":"1"}', token)
        assert log.stored_result("other") is None


class OrderedEventLogContract(EventLogContract):
    """Logs with one global order, which the in-process projector reads (SQLite, memory)."""

    def test_positions_are_dense_and_read_in_order(self, log: Any) -> None:
        assert log.head() == 0
        a, b, c = registered("a"), registered("b"), registered("c")
        assert log.append([a, b]) == "2"
        assert log.append([c]) == "3"
        assert [(p, e.event_id) for p, e in log.read(0, 10)] == [(1, a.event_id), (2, b.event_id), (3, c.event_id)]
        assert [p for p, _ in log.read(1, 1)] == [2]
        assert log.read(3, 10) == []
        assert log.head() == 3

    def test_events_come_back_equal(self, log: Any) -> None:
        e = registered("eq")
        log.append([e])
        assert log.read(0, 1)[0][1] == e

    def test_a_refused_reservation_appends_no_event(self, log: Any) -> None:
        log.append([registered("x")], reserve=[Reservation("username", "x", 1)])
        with pytest.raises(ReservationTaken):
            log.append([registered("x2")], reserve=[Reservation("username", "x", 2)])
        assert log.head() == 1

    def test_an_event_id_is_appended_once(self, log: Any) -> None:
        e = registered("dup")
        log.append([e])
        with pytest.raises(Exception):  # noqa: B017 - adapters raise their own integrity error
            log.append([e])
        assert log.head() == 1
