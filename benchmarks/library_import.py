"""Library import benchmark: a 10,000-link file through `Importer` into a fresh database.

    .venv/bin/python benchmarks/library_import.py [--links 10000] [--format csv|yaml]
        [--postgres URL] [--seed 1] [--json]

Writes a seeded CSV (or YAML) file of `--links` rows to a temporary directory: about 5 % of the
rows repeat an earlier link spelled differently (tracking parameters, a fragment, capitals, the
default port), about 1 % are bad (a javascript: or ftp: link, no URL, an unknown level, eleven
topics). Then, on a freshly migrated SQLite database (and on PostgreSQL with `--postgres`, where
a scratch database `evangelist_bench_import` is created on that server and dropped after), it
imports the file with `content_library.importer.Importer` exactly as `evangelist library import`
does, timing the reading and parsing apart from the storing, and imports it a second time (all
duplicates). The outcome is checked against what the generator put in the file. The report (or
`--json`) goes to stdout, progress to stderr; the exit status is 0 when it could measure and the
counts were the expected ones. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bot.core.clock import SystemClock  # noqa: E402
from bot.storage.database import Database  # noqa: E402
from bot.storage.migrate import upgrade_async  # noqa: E402
from content_library.importer import Importer, ImportReport  # noqa: E402

SCRATCH_DATABASE = "evangelist_bench_import"
DUPLICATE_SHARE = 0.05
BAD_SHARE = 0.01
LEVELS = ["watch", "react", "share", "comment", "create", ""]
TOPICS = ["video", "writing", "community", "events", "research", "campus", "alumni", "sport"]
HOSTS = ["example.com", "blog.example.org", "news.example.net", "learn.example.edu"]
# Each bad row is one of these (url, level, topics): a reason the importer must give.
BAD_ROWS = [
    ("javascript:alert(document.cookie)", "watch", "video"),
    ("ftp://files.example.com/slides.pdf", "watch", "video"),
    ("", "share", "video"),
    ("https://example.com/level", "expert", "video"),
    ("https://example.com/topics", "watch", ";".join(f"t{n}" for n in range(11))),
]
# How a repeated link is spelled differently; each one canonicalises to the original.
RESPELLINGS: list[Callable[[str], str]] = [
    lambda url: _with_query(url, "utm_source=newsletter&utm_medium=email"),
    lambda url: url + "#comments",
    lambda url: _with_query(url, "fbclid=IwAR0bench"),
    lambda url: _upper_host(url),
    lambda url: _default_port(url),
]


def progress(message: str) -> None:
    print(f"[library_import {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the file --------------------------------------------------------------------------------


@dataclass
class Generated:
    path: Path
    rows: int
    unique: int
    duplicates: int
    bad: int
    size_bytes: int


@dataclass(frozen=True)
class Row:
    url: str
    title: str
    summary: str
    topics: list[str]
    level: str


def _with_query(url: str, extra: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{extra}"


def _upper_host(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.upper()))


def _default_port(url: str) -> str:
    parts = urlsplit(url)
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def build_rows(count: int, seed: int) -> tuple[list[Row], int, int]:
    """`count` rows in a seeded order; also how many are repeats and how many are bad."""
    rng = random.Random(seed)
    rows: list[Row] = []
    originals: list[Row] = []
    duplicates = bad = 0
    for n in range(count):
        pick = rng.random()
        if pick < BAD_SHARE:
            url, level, topics = BAD_ROWS[bad % len(BAD_ROWS)]
            rows.append(Row(url, f"Bad row {n}", "", _split(topics), level))
            bad += 1
        elif pick < BAD_SHARE + DUPLICATE_SHARE and originals:
            original = rng.choice(originals)
            respell = RESPELLINGS[duplicates % len(RESPELLINGS)]
            rows.append(Row(respell(original.url), original.title, "", original.topics, ""))
            duplicates += 1
        else:
            row = _fresh_row(n, rng)
            originals.append(row)
            rows.append(row)
    return rows, duplicates, bad


def _fresh_row(n: int, rng: random.Random) -> Row:
    host = HOSTS[n % len(HOSTS)]
    query = f"?page={n % 7}&lang=en" if n % 10 == 0 else ""
    return Row(
        url=f"https://{host}/posts/{n:06d}/how-to-show-up-online-{n}{query}",
        title=f"How to show up online, part {n}",
        summary=f"Practical advice number {n}: one small step, every week, for the whole team.",
        topics=rng.sample(TOPICS, rng.randint(0, 3)),
        level=rng.choice(LEVELS),
    )


def _split(topics: str) -> list[str]:
    return [topic for topic in topics.split(";") if topic]


def write_file(directory: Path, rows: list[Row], fmt: str) -> Path:
    path = directory / f"links.{fmt}"
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["url", "title", "summary", "topics", "level"])
            for row in rows:
                writer.writerow([row.url, row.title, row.summary, ";".join(row.topics), row.level])
    else:
        # JSON is YAML: flow style, every text quoted, so no value is read as anything else.
        lines = ["links:"]
        for row in rows:
            item = {"url": row.url, "title": row.title, "topics": row.topics}
            item.update({"summary": row.summary} if row.summary else {})
            item.update({"level": row.level} if row.level else {})
            lines.append(f"  - {json.dumps(item, ensure_ascii=False)}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def generate(directory: Path, count: int, fmt: str, seed: int) -> Generated:
    rows, duplicates, bad = build_rows(count, seed)
    path = write_file(directory, rows, fmt)
    unique = count - duplicates - bad
    return Generated(path, count, unique, duplicates, bad, path.stat().st_size)


# -- the import ------------------------------------------------------------------------------


class TimedImporter(Importer):
    """The real importer, with the time spent reading and parsing told apart from storing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parse_seconds = 0.0
        self.store_seconds = 0.0

    async def _read(self, target: str, report: ImportReport) -> Any:
        began = time.perf_counter()
        try:
            return await super()._read(target, report)
        finally:
            self.parse_seconds += time.perf_counter() - began

    async def _store(self, *args: Any, **kwargs: Any) -> None:
        began = time.perf_counter()
        try:
            await super()._store(*args, **kwargs)
        finally:
            self.store_seconds += time.perf_counter() - began


for _method in ("_read", "_store"):
    # The timing wraps these steps; if the importer is reorganised, say so instead of printing 0.
    if not callable(getattr(Importer, _method, None)):
        raise SystemExit(f"Importer.{_method} is gone: update TimedImporter in this benchmark")


@dataclass
class Run:
    backend: str
    parse_seconds: float = 0.0
    store_seconds: float = 0.0
    total_seconds: float = 0.0
    links_per_second: float = 0.0
    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    peak_rss_mib: float = 0.0
    again_seconds: float = 0.0
    again_added: int = 0
    again_duplicates: int = 0
    again_rejected: int = 0
    as_expected: bool = False


async def import_once(database_url: str, path: Path) -> tuple[ImportReport, TimedImporter, float]:
    db = Database(database_url)
    try:
        async with aiohttp.ClientSession() as http:
            importer = TimedImporter(db, SystemClock(), http)
            began = time.perf_counter()
            report = await importer.run(str(path), added_by="bench")
            return report, importer, time.perf_counter() - began
    finally:
        await db.close()


async def measure(backend: str, database_url: str, generated: Generated) -> Run:
    run = Run(backend)
    await upgrade_async(database_url)
    progress(f"{backend}: importing {generated.rows:,} rows")
    report, importer, total = await import_once(database_url, generated.path)
    run.parse_seconds, run.store_seconds = importer.parse_seconds, importer.store_seconds
    run.total_seconds = total
    run.links_per_second = generated.rows / total if total else 0.0
    run.added, run.duplicates, run.rejected = report.added, report.duplicates, len(report.rejected)
    run.peak_rss_mib = peak_rss_mib()
    progress(f"{backend}: importing the same file again")
    again, _, again_total = await import_once(database_url, generated.path)
    run.again_seconds = again_total
    run.again_added, run.again_duplicates = again.added, again.duplicates
    run.again_rejected = len(again.rejected)
    run.as_expected = (run.added, run.duplicates, run.rejected) == (
        generated.unique,
        generated.duplicates,
        generated.bad,
    ) and (run.again_added, run.again_duplicates, run.again_rejected) == (
        0,
        generated.unique + generated.duplicates,
        generated.bad,
    )
    return run


# -- databases -------------------------------------------------------------------------------


async def scratch_postgres(server_url: str, *, create: bool) -> str:
    """Create (or drop) the scratch database on the server `server_url` points at."""
    import asyncpg

    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)')
        if create:
            await connection.execute(f'CREATE DATABASE "{SCRATCH_DATABASE}"')
    finally:
        await connection.close()
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{SCRATCH_DATABASE}"))


async def run_all(args: argparse.Namespace, work: Path) -> tuple[Generated, list[Run]]:
    progress(f"writing {args.links:,} rows of {args.format.upper()}")
    generated = generate(work, args.links, args.format, args.seed)
    runs = [await measure("sqlite", f"sqlite:///{work / 'library.db'}", generated)]
    if args.postgres:
        url = await scratch_postgres(args.postgres, create=True)
        try:
            runs.append(await measure("postgresql", url, generated))
        finally:
            await scratch_postgres(args.postgres, create=False)
    return generated, runs


# -- report ----------------------------------------------------------------------------------


def report(generated: Generated, runs: list[Run], fmt: str) -> str:
    lines = [
        f"Library import: {generated.rows:,} rows of {fmt.upper()} "
        f"({generated.size_bytes / 1024 / 1024:.1f} MB): {generated.unique:,} links, "
        f"{generated.duplicates:,} repeated differently spelled, {generated.bad:,} bad rows",
        "",
        f"{'backend':<10} {'parse s':>7} {'store s':>7} {'total s':>7} {'links/s':>8} "
        f"{'added':>6} {'dups':>5} {'rejected':>8} {'peak RSS MiB':>12} {'again s':>7} "
        f"{'again dups':>10}  counts",
    ]
    for run in runs:
        lines.append(
            f"{run.backend:<10} {run.parse_seconds:>7.2f} {run.store_seconds:>7.2f} "
            f"{run.total_seconds:>7.2f} {run.links_per_second:>8,.0f} {run.added:>6,} "
            f"{run.duplicates:>5,} {run.rejected:>8,} {run.peak_rss_mib:>12.1f} "
            f"{run.again_seconds:>7.2f} {run.again_duplicates:>10,}  "
            f"{'as expected' if run.as_expected else 'UNEXPECTED'}"
        )
    lines += [
        "",
        "parse: reading and parsing the file; store: canonical-URL lookups and inserts, 500 a",
        "transaction; links/s: rows / total; peak RSS: this process's ru_maxrss so far (it only",
        "grows, so a later backend's figure includes the earlier ones); again: the same file a",
        "second time, where every good row is a duplicate.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=10_000, help="rows in the file (10,000)")
    parser.add_argument("--format", choices=("csv", "yaml"), default="csv", help="csv or yaml")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help=f"also PostgreSQL: a server URL, where a scratch database {SCRATCH_DATABASE} is "
        "created and dropped",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed for the file")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args(argv)
    if args.links < 1:
        parser.error("--links must be at least 1")
    with tempfile.TemporaryDirectory(prefix="library-import-") as work:
        generated, runs = asyncio.run(run_all(args, Path(work)))
    if args.json:
        figures = {**asdict(generated), "path": None, "format": args.format}
        print(json.dumps({"file": figures, "runs": [asdict(run) for run in runs]}, indent=1))
    else:
        print(report(generated, runs, args.format))
    return 0 if all(run.as_expected for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
