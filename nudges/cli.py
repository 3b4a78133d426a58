"""`evangelist campaign preview`: the nudges the policy would send, without sending anything."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.config.base import WEEKDAYS
from bot.config.organisation import OrganisationConfig, load_organisation
from bot.core.errors import ConfigurationError
from nudges.config import CampaignConfig
from nudges.planner import PlannedNudge, Recipient, plan_people
from nudges.policy import PersonState, Rules

MAX_DAYS = 366


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    campaign = commands.add_parser("campaign", help="nudge campaigns")
    actions = campaign.add_subparsers(dest="campaign_command", metavar="ACTION")
    preview = actions.add_parser(
        "preview",
        help="the nudges the policy would send, without sending anything",
        description=(
            "Plans the organisation file's campaigns for everyone in it, as the service does, "
            "and prints each nudge. By default people start at the first rung of the ladder "
            "with nothing sent before; --with-state reads their stages, preferences and the "
            "nudges already sent from the database (EVANGELIST_DATABASE_URL)."
        ),
    )
    preview.add_argument("--config", type=Path, help="organisation YAML (or EVANGELIST_CONFIG)")
    preview.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="YYYY-MM-DD",
        help="first day (midnight in the organisation's time zone)",
    )
    preview.add_argument("--days", type=int, default=14, help="how many days (default 14)")
    preview.add_argument("--campaign", metavar="ID", help="only this campaign")
    preview.add_argument("--with-state", action="store_true", help="use the database's state")
    preview.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace) -> int | None:
    if args.campaign_command != "preview":
        return None
    org = _organisation(args.config)
    try:
        first = date.fromisoformat(args.start)
    except ValueError as exc:
        raise ConfigurationError(f"--from {args.start!r}: use YYYY-MM-DD") from exc
    if not 1 <= args.days <= MAX_DAYS:
        raise ConfigurationError(f"--days {args.days}: give 1 to {MAX_DAYS}")
    campaigns = [c for c in org.campaigns if args.campaign in (None, c.id)]
    if args.campaign is not None and not campaigns:
        known = ", ".join(c.id for c in org.campaigns) or "none"
        raise ConfigurationError(f"--campaign {args.campaign!r}: no such campaign ({known})")
    start = datetime.combine(first, datetime.min.time(), ZoneInfo(org.organisation.timezone))
    start = start.astimezone(UTC)
    end = start + timedelta(days=args.days)
    if args.with_state:
        people = asyncio.run(_people_from_database(org, start))
    else:
        people = recipients_from_file(org)
    planned = preview(org, people, campaigns, start, end)
    names = {p.id: p.name for p in org.people}
    if args.json:
        for nudge in planned:
            print(json.dumps(as_json(nudge, names.get(nudge.person, nudge.person))))
        return 0
    print(
        f"{len(planned)} nudge(s) from {first} for {args.days} day(s), "
        f"{len(campaigns)} campaign(s), {len(people)} people:"
    )
    for nudge in planned:
        print(
            f"  {nudge.send_at:%Y-%m-%d %H:%M}Z  {nudge.local_time:%a %H:%M %Z} local  "
            f"{nudge.person:<12} {nudge.campaign} ({nudge.stage.value}, variant {nudge.variant})"
        )
    return 0


def preview(
    org: OrganisationConfig,
    people: list[Recipient],
    campaigns: Sequence[CampaignConfig],
    start: datetime,
    end: datetime,
) -> list[PlannedNudge]:
    """The plan for [start, end), as the service would make it.

    Planning starts a cap window and a week of late slots before `start`, so the preview
    neither sends slots that would have gone before `start` late nor ignores the cap they set.
    """
    holidays = frozenset(org.questions.holidays)
    rules = Rules.from_config(org.nudges, holidays)
    warm_up = start - rules.per - timedelta(days=7)
    teams = org.audience_groups()
    # Planned past `end` as well, as the service always looks a cap window and a week ahead:
    # a plan cut at `end` would send the last week's held-back wishes late.
    planned = plan_people(
        rules, campaigns, people, warm_up, end + rules.per + timedelta(days=7), teams=teams
    )
    found = [p for p in planned if start <= p.send_at < end]
    found.sort(key=lambda p: (p.send_at, p.person, p.campaign))
    return found


def recipients_from_file(org: OrganisationConfig) -> list[Recipient]:
    """Everyone in the file at the first rung, nothing sent before."""
    teams: dict[str, set[str]] = {}
    for team in org.teams:
        for member in team.members:
            teams.setdefault(member, set()).add(team.id)
    found = []
    for person in org.people:
        days = person.working_hours.days if person.working_hours else list(WEEKDAYS[:5])
        found.append(
            Recipient(
                state=PersonState(
                    key=person.id,
                    zone=ZoneInfo(person.timezone),
                    working_days=frozenset(WEEKDAYS.index(d) for d in days),
                ),
                name=person.name,
                teams=frozenset(teams.get(person.id, ())),
                roles=frozenset(r.value for r in person.roles),
            )
        )
    return found


async def _people_from_database(org: OrganisationConfig, now: datetime) -> list[Recipient]:
    from bot.config.settings import load_settings
    from bot.core.clock import SystemClock
    from bot.storage.database import Database
    from nudges.service import NudgeService

    database = Database(load_settings().database_url)
    try:
        service = NudgeService(database, SystemClock(), org, platforms=[])
        async with database.transaction() as session:
            people, _ = await service.recipients(session, now)
    finally:
        await database.close()
    return list(people.values())


def as_json(nudge: PlannedNudge, name: str) -> dict[str, str]:
    return {
        "person": nudge.person,
        "name": name,
        "campaign": nudge.campaign,
        "send_at_utc": nudge.send_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "local_time": nudge.local_time.isoformat(),
        "timezone": str(nudge.local_time.tzinfo),
        "variant": nudge.variant,
        "stage": nudge.stage.value,
        "slot_day": nudge.day.isoformat(),
    }


def _organisation(path: Path | None) -> OrganisationConfig:
    if path is None:
        from bot.config.settings import load_settings

        configured = load_settings().config_path
        if configured is None:
            raise ConfigurationError("give --config ORG.yaml (or set EVANGELIST_CONFIG)")
        path = Path(configured)
    if not path.exists():
        raise ConfigurationError(f"--config {path}: no such file")
    return load_organisation(path)
