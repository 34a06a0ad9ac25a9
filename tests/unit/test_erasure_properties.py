"""Erasure (crypto-shredding) over random histories written by the real commands.

After an account is deleted, nothing that person wrote (their username, names, bio,
captions, comments, the keys of their uploads) is readable anywhere: not in any read
model built live, not in one replayed from the log afterwards, not in the log's bytes.
Everyone else's data is untouched: a replay still gives the live digests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.readmodel_digest import projection_digests, table_rows
from infra.replay import project_event
from infra.storage.indexed_memory_readmodel import IndexedMemoryReadModel
from projections.registry import PROJECTIONS, all_tables
from tests.unit.replay_histories import History, Step, steps


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def leaks(store: Any, secrets: dict[str, set[str]]) -> list[tuple[str, str, str]]:
    """(table, username, cell) for every cell showing a deleted person's data."""
    found = []
    for table in all_tables():
        for row in table_rows(store, table):
            for cell in _strings(list(row.values())):
                for name, marks in secrets.items():
                    if cell == name or any(m in cell for m in marks):
                        found.append((table.name, name, cell))
    return found


def log_leaks(history: History, secrets: dict[str, set[str]]) -> list[tuple[str, str]]:
    rows: Iterable[tuple[bytes]] = history.log._conn.execute("SELECT data FROM events").fetchall()
    blobs = [bytes(r[0]) for r in rows]
    return [
        (name, mark)
        for name, marks in secrets.items()
        for mark in (*marks, f'"username":"{name}"')
        if any(mark.encode() in b for b in blobs)
    ]


def decoded_leaks(history: History, secrets: dict[str, set[str]]) -> list[tuple[str, str]]:
    """What the log still tells about them when read with its key store: the keys are gone."""
    return [
        (event.type, cell)
        for _, event in history.events()
        for cell in _strings(event.model_dump(mode="json"))
        for name, marks in secrets.items()
        if (cell == name and event.type == "AccountRegistered") or any(m in cell for m in marks)
    ]


def replay(history: History) -> IndexedMemoryReadModel:
    store = IndexedMemoryReadModel(list(all_tables()))
    for position, event in history.events():
        project_event(store, PROJECTIONS, position, event)
    return store


@settings(max_examples=40, deadline=None)
@given(steps(), st.lists(st.integers(0, 7), min_size=1, max_size=3))
def test_a_deleted_person_leaves_nothing_readable(history: list[Step], doomed: list[int]) -> None:
    h = History().run(history)
    for a in doomed:
        h.step("delete_account", a, 0, 1)
    gone = {name for _, name in h.users} - {name for _, name in h.alive}
    secrets = {name: h.personal[name] for name in gone}

    assert leaks(h.live, secrets) == []
    rebuilt = replay(h)
    assert leaks(rebuilt, secrets) == []
    assert log_leaks(h, secrets) == []
    assert decoded_leaks(h, secrets) == []
    # Erasure changes nothing that belongs to anyone else.
    assert projection_digests(rebuilt, PROJECTIONS) == projection_digests(h.live, PROJECTIONS)


def test_the_living_keep_their_data_through_a_replay() -> None:
    # The check above must be able to fail: a person not deleted is found everywhere.
    history: list[Step] = [("register", 0, 0, 0)] * 3 + [("bio", 0, 0, 1), ("post", 0, 1, 1), ("comment", 1, 0, 1)]
    h = History().run(history)
    secrets = {name: h.personal[name] for _, name in h.alive}
    assert {name for _, name, _ in leaks(h.live, secrets)} == {name for _, name in h.alive}
    assert {name for _, name, _ in leaks(replay(h), secrets)} == {name for _, name in h.alive}
    assert leaks(h.live, secrets) and sorted(leaks(replay(h), secrets)) == sorted(leaks(h.live, secrets))
