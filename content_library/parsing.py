"""Import documents (YAML, CSV, RSS/Atom feeds, OPML lists) read into candidate links.

Every parser takes the raw bytes and `where`, a name for the document ("links.csv", a feed's
address), and returns a `Parsed`: the links it could read, a `Rejection` for everything it could
not (each naming "links.csv line 7", "… entry 3" or "… item 2" and saying why, so a document
with a few bad entries still imports the rest) and, for OPML, the feeds listed. A document that
cannot be read at all comes back as one rejection naming just the document. Nothing here
raises for bad input.

Links are canonical (`content_library.canonical`); the same link twice in one document is kept
twice, for the importer to count. Hostile documents are refused before they cost anything: more
than 20 MB, YAML anchors and aliases (the YAML "billion laughs"), XML DTDs and entities (the XML
one), nesting deeper than any link list needs.

YAML is read with every plain scalar as text: `title: 1984`, `level: no` and `topics: [on]`
are the strings they look like, not a number and booleans (YAML 1.1 would say otherwise).
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit
from xml.parsers import expat

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from bot.core.sources import SourceError
from bot.sources.csv_import import records
from bot.sources.rss import FeedEntry, parse_feed, refuse_unsafe_xml
from content_library.candidates import LinkCandidate, Parsed, Rejection
from content_library.canonical import InvalidLink, canonical_url
from nudges.config import Stage

__all__ = [
    "FIELDS",
    "FORMATS",
    "MAX_DOCUMENT_BYTES",
    "MAX_LINKS",
    "detect_format",
    "parse_csv",
    "parse_document",
    "parse_feed_links",
    "parse_opml",
    "parse_yaml",
]

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
MAX_LINKS = 50_000
"""Links (rows, items, entries, feeds) read from one document; the rest are counted in one
rejection."""
MAX_TITLE = 300
MAX_SUMMARY = 1_000
MAX_FEED_SUMMARY = 500
"""Feed summaries are often whole articles; the library needs a teaser, not the text."""
MAX_EXPERIMENT = 500
MAX_TOPIC = 40
MAX_TOPICS = 10
MAX_YAML_DEPTH = 10
"""A link list needs four levels (document, list, link, topics); ten leaves room for mistakes
and stops a "[[[[…" document from exhausting the stack."""
FIELDS = ("url", "title", "summary", "topics", "level", "experiment")
FORMATS = ("yaml", "csv", "feed", "opml")

_STAGES = ", ".join(stage.value for stage in Stage)
_YAML_TOPICS = re.compile(r",")
# A CSV cell holding "a, b" has to be quoted, and people forget; ";" and "|" never need it.
_CSV_TOPICS = re.compile(r"[;|]")
_KEEP_FORMAT = frozenset("\u200c\u200d")
"""Zero-width (non-)joiners, the only format characters kept: emoji sequences and Persian or
Indic words need them. Bidi overrides and other invisible characters are removed."""

_EXTENSIONS = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".csv": "csv",
    ".opml": "opml",
    ".rss": "feed",
    ".atom": "feed",
}
_CONTENT_TYPES = {
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "text/x-yaml": "yaml",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/x-opml": "opml",
    "text/x-opml+xml": "opml",
    "application/opml+xml": "opml",
    "application/rss+xml": "feed",
    "application/atom+xml": "feed",
    "application/rdf+xml": "feed",
}
_XML_TYPES = frozenset({"text/xml", "application/xml"})
_XML_PROLOG = re.compile(
    r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)", re.S | re.I
)
_XML_ROOT = re.compile(r"\s*<([A-Za-z_][\w.:-]*)")
_HTML = re.compile(r"\s*<!DOCTYPE\s+html\b", re.I)
_SNIFF_BYTES = 64 * 1024


class _Refused(Exception):
    """The whole document cannot be read; the message says why."""


class _Rejected(Exception):
    """One link cannot be imported; the message says why."""


# --- Dispatch -------------------------------------------------------------------------------


def detect_format(body: bytes, name: str, content_type: str | None = None) -> str:
    """Which parser reads `body`: "yaml", "csv", "feed" or "opml".

    Decided by the file name's extension, then the content type, then the content itself
    (an XML root of <opml>, <rss>, <feed> or <rdf:RDF>; a YAML list or `links:` mapping; a CSV
    header with a url column). Raises `ValueError` with a message for a person otherwise.
    """
    extension = _extension(name)
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type in _CONTENT_TYPES:
        return _CONTENT_TYPES[media_type]
    head = _head_text(body)
    xml_kind = _xml_kind(head)
    if xml_kind:
        return xml_kind
    if extension == ".xml" or media_type in _XML_TYPES:
        # The feed parser names what it found instead, which is the better message.
        return "feed"
    return _text_kind(head, name)


def parse_document(
    body: bytes, where: str, *, name: str = "", content_type: str | None = None
) -> Parsed:
    """Read a document of any supported format (see `detect_format`) into a `Parsed`.

    `name` is the file name or address used to tell the format (`where` when empty).
    """
    if len(body) > MAX_DOCUMENT_BYTES:
        return _refused(where, _too_large(body))
    try:
        kind = detect_format(body, name or where, content_type)
    except ValueError as exc:
        return _refused(where, str(exc))
    return _PARSERS[kind](body, where)


def _extension(name: str) -> str:
    path = name
    if "://" in name:
        with contextlib.suppress(ValueError):
            path = urlsplit(name).path
    return PurePosixPath(path.replace("\\", "/")).suffix.lower()


def _head_text(body: bytes) -> str:
    """The start of the document as text, good enough to sniff its kind."""
    head = body[:_SNIFF_BYTES]
    encoding = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    return head.decode(encoding, "replace").removeprefix("\ufeff")


def _xml_kind(head: str) -> str | None:
    position = 0
    while (item := _XML_PROLOG.match(head, position)) and item.end() > position:
        position = item.end()
    if _HTML.match(head, position):
        raise ValueError("this is an HTML page, not a feed or a list of links")
    root = _XML_ROOT.match(head, position)
    if root is None:
        return None
    tag = root.group(1)
    local = tag.rpartition(":")[2]
    if tag == "opml":
        return "opml"
    if tag in ("rss", "feed") or local == "RDF":
        return "feed"
    if tag.lower() == "html":
        raise ValueError("this is an HTML page, not a feed or a list of links")
    raise ValueError(f"this XML document (root <{tag}>) is neither a feed nor an OPML list")


def _text_kind(head: str, name: str) -> str:
    for raw in head.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("---", "- ", "links:")) or line == "-":
            return "yaml"
        cells = re.split(r"[,;\t]", line.lower())
        if "url" in (cell.strip().strip('"') for cell in cells):
            return "csv"
        break
    what = f"document {name!r}" if name else "document"
    raise ValueError(
        f"cannot tell what kind of {what} this is: name it .yaml, .csv, .opml or .xml (RSS or Atom)"
    )


# --- YAML -----------------------------------------------------------------------------------


def parse_yaml(body: bytes, where: str) -> Parsed:
    """Links from a YAML document: a list of links, or a mapping whose `links:` is one.

    A link is a URL or a mapping with `url` (required), `title`, `summary`, `topics` (a list,
    or one text with commas), `level` (a stage of the ladder) and `experiment`. Anchors and
    aliases are refused outright: alias expansion is the YAML "billion laughs".
    """
    return _guarded(_read_yaml, body, where)


def _read_yaml(body: bytes, where: str) -> Parsed:
    data = _load_yaml(_decode(body))
    parsed = Parsed()
    items = _yaml_items(data)
    for number, item in enumerate(items[:MAX_LINKS], start=1):
        here = f"{where} item {number}"
        try:
            parsed.links.append(_yaml_link(item, here))
        except _Rejected as exc:
            parsed.rejected.append(Rejection(here, str(exc)))
    _note_unread(parsed, where, len(items) - MAX_LINKS, "items")
    return parsed


class _StrictComposer(Composer):
    """Builds the node tree, refusing anchors, aliases and deep nesting before they cost."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # peek_event comes from the parser this composer is mixed with.
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor):
            raise _Refused("the YAML uses anchors/aliases (&/*); refusing it")
        if not isinstance(event, CollectionStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _TextConstructor(SafeConstructor):
    """The safe constructor, refusing a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                if key_node.value in seen:
                    problem = f"the key {key_node.value!r} is there twice"
                    raise ConstructorError(None, None, problem, key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


class _TextResolver(Resolver):
    """Resolves plain scalars to text or null only: no YAML 1.1 booleans, numbers or dates."""


_TextResolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}


class _PureLoader(Reader, Scanner, Parser, _StrictComposer, _TextConstructor, _TextResolver):
    """The loader in pure Python, for a PyYAML built without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _StrictComposer.__init__(self)
        _TextConstructor.__init__(self)
        _TextResolver.__init__(self)


def _yaml_loader(fast: bool) -> type[Any]:
    """The loader on libyaml's parser (about four times faster), or the pure one."""
    if not fast:
        return _PureLoader
    from yaml._yaml import CParser

    # The composer comes before CParser so that its compose_node, not libyaml's, builds
    # the tree: libyaml would follow aliases before we could refuse them.
    class _FastLoader(_StrictComposer, CParser, _TextConstructor, _TextResolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _StrictComposer.__init__(self)
            _TextConstructor.__init__(self)
            _TextResolver.__init__(self)

    return _FastLoader


_YAML_LOADER = _yaml_loader(fast=yaml.__with_libyaml__)


def _load_yaml(text: str, loader_class: type[Any] = _YAML_LOADER) -> Any:
    loader = loader_class(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise _Refused(f"the YAML cannot be read ({where}{exc.problem or exc.context})") from None
    except yaml.YAMLError as exc:
        raise _Refused(f"the YAML cannot be read ({exc})") from None
    finally:
        loader.dispose()


def _yaml_items(data: Any) -> list[Any]:
    if data is None:
        raise _Refused("the YAML is empty: it needs a list of links")
    if isinstance(data, dict):
        unknown = [key for key in data if key != "links"]
        if unknown:
            raise _Refused(f"unknown key {unknown[0]!r} at the top; only 'links:' is expected")
        data = data.get("links")
        if data is None:
            return []
    if not isinstance(data, list):
        raise _Refused("the YAML must be a list of links, or a mapping with a 'links:' list")
    return data


def _yaml_link(item: Any, where: str) -> LinkCandidate:
    if isinstance(item, str):
        return _candidate(where, {"url": item})
    if not isinstance(item, dict):
        raise _Rejected(f"expected a link (a URL, or a mapping with url:), not {_kind(item)}")
    for key in item:
        if key not in FIELDS:
            raise _Rejected(f"unknown key {key!r} (the keys are {', '.join(FIELDS)})")
    return _candidate(where, item, topic_separators=_YAML_TOPICS)


# --- CSV ------------------------------------------------------------------------------------


def parse_csv(body: bytes, where: str) -> Parsed:
    """Links from a CSV file with a header row.

    Columns (any case; spaces and dashes count as underscores): `url` is required, `title`,
    `summary`, `topics`, `level` and `experiment` are optional, others are ignored (a sheet
    often carries notes). Topics in one cell are separated by ";" or "|" (a "," would need the
    cell quoted). Commas separate cells, or semicolons or tabs when the header has no comma
    (spreadsheets in many locales save that way). A UTF-8 byte order mark is fine.
    """
    return _guarded(_read_csv, body, where)


def _read_csv(body: bytes, where: str) -> Parsed:
    text = _decode(body, hint=" (in Excel: CSV UTF-8)")
    parsed = Parsed()
    records = _csv_records(text, _delimiter(text))
    _, header = next(records, (0, []))
    columns = _csv_columns(header)
    width = len(header)
    unread = 0
    try:
        for count, (line, row) in enumerate(records, start=1):
            if count > MAX_LINKS:
                unread += 1
                continue
            here = f"{where} line {line}"
            try:
                parsed.links.append(_csv_link(row, columns, width, here))
            except _Rejected as exc:
                parsed.rejected.append(Rejection(here, str(exc)))
    except _Refused as exc:
        # Rows before the unreadable spot are good; keep them and say where reading stopped.
        parsed.rejected.append(Rejection(where, str(exc)))
    _note_unread(parsed, where, unread, "rows")
    return parsed


def _delimiter(text: str) -> str:
    first = text.lstrip("\r\n").partition("\n")[0]
    if "," in first:
        return ","
    return ";" if ";" in first else "\t" if "\t" in first else ","


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The CSV's non-blank records; a line the reader cannot get past stops the document."""
    try:
        yield from records(text, delimiter)
    except ValueError as exc:
        raise _Refused(f"{exc}; nothing from that line on was read") from None


def _csv_columns(header: list[str]) -> dict[str, int]:
    if not header:
        raise _Refused("the CSV is empty: it needs a header row with a 'url' column")
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        if key in columns and key in FIELDS:
            raise _Refused(f"the header names the column {name.strip()!r} twice")
        columns.setdefault(key, index)
    if "url" not in columns:
        found = ", ".join(repr(name.strip()) for name in header)
        raise _Refused(f"the CSV needs a 'url' column in its first row; found {found}")
    return {key: index for key, index in columns.items() if key in FIELDS}


def _csv_link(row: list[str], columns: dict[str, int], width: int, where: str) -> LinkCandidate:
    if len(row) > width and any(cell.strip() for cell in row[width:]):
        # Cells the header does not name mean the row's cells are shifted: taking it would
        # file a title as a summary, or worse.
        raise _Rejected(f"{len(row)} cells but the header has {width} (an unquoted comma?)")
    values = {name: row[index] for name, index in columns.items() if index < len(row)}
    return _candidate(where, values, topic_separators=_CSV_TOPICS)


# --- Feeds ----------------------------------------------------------------------------------


def parse_feed_links(body: bytes, where: str) -> Parsed:
    """Links from an RSS 2.0, RSS 1.0 or Atom feed: one per entry, with its title and summary.

    Relative entry links are resolved against `where` when it is an address. HTML in
    summaries is reduced to its text and cut to about 500 characters.
    """
    return _guarded(_read_feed, body, where)


def _read_feed(body: bytes, where: str) -> Parsed:
    base = where if where.lower().startswith(("http://", "https://")) else ""
    try:
        entries = parse_feed(body, base)
    except SourceError as exc:
        raise _Refused(exc.reason) from None
    parsed = Parsed()
    # parse_feed leaves out entries with neither title nor summary; numbers count the rest.
    for number, entry in enumerate(entries[:MAX_LINKS], start=1):
        here = f"{where} entry {number}"
        try:
            if not entry.link:
                raise _Rejected("the entry has no link")
            values = {"url": entry.link, "title": entry.title, "summary": _html_text(entry)}
            parsed.links.append(_candidate(here, values, summary_limit=MAX_FEED_SUMMARY))
        except _Rejected as exc:
            parsed.rejected.append(Rejection(here, str(exc)))
    _note_unread(parsed, where, len(entries) - MAX_LINKS, "entries")
    return parsed


def _html_text(entry: FeedEntry) -> str | None:
    summary = entry.summary
    if not summary or ("<" not in summary and "&" not in summary):
        return summary
    reader = _TextOnly()
    # Only the start is kept anyway; parsing a whole article for it would be waste.
    reader.feed(summary[: MAX_FEED_SUMMARY * 20])
    reader.close()
    return "".join(reader.parts)


class _TextOnly(HTMLParser):
    """The text of an HTML fragment: tags dropped, entities decoded, scripts and styles out."""

    _BLOCKS = frozenset({"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6"})
    _HIDDEN = frozenset({"script", "style", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


# --- OPML -----------------------------------------------------------------------------------


def parse_opml(body: bytes, where: str) -> Parsed:
    """The feeds an OPML list names (`xmlUrl` of its outlines, nested or not) in `feeds`.

    Feeds are canonical and listed once, in document order; a bad `xmlUrl` is a rejection
    naming its line. DTDs and entity declarations are refused, as for feeds.
    """
    return _guarded(_read_opml, body, where)


def _read_opml(body: bytes, where: str) -> Parsed:
    try:
        refuse_unsafe_xml(body)
    except SourceError as exc:
        raise _Refused(exc.reason) from None
    reader = _OpmlReader(where)
    parser = expat.ParserCreate()
    reader.attach(parser)
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise _Refused(
            f"the OPML is not well-formed XML (line {exc.lineno}, column {exc.offset + 1})"
        ) from None
    if not reader.saw_root:
        raise _Refused("the document is empty")
    _note_unread(reader.parsed, where, reader.unread, "feeds")
    return reader.parsed


class _OpmlReader:
    """Collects the feeds of an OPML document while expat reads it."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.parsed = Parsed()
        self.saw_root = False
        self.unread = 0
        self._seen: set[str] = set()
        self._parser: Any = None

    def attach(self, parser: Any) -> None:
        self._parser = parser
        parser.StartElementHandler = self.start
        # Belt and braces: refuse_unsafe_xml already turned these away before parsing.
        parser.StartDoctypeDeclHandler = self._refuse_declaration
        parser.EntityDeclHandler = self._refuse_declaration

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        if not self.saw_root:
            self.saw_root = True
            if tag != "opml":
                local = tag.rpartition(":")[2]
                raise _Refused(f"the document is not an OPML list (its root element is <{local}>)")
        if tag != "outline":
            return
        url = next((v for k, v in attributes.items() if k.lower() == "xmlurl"), None)
        if url is not None:
            self._add(url.strip())

    def _add(self, url: str) -> None:
        if len(self._seen) >= MAX_LINKS:
            self.unread += 1
            return
        here = f"{self.where} line {self._parser.CurrentLineNumber}"
        if not url:
            self.parsed.rejected.append(Rejection(here, "the outline's xmlUrl is empty"))
            return
        try:
            feed = canonical_url(url)
        except InvalidLink as exc:
            self.parsed.rejected.append(Rejection(here, f"xmlUrl {_shown(url)}: {exc}"))
            return
        if feed not in self._seen:
            self._seen.add(feed)
            self.parsed.feeds.append(feed)

    def _refuse_declaration(self, *_: Any) -> None:
        raise _Refused("the document declares a DTD or entities; refusing it")


# --- Shared ---------------------------------------------------------------------------------


def _guarded(read: Callable[[bytes, str], Parsed], body: bytes, where: str) -> Parsed:
    """Run a reader, turning a refusal of the whole document into its one rejection."""
    if len(body) > MAX_DOCUMENT_BYTES:
        return _refused(where, _too_large(body))
    if not body.strip():
        return _refused(where, "the document is empty")
    try:
        return read(body, where)
    except _Refused as exc:
        return _refused(where, str(exc))


def _refused(where: str, reason: str) -> Parsed:
    return Parsed(rejected=[Rejection(where, reason)])


def _too_large(body: bytes) -> str:
    size = len(body) / 1024 / 1024
    return f"the document is {size:.1f} MB; the limit is {MAX_DOCUMENT_BYTES // 1024 // 1024} MB"


def _note_unread(parsed: Parsed, where: str, unread: int, what: str) -> None:
    if unread > 0:
        reason = (
            f"{unread:,} more {what} were not read: "
            f"one document may hold at most {MAX_LINKS:,} links"
        )
        parsed.rejected.append(Rejection(where, reason))


def _decode(body: bytes, hint: str = "") -> str:
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _Refused("the file is UTF-16; save it as UTF-8")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise _Refused(
            f"not valid UTF-8 at line {line} (byte {exc.start + 1:,}); save the file as UTF-8{hint}"
        ) from None


def _candidate(
    where: str,
    values: Mapping[str, Any],
    *,
    topic_separators: re.Pattern[str] = _YAML_TOPICS,
    summary_limit: int = MAX_SUMMARY,
) -> LinkCandidate:
    """A candidate from raw field values, or `_Rejected` saying what is wrong with them."""
    url = _text(values, "url")
    if not url:
        raise _Rejected("no url")
    try:
        canonical = canonical_url(url)
    except InvalidLink as exc:
        raise _Rejected(f"url {_shown(url)}: {exc}") from None
    summary = _text(values, "summary")
    return LinkCandidate(
        url=canonical,
        where=where,
        title=_cap(_line(_text(values, "title")), MAX_TITLE),
        summary=_cap(_block(summary), summary_limit),
        topics=_topics(values.get("topics"), topic_separators),
        level=_level(_text(values, "level")),
        experiment=_cap(_line(_text(values, "experiment")), MAX_EXPERIMENT),
    )


def _text(values: Mapping[str, Any], name: str) -> str | None:
    value = values.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _Rejected(f"{name} must be text, not {_kind(value)}")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return "a " + type(value).__name__


def _shown(url: str) -> str:
    """The link as a message shows it: quoted, cut short, invisible characters escaped."""
    short = url if len(url) <= 80 else url[:77] + "…"
    return repr(short)


def _level(value: str | None) -> Stage | None:
    if not value or not value.strip():
        return None
    try:
        return Stage(value.strip().lower())
    except ValueError:
        raise _Rejected(f"level {value.strip()!r} is not one of {_STAGES}") from None


def _topics(value: Any, separators: re.Pattern[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        raw = separators.split(value)
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        raw = value
    else:
        raise _Rejected("topics must be a list of words or one text separated by commas")
    topics = list(dict.fromkeys(t for t in (_line(item).lower() for item in raw) if t))
    for topic in topics:
        if len(topic) > MAX_TOPIC:
            raise _Rejected(f"the topic {topic[:20]!r}… is longer than {MAX_TOPIC} characters")
    if len(topics) > MAX_TOPICS:
        raise _Rejected(f"{len(topics)} topics; at most {MAX_TOPICS} are allowed")
    return tuple(topics)


def _line(text: str | None) -> str:
    """One line of text: controls and invisible characters out, whitespace runs one space."""
    if not text:
        return ""
    return " ".join(_visible(text).split())


def _block(text: str | None) -> str:
    """Text that may have paragraphs: each line as `_line`, at most one blank line between."""
    if not text:
        return ""
    lines: list[str] = []
    for raw in text.splitlines():
        line = _line(raw)
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip()


def _visible(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(char for char in text if char.isspace() or _shows(char))


def _shows(char: str) -> bool:
    category = unicodedata.category(char)
    if category == "Cf":
        return char in _KEEP_FORMAT
    return category not in ("Cc", "Cs")


def _cap(text: str, limit: int) -> str | None:
    if not text:
        return None
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


_PARSERS: dict[str, Callable[[bytes, str], Parsed]] = {
    "yaml": parse_yaml,
    "csv": parse_csv,
    "feed": parse_feed_links,
    "opml": parse_opml,
}
