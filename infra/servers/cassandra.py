"""Apache Cassandra 5.0 (single node) from Maven Central jars, run on the local JDK 17."""

from __future__ import annotations

import os
from pathlib import Path

from infra.servers.common import (
    CONF_DIR,
    Server,
    ServerError,
    free_port,
    java,
    make_data_dir,
    maven_install,
    port_open,
    render,
    spawn,
    timed,
    wait_ready,
)

NAME = "cassandra"
VERSION = "5.0.6"
# Small enough to share the CI box with Kafka and the tests; a bulk load (a 1M-event replay)
# wants more: GLIMPSE_CASSANDRA_HEAP=4G.
HEAP_ENV = "GLIMPSE_CASSANDRA_HEAP"


def heap() -> list[str]:
    return ["-Xms512m", f"-Xmx{os.environ.get(HEAP_ENV, '1G')}"]


def install(version: str = VERSION) -> None:
    maven_install(NAME, version)


def _jvm17_options() -> list[str]:
    options: list[str] = []
    for line in (CONF_DIR / "cassandra-jvm17.options").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            options.extend(line.split())
    return options


def _jamm(libs: Path) -> Path:
    # Cassandra measures memtable sizes with jamm, which must be loaded as an agent.
    found = sorted(libs.glob("jamm-*.jar"))
    if not found:
        raise ServerError(f"no jamm jar in {libs}")
    return found[-1]


def probe(env: dict[str, str]) -> None:
    host = env["GLIMPSE_CASSANDRA_HOSTS"].split(",")[0]
    port = int(env["GLIMPSE_CASSANDRA_PORT"])
    # The driver logs every refused connection; a plain socket check keeps the wait quiet.
    if not port_open(port, host):
        raise ServerError(f"CQL port {port} not open yet")
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=10)
    cluster = Cluster(
        [host],
        port=port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=5,
        control_connection_timeout=5,
    )
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local").one()
        if row is None:
            raise ServerError("system.local returned no row")
    finally:
        cluster.shutdown()


def start(port: int | None = None, version: str = VERSION, deadline_s: float = 240.0) -> Server:
    timings: dict[str, float] = {}
    with timed(NAME, "install", timings):
        libs = maven_install(NAME, version)
    port = port or free_port()
    data_dir = make_data_dir(NAME)
    config = render(
        "cassandra.yaml",
        data_dir / "cassandra.yaml",
        storage_port=free_port(),
        native_port=port,
        data_dir=data_dir,
    )
    command = [
        java(),
        *heap(),
        *_jvm17_options(),
        f"-javaagent:{_jamm(libs)}",
        f"-Dcassandra.config={config.as_uri()}",
        f"-Dcassandra.storagedir={data_dir}",
        f"-Dcassandra.logdir={data_dir}",
        f"-Dlogback.configurationFile={CONF_DIR / 'cassandra-logback.xml'}",
        "-Dcassandra-foreground=yes",
        # Single node: nothing to gossip with, so none of the cluster-join waits apply.
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.ring_delay_ms=1000",
        "-Dcassandra.load_ring_state=false",
        "-Dcassandra.initial_token=0",
        # Skips fsync of system tables: fine for throwaway test data only.
        "-Dcassandra.unsafesystem=true",
        "-cp",
        f"{libs}/*",
        "org.apache.cassandra.service.CassandraDaemon",
    ]
    log_path = data_dir / "server.log"
    with timed(NAME, "start", timings):
        process = spawn(command, data_dir, log_path)
        server = Server(
            name=NAME,
            version=version,
            pid=process.pid,
            data_dir=data_dir,
            log_path=log_path,
            env={"GLIMPSE_CASSANDRA_HOSTS": "127.0.0.1", "GLIMPSE_CASSANDRA_PORT": str(port)},
            timings=timings,
            process=process,
        )
        wait_ready(server, lambda: probe(server.env), deadline_s, interval_s=1.0)
    return server
