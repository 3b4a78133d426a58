"""The organisation file: people, teams, topics.

Loaded once at start-up and validated strictly: an unknown key is a typo until proven otherwise,
and every error names its path in the file (and the line, where YAML tells us).
"""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from bot.config.base import WEEKDAYS, ChannelsConfig, Strict, check_key, check_timezone, weekday
from bot.core.errors import ConfigurationError
from bot.core.types import Role
from bot.digests.config import DigestConfig
from content_library.config import LibraryConfig
from nudges.config import CampaignConfig, NudgePolicyConfig

MAX_FILE_BYTES = 5 * 1024 * 1024
NETWORKS = ("facebook", "instagram", "youtube", "rss", "webhook", "other")


class WorkingHoursConfig(Strict):
    """When someone may be asked to answer: local times on working days (their time zone)."""

    start: time = time(9, 0)
    end: time = time(17, 0)
    days: list[str] = Field(default_factory=lambda: list(WEEKDAYS[:5]))

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [weekday(d) for d in value]
        if not days:
            raise ValueError("at least one working day is needed")
        return days

    @model_validator(mode="after")
    def _order(self) -> WorkingHoursConfig:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class PersonConfig(Strict):
    id: str = Field(description="short stable key, e.g. 'ada'")
    name: str = Field(min_length=1, max_length=200)
    email: str | None = None
    timezone: str = "UTC"
    roles: list[Role] = Field(default_factory=lambda: [Role.EMPLOYEE])
    slack: str | None = Field(default=None, description="Slack user id, e.g. U012AB3CD")
    teams: str | None = Field(default=None, description="Teams user id (29:...) or AAD object id")
    console: str | None = Field(default=None, description="console handle; defaults to the id")
    working_hours: WorkingHoursConfig | None = None
    affiliation: str | None = Field(
        default=None,
        max_length=200,
        description="how they say they are related to us in public, e.g. 'I work in Admissions'",
    )
    handles: dict[str, list[str]] = Field(
        default_factory=dict,
        description="public social handles by network, so their answers on the page count",
    )
    capacity: int | None = Field(default=None, ge=1, le=50)

    @field_validator("handles")
    @classmethod
    def _handles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = [k for k in value if k not in NETWORKS]
        if bad:
            raise ValueError(f"unknown network(s) {bad} (use {', '.join(NETWORKS)})")
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_key(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError(f"{value!r} is not an email address")
        return value.lower() if value else value

    @field_validator("slack")
    @classmethod
    def _slack(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[UW][A-Z0-9]{2,}$", value):
            raise ValueError(f"{value!r} is not a Slack user id (they look like U012AB3CD)")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[Role]) -> list[Role]:
        return sorted(set(value) | {Role.EMPLOYEE})


class TeamConfig(Strict):
    id: str
    name: str
    leaders: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)
    parent: str | None = None
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)


class TopicExpert(Strict):
    person: str
    weight: float = Field(default=1.0, gt=0, le=10)


class TopicConfig(Strict):
    id: str
    name: str
    description: str = ""
    keywords: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    experts: list[TopicExpert] = Field(default_factory=list)
    channel: str | None = None
    fallback_owner: str | None = None
    first_response_hours: float | None = Field(default=None, gt=0, le=24 * 14)


class RoutingConfig(Strict):
    """Which topic router runs and when a question counts as out of scope."""

    router: Literal["auto", "semantic", "lexical", "openai", "keyword"] = "auto"
    """auto: sentence embeddings when the packaged model loads, else words only."""
    min_confidence: float = Field(default=0.25, ge=0, lt=1)
    """Below this topic probability a question goes to the evangelist, not to an expert."""
    model_path: str | None = None
    """An all-MiniLM-L6-v2 ONNX file to use instead of the packaged one."""
    model_sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    retrain_minutes: int = Field(default=30, ge=5, le=7 * 24 * 60)
    """How often the router looks for new answers and declines to learn from."""
    out_of_scope_examples: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=2000
    )
    """Questions the public asks that no topic covers: they go to the fallback owner."""
    generic_out_of_scope: bool = True
    """Also learn Evangelist's own list of questions no organisation covers (weather, jokes,
    general knowledge…), so an off-topic question finds nobody even with a few topics."""


class QuestionDeskConfig(Strict):
    """How the question desk routes and escalates. Times are working time unless noted."""

    first_response_hours: float = Field(default=4, gt=0, le=24 * 14)
    step_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    """Unclaimed this long → the next expert."""
    experts_before_channel: int = Field(default=2, ge=1, le=20)
    channel_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    """Unclaimed this long in the topic channel → the evangelist."""
    claim_reminder_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    release_after_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    """After the reminder, this long without an answer → released and routed again."""
    verify_after_minutes: int = Field(default=180, ge=1, le=7 * 24 * 60)
    """'I answered' with no reply seen on the page after this long (wall-clock) → ask once."""
    capacity: int = Field(default=3, ge=1, le=50)
    """Open (routed or claimed) questions one person may hold."""
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    working_hours: WorkingHoursConfig = Field(default_factory=WorkingHoursConfig)
    holidays: list[date] = Field(default_factory=list)


class SourceBase(Strict):
    id: str
    name: str | None = None
    enabled: bool = True
    first_response_hours: float | None = Field(default=None, gt=0, le=24 * 14)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_key(value)


class _MetaSourceBase(SourceBase):
    access_token_env: str = "META_PAGE_ACCESS_TOKEN"
    """The environment variable (or NAME_FILE) holding the Page access token."""
    poll_minutes: int = Field(default=15, ge=0, le=24 * 60)
    """0: webhooks only."""
    lookback_days: int = Field(default=7, ge=1, le=90)


class FacebookPageSourceConfig(_MetaSourceBase):
    kind: Literal["facebook_page"]
    page_id: str = Field(pattern=r"^[0-9]{1,30}$")


class InstagramSourceConfig(_MetaSourceBase):
    kind: Literal["instagram"]
    account_id: str = Field(pattern=r"^[0-9]{1,30}$")


class YouTubeSourceConfig(SourceBase):
    kind: Literal["youtube"]
    channel_id: str = Field(pattern=r"^UC[A-Za-z0-9_-]{10,40}$")
    api_key_env: str = "YOUTUBE_API_KEY"
    poll_minutes: int = Field(default=30, ge=1, le=24 * 60)
    max_pages: int = Field(default=3, ge=1, le=50)


class RssSourceConfig(SourceBase):
    kind: Literal["rss"]
    url: str = Field(pattern=r"^https?://")
    poll_minutes: int = Field(default=30, ge=1, le=24 * 60)


class WebhookSourceConfig(SourceBase):
    kind: Literal["webhook"]
    secret_env: str
    """The environment variable (or NAME_FILE) holding the HMAC-SHA256 secret."""


class CsvSourceConfig(SourceBase):
    kind: Literal["csv"]


SourceConfig = Annotated[
    FacebookPageSourceConfig
    | InstagramSourceConfig
    | YouTubeSourceConfig
    | RssSourceConfig
    | WebhookSourceConfig
    | CsvSourceConfig,
    Field(discriminator="kind"),
]


class LanguageModelConfig(Strict):
    """The optional language model (on when OPENAI_API_KEY is set): models, tone and limits."""

    chat_model: str = Field(default="gpt-4o-mini", min_length=1, max_length=100)
    embedding_model: str = Field(default="text-embedding-3-small", min_length=1, max_length=100)
    tone: str = Field(default="friendly, plain and brief", min_length=1, max_length=200)
    """How suggested replies should sound, in a few words."""
    daily_token_budget: int = Field(default=200_000, ge=0, le=100_000_000)
    """Tokens (prompt + completion) all replicas may spend per UTC day; 0 turns the model off."""
    timeout_seconds: float = Field(default=20, gt=0, le=300)
    """Per request attempt."""
    max_retries: int = Field(default=2, ge=0, le=5)
    drafts: bool = True
    """Suggest a reply privately to whoever claims a question."""
    classify_below: float = Field(default=0.5, ge=0, le=1)
    """Router confidence below which a new question's topic is also put to the model (it
    picks one of the topics, or none, which sends the question to the fallback owner)."""


class OrganisationInfo(Strict):
    name: str
    timezone: str = "UTC"
    bot_name: str = "Evangelist"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)


class OrganisationConfig(Strict):
    organisation: OrganisationInfo
    people: list[PersonConfig] = Field(default_factory=list)
    teams: list[TeamConfig] = Field(default_factory=list)
    topics: list[TopicConfig] = Field(default_factory=list)
    questions: QuestionDeskConfig = Field(default_factory=QuestionDeskConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    language_model: LanguageModelConfig | None = None
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    nudges: NudgePolicyConfig = Field(default_factory=NudgePolicyConfig)
    campaigns: list[CampaignConfig] = Field(default_factory=list)
    library: LibraryConfig = Field(default_factory=LibraryConfig)
    digests: DigestConfig = Field(default_factory=DigestConfig)

    @model_validator(mode="after")
    def _references(self) -> OrganisationConfig:
        problems: list[str] = []
        people = {p.id for p in self.people}
        problems += _duplicates("people", [p.id for p in self.people], "id")
        problems += _duplicates("people", [p.email for p in self.people], "email")
        problems += _duplicates("people", [p.slack for p in self.people], "slack")
        problems += _duplicates("people", [p.teams for p in self.people], "teams")
        problems += _duplicates("teams", [t.id for t in self.teams], "id")
        problems += _duplicates("topics", [t.id for t in self.topics], "id")
        problems += _duplicates("sources", [s.id for s in self.sources], "id")
        team_ids = {t.id for t in self.teams}
        for i, team in enumerate(self.teams):
            for field in ("leaders", "members"):
                for j, ref in enumerate(getattr(team, field)):
                    if ref not in people:
                        problems.append(f"teams[{i}].{field}[{j}]: no person with id {ref!r}")
            if team.parent is not None and team.parent not in team_ids:
                problems.append(f"teams[{i}].parent: no team with id {team.parent!r}")
        for i, topic in enumerate(self.topics):
            for j, expert in enumerate(topic.experts):
                if expert.person not in people:
                    problems.append(
                        f"topics[{i}].experts[{j}].person: no person with id {expert.person!r}"
                    )
            if topic.fallback_owner is not None and topic.fallback_owner not in people:
                problems.append(
                    f"topics[{i}].fallback_owner: no person with id {topic.fallback_owner!r}"
                )
        problems += self._campaign_references(people, team_ids)
        for key in self.digests.leaders:
            if key not in people:
                problems.append(f"digests.leaders.{key}: no person with id {key!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _campaign_references(self, people: set[str], team_ids: set[str]) -> list[str]:
        problems = _duplicates("campaigns", [c.id for c in self.campaigns], "id")
        for i, campaign in enumerate(self.campaigns):
            if campaign.owner is not None and campaign.owner not in people:
                problems.append(f"campaigns[{i}].owner: no person with id {campaign.owner!r}")
            for j, ref in enumerate(campaign.audience.people):
                if ref not in people:
                    problems.append(
                        f"campaigns[{i}].audience.people[{j}]: no person with id {ref!r}"
                    )
            for j, ref in enumerate(campaign.audience.teams):
                if ref not in team_ids:
                    problems.append(f"campaigns[{i}].audience.teams[{j}]: no team with id {ref!r}")
            listed = set(self.team_channels())
            for j, ref in enumerate(campaign.audience.channels):
                if ref not in listed:
                    problems.append(
                        f"campaigns[{i}].audience.channels[{j}]: no team lists the channel "
                        f"{ref!r} under its channels"
                    )
        return problems

    def team_channels(self) -> dict[str, list[str]]:
        """Each channel named in a team's `channels` (any platform), with the teams naming it."""
        found: dict[str, list[str]] = {}
        for team in self.teams:
            for channel in (*team.channels.slack, *team.channels.teams, *team.channels.console):
                found.setdefault(channel, []).append(team.id)
        return found

    def audience_groups(self) -> dict[str, set[str]]:
        """Teams with their sub-teams and channels with their teams, as campaigns select them."""
        from nudges.planner import audience_groups

        by_team: dict[str, list[str]] = {}
        for channel, teams in self.team_channels().items():
            for team in teams:
                by_team.setdefault(team, []).append(channel)
        return audience_groups({t.id: t.parent for t in self.teams}, by_team)

    def person(self, key: str) -> PersonConfig | None:
        return next((p for p in self.people if p.id == key), None)

    def topic(self, key: str) -> TopicConfig | None:
        return next((t for t in self.topics if t.id == key), None)

    def source(self, key: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.id == key), None)

    def campaign(self, key: str) -> CampaignConfig | None:
        return next((c for c in self.campaigns if c.id == key), None)

    def leaders(self) -> list[PersonConfig]:
        """People who lead at least one team: they get the weekly digest."""
        keys = {key for team in self.teams for key in team.leaders}
        return [p for p in self.people if p.id in keys]

    def evangelists(self) -> list[PersonConfig]:
        return [p for p in self.people if Role.EVANGELIST in p.roles]


def _duplicates(section: str, values: list[str | None], field: str) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for index, value in enumerate(values):
        if value is None:
            continue
        if value in seen:
            problems.append(
                f"{section}[{index}].{field}: {value!r} is also used by {section}[{seen[value]}]"
            )
        else:
            seen[value] = index
    return problems


def load_organisation(path: str | Path) -> OrganisationConfig:
    """Read and validate an organisation file, raising `ConfigurationError` with every problem."""
    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise ConfigurationError(
            f"{file}: cannot read the organisation file ({exc.strerror})"
        ) from exc
    if size > MAX_FILE_BYTES:
        raise ConfigurationError(
            f"{file}: {size} bytes is larger than the {MAX_FILE_BYTES} allowed"
        )
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    return parse_organisation(text, source=str(file))


def parse_organisation(text: str, source: str = "<organisation>") -> OrganisationConfig:
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(f"{source}: invalid YAML at {where}: {problem}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{source}: expected a mapping with 'organisation:' at the top")
    try:
        return OrganisationConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error, document, source) for error in exc.errors()]
        raise ConfigurationError(
            f"{source}: {len(problems)} problem(s) in the organisation file", problems
        ) from exc


def _describe(error: Any, document: yaml.Node | None, source: str) -> str:
    location = list(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown setting (check the spelling)"
    if not location and "; " in message:
        # Cross-reference problems carry their own paths.
        return "\n".join(f"{source}: {part}" for part in message.split("; "))
    path = _render_path(location)
    line = _line_of(document, location)
    where = f"{source}:{line}" if line else source
    if "input" in error and error["type"] not in ("missing", "extra_forbidden"):
        value = error["input"]
        if isinstance(value, str | int | float | bool):
            message = f"{message} (got {value!r})"
    return f"{where}: {path}: {message}"


def _render_path(location: list[Any]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _line_of(node: yaml.Node | None, location: list[Any]) -> int | None:
    """Walk the composed YAML tree to find the line of the deepest node on the path."""
    found = node.start_mark.line + 1 if node is not None else None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
            if node is None:
                # An unknown key: point at the key itself.
                return found
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            return found
        found = node.start_mark.line + 1
    return found
