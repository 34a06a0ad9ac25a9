"""The pieces of the fast request path give FastAPI's and Starlette's answers: the exact JSON
dumper (infra/http/fast_json.py), the query-string reader (infra/http/fast_routes.py), and the
background WAL checkpoints (infra/storage/sqlite_checkpoints.py). The whole path, route by
route, is compared with FastAPI's in tests/e2e/test_fast_path_api.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator
from starlette.datastructures import QueryParams
from starlette.requests import Request

from infra.http.fast_json import exact_dumper
from infra.http.fast_routes import _query
from infra.storage import sqlite_checkpoints
from infra.storage.sqlite_eventlog import connect
from query_api.post_views import PostPage


class Inner(BaseModel):
    name: str
    size: int


class Outer(BaseModel):
    id: str
    flag: bool
    items: list[Inner]
    note: str | None = None
    count: int | None = None


def pydantic_bytes(model: type[BaseModel], value: Any) -> bytes:
    adapter = TypeAdapter(model)
    return adapter.dump_json(adapter.validate_python(value, from_attributes=True))


def test_strings_are_written_as_pydantic_writes_them() -> None:
    dump = exact_dumper(Inner)
    assert dump is not None
    text = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(text), 4096):
        value = {"name": "".join(text[start : start + 4096]), "size": start}
        assert dump(value) == pydantic_bytes(Inner, value)


@given(
    st.fixed_dictionaries(
        {
            "id": st.text(),
            "flag": st.booleans(),
            "items": st.lists(
                st.tuples(st.text(), st.integers(-(2**63), 2**63 - 1)).map(lambda t: {"name": t[0], "size": t[1]})
            ),
            "note": st.none() | st.text(),
            "count": st.none() | st.integers(-(2**63), 2**63 - 1),
        }
    )
)
def test_exact_values_dump_to_the_models_bytes(drawn: dict[str, Any]) -> None:
    value = {name: drawn[name] for name in Outer.model_fields}  # in the model's order
    dump = exact_dumper(Outer)
    assert dump is not None
    assert dump(value) == pydantic_bytes(Outer, value)


@pytest.mark.parametrize(
    "value",
    [
        {"id": "1", "flag": True, "items": []},  # defaulted fields missing: pydantic writes them
        {"flag": True, "id": "1", "items": [], "note": None, "count": None},  # another order
        {"id": "1", "flag": True, "items": [], "note": None, "count": None, "extra": 1},  # pydantic drops it
        {"id": "1", "flag": 1, "items": [], "note": None, "count": None},  # coerced by pydantic
        {"id": "1", "flag": True, "items": [], "note": None, "count": True},
        {"id": 1, "flag": True, "items": [], "note": None, "count": None},
        {"id": "1", "flag": True, "items": (), "note": None, "count": None},
        {"id": "1", "flag": True, "items": [{"size": 1, "name": "a"}], "note": None, "count": None},
        {"id": "1", "flag": True, "items": [], "note": None, "count": 2**70},  # beyond orjson
        {"id": "\ud800", "flag": True, "items": [], "note": None, "count": None},  # a lone surrogate
    ],
)
def test_anything_not_exact_is_left_to_pydantic(value: dict[str, Any]) -> None:
    dump = exact_dumper(Outer)
    assert dump is not None
    assert dump(value) is None


class Str(str):
    pass


def test_subclasses_are_left_to_pydantic() -> None:
    dump = exact_dumper(Inner)
    assert dump is not None
    assert dump({"name": Str("a"), "size": 1}) is None
    assert dump({"name": "a", "size": 1}) == b'{"name":"a","size":1}'


class Strict(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    name: str


class Checked(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def upper(cls, v: str) -> str:
        return v.upper()


class Limited(BaseModel):
    name: str = Field(max_length=3)


class Aliased(BaseModel):
    name: str = Field(alias="n")


class Floaty(BaseModel):
    x: float


@pytest.mark.parametrize("model", [Strict, Checked, Limited, Aliased, Floaty, dict, int])
def test_models_that_do_more_than_plain_fields_get_no_dumper(model: Any) -> None:
    assert exact_dumper(model) is None


def test_the_post_page_gets_a_dumper() -> None:
    assert exact_dumper(PostPage) is not None


def _request(query: bytes) -> Request:
    return Request({"type": "http", "query_string": query, "headers": []})


@given(st.text(alphabet="ab=&;%+ 1x\u00e9", max_size=24))
def test_query_strings_read_as_starlette_reads_them(text: str) -> None:
    query = text.encode("latin-1", errors="replace")
    mine, theirs = _query(_request(query)), QueryParams(query)
    for name in {*theirs.keys(), "a", "b", "ab", "", "x"}:
        assert (name in mine) == (name in theirs)
        assert mine.get(name) == theirs.get(name)


def test_background_checkpoints_empty_the_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_checkpoints, "INTERVAL_S", 0.01)
    conn = connect(tmp_path / "db.sqlite")
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == sqlite_checkpoints.BACKSTOP_PAGES
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    for i in range(200):
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, b"x" * 3000))

    deadline = time.monotonic() + 10
    while True:  # the connection never checkpoints this little itself: the thread copied the WAL in
        if (tmp_path / "db.sqlite").stat().st_size > 200 * 3000:
            break
        assert time.monotonic() < deadline, "the background thread did not checkpoint"
        time.sleep(0.02)
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 200
    conn.close()
    deadline = time.monotonic() + 10
    while any(str(tmp_path) in path for _, path in sqlite_checkpoints._CHECKPOINTS._watched):
        assert time.monotonic() < deadline, "a closed connection stays watched"
        time.sleep(0.02)


def test_json_of_a_page_is_orjsons() -> None:
    page = {"items": [], "next_cursor": None}
    dump = exact_dumper(PostPage)
    assert dump is not None
    assert dump(page) == orjson.dumps(page) == pydantic_bytes(PostPage, page)


def test_an_in_memory_database_is_not_checkpointed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    conn = connect(":memory:")
    assert not any(path.endswith(":memory:") for _, path in sqlite_checkpoints._CHECKPOINTS._watched)
    time.sleep(3 * sqlite_checkpoints.INTERVAL_S)
    assert not (tmp_path / ":memory:").exists()  # nothing opened a file of that name
    conn.close()
