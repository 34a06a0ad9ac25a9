"""Rebuilding read models from the event log, and digests to compare them.

A digest is a SHA-256 over every row of every table of a read model, in key
order, so two stores with the same content have the same digest whatever the
order the rows were written in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import orjson

from commands.ports import ReadableEventLog as EventLog
from infra.projector import Projector
from infra.storage.sqlite_eventlog import connect
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.projection import Projection


def rebuild(log: EventLog, path: Path, projections: Sequence[Projection]) -> SqliteReadModel:
    """Project the whole log into a fresh SQLite file at `path`."""
    if path.exists():
        raise FileExistsError(f"{path} exists; a rebuild writes a new read model beside the live one")
    store = SqliteReadModel(connect(path), [t for p in projections for t in p.tables])
    store.create_schema()
    Projector(log, store, projections, batch_size=2000).catch_up()
    return store


def digests(store: SqliteReadModel) -> dict[str, str]:
    """One digest per table."""
    out = {}
    for table in sorted(store.tables(), key=lambda t: t.name):
        h = hashlib.sha256()
        for row in store.scan(table.name, {}):
            h.update(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
            h.update(b"\n")
        out[table.name] = h.hexdigest()
    return out
