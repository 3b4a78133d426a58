"""The command registry behind `/evangelist …`, mentions and direct messages.

Capabilities register their commands and buttons here; `help` lists what each person's roles
let them use, so the help text grows as features land.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.organisation import OrganisationConfig
from bot.core.permissions import Permission
from bot.core.types import Address, Form, MessageRef, OutgoingMessage, Person, Platform


@dataclass
class CommandContext:
    """What a command handler gets: the person, their words, where to answer, a transaction."""

    session: AsyncSession
    person: Person
    args: str
    where: Address
    platform: Platform
    now: datetime
    organisation: OrganisationConfig | None
    registry: CommandRegistry
    replies: list[OutgoingMessage] = field(default_factory=list)
    message: MessageRef | None = None
    """The message whose button was pressed, so the handler can update it."""
    enqueued: bool = False
    """Set by handlers that wrote outbox rows of their own (the dispatcher is then woken)."""

    def reply(self, message: OutgoingMessage | str) -> None:
        self.replies.append(OutgoingMessage(text=message) if isinstance(message, str) else message)


Handler = Callable[[CommandContext], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    handler: Handler
    permission: Permission | None = None
    usage: str = ""
    aliases: tuple[str, ...] = ()


def _no_problems(values: dict[str, str]) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class FormSpec:
    """A form people can open, and how to check what they send.

    Its submission arrives as the action `form_id` (register a handler with
    `CommandRegistry.action`), with the answers as a JSON object in `ctx.args`, but only once
    `validate` found nothing wrong and the person has `permission`.
    """

    form_id: str
    build: Callable[[], Form]
    validate: Callable[[dict[str, str]], dict[str, str]] = _no_problems
    """Answers → {field id: what is wrong}; empty when all is well."""
    permission: Permission | None = None
    command: str | None = None
    """The chat command that opens the form, e.g. "campaign new"."""


def normalise_command(text: str) -> str:
    """'  /Campaign   NEW ' → 'campaign new'."""
    return " ".join(text.lower().split()).lstrip("/")


class CommandRegistry:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}
        self._actions: dict[str, Handler] = {}
        self._forms: dict[str, FormSpec] = {}
        self._form_commands: dict[str, FormSpec] = {}

    def command(self, command: Command) -> None:
        for name in (command.name, *command.aliases):
            if name in self._commands:
                raise ValueError(f"command {name!r} registered twice")
            self._commands[name] = command

    def action(self, name: str, handler: Handler) -> None:
        """Register a button action; the button's value arrives as the context's `args`."""
        if name in self._actions:
            raise ValueError(f"action {name!r} registered twice")
        self._actions[name] = handler

    def form(self, spec: FormSpec) -> None:
        """Register a form; add its submission handler with `action(spec.form_id, ...)`."""
        if spec.form_id in self._forms:
            raise ValueError(f"form {spec.form_id!r} registered twice")
        command = normalise_command(spec.command) if spec.command else None
        if command is not None and command in self._form_commands:
            raise ValueError(f"form command {command!r} registered twice")
        self._forms[spec.form_id] = spec
        if command is not None:
            self._form_commands[command] = spec

    def find_form(self, form_id: str) -> FormSpec | None:
        return self._forms.get(form_id)

    def forms(self) -> list[FormSpec]:
        return list(self._forms.values())

    def form_for_command(self, text: str) -> FormSpec | None:
        """The form a chat command such as "campaign new" opens, if any."""
        return self._form_commands.get(normalise_command(text))

    def find(self, name: str) -> Command | None:
        return self._commands.get(name.lower())

    def find_action(self, name: str) -> Handler | None:
        return self._actions.get(name)

    def listed(self) -> list[Command]:
        seen: dict[str, Command] = {}
        for command in self._commands.values():
            seen.setdefault(command.name, command)
        return list(seen.values())


def split_command(text: str) -> tuple[str, str]:
    """'whoami  please' → ('whoami', 'please'); empty text means help."""
    words = text.strip().split(maxsplit=1)
    if not words:
        return "help", ""
    return words[0].lower().lstrip("/"), words[1] if len(words) > 1 else ""
