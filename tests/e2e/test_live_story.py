"""A day in the life of four people, over real HTTP against running `glimpse` processes,
once for the embedded app and once for the scale stack.

Covers every endpoint of API.md v1 once, in the order a product would use them,
checking the consistency token, idempotency and privacy along the way. In the scale
stack reads are eventually consistent, so the people pass on the consistency tokens
of the writes they expect to see, as a client would: every read carries the merged
token of every write made so far.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import httpx
from PIL import Image

from tests.e2e.http_clients import Client, Tokens


def _jpeg(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, "JPEG")
    return out.getvalue()


class Person:
    def __init__(self, base: str, username: str, tokens: Tokens) -> None:
        self.http = Client(base, tokens)
        self.username = username
        r = self.http.post("/v1/accounts", json={"username": username, "password": "a long password"})
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]
        r = self.http.post("/v1/sessions", json={"username": username, "password": "a long password"})
        assert r.status_code == 200, r.text
        assert r.json()["token_type"] == "bearer" and r.json()["expires_in"] > 0
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        self.token = r.json()["access_token"]

    def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None


def test_four_people_use_every_endpoint(api_base: str) -> None:
    live_server = api_base
    tokens = Tokens()
    anon = Client(live_server, tokens)
    assert anon.get("/healthz").json() == {"status": "ok"}
    assert anon.get("/readyz").status_code == 200
    assert "# TYPE glimpse_" in anon.get("/metrics").text
    assert anon.get("/openapi.json").json()["info"]["title"] == "Glimpse"

    ana, ben, cai, dee = (Person(live_server, n, tokens) for n in ("ana", "ben", "cai", "dee"))
    assert anon.post("/v1/accounts", json={"username": "ANA", "password": "another password"}).status_code == 409
    assert anon.post("/v1/sessions", json={"username": "ana", "password": "wrong password"}).status_code == 401

    # Profiles and privacy settings.
    me = ana.ok("PATCH", "/v1/me", json={"display_name": "Ana", "bio": "photos"})
    assert me["display_name"] == "Ana"
    dee.ok("PATCH", "/v1/me", json={"private": True})

    # Follows, a follow request, approval.
    assert ben.ok("POST", "/v1/users/ana/follow") == {"state": "following"}
    assert cai.ok("POST", "/v1/users/ana/follow") == {"state": "following"}
    assert ana.ok("POST", "/v1/users/ben/follow") == {"state": "following"}
    assert ana.ok("POST", "/v1/users/dee/follow") == {"state": "requested"}
    assert [r["username"] for r in dee.ok("GET", "/v1/me/follow-requests")["items"]] == ["ana"]
    dee.ok("POST", "/v1/me/follow-requests/ana/approve")
    assert cai.ok("POST", "/v1/users/dee/follow") == {"state": "requested"}
    dee.ok("POST", "/v1/me/follow-requests/cai/deny")
    profile = ben.ok("GET", "/v1/users/ana")
    assert profile["counts"] == {"posts": 0, "followers": 2, "following": 2}
    assert profile["followed_by_me"] is True and profile["follows_me"] is True
    assert {u["username"] for u in anon.get("/v1/users/ana/followers").json()["items"]} == {"ben", "cai"}
    assert [u["username"] for u in ana.ok("GET", "/v1/users/dee/following")["items"]] == []
    assert cai.http.get("/v1/users/dee/followers").status_code == 404
    assert [u["username"] for u in cai.ok("GET", "/v1/users/ben/mutuals")["items"]] == ["ana"]
    assert "ben" in {s["username"] for s in cai.ok("GET", "/v1/me/suggestions")["items"]}
    ana.ok("PUT", "/v1/me/close-friends", json={"usernames": ["ben"]})

    # Media and a post, with idempotency and the consistency token.
    media = ana.ok("POST", "/v1/media", 202, files={"file": ("p.jpg", _jpeg((200, 80, 40)), "image/jpeg")})
    assert media["status"] == "processing"
    deadline = time.monotonic() + 20  # the media worker makes the renditions in the background
    while (shown := ana.ok("GET", f"/v1/media/{media['id']}"))["status"] == "processing":
        assert time.monotonic() < deadline, "media never became ready"
        time.sleep(0.02)
    assert shown["status"] == "ready" and shown["width"] == 64
    body = anon.get(shown["renditions"][0]["url"])
    assert body.status_code == 200 and "immutable" in body.headers["cache-control"]
    new_post = {"caption": "Sunset with @ben", "media_ids": [media["id"]], "audience": "public"}
    r = ana.http.post("/v1/posts", json=new_post, headers={"Idempotency-Key": "post-1"})
    assert r.status_code == 201, r.text
    again = ana.http.post("/v1/posts", json=new_post, headers={"Idempotency-Key": "post-1"})
    assert again.json()["id"] == r.json()["id"]
    post_id = r.json()["id"]
    token = r.headers["X-Glimpse-Consistency"]
    feed = ben.ok("GET", "/v1/feed", headers={"X-Glimpse-Consistency": token})  # this write's token alone
    assert [p["id"] for p in feed["items"]] == [post_id]
    assert [p["id"] for p in anon.get("/v1/users/ana/posts").json()["items"]] == [post_id]

    # Engagement.
    ben.ok("POST", f"/v1/posts/{post_id}/like")
    cai.ok("POST", f"/v1/posts/{post_id}/like")
    cai.ok("DELETE", f"/v1/posts/{post_id}/like")
    comment = cai.ok("POST", f"/v1/posts/{post_id}/comments", 201, json={"text": "Gorgeous"})
    ben.ok("POST", f"/v1/posts/{post_id}/comments", 201, json={"text": "Thanks for the tag"})
    ben.ok("POST", f"/v1/posts/{post_id}/bookmark")
    post = ben.ok("GET", f"/v1/posts/{post_id}")
    assert (post["like_count"], post["comment_count"], post["liked"], post["bookmarked"]) == (1, 2, True, True)
    assert [u["username"] for u in anon.get(f"/v1/posts/{post_id}/likes").json()["items"]] == ["ben"]
    assert [c["text"] for c in anon.get(f"/v1/posts/{post_id}/comments").json()["items"]] == [
        "Gorgeous",
        "Thanks for the tag",
    ]
    assert [p["id"] for p in ben.ok("GET", "/v1/me/bookmarks")["items"]] == [post_id]
    ana.ok("DELETE", f"/v1/comments/{comment['id']}", 204)
    ben.ok("DELETE", f"/v1/posts/{post_id}/bookmark")

    # Notifications, live over SSE and as a list.
    received: list[str] = []
    connected = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET",
            f"{live_server}/v1/notifications/stream",
            headers={"Authorization": f"Bearer {ana.token}"},
            timeout=10,
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith(":"):
                    connected.set()
                if line.startswith("data:"):
                    received.append(line)
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10), "the stream did not open"
    dee.ok("POST", f"/v1/posts/{post_id}/like")
    listener.join(10)
    assert received and "like" in received[0]
    notes = ana.ok("GET", "/v1/notifications")["items"]
    like_note = next(n for n in notes if n["type"] == "like")
    assert like_note["count"] == 2 and not like_note["read"]
    assert {n["type"] for n in notes} >= {"like", "comment", "follow"}
    ana.ok("POST", "/v1/notifications/read", 204)
    assert all(n["read"] for n in ana.ok("GET", "/v1/notifications")["items"])
    assert any(n["type"] == "mention" for n in ben.ok("GET", "/v1/notifications")["items"])

    # Stories: close friends only, viewers for the author only.
    story_media = ana.ok("POST", "/v1/media", 202, files={"file": ("s.jpg", _jpeg((20, 90, 200)), "image/jpeg")})
    story = ana.ok("POST", "/v1/stories", 201, json={"media_id": story_media["id"], "audience": "close_friends"})
    assert story["expires_at"] > story["created_at"]
    assert [t["user"]["username"] for t in ben.ok("GET", "/v1/stories")["items"]] == ["ana"]
    assert cai.ok("GET", "/v1/stories")["items"] == []
    assert cai.http.post(f"/v1/stories/{story['id']}/view").status_code == 404
    ben.ok("POST", f"/v1/stories/{story['id']}/view", 204)
    assert [s["seen"] for s in ben.ok("GET", "/v1/users/ana/stories")["items"]] == [True]
    assert [v["user"]["username"] for v in ana.ok("GET", f"/v1/stories/{story['id']}/viewers")["items"]] == ["ben"]
    assert ben.http.get(f"/v1/stories/{story['id']}/viewers").status_code == 403

    # A block hides everything both ways and undoes the follows.
    cai.ok("POST", "/v1/users/ana/block")
    assert cai.http.get("/v1/users/ana").status_code == 404
    assert ana.http.get("/v1/users/cai").status_code == 404
    assert ana.http.get(f"/v1/posts/{post_id}").status_code == 200
    assert cai.http.get(f"/v1/posts/{post_id}").status_code == 404
    assert ana.ok("GET", "/v1/users/ana")["counts"]["followers"] == 1  # ben; cai no longer
    cai.ok("DELETE", "/v1/users/ana/block")

    # Unfollow, delete the post, delete an account.
    ben.ok("DELETE", "/v1/users/ana/follow")
    ana.ok("DELETE", f"/v1/posts/{post_id}", 204)
    assert anon.get(f"/v1/posts/{post_id}").status_code == 404
    dee.ok("DELETE", "/v1/me", 204)
    assert anon.get("/v1/users/dee").status_code == 404
    assert dee.http.get("/v1/feed").status_code == 401

    # Bad input never becomes a 500.
    for method, path, kw in [
        ("POST", "/v1/posts", {"content": b"{not json"}),
        ("POST", "/v1/posts", {"json": {"caption": "x" * 10_000, "media_ids": [], "audience": "public"}}),
        ("GET", "/v1/feed?limit=1000", {}),
        ("GET", "/v1/feed?cursor=%%%", {}),
        ("GET", "/v1/posts/not-a-number", {}),
        ("POST", "/v1/media", {"files": {"file": ("x.jpg", b"GIF89a-not-really", "image/jpeg")}}),
    ]:
        status = ana.http.request(method, path, **kw).status_code
        assert 400 <= status < 500, (method, path, status)
