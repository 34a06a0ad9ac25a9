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

    feed_fanout_cap: int = Field(800, description="newest entries kept per home feed")
    suggestion_followee_scan: int = Field(200, ge=1, description="followees read per suggestions request")
    suggestion_edge_scan: int = Field(5000, ge=1, description="follow edges read per suggestions request")
    consistency_wait_seconds: float = 2.0

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
