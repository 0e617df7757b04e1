"""Names and numbers on the wire are ASCII (SPEC §5): every query parameter, path segment and
JSON body field that takes a name or an integer refuses non-ASCII letters and digits with a
400 — the problem+json one on the API and the admin API, the console's own page on the
console — never folding them into something else (`int("٢٢١") == 221`, `"ß".upper() ==
"SS"`), never a 200, never a 500.

One table, every parser: a row names the request and where the value goes (`{}`); each row is
sent with every value below, on a sandbox app (the API, the admin API and the console in one)
on each store.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx
import pytest

from tests.support import (
    OPERATOR_TOKEN,
    TOKENS,
    fixture_copy,
    load_fixture,
    make_settings,
    reset_postgres,
    uvicorn_thread,
)

# Letters and digits Python's str.isalpha/isdigit/int/upper accept: a Latin letter with an
# accent, one that upper-cases to two, full-width letters, Arabic-Indic and full-width digits
# (alone and spelling real ids: 221 is an FR, 12312 an item), a superscript.
VALUES = ("í", "ß", "ＰＡＴＣＨ", "٣", "１２", "²", "٢٢١", "２２１")


class Row(NamedTuple):
    method: str
    url: str  # `{}` marks where the value goes, in a path or a query
    body: Any = None  # JSON; the string "{}" inside it is replaced by the value
    raw: str | None = None  # a raw body; `{}` is replaced by the value, unquoted
    who: str = "account"  # account | operator | console


FR = "/fulfillment-requests"
API: dict[str, Row] = {
    "list filterPageNumber": Row("GET", f"{FR}?filterPageNumber={{}}"),
    "list filterPageSize": Row("GET", f"{FR}?filterPageSize={{}}"),
    "list sinceId": Row("GET", f"{FR}?sinceId={{}}"),
    "list findOrderId": Row("GET", f"{FR}?findOrderId={{}}"),
    "list filterSourceId": Row("GET", f"{FR}?filterSourceId={{}}"),
    "list filterStatus": Row("GET", f"{FR}?filterStatus={{}}"),
    "list filterStatus, second": Row("GET", f"{FR}?filterStatus=Processed,{{}}"),
    "list filterAccountingSynced": Row("GET", f"{FR}?filterAccountingSynced={{}}"),
    "list filterHasAccountingError": Row("GET", f"{FR}?filterHasAccountingError={{}}"),
    "list, parameter name": Row("GET", f"{FR}?filterPageSize{{}}=1"),
    "count filterSourceId": Row("GET", f"{FR}/count?filterSourceId={{}}"),
    "count filterStatus": Row("GET", f"{FR}/count?filterStatus={{}}"),
    "count sinceId": Row("GET", f"{FR}/count?sinceId={{}}"),
    "get: id in the path": Row("GET", f"{FR}/{{}}"),
    "history: id in the path": Row("GET", f"{FR}/{{}}/accounting-sync/history"),
    "history limit": Row("GET", f"{FR}/221/accounting-sync/history?limit={{}}"),
    "history beforeId": Row("GET", f"{FR}/221/accounting-sync/history?beforeId={{}}"),
    "patch: id in the path": Row("PATCH", f"{FR}/{{}}/accounting-sync", {"accountingSynced": True}),
    "patch items[].id, a string": Row(
        "PATCH", f"{FR}/221/accounting-sync", {"items": [{"id": "{}"}]}
    ),
    "patch items[].id, a bare literal": Row(
        "PATCH", f"{FR}/221/accounting-sync", raw='{{"items": [{{"id": {}}}]}}'
    ),
}

ADMIN: dict[str, Row] = {
    "journal method": Row("GET", "/__admin/requests?method={}", who="operator"),
    "journal status": Row("GET", "/__admin/requests?status={}", who="operator"),
    "journal tokenId": Row("GET", "/__admin/requests?tokenId={}", who="operator"),
    "journal limit": Row("GET", "/__admin/requests?limit={}", who="operator"),
    "delete tenant: accountId in the path": Row("DELETE", "/__admin/tenants/{}", who="operator"),
    "delete fault: faultId in the path": Row("DELETE", "/__admin/faults/{}", who="operator"),
    "tenant fulfillmentRequests": Row(
        "POST", "/__admin/tenants", {"fulfillmentRequests": "{}"}, who="operator"
    ),
    "tenant itemsPerRequest": Row(
        "POST", "/__admin/tenants", {"itemsPerRequest": "{}"}, who="operator"
    ),
    "tenant itemsPerRequest, a bare literal": Row(
        "POST", "/__admin/tenants", raw='{{"itemsPerRequest": {}}}', who="operator"
    ),
}
_STATUS_500 = {"status": 500}
for _key in ("method", "tokenType", "tokenId", "accountId", "fulfillmentRequestId"):
    ADMIN[f"fault match.{_key}"] = Row(
        "POST", "/__admin/faults", {"match": {_key: "{}"}, "action": _STATUS_500}, who="operator"
    )
for _key in ("status", "delayMs"):
    ADMIN[f"fault action.{_key}"] = Row(
        "POST", "/__admin/faults", {"action": {_key: "{}"}}, who="operator"
    )
ADMIN["fault action.retryAfter"] = Row(
    "POST", "/__admin/faults", {"action": {"status": 503, "retryAfter": "{}"}}, who="operator"
)
ADMIN["fault times"] = Row(
    "POST", "/__admin/faults", {"action": _STATUS_500, "times": "{}"}, who="operator"
)
ADMIN["fault match.tokenId, a bare literal"] = Row(
    "POST",
    "/__admin/faults",
    raw='{{"match": {{"tokenId": {}}}, "action": {{"status": 500}}}}',
    who="operator",
)

CONSOLE: dict[str, Row] = {
    "errors before (cursor)": Row("GET", "/console/errors?before={}", who="console"),
    "errors before, second part": Row("GET", "/console/errors?before=1.{}", who="console"),
    "fulfillment request history before": Row(
        "GET", "/console/fulfillment-request?q=221&before={}", who="console"
    ),
    "tokens after": Row("GET", "/console/tokens?after={}", who="console"),
}

TABLE = {f"api: {k}": v for k, v in API.items()}
TABLE |= {f"admin: {k}": v for k, v in ADMIN.items()}
TABLE |= {f"console: {k}": v for k, v in CONSOLE.items()}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Clients(NamedTuple):
    account: httpx.Client
    operator: httpx.Client
    console: httpx.Client


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def clients(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clients]:
    """One sandbox app per store for the whole table: every row is refused, so no row
    changes what the next one sees (and a row that is not refused fails anyway)."""
    workdir = tmp_path_factory.mktemp("ascii")
    if request.param == "sqlite":
        path = workdir / "frsync.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        asyncio.run(reset_postgres(url))
    settings = make_settings(
        workdir, database_url=url, sandbox=True, burst=1_000_000, rate=1_000_000.0
    )
    asyncio.run(load_fixture(settings, fixture_copy()))
    with uvicorn_thread(settings) as port:
        base = f"http://127.0.0.1:{port}"
        with (
            httpx.Client(base_url=base, headers={"X-API-TOKEN": TOKENS["account1"]}) as account,
            httpx.Client(base_url=base, headers={"X-API-TOKEN": OPERATOR_TOKEN}) as operator,
            httpx.Client(base_url=base) as console,
        ):
            form = console.get("/console")
            csrf = CSRF.search(form.text)
            assert csrf, form.text
            signed_in = console.post(
                "/console/sign-in", data={"csrf": csrf.group(1), "token": OPERATOR_TOKEN}
            )
            assert signed_in.status_code == 303, signed_in.text
            yield Clients(account, operator, console)


def _filled(template: Any, value: str) -> Any:
    if isinstance(template, str):
        return value if template == "{}" else template
    if isinstance(template, dict):
        return {k: _filled(v, value) for k, v in template.items()}
    if isinstance(template, list):
        return [_filled(v, value) for v in template]
    return template


def _send(clients: Clients, row: Row, value: str) -> Any:
    client = getattr(clients, row.who)
    url = row.url.replace("{}", value)
    if row.raw is not None:
        content = row.raw.format(value).encode()
        headers = {"Content-Type": "application/json"}
        return client.request(row.method, url, content=content, headers=headers)
    if row.body is not None:
        return client.request(row.method, url, json=_filled(row.body, value))
    return client.request(row.method, url)


def _refused(row: Row, response: Any) -> bool:
    """A 400 in the surface's own shape: problem+json naming the field(s), or the console's
    HTML page."""
    if response.status_code != 400:
        return False
    kind = response.headers.get("content-type", "")
    if row.who == "console":
        return kind.startswith("text/html")
    if not kind.startswith("application/problem+json"):
        return False
    problem = response.json()
    return problem.get("status") == 400 and bool(problem.get("errors"))


def _gist(text: str) -> str:
    """An answer in a few words: an HTML page's title, else the start of the body."""
    title = re.search(r"<title>(.*?)</title>", text)
    return f"page {title.group(1)!r}" if title else text[:120]


@pytest.mark.parametrize("row", TABLE.values(), ids=TABLE.keys())
def test_non_ascii_names_and_numbers_are_a_400(clients: Clients, row: Row) -> None:
    wrong = {}
    for value in VALUES:
        response = _send(clients, row, value)
        if not _refused(row, response):
            wrong[value] = f"{response.status_code} {_gist(response.text)}"
    assert wrong == {}, f"{row.method} {row.url}: not a 400 for {wrong}"


def test_the_table_covers_every_parameter_the_documents_name() -> None:
    """A parameter added to the API or the admin API joins the table (or this fails)."""
    from frsync.contract import FR_QUERY_PARAMETERS, HISTORY_QUERY_PARAMETERS

    urls = " ".join(row.url + str(row.body) + str(row.raw) for row in TABLE.values())
    free_text = {"frNumbers"}  # FR numbers are strings, not names or numbers
    for name in {*FR_QUERY_PARAMETERS, *HISTORY_QUERY_PARAMETERS} - free_text:
        assert f"{name}=" in urls, name
    for name in ("method=", "status=", "tokenId=", "limit="):  # the journal's, but `path`
        assert f"/__admin/requests?{name}" in urls, name


@pytest.mark.parametrize("value", ["٢٢١", "２２１"])
def test_the_console_search_never_reads_other_digits_as_an_id(clients: Clients, value: str) -> None:
    """The console's search takes an id or an FR number (free text): other digits find
    nothing, rather than FR 221."""
    page = clients.console.get("/console/fulfillment-request", params={"q": value})
    assert page.status_code in (400, 404), page.text[:300]
    assert "FR-221" not in page.text


def test_ascii_values_pass_where_the_table_refuses_the_others(clients: Clients) -> None:
    """The control: the same requests with ASCII values are answered (so each row's 400
    above comes from its value)."""
    for row, value in [
        (API["list filterSourceId"], "10"),
        (API["get: id in the path"], "221"),
        (API["history limit"], "5"),
        (ADMIN["journal method"], "PATCH"),
        (ADMIN["journal limit"], "3"),
        (CONSOLE["tokens after"], "1"),
    ]:
        response = _send(clients, row, value)
        assert response.status_code == 200, (row.url, value, response.text[:300])
