"""S3MediaStore against the real S3 server (versitygw in tests): the served MediaStore contract.

Each test class gets its own bucket, emptied and deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from commands.errors import Unavailable
from infra.media.s3_store import IMMUTABLE, S3MediaStore
from infra.settings import Settings
from tests.contracts.mediastore_contract import PNG, ServedMediaStoreContract

pytestmark = pytest.mark.integration

REQUIRED = ("GLIMPSE_S3_ENDPOINT", "GLIMPSE_S3_ACCESS_KEY", "GLIMPSE_S3_SECRET_KEY")


def s3_settings(bucket: str) -> Settings:
    missing = [k for k in REQUIRED if not os.environ.get(k)]
    if missing:
        pytest.skip(f"no S3 server: {', '.join(missing)} not set (make test or infra.servers.stack sets them)")
    return Settings(s3_bucket=bucket)


class TestS3MediaStore(ServedMediaStoreContract):
    @pytest.fixture(scope="class", autouse=True)
    def bucket_store(self) -> Iterator[S3MediaStore]:
        store = S3MediaStore(s3_settings(f"glimpse-test-{uuid.uuid4().hex[:16]}"))
        store.ensure_bucket()
        try:
            yield store
        finally:
            store.delete_bucket()
            store.close()

    @pytest.fixture
    def store(self, bucket_store: S3MediaStore) -> Any:
        return bucket_store

    def make(self) -> Any:  # pragma: no cover - the class fixture above provides the store
        raise NotImplementedError

    def test_ensure_bucket_is_idempotent(self, store: S3MediaStore) -> None:
        store.ensure_bucket()
        store.ensure_bucket()

    def test_objects_are_served_as_immutable(self, store: S3MediaStore, ns: str) -> None:
        store.put(f"{ns}/a.png", PNG, "image/png")
        status, _, headers = self.fetch(store.presigned_get(f"{ns}/a.png", 60))
        assert status == 200
        assert headers["Cache-Control"] == IMMUTABLE

    def test_another_store_on_the_same_bucket_sees_the_objects(self, store: S3MediaStore, ns: str) -> None:
        other = S3MediaStore(Settings(s3_bucket=store.bucket))
        try:
            store.put(f"{ns}/shared.png", PNG, "image/png")
            assert other.get(f"{ns}/shared.png") == PNG
        finally:
            other.close()


def test_an_unreachable_server_is_unavailable_not_a_crash() -> None:
    settings = s3_settings("glimpse-unreachable").model_copy(update={"s3_endpoint": "http://127.0.0.1:9"})
    store = S3MediaStore(settings)
    try:
        with pytest.raises(Unavailable):
            store.get("a.png")
        with pytest.raises(Unavailable):
            store.put("a.png", PNG, "image/png")
    finally:
        store.close()


def test_delete_bucket_removes_every_object() -> None:
    store = S3MediaStore(s3_settings(f"glimpse-test-{uuid.uuid4().hex[:16]}"))
    store.ensure_bucket()
    try:
        for n in range(3):
            store.put(f"a/{n}.png", PNG, "image/png")
    finally:
        store.delete_bucket()
    try:
        store.ensure_bucket()  # recreated empty
        assert store.get("a/0.png") is None
    finally:
        store.delete_bucket()
        store.close()
