"""`evangelist library import`: every format from a file and from an address, and hostile input.

The real command (`bot.cli.main`) runs in a worker thread, as a person would run it, against the
test database; the documents it reads from an address come from a `FakeDocumentServer` in the
test's own event loop. Fixture documents are in tests/fixtures/library: the same pages appear
in several of them, spelled differently (tracking parameters, fragment, case, default port), so
duplicates have to collapse by canonical URL.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.storage.database import Database
from bot.storage.models import LinkRow
from content_library.cli import ProgressBar
from tests.conftest import ROOT
from tests.fakes.document_server import FakeDocumentServer

FIXTURES = ROOT / "tests" / "fixtures" / "library"
MB = 1024 * 1024

VIDEO = "https://example.com/guides/video-basics"
REACTIONS = "https://example.com/blog/reactions"
PLAIN = "https://example.org/plain-link"
SHARING = "https://example.com/guides/sharing?lang=en"
COMMENT = "https://news.example.net/posts/comment-well"
CREATE = "http://news.example.net/posts/create-your-first"
FIRST_STEPS = "https://blog.example.com/2026/03/first-steps"
SECOND_STEPS = "https://blog.example.com/2026/03/second-steps"
ARTICLE_ONE = "https://news.example.org/articles/one"
ARTICLE_TWO = "https://news.example.org/articles/two?id=7&page=2"

# What each fixture adds to an empty library: url -> (title, topics, level).
Expected = dict[str, tuple[str | None, list[str], str | None]]
FROM_YAML: Expected = {
    VIDEO: ("Video basics in ten minutes", ["video", "beginners"], "watch"),
    REACTIONS: ("Why a reaction matters", ["reactions", "community"], "react"),
    PLAIN: (None, [], None),
    SHARING: ("Sharing without spamming", ["sharing"], "share"),
}
FROM_CSV: Expected = {
    VIDEO: ("Video basics in ten minutes", ["video", "beginners"], "watch"),
    SHARING: ("Sharing without spamming", ["sharing"], "share"),
    COMMENT: ("How to comment well", ["comments", "writing"], "comment"),
    CREATE: ("Create your first post", ["creating"], "create"),
}
FROM_RSS: Expected = {
    FIRST_STEPS: ("First steps on our page", [], None),
    SECOND_STEPS: ("Second steps", [], None),
    COMMENT: ("How to comment well", [], None),
}
FROM_ATOM: Expected = {
    ARTICLE_ONE: ("Article one", [], None),
    ARTICLE_TWO: ("Article two", [], None),
    FIRST_STEPS: ("First steps on our page", [], None),
}


@dataclass(frozen=True)
class Fixture:
    name: str
    content_type: str
    added: int
    duplicates: int
    links: Expected


FORMATS = [
    # links.yaml names one page twice (differently spelled): one duplicate within the file.
    Fixture("links.yaml", "application/yaml", 4, 1, FROM_YAML),
    Fixture("links.csv", "text/csv; charset=utf-8", 4, 0, FROM_CSV),
    Fixture("feed.rss.xml", "application/rss+xml", 3, 0, FROM_RSS),
    Fixture("feed.atom.xml", "application/atom+xml; charset=utf-8", 3, 0, FROM_ATOM),
]


@dataclass(frozen=True)
class Outcome:
    code: int
    added: int
    duplicates: int
    rejected: list[dict[str, str]]

    def reasons(self) -> dict[str, str]:
        return {r["where"]: r["reason"] for r in self.rejected}


@pytest.fixture
def library_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("EVANGELIST_DATABASE_URL", database_url)
    monkeypatch.delenv("EVANGELIST_CONFIG", raising=False)
    return database_url


@pytest.fixture
async def server() -> AsyncIterator[FakeDocumentServer]:
    async with FakeDocumentServer() as fake:
        yield fake


async def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`evangelist library import ARGS` in a thread (it runs its own event loop); (code, stdout)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["library", "import", *args])
    return code, capsys.readouterr().out


async def import_json(capsys: pytest.CaptureFixture[str], *args: str) -> Outcome:
    code, out = await run_cli(capsys, *args, "--json")
    data = json.loads(out)
    assert set(data) == {"added", "duplicates", "rejected"}
    return Outcome(code, data["added"], data["duplicates"], data["rejected"])


async def stored(database_url: str) -> dict[str, dict[str, Any]]:
    """Every row of `links`, by URL."""
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            rows = (await session.scalars(select(LinkRow))).all()
    finally:
        await db.close()
    return {
        row.url: {
            "id": row.id,
            "title": row.title,
            "summary": row.summary,
            "topics": row.topics,
            "level": row.level,
            "experiment": row.experiment,
            "source": row.source,
            "added_by": row.added_by,
            "status": row.status,
        }
        for row in rows
    }


def assert_links(rows: dict[str, dict[str, Any]], expected: Expected) -> None:
    found = {url: (rows[url]["title"], rows[url]["topics"], rows[url]["level"]) for url in rows}
    assert found == expected


def serve_fixture(server: FakeDocumentServer, path: str, fixture: Fixture) -> str:
    return server.put(path, (FIXTURES / fixture.name).read_bytes(), fixture.content_type)


def opml_for(server: FakeDocumentServer) -> bytes:
    """feeds.opml pointing at `server`, which serves two good feeds and three bad ones."""
    serve_fixture(server, "/feed.atom.xml", FORMATS[3])
    server.put("/gone.xml", "gone", "text/plain", status=404)
    server.put("/page.html", "<!DOCTYPE html><html><body>Hello</body></html>", "text/html")
    server.put_huge("/huge.xml", 50, head=b'<?xml version="1.0"?><rss version="2.0"><channel>')
    text = (FIXTURES / "feeds.opml").read_text(encoding="utf-8")
    return text.replace("{base}", server.url).encode()


def write(path: Path, body: bytes | str) -> str:
    path.write_bytes(body.encode() if isinstance(body, str) else body)
    return str(path)


# -- every format, from a file and from an address ----------------------------------------------


@pytest.mark.parametrize("fixture", FORMATS, ids=lambda f: f.name)
async def test_each_format_from_a_file_adds_its_links_by_canonical_url(
    library_env: str, capsys: pytest.CaptureFixture[str], fixture: Fixture
) -> None:
    outcome = await import_json(capsys, str(FIXTURES / fixture.name), "--by", "ada")

    assert outcome == Outcome(0, fixture.added, fixture.duplicates, [])
    rows = await stored(library_env)
    assert_links(rows, fixture.links)
    assert {row["source"] for row in rows.values()} == {f"import:{fixture.name}"}
    assert {row["added_by"] for row in rows.values()} == {"ada"}
    assert {row["status"] for row in rows.values()} == {"active"}


@pytest.mark.parametrize("fixture", FORMATS, ids=lambda f: f.name)
async def test_each_format_from_an_address_is_told_by_its_content_type(
    library_env: str,
    capsys: pytest.CaptureFixture[str],
    server: FakeDocumentServer,
    fixture: Fixture,
) -> None:
    # No extension in the path: the Content-Type (or the content) has to say what it is.
    url = serve_fixture(server, "/export/library", fixture)

    outcome = await import_json(capsys, url)

    assert outcome == Outcome(0, fixture.added, fixture.duplicates, [])
    assert_links(await stored(library_env), fixture.links)
    assert [call.http_method for call in server.calls_to("/export/library")] == ["GET"]


async def test_a_feed_larger_than_one_network_read_is_read_whole(
    library_env: str, capsys: pytest.CaptureFixture[str], server: FakeDocumentServer
) -> None:
    # About 2 MB: far more than one read off the socket, well under the 5 MB limit.
    items = "".join(
        f"<item><title>Post {n}</title><link>https://blog.example.com/posts/{n}</link>"
        f"<description>{'A paragraph about posting. ' * 20}</description></item>\n"
        for n in range(3_000)
    )
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'
    assert 1 * MB < len(feed) < 5 * MB
    url = server.put("/big.rss", feed, "application/rss+xml")

    outcome = await import_json(capsys, url)

    assert outcome == Outcome(0, 3_000, 0, [])
    assert len(await stored(library_env)) == 3_000


async def test_the_same_pages_in_every_format_collapse_to_one_link_each(
    library_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = [
        ("links.yaml", 4, 1),  # the video guide twice in the file
        ("links.csv", 2, 2),  # video guide and sharing guide, spelled differently
        ("feed.rss.xml", 2, 1),  # the comment guide, with a fragment
        ("feed.atom.xml", 2, 1),  # first steps, with a default port, capitals and utm_
    ]
    for name, added, duplicates in steps:
        outcome = await import_json(capsys, str(FIXTURES / name))
        assert (outcome.code, outcome.added, outcome.duplicates, outcome.rejected) == (
            0,
            added,
            duplicates,
            [],
        ), name

    rows = await stored(library_env)
    assert_links(rows, {**FROM_ATOM, **FROM_RSS, **FROM_CSV, **FROM_YAML})
    # The first import of a page wins: the CSV's video guide did not overwrite the YAML's.
    assert rows[VIDEO]["source"] == "import:links.yaml"
    assert rows[VIDEO]["summary"] == (
        "Framing, light and sound with a phone.\n\nEnough to film a first clip today."
    )
    assert rows[COMMENT]["experiment"] == "Leave one thoughtful comment this week."
    # Feed summaries are text: markup and scripts out.
    assert rows[FIRST_STEPS]["summary"] == "Start by watching what we post."
    assert rows[ARTICLE_TWO]["summary"] == "The second article."


async def test_importing_a_file_again_adds_nothing(
    library_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = await import_json(capsys, str(FIXTURES / "links.csv"))
    before = await stored(library_env)

    again = await import_json(capsys, str(FIXTURES / "links.csv"))

    assert (first.added, first.duplicates) == (4, 0)
    assert again == Outcome(0, 0, 4, [])
    assert await stored(library_env) == before


@pytest.mark.parametrize("where", ["file", "address"])
async def test_an_opml_list_adds_its_good_feeds_and_names_each_bad_one(
    library_env: str,
    capsys: pytest.CaptureFixture[str],
    server: FakeDocumentServer,
    tmp_path: Path,
    where: str,
) -> None:
    opml = opml_for(server)
    # The RSS feed answers only after every other feed was asked for: one slow feed must not
    # hold up the rest (and this proves they are read at the same time).
    release = server.put_held(
        "/feed.rss.xml", (FIXTURES / "feed.rss.xml").read_bytes(), "application/rss+xml"
    )
    others = ["/feed.atom.xml", "/gone.xml", "/page.html", "/huge.xml"]
    releaser = asyncio.create_task(release_after(server, others, release))
    if where == "file":
        target, name = write(tmp_path / "feeds.opml", opml), "feeds.opml"
    else:
        target = name = server.put("/lists/feeds.opml", opml, "text/x-opml")

    outcome = await import_json(capsys, target)

    assert await releaser, f"the feeds were not read at the same time: {server.describe_calls()}"
    assert outcome.code == 0
    # RSS: 3 links; Atom: 3 links, one of them (first steps) also in the RSS feed.
    assert (outcome.added, outcome.duplicates) == (5, 1)
    assert outcome.reasons() == {
        f"{name} line 15": (
            "xmlUrl 'javascript:alert(1)': only http and https links are allowed "
            "(this one is javascript:)"
        ),
        server.address("/gone.xml"): "the feed answered HTTP 404",
        server.address("/page.html"): "the address answers an HTML page, not a feed",
        server.address("/huge.xml"): (
            "the feed could not be read: the answer from 127.0.0.1 is larger than 5 MB"
        ),
    }
    assert_links(await stored(library_env), {**FROM_RSS, **FROM_ATOM})
    # feed.rss.xml and feed.rss.xml#latest are one feed, read once.
    assert len(server.calls_to("/feed.rss.xml")) == 1
    # The 50 MB feed was cut off at the limit, not read to its end.
    assert 5 * MB < server.streamed["/huge.xml"] < 20 * MB


async def release_after(
    server: FakeDocumentServer, paths: list[str], release: asyncio.Event
) -> bool:
    """Set `release` once every path was asked for; False if that took over 5 s (then set it
    anyway, so the import finishes and the test fails on the result instead of hanging)."""
    try:
        for path in paths:
            await server.wait_for(path, timeout=5.0)
        return True
    except TimeoutError:
        return False
    finally:
        release.set()


# -- hostile and broken input --------------------------------------------------------------------


async def test_a_javascript_row_is_rejected_with_its_line_and_the_good_rows_are_added(
    library_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path / "evil.csv",
        "url,title\n"
        "https://example.com/one,One\n"
        "javascript:alert(document.cookie),Click me\n"
        "https://example.com/two,Two\n",
    )

    outcome = await import_json(capsys, path)

    assert outcome == Outcome(
        0,
        2,
        0,
        [
            {
                "where": "evil.csv line 3",
                "reason": "url 'javascript:alert(document.cookie)': only http and https "
                "links are allowed (this one is javascript:)",
            }
        ],
    )
    assert set(await stored(library_env)) == {"https://example.com/one", "https://example.com/two"}


async def test_a_yaml_billion_laughs_is_refused_and_earlier_links_stay(
    library_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert (await import_json(capsys, str(FIXTURES / "links.yaml"))).added == 4
    before = await stored(library_env)
    bomb = write(tmp_path / "laughs.yaml", yaml_bomb(levels=9, width=9))

    outcome = await import_json(capsys, bomb)

    assert outcome == Outcome(
        1,
        0,
        0,
        [{"where": "laughs.yaml", "reason": "the YAML uses anchors/aliases (&/*); refusing it"}],
    )
    assert await stored(library_env) == before


def yaml_bomb(levels: int, width: int) -> str:
    """`links:` expanding to width**levels links through aliases (the YAML billion laughs)."""
    lines = ['l0: &l0 ["https://example.com/lol"]']
    for n in range(1, levels + 1):
        aliases = ", ".join([f"*l{n - 1}"] * width)
        lines.append(f"l{n}: &l{n} [{aliases}]")
    return "\n".join(lines) + f"\nlinks: *l{levels}\n"


async def test_an_rss_billion_laughs_is_refused(
    library_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    bomb = write(
        tmp_path / "laughs.rss",
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n' + "\n".join(entities) + "\n]>\n"
        '<rss version="2.0"><channel><item><title>&lol9;</title>'
        "<link>https://example.com/lol</link></item></channel></rss>\n",
    )

    outcome = await import_json(capsys, bomb)

    assert outcome == Outcome(
        1, 0, 0, [{"where": "laughs.rss", "reason": "the feed declares entities; refusing it"}]
    )
    assert await stored(library_env) == {}


async def test_a_csv_that_is_not_utf8_is_refused_naming_the_line(
    library_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Latin-1 "é" on line 3, as a spreadsheet saving "CSV" in a Western locale writes it.
    path = write(
        tmp_path / "latin1.csv",
        b"url,title\nhttps://example.com/one,One\nhttps://example.com/cafe,Caf\xe9\n",
    )

    outcome = await import_json(capsys, path)

    assert outcome.code == 1
    assert (outcome.added, outcome.duplicates) == (0, 0)
    assert outcome.reasons() == {
        "latin1.csv": "not valid UTF-8 at line 3 (byte 67); save the file as UTF-8 "
        "(in Excel: CSV UTF-8)"
    }


async def test_a_50_mb_feed_address_is_cut_off_at_5_mb(
    library_env: str, capsys: pytest.CaptureFixture[str], server: FakeDocumentServer
) -> None:
    url = server.put_huge("/huge.xml", 50, head=b'<?xml version="1.0"?><rss version="2.0">')

    outcome = await import_json(capsys, url)

    assert outcome == Outcome(
        1,
        0,
        0,
        [
            {
                "where": url,
                "reason": "could not be read: the answer from 127.0.0.1 is larger than 5 MB",
            }
        ],
    )
    assert 5 * MB < server.streamed["/huge.xml"] < 20 * MB


async def test_a_21_mb_file_is_refused_before_it_is_read(
    library_env: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write(b"url\nhttps://example.com/one\n")
        handle.truncate(21 * MB)  # sparse: 21 MB on paper, nothing to write
    opened: list[Path] = []
    real_read = Path.read_bytes

    def recording_read(self: Path) -> bytes:
        opened.append(self)
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", recording_read)

    outcome = await import_json(capsys, str(path))

    assert outcome == Outcome(
        1, 0, 0, [{"where": "huge.csv", "reason": "the file is 21.0 MB; the limit is 20 MB"}]
    )
    assert path not in opened


async def test_a_missing_file_is_a_rejection_and_exit_1(
    library_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "links.csv"

    outcome = await import_json(capsys, str(missing))

    assert outcome == Outcome(
        1, 0, 0, [{"where": "links.csv", "reason": f"no such file: {missing}"}]
    )


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (
            "javascript:alert(1)",
            "only http and https links are allowed (this one is javascript:)",
        ),
        (
            "file:///etc/passwd",
            "only http and https links are allowed (this one is file:)",
        ),
        ("https://user:secret@example.com/links.csv", "has a user name or password in it"),
    ],
)
async def test_an_address_that_is_not_a_web_link_is_refused_without_a_request(
    library_env: str, capsys: pytest.CaptureFixture[str], target: str, reason: str
) -> None:
    outcome = await import_json(capsys, target)

    assert outcome == Outcome(1, 0, 0, [{"where": target, "reason": reason}])


async def test_an_address_answering_404_is_exit_1(
    library_env: str, capsys: pytest.CaptureFixture[str], server: FakeDocumentServer
) -> None:
    url = server.address("/missing.csv")

    outcome = await import_json(capsys, url)

    assert outcome == Outcome(1, 0, 0, [{"where": url, "reason": "answered HTTP 404"}])
    assert len(server.calls_to("/missing.csv")) == 1


# -- what a person sees -------------------------------------------------------------------------


async def test_text_output_is_a_summary_line_and_the_rejections(
    library_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await import_json(capsys, str(FIXTURES / "links.csv"))
    path = write(
        tmp_path / "mixed.csv",
        "url,title,level\n"
        "https://example.com/guides/video-basics,Video,watch\n"
        "https://example.com/new,New,watch\n"
        "ftp://example.com/file,FTP,watch\n"
        "https://example.com/level,Level,expert\n",
    )

    code, out = await run_cli(capsys, path)

    assert code == 0
    assert out.splitlines() == [
        f"{path}: 1 link(s) added, 1 duplicate(s), 2 rejected",
        "  mixed.csv line 4: url 'ftp://example.com/file': only http and https links are "
        "allowed (this one is ftp:)",
        "  mixed.csv line 5: level 'expert' is not one of watch, react, share, comment, create",
    ]


async def test_text_output_lists_twenty_rejections_and_counts_the_rest(
    library_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = "".join(f"nope{n},Bad {n}\n" for n in range(25))
    path = write(tmp_path / "bad.csv", "url,title\nhttps://example.com/ok,OK\n" + bad)

    code, out = await run_cli(capsys, path)

    lines = out.splitlines()
    assert code == 0
    assert lines[0] == f"{path}: 1 link(s) added, 0 duplicate(s), 25 rejected"
    assert len(lines) == 1 + 20 + 1
    assert lines[1].startswith("  bad.csv line 3: url 'nope0': not a full link")
    assert lines[-1] == "  … and 5 more (--json lists them all)"


async def test_no_progress_bar_when_stderr_is_not_a_terminal(
    library_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["library", "import", str(FIXTURES / "links.csv")])

    assert code == 0
    assert "\r" not in capsys.readouterr().err


def test_the_progress_bar_draws_in_place_and_ends_its_line() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)

    bar.update("links", 250, 1000)
    bar.update("links", 1000, 1000)
    bar.finish()

    quarter = "#" * 7 + "-" * 23
    assert stream.getvalue() == (f"\rlinks [{quarter}] 250/1,000\rlinks [{'#' * 30}] 1,000/1,000\n")


def test_a_progress_bar_that_never_drew_writes_nothing() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)

    bar.finish()

    assert stream.getvalue() == ""


def test_a_progress_bar_of_nothing_is_full() -> None:
    stream = io.StringIO()
    ProgressBar(stream).update("feeds", 0, 0)

    assert stream.getvalue() == f"\rfeeds [{'#' * 30}] 0/0"
