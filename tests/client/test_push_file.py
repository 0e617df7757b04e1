"""Reading and validating push files: exact bodies, and every problem with its line number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frsync.api.violations import body_violations
from frsync.push.pushfile import read_push_file
from frsync.push.rows import InputError

HEADER = "fulfillmentRequestId,accountingSynced,externalAccountingId,accountingError,items\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def bodies(path: Path) -> list[tuple[int, int, dict[str, object]]]:
    return [
        (row.line, row.fulfillment_request_id, json.loads(row.body))
        for row in read_push_file(path).rows
    ]


def problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        read_push_file(path)
    return caught.value.messages()


def test_csv_empty_cell_omits_and_null_clears(tmp_path: Path) -> None:
    path = write(
        tmp_path, "r.csv", HEADER + "221,true,QB-221,null,12312=QB-A;12313=null\n222,,,,\n"
    )
    assert bodies(path) == [
        (
            2,
            221,
            {
                "accountingSynced": True,
                "externalAccountingId": "QB-221",
                "accountingError": None,
                "items": [
                    {"id": 12312, "externalAccountingItemId": "QB-A"},
                    {"id": 12313, "externalAccountingItemId": None},
                ],
            },
        ),
        (3, 222, {}),
    ]


def test_csv_items_syntax_is_forgiving_about_spaces_and_blanks(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", HEADER + "221,FALSE,,, 12312 = A ; 12313= ;\n")
    assert bodies(path) == [
        (
            2,
            221,
            {"accountingSynced": False, "items": [{"id": 12312, "externalAccountingItemId": "A"}]},
        )
    ]


def test_csv_columns_may_come_in_any_order_or_be_left_out(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "accountingError,fulfillmentRequestId\nnull,7\n")
    assert bodies(path) == [(2, 7, {"accountingError": None})]


def test_csv_tolerates_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    text = "\ufeff" + HEADER.replace("\n", "\r\n") + "\r\n221,true,,,\r\n,,,,\r\n222,false,,,\r\n"
    path = write(tmp_path, "r.csv", text)
    assert [(line, fr_id) for line, fr_id, _ in bodies(path)] == [(3, 221), (5, 222)]


def test_csv_quoted_newlines_keep_line_numbers_right(tmp_path: Path) -> None:
    text = HEADER + '221,false,,"line one\nline two",\n222,maybe,,,\n'
    path = write(tmp_path, "r.csv", text)
    assert problems(path) == [
        f"{path}, line 4: accountingSynced: must be true, false, null or empty, not 'maybe'"
    ]


def test_csv_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    text = HEADER + (
        "221,yes,,,\n"
        ",true,,,\n"
        "0,true,,,\n"
        "1.5,true,,,\n"
        "223,true,,,12=a;12=b;oops\n"
        "224,true,,,,extra\n"
        f"225,true,{'x' * 256},,\n"
    )
    found = problems(write(tmp_path, "r.csv", text))
    lines = [message.split(": ", 1)[0].rsplit(" ", 1)[1] for message in found]
    assert lines == ["2", "3", "4", "5", "6", "6", "7", "8"]
    assert "'oops' is not itemId=externalItemId" in found[4]
    assert "items[1].id: repeats item 12 (items[0])" in found[5]
    assert "256 characters" in found[-1]


def test_csv_header_must_name_known_columns(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "r.csv", "fulfillmentRequestId,accountingSyncError\n1,x\n"))
    assert "unknown column 'accountingSyncError'" in found[0]
    assert "expected the columns" in found[-1]


def test_csv_without_header_is_refused(tmp_path: Path) -> None:
    assert "header is missing" in problems(write(tmp_path, "r.csv", ""))[0]


def test_jsonl_body_is_sent_exactly(tmp_path: Path) -> None:
    line = {
        "fulfillmentRequestId": 221,
        "accountingSynced": True,
        "accountingError": None,
        "items": [{"id": 12312, "externalAccountingItemId": None}, {"id": 12313}],
    }
    path = write(tmp_path, "r.jsonl", "\n" + json.dumps(line) + "\n\n")
    line.pop("fulfillmentRequestId")
    assert bodies(path) == [(2, 221, line)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"fulfillmentRequestId": 1, "accountingSynced": "true"}', "not a string"),
        ('{"fulfillmentRequestId": 1, "accountingSynced": 1}', "not a number"),
        ('{"fulfillmentRequestId": 1.0}', "must be an integer"),
        ('{"fulfillmentRequestId": "7"}', "must be an integer"),
        ('{"fulfillmentRequestId": 9223372036854775808}', "must be between 1 and"),
        ('{"accountingSynced": true}', "fulfillmentRequestId: is required"),
        ('{"fulfillmentRequestId": 1, "externalAccountingId": 5}', "must be a string or null"),
        ('{"fulfillmentRequestId": 1, "accountingSyncError": "x"}', "calls it 'accountingError'"),
        (
            '{"fulfillmentRequestId": 1, "items": [{"id": 2, "externalAccountingId": "x"}]}',
            "calls it 'externalAccountingItemId'",
        ),
        (
            '{"fulfillmentRequestId": 1, "items": [{"externalAccountingItemId": "x"}]}',
            "items[0].id: is required",
        ),
        ('{"fulfillmentRequestId": 1, "items": [{"id": 2}, {"id": 2}]}', "repeats item 2"),
        ('{"fulfillmentRequestId": 1, "items": {"id": 2}}', "must be an array or null"),
        ('{"fulfillmentRequestId": 1, "accountingError": "a\\u0000b"}', "U+0000"),
        ('{"fulfillmentRequestId": 1, "accountingError": "\\ud800"}', "lone surrogate"),
        (
            '{"fulfillmentRequestId": 1, "accountingSynced": true, "accountingSynced": false}',
            "appears twice",
        ),
        ('{"fulfillmentRequestId": 1, "accountingSynced": NaN}', "not valid JSON"),
        ('{"fulfillmentRequestId": 1,', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_jsonl_problems_are_the_endpoint_rules(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path, "r.jsonl", '{"fulfillmentRequestId": 5}\n' + line + "\n")
    found = problems(path)
    assert all(f"{path}, line 2: " in message for message in found)
    assert any(expected in message for message in found), found


def test_limits_match_the_endpoint(tmp_path: Path) -> None:
    ok = {
        "fulfillmentRequestId": 1,
        "externalAccountingId": "x" * 255,
        "accountingError": "e" * 4000,
        "items": [{"id": i} for i in range(1, 1001)],
    }
    too_much = {
        "fulfillmentRequestId": 2,
        "accountingError": "e" * 4001,
        "items": [{"id": i} for i in range(1, 1002)],
    }
    path = write(tmp_path, "r.jsonl", json.dumps(ok) + "\n" + json.dumps(too_much) + "\n")
    found = problems(path)
    assert len(found) == 2
    assert "4,001 characters" in found[0] and "1,001 entries" in found[1]


def test_a_file_row_gets_the_servers_own_400_violations(tmp_path: Path) -> None:
    body = {
        "accountingSynced": "yes",
        "externalAccountingId": 5,
        "accountingEror": "x",
        "items": [{"id": 1.0}, {"externalAccountingItemId": None}],
    }
    path = write(tmp_path, "r.jsonl", json.dumps({"fulfillmentRequestId": 1, **body}) + "\n")
    server = body_violations(json.dumps(body).encode())
    assert server is not None
    unknown = (  # the one wording push has of its own, with the server's advice
        "accountingEror: is not a field of this request; did you mean 'accountingError'?"
        " Allowed: accountingSynced, externalAccountingId, accountingError, items."
    )
    expected = [
        unknown
        if e.message.startswith("Unknown")
        else f"{e.field}: {e.message[0].lower()}{e.message[1:]}"
        for e in server[0]
    ]
    assert [message.split(", line 1: ", 1)[1] for message in problems(path)] == expected


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", HEADER.encode() + b"221,true,\xff\xfe,,\n")
    assert problems(path) == [f"{path}, line 2: is not valid UTF-8"]


def test_unknown_extension_and_missing_file_are_input_errors(tmp_path: Path) -> None:
    assert "name the file .csv or .jsonl" in problems(write(tmp_path, "r.txt", "x"))[0]
    assert "cannot read the file" in problems(tmp_path / "missing.csv")[0]


def test_row_keys_follow_content_not_position(tmp_path: Path) -> None:
    first = read_push_file(write(tmp_path, "a.csv", HEADER + "1,true,,,\n2,false,,,\n1,true,,,\n"))
    moved = read_push_file(write(tmp_path, "b.csv", HEADER + "\n2,false,,,\n1,true,,,\n"))
    edited = read_push_file(write(tmp_path, "c.csv", HEADER + "1,true,X,,\n"))
    keys = [row.key for row in first.rows]
    assert len(set(keys)) == 3  # the repeat of row 1 is a row of its own
    assert {row.key for row in moved.rows} <= set(keys)
    assert edited.rows[0].key not in keys
