"""Accounts and profiles: who exists, their public fields, and username lookup."""

from __future__ import annotations

from events.accounts import AccountDeleted, AccountRegistered, ProfileUpdated
from events.union import Event
from projections.projection import Projection
from projections.store import Delete, Op, Patch, Put, ReadModel, Row, Table

ACCOUNTS = Table(
    "accounts",
    partition=("user_id",),
    values=("username", "display_name", "bio", "private", "password_hash", "created_id"),
    types={"username": str, "display_name": str, "bio": str, "private": bool, "password_hash": str},
)
USERNAMES = Table("usernames", partition=("username",), values=("user_id",), types={"username": str})
# Deleted accounts, for good (user ids are never reused). Streams are ordered per key
# only, so an event naming an account may be applied after that account's deletion;
# projections that keep rows about other users ask `deleted` and ignore such events, as
# the deletion would have removed what they add. (Asking whether the account exists
# instead would also drop events applied before the AccountRegistered they follow.)
DELETED_ACCOUNTS = Table("deleted_accounts", partition=("user_id",))


def deleted(read: ReadModel, *user_ids: int) -> bool:
    """Whether any of the accounts was deleted (as far as the log has been applied)."""
    return any(read.get(DELETED_ACCOUNTS.name, {"user_id": u}) is not None for u in user_ids)


def project(event: Event, read: ReadModel) -> list[Op]:
    match event:
        case AccountRegistered():
            account: list[Op] = [
                Put(
                    ACCOUNTS.name,
                    {
                        "user_id": event.user_id,
                        "username": event.username,
                        "display_name": event.display_name,
                        "bio": "",
                        "private": False,
                        "password_hash": event.password_hash,
                        "created_id": event.event_id,
                    },
                ),
            ]
            if event.username:  # empty once erased: the account's deletion follows and removes the row
                account.append(Put(USERNAMES.name, {"username": event.username, "user_id": event.user_id}))
            return account
        case ProfileUpdated():
            changes: Row = {
                k: v
                for k, v in {
                    "display_name": event.display_name,
                    "bio": event.bio,
                    "private": event.private,
                }.items()
                if v is not None
            }
            return [Patch(ACCOUNTS.name, {"user_id": event.user_id}, changes)] if changes else []
        case AccountDeleted():
            row = read.get(ACCOUNTS.name, {"user_id": event.user_id})
            ops: list[Op] = [Delete(ACCOUNTS.name, {"user_id": event.user_id})]
            if row is not None and row["username"]:
                ops.append(Delete(USERNAMES.name, {"username": row["username"]}))
            return [*ops, Put(DELETED_ACCOUNTS.name, {"user_id": event.user_id})]
    return []


# 2: DELETED_ACCOUNTS; 3: the username to forget is read from the account (AccountDeleted v2 has none)
PROJECTION = Projection("profile", 3, (ACCOUNTS, USERNAMES, DELETED_ACCOUNTS), project)
