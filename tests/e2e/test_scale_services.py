"""The scale stack as separate processes: a command service, a query service and the
projection worker, joined only by Kafka, Cassandra and Redis."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

from tests.e2e.conftest import ScaleStack


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(out, "PNG")
    return out.getvalue()


def _signed_up(command: httpx.Client, username: str) -> tuple[dict[str, str], str]:
    r = command.post("/v1/accounts", json={"username": username, "password": "a long password"})
    assert r.status_code == 201, r.text
    token = r.headers["X-Glimpse-Consistency"]
    # Signing in reads the account: send the registration's token so it waits for the worker.
    r = command.post(
        "/v1/sessions",
        json={"username": username, "password": "a long password"},
        headers={"X-Glimpse-Consistency": token},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}, token


def test_a_write_on_the_command_service_is_readable_on_the_query_service(scale_stack: ScaleStack) -> None:
    command = httpx.Client(base_url=scale_stack.command, timeout=30)
    query = httpx.Client(base_url=scale_stack.query, timeout=30)
    author, _ = _signed_up(command, "svc_author")
    reader, token = _signed_up(command, "svc_reader")
    r = command.post("/v1/users/svc_author/follow", headers=reader | {"X-Glimpse-Consistency": token})
    assert r.json() == {"state": "following"}
    token = r.headers["X-Glimpse-Consistency"]

    r = command.post("/v1/media", headers=author, files={"file": ("a.png", _png(), "image/png")})
    assert r.status_code == 202, r.text
    media_id = r.json()["id"]
    r = command.post(
        "/v1/posts",
        json={"caption": "from the command side", "media_ids": [media_id], "audience": "followers"},
        headers=author | {"X-Glimpse-Consistency": f"{token},{r.headers['X-Glimpse-Consistency']}"},
    )
    assert r.status_code == 201, r.text
    post_id, token = r.json()["id"], r.headers["X-Glimpse-Consistency"]
    assert token.count(":") >= 2  # topic:partition:offset

    feed = query.get("/v1/feed", headers=reader | {"X-Glimpse-Consistency": token})
    assert [p["id"] for p in feed.json()["items"]] == [post_id]
    # Followers-only: an anonymous reader of the query service sees nothing.
    assert query.get(f"/v1/posts/{post_id}").status_code == 404


def test_each_service_serves_only_its_side(scale_stack: ScaleStack) -> None:
    query = httpx.Client(base_url=scale_stack.query, timeout=30)
    command = httpx.Client(base_url=scale_stack.command, timeout=30)
    assert query.post("/v1/accounts", json={"username": "nobody", "password": "a long password"}).status_code in (
        404,
        405,
    )
    assert command.get("/v1/feed").status_code in (404, 405)
    for base in (scale_stack.query, scale_stack.command):
        ready = httpx.get(f"{base}/readyz", timeout=30).json()
        assert ready["ready"] and set(ready["checks"]) == {"cassandra", "kafka", "redis", "s3"}


def test_a_notification_reaches_a_stream_on_another_process(scale_stack: ScaleStack) -> None:
    command = httpx.Client(base_url=scale_stack.command, timeout=30)
    star, _ = _signed_up(command, "svc_star")
    fan, token = _signed_up(command, "svc_fan")
    received: list[str] = []
    connected = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{scale_stack.query}/v1/notifications/stream", headers=star, timeout=30) as stream:
            for line in stream.iter_lines():
                if line.startswith(":"):
                    connected.set()
                if line.startswith("data:"):
                    received.append(line)
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(30), "the stream did not open"
    started = time.monotonic()
    r = command.post("/v1/users/svc_star/follow", headers=fan | {"X-Glimpse-Consistency": token})
    assert r.status_code == 200, r.text
    listener.join(30)
    assert received and "follow" in received[0], "the worker's notification never reached the query service"
    assert time.monotonic() - started < 30


def test_the_media_worker_makes_renditions_and_fails_broken_files(scale_stack: ScaleStack) -> None:
    command = httpx.Client(base_url=scale_stack.command, timeout=30)
    query = httpx.Client(base_url=scale_stack.query, timeout=30)
    owner, token = _signed_up(command, "svc_media")
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "images"
    outcomes = {}
    for name in ("Landscape_6.jpg", "truncated_jpeg.jpg"):
        data = (fixtures / name).read_bytes()
        r = command.post(
            "/v1/media",
            headers=owner | {"X-Glimpse-Consistency": token},
            files={"file": (name, data, "image/jpeg")},
        )
        assert r.status_code == 202, r.text
        media_id, written = r.json()["id"], r.headers["X-Glimpse-Consistency"]
        deadline = time.monotonic() + 60
        while True:
            shown = query.get(f"/v1/media/{media_id}", headers=owner | {"X-Glimpse-Consistency": written}).json()
            if shown["status"] != "processing" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        outcomes[name] = shown
    upright = outcomes["Landscape_6.jpg"]
    assert upright["status"] == "ready"
    assert upright["width"] > upright["height"]  # EXIF orientation 6 applied: a landscape
    assert {r["width"] for r in upright["renditions"]} >= {320, 640, 1080}
    rendition = query.get(upright["renditions"][0]["url"])
    assert rendition.status_code == 200 and "immutable" in rendition.headers["cache-control"]
    broken = outcomes["truncated_jpeg.jpg"]
    assert broken["status"] == "failed" and broken["reason"]
