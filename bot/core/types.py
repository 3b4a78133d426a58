"""Platform-neutral domain types.

Adapters translate Slack, Teams and console payloads into these at the edge; everything behind
the adapters speaks only this vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Platform(StrEnum):
    SLACK = "slack"
    TEAMS = "teams"
    CONSOLE = "console"


class Role(StrEnum):
    """What a person may do. Everyone is an employee; the other roles add to that."""

    EMPLOYEE = "employee"
    EXPERT = "expert"
    EVANGELIST = "evangelist"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class Identity:
    """How one platform knows a person (a Slack user id, a Teams user id, an email)."""

    platform: str
    external_id: str


@dataclass(frozen=True, slots=True)
class Person:
    """Someone in the organisation, as the core sees them."""

    id: int
    key: str
    name: str
    timezone: str
    roles: frozenset[Role]
    email: str | None = None
    identities: tuple[Identity, ...] = ()
    teams: tuple[str, ...] = ()
    known: bool = True
    """False for people the bot met on a platform who are not in the organisation file."""

    def has_role(self, role: Role) -> bool:
        return role in self.roles

    def identity_on(self, platform: str) -> str | None:
        for identity in self.identities:
            if identity.platform == platform:
                return identity.external_id
        return None


class AddressKind(StrEnum):
    DIRECT = "direct"
    """A one-to-one conversation with a person."""
    CHANNEL = "channel"
    THREAD = "thread"
    EPHEMERAL = "ephemeral"
    """Visible only to one person, where they are (Slack ephemeral; a plain reply elsewhere)."""
    HOME = "home"
    """The person's home view (Slack App Home). Other platforms send a direct message."""


@dataclass(frozen=True, slots=True)
class Address:
    """Where a message goes or came from, in platform terms but without platform types."""

    platform: Platform
    kind: AddressKind
    channel: str | None = None
    user: str | None = None
    thread: str | None = None
    reply_token: str | None = None
    """An opaque, short-lived reply handle some platforms give (Slack's response_url)."""

    @classmethod
    def direct(cls, platform: Platform, user: str) -> Address:
        return cls(platform, AddressKind.DIRECT, user=user)

    @classmethod
    def to_channel(cls, platform: Platform, channel: str) -> Address:
        return cls(platform, AddressKind.CHANNEL, channel=channel)

    @classmethod
    def in_thread(cls, platform: Platform, channel: str, thread: str) -> Address:
        return cls(platform, AddressKind.THREAD, channel=channel, thread=thread)

    def destination_key(self) -> str:
        """The unit platforms rate-limit by: a channel, a thread's channel, or a person's DM."""
        return self.channel or f"user:{self.user}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"platform": self.platform.value, "kind": self.kind.value}
        for name in ("channel", "user", "thread", "reply_token"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Address:
        return cls(
            platform=Platform(data["platform"]),
            kind=AddressKind(data["kind"]),
            channel=data.get("channel"),
            user=data.get("user"),
            thread=data.get("thread"),
            reply_token=data.get("reply_token"),
        )


class ButtonStyle(StrEnum):
    DEFAULT = "default"
    PRIMARY = "primary"
    DANGER = "danger"


@dataclass(frozen=True, slots=True)
class Button:
    """A button on a message. `action` names the handler; `value` is its argument."""

    action: str
    label: str
    value: str = ""
    style: ButtonStyle = ButtonStyle.DEFAULT
    url: str | None = None
    """A link the button opens. Slack still sends the press to the bot (so opens can be
    counted); Teams opens it without telling the bot; the console prints it and presses."""


FORM_OPEN_ACTION = "form.open"
"""The button action that opens a form; its value is the form's id."""


class FieldKind(StrEnum):
    TEXT = "text"
    LONG_TEXT = "long_text"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    DATE = "date"
    """YYYY-MM-DD."""
    TIME = "time"
    """HH:MM, 24-hour."""


FORM_TITLE_LIMIT = 24
"""Slack's limit for a modal's title and its submit button; every form keeps to it."""


@dataclass(frozen=True, slots=True)
class FormField:
    """One question on a form. `options` are (value, label) pairs for the choice kinds."""

    id: str
    label: str
    kind: FieldKind = FieldKind.TEXT
    required: bool = True
    options: tuple[tuple[str, str], ...] = ()
    placeholder: str | None = None
    hint: str | None = None
    initial: str | None = None
    """The value filled in; for multi_choice, values separated by commas."""
    max_length: int = 1000

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "kind": self.kind.value,
            "required": self.required,
            "options": [list(option) for option in self.options],
            "placeholder": self.placeholder,
            "hint": self.hint,
            "initial": self.initial,
            "max_length": self.max_length,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FormField:
        return cls(
            id=data["id"],
            label=data["label"],
            kind=FieldKind(data.get("kind", "text")),
            required=bool(data.get("required", True)),
            options=tuple((str(v), str(label)) for v, label in data.get("options") or ()),
            placeholder=data.get("placeholder"),
            hint=data.get("hint"),
            initial=data.get("initial"),
            max_length=int(data.get("max_length", 1000)),
        )


@dataclass(frozen=True, slots=True)
class Form:
    """Questions to ask a person, shown as a Slack modal, a Teams card or a console dialogue.

    `id` is also the action its submission arrives as: a `ButtonPress` whose value is a JSON
    object of field id → text (multi_choice values joined by ","; empty answers as "").
    """

    id: str
    title: str
    submit_label: str
    fields: tuple[FormField, ...]
    intro: str | None = None

    def __post_init__(self) -> None:
        if not self.title or len(self.title) > FORM_TITLE_LIMIT:
            raise ValueError(f"form title {self.title!r} must be 1 to 24 characters")
        if not self.submit_label or len(self.submit_label) > FORM_TITLE_LIMIT:
            raise ValueError(f"submit label {self.submit_label!r} must be 1 to 24 characters")
        ids = [f.id for f in self.fields]
        if len(ids) != len(set(ids)):
            raise ValueError(f"form {self.id!r} has duplicate field ids")
        if any(not i or i.startswith("ev_") for i in ids):
            # Teams merges the inputs into the submit data, next to our own "ev_" keys.
            raise ValueError(f"form {self.id!r}: field ids must be non-empty, not 'ev_…'")

    def field(self, field_id: str) -> FormField | None:
        return next((f for f in self.fields if f.id == field_id), None)

    def with_values(self, values: dict[str, str]) -> Form:
        """The same form with these answers filled in (to send it back for corrections)."""
        fields = tuple(
            replace(f, initial=values[f.id] or None) if f.id in values else f for f in self.fields
        )
        return replace(self, fields=fields)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "submit_label": self.submit_label,
            "fields": [f.to_dict() for f in self.fields],
            "intro": self.intro,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Form:
        return cls(
            id=data["id"],
            title=data["title"],
            submit_label=data["submit_label"],
            fields=tuple(FormField.from_dict(f) for f in data.get("fields") or ()),
            intro=data.get("intro"),
        )


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A rich message in a small, neutral markup.

    `text` is the plain summary every platform shows in notifications. `sections` are paragraphs
    in a minimal markdown: `**bold**`, `_italic_`, `[label](https://url)` and `- ` bullets;
    adapters translate it to Slack mrkdwn, Adaptive Card markdown or plain console text.
    """

    text: str
    sections: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()
    context: str | None = None
    form: Form | None = None
    """Questions to fill in (a modal behind a button on Slack, inputs on Teams)."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "sections": list(self.sections),
            "buttons": [
                {
                    "action": b.action,
                    "label": b.label,
                    "value": b.value,
                    "style": b.style.value,
                    # Only when present, like the form: old payloads keep their shape.
                    **({"url": b.url} if b.url else {}),
                }
                for b in self.buttons
            ],
            "context": self.context,
        }
        if self.form is not None:
            # Only when present: payloads without a form keep their old shape (and hashes).
            data["form"] = self.form.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutgoingMessage:
        return cls(
            text=data["text"],
            sections=tuple(data.get("sections") or ()),
            buttons=tuple(
                Button(
                    b["action"],
                    b["label"],
                    b.get("value", ""),
                    ButtonStyle(b.get("style", "default")),
                    b.get("url"),
                )
                for b in data.get("buttons") or ()
            ),
            context=data.get("context"),
            form=Form.from_dict(data["form"]) if data.get("form") else None,
        )


@dataclass(frozen=True, slots=True)
class MessageRef:
    """A message the platform accepted, so it can be updated or threaded later."""

    platform: Platform
    channel: str
    message_id: str

    def to_dict(self) -> dict[str, str]:
        return {
            "platform": self.platform.value,
            "channel": self.channel,
            "message_id": self.message_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> MessageRef:
        return cls(Platform(data["platform"]), data["channel"], data["message_id"])


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something on a platform, before we know which person that is."""

    platform: Platform
    user_id: str
    display_name: str | None = None
    email: str | None = None
    tenant_id: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """What a platform tells us about one of its users."""

    name: str | None = None
    email: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """Text addressed to the bot: a mention, a direct message or a slash command."""

    event_id: str
    actor: Actor
    text: str
    where: Address
    is_command: bool = False
    mentions_bot: bool = False
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    """A message in a channel the bot is in that was not addressed to it.

    Only what features need is kept (links, the thread); the text itself is never stored.
    """

    event_id: str
    actor: Actor
    text: str
    where: Address


@dataclass(frozen=True, slots=True)
class ButtonPress:
    event_id: str
    actor: Actor
    action: str
    value: str
    where: Address
    message: MessageRef | None = None


@dataclass(frozen=True, slots=True)
class MemberJoined:
    event_id: str
    actor: Actor
    channel: str


@dataclass(frozen=True, slots=True)
class ReactionAdded:
    event_id: str
    actor: Actor
    reaction: str
    item: MessageRef | None
    on_bot_message: bool = False
    """The reaction is on one of the bot's own messages (a participation signal)."""


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A person's status on a platform says whether they are out of office (Slack status)."""

    event_id: str
    actor: Actor
    away: bool
    until: datetime | None = None
    """When the status expires, if the platform says."""


@dataclass(frozen=True, slots=True)
class HomeOpened:
    event_id: str
    actor: Actor


@dataclass(frozen=True, slots=True)
class ForwardedMessage:
    """Someone sent a chat message to the question desk (Slack message shortcut, Teams action).

    `where` is where to answer the person; `permalink` points back at the chat message.
    """

    event_id: str
    actor: Actor
    text: str
    where: Address
    permalink: str | None = None


InboundEvent = (
    IncomingMessage
    | ChannelMessage
    | ButtonPress
    | MemberJoined
    | ReactionAdded
    | HomeOpened
    | ForwardedMessage
    | StatusChanged
)
