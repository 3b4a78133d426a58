"""CSV import: columns, dates, rejected rows with their line numbers, and the limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.sources import ItemKind
from bot.sources.csv_import import MAX_ROWS, parse_csv

HEADER = "id,text,url,author,posted_at,kind,parent_id\n"


def test_good_rows_become_items() -> None:
    items, rejected = parse_csv(
        HEADER
        + "p1,Our launch post,https://example.com/p/1,Brand,2026-03-01T09:00:00Z,post,\n"
        + 'c1,"Does it support SSO, and SAML?",,Ada,2026-03-01,,p1\n'
        + "r1,Yes it does,,Brand,,REPLY,c1\n",
        "import",
    )

    assert rejected == []
    post, comment, reply = items
    assert (post.external_id, post.kind, post.url) == (
        "p1",
        ItemKind.POST,
        "https://example.com/p/1",
    )
    assert post.posted_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert (comment.text, comment.kind, comment.parent_id) == (
        "Does it support SSO, and SAML?",
        ItemKind.COMMENT,
        "p1",
    )
    assert (comment.author_name, comment.url) == ("Ada", None)
    assert (reply.kind, reply.posted_at, reply.source_id) == (ItemKind.REPLY, None, "import")


def test_a_bom_odd_header_case_and_extra_columns_are_fine() -> None:
    text = "\ufeffID,Text,Posted At,Likes\r\nx1,Hello?,2026-02-03,12\r\n"

    (item,), rejected = parse_csv(text, "import")

    assert rejected == []
    assert (item.external_id, item.text) == ("x1", "Hello?")
    assert item.posted_at == datetime(2026, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:15:00", datetime(2026, 3, 1, 10, 15, tzinfo=UTC)),
        ("2026-03-01 10:15", datetime(2026, 3, 1, 10, 15, tzinfo=UTC)),
        ("2026-03-01T10:15:00Z", datetime(2026, 3, 1, 10, 15, tzinfo=UTC)),
        ("2026-03-01T12:15:00+02:00", datetime(2026, 3, 1, 10, 15, tzinfo=UTC)),
    ],
)
def test_dates_are_iso_8601_and_naive_ones_are_utc(value: str, expected: datetime) -> None:
    (item,), _ = parse_csv(f"id,text,posted_at\n1,hi,{value}\n", "import")

    assert item.posted_at == expected
    assert item.posted_at is not None and item.posted_at.utcoffset() is not None


def test_bad_rows_are_rejected_with_their_line_and_reason() -> None:
    text = (
        HEADER
        + "ok1,fine,,,,,\n"  # line 2
        + "e1,,,,,,\n"  # line 3
        + "e2,when?,,,01/03/2026,,\n"  # line 4
        + 'ok2,"two\nlines",,,,,\n'  # lines 5-6
        + "e3,odd kind,,,,story,\n"  # line 7
        + "ok1,again,,,,,\n"  # line 8
        + f"e4,{'x' * 20_001},,,,,\n"  # line 9
        + "\n"  # line 10, blank: skipped
        + "e5,sneaky,javascript:alert(1),,,,\n"  # line 11
        + "e6,too,many,,,,,,extra\n"  # line 12
    )

    items, rejected = parse_csv(text, "import")

    assert [item.external_id for item in items] == ["ok1", "ok2"]
    assert items[1].text == "two\nlines"
    reasons = dict(rejected)
    assert list(reasons) == [3, 4, 7, 8, 9, 11, 12]
    assert reasons[3] == "text is empty"
    assert "'01/03/2026' is not an ISO 8601" in reasons[4]
    assert "'story' is not one of post, comment, reply" in reasons[7]
    assert reasons[8] == "duplicate id (line 2 has it too)"
    assert reasons[9] == "text is 20,001 characters; the limit is 20,000"
    assert "http://" in reasons[11]
    assert "9 fields but the header has 7" in reasons[12]


def test_without_an_id_the_url_and_text_give_a_stable_one() -> None:
    text = "url,text\nhttps://example.com/a,Hi?\nhttps://example.com/a,Other\n,No url\n"

    items, rejected = parse_csv(text, "import")
    again, _ = parse_csv(text, "import")

    assert [i.external_id for i in items] == [i.external_id for i in again]
    assert len({i.external_id for i in items}) == 2
    assert all(i.external_id.startswith("csv:") for i in items)
    assert rejected == [(4, "no id and no url: one of them is needed to recognise the row")]


def test_rows_past_the_cap_are_rejected() -> None:
    rows = "".join(f"{n},question {n}\n" for n in range(MAX_ROWS + 3))

    items, rejected = parse_csv("id,text\n" + rows, "import")

    assert len(items) == MAX_ROWS
    assert items[-1].external_id == str(MAX_ROWS - 1)
    assert [line for line, _ in rejected] == [MAX_ROWS + 2, MAX_ROWS + 3, MAX_ROWS + 4]
    assert "more than 10,000 rows" in rejected[0][1]


def test_a_file_over_10_mb_is_refused() -> None:
    text = "id,text\n" + "1," + "é" * (5 * 1024 * 1024 + 1) + "\n"  # 5M characters, 10 MB

    with pytest.raises(ValueError, match="the limit is 10 MB"):
        parse_csv(text, "import")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("id,body\n1,hello\n", "needs a 'text' column"),
        ("text,author\nhello,Ada\n", "'id' or 'url'"),
        ("id,text,Text\n1,a,b\n", "twice"),
    ],
)
def test_an_unusable_header_refuses_the_file(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_csv(text, "import")


def test_a_field_the_csv_reader_cannot_hold_names_its_line() -> None:
    text = 'id,text\n1,fine\n2,"' + "x" * 200_000 + '"\n'

    with pytest.raises(ValueError, match="line 3"):
        parse_csv(text, "import")
