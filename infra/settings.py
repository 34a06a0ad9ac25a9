"""Typed settings for every process kind (env prefix GLIMPSE_). Nothing connects here."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GLIMPSE_", env_file=None, extra="ignore")

    mode: Literal["embedded", "scale"] = "embedded"
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8000
    shard_id: int = Field(0, ge=0, le=1023, description="id generator shard; unique per writer process")

    jwt_secret: str = Field("", description="HS256 key; generated and kept in the data dir when empty")
    jwt_ttl_seconds: int = 7 * 24 * 3600

    login_attempts_per_minute: int = 10
    writes_per_minute: int = 600

    story_ttl_seconds: int = 24 * 3600
    story_expiry_interval_seconds: float = 60.0
    story_viewer_limit: int = 10_000
    notification_keepalive_seconds: float = Field(15.0, gt=0, description="SSE keep-alive comment interval")

    max_caption_chars: int = 2200
    max_comment_chars: int = 1000
    max_bio_chars: int = 150
    max_display_name_chars: int = 64
    max_mentions: int = 20
    max_media_per_post: int = 10
    max_close_friends: int = 1000
    max_upload_bytes: int = 30 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    media_worker_threads: int = Field(2, ge=1, description="media jobs processed at once, each in its own thread")
    media_job_timeout_seconds: float = Field(60.0, gt=0, description="a media job running longer fails")
    media_processing: Literal["auto", "in_process", "kafka"] = Field(
        "auto",
        description="who turns uploads into renditions: in the API process (embedded default) or "
        "`glimpse media-worker` consuming the media topic (scale default)",
    )
    media_poll_seconds: float = Field(1.0, gt=0, description="embedded media worker: timeouts and restart recovery")
    max_video_seconds: float = Field(90.0, gt=0, description="longest accepted video")

    feed_fanout_cap: int = Field(800, ge=1, description="newest entries kept per durable home feed")
    # -- the home feed's fan-out (DESIGN.md section 5; projections/feed) ----------
    feed_strategy: Literal["push", "pull", "hybrid"] = Field(
        "hybrid", description="push: fan out to everyone; pull: merge at read time; hybrid: both"
    )
    feed_celebrity_threshold: int = Field(
        10_000, ge=0, description="hybrid: authors with more followers are merged at read time, not pushed"
    )
    feed_active_window_seconds: int = Field(
        7 * 24 * 3600, ge=0, description="hybrid: followers who read their feed within it are pushed to"
    )
    feed_fanout_chunk: int = Field(1000, ge=1, description="followers per fan-out chunk (one scan page)")
    feed_backfill_posts: int = Field(50, ge=0, description="a followee's newest posts copied into a feed on follow")
    feed_rebuild_depth: int = Field(200, ge=1, description="entries written back when a stale feed is rebuilt")
    suggestion_followee_scan: int = Field(200, ge=1, description="followees read per suggestions request")
    suggestion_edge_scan: int = Field(5000, ge=1, description="follow edges read per suggestions request")
    consistency_wait_seconds: float = 2.0

    # -- scale stack (ignored in the embedded mode) -------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = Field("glimpse", description="topics are <prefix>.<stream>")
    kafka_partitions: int = Field(6, ge=1, description="partitions per topic when Glimpse creates them")
    kafka_send_timeout_seconds: float = 10.0
    cassandra_hosts: str = Field("127.0.0.1", description="comma-separated contact points")
    cassandra_port: int = 9042
    cassandra_keyspace: str = "glimpse"
    cassandra_replication_factor: int = 1
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = Field("glimpse:", description="start of every Redis key and pub/sub channel")
    feed_cache_cap: int = Field(120, ge=1, description="newest entries of a home feed kept in Redis")
    feed_cache_ttl_seconds: int = Field(3 * 24 * 3600, ge=1, description="a cached feed unread this long is dropped")
    counter_cache_ttl_seconds: int = Field(3600, ge=1, description="how long a cached counter row lives")
    s3_endpoint: str = "http://127.0.0.1:7070"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    s3_bucket: str = "glimpse-media"
    # -- how clients reach renditions in the scale stack (docs/media-pipeline.md, "Serving") --
    media_public_base_url: str = Field(
        "",
        description="renditions are linked as <this>/<key>: a CDN whose origin is the bucket, or the "
        "public-read bucket itself (http://127.0.0.1:7070/glimpse-media); empty: presigned GETs",
    )
    media_public_read_policy: bool = Field(
        False, description="at startup, let anyone GET the bucket's renditions/* (originals stay private)"
    )
    media_presign_expires_seconds: int = Field(
        7 * 24 * 3600, ge=2, le=7 * 24 * 3600, description="how long a presigned rendition URL lives"
    )
    media_presign_window_seconds: int = Field(
        24 * 3600,
        ge=1,
        description="presigned URLs are signed as of the start of their window, so one rendition has one "
        "URL (cacheable) per window; must be shorter than media_presign_expires_seconds",
    )
    personal_key_cache_seconds: float = Field(
        30.0,
        ge=0,
        description="how long a process keeps a person's data key in memory; an erasure made by another "
        "process reaches this one within that time",
    )
    replay_memory_max_events: int = Field(
        2_000_000,
        ge=0,
        description="embedded start-up rebuilds project in memory (~2 KB of RAM per event of a social graph) "
        "while the log holds at most this many events, and straight into SQLite beyond",
    )
    worker_batch_size: int = Field(500, ge=1, description="events per projection batch (stream.take)")
    worker_batch_seconds: float = Field(0.05, gt=0, description="longest wait to fill a batch")
    worker_group: str = Field("glimpse-projections", description="Kafka consumer group / Faust app id")
    api_workers: int = Field(1, ge=1, description="scale mode: `glimpse serve` processes sharing the port")
    api_request_threads: int = Field(
        16, ge=0, description="scale mode: threads per API process that run requests (0: all on its event loop)"
    )

    def resolved_jwt_secret(self) -> str:
        """The configured secret, or one generated once and kept beside the data."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
