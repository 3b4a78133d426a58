#!/usr/bin/env python3
"""Build the Microsoft Teams app package for Evangelist (standard library only).

    python teams/package.py --app-id GUID [--bot-id GUID] [--domain HOST]
                            [--app-version X.Y.Z] [--out evangelist-teams.zip]

The package is a zip holding ``manifest.json``, ``color.png`` and ``outline.png`` at its root,
which is what Teams accepts under "Upload a custom app" and what the Teams admin centre and the
Developer Portal import.

``teams/manifest.json`` is kept schema-valid in the repository, so its identifiers are the
all-zero GUID ``00000000-0000-0000-0000-000000000000`` and its domain is
``evangelist.example.org``. This script substitutes them by position in the JSON, not by text:

* ``id`` (the Teams app's own id)                 <- ``--app-id``
* ``bots[].botId`` (and a zero ``composeExtensions[].botId``) <- ``--bot-id``: the Microsoft App
  ID of the Azure Bot, the value the service reads from ``TEAMS_APP_ID``. Defaults to
  ``--app-id``: using one GUID for both is allowed and the simplest choice.
* ``validDomains``: the placeholder is replaced by ``--domain`` (the public host name of
  ``evangelist serve``, without scheme or path), or dropped when no domain is given.
* ``version`` <- ``--app-version`` when given. Teams only picks up an updated package whose
  version is higher than the one installed.

It then checks the rules Teams enforces most often (GUID format, name and description lengths,
accent colour, icon files present at the package root with the right pixel sizes, and an outline
icon with an alpha channel) and writes the zip. Bad input exits with status 2 and a message that
names the option or manifest field; an I/O failure while writing exits with status 1.

The developer URLs in the manifest are example.org placeholders: edit teams/manifest.json before
publishing outside your own tenant (a warning is printed while they remain).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PLACEHOLDER_GUID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_DOMAIN = "evangelist.example.org"
DEFAULT_OUT = "evangelist-teams.zip"

GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# A host name, optionally with one leading wildcard label as Teams allows ("*.example.org").
HOST_RE = re.compile(
    r"^(\*\.)?(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
    r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+$"
)
VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")

# (path in the manifest, maximum length) for the text fields Teams limits.
TEXT_LIMITS = (
    (("name", "short"), 30),
    (("name", "full"), 100),
    (("description", "short"), 80),
    (("description", "full"), 4000),
    (("developer", "name"), 32),
)
ICON_SIZES = {"color": (192, 192), "outline": (32, 32)}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # fixed, so the same input gives the same zip


class PackagingError(Exception):
    """Bad input: reported with exit status 2."""


def check_guid(value: str, option: str) -> str:
    value = value.strip()
    if not GUID_RE.match(value):
        raise PackagingError(
            f"{option} {value!r} is not a GUID; expected 8-4-4-4-12 hexadecimal digits "
            "such as 123e4567-e89b-12d3-a456-426614174000"
        )
    if value == PLACEHOLDER_GUID:
        raise PackagingError(f"{option} is the all-zero placeholder GUID; give the real one")
    return value.lower()


def check_domain(value: str) -> str:
    value = value.strip().lower()
    if "://" in value or "/" in value or ":" in value:
        raise PackagingError(
            f"--domain {value!r} must be a bare host name such as bot.example.com "
            "(no scheme, port or path)"
        )
    if not HOST_RE.match(value):
        raise PackagingError(f"--domain {value!r} is not a valid host name")
    return value


def png_header(data: bytes, name: str) -> tuple[int, int, int, bool]:
    """Return (width, height, colour type, has a tRNS chunk) from a PNG's chunks."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise PackagingError(f"{name} is not a PNG file")
    width, height, _depth, colour_type = struct.unpack(">IIBB", data[16:26])
    has_trns = False
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"tRNS":
            has_trns = True
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return width, height, colour_type, has_trns


def _field(manifest: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = manifest
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _replace_zero_bot_ids(node: Any, bot_id: str) -> int:
    """Set every ``botId`` that is still the placeholder; return how many were set."""
    count = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "botId" and value == PLACEHOLDER_GUID:
                node[key] = bot_id
                count += 1
            else:
                count += _replace_zero_bot_ids(value, bot_id)
    elif isinstance(node, list):
        for item in node:
            count += _replace_zero_bot_ids(item, bot_id)
    return count


def build_manifest(
    template: dict[str, Any],
    app_id: str,
    bot_id: str,
    domain: str | None,
    app_version: str | None,
) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(json.dumps(template))  # a deep copy
    manifest["id"] = app_id
    bots = manifest.get("bots")
    if not isinstance(bots, list) or not bots or not all(isinstance(bot, dict) for bot in bots):
        raise PackagingError("manifest.json: bots must be a list with the bot in it")
    for bot in bots:
        bot["botId"] = bot_id
    # A later message extension ("Send to the question desk") points at the same bot.
    _replace_zero_bot_ids(manifest.get("composeExtensions", []), bot_id)
    domains = [d for d in manifest.get("validDomains", []) if d != PLACEHOLDER_DOMAIN]
    if domain and domain not in domains:
        domains.append(domain)
    manifest["validDomains"] = domains
    if app_version is not None:
        manifest["version"] = app_version
    return manifest


def validate(manifest: dict[str, Any], source: Path) -> tuple[dict[str, bytes], list[str]]:
    """Check the finished manifest; return the icon files to pack and any warnings."""
    problems: list[str] = []
    warnings: list[str] = []
    for key in (
        "manifestVersion",
        "version",
        "id",
        "developer",
        "name",
        "description",
        "icons",
        "accentColor",
    ):
        if key not in manifest:
            problems.append(f"manifest.json: required field {key!r} is missing")
    if not GUID_RE.match(str(manifest.get("id", ""))):
        problems.append(f"manifest.json: id {manifest.get('id')!r} is not a GUID")
    if not VERSION_RE.match(str(manifest.get("version", ""))):
        problems.append(f"manifest.json: version {manifest.get('version')!r} must look like 1.2.3")
    for path, limit in TEXT_LIMITS:
        value = _field(manifest, path)
        name = ".".join(path)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"manifest.json: {name} must be a non-empty string")
        elif len(value) > limit:
            problems.append(
                f"manifest.json: {name} is {len(value)} characters; the limit is {limit}"
            )
    if not COLOR_RE.match(str(manifest.get("accentColor", ""))):
        problems.append(
            f"manifest.json: accentColor {manifest.get('accentColor')!r} must be #RRGGBB"
        )
    for bot in manifest.get("bots", []):
        if not GUID_RE.match(str(bot.get("botId", ""))) or bot.get("botId") == PLACEHOLDER_GUID:
            problems.append(f"manifest.json: bots[].botId {bot.get('botId')!r} is not a real GUID")
    for url_key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        url = str(_field(manifest, ("developer", url_key)) or "")
        if not url.startswith("https://"):
            problems.append(f"manifest.json: developer.{url_key} must be an https:// URL")
        elif "example.org" in url:
            warnings.append(f"developer.{url_key} is still the placeholder {url}")

    icons: dict[str, bytes] = {}
    if _field(manifest, ("icons", "color")) == _field(manifest, ("icons", "outline")):
        problems.append("manifest.json: icons.color and icons.outline must be different files")
    for kind, (width, height) in ICON_SIZES.items():
        name = _field(manifest, ("icons", kind))
        if not isinstance(name, str) or not name:
            problems.append(f"manifest.json: icons.{kind} is missing")
            continue
        if "/" in name or "\\" in name or name in ("manifest.json",):
            problems.append(
                f"manifest.json: icons.{kind} {name!r} must be a file name at the package root"
            )
            continue
        icon_path = source / name
        if not icon_path.is_file():
            problems.append(
                f"icons.{kind}: {icon_path} does not exist (run python teams/make_icons.py)"
            )
            continue
        data = icon_path.read_bytes()
        try:
            got_w, got_h, colour_type, has_trns = png_header(data, name)
        except PackagingError as exc:
            problems.append(str(exc))
            continue
        if (got_w, got_h) != (width, height):
            problems.append(f"{name} is {got_w}x{got_h} pixels; Teams needs {width}x{height}")
        if kind == "outline" and colour_type not in (4, 6) and not has_trns:
            problems.append(
                f"{name} has no transparency; the outline icon must be white on transparent"
            )
        icons[name] = data
    if problems:
        raise PackagingError("\n  ".join(["the package would be invalid:", *problems]))
    return icons, warnings


def write_zip(out: Path, manifest: dict[str, Any], icons: dict[str, bytes]) -> None:
    """Write the zip next to its destination, then move it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    entries = {
        "manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    }
    entries.update(icons)
    fd, temp_name = tempfile.mkstemp(prefix=".teams-package-", suffix=".zip", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
            for name, data in entries.items():
                info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        os.replace(temp_name, out)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python teams/package.py",
        description="Build the Teams app package (manifest.json + icons) for Evangelist.",
    )
    parser.add_argument("--app-id", required=True, help="the Teams app id (a GUID)")
    parser.add_argument(
        "--bot-id",
        help="the Azure Bot's Microsoft App ID, as in TEAMS_APP_ID (default: --app-id)",
    )
    parser.add_argument(
        "--domain", help="public host name of the bot endpoint, e.g. bot.example.com"
    )
    parser.add_argument("--app-version", help="package version X.Y.Z (default: the manifest's)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"zip to write (default: {DEFAULT_OUT})")
    parser.add_argument(
        "--source",
        type=Path,
        default=HERE,
        help="directory holding manifest.json and the icons (default: this script's directory)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        app_id = check_guid(args.app_id, "--app-id")
        bot_id = check_guid(args.bot_id, "--bot-id") if args.bot_id is not None else app_id
        domain = check_domain(args.domain) if args.domain else None
        if args.app_version is not None and not VERSION_RE.match(args.app_version):
            raise PackagingError(f"--app-version {args.app_version!r} must look like 1.2.3")
        manifest_path = args.source / "manifest.json"
        try:
            template = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PackagingError(f"{manifest_path} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PackagingError(f"{manifest_path} cannot be read as JSON: {exc}") from None
        if not isinstance(template, dict):
            raise PackagingError(f"{manifest_path} must hold a JSON object")
        manifest = build_manifest(template, app_id, bot_id, domain, args.app_version)
        icons, warnings = validate(manifest, args.source)
    except PackagingError as exc:
        print(f"package.py: error: {exc}", file=sys.stderr)
        return 2

    out = Path(args.out)
    try:
        write_zip(out, manifest, icons)
    except OSError as exc:
        print(f"package.py: error: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"package.py: warning: {warning}", file=sys.stderr)
    if domain is None:
        print("package.py: note: no --domain given, so validDomains is empty", file=sys.stderr)
    print(
        f"wrote {out} (app id {app_id}, bot id {bot_id}, version {manifest['version']}); "
        "upload it in Teams under Apps > Manage your apps > Upload an app"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
