"""Keeping a stranger's words in their place on the way in, and the model's on the way out.

OWASP LLM01 (prompt injection) has no reliable prevention, so the defence is architectural:

- in: public text is sanitised (`bot.questions.text.sanitise`: invisible and tag characters
  gone, mentions neutralised) and sent in its own message, fenced in a labelled tag inside which
  no angle bracket survives, so nothing in it can close the fence or open another;
- out: the answer must fit a strict schema (bot/llm/schemas.py), and its text is cleaned here:
  links the question did not contain are removed (a link or markdown image carrying data is
  how injected instructions exfiltrate it), images always are (a platform previewing one
  fetches it: a tracking pixel), mass mentions are removed, the disclosure line is put first
  if the model dropped it, and the length is capped.

Nothing the model says can act: the text is shown privately to one person, who posts it (or not)
as themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.questions.text import ELLIPSIS, sanitise

COMMENT_TAG = "public_comment"
AUTHOR_TAG = "comment_author"
DRAFT_LIMIT = 1500
"""Characters of a suggested reply, disclosure line included; comment boxes are short too."""
_SCAN_LIMIT = 8000

# SINGLE LEFT/RIGHT-POINTING ANGLE QUOTATION MARKs: they read like brackets, NFKC leaves them
# alone, and no tag can be written with them.
_ANGLE = str.maketrans({"<": "\u2039", ">": "\u203a"})

_URL_CHARS = r"[^\s<>\"'()\[\]{}]"
_URL = re.compile(
    rf"\b[a-z][a-z0-9+.-]{{1,15}}://{_URL_CHARS}+|\bwww\.{_URL_CHARS}+"
    rf"|\b(?:[a-z0-9-]+\.)+[a-z]{{2,24}}/{_URL_CHARS}*|\bdata:{_URL_CHARS}+",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?"
_IMAGE = re.compile(r"\.(?:png|jpe?g|gif|webp|svg|bmp|ico|tiff?|avif)(?:[?#]|$)", re.IGNORECASE)
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]\n]{0,500}\]\([^)\n]{0,2000}\)")
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]{0,500})\]\(\s*([^)\s]{0,2000})[^)\n]{0,200}\)")
_ANGLE_LINK = re.compile(r"<([a-z][a-z0-9+.-]{1,15}:[^<>|\s]{1,2000})(?:\|([^<>]{0,500}))?>", re.I)
_MASS_MENTION = re.compile(
    r"(?<!\w)[@\uff20](?:channel|here|everyone|group|all)(?!\w)", re.IGNORECASE
)
_SPACES = re.compile(r"[^\S\n]{2,}")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[^\S\n]+([.,;:!?])")
_EMPTY_LINES = re.compile(r"\n{3,}")


def fence(text: str, tag: str, limit: int) -> str:
    """Untrusted `text`, sanitised and wrapped in `<tag>…</tag>` that nothing inside can close."""
    clean = sanitise(text, limit).translate(_ANGLE)
    return f"<{tag}>\n{clean}\n</{tag}>"


def plain_line(text: str, limit: int = 300) -> str:
    """Text on one line, sanitised, with no angle bracket left to make a tag from."""
    return " ".join(sanitise(text, limit).split()).translate(_ANGLE)


def urls_in(*texts: str | None) -> frozenset[str]:
    """The URLs written in `texts`, as `clean_text` compares them."""
    found: set[str] = set()
    for text in texts:
        if text:
            found.update(_normal(m.group(0)) for m in _URL.finditer(sanitise(text, _SCAN_LIMIT)))
    return frozenset(found)


def clean_text(text: str, *, allowed_urls: Iterable[str] = (), limit: int = DRAFT_LIMIT) -> str:
    """Model output made safe to show: plain, no foreign links or images, no mass mentions.

    Links to a URL in `allowed_urls` (the ones the question itself contained) stay, as the bare
    URL; every other URL is removed, and images (markdown images, URLs of image files) always
    are.
    """
    allowed = frozenset(_normal(url) for url in allowed_urls)
    text = sanitise(text, _SCAN_LIMIT)
    text = _MARKDOWN_IMAGE.sub("", text)
    text = _ANGLE_LINK.sub(lambda m: _link(m.group(2) or "", m.group(1), allowed), text)
    text = _MARKDOWN_LINK.sub(lambda m: _link(m.group(1), m.group(2), allowed), text)
    text = _URL.sub(lambda m: _bare_url(m.group(0), allowed), text)
    text = _MASS_MENTION.sub("", text)
    return _cap(_tidy(text), limit)


def with_disclosure(text: str, disclosure: str, limit: int = DRAFT_LIMIT) -> str:
    """`text` starting with the disclosure line: kept if the model wrote it, else put first."""
    line = plain_line(disclosure, 500)
    if not text.startswith(line):
        text = f"{line}\n\n{text}" if text else line
    return _cap(text, limit)


def _normal(url: str) -> str:
    return url.rstrip(_TRAILING).lower()


def _allowed(url: str, allowed: frozenset[str]) -> bool:
    url = _normal(url)
    return url in allowed and not _IMAGE.search(url)


def _link(label: str, url: str, allowed: frozenset[str]) -> str:
    label = label.strip()
    if _allowed(url, allowed):
        return f"{label} {url}".strip() if label and _normal(label) != _normal(url) else url
    return label


def _bare_url(url: str, allowed: frozenset[str]) -> str:
    trailing = url[len(url.rstrip(_TRAILING)) :]
    return url if _allowed(url, allowed) else trailing


def _tidy(text: str) -> str:
    text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    lines = [line.strip() for line in text.split("\n")]
    return _EMPTY_LINES.sub("\n\n", "\n".join(lines)).strip()


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    cut = max(head.rfind(" "), head.rfind("\n"))
    if cut > limit // 2:
        head = head[:cut]
    return head.rstrip(" \n,;:-") + ELLIPSIS
