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
    """Issues and verifies access tokens.

    Every request carries its token, and checking an HS256 signature (PyJWT also checks
    that the secret is not an asymmetric key, each time) costs more than the rest of a
    small read. A token is a fixed string, so once its signature and claims have been
    checked, the answer is kept (user id and expiry, per exact token text) and later
    verifications only check the expiry again: the only claim whose verdict changes with
    time (a token not yet valid is never kept). The memory is bounded: it is emptied
    when full.
    """

    MAX_REMEMBERED = 50_000

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._verified: dict[str, tuple[int, int]] = {}  # token -> (user id, exp)

    def issue(self, user_id: int, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {"sub": str(user_id), "iat": issued, "exp": issued + self.ttl_seconds}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> int | None:
        known = self._verified.get(token)
        if known is not None:
            user_id, exp = known
            if exp > time.time():  # PyJWT's rule: expired once exp <= now
                return user_id
            del self._verified[token]
            return None
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
            user_id, exp = int(claims["sub"]), int(claims["exp"])
        except (jwt.PyJWTError, ValueError, KeyError, TypeError, OverflowError):
            return None
        if len(self._verified) >= self.MAX_REMEMBERED:
            self._verified.clear()
        self._verified[token] = (user_id, exp)
        return user_id
