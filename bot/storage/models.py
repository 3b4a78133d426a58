"""SQLAlchemy models. Times are stored as UTC; migrations are generated from these."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class PersonRow(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    roles: Mapped[str] = mapped_column(String(200), default="employee")
    """Comma-separated role names."""
    in_directory: Mapped[bool] = mapped_column(default=True)
    """True when the person is listed in the organisation file."""
    welcomed_at: Mapped[datetime | None]
    away_until: Mapped[datetime | None]
    """Out of office: no questions or nudges reach them until then."""
    away_source: Mapped[str | None] = mapped_column(String(10))
    """Who said so: 'command' (they told the bot) or a platform's status ('slack'). A status
    that ends clears only what a status set."""
    questions_paused_until: Mapped[datetime | None]
    recognition_at: Mapped[datetime | None]
    """When they agreed to be named in leaders' digests (None: never, or withdrawn)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    identities: Mapped[list[IdentityRow]] = relationship(
        back_populates="person", cascade="all, delete-orphan", lazy="selectin"
    )


class IdentityRow(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    blocked_at: Mapped[datetime | None]
    """When the platform told us this person blocked the bot (Teams 403 MessageWritesBlocked)."""

    person: Mapped[PersonRow] = relationship(back_populates="identities")


class TeamRow(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_key: Mapped[str | None] = mapped_column(String(100))


class TeamMemberRow(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    is_leader: Mapped[bool] = mapped_column(default=False)
    is_member: Mapped[bool] = mapped_column(default=True)


class TeamChannelRow(Base):
    __tablename__ = "team_channels"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    channel: Mapped[str] = mapped_column(String(200), primary_key=True)


class ConversationReferenceRow(Base):
    """The Bot Framework conversation reference of every conversation we heard from.

    Teams can only be written to proactively through one of these (or by creating a conversation
    from the service URL and tenant they carry).
    """

    __tablename__ = "conversation_references"
    __table_args__ = (UniqueConstraint("platform", "conversation_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    conversation_id: Mapped[str] = mapped_column(String(400))
    conversation_type: Mapped[str | None] = mapped_column(String(40))
    user_id: Mapped[str | None] = mapped_column(String(200), index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(100))
    service_url: Mapped[str | None] = mapped_column(String(400))
    reference: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class ProcessedEventRow(Base):
    """Inbound events already handled, so a platform retry is never processed twice."""

    __tablename__ = "processed_events"

    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)


class OutboxRow(Base):
    """One outbound message, written in the same transaction as the change that caused it.

    Life: pending → claimed → sending → sent, or → failed (permanent) / back to pending (retry).
    A row found `sending` after its lease ran out had an unknown outcome: it is reconciled with
    the platform where the platform allows it, else resent (see bot/delivery/dispatcher.py).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    platform: Mapped[str] = mapped_column(String(20))
    operation: Mapped[str] = mapped_column(String(20), default="send")
    address: Mapped[dict[str, Any]]
    payload: Mapped[dict[str, Any]]
    attachment: Mapped[bytes | None]
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    sending_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any] | None]
    """The platform's reference to the delivered message (channel, message id)."""
    last_error: Mapped[str | None] = mapped_column(Text)
    possible_duplicate: Mapped[bool] = mapped_column(default=False)
    """Resent after an unknown outcome on a platform that cannot read back deliveries."""


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL")
    )
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    details: Mapped[dict[str, Any] | None]


# -- the question desk ----------------------------------------------------------------------


class SourceRow(Base):
    """A brand-page source's state: its polling cursor, schedule and health."""

    __tablename__ = "sources"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    cursor: Mapped[dict[str, Any]] = mapped_column(default=dict)
    next_poll_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    """A poll in progress holds the source until then (claimed with a conditional UPDATE)."""
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(default=0)
    """Consecutive failed polls."""
    alerted_at: Mapped[datetime | None]
    """When the evangelist was told about the current run of failures (told once)."""
    token_expires_at: Mapped[datetime | None]
    rate_headroom: Mapped[float | None]
    usage: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """API calls and quota units spent per day: {"day": "2026-03-02", "calls": 3, "units": 3}."""
    items_seen: Mapped[int] = mapped_column(default=0)


class QuestionRow(Base):
    """A public question from a brand page that someone in the organisation should answer.

    `next_check_at` is when the escalation job must look at it next; every change bumps
    `version`, and jobs and buttons change a question only if the version they read is still
    current, so a step can never happen twice.
    """

    __tablename__ = "questions"
    __table_args__ = (
        UniqueConstraint("source_key", "external_id"),
        Index("ix_questions_due", "next_check_at"),
        Index("ix_questions_status", "status", "topic_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="comment")
    parent_id: Mapped[str | None] = mapped_column(String(200))
    thread_id: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(1000))
    author_name: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    posted_at: Mapped[datetime | None]
    via: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(default=1.0)
    topic_key: Mapped[str | None] = mapped_column(String(100))
    topic_score: Mapped[float | None]
    excluded_topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="new")
    stage: Mapped[str | None] = mapped_column(String(20))
    """Within a status: 'reminded' after a claim reminder, 'snoozed', 'asked' after a check."""
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    step: Mapped[int] = mapped_column(default=0)
    """How many experts have been asked."""
    next_check_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer)
    sla_due_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    reported_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    answer_kind: Mapped[str | None] = mapped_column(String(20))
    """'page', 'staff' (seen on the page), 'reported' (the person said so), 'elsewhere'."""
    answer_url: Mapped[str | None] = mapped_column(String(1000))
    channel_key: Mapped[str | None] = mapped_column(String(300))
    """The outbox key of the 'can anyone help?' channel post, so it can update itself."""
    closed_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    # The ORM adds `AND version = :old` to every UPDATE of a question and raises StaleDataError
    # when another job or button changed it first; that transaction then rolls back whole.
    __mapper_args__ = {"version_id_col": version}


class AssignmentRow(Base):
    """One time a question was put in front of someone (an expert, a channel, the evangelist)."""

    __tablename__ = "assignments"
    __table_args__ = (Index("ix_assignments_person_outcome", "person_id", "outcome"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    question_id: Mapped[int] = mapped_column(
        ForeignKey("questions.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    """'expert', 'fallback', 'channel' or 'evangelist'."""
    topic_key: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(300), default="")
    message_key: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(20), default="open")
    outcome_at: Mapped[datetime | None]


class PageReplyRow(Base):
    """A reply on a brand page by the page itself or a known staff member (never anyone else)."""

    __tablename__ = "page_replies"
    __table_args__ = (
        UniqueConstraint("source_key", "external_id"),
        Index("ix_page_replies_parent", "source_key", "parent_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_key: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str] = mapped_column(String(200))
    by_page: Mapped[bool] = mapped_column(default=False)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    url: Mapped[str | None] = mapped_column(String(1000))
    posted_at: Mapped[datetime | None]
    seen_at: Mapped[datetime]


class SocialHandleRow(Base):
    """A public handle a person uses on a network, so their replies on the page are theirs."""

    __tablename__ = "social_handles"
    __table_args__ = (UniqueConstraint("network", "handle"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    network: Mapped[str] = mapped_column(String(20))
    handle: Mapped[str] = mapped_column(String(200))
    """Normalised: lower-case, no leading '@'."""
    from_config: Mapped[bool] = mapped_column(default=False)


class ParticipationRow(Base):
    """Something a person did that counts as taking part; the digests' single source of truth."""

    __tablename__ = "participation_events"
    __table_args__ = (
        UniqueConstraint("person_id", "kind", "reference"),
        # The digests read weeks of events by time, person and kind: with all three in the
        # index, PostgreSQL answers from the index alone.
        Index("ix_participation_window", "at", "person_id", "kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime]
    reference: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any] | None]


class ExpertiseRow(Base):
    """What the desk has learned about one person on one topic, and the evangelist's say.

    `learned` is a decayed score of evidence (answers, claims, wrong-topic declines) valid at
    `learned_at`; it is decayed further whenever it is read or changed (see
    bot/questions/expertise.py). `override`, when set, replaces the configured weight and
    everything learned.
    """

    __tablename__ = "expertise"
    __table_args__ = (
        UniqueConstraint("person_id", "topic_key"),
        Index("ix_expertise_topic", "topic_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    topic_key: Mapped[str] = mapped_column(String(100))
    learned: Mapped[float] = mapped_column(default=0.0)
    learned_at: Mapped[datetime]
    """The moment `learned` was last decayed to (the reference for the next decay)."""
    answers: Mapped[int] = mapped_column(default=0)
    claims: Mapped[int] = mapped_column(default=0)
    declines: Mapped[int] = mapped_column(default=0)
    """'Not me: wrong topic' presses; busy and release are no evidence of expertise."""
    override: Mapped[float | None]
    """The evangelist's fixed weight (0 = never ask); NULL = configured weight + learned."""
    overridden_by: Mapped[str | None] = mapped_column(String(100))
    overridden_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime]


# -- the language model ---------------------------------------------------------------------


class LlmUsageRow(Base):
    """Language model calls and tokens per UTC day and purpose, shared by every replica.

    The daily token budget is read from here before each call, so it survives restarts.
    """

    __tablename__ = "llm_usage"
    __table_args__ = (UniqueConstraint("day", "purpose"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date]
    purpose: Mapped[str] = mapped_column(String(40))
    """'draft', 'classify', 'narrate' or 'embed'."""
    calls: Mapped[int] = mapped_column(default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(default=0)


# -- nudges ---------------------------------------------------------------------------------


class CampaignRow(Base):
    """A nudge campaign: its definition (from the organisation file or made in chat) and state.

    The file is the source of truth for the campaigns it declares; `status` is what the
    evangelist did in chat (pause, resume, end). Every change of the definition bumps `version`
    and drops the nudges planned but not sent, so an edit changes only the future.
    """

    __tablename__ = "campaigns"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    origin: Mapped[str] = mapped_column(String(10), default="file")
    """'file' (the organisation file) or 'chat' (made with `campaign new`)."""
    definition: Mapped[dict[str, Any]]
    """The campaign as `nudges.config.CampaignConfig` validates it."""
    status: Mapped[str] = mapped_column(String(10), default="active")
    """'active', 'paused', 'ended' or 'removed' (no longer in the file)."""
    version: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class NudgeRow(Base):
    """One nudge to one person: planned, then claimed and sent exactly once, then answered.

    `key` names the campaign slot (campaign, person, local day), so planning the same slot
    twice, on any replica, inserts one row. Sending moves `status` from 'planned' to 'sent'
    with a conditional UPDATE in the transaction that writes the outbox row.
    """

    __tablename__ = "nudges"
    __table_args__ = (
        Index("ix_nudges_due", "status", "send_at"),
        Index("ix_nudges_person", "person_id", "send_at"),
        Index("ix_nudges_campaign", "campaign_key", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    campaign_key: Mapped[str] = mapped_column(String(64))
    campaign_version: Mapped[int] = mapped_column(default=1)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    slot_day: Mapped[date]
    send_at: Mapped[datetime]
    variant: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(20))
    """The person's ladder stage when planned; the nudge asks for the next step."""
    status: Mapped[str] = mapped_column(String(10), default="planned")
    """'planned', 'sent' or 'skipped' (the policy said no at send time; see `reason`)."""
    reason: Mapped[str | None] = mapped_column(String(100))
    response: Mapped[str | None] = mapped_column(String(10))
    """What they pressed: 'done', 'not_now', 'paused' or 'stopped'."""
    test: Mapped[bool] = mapped_column(default=False)
    """A test-send to the evangelist: outside the policy and the figures."""
    planned_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id", ondelete="SET NULL"))
    """The learning-library pick this nudge carries ({link}), chosen when it was sent."""


class NudgePreferenceRow(Base):
    """What a person told the bot about nudges, and where they stand on the ladder."""

    __tablename__ = "nudge_preferences"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    opted_out_at: Mapped[datetime | None]
    """Set: no nudges at all, until they opt back in themselves. Nobody else can undo it."""
    paused_until: Mapped[datetime | None]
    stopped: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Campaigns they stopped."""
    stage: Mapped[str] = mapped_column(String(20), default="watch")
    stage_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


# -- learning library -----------------------------------------------------------------------


class LinkRow(Base):
    """A link in the learning library, by its canonical URL (so duplicates collapse).

    `status` is where it stands in curation: 'active' (in circulation), 'suggested' (from a
    subscribed feed, waiting for the evangelist), 'dismissed' or 'retired'. `health` is what
    the last checks found: 'unchecked', 'ok', 'redirected' (final_url says where) or 'broken'.
    Only active links that are not broken are shared.
    """

    __tablename__ = "links"
    __table_args__ = (
        Index("ix_links_status", "status", "health"),
        Index("ix_links_checked", "last_checked_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    title: Mapped[str | None] = mapped_column(String(300))
    summary: Mapped[str | None] = mapped_column(Text)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    level: Mapped[str | None] = mapped_column(String(20))
    """The ladder stage it suits best (watch … create); None suits everyone."""
    experiment: Mapped[str | None] = mapped_column(String(500))
    """A small challenge tied to the link, for the experiment of the week."""
    source: Mapped[str] = mapped_column(String(300))
    """Where it came from: 'chat', 'import:links.csv', 'feed:https://…'."""
    added_by: Mapped[str | None] = mapped_column(String(100))
    added_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10), default="active")
    health: Mapped[str] = mapped_column(String(12), default="unchecked")
    http_status: Mapped[int | None]
    final_url: Mapped[str | None] = mapped_column(String(2000))
    check_error: Mapped[str | None] = mapped_column(String(200))
    failures: Mapped[int] = mapped_column(default=0)
    """Checks in a row that could not reach it; enough of them make it broken."""
    last_checked_at: Mapped[datetime | None]
    broken_since: Mapped[datetime | None]


class LinkShareRow(Base):
    """A link shared: the link of the week in a channel, or a personal pick in a nudge.

    `key` makes each share idempotent ('weekly:2026-W12:slack:C123', 'pick:<nudge id>'), and
    the (link, person) pair is unique, so nobody is ever picked the same link twice.
    """

    __tablename__ = "link_shares"
    __table_args__ = (
        UniqueConstraint("link_id", "person_id", name="uq_link_shares_link_person"),
        Index("ix_link_shares_kind", "kind", "shared_at"),
        Index("ix_link_shares_person", "person_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    """'weekly' (a channel post) or 'pick' (one person, inside a nudge)."""
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    platform: Mapped[str | None] = mapped_column(String(20))
    channel: Mapped[str | None] = mapped_column(String(200))
    week: Mapped[str] = mapped_column(String(8))
    """ISO week of the share, '2026-W12'."""
    nudge_id: Mapped[int | None] = mapped_column(ForeignKey("nudges.id", ondelete="SET NULL"))
    shared_at: Mapped[datetime]


class LinkFeedbackRow(Base):
    """What one person did with one link: opened it (how often), voted, tried its experiment."""

    __tablename__ = "link_feedback"

    link_id: Mapped[int] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    opens: Mapped[int] = mapped_column(default=0)
    vote: Mapped[int | None]
    """+1 (helpful) or -1 (not for me); the latest press counts."""
    first_opened_at: Mapped[datetime | None]
    voted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class LibraryFeedRow(Base):
    """A subscribed feed: new items land in the 'suggested' queue for the evangelist."""

    __tablename__ = "library_feeds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    origin: Mapped[str] = mapped_column(String(10), default="chat")
    """'file' (the organisation file's library.feeds) or 'chat'."""
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    level: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """ETag, Last-Modified and the entry ids seen, as the RSS source keeps them."""
    added_by: Mapped[str | None] = mapped_column(String(100))
    added_at: Mapped[datetime]
    polled_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))


# -- leader digests -------------------------------------------------------------------------


class DigestRow(Base):
    """One leader's digest for one week, as it was sent: the figures and the words.

    (leader, week) is unique: the weekly job inserts the snapshot and writes its outbox rows in
    one transaction, so a job that runs twice, on any replica, sends one digest.
    """

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("leader_id", "week", name="uq_digests_leader_week"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(8))
    """ISO week covered, '2026-W12', in the leader's time zone."""
    zone: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(300))
    figures: Mapped[dict[str, Any]]
    narrative: Mapped[str | None] = mapped_column(Text)
    narrative_source: Mapped[str] = mapped_column(String(10), default="template")
    """'model' (the language model's, every number checked) or 'template'."""
    message_key: Mapped[str] = mapped_column(String(300))
    """The outbox key of the digest message."""
    created_at: Mapped[datetime]
