"""Never a token in the journal: every path segment, query value and JSON string value that
equals a known token — the request's own or any other, as sent or percent-decoded, whatever
the parameter or key is called — is stored as `[token]`.

Tokens are kept only as SHA-256 digests, so each string long enough to be one is hashed and
all of an entry's digests are looked up in one indexed query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import unquote, unquote_plus

import msgspec

from frsync.tokens import MIN_TOKEN_LENGTH, hash_token

TOKEN = "[token]"  # noqa: S105 (the placeholder, not a secret)
MAX_TOKEN_LENGTH = 512  # the longest token a fixture may hold
Known = Callable[[list[bytes]], Awaitable[set[bytes]]]


def _plausible(text: str) -> bool:
    return MIN_TOKEN_LENGTH <= len(text) <= MAX_TOKEN_LENGTH and text.isascii()


def _strings(value: Any) -> Iterator[str]:
    """Every string value in a decoded JSON document, walked without recursion."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _replace(value: Any, tokens: set[str]) -> Any:
    """`value` with each string in `tokens` replaced, in place where it is nested."""
    if isinstance(value, str):
        return TOKEN if value in tokens else value
    stack = [value]
    while stack:
        node = stack.pop()
        pairs = node.items() if isinstance(node, dict) else enumerate(node)
        for key, item in list(pairs):
            if isinstance(item, str) and item in tokens:
                node[key] = TOKEN
            elif isinstance(item, dict | list):
                stack.append(item)
    return value


def _query_parts(query: str) -> list[tuple[str, str, str]]:
    """(name, separator, value) of each `&`-separated part."""
    return [part.partition("=") for part in query.split("&")] if query else []


class Redactor:
    def __init__(self, known: Known) -> None:
        self._known = known

    async def redact(
        self, path: str, query: str, body: Any | None
    ) -> tuple[str, str, bytes | None]:
        """(path, query, the body re-encoded) with every known token replaced."""
        segments = path.split("/")
        parts = _query_parts(query)
        found = await self._tokens_among(segments, parts, body)
        if not found:
            encoded = None if body is None else msgspec.json.encode(body)
            return path, query, encoded
        segments = [TOKEN if _is_token(s, unquote, found) else s for s in segments]
        query = "&".join(_part(name, sep, value, found) for name, sep, value in parts)
        encoded = None if body is None else msgspec.json.encode(_replace(body, found))
        return "/".join(segments), query, encoded

    async def _tokens_among(
        self, segments: list[str], parts: list[tuple[str, str, str]], body: Any | None
    ) -> set[str]:
        """The candidate strings (as sent and decoded) that are known tokens."""
        texts = {*segments, *(unquote(s) for s in segments)}
        for name, _, value in parts:
            texts.update((name, value, unquote_plus(name), unquote_plus(value)))
        if body is not None:
            texts.update(_strings(body))
        by_hash = {hash_token(text): text for text in texts if _plausible(text)}
        if not by_hash:
            return set()
        return {by_hash[digest] for digest in await self._known(list(by_hash))}


def _is_token(text: str, decode: Callable[[str], str], tokens: set[str]) -> bool:
    return text in tokens or decode(text) in tokens


def _part(name: str, sep: str, value: str, tokens: set[str]) -> str:
    if not sep:  # `?<token>`: a value without a name
        return TOKEN if _is_token(name, unquote_plus, tokens) else name
    return f"{name}={TOKEN if _is_token(value, unquote_plus, tokens) else value}"
