"""One spelling per web page, so the library can tell that two links are the same.

`canonical_url` accepts only http and https links with a host and no credentials, and
rewrites them the way RFC 3986 section 6 allows without changing what they point at: the
scheme and host in lower case (non-ASCII hosts IDNA-encoded), no default port, dot segments
resolved, percent-encoding normalised, the fragment dropped. On top of that it drops the
query parameters that only track a click (see `TRACKING_PARAMETERS`) and sorts the rest, so
the same page shared from a newsletter and from a browser is one link.

The result is deterministic and idempotent: `canonical_url(canonical_url(x)) ==
canonical_url(x)`. It says nothing about where a link points: a link to a private address
is still a valid link here, and whoever fetches it has to refuse it.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote

import idna

__all__ = [
    "MAX_URL_LENGTH",
    "SITE_TRACKING_PARAMETERS",
    "TRACKING_PARAMETERS",
    "TRACKING_PREFIXES",
    "InvalidLink",
    "canonical_url",
]

MAX_URL_LENGTH = 2_000
"""Longer links are refused: browsers and chat apps truncate or reject them, and a link this
long is almost always a pasted search result or a session state, not a page to learn from."""

DEFAULT_PORTS = {"http": 80, "https": 443}

TRACKING_PREFIXES = ("utm_",)
"""Google Analytics campaign parameters (utm_source, utm_medium, …): compared case-blind,
because tools write UTM_Source as often as utm_source."""

TRACKING_PARAMETERS = frozenset(
    {
        # Ad click ids: Google (gclid, gclsrc, dclid, gbraid, wbraid, gad_source), Microsoft,
        # Meta, Yandex, TikTok, X/Twitter and LinkedIn ads.
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "gad_source",
        "msclkid",
        "fbclid",
        "igshid",
        "yclid",
        "_openstat",
        "ttclid",
        "twclid",
        "li_fat_id",
        # Newsletter and marketing-automation tools: Mailchimp, HubSpot, Marketo, Vero,
        # Omeda (oly_*), Klaviyo and Drip.
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "__hstc",
        "__hssc",
        "__hsfp",
        "mkt_tok",
        "vero_id",
        "vero_conv",
        "oly_anon_id",
        "oly_enc_id",
        "_kx",
        "__s",
    }
)
"""Parameters dropped on every site. Only names that no site uses for content are listed:
`ref`, `source` or `s` look like tracking but select content on many sites (a Git ref, a
search), so they stay unless a site below is known to use them for tracking only."""

SITE_TRACKING_PARAMETERS: dict[str, frozenset[str]] = {
    # `si` is the share id in YouTube and Spotify share links and `feature` says which button
    # made a YouTube link; `t` is NOT listed for YouTube, where it is the start time.
    "youtube.com": frozenset({"si", "feature"}),
    "youtu.be": frozenset({"si", "feature"}),
    "open.spotify.com": frozenset({"si"}),
    "instagram.com": frozenset({"igsh"}),
    # X/Twitter share links carry `s` (the client) and `t` (a share token).
    "twitter.com": frozenset({"s", "t", "ref_src", "ref_url"}),
    "x.com": frozenset({"s", "t", "ref_src", "ref_url"}),
    "linkedin.com": frozenset({"trk", "trackingid", "lipi"}),
}
"""Parameters dropped on one site (and its subdomains) only, because elsewhere the same
names can select content."""

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_PORT = re.compile(r"[0-9]{1,5}")
_HOST_NAME = re.compile(r"[a-z0-9_\-]{1,63}(?:\.[a-z0-9_\-]{1,63})*")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# What RFC 3986 lets stand unencoded in a path (pchar and "/") and in a query (also "?");
# everything else, and a "%" that does not start an escape, gets percent-encoded.
_PATH_FIX = re.compile(r"%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-._~!$&'()*+,;=:@/]")
_QUERY_FIX = re.compile(r"%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-._~!$&'()*+,;=:@/?]")


class InvalidLink(ValueError):
    """A link the library will not take; the message is a short reason for a person."""


def canonical_url(url: str) -> str:
    """The canonical spelling of an http or https link (see the module docstring).

    Raises `InvalidLink` for anything else: another scheme, no host, credentials, a bad port
    or host name, control characters or whitespace inside, more than 2,000 characters.
    """
    text = url.strip()
    _check_characters(text)
    scheme, rest = _split_scheme(text)
    # Browsers read "\" as "/" before the query in http(s) links; doing the same keeps
    # "https:\\example.com\a" from meaning one thing to us and another to them.
    head, mark, tail = _partition_any(rest, "?#")
    rest = head.replace("\\", "/") + mark + tail
    if not rest.startswith("//"):
        raise InvalidLink("no host (an http link starts with http://)")
    authority, path, query = _split_rest(rest[2:])
    host, port = _split_authority(authority)
    host = _host(host)
    canonical = f"{scheme}://{host}{_port(port, scheme)}{_path(path)}{_query(query, host=host)}"
    if len(canonical) > MAX_URL_LENGTH:
        raise InvalidLink(f"longer than {MAX_URL_LENGTH:,} characters once encoded")
    return canonical


def _check_characters(text: str) -> None:
    if not text:
        raise InvalidLink("empty")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidLink(f"longer than {MAX_URL_LENGTH:,} characters")
    if text.isprintable():
        return
    # isprintable is false for controls, format characters (zero-width, bidi overrides) and
    # every separator but the ASCII space, which is the one we encode instead.
    bad = next(char for char in text if not char.isprintable())
    what = "whitespace" if bad.isspace() else "a control or invisible character"
    raise InvalidLink(f"has {what} in it (U+{ord(bad):04X})")


def _split_scheme(text: str) -> tuple[str, str]:
    match = _SCHEME.match(text)
    # "example.com:8080/x" matches the scheme grammar; a dot says it is a host, not a scheme.
    if match is None or "." in match.group(1):
        raise InvalidLink("not a full link: it must start with http:// or https://")
    scheme = match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidLink(f"only http and https links are allowed (this one is {scheme}:)")
    return scheme, text[match.end() :]


def _partition_any(text: str, marks: str) -> tuple[str, str, str]:
    """Split at the first of `marks` (head, mark, tail); no mark: (text, "", "")."""
    cut = min((i for i in (text.find(mark) for mark in marks) if i >= 0), default=-1)
    if cut < 0:
        return text, "", ""
    return text[:cut], text[cut], text[cut + 1 :]


def _split_rest(rest: str) -> tuple[str, str, str | None]:
    """Authority, path and query (None when there is no "?"); the fragment is dropped."""
    rest = rest.partition("#")[0]
    before_query, has_query, query = rest.partition("?")
    slash = before_query.find("/")
    if slash < 0:
        return before_query, "", query if has_query else None
    return before_query[:slash], before_query[slash:], query if has_query else None


def _split_authority(authority: str) -> tuple[str, str]:
    if "@" in authority:
        raise InvalidLink("has a user name or password in it")
    if authority.startswith("["):
        literal, bracket, port = authority.partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise InvalidLink("not a valid host (a broken [IPv6] address)")
        return literal + bracket, port[1:]
    host, _, port = authority.partition(":")
    if ":" in port:
        raise InvalidLink("not a valid port")
    return host, port


def _host(host: str) -> str:
    if not host:
        raise InvalidLink("no host")
    if host.startswith("["):
        return _ipv6(host[1:-1])
    try:
        # Hosts may be percent-encoded (RFC 3986 section 3.2.2); compare them decoded.
        host = unquote(host, errors="strict")
    except UnicodeDecodeError:
        raise InvalidLink("not a valid host name") from None
    if not host.isascii():
        host = _idna(host)
    host = host.lower()
    # "example.com." is the fully qualified spelling of the same site.
    host = host[:-1] if host.endswith(".") and len(host) > 1 else host
    if not _HOST_NAME.fullmatch(host) or len(host) > 253:
        raise InvalidLink("not a valid host name")
    if "xn--" in host:
        _check_punycode(host)
    if host.rpartition(".")[2].isdigit():
        # A host ending in a number is an IPv4 address to a browser (WHATWG URL), never a name.
        return _ipv4(host)
    return host


def _idna(host: str) -> str:
    try:
        # UTS 46 mapping first (case, full-width dots…), then IDNA 2008, as browsers do.
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise InvalidLink("not a valid international domain name") from None


def _check_punycode(host: str) -> None:
    """An ASCII host with "xn--" labels must decode, or it names no domain at all."""
    try:
        for label in host.split("."):
            if label.startswith("xn--"):
                idna.decode(label)
    except (idna.IDNAError, UnicodeError):
        raise InvalidLink("not a valid international domain name") from None


def _ipv4(host: str) -> str:
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        raise InvalidLink("not a valid IPv4 address") from None


def _ipv6(literal: str) -> str:
    try:
        address = ipaddress.IPv6Address(literal)
    except ValueError:
        raise InvalidLink("not a valid IPv6 address") from None
    if address.scope_id:
        raise InvalidLink("not a valid IPv6 address (it has a zone id)")
    return f"[{address.compressed}]"


def _port(port: str, scheme: str) -> str:
    if not port:
        # "example.com:" is the default port (RFC 3986 section 3.2.3).
        return ""
    number = int(port) if _PORT.fullmatch(port) else 0
    if not 0 < number < 65_536:
        raise InvalidLink("not a valid port")
    return "" if number == DEFAULT_PORTS[scheme] else f":{number}"


def _path(path: str) -> str:
    path = _PATH_FIX.sub(_fix_escape, path)
    return _remove_dot_segments(path) if path else "/"


def _fix_escape(match: re.Match[str]) -> str:
    text = match.group()
    if len(text) == 3:
        char = chr(int(text[1:], 16))
        # Unreserved characters mean the same encoded or not (RFC 3986 section 2.3); any
        # other escape may be a delimiter in disguise, so it stays, in upper case.
        return char if char in _UNRESERVED else text.upper()
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for a path that starts with "/"."""
    segments = path.split("/")[1:]
    if "." not in segments and ".." not in segments:
        return path
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):
        # "/a/b/.." names the directory "/a/", trailing slash included.
        kept.append("")
    return "/" + "/".join(kept)


def _query(query: str | None, *, host: str) -> str:
    if not query:
        return ""
    site = _site_parameters(host)
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        part = _QUERY_FIX.sub(_fix_escape, part)
        key = part.partition("=")[0]
        if not _is_tracking(key.lower(), site):
            pairs.append((key, part))
    # Stable sort: repeated keys keep their order, which can matter (a=1&a=2 is a list).
    pairs.sort(key=lambda pair: pair[0])
    return "?" + "&".join(part for _, part in pairs) if pairs else ""


def _site_parameters(host: str) -> frozenset[str]:
    for domain, names in SITE_TRACKING_PARAMETERS.items():
        if host == domain or host.endswith("." + domain):
            return names
    return frozenset()


def _is_tracking(key: str, site: frozenset[str]) -> bool:
    return key.startswith(TRACKING_PREFIXES) or key in TRACKING_PARAMETERS or key in site
