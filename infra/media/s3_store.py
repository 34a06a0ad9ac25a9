"""Media bytes in an S3 bucket (the scale stack): AWS S3 or any S3-compatible server.

The client is configured exactly as for AWS (endpoint URL, region, keys, SigV4),
with path-style addressing so that a local server such as versitygw needs no
wildcard DNS for bucket names. Keys are content-addressed, so every object is
stored with its Content-Type and a long-lived immutable Cache-Control: clients
fetch renditions straight from the bucket (or a CDN in front of it) through
`rendition_url` (infra/media/rendition_urls.py), and a browser or CDN never has to
revalidate. The S3 server itself answers ETag, If-None-Match (304) and Range (206).
Originals never get a URL, and the optional public-read policy covers only
`renditions/*`.

A missing key is an answer (None/False), not an error. A server that cannot be
reached or answers 5xx/throttles becomes `Unavailable` (503 + Retry-After), so an
upload during an S3 outage tells the client to retry rather than failing with 500.
boto3 clients are thread-safe; one store serves every request thread.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from commands.errors import Unavailable
from infra.media.rendition_urls import MAX_PRESIGN_SECONDS, RENDITIONS_PREFIX, Credentials, rendition_urls
from infra.settings import Settings

IMMUTABLE = "public, max-age=31536000, immutable"
PUBLIC_READ_SID = "GlimpseRenditionsPublicRead"
_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the configured endpoint, as the application uses it."""
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint or None,
        aws_access_key_id=settings.s3_access_key or None,
        aws_secret_access_key=settings.s3_secret_key or None,
        region_name=settings.s3_region,
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            connect_timeout=2,
            read_timeout=20,
            retries={"mode": "standard", "max_attempts": 3},
        ),
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _unavailable(exc: Exception) -> Unavailable:
    return Unavailable(f"media storage is unavailable: {exc}", retry_after=2)


class S3MediaStore:
    def __init__(self, settings: Settings, *, cache_control: str = IMMUTABLE, client: Any = None) -> None:
        self.bucket = settings.s3_bucket
        self._region = settings.s3_region
        self._cache_control = cache_control
        self._public_read = settings.media_public_read_policy
        self._client = client if client is not None else s3_client(settings)
        self._session = boto3.Session(
            aws_access_key_id=settings.s3_access_key or None,
            aws_secret_access_key=settings.s3_secret_key or None,
            region_name=settings.s3_region,
        )
        self._rendition_url = rendition_urls(settings, self._client.meta.endpoint_url, self._credentials)

    def _credentials(self) -> Credentials:
        # The client's own chain (settings, else environment, profile, instance role), resolved
        # on first use: building a store never reaches out for credentials.
        found = self._session.get_credentials()
        if found is None:
            raise Unavailable("media storage has no credentials to sign URLs with", retry_after=30)
        frozen = found.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def rendition_url(self, key: str) -> str:
        """The URL clients fetch rendition `key` from, straight from S3 or the CDN (never an original)."""
        return self._rendition_url(key)

    @property
    def client(self) -> Any:
        return self._client

    def _call(self, method: str, **params: Any) -> Any:
        try:
            return getattr(self._client, method)(Bucket=self.bucket, **params)
        except ClientError as exc:
            if _status(exc) >= 500 or _code(exc) in {"SlowDown", "Throttling", "RequestTimeout"}:
                raise _unavailable(exc) from exc
            raise
        except BotoCoreError as exc:  # connection refused, timeouts, DNS...
            raise _unavailable(exc) from exc

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist, and open `renditions/*` to anyone if the settings
        say so (safe to call from several processes)."""
        if not self._bucket_exists():
            self._create_bucket()
        if self._public_read:
            self.allow_public_renditions()

    def _bucket_exists(self) -> bool:
        try:
            self._call("head_bucket")
            return True
        except ClientError as exc:
            if _code(exc) not in _MISSING and _status(exc) != 404:
                raise
            return False

    def _create_bucket(self) -> None:
        params: dict[str, Any] = {}
        if self._region != "us-east-1":  # AWS rejects an explicit us-east-1 constraint
            params["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            self._call("create_bucket", **params)
        except ClientError as exc:
            if _code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise

    def allow_public_renditions(self) -> None:
        """Let anyone GET `renditions/*` (and nothing else) without credentials: the bucket as CDN origin.

        This replaces the bucket's policy, so it is for a bucket Glimpse owns; elsewhere set the
        policy (or the CDN's origin access) by hand and leave `media_public_read_policy` off.
        """
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": PUBLIC_READ_SID,
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{self.bucket}/{RENDITIONS_PREFIX}*"],
                }
            ],
        }
        self._call("put_bucket_policy", Policy=json.dumps(policy))

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._call("put_object", Key=key, Body=data, ContentType=content_type, CacheControl=self._cache_control)

    def get(self, key: str) -> bytes | None:
        try:
            response = self._call("get_object", Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING or _status(exc) == 404:
                return None
            raise
        body: bytes = response["Body"].read()
        return body

    def content_type(self, key: str) -> str | None:
        """The content type stored with `key`, or None if there is no such object."""
        head = self._head(key)
        return None if head is None else str(head.get("ContentType") or "")

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._call("head_object", Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING or _status(exc) == 404:
                return None
            raise
        return head

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def delete(self, key: str) -> None:
        # S3 answers 204 whether or not the key existed: deleting twice is fine.
        self._call("delete_object", Key=key)

    def presigned_get(self, key: str, expires: int) -> str:
        """A URL anyone can GET `key` with for `expires` seconds, without credentials.

        Signing is local (no request to the server); the URL does not check that the
        key exists, a GET of a missing key answers 404 (or 403 without ListBucket).
        """
        if not 1 <= expires <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"presigned URLs last 1..{MAX_PRESIGN_SECONDS} seconds, not {expires}")
        url: str = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
        )
        return url

    def delete_bucket(self) -> None:
        """Empty and delete the bucket (tests and teardown only)."""
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objects:
                self._call("delete_objects", Delete={"Objects": objects, "Quiet": True})
        self._call("delete_bucket")

    def close(self) -> None:
        self._client.close()
