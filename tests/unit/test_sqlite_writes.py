"""SQLite writes batched and shaped for speed (infra/storage/sqlite_readmodel.py: runs of Puts
grouped by their fields, row arguments taken straight from the row where no column converts,
cached statements) leave exactly what the in-memory read model leaves, op by op."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.storage.memory_readmodel import MemoryReadModel
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.store import CounterRef, Delete, Increment, Op, Patch, Put, SetAdd, SetRemove
from tests.contracts.readmodel_contract import TABLES


def _doc(rng: random.Random) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": rng.choice(["a", "b", None]),
        "tags": rng.choice([[1, "x"], [], None]),
        "meta": rng.choice([{"k": [2]}, None]),
        "flag": rng.choice([True, False, None]),
    }
    chosen = [f for f in fields if rng.random() < 0.6]
    rng.shuffle(chosen)  # the same fields in another order, or others: each shape its statement
    return {"doc_id": rng.randrange(4)} | {f: fields[f] for f in chosen}


def _op(rng: random.Random) -> Op:
    kind = rng.randrange(9)
    counter = CounterRef("t_counts", {"user_id": rng.randrange(2)}, rng.choice(["n", "m"]))
    if kind <= 2:
        return Put("t_docs", _doc(rng))
    if kind == 3:
        row = {"user_id": rng.randrange(3), "post_id": rng.randrange(5), "author_id": rng.randrange(3)}
        if rng.random() < 0.3:
            row = {"post_id": row["post_id"], "user_id": row["user_id"]}  # no value: NULL
        return Put("t_feed", row)
    if kind == 4:
        row = {"a": rng.randrange(2), "b": rng.randrange(3), "c": rng.randrange(3), "v": rng.randrange(9)}
        return SetAdd("t_pairs", row, (counter,))
    if kind == 5:
        return SetRemove("t_pairs", {"a": rng.randrange(2), "b": rng.randrange(3), "c": rng.randrange(3)}, (counter,))
    if kind == 6:
        return Increment("t_counts", {"user_id": rng.randrange(2)}, rng.choice(["n", "m"]), rng.randrange(-2, 3))
    if kind == 7:
        return Patch("t_docs", {"doc_id": rng.randrange(4)}, {"title": rng.choice(["p", None]), "flag": True})
    if rng.random() < 0.5:
        return Delete("t_docs", {"doc_id": rng.randrange(4)})
    return Delete("t_feed", {"user_id": rng.randrange(3)})


def _everything(store: Any) -> dict[str, Any]:
    return {
        "docs": [store.get("t_docs", {"doc_id": d}) for d in range(4)],
        "feed": [store.scan("t_feed", {"user_id": u}) for u in range(3)],
        "pairs": [store.scan("t_pairs", {"a": a}) for a in range(2)],
        "counts": [store.get("t_counts", {"user_id": u}) for u in range(2)],
    }


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**9))
def test_batches_of_writes_leave_what_the_memory_model_leaves(seed: int) -> None:
    rng = random.Random(seed)
    sqlite = SqliteReadModel(sqlite3.connect(":memory:", isolation_level=None), TABLES)
    sqlite.create_schema()
    memory = MemoryReadModel(TABLES)
    for _ in range(8):
        batch = [_op(rng) for _ in range(rng.randrange(1, 12))]
        sqlite.apply(batch)
        memory.apply(batch)
        assert _everything(sqlite) == _everything(memory)
