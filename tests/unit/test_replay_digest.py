"""Digests depend on the content of a read model only (infra/readmodel_digest.py)."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.readmodel_digest import CACHE_TABLES, digests, projection_digests, rows_digest, table_digests
from infra.storage.indexed_memory_readmodel import IndexedMemoryReadModel
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.feed.tables import FEED
from projections.graph import GRAPH_COUNTS
from projections.registry import PROJECTIONS, all_tables
from projections.store import Put, Table

DOCS = Table(
    "docs",
    partition=("k",),
    clustering=("c",),
    values=("title", "tags", "flag"),
    types={"title": str, "tags": list, "flag": bool},
)


def _sqlite(tables: list[Table], prefix: str = "rm_") -> SqliteReadModel:
    store = SqliteReadModel(sqlite3.connect(":memory:", isolation_level=None), tables, prefix=prefix)
    store.create_schema()
    return store


rows = st.lists(
    st.fixed_dictionaries(
        {"k": st.integers(0, 5), "c": st.integers(0, 5)},
        optional={
            "title": st.text(max_size=5),
            "tags": st.lists(st.integers(-(2**40), 2**40), max_size=2),
            "flag": st.booleans(),
        },
    ),
    max_size=20,
    unique_by=lambda r: (r["k"], r["c"]),
)


@settings(max_examples=50)
@given(rows, st.randoms(use_true_random=False))
def test_the_digest_ignores_write_order_table_names_and_backend(
    given_rows: list[dict[str, Any]], rnd: random.Random
) -> None:
    shuffled = list(given_rows)
    rnd.shuffle(shuffled)
    one = _sqlite([DOCS])
    one.apply([Put("docs", r) for r in given_rows])
    other = _sqlite([DOCS], prefix="rm42_")
    other.apply([Put("docs", r) for r in shuffled])
    memory = IndexedMemoryReadModel([DOCS])
    memory.apply([Put("docs", r) for r in reversed(given_rows)])
    assert digests(one) == digests(other) == digests(memory)


def test_a_changed_missing_or_extra_row_changes_the_digest() -> None:
    base = [{"k": 1, "c": 1, "title": "a"}, {"k": 1, "c": 2, "title": "b"}]
    reference = rows_digest(DOCS, base)
    assert rows_digest(DOCS, [base[0], {**base[1], "title": "c"}]) != reference
    assert rows_digest(DOCS, base[:1]) != reference
    assert rows_digest(DOCS, [*base, {"k": 2, "c": 1}]) != reference
    assert rows_digest(DOCS, [{**base[0], "flag": False}, base[1]]) != reference  # False is not unset
    assert rows_digest(DOCS, list(reversed(base))) == reference


def test_a_counter_at_zero_counts_as_no_counter() -> None:
    zero, unset = {"user_id": 1, "followers": 0, "following": 0}, {"user_id": 1, "followers": None, "following": None}
    assert rows_digest(GRAPH_COUNTS, [zero]) == rows_digest(GRAPH_COUNTS, []) == rows_digest(GRAPH_COUNTS, [unset])
    partial = {"user_id": 1, "followers": 0, "following": 2}
    assert rows_digest(GRAPH_COUNTS, [partial]) == rows_digest(GRAPH_COUNTS, [{**partial, "followers": None}])
    assert rows_digest(GRAPH_COUNTS, [partial]) != rows_digest(GRAPH_COUNTS, [])
    # Elsewhere a zero is a value like any other.
    assert rows_digest(DOCS, [{"k": 1, "c": 0, "flag": False}]) != rows_digest(DOCS, [])


def test_cache_tables_stay_out_of_the_read_models_digest() -> None:
    store = IndexedMemoryReadModel(all_tables())
    before = projection_digests(store, PROJECTIONS)
    store.apply([Put(FEED.name, {"user_id": 1, "post_id": 2, "author_id": 3})])
    assert FEED.name in CACHE_TABLES
    assert projection_digests(store, PROJECTIONS) == before
    assert FEED.name not in digests(store)
    assert table_digests(store, caches=True)[FEED.name][1] == 1
