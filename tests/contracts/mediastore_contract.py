"""Behaviour every MediaStore adapter must share; subclass per adapter with `make()`.

`MediaStoreContract` is the port (put/get/exists/delete). `ServedMediaStoreContract`
adds what a store that serves clients directly must do: keep each object's content
type and hand out presigned GET URLs that work without credentials and expire.

Every test writes under its own random key prefix, so adapters whose storage
outlives one test (a bucket per test class) never see another test's objects.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(4096)


class MediaStoreContract:
    def make(self) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def store(self) -> Any:
        return self.make()

    @pytest.fixture
    def ns(self) -> str:
        return f"t{uuid.uuid4().hex[:12]}"

    def test_put_then_get_round_trips_bytes(self, store: Any, ns: str) -> None:
        store.put(f"{ns}/a.png", PNG, "image/png")
        assert store.get(f"{ns}/a.png") == PNG
        assert store.exists(f"{ns}/a.png")

    def test_large_binary_object_round_trips(self, store: Any, ns: str) -> None:
        data = os.urandom(3 * 1024 * 1024 + 17)  # several network chunks, odd length
        store.put(f"{ns}/big.bin", data, "application/octet-stream")
        assert store.get(f"{ns}/big.bin") == data

    def test_empty_object_is_not_missing(self, store: Any, ns: str) -> None:
        store.put(f"{ns}/empty", b"", "application/octet-stream")
        assert store.get(f"{ns}/empty") == b""
        assert store.exists(f"{ns}/empty")

    def test_put_overwrites(self, store: Any, ns: str) -> None:
        store.put(f"{ns}/a", PNG, "image/png")
        store.put(f"{ns}/a", JPEG, "image/jpeg")
        assert store.get(f"{ns}/a") == JPEG

    def test_missing_key_is_none_and_false(self, store: Any, ns: str) -> None:
        assert store.get(f"{ns}/nothing.png") is None
        assert store.exists(f"{ns}/nothing.png") is False

    def test_delete_is_idempotent(self, store: Any, ns: str) -> None:
        store.delete(f"{ns}/never-there")
        store.put(f"{ns}/a", PNG, "image/png")
        store.delete(f"{ns}/a")
        store.delete(f"{ns}/a")
        assert store.get(f"{ns}/a") is None
        assert store.exists(f"{ns}/a") is False

    def test_keys_with_slashes_are_independent(self, store: Any, ns: str) -> None:
        keys = [f"{ns}/originals/ab/{'ab' + 'c' * 62}.png", f"{ns}/originals/ab/other.png", f"{ns}/r/640/x.webp"]
        for n, key in enumerate(keys):
            store.put(key, PNG + bytes([n]), "image/png")
        store.delete(keys[0])
        assert store.get(keys[0]) is None
        assert store.get(keys[1]) == PNG + bytes([1])
        assert store.get(keys[2]) == PNG + bytes([2])
        assert not store.exists(f"{ns}/originals/ab")  # a "folder" is not an object


class ServedMediaStoreContract(MediaStoreContract):
    """For stores with `content_type(key)` and `presigned_get(key, expires)`."""

    def fetch(self, url: str) -> tuple[int, bytes, dict[str, str]]:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def test_content_type_round_trips_and_follows_overwrites(self, store: Any, ns: str) -> None:
        store.put(f"{ns}/a", PNG, "image/png")
        assert store.content_type(f"{ns}/a") == "image/png"
        store.put(f"{ns}/a", JPEG, "image/jpeg")
        assert store.content_type(f"{ns}/a") == "image/jpeg"
        assert store.content_type(f"{ns}/missing") is None

    def test_presigned_url_serves_bytes_and_type_without_credentials(self, store: Any, ns: str) -> None:
        key = f"{ns}/originals/ab/photo.jpg"
        store.put(key, JPEG, "image/jpeg")
        status, body, headers = self.fetch(store.presigned_get(key, 60))
        assert status == 200
        assert body == JPEG
        assert headers["Content-Type"] == "image/jpeg"

    def test_presigned_url_of_a_missing_key_does_not_serve(self, store: Any, ns: str) -> None:
        status, _, _ = self.fetch(store.presigned_get(f"{ns}/missing.png", 60))
        assert status in (403, 404)

    def test_presigned_url_expires(self, store: Any, ns: str) -> None:
        store.put(f"{ns}/a.png", PNG, "image/png")
        url = store.presigned_get(f"{ns}/a.png", 1)
        deadline = time.monotonic() + 15
        statuses = []
        while time.monotonic() < deadline:
            status, _, _ = self.fetch(url)
            statuses.append(status)
            if status != 200:
                break
            time.sleep(0.2)
        assert statuses[0] == 200, statuses
        assert statuses[-1] == 403, f"the URL still served after 15 s: {statuses}"

    def test_presigned_url_is_bound_to_its_key(self, store: Any, ns: str) -> None:
        store.put(f"{ns}/a.png", PNG, "image/png")
        store.put(f"{ns}/b.png", JPEG, "image/png")
        url = store.presigned_get(f"{ns}/a.png", 60)
        status, _, _ = self.fetch(url.replace(f"{ns}/a.png", f"{ns}/b.png"))
        assert status == 403

    def test_presigned_lifetime_is_checked(self, store: Any, ns: str) -> None:
        for expires in (0, -1, 7 * 24 * 3600 + 1):
            with pytest.raises(ValueError):
                store.presigned_get(f"{ns}/a.png", expires)
