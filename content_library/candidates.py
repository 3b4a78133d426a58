"""What importers produce before anything is stored: candidate links and rejections."""

from __future__ import annotations

from dataclasses import dataclass, field

from nudges.config import Stage


@dataclass(frozen=True, slots=True)
class LinkCandidate:
    """One link read from a file or feed, not yet checked against the library.

    `url` is canonical (see `content_library.canonical`); `where` says where it came from
    ("links.csv line 4", "https://example.org/feed.xml entry 3") for the import summary.
    """

    url: str
    where: str
    title: str | None = None
    summary: str | None = None
    topics: tuple[str, ...] = ()
    level: Stage | None = None
    experiment: str | None = None
    """A small challenge tied to the link ("try one reply on our page this week")."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Something an import could not take, and why, in words for the evangelist."""

    where: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "reason": self.reason}


@dataclass(slots=True)
class Parsed:
    """A document's links, what was rejected, and (for OPML) the feeds it lists."""

    links: list[LinkCandidate] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    feeds: list[str] = field(default_factory=list)
    """Feed URLs an OPML list names (canonical); the importer reads each of them."""
