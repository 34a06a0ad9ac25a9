"""Direct URLs for renditions (the scale stack): clients fetch the bytes from the S3 server or a CDN.

Two forms, chosen by settings:

- public (`media_public_base_url` set): `<base>/<rendition key>`, e.g.
  `https://cdn.example/renditions/ab/<sha256>.webp`. The base is a CDN whose origin is
  the bucket, or the bucket itself when `renditions/*` is public-read
  (`media_public_read_policy`). A key never changes meaning (it is the sha256 of the
  bytes), so the URL is the same forever: the best a CDN or browser cache can get.
- presigned (no base): a SigV4 query-signed GET. A signature covers the signing time,
  so signing "now" would give a new URL on every answer and defeat every cache. URLs
  are therefore signed as of the start of a time window (`media_presign_window_seconds`)
  and live `media_presign_expires_seconds` from then: every answer in one window carries
  the identical URL, and a URL handed out at the very end of its window still works for
  `expires - window` seconds.

Only rendition keys get URLs: an original's key raises, whatever the caller. A URL is a
capability (anyone holding it can fetch the bytes), which is why keys are unguessable
content addresses and are only ever shown in answers that passed the privacy checks.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from contextvars import Token
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

from infra.settings import Settings
from projections.media import RENDITION_URL, RenditionUrl, api_rendition_url

RENDITIONS_PREFIX = "renditions/"
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL may live
_DEFAULT_PORTS = {"http": 80, "https": 443}


@runtime_checkable
class DirectUrls(Protocol):
    """A media store whose renditions clients fetch from it directly (S3), not through the API."""

    def rendition_url(self, key: str) -> str: ...


def bind_rendition_urls(store: object) -> Token[RenditionUrl]:
    """Make the views built for the current request link renditions the way `store` serves them."""
    # getattr, not isinstance against the runtime-checkable protocol: this runs on every request.
    direct = getattr(store, "rendition_url", None)
    return RENDITION_URL.set(direct if callable(direct) else api_rendition_url)


def check_rendition(key: str) -> None:
    if not key.startswith(RENDITIONS_PREFIX) or ".." in key or "//" in key:
        raise ValueError(f"only renditions get URLs, not {key!r}")


class PublicRenditionUrls:
    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"media_public_base_url must be an http(s) URL without query, not {base_url!r}")
        self._base = base_url.rstrip("/")

    def __call__(self, key: str) -> str:
        check_rendition(key)
        return f"{self._base}/{quote(key, safe='/')}"


class Credentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None = None


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


class PresignedRenditionUrls:
    """SigV4 presigned GETs (path-style), signed as of the start of the current window."""

    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        region: str,
        credentials: Callable[[], Credentials],
        *,
        expires_seconds: int,
        window_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= expires_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"presigned URLs last 1..{MAX_PRESIGN_SECONDS} seconds, not {expires_seconds}")
        if not 1 <= window_seconds < expires_seconds:
            raise ValueError(
                f"the presign window ({window_seconds} s) must be shorter than the expiry ({expires_seconds} s), "
                "or a URL handed out late in its window would already be dead"
            )
        parts = urlsplit(endpoint_url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"cannot presign for the S3 endpoint {endpoint_url!r}")
        self._scheme = parts.scheme
        # The Host header a client sends: the port only when it is not the scheme's default.
        port = parts.port
        self._host = parts.hostname if port in (None, _DEFAULT_PORTS[parts.scheme]) else f"{parts.hostname}:{port}"
        self._path = f"{parts.path.rstrip('/')}/{bucket}/"
        self._region = region
        self._credentials = credentials
        self._expires = expires_seconds
        self._window = window_seconds
        self._clock = clock
        # Answers repeat the URLs of the window: signing costs ~30 us, a cache hit ~1 us (a feed page: ~100 URLs).
        self._sign = lru_cache(maxsize=100_000)(self._signed)

    def window_start(self, now: float) -> int:
        return int(now) // self._window * self._window

    def __call__(self, key: str) -> str:
        check_rendition(key)
        return self._sign(key, self.window_start(self._clock()), self._credentials())

    def _signed(self, key: str, signed_at: int, creds: Credentials) -> str:
        amz_date = datetime.fromtimestamp(signed_at, UTC).strftime("%Y%m%dT%H%M%SZ")
        scope = f"{amz_date[:8]}/{self._region}/s3/aws4_request"
        params = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{creds.access_key}/{scope}",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(self._expires),
            "X-Amz-SignedHeaders": "host",
        }
        if creds.token:
            params["X-Amz-Security-Token"] = creds.token
        query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()))
        path = quote(self._path + key, safe="/-_.~")
        canonical = "\n".join(["GET", path, query, f"host:{self._host}\n", "host", "UNSIGNED-PAYLOAD"])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        signing_key = _hmac(f"AWS4{creds.secret_key}".encode(), amz_date[:8])
        for part in (self._region, "s3", "aws4_request"):
            signing_key = _hmac(signing_key, part)
        signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self._scheme}://{self._host}{path}?{query}&X-Amz-Signature={signature}"


def rendition_urls(
    settings: Settings,
    endpoint_url: str,
    credentials: Callable[[], Credentials],
    clock: Callable[[], float] = time.time,
) -> RenditionUrl:
    """The URL form the settings ask for: public under a base URL, else presigned."""
    if settings.media_public_base_url:
        return PublicRenditionUrls(settings.media_public_base_url)
    return PresignedRenditionUrls(
        endpoint_url,
        settings.s3_bucket,
        settings.s3_region,
        credentials,
        expires_seconds=settings.media_presign_expires_seconds,
        window_seconds=settings.media_presign_window_seconds,
        clock=clock,
    )
