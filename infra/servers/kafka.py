"""Apache Kafka 3.9 (KRaft, single node) from Maven Central jars, run on the local JDK."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import uuid

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

NAME = "kafka"
VERSION = "3.9.2"
READY_TOPIC = "__glimpse_ready"

# kafka-run-class.sh defaults, with a heap small enough to share the box with Cassandra.
JVM_OPTS = [
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    f"-Dlog4j.configuration=file:{CONF_DIR / 'kafka-log4j.properties'}",
]


def install(version: str = VERSION) -> None:
    maven_install(NAME, version)


def _cluster_id() -> str:
    # Kafka's Uuid is 16 random bytes in url-safe base64; a leading '-' would read as a CLI flag.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


async def _create_and_list_topic(bootstrap: str) -> None:
    host, _, port = bootstrap.rpartition(":")
    # aiokafka logs every refused connection; a plain socket check keeps the wait quiet.
    if not port_open(int(port), host):
        raise ServerError(f"{bootstrap} not accepting connections yet")
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(READY_TOPIC, 1, 1)])
        if READY_TOPIC not in await admin.list_topics():
            raise ServerError(f"topic {READY_TOPIC} not listed yet: {response}")
        await admin.delete_topics([READY_TOPIC])
    finally:
        await admin.close()


def probe(env: dict[str, str]) -> None:
    asyncio.run(_create_and_list_topic(env["GLIMPSE_KAFKA_BOOTSTRAP"]))


def start(port: int | None = None, version: str = VERSION, deadline_s: float = 120.0) -> Server:
    timings: dict[str, float] = {}
    with timed(NAME, "install", timings):
        libs = maven_install(NAME, version)
    port = port or free_port()
    data_dir = make_data_dir(NAME)
    properties = render(
        "kafka-server.properties",
        data_dir / "server.properties",
        port=port,
        controller_port=free_port(),
        data_dir=data_dir,
    )
    base = [java(), *JVM_OPTS, "-cp", f"{libs}/*"]
    with timed(NAME, "start", timings):
        formatted = subprocess.run(
            [*base, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(properties)],
            cwd=data_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if formatted.returncode != 0:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise ServerError(f"kafka storage format failed:\n{formatted.stdout}{formatted.stderr}")
        log_path = data_dir / "server.log"
        process = spawn([*base, "kafka.Kafka", str(properties)], data_dir, log_path)
        server = Server(
            name=NAME,
            version=version,
            pid=process.pid,
            data_dir=data_dir,
            log_path=log_path,
            env={"GLIMPSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"},
            timings=timings,
            process=process,
        )
        wait_ready(server, lambda: probe(server.env), deadline_s)
    return server
