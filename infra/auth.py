"""Passwords (argon2id) and access tokens (JWT, HS256, with expiry)."""

from __future__ import annotations

import time

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verifying against a real hash when the user does not exist keeps login time
# the same either way, so timing does not reveal which usernames exist.
DUMMY_HASH = _hasher.hash("glimpse-timing-equaliser")


class TokenService:
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: int, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {"sub": str(user_id), "iat": issued, "exp": issued + self.ttl_seconds}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> int | None:
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
            return int(claims["sub"])
        except (jwt.PyJWTError, ValueError, KeyError):
            return None
