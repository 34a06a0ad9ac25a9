"""Stream `accounts`: registration, profile, deletion. Keyed by user id."""

from __future__ import annotations

from typing import ClassVar, Literal

from events.envelope import EventBase


class AccountEvent(EventBase):
    STREAM: ClassVar[str] = "accounts"


class AccountRegistered(AccountEvent):
    type: Literal["AccountRegistered"] = "AccountRegistered"
    version: Literal[1] = 1
    user_id: int
    username: str
    password_hash: str
    display_name: str


class ProfileUpdated(AccountEvent):
    """Only the fields that changed are set; None means unchanged."""

    type: Literal["ProfileUpdated"] = "ProfileUpdated"
    version: Literal[1] = 1
    user_id: int
    display_name: str | None = None
    bio: str | None = None
    private: bool | None = None


class AccountDeleted(AccountEvent):
    type: Literal["AccountDeleted"] = "AccountDeleted"
    version: Literal[1] = 1
    user_id: int
    username: str
