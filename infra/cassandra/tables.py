"""How a read-model `Table` becomes a Cassandra table: column types, DDL, value codec.

- int -> bigint, str -> text, bool -> boolean, float -> double, list/dict -> text (JSON).
- PRIMARY KEY ((partition columns), clustering columns), clustering ascending.
- Every column of `Table.indexes` gets a storage-attached index (SAI, Cassandra 5.0),
  so `find` by one or several equality columns needs no ALLOW FILTERING. The leading
  columns of a composite partition key are indexed too: a `Delete`/`scan` by a prefix
  shorter than the partition (e.g. every notification partition of one user) then
  finds its partitions through the index instead of a full scan.
- Identifiers are always double-quoted, so column names such as "count" or "text" are safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from infra.cassandra.session import check_name
from projections.store import Table

CQL_TYPES: dict[type, str] = {int: "bigint", str: "text", bool: "boolean", float: "double", list: "text", dict: "text"}

# Bumped whenever the DDL generated below changes shape, so the recorded fingerprint does too.
DDL_VERSION = 1


def q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def cql_type(table: Table, column: str) -> str:
    return CQL_TYPES[table.type_of(column)]


def to_cql(table: Table, column: str, value: Any) -> Any:
    if value is None:
        return None
    kind = table.type_of(column)
    if kind is list or kind is dict:
        return orjson.dumps(value).decode()
    if kind is bool:
        return bool(value)
    if kind is float:
        return float(value)
    return value


def from_cql(table: Table, column: str, value: Any) -> Any:
    if value is None:
        return None
    kind = table.type_of(column)
    if kind is list or kind is dict:
        return orjson.loads(value)
    return value


def indexed_columns(table: Table) -> tuple[str, ...]:
    """Columns with an SAI index: those declared in `Table.indexes`, plus the leading
    columns of a composite partition key. Cassandra refuses an index on a lone
    partition key column (the partition itself is the index there)."""
    columns: list[str] = []
    if len(table.partition) > 1:
        columns += table.partition[:-1]
    for index in table.indexes:
        columns += index
    return tuple(dict.fromkeys(c for c in columns if c not in table.partition or len(table.partition) > 1))


def index_name(physical: str, column: str) -> str:
    name = f"{physical}_{column}_sai"
    if len(name) > 48:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{physical[:30]}_{digest}_sai"
    return check_name(name)


def ddl(keyspace: str, table: Table, physical: str) -> list[str]:
    """CREATE TABLE / CREATE INDEX statements for one table, all idempotent."""
    check_name(keyspace)
    check_name(physical)
    for column in table.columns:
        if table.type_of(column) not in CQL_TYPES:
            raise TypeError(f"{table.name}.{column}: no Cassandra type for {table.type_of(column)!r}")
    if not table.partition:
        raise ValueError(f"{table.name}: a table needs a partition key")
    columns = ", ".join(f"{q(c)} {cql_type(table, c)}" for c in table.columns)
    partition = ", ".join(q(c) for c in table.partition)
    clustering = "".join(f", {q(c)}" for c in table.clustering)
    statements = [
        f"CREATE TABLE IF NOT EXISTS {keyspace}.{physical} ({columns}, PRIMARY KEY (({partition}){clustering}))"
    ]
    statements += [
        f"CREATE INDEX IF NOT EXISTS {index_name(physical, c)} ON {keyspace}.{physical} ({q(c)}) USING 'sai'"
        for c in indexed_columns(table)
    ]
    return statements


def fingerprint(tables: Iterable[Table], prefix: str) -> str:
    """A digest of everything the generated DDL depends on; equal digests, equal schema."""
    described = [
        {
            "name": prefix + t.name,
            "partition": list(t.partition),
            "clustering": list(t.clustering),
            "columns": [[c, cql_type(t, c)] for c in t.columns],
            "indexes": list(indexed_columns(t)),
        }
        for t in sorted(tables, key=lambda t: t.name)
    ]
    body = orjson.dumps({"ddl_version": DDL_VERSION, "tables": described}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()
