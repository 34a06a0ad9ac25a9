"""Connecting to Cassandra: one `Session` per process, built from the settings.

The defaults favour correctness on a real cluster over the driver's own defaults:
LOCAL_QUORUM reads and writes (so a read after an acknowledged write sees it once
the replication factor is above one), LOCAL_SERIAL for lightweight transactions,
token-aware routing over the local data centre, protocol v5, and bounded timeouts
so that a dead node turns into an error instead of a hung request. Rows come back
as plain tuples: the adapters select columns by position.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Mapping
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement, tuple_factory

from infra.settings import Settings

CONNECT_TIMEOUT_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 15.0
# Schema changes wait for the schema to settle (and drops snapshot and delete files):
# on a busy node they take far longer than a query.
DDL_TIMEOUT_SECONDS = 120.0

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")


def check_name(name: str) -> str:
    """A keyspace or table name we are willing to splice into CQL."""
    if not _NAME.match(name):
        raise ValueError(f"not a valid Cassandra name: {name!r}")
    return name


def contact_points(settings: Settings) -> list[str]:
    hosts = [h.strip() for h in settings.cassandra_hosts.split(",") if h.strip()]
    if not hosts:
        raise ValueError("GLIMPSE_CASSANDRA_HOSTS names no host")
    return hosts


def _connection_class() -> Any:
    # libev is the driver's fastest reactor; fall back to the default where it is not built.
    try:
        from cassandra.io.libevreactor import LibevConnection
    except ImportError:  # pragma: no cover - depends on how the driver was built
        return None
    return LibevConnection


def connect(settings: Settings, *, request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> Session:
    """A connected session (no keyspace set: adapters name theirs in every statement).

    Close it with `session.cluster.shutdown()`.
    """
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=request_timeout,
        row_factory=tuple_factory,
    )
    options: dict[str, Any] = {}
    connection_class = _connection_class()
    if connection_class is not None:
        options["connection_class"] = connection_class
    cluster = Cluster(
        contact_points(settings),
        port=settings.cassandra_port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        control_connection_timeout=CONNECT_TIMEOUT_SECONDS,
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=30.0),
        # The driver leaves Nagle on: a request sent while the previous one on the connection
        # is unacknowledged waits for the server's delayed ACK (~40 ms on Linux).
        sockopts=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        **options,
    )
    try:
        return cluster.connect()
    except BaseException:
        cluster.shutdown()
        raise


def ensure_keyspace(session: Session, name: str, replication_factor: int) -> None:
    """Create the keyspace if missing. NetworkTopologyStrategy with a plain factor
    applies it to every data centre, and stays right when a second one is added."""
    if replication_factor < 1:
        raise ValueError("replication_factor must be at least 1")
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {check_name(name)} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', 'replication_factor': {int(replication_factor)}}}",
        timeout=DDL_TIMEOUT_SECONDS,
    )


def drop_keyspace(session: Session, name: str) -> None:
    session.execute(f"DROP KEYSPACE IF EXISTS {check_name(name)}", timeout=DDL_TIMEOUT_SECONDS)


class Statements:
    """Prepared statements of one keyspace, prepared on first use: `$ks` in each CQL text is the
    keyspace. Quorum reads and writes, serial consistency for lightweight transactions."""

    def __init__(self, session: Session, keyspace: str, cql: Mapping[str, str]) -> None:
        self._session = session
        self._ks = check_name(keyspace)
        self._cql = cql
        self._prepared: dict[str, PreparedStatement] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> PreparedStatement:
        found = self._prepared.get(name)
        if found is not None:
            return found
        with self._lock:
            if name not in self._prepared:
                statement = self._session.prepare(self._cql[name].replace("$ks", self._ks))
                statement.consistency_level = ConsistencyLevel.LOCAL_QUORUM
                statement.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
                self._prepared[name] = statement
            return self._prepared[name]
