"""DELETE /v1/me in the scale stack: the Kafka log holds only ciphertext of a person's data,
and once the worker applies the deletion, the key in Cassandra is gone, no Cassandra read
model shows their data, their media is gone from S3, and the log read with the live key
store yields none of it (tests/e2e/test_erasure.py is the embedded twin)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from projections.registry import all_tables
from tests.e2e.conftest import ScaleStack
from tests.e2e.test_scale_services import _signed_up

cassandra = pytest.importorskip("cassandra")


def _settings(stack: ScaleStack) -> Settings:
    return Settings(cassandra_keyspace=stack.name, kafka_topic_prefix=stack.name, worker_group=stack.name)


def kafka_values(settings: Settings) -> list[bytes]:
    """Every record of every stream topic, up to the end offsets at the time of the call."""
    from aiokafka import AIOKafkaConsumer

    from infra.kafka.topics import all_topics, bootstrap_servers

    async def run() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            *all_topics(settings),
            bootstrap_servers=bootstrap_servers(settings),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        out: list[bytes] = []
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out += [r.value for r in records if r.value is not None]
                parts = consumer.assignment()
                ends = await consumer.end_offsets(list(parts)) if parts else {}
                positions = {p: await consumer.position(p) for p in parts}
                if parts and all(positions[p] >= ends[p] for p in parts):
                    break
        finally:
            await consumer.stop()
        return out

    return asyncio.run(run())


def _unique_png() -> bytes:
    """Bytes no other test uploads: content-addressed renditions are shared by equal uploads."""
    import io
    import random

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), tuple(random.randrange(256) for _ in range(3))).save(out, "PNG")  # type: ignore[arg-type]
    return out.getvalue()


def until(check: Callable[[], Any], seconds: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_deleting_an_account_shreds_its_data_in_the_scale_stack(scale_stack: ScaleStack) -> None:
    from infra.cassandra.readmodel import CassandraReadModel
    from infra.cassandra.session import connect
    from infra.cassandra.subject_keys import CassandraSubjectKeys
    from infra.personal_data.codec import EventCodec
    from infra.readmodel_digest import table_rows

    settings = _settings(scale_stack)
    command = httpx.Client(base_url=scale_stack.command, timeout=30)
    query = httpx.Client(base_url=scale_stack.query, timeout=30)
    alice, token = _signed_up(command, "zqs_alice")
    bob, token_b = _signed_up(command, "zqs_bob")
    alice_id = query.get("/v1/me", headers=alice | {"X-Glimpse-Consistency": token}).json()["id"]
    both = {"X-Glimpse-Consistency": f"{token},{token_b}"}
    r = command.patch("/v1/me", json={"bio": "zqsbio here", "display_name": "zqsname"}, headers=alice | both)
    assert r.status_code == 200, r.text
    r = command.post("/v1/media", headers=alice | both, files={"file": ("a.png", _unique_png(), "image/png")})
    assert r.status_code == 202, r.text
    media_id, written = r.json()["id"], r.headers["X-Glimpse-Consistency"]
    media = until(
        lambda: (
            (m := query.get(f"/v1/media/{media_id}", headers=alice | {"X-Glimpse-Consistency": written}).json())[
                "status"
            ]
            == "ready"
            and m
        ),
        what="the media worker",
    )
    rendition_url = media["renditions"][0]["url"]
    r = command.post(
        "/v1/posts",
        json={"caption": "zqscaption at home", "media_ids": [media_id]},
        headers=alice | {"X-Glimpse-Consistency": written},
    )
    assert r.status_code == 201, r.text
    r = command.post("/v1/media", headers=bob | both, files={"file": ("b.png", _unique_png(), "image/png")})
    bob_media = r.json()["id"]
    r = command.post(
        "/v1/posts",
        json={"caption": "bob in the clear", "media_ids": [bob_media]},
        headers=bob | {"X-Glimpse-Consistency": r.headers["X-Glimpse-Consistency"]},
    )
    assert r.status_code == 201, r.text
    bob_post, written = r.json()["id"], r.headers["X-Glimpse-Consistency"]
    r = command.post(
        f"/v1/posts/{bob_post}/comments",
        json={"text": "zqscomment call me"},
        headers=alice | {"X-Glimpse-Consistency": written},
    )
    assert r.status_code == 201, r.text
    secrets = ["zqsbio", "zqsname", "zqscaption", "zqscomment", "zqs_alice", rendition_url.rsplit("/", 1)[-1][:40]]

    values = kafka_values(settings)
    assert values and not [s for s in secrets for v in values if s.encode() in v]  # sealed from the first event

    r = command.delete("/v1/me", headers=alice | {"X-Glimpse-Consistency": r.headers["X-Glimpse-Consistency"]})
    assert r.status_code == 204, r.text
    session = connect(settings)
    try:
        keys = CassandraSubjectKeys(session, settings.cassandra_keyspace)
        until(lambda: keys.key(int(alice_id), create=False) is None, what="the worker to shred the key")

        dumped = " ".join(EventCodec(keys).decode(v).model_dump_json() for v in kafka_values(settings))
        assert not [s for s in secrets if s in dumped]
        assert "bob in the clear" in dumped

        store = CassandraReadModel(session, settings.cassandra_keyspace, all_tables())
        shown = [str(v) for t in all_tables() for row in table_rows(store, t) for v in row.values()]
        assert not [s for s in secrets for cell in shown if s in cell]
        assert any("bob in the clear" in cell for cell in shown)
    finally:
        session.cluster.shutdown()
    until(
        lambda: (
            httpx.get(rendition_url if "://" in rendition_url else scale_stack.query + rendition_url).status_code == 404
        ),
        what="the rendition blob to go",
    )
