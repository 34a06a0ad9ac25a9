"""Rendition URLs: the API route (embedded), public URLs under a base, time-windowed presigned GETs."""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from infra.media.local_store import LocalDiskMediaStore, MemoryMediaStore
from infra.media.rendition_urls import (
    Credentials,
    PresignedRenditionUrls,
    PublicRenditionUrls,
    bind_rendition_urls,
    rendition_urls,
)
from infra.media.s3_store import S3MediaStore
from infra.settings import Settings
from projections.media import RENDITION_URL, media_view, rendition_key, storage_key_for

SHA = "ab" + "0" * 62
KEY = rendition_key(SHA, "webp")  # renditions/ab/<sha>.webp
ORIGINAL = storage_key_for("cd" + "1" * 62, "image/png")
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
DAY, WEEK = 24 * 3600, 7 * 24 * 3600
NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()


def presigner(clock: Any, endpoint: str = "http://127.0.0.1:7070", **kw: Any) -> PresignedRenditionUrls:
    params: dict[str, Any] = {"expires_seconds": WEEK, "window_seconds": DAY} | kw
    return PresignedRenditionUrls(endpoint, "media", "us-east-1", lambda: CREDS, clock=clock, **params)


def ready_row(*keys: str) -> dict[str, Any]:
    return {
        "media_id": 7,
        "status": "ready",
        "kind": "image",
        "width": 10,
        "height": 10,
        "renditions": [{"key": k, "width": 10, "height": 10, "format": "webp"} for k in keys],
    }


# -- the view and the per-request binding ------------------------------------------


def test_views_link_the_api_route_unless_a_request_binds_direct_urls() -> None:
    assert media_view(ready_row(KEY))["renditions"][0]["url"] == f"/media/{SHA}.webp"

    def direct() -> str:
        RENDITION_URL.set(lambda key: "https://cdn.example/" + key)
        return str(media_view(ready_row(KEY))["renditions"][0]["url"])

    assert contextvars.copy_context().run(direct) == f"https://cdn.example/{KEY}"
    assert media_view(ready_row(KEY))["renditions"][0]["url"] == f"/media/{SHA}.webp"  # nothing leaked


def test_binding_follows_the_store(tmp_path: Path) -> None:
    def bound_url(store: object) -> str:
        bind_rendition_urls(store)
        return str(media_view(ready_row(KEY))["renditions"][0]["url"])

    for local in (LocalDiskMediaStore(tmp_path), MemoryMediaStore()):
        assert contextvars.copy_context().run(bound_url, local) == f"/media/{SHA}.webp"
    s3 = S3MediaStore(Settings(media_public_base_url="https://cdn.example/m", s3_bucket="media"))
    assert contextvars.copy_context().run(bound_url, s3) == f"https://cdn.example/m/{KEY}"


# -- public URLs -----------------------------------------------------------------


@pytest.mark.parametrize("base", ["http://127.0.0.1:7070/media", "http://127.0.0.1:7070/media/"])
def test_public_urls_are_the_key_under_the_base(base: str) -> None:
    assert PublicRenditionUrls(base)(KEY) == f"http://127.0.0.1:7070/media/{KEY}"


@pytest.mark.parametrize("base", ["", "cdn.example", "ftp://cdn.example", "https://cdn.example/?sig=1"])
def test_a_public_base_must_be_a_plain_http_url(base: str) -> None:
    with pytest.raises(ValueError, match="media_public_base_url"):
        PublicRenditionUrls(base)


@pytest.mark.parametrize("key", [ORIGINAL, "renditions/../originals/x.png", "other/x.webp", ""])
def test_only_renditions_get_urls(key: str) -> None:
    with pytest.raises(ValueError, match="only renditions"):
        PublicRenditionUrls("https://cdn.example")(key)
    with pytest.raises(ValueError, match="only renditions"):
        presigner(lambda: NOON)(key)


# -- presigned URLs ----------------------------------------------------------------


def test_a_presigned_url_is_identical_for_its_whole_window_then_changes() -> None:
    now = [NOON]
    urls = presigner(lambda: now[0])
    first = urls(KEY)
    now[0] += 11 * 3600 + 59 * 60  # 23:59 the same day
    assert urls(KEY) == first
    now[0] += 60  # midnight: the next window
    second = urls(KEY)
    assert second != first
    query = parse_qs(urlsplit(second).query)
    assert query["X-Amz-Date"] == ["20261127T000000Z"] and query["X-Amz-Expires"] == [str(WEEK)]
    assert urls(rendition_key("cd" + "0" * 62, "webp")) != second  # another key, another signature


def test_presigned_urls_are_what_botocore_signs_at_the_window_start() -> None:
    """The signing is ours (botocore always signs "now"); botocore is the reference."""
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:7070",
        aws_access_key_id=CREDS.access_key,
        aws_secret_access_key=CREDS.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    start = datetime(2026, 11, 26, 0, 0)
    with mock.patch("botocore.auth.get_current_datetime", return_value=start):
        expected = client.generate_presigned_url("get_object", Params={"Bucket": "media", "Key": KEY}, ExpiresIn=WEEK)
    assert presigner(lambda: NOON)(KEY) == expected


def test_presigned_urls_carry_a_session_token_and_drop_default_ports() -> None:
    token_creds = Credentials("AKID", "secret", "the-session-token")
    urls = PresignedRenditionUrls(
        "https://s3.example:443",
        "media",
        "eu-west-1",
        lambda: token_creds,
        expires_seconds=WEEK,
        window_seconds=DAY,
        clock=lambda: NOON,
    )
    url = urlsplit(urls(KEY))
    assert (url.scheme, url.netloc, url.path) == ("https", "s3.example", f"/media/{KEY}")
    assert parse_qs(url.query)["X-Amz-Security-Token"] == ["the-session-token"]
    assert "/eu-west-1/s3/aws4_request" in parse_qs(url.query)["X-Amz-Credential"][0]


@pytest.mark.parametrize(
    ("expires", "window"),
    [(WEEK + 1, DAY), (DAY, DAY), (DAY, 2 * DAY), (WEEK, 0), (0, 1)],
)
def test_a_window_must_be_shorter_than_a_legal_expiry(expires: int, window: int) -> None:
    with pytest.raises(ValueError):
        presigner(lambda: NOON, expires_seconds=expires, window_seconds=window)


# -- settings combinations -----------------------------------------------------------


def test_settings_choose_the_form() -> None:
    def creds() -> Credentials:
        return CREDS

    public = rendition_urls(Settings(media_public_base_url="https://cdn.example/m"), "http://s3:7070", creds)
    assert public(KEY) == f"https://cdn.example/m/{KEY}"
    signed = rendition_urls(
        Settings(s3_bucket="b", media_public_base_url=""), "http://s3:7070", creds, clock=lambda: NOON
    )(KEY)
    assert signed.startswith(f"http://s3:7070/b/{KEY}?X-Amz-Algorithm=AWS4-HMAC-SHA256&")
    short = Settings(
        s3_bucket="b", media_public_base_url="", media_presign_expires_seconds=3600, media_presign_window_seconds=600
    )
    query = parse_qs(urlsplit(rendition_urls(short, "http://s3:7070", creds, clock=lambda: NOON)(KEY)).query)
    assert query["X-Amz-Expires"] == ["3600"]
    with pytest.raises(ValueError, match="window"):
        rendition_urls(Settings(media_presign_window_seconds=WEEK), "http://s3:7070", creds)


def test_the_s3_store_signs_with_its_configured_keys_without_connecting() -> None:
    settings = Settings(
        s3_endpoint="http://127.0.0.1:1",  # nothing listens: building and signing must not connect
        s3_bucket="media",
        s3_access_key="AKIDEXAMPLE",
        s3_secret_key="secret",
    )
    url = urlsplit(S3MediaStore(settings).rendition_url(KEY))
    assert (url.netloc, url.path) == ("127.0.0.1:1", f"/media/{KEY}")
    assert parse_qs(url.query)["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    with pytest.raises(ValueError, match="only renditions"):
        S3MediaStore(settings).rendition_url(ORIGINAL)
