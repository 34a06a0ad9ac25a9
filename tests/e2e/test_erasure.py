"""DELETE /v1/me erases a person's data from an immutable log (crypto-shredding), embedded.

The log is written sealed from the first event; deleting the account shreds the key,
so the log's bytes never held the data in the clear and can no longer be opened, no
read model shows it, and a replay from the log afterwards brings none of it back.
(tests/e2e/test_erasure_scale.py does the same against Kafka, Cassandra and S3.)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from infra.personal_data.keys import SqliteSubjectKeys
from infra.personal_data.wiring import KEYS_FILE, embedded_codec
from infra.readmodel_digest import projection_digests
from infra.replay_cli import replay_offline
from infra.storage.sqlite_eventlog import SqliteEventLog
from projections.registry import PROJECTIONS
from tests.apphelpers import User, make_client
from tests.e2e.posts_support import png, upload, wait_for_media

MARKS = ("zqbio", "zqname", "zqcaption", "zqcomment")


def cells(db: Path) -> list[str]:
    """Every text cell of every table of a SQLite file."""
    conn = sqlite3.connect(db)
    try:
        out: list[str] = []
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                out += [str(v) for v in row if isinstance(v, str | bytes)]
        return out
    finally:
        conn.close()


def log_blobs(data_dir: Path) -> list[bytes]:
    conn = sqlite3.connect(data_dir / "events.db")
    try:
        return [bytes(data) for (data,) in conn.execute("SELECT data FROM events")]
    finally:
        conn.close()


def leaked(db: Path, secrets: list[str]) -> list[str]:
    return [c for c in cells(db) for s in secrets if s in c]


def test_deleting_an_account_erases_its_data_from_log_read_models_and_replays(tmp_path: Path) -> None:
    client, container = make_client(tmp_path)
    with client:  # the lifespan runs the media worker
        alice, bob = User(client, "zqalice"), User(client)
        assert alice.patch("/v1/me", json={"bio": "zqbio lives here", "display_name": "zqname"}).status_code == 200
        mid = upload(alice, png()).json()["id"]
        rendition_url = wait_for_media(alice, mid)["renditions"][0]["url"]
        r = alice.post("/v1/posts", json={"caption": "zqcaption of my kid", "media_ids": [mid], "audience": "public"})
        assert r.status_code == 201, r.text
        alice_post = r.json()["id"]
        bob_mid = upload(bob, png(color=(1, 2, 3))).json()["id"]
        wait_for_media(bob, bob_mid)
        bob_post = bob.post("/v1/posts", json={"caption": "bob's own words", "media_ids": [bob_mid]}).json()["id"]
        assert alice.post(f"/v1/posts/{bob_post}/comments", json={"text": "zqcomment call me"}).status_code == 201
        assert bob.post(f"/v1/posts/{alice_post}/comments", json={"text": "bob replies"}).status_code == 201
        secrets = [*MARKS, "zqalice", rendition_url.rsplit("/", 1)[-1].split(".")[0]]

        # Sealed from the first event: the log never holds any of it in the clear.
        assert not [s for s in secrets for blob in log_blobs(tmp_path) if s.encode() in blob]
        assert leaked(tmp_path / "readmodels.db", secrets)  # the check can fail: the data is there, live

        assert alice.delete("/v1/me").status_code == 204
        assert SqliteSubjectKeys(tmp_path / KEYS_FILE).key(int(alice.id), create=False) is None
        assert leaked(tmp_path / "readmodels.db", secrets) == []
        assert leaked(tmp_path / "events.db", secrets) == []  # the username's reservation went too
        assert client.get(rendition_url).status_code == 404
        assert bob.get(f"/v1/posts/{bob_post}").json()["caption"] == "bob's own words"
        assert bob.get(f"/v1/posts/{bob_post}/comments").json()["items"] == []
        live = projection_digests(container.read, PROJECTIONS)
    container.close()

    # The log read with its own key store: alice's fields are gone, everything else is there.
    log = SqliteEventLog(tmp_path / "events.db", embedded_codec(tmp_path))
    dumped = " ".join(e.model_dump_json() for _, e in log.read(0, 10**6))
    log.close()
    assert not [s for s in secrets if s in dumped]
    assert "bob's own words" in dumped and "bob replies" in dumped

    # A replay from the log afterwards: the same read models, nothing of alice's comes back.
    replay_offline(container.settings, [], grace_seconds=0)
    assert leaked(tmp_path / "readmodels.db", secrets) == []
    client, again = make_client(tmp_path)
    with client:
        assert projection_digests(again.read, PROJECTIONS) == live
        assert client.get("/v1/users/zqalice").status_code == 404
    again.close()
