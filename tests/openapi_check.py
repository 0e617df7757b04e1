"""Every answer the tests see is checked against the checked-in OpenAPI document: the status
must be documented for the operation, and the body and headers must fit what it promises.

The request side too: a request whose path and query fit the documented parameters is not
refused for them, and one whose path or query does not fit is a 400 (once the token and the
rate limit have let it through). So every request of the suite, not only generated ones,
holds the document's parameter schemas to what the server parses.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx
import jsonschema_rs
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from frsync.api.routes import OPENAPI_DOCUMENT

DOCUMENT: dict[str, Any] = json.loads(OPENAPI_DOCUMENT)
_BASE = "urn:frsync:openapi"
_REGISTRY = Registry().with_resource(_BASE, Resource(DOCUMENT, DRAFT202012))
# Answers any route can give besides its own: unknown method (405) and unexpected failure.
_ANY_ROUTE = {"405", "500"}


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` such as `#/components/responses/NotFound`."""
    while "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


@cache
def _path_patterns() -> list[tuple[re.Pattern[str], str]]:
    patterns = []
    for template in DOCUMENT["paths"]:
        regex = re.sub(r"\{[^}]+\}", "[^/]+", template)
        patterns.append((re.compile(f"^{regex}$"), template))
    # Literal paths before templated ones, as the router matches them.
    return sorted(patterns, key=lambda p: "{" in p[1])


def operation_for(method: str, path: str) -> dict[str, Any] | None:
    for pattern, template in _path_patterns():
        if pattern.match(path):
            item = DOCUMENT["paths"][template]
            return item.get(method.lower())  # type: ignore[no-any-return]
    return None


def check(response: httpx.Response) -> None:
    request = response.request
    operation = operation_for(request.method, request.url.path)
    status = str(response.status_code)
    if operation is None:
        assert status in {"404", "405"}, f"{request.method} {request.url.path}: undocumented path"
        assert response.headers["content-type"] == "application/problem+json"
        return
    if status not in operation["responses"]:
        assert status in _ANY_ROUTE, (
            f"{request.method} {request.url.path} answered undocumented {status}"
        )
        return
    spec = _resolve(operation["responses"][status])
    _check_headers(response, spec)
    _check_body(response, spec)
    _check_request_side(response, operation)


# Answers given before the path and query are read: no or bad token, empty bucket, and the
# server's own failures.
_BEFORE_PARAMETERS = {401, 429, 500, 503}


def _check_request_side(response: httpx.Response, operation: dict[str, Any]) -> None:
    if response.status_code in _BEFORE_PARAMETERS:
        return
    misfit = _parameter_misfit(response.request, operation)
    if misfit is not None:
        assert response.status_code == 400, (
            f"{response.request.method} {response.request.url}: {misfit}, yet answered "
            f"{response.status_code}"
        )
    elif response.status_code == 400:
        named = {error["field"] for error in response.json().get("errors", [])}
        names = {p["name"] for p in _parameters(response.request)}
        assert not named & names, (
            f"{response.request.method} {response.request.url}: fits the documented "
            f"parameters, yet refused for {sorted(named & names)}: {response.text[:300]}"
        )


def _parameters(request: httpx.Request) -> list[dict[str, Any]]:
    for pattern, template in _path_patterns():
        if pattern.match(request.url.path):
            item = DOCUMENT["paths"][template]
            operation = item.get(request.method.lower(), {})
            found = [*item.get("parameters", []), *operation.get("parameters", [])]
            return [_resolve(parameter) for parameter in found]
    return []


def _parameter_misfit(request: httpx.Request, operation: dict[str, Any]) -> str | None:
    """Why the request's path or query does not fit the document, or None when it does."""
    parameters = _parameters(request)
    template = next(t for p, t in _path_patterns() if p.match(request.url.path))
    values = re.fullmatch(re.sub(r"\{([^}]+)\}", r"(?P<\1>[^/]+)", template), request.url.path)
    assert values is not None
    for parameter in (p for p in parameters if p["in"] == "path"):
        raw = unquote(values.group(parameter["name"]))
        if not _fits(parameter["schema"], raw):
            return f"path {parameter['name']}={raw!r} does not fit"
    query = parse_qsl(request.url.query.decode(), keep_blank_values=True)
    documented = {p["name"]: p["schema"] for p in parameters if p["in"] == "query"}
    names = [name for name, _ in query]
    for name, raw in query:
        if name not in documented:
            return f"query {name!r} is not documented"
        if names.count(name) > 1:
            return f"query {name!r} is given twice"
        if not _fits(documented[name], raw):
            return f"query {name}={raw!r} does not fit"
    return None


def _fits(schema: dict[str, Any], raw: str) -> bool:
    # Patterns read as JSON Schema means them (ECMA-262: `$` is the very end of the string).
    return bool(jsonschema_rs.validator_for(schema).is_valid(raw))


def _check_headers(response: httpx.Response, spec: dict[str, Any]) -> None:
    pool = [name for name in spec.get("headers", {}) if name.startswith("X-Auth-")]
    if response.status_code == 503 and not any(n.lower() in response.headers for n in pool):
        pool = []  # the store could not be reached to check the token: none, never a part
    for name in spec.get("headers", {}):
        # No pool to report without a valid token (401, 500, or a 429 for token guessing).
        if name.startswith("X-Auth-") and (response.status_code in (401, 429, 500)
                                           or name not in pool):  # fmt: skip
            continue
        assert name.lower() in response.headers, f"{response.status_code} lacks header {name}"


def _check_body(response: httpx.Response, spec: dict[str, Any]) -> None:
    content = spec.get("content")
    if not content:
        assert response.content == b"", f"{response.status_code} should have no body"
        return
    media_type = response.headers.get("content-type", "").split(";")[0]
    assert media_type in content, f"{response.status_code} sent {media_type}, not {list(content)}"
    if media_type.endswith("json"):
        schema = _rewrite_refs(content[media_type]["schema"])
        validator = Draft202012Validator(schema, registry=_REGISTRY)
        validator.validate(response.json())


def _rewrite_refs(schema: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(schema).replace('"#/components', f'"{_BASE}#/components')
    return json.loads(text)  # type: ignore[no-any-return]
