"""Personal picks benchmark: how fast the nudge sender can choose a never-seen link per person.

    .venv/bin/python benchmarks/library_picks.py [--links 10000] [--people 2000] [--rounds 3]
        [--postgres URL] [--seed 3]

Fills a freshly migrated SQLite database (or, with `--postgres`, a scratch database
`evangelist_bench_picks` on that server, dropped after) with `--links` active links (seeded
topics and levels) and `--people` people in a few teams, then picks for everyone `--rounds`
times, 50 people per transaction as the nudge sender claims them. Each pick records a share, so
every round must give each person a link they never had: the run checks that and fails if any
person got a link twice. Prints the pool load time, picks per second per round and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bot.config.organisation import parse_organisation  # noqa: E402
from bot.storage.database import Database  # noqa: E402
from bot.storage.migrate import upgrade_async  # noqa: E402
from bot.storage.models import LinkRow, LinkShareRow, NudgeRow, PersonRow  # noqa: E402
from content_library.picks import Picker  # noqa: E402
from nudges.config import Stage  # noqa: E402

SCRATCH = "evangelist_bench_picks"
BATCH = 50
TOPICS = [f"topic-{n}" for n in range(20)]
NOW = datetime(2026, 3, 3, 10, 30, tzinfo=UTC)


async def fill(db: Database, links: int, people: int, rng: random.Random) -> None:
    async with db.transaction() as session:
        rows = [
            {
                "url": f"https://learn.example.org/{n}",
                "title": f"Lesson {n}",
                "topics": rng.sample(TOPICS, rng.randint(0, 2)),
                "level": rng.choice([None, *(s.value for s in Stage)]),
                "source": "bench",
                "added_at": NOW,
                "status": "active",
                "health": "ok",
                "failures": 0,
            }
            for n in range(links)
        ]
        for start in range(0, len(rows), 1000):
            await session.execute(insert(LinkRow), rows[start : start + 1000])
        folks = [
            {
                "key": f"p{n}",
                "name": f"Person {n}",
                "timezone": "Europe/London",
                "roles": "employee",
                "in_directory": True,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for n in range(people)
        ]
        for start in range(0, len(folks), 1000):
            await session.execute(insert(PersonRow), folks[start : start + 1000])


async def make_nudges(db: Database, ids: list[int], round_: int) -> dict[int, int]:
    """One sent nudge per person for this round (a pick names the nudge that carries it)."""
    async with db.transaction() as session:
        rows = [
            {
                "key": f"nudge:bench:{person_id}:{round_}",
                "campaign_key": "bench",
                "person_id": person_id,
                "slot_day": NOW.date(),
                "send_at": NOW,
                "variant": "a",
                "stage": "watch",
                "status": "sent",
                "test": False,
                "planned_at": NOW,
            }
            for person_id in ids
        ]
        for start in range(0, len(rows), 1000):
            await session.execute(insert(NudgeRow), rows[start : start + 1000])
        found = await session.execute(
            select(NudgeRow.person_id, NudgeRow.id).where(NudgeRow.key.like(f"%:{round_}"))
        )
        return dict(found.all())


async def run(url: str, args: argparse.Namespace) -> None:
    await upgrade_async(url)
    db = Database(url)
    rng = random.Random(args.seed)
    try:
        await fill(db, args.links, args.people, rng)
        async with db.transaction() as session:
            ids = list((await session.scalars(select(PersonRow.id))).all())
        experts = "\n".join(
            f"  - {{id: {t}, name: {t}, experts: [{{person: p{n}}}]}}"
            for n, t in ((rng.randrange(args.people), t) for t in TOPICS)
        )
        people = "\n".join(f"  - {{id: p{n}, name: P{n}}}" for n in range(args.people))
        org = parse_organisation(
            f"organisation: {{name: B}}\npeople:\n{people}\ntopics:\n{experts}\n"
        )
        picker = Picker(org)
        started = time.perf_counter()
        async with db.transaction() as session:
            pool = await picker._candidates(session)
        print(f"pool: {len(pool):,} links read in {time.perf_counter() - started:.3f} s")
        for round_ in range(1, args.rounds + 1):
            nudges = await make_nudges(db, ids, round_)
            started, picked = time.perf_counter(), 0
            for start in range(0, len(ids), BATCH):
                async with db.transaction() as session:
                    for person_id in ids[start : start + BATCH]:
                        stage = rng.choice(list(Stage))
                        nudge = nudges[person_id]
                        if await picker.pick(session, person_id, stage, NOW, nudge_id=nudge):
                            picked += 1
            seconds = time.perf_counter() - started
            print(
                f"round {round_}: {picked:,} picks in {seconds:.2f} s "
                f"({picked / seconds:,.0f} picks/s, {seconds / max(picked, 1) * 1000:.2f} ms each)"
            )
        async with db.transaction() as session:
            shares = await session.scalar(select(func.count()).select_from(LinkShareRow))
            distinct = await session.scalar(
                select(func.count()).select_from(
                    select(LinkShareRow.person_id, LinkShareRow.link_id).distinct().subquery()
                )
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"shares {shares:,}, distinct (person, link) {distinct:,}; peak RSS {peak:.0f} MiB")
        if shares != distinct or shares != args.people * args.rounds:
            raise SystemExit("a person got a link twice, or someone got no pick")
    finally:
        await db.close()


async def scratch(server: str, create: bool) -> str:
    admin = Database(server)
    try:
        async with admin.engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH}"))
            if create:
                await connection.execute(text(f"CREATE DATABASE {SCRATCH}"))
    finally:
        await admin.close()
    return server.rsplit("/", 1)[0] + f"/{SCRATCH}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server to use instead")
    args = parser.parse_args()
    if args.postgres:
        url = asyncio.run(scratch(args.postgres, create=True))
        try:
            print(f"PostgreSQL, {args.links:,} links, {args.people:,} people")
            asyncio.run(run(url, args))
        finally:
            asyncio.run(scratch(args.postgres, create=False))
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        print(f"SQLite, {args.links:,} links, {args.people:,} people")
        asyncio.run(run(f"sqlite:///{work}/picks.db", args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
