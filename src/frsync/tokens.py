"""API tokens: how they are made and how they are kept. One home for both.

A token is shown once, when it is made, and stored only as its SHA-256 digest; rate limits
and lookups are keyed by that digest too.
"""

from __future__ import annotations

import hashlib
import secrets

# Fixture tokens are chosen by people; generated ones carry 256 random bits.
MIN_TOKEN_LENGTH = 16
PREFIX = "frs_"  # lets secret scanners recognise a leaked token


def new_token() -> str:
    """256 random bits, URL-safe, with a prefix that secret scanners can recognise."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """Tokens are kept only as SHA-256 digests (of the header's bytes, latin-1 as HTTP has it)."""
    return hashlib.sha256(token.encode("latin-1", "surrogateescape")).digest()
