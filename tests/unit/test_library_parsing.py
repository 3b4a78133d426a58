"""The learning library's import parsers and link canonicalisation, hostile inputs included."""

from __future__ import annotations

import time

import pytest

from content_library import parsing
from content_library.candidates import Parsed, Rejection
from content_library.canonical import MAX_URL_LENGTH, InvalidLink, canonical_url
from content_library.parsing import (
    MAX_DOCUMENT_BYTES,
    detect_format,
    parse_csv,
    parse_document,
    parse_feed_links,
    parse_opml,
    parse_yaml,
)
from nudges.config import Stage

# --- canonical_url ----------------------------------------------------------------------------

CANONICAL = [
    ("https://example.com", "https://example.com/"),
    ("  HTTPS://Example.COM/Path  ", "https://example.com/Path"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:443/a", "http://example.com:443/a"),
    ("https://example.com:8080", "https://example.com:8080/"),
    ("https://example.com:/a", "https://example.com/a"),
    ("https://example.com/a#section-2", "https://example.com/a"),
    ("https://example.com/?", "https://example.com/"),
    ("https://example.com/a/", "https://example.com/a/"),
    ("https://example.com/a/./b/../c", "https://example.com/a/c"),
    ("https://example.com/a/b/..", "https://example.com/a/"),
    ("https://example.com/../..", "https://example.com/"),
    ("https://example.com/%2e%2E/x", "https://example.com/x"),
    ("https://example.com/%7euser/%41", "https://example.com/~user/A"),
    ("https://example.com/a%2fb%3f", "https://example.com/a%2Fb%3F"),
    ("https://example.com/a b/100%", "https://example.com/a%20b/100%25"),
    ("https://example.com/café", "https://example.com/caf%C3%A9"),
    ("https://example.com/?q=%e2%82%ac+x", "https://example.com/?q=%E2%82%AC+x"),
    ("https://bücher.example/", "https://xn--bcher-kva.example/"),
    ("https://BÜCHER.example/", "https://xn--bcher-kva.example/"),
    ("https://例え.テスト/", "https://xn--r8jz45g.xn--zckzah/"),
    ("https://ex%61mple.com/", "https://example.com/"),
    ("https://example.com./", "https://example.com/"),
    ("https://[2001:DB8:0::1]:8443/", "https://[2001:db8::1]:8443/"),
    ("http://192.168.0.1/", "http://192.168.0.1/"),
    ("https:\\\\example.com\\a", "https://example.com/a"),
    # Tracking parameters go, whatever their case; the rest are sorted by key, stably.
    (
        "https://example.com/p?utm_source=nl&UTM_Medium=email&b=2&a=1&a=0&fbclid=x",
        "https://example.com/p?a=1&a=0&b=2",
    ),
    (
        "https://example.com/?gclid=1&msclkid=2&mc_cid=3&mc_eid=4&_hsenc=5&mkt_tok=6&id=7",
        "https://example.com/?id=7",
    ),
    ("https://example.com/?utm_source=x", "https://example.com/"),
    ("https://example.com/?utm%5Fsource=x&k", "https://example.com/?k"),
    ("https://www.youtube.com/watch?v=abc&si=s&t=42", "https://www.youtube.com/watch?t=42&v=abc"),
    ("https://youtu.be/abc?si=share", "https://youtu.be/abc"),
    ("https://example.com/?si=kept", "https://example.com/?si=kept"),
    ("https://example.com/?ref=main&a=&&b", "https://example.com/?a=&b&ref=main"),
]


@pytest.mark.parametrize(("raw", "expected"), CANONICAL)
def test_canonical_url(raw: str, expected: str) -> None:
    assert canonical_url(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), CANONICAL)
def test_canonical_url_is_idempotent(raw: str, expected: str) -> None:
    assert canonical_url(canonical_url(raw)) == canonical_url(raw)


def test_parameter_order_does_not_make_a_new_link() -> None:
    assert canonical_url("https://e.com/s?q=a&page=2&utm_source=x") == canonical_url(
        "https://E.com/s?page=2&q=a#top"
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("javascript:alert(1)", "only http and https links are allowed (this one is javascript:)"),
        ("JavaScript:alert(1)", "(this one is javascript:)"),
        ("data:text/html,<script>", "(this one is data:)"),
        ("file:///etc/passwd", "(this one is file:)"),
        ("ftp://example.com/f", "(this one is ftp:)"),
        ("mailto:ada@example.com", "(this one is mailto:)"),
        ("example.com/page", "must start with http:// or https://"),
        ("//example.com/page", "must start with http:// or https://"),
        ("", "empty"),
        ("https://", "no host"),
        ("https:///path", "no host"),
        ("http:example.com", "no host"),
        ("https://ada:secret@example.com/", "has a user name or password in it"),
        ("https://ada@example.com/", "has a user name or password in it"),
        ("https://example.com:0/", "not a valid port"),
        ("https://example.com:65536/", "not a valid port"),
        ("https://example.com:http/", "not a valid port"),
        ("https://exa mple.com/", "not a valid host name"),
        ("https://a..b/", "not a valid host name"),
        ("https://xn--/", "not a valid international domain name"),
        ("https://999.1.1.1/", "not a valid IPv4 address"),
        ("https://[::g]/", "not a valid IPv6 address"),
        ("https://example.com/a\tb", "has whitespace in it (U+0009)"),
        ("https://example.com/a\nb", "has whitespace in it (U+000A)"),
        ("https://example.com/\x00", "has a control or invisible character in it (U+0000)"),
        ("https://example.com/a\u202eb", "(U+202E)"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, "longer than 2,000 characters"),
        ("https://example.com/" + "é" * 600, "longer than 2,000 characters once encoded"),
    ],
)
def test_canonical_url_refuses(raw: str, reason: str) -> None:
    with pytest.raises(InvalidLink) as caught:
        canonical_url(raw)
    assert reason in str(caught.value)


# --- YAML -----------------------------------------------------------------------------------


def test_yaml_links_in_a_mapping() -> None:
    body = b"""
links:
  - https://Example.com/start?utm_source=newsletter
  - url: https://example.com/guide#intro
    title: "  A   guide\\u202e  "
    summary: |
      First paragraph.


      Second paragraph.
    topics: Video, Reels ,video
    level: React
    experiment: Reply to one comment this week
  - url: https://example.com/list
    topics: [Growth, growth, SEO]
"""
    parsed = parse_yaml(body, "links.yaml")

    assert parsed.rejected == []
    bare, full, listed = parsed.links
    assert (bare.url, bare.where, bare.title) == (
        "https://example.com/start",
        "links.yaml item 1",
        None,
    )
    assert full.url == "https://example.com/guide"
    assert full.title == "A guide"
    assert full.summary == "First paragraph.\n\nSecond paragraph."
    assert full.topics == ("video", "reels")
    assert full.level is Stage.REACT
    assert full.experiment == "Reply to one comment this week"
    assert listed.topics == ("growth", "seo")


def test_yaml_plain_list_and_scalars_stay_text() -> None:
    body = b"- url: https://example.com/1984\n  title: 1984\n  topics: [on, 3.10]\n"

    (link,) = parse_yaml(body, "l.yaml").links

    assert (link.title, link.topics) == ("1984", ("on", "3.10"))


def test_yaml_bad_items_are_rejected_one_by_one() -> None:
    body = b"""
- url: https://example.com/good
- url: javascript:alert(document.cookie)
- url: https://example.com/typo
  titel: Oops
- url: https://example.com/level
  level: expert
- title: no url here
- 42
- url: https://example.com/also-good
"""
    parsed = parse_yaml(body, "l.yaml")

    assert [link.url for link in parsed.links] == [
        "https://example.com/good",
        "https://example.com/also-good",
    ]
    reasons = {r.where: r.reason for r in parsed.rejected}
    assert "only http and https links are allowed" in reasons["l.yaml item 2"]
    assert "unknown key 'titel'" in reasons["l.yaml item 3"]
    assert "watch, react, share, comment, create" in reasons["l.yaml item 4"]
    assert reasons["l.yaml item 5"] == "no url"
    assert "not a full link" in reasons["l.yaml item 6"]


BILLION_LAUGHS_YAML = b"""
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
links: *i
"""


def test_yaml_billion_laughs_is_refused_without_expanding() -> None:
    started = time.perf_counter()
    parsed = parse_yaml(BILLION_LAUGHS_YAML, "bomb.yaml")

    assert time.perf_counter() - started < 0.5
    assert parsed.links == []
    assert parsed.rejected == [
        Rejection("bomb.yaml", "the YAML uses anchors/aliases (&/*); refusing it")
    ]


@pytest.mark.parametrize("fast", [True, False])
def test_both_yaml_loaders_refuse_aliases(fast: bool) -> None:
    loader = parsing._yaml_loader(fast=fast)
    with pytest.raises(parsing._Refused, match="anchors/aliases"):
        parsing._load_yaml("- &x https://example.com/\n- *x\n", loader)


def test_yaml_anchor_alone_is_refused_too() -> None:
    parsed = parse_yaml(b"- &x https://example.com/\n", "l.yaml")

    assert parsed.links == []
    assert "anchors/aliases" in parsed.rejected[0].reason


def test_yaml_deep_nesting_is_refused() -> None:
    parsed = parse_yaml(b"[" * 100_000, "deep.yaml")

    assert parsed.rejected == [
        Rejection("deep.yaml", "the YAML is nested more than 10 levels deep")
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"- url: https://example.com/\n- title: caf\xe9\n", "not valid UTF-8 at line 2"),
        (b"- url: https://example.com/\n- [unclosed\n", "the YAML cannot be read (line 3"),
        (b"- url: https://a.com/\n  url: https://b.com/\n", "line 2: the key 'url' is there twice"),
        (b"- !!python/object/apply:os.system [ls]\n", "the YAML cannot be read (line 1"),
        (b"linx:\n  - https://example.com/\n", "unknown key 'linx' at the top"),
        (b"# nothing\n", "the YAML is empty"),
        (b"just text\n", "must be a list of links"),
    ],
)
def test_yaml_document_problems_are_one_rejection(body: bytes, reason: str) -> None:
    parsed = parse_yaml(body, "l.yaml")

    assert parsed.links == []
    assert len(parsed.rejected) == 1
    assert parsed.rejected[0].where == "l.yaml"
    assert reason in parsed.rejected[0].reason


# --- CSV ------------------------------------------------------------------------------------


def test_csv_rows_become_links() -> None:
    body = (
        "\ufeffURL,Title,Summary,Topics,Level,Experiment,Owner\n"
        'https://example.com/a?fbclid=1,Reels 101,"Short, sharp",Video; reels|VIDEO,watch,'
        "Watch one reel,ada\n"
        'https://example.com/b,"Two\nlines",,,,,\n'
    ).encode()

    parsed = parse_csv(body, "links.csv")

    assert parsed.rejected == []
    first, second = parsed.links
    assert (first.url, first.where) == ("https://example.com/a", "links.csv line 2")
    assert (first.title, first.summary) == ("Reels 101", "Short, sharp")
    assert first.topics == ("video", "reels")
    assert (first.level, first.experiment) == (Stage.WATCH, "Watch one reel")
    assert (second.where, second.title, second.level) == ("links.csv line 3", "Two lines", None)


def test_csv_with_semicolons_and_header_spelling() -> None:
    body = b"url;TITLE;experiment\nhttps://example.com/x;X;Try it\n"

    (link,) = parse_csv(body, "l.csv").links

    assert (link.url, link.title, link.experiment) == ("https://example.com/x", "X", "Try it")


def test_csv_bad_rows_are_rejected_with_their_line() -> None:
    body = (
        b"url,title,level\n"
        b"https://example.com/1,One,\n"
        b"javascript:alert(1),Evil,\n"
        b",No url,\n"
        b"https://example.com/4,Four,guru\n"
        b'https://example.com/5,"Five, unquoted",x,y\n'
        b"https://example.com/1,Again,share\n"
    )
    parsed = parse_csv(body, "l.csv")

    assert [(link.where, link.url) for link in parsed.links] == [
        ("l.csv line 2", "https://example.com/1"),
        ("l.csv line 7", "https://example.com/1"),  # duplicates are the importer's business
    ]
    reasons = {r.where: r.reason for r in parsed.rejected}
    assert set(reasons) == {"l.csv line 3", "l.csv line 4", "l.csv line 5", "l.csv line 6"}
    assert "(this one is javascript:)" in reasons["l.csv line 3"]
    assert reasons["l.csv line 4"] == "no url"
    assert "level 'guru' is not one of watch" in reasons["l.csv line 5"]
    assert "unquoted comma" in reasons["l.csv line 6"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"title,summary\nA,B\n", "needs a 'url' column"),
        (b"\n\n", "the document is empty"),
        (b"url,url\nhttps://a.com/,https://b.com/\n", "names the column 'url' twice"),
        (b"url\nhttps://example.com/\nhttps://example.com/caf\xe9\n", "not valid UTF-8 at line 3"),
        (b"\xff\xfeu\x00r\x00l\x00", "UTF-16"),
    ],
)
def test_csv_document_problems_are_one_rejection(body: bytes, reason: str) -> None:
    parsed = parse_csv(body, "l.csv")

    assert parsed.links == []
    assert [r.where for r in parsed.rejected] == ["l.csv"]
    assert reason in parsed.rejected[0].reason


def test_csv_of_ten_thousand_rows_is_fast() -> None:
    rows = "".join(
        f"https://example.com/p/{i}?utm_source=x&b=1,Title {i},a;b,watch\n" for i in range(10_000)
    )
    body = ("url,title,topics,level\n" + rows).encode()

    started = time.perf_counter()
    parsed = parse_csv(body, "big.csv")

    assert time.perf_counter() - started < 1.0
    assert len(parsed.links) == 10_000
    assert parsed.links[-1].url == "https://example.com/p/9999?b=1"


def test_links_over_the_limit_are_one_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "MAX_LINKS", 3)
    body = b"url\n" + b"".join(b"https://example.com/%d\n" % i for i in range(7))

    parsed = parse_csv(body, "l.csv")

    assert len(parsed.links) == 3
    assert parsed.rejected == [
        Rejection("l.csv", "4 more rows were not read: one document may hold at most 3 links")
    ]


# --- Text fields ----------------------------------------------------------------------------


def test_text_fields_are_cleaned_and_capped() -> None:
    body = (
        "url,title,summary,experiment,topics\n"
        f'https://example.com/,"{"t" * 400}\x07",{"s" * 1200},{"e" * 600},A;a;\u200bB\n'
    ).encode()

    (link,) = parse_csv(body, "l.csv").links

    assert link.title is not None and len(link.title) == 300 and link.title.endswith("…")
    assert link.summary is not None and len(link.summary) == 1_000
    assert link.experiment is not None and len(link.experiment) == 500
    assert link.topics == ("a", "b")


@pytest.mark.parametrize(
    ("topics", "reason"),
    [
        ("x" * 41, "longer than 40 characters"),
        (";".join(f"t{i}" for i in range(11)), "11 topics; at most 10"),
    ],
)
def test_too_many_or_too_long_topics_reject_the_link(topics: str, reason: str) -> None:
    parsed = parse_csv(f"url,topics\nhttps://example.com/,{topics}\n".encode(), "l.csv")

    assert parsed.links == []
    assert reason in parsed.rejected[0].reason


# --- Feeds ----------------------------------------------------------------------------------

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Blog</title>
<item><title>First</title><link>https://blog.example.com/1?utm_medium=rss</link>
  <description>&lt;p&gt;Hello &amp;amp; &lt;b&gt;welcome&lt;/b&gt;
  &lt;script&gt;steal()&lt;/script&gt;&lt;/p&gt;</description></item>
<item><title>No link</title></item>
<item><title>Evil</title><link>javascript:alert(1)</link></item>
<item><title>Relative</title><link>/2</link><description>x</description></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
<entry><id>1</id><title>Atom one</title><link rel="alternate" href="https://a.example/1"/>
<summary>A summary</summary></entry>
</feed>"""

RSS1 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">
<item rdf:about="https://r.example/1"><title>RDF one</title><link>https://r.example/1</link></item>
</rdf:RDF>"""

XML_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<ROOT><item><title>&lol3;</title></item></ROOT>"""


def test_rss_entries_become_links() -> None:
    parsed = parse_feed_links(RSS, "https://blog.example.com/feed")

    first, relative = parsed.links
    assert first.url == "https://blog.example.com/1"
    assert (first.where, first.title) == ("https://blog.example.com/feed entry 1", "First")
    assert first.summary == "Hello & welcome"
    assert relative.url == "https://blog.example.com/2"
    reasons = {r.where: r.reason for r in parsed.rejected}
    assert reasons["https://blog.example.com/feed entry 2"] == "the entry has no link"
    assert "(this one is javascript:)" in reasons["https://blog.example.com/feed entry 3"]


def test_relative_links_need_an_address_to_resolve_against() -> None:
    parsed = parse_feed_links(RSS, "feed.xml")

    assert [link.url for link in parsed.links] == ["https://blog.example.com/1"]
    assert "not a full link" in {r.where: r.reason for r in parsed.rejected}["feed.xml entry 4"]


@pytest.mark.parametrize(
    ("body", "url"), [(ATOM, "https://a.example/1"), (RSS1, "https://r.example/1")]
)
def test_atom_and_rss1_feeds(body: bytes, url: str) -> None:
    (link,) = parse_feed_links(body, "f").links

    assert link.url == url


def test_feed_summaries_are_short() -> None:
    body = RSS.replace(b"Hello", b"word " * 400)

    link = parse_feed_links(body, "https://blog.example.com/feed").links[0]

    assert link.summary is not None and len(link.summary) <= 500


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<!DOCTYPE html><html><body>Blog</body></html>", "an HTML page, not a feed"),
        (XML_BOMB.replace(b"ROOT", b"rss"), "declares entities; refusing it"),
        (b"<rss><channel><item></channel></rss>", "not well-formed XML (line 1"),
        (b"<opml version='2.0'/>", "not an RSS or Atom feed"),
    ],
)
def test_unreadable_feeds_are_one_rejection(body: bytes, reason: str) -> None:
    parsed = parse_feed_links(body, "f")

    assert parsed.links == []
    assert [r.where for r in parsed.rejected] == ["f"]
    assert reason in parsed.rejected[0].reason


# --- OPML -----------------------------------------------------------------------------------

OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>Reading</title></head><body>
<outline text="Tech">
  <outline text="A" type="rss" xmlUrl="https://A.example/feed?utm_source=opml"/>
  <outline text="Evil" type="rss" xmlUrl="javascript:alert(1)"/>
  <outline text="Nested"><outline text="A again" xmlUrl="https://a.example/feed#x"/></outline>
</outline>
<outline text="B" type="rss" xmlUrl="https://b.example/rss"/>
</body></opml>"""


def test_opml_feeds_in_order_once() -> None:
    parsed = parse_opml(OPML, "reading.opml")

    assert parsed.feeds == ["https://a.example/feed", "https://b.example/rss"]
    assert parsed.links == []
    (rejection,) = parsed.rejected
    assert rejection.where == "reading.opml line 5"
    assert "(this one is javascript:)" in rejection.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (XML_BOMB.replace(b"ROOT", b"opml"), "declares entities; refusing it"),
        (
            b"<opml><body>\n<outline xmlUrl='x'></body></opml>",
            "not well-formed XML (line 2, column",
        ),
        (RSS, "not an OPML list (its root element is <rss>)"),
        (b"<!doctype html><html></html>", "HTML page"),
    ],
)
def test_unreadable_opml_is_one_rejection(body: bytes, reason: str) -> None:
    parsed = parse_opml(body, "o.opml")

    assert parsed.feeds == []
    assert [r.where for r in parsed.rejected] == ["o.opml"]
    assert reason in parsed.rejected[0].reason


# --- Formats and limits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "name", "content_type", "kind"),
    [
        (b"", "links.YAML", None, "yaml"),
        (b"", "links.yml", None, "yaml"),
        (b"", "links.csv", None, "csv"),
        (b"", "subscriptions.opml", None, "opml"),
        (b"", "https://example.com/feed.atom?x=1", None, "feed"),
        (OPML, "list.xml", None, "opml"),
        (RSS, "feed.xml", None, "feed"),
        (b"", "https://example.com/feed", "application/rss+xml; charset=utf-8", "feed"),
        (b"", "upload", "text/csv", "csv"),
        (RSS, "https://example.com/feed", "text/xml", "feed"),
        (ATOM, "paste", None, "feed"),
        (RSS1, "paste", None, "feed"),
        (OPML, "paste", None, "opml"),
        (b"links:\n  - https://example.com/\n", "paste", None, "yaml"),
        (b"Title,URL\nA,https://example.com/\n", "paste", None, "csv"),
    ],
)
def test_detect_format(body: bytes, name: str, content_type: str | None, kind: str) -> None:
    assert detect_format(body, name, content_type) == kind


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!DOCTYPE html><html></html>", "HTML page"),
        (b"<svg/>", "neither a feed nor an OPML list"),
        (b"just some words", "cannot tell what kind of document 'paste' this is"),
    ],
)
def test_detect_format_says_why_it_cannot_tell(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect_format(body, "paste")


def test_parse_document_dispatches_and_reports() -> None:
    assert parse_document(OPML, "https://x.example/list", content_type="text/x-opml").feeds
    assert parse_document(RSS, "upload", name="feed.rss").links
    assert parse_document(b"hmm", "paste").rejected[0].where == "paste"


@pytest.mark.parametrize(
    "parse", [parse_document, parse_yaml, parse_csv, parse_feed_links, parse_opml]
)
def test_a_21_mb_document_is_refused(parse: object) -> None:
    body = b"url\n" + b"x" * (21 * 1024 * 1024)
    assert len(body) > MAX_DOCUMENT_BYTES

    parsed: Parsed = parse(body, "huge.csv")  # type: ignore[operator]

    assert parsed.links == []
    assert parsed.rejected == [Rejection("huge.csv", "the document is 21.0 MB; the limit is 20 MB")]
