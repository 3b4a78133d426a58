"""Posts and comments imported from a CSV export, for pages no source can read.

The header row names the columns (any case; spaces and dashes count as underscores): `text`
and either `id` or `url` are required; `author`, `posted_at`, `kind` and `parent_id` are
optional and anything else is ignored. Bad rows are rejected one by one with their line number
and a reason, so a file with a few broken rows still imports the rest.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime

from bot.core.sources import ItemKind, SourceItem

__all__ = ["MAX_BYTES", "MAX_ROWS", "MAX_TEXT", "parse_csv"]

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 10_000
MAX_TEXT = 20_000
KINDS = {kind.value: kind for kind in ItemKind}


class _Rejected(Exception):
    """A row that cannot be imported; the message says why."""


def parse_csv(text: str, source_id: str) -> tuple[list[SourceItem], list[tuple[int, str]]]:
    """The rows of a CSV export as items, and the rejected rows as (line number, reason).

    Raises `ValueError` when the file as a whole is unusable: larger than 10 MB, no header,
    required columns missing, or a line the CSV reader cannot get through.
    """
    size = len(text.encode("utf-8", "surrogatepass")) if len(text) <= MAX_BYTES else len(text)
    if size > MAX_BYTES:
        raise ValueError(f"the CSV is {size / 1024 / 1024:.1f} MB; the limit is 10 MB")
    rows = records(text.removeprefix("\ufeff"))
    columns = _columns(next(rows, (0, []))[1])
    items: list[SourceItem] = []
    rejected: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    for count, (line, row) in enumerate(rows, start=1):
        if count > MAX_ROWS:
            rejected.append((line, f"more than {MAX_ROWS:,} rows; this one was not imported"))
            continue
        try:
            item = _item(row, columns, source_id)
            if item.external_id in first_line:
                raise _Rejected(f"duplicate id (line {first_line[item.external_id]} has it too)")
        except _Rejected as exc:
            rejected.append((line, str(exc)))
            continue
        first_line[item.external_id] = line
        items.append(item)
    return items, rejected


def records(text: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Non-blank records with the line each starts on (a quoted field may span lines).

    Raises `ValueError` naming the line where the CSV reader cannot go on.
    """
    # newline="": the csv module does its own line-ending handling (csv module docs).
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValueError(f"line {line}: the CSV cannot be read ({exc})") from exc
        if any(field.strip() for field in row):
            yield line, row
        line = reader.line_num + 1


def _columns(header: list[str]) -> dict[str, int]:
    if not header:
        raise ValueError("the CSV is empty: it needs a header row")
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        if key in columns:
            raise ValueError(f"the header names the column {name.strip()!r} twice")
        columns[key] = index
    if "text" not in columns or not ({"id", "url"} & columns.keys()):
        found = ", ".join(repr(name) for name in header)
        raise ValueError(
            f"the CSV needs a 'text' column and an 'id' or 'url' column; found {found}"
        )
    return columns


def _item(row: list[str], columns: dict[str, int], source_id: str) -> SourceItem:
    if len(row) > len(columns) and any(field.strip() for field in row[len(columns) :]):
        raise _Rejected(f"{len(row)} fields but the header has {len(columns)} (an unquoted comma?)")

    def value(name: str) -> str:
        index = columns.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""

    text, url = value("text"), value("url")
    if not text:
        raise _Rejected("text is empty")
    if len(text) > MAX_TEXT:
        raise _Rejected(f"text is {len(text):,} characters; the limit is {MAX_TEXT:,}")
    if url and not url.lower().startswith(("http://", "https://")):
        raise _Rejected("url must start with http:// or https://")
    return SourceItem(
        source_id=source_id,
        external_id=value("id") or _derived_id(url, text),
        text=text,
        kind=_kind(value("kind")),
        url=url or None,
        author_name=value("author") or None,
        posted_at=_posted_at(value("posted_at")),
        parent_id=value("parent_id") or None,
    )


def _derived_id(url: str, text: str) -> str:
    """A stable id for a row without one, so importing the same file twice adds nothing."""
    if not url:
        raise _Rejected("no id and no url: one of them is needed to recognise the row")
    return "csv:" + hashlib.sha256(f"{url}\n{text}".encode()).hexdigest()[:32]


def _kind(value: str) -> ItemKind:
    if not value:
        return ItemKind.COMMENT
    kind = KINDS.get(value.lower())
    if kind is None:
        raise _Rejected(f"kind {value!r} is not one of post, comment, reply")
    return kind


def _posted_at(value: str) -> datetime | None:
    if not value:
        return None
    try:
        # fromisoformat takes YYYY-MM-DD as well as full ISO 8601 times, "Z" included.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Rejected(f"posted_at {value!r} is not an ISO 8601 date or time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
