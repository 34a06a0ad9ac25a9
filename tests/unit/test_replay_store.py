"""The replay engine's in-memory store behaves exactly like the SQLite read model.

It passes the read-model contract, and random sequences of operations and reads
give the same answers on both (including what SQLite's column types do to values).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.storage.indexed_memory_readmodel import IndexedMemoryReadModel
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.store import CounterRef, Delete, Increment, Op, Patch, Put, SetAdd, SetRemove, Table
from tests.contracts.readmodel_contract import TABLES, ReadModelContract


class TestIndexedMemoryReadModel(ReadModelContract):
    def make(self) -> Any:
        return IndexedMemoryReadModel(TABLES)


# -- differential: the same operations on both adapters -------------------------------

WIDE = Table(
    "w_rows",
    partition=("a", "b"),
    clustering=("c", "d"),
    values=("v", "s", "f", "tags"),
    types={"s": str, "f": bool, "tags": list},
    indexes=(("v",), ("s", "v")),
)
COUNTS = Table("w_counts", partition=("a", "b"), values=("n",), indexes=(("n",),))
SINGLE = Table("w_single", partition=("k",), values=("v", "name"), types={"name": str}, indexes=(("name",),))
DIFF_TABLES = (WIDE, COUNTS, SINGLE)

small = st.integers(0, 3)
text = st.sampled_from(["x", "y", "zz"])


def _wide_key(n: int) -> st.SearchStrategy[dict[str, Any]]:
    cols = ("a", "b", "c", "d")[:n]
    return st.fixed_dictionaries({c: small for c in cols})


wide_row = st.fixed_dictionaries(
    {"a": small, "b": small, "c": small, "d": small},
    optional={"v": small, "s": st.one_of(text, small), "f": st.booleans(), "tags": st.lists(small, max_size=2)},
)
counter = st.builds(lambda a, b: CounterRef("w_counts", {"a": a, "b": b}, "n"), small, small)
ops: st.SearchStrategy[Op] = st.one_of(
    st.builds(Put, st.just("w_rows"), wide_row),
    st.builds(SetAdd, st.just("w_rows"), wide_row, st.lists(counter, max_size=1).map(tuple)),
    st.builds(SetRemove, st.just("w_rows"), _wide_key(4), st.lists(counter, max_size=1).map(tuple)),
    st.builds(Delete, st.just("w_rows"), st.integers(0, 4).flatmap(_wide_key)),
    st.builds(Patch, st.just("w_rows"), st.integers(2, 4).flatmap(_wide_key), st.fixed_dictionaries({"v": small})),
    st.builds(Increment, st.just("w_counts"), _wide_key(2), st.just("n"), st.integers(-2, 2)),
    st.builds(
        Put, st.just("w_single"), st.fixed_dictionaries({"k": small, "v": small, "name": st.one_of(text, small)})
    ),
    st.builds(Delete, st.just("w_single"), st.fixed_dictionaries({"k": small})),
)


def _reads(store: Any) -> list[Any]:
    out: list[Any] = []
    for n in range(5):
        for a in range(2):
            prefix = dict(zip(("a", "b", "c", "d"), (a, 1, 2, 0)[:n], strict=False))
            out.append(store.scan("w_rows", prefix))
            out.append(store.count("w_rows", prefix))
            if 2 <= n < 4:
                out.append(store.scan("w_rows", prefix, after=1, desc=True, limit=2))
                out.append(store.scan("w_rows", prefix, before=2))
    for v in range(3):
        out.append(store.find("w_rows", {"v": v}))
        out.append(store.find("w_rows", {"s": "x", "v": v}, limit=1))
        out.append(store.find("w_single", {"name": "x"}))
        out.append(store.find("w_rows", {"f": True}))
    out.append(store.scan("w_counts", {}))
    out += [store.find("w_counts", {"n": n}) for n in (-1, 0, 1, 2)]
    out += [store.find("w_rows", {"s": s}) for s in ("x", "y", "1")]
    out.append(store.scan("w_single", {}))
    return out


@settings(max_examples=60)
@given(st.lists(st.lists(ops, min_size=1, max_size=4), max_size=12))
def test_same_operations_same_answers_as_sqlite(batches: list[list[Op]]) -> None:
    memory = IndexedMemoryReadModel(DIFF_TABLES)
    sqlite = SqliteReadModel(sqlite3.connect(":memory:", isolation_level=None), DIFF_TABLES)
    sqlite.create_schema()
    for batch in batches:
        outcomes = []
        for store in (memory, sqlite):
            try:
                store.apply(batch)
                outcomes.append(None)
            except (ValueError, sqlite3.IntegrityError, KeyError) as exc:
                outcomes.append(type(exc).__name__)
        if outcomes[0] != outcomes[1]:
            raise AssertionError(f"{batch}: memory {outcomes[0]}, sqlite {outcomes[1]}")
        if outcomes[0] is not None:
            return  # both refused a malformed operation; what came before it in the batch may differ
        assert _reads(memory) == _reads(sqlite)
