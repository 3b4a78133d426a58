"""The RSS/Atom source against a fake feed server: parsing, conditional GETs, dedup, refusals."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from bot.config.organisation import RssSourceConfig
from bot.core.sources import ItemKind, SourceError
from bot.sources.rss import RssSource, parse_feed
from tests.fakes.feed_server import FakeFeedServer, atom_entry, atom_feed, rss_feed, rss_item

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<rss version="2.0"><channel><item><title>&lol3;</title></item></channel></rss>
"""


@pytest.fixture
async def feed() -> AsyncIterator[FakeFeedServer]:
    async with FakeFeedServer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def source_for(feed: FakeFeedServer, http: aiohttp.ClientSession) -> RssSource:
    return RssSource(RssSourceConfig(id="blog", kind="rss", url=feed.feed_url), http)


def item(n: int, published: datetime) -> str:
    return rss_item(f"post-{n}", f"Post {n}", f"<p>Body {n}</p>", published=published)


async def test_rss_items_become_posts(feed: FakeFeedServer, http: aiohttp.ClientSession) -> None:
    feed.set_feed(
        rss_feed(
            [
                rss_item(
                    "tag:blog,2026:2",
                    "Release 2.0",
                    "<p>What's <b>new</b></p>",
                    published=NOW - DAY,
                    link="https://blog.example.com/2.0",
                    author="Grace",
                ),
                rss_item("tag:blog,2026:1", "Hello", "First post", published=NOW - 2 * DAY),
            ]
        )
    )

    result = await source_for(feed, http).poll({}, NOW)

    old, new = result.items
    assert (old.external_id, new.external_id) == ("tag:blog,2026:1", "tag:blog,2026:2")
    assert new.kind is ItemKind.POST
    assert new.text == "Release 2.0\n\n<p>What's <b>new</b></p>"
    assert new.title == "Release 2.0"
    assert new.url == "https://blog.example.com/2.0"
    assert new.author_name == "Grace"
    assert new.posted_at == NOW - DAY
    assert (new.parent_id, new.source_id, result.calls) == (None, "blog", 1)
    json.dumps(result.cursor)


async def test_atom_entries_become_posts(feed: FakeFeedServer, http: aiohttp.ClientSession) -> None:
    feed.set_feed(
        atom_feed(
            [
                atom_entry(
                    "urn:uuid:1",
                    "Webinar",
                    "Join us on Friday",
                    updated=NOW - DAY,
                    published=NOW - 2 * DAY,
                    link="https://news.example.com/webinar",
                    author="Linus",
                )
            ]
        ),
        content_type="application/atom+xml",
    )

    (entry,) = (await source_for(feed, http).poll({}, NOW)).items

    assert entry.external_id == "urn:uuid:1"
    assert entry.text == "Webinar\n\nJoin us on Friday"
    assert entry.url == "https://news.example.com/webinar"  # rel="alternate", not rel="edit"
    assert entry.author_name == "Linus"
    assert entry.posted_at == NOW - 2 * DAY  # published, not updated


def test_atom_content_relative_links_and_the_feed_author() -> None:
    document = b"""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <author><name>Newsroom</name></author>
  <entry>
    <id>tag:news,1</id><title type="html">Q&amp;A</title>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Ask <em>us</em></div></content>
    <link href="/posts/1"/>
    <updated>2026-03-01T12:00:00+01:00</updated>
  </entry>
</feed>"""

    (entry,) = parse_feed(document, "https://news.example.com/feed.atom")

    assert (entry.title, entry.summary) == ("Q&A", "Ask us")
    assert entry.link == "https://news.example.com/posts/1"
    assert entry.author == "Newsroom"
    assert entry.posted_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def test_rss_1_0_and_a_default_rss_namespace() -> None:
    document = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://old.example.com/"><title>Old</title></channel>
  <item rdf:about="https://old.example.com/1">
    <title>One</title><link>https://old.example.com/1</link>
    <description>Text</description><dc:date>2026-02-01T08:00:00Z</dc:date>
    <dc:creator>Ken</dc:creator>
  </item>
</rdf:RDF>"""

    (entry,) = parse_feed(document)

    assert (entry.id, entry.text, entry.author) == (
        "https://old.example.com/1",
        "One\n\nText",
        "Ken",
    )
    assert entry.posted_at == datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


async def test_an_unchanged_feed_answers_304_to_the_etag(
    feed: FakeFeedServer, http: aiohttp.ClientSession
) -> None:
    feed.set_feed(rss_feed([item(1, NOW - DAY)]))
    source = source_for(feed, http)
    first = await source.poll({}, NOW)
    assert first.cursor["etag"] == feed.etag

    second = await source.poll(first.cursor, NOW + DAY)

    assert feed.calls[-1].headers["If-None-Match"] == feed.etag
    assert feed.not_modified == 1
    assert second.items == []
    assert second.cursor == first.cursor


async def test_last_modified_is_sent_back_as_if_modified_since(
    feed: FakeFeedServer, http: aiohttp.ClientSession
) -> None:
    feed.set_feed(rss_feed([item(1, NOW - DAY)]), etag=None, last_modified=NOW - DAY)
    source = source_for(feed, http)
    first = await source.poll({}, NOW)

    second = await source.poll(first.cursor, NOW + DAY)

    assert "etag" not in first.cursor
    assert feed.calls[-1].headers["If-Modified-Since"] == "Sun, 01 Mar 2026 10:00:00 GMT"
    assert "If-None-Match" not in feed.calls[-1].headers
    assert (feed.not_modified, second.items) == (1, [])


async def test_a_new_entry_is_emitted_once(
    feed: FakeFeedServer, http: aiohttp.ClientSession
) -> None:
    source = source_for(feed, http)
    feed.set_feed(rss_feed([item(2, NOW - DAY), item(1, NOW - 2 * DAY)]), etag=None)
    first = await source.poll({}, NOW)
    feed.set_feed(rss_feed([item(3, NOW), item(2, NOW - DAY), item(1, NOW - 2 * DAY)]), etag=None)

    second = await source.poll(first.cursor, NOW + DAY)
    third = await source.poll(second.cursor, NOW + 2 * DAY)

    assert [i.external_id for i in first.items] == ["post-1", "post-2"]
    assert [i.external_id for i in second.items] == ["post-3"]
    assert third.items == []
    assert feed.not_modified == 0  # no validators: the seen ids alone kept it quiet


async def test_a_reordered_feed_emits_nothing_twice(
    feed: FakeFeedServer, http: aiohttp.ClientSession
) -> None:
    source = source_for(feed, http)
    entries = [item(n, NOW - n * DAY) for n in range(1, 4)]
    feed.set_feed(rss_feed(entries))
    first = await source.poll({}, NOW)
    # Reversed, one entry re-dated into the future and one dropped then re-added later.
    feed.set_feed(rss_feed([item(1, NOW + DAY), entries[2]]))
    second = await source.poll(first.cursor, NOW + DAY)
    feed.set_feed(rss_feed([entries[1], entries[2], entries[0]]))
    third = await source.poll(second.cursor, NOW + 2 * DAY)

    assert len(first.items) == 3
    assert second.items == third.items == []


async def test_an_old_entry_under_a_new_id_is_not_news(
    feed: FakeFeedServer, http: aiohttp.ClientSession
) -> None:
    source = source_for(feed, http)
    feed.set_feed(rss_feed([item(1, NOW - DAY)]))
    first = await source.poll({}, NOW)
    feed.set_feed(rss_feed([item(2, NOW), item(99, NOW - 30 * DAY), item(1, NOW - DAY)]))

    second = await source.poll(first.cursor, NOW + DAY)

    assert [i.external_id for i in second.items] == ["post-2"]
    assert "post-99" in second.cursor["seen"]


async def test_a_feed_declaring_entities_is_refused(
    feed: FakeFeedServer, http: aiohttp.ClientSession
) -> None:
    feed.set_feed(BILLION_LAUGHS)

    with pytest.raises(SourceError, match="the feed declares entities; refusing it"):
        await source_for(feed, http).poll({}, NOW)


@pytest.mark.parametrize(
    "document",
    [
        BILLION_LAUGHS.replace("<!DOCTYPE", "<!-- a comment -->\n<!DOCTYPE").encode(),
        b"\xef\xbb\xbf" + BILLION_LAUGHS.encode(),
        BILLION_LAUGHS.replace('<?xml version="1.0"?>', "").encode("utf-16"),
        BILLION_LAUGHS.replace('version="1.0"', 'version="1.0" encoding="UTF-16BE"').encode(
            "utf-16-be"
        ),
    ],
    ids=["after-comment", "utf8-bom", "utf16-bom", "utf16be-no-bom"],
)
def test_declarations_are_found_however_the_document_is_dressed(document: bytes) -> None:
    with pytest.raises(SourceError, match="declares entities"):
        parse_feed(document)


def test_a_doctype_word_inside_content_is_fine() -> None:
    document = rss_feed([rss_item("x", "XML tips", "Never trust <!DOCTYPE> from strangers")])
    cdata = document.replace("&lt;!DOCTYPE&gt;", "<![CDATA[<!DOCTYPE x [<!ENTITY a 'b'>]>]]>")

    (entry,) = parse_feed(cdata.encode())

    assert "<!DOCTYPE x" in (entry.summary or "")


async def test_broken_xml_names_the_line(feed: FakeFeedServer, http: aiohttp.ClientSession) -> None:
    feed.set_feed(
        '<?xml version="1.0"?>\n<rss version="2.0">\n<channel>\n<item><title>Oops</item>\n'
        "</channel></rss>\n"
    )

    with pytest.raises(SourceError, match=r"not well-formed XML \(line 4, column \d+\)"):
        await source_for(feed, http).poll({}, NOW)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("<!DOCTYPE html>\n<html><head><title>Blog</title></head><body></body></html>", "HTML"),
        ("<html><body><p>Moved</p></body></html>", "HTML"),
        ('<?xml version="1.0"?><opml version="2.0"><body/></opml>', "root element is <opml>"),
    ],
)
async def test_a_document_that_is_not_a_feed_is_an_error(
    feed: FakeFeedServer, http: aiohttp.ClientSession, document: str, message: str
) -> None:
    feed.set_feed(document, content_type="text/html")

    with pytest.raises(SourceError, match=message) as caught:
        await source_for(feed, http).poll({}, NOW)

    assert not caught.value.permanent


@pytest.mark.parametrize(
    ("status", "headers", "rate_limited", "retry_after", "permanent"),
    [
        (429, {"Retry-After": "120"}, True, 120, False),
        (503, {"Retry-After": "60"}, True, 60, False),
        (503, {}, False, None, False),
        (404, {}, False, None, True),
        (410, {}, False, None, True),
        (500, {}, False, None, False),
    ],
)
async def test_http_errors(
    feed: FakeFeedServer,
    http: aiohttp.ClientSession,
    status: int,
    headers: dict[str, str],
    rate_limited: bool,
    retry_after: float | None,
    permanent: bool,
) -> None:
    feed.set_feed(rss_feed([item(1, NOW)]))
    feed.fail_next("feed", status, headers)

    with pytest.raises(SourceError) as caught:
        await source_for(feed, http).poll({}, NOW)

    error = caught.value
    assert (error.rate_limited, error.retry_after, error.permanent) == (
        rate_limited,
        retry_after,
        permanent,
    )
