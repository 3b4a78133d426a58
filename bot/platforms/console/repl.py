"""The console chat: you speak as a person from the organisation file.

Plain text is a direct message to the bot; `/evangelist …` is the slash command; `#channel text`
posts in a channel (mention the bot with `@evangelist`); a number presses that button. Lines
starting with ':' are console commands (`:help`). A message with a form starts a dialogue that
asks its questions one at a time, and the answers are sent like a submitted Slack modal.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import select

from bot.core.sources import ItemKind, SourceItem
from bot.core.types import (
    Actor,
    Address,
    AddressKind,
    ButtonPress,
    ChannelMessage,
    Form,
    HomeOpened,
    IncomingMessage,
    MemberJoined,
    MessageRef,
    Platform,
)
from bot.platforms.console.forms import FormCancelled, fill_in
from bot.platforms.console.platform import ConsoleEntry, ConsolePlatform
from bot.platforms.markup import to_plain
from bot.services.chat import ChatService
from bot.storage import directory
from bot.storage.database import Database
from bot.storage.models import PersonRow, QuestionRow

if TYPE_CHECKING:
    from bot.questions.desk import QuestionDesk

CONSOLE_HELP = """Console commands:
  help, whoami, …        a direct message to the bot
  /evangelist <command>  the slash command
  #channel <text>        post in a channel; include @evangelist to mention the bot
  <number>               press the button with that number
  :as <person>           speak as someone else from the organisation file
  :join #channel         join a channel (the bot welcomes newcomers once)
  :home                  open the bot's home view
  :ask <question>        someone from the public asks on our (demo) brand page
  :reply <number>        the page replies to question #<number> (as if you answered there)
  :people                who is in the organisation file
  :channels              the channels you are in
  :quit                  leave (end of input does the same)
When I send a form, I ask its questions one by one: Enter skips an optional one,
a number picks a choice, `cancel` stops the form."""

GENERAL = "#general"


@dataclass
class PressableButton:
    action: str
    value: str
    where: Address
    message: MessageRef


@dataclass
class PendingForm:
    form: Form
    where: Address
    message: MessageRef


class ConsoleSession:
    """Reads lines, turns them into platform-neutral events, prints what the person sees."""

    def __init__(
        self,
        service: ChatService,
        platform: ConsolePlatform,
        database: Database,
        deliver: Callable[[], Awaitable[int]],
        out: TextIO,
        handle: str,
        *,
        echo: bool = False,
        desk: QuestionDesk | None = None,
    ) -> None:
        self.desk = desk
        self.service = service
        self.platform = platform
        self.db = database
        self.deliver = deliver
        self.out = out
        self.handle = handle
        self.echo = echo
        self.buttons: dict[int, PressableButton] = {}
        self._numbers = itertools.count(1)
        self._events = itertools.count(1)
        self._session = uuid.uuid4().hex[:8]
        self._channels: set[str] = {GENERAL}
        self._seen: dict[str, set[str]] = {}
        """Message ids each person has been shown (updates are shown again)."""
        self._name = handle
        self._forms: list[PendingForm] = []
        """Forms shown to the person, asked once the line that brought them is handled."""
        self._script: Iterator[str] | None = None
        self._read: Callable[[str], str] = input
        platform.subscribe(self._show)

    # -- who am I -------------------------------------------------------------------------

    async def switch_to(self, handle: str) -> bool:
        async with self.db.transaction() as session:
            person = await directory.person_by_identity(session, "console", handle)
            if person is None:
                return False
            channels = await directory.channels_of(session, person.id, "console")
        self.handle = handle
        self._name = person.name
        self._channels = {GENERAL, *channels}
        return True

    def _catch_up(self) -> None:
        """Show what reached this person while the console spoke as someone else."""
        seen = self._seen.setdefault(self.handle, set())
        for entry in list(self.platform.entries.values()):
            if entry.message_id not in seen and self._visible(entry):
                self._show(entry)

    @property
    def actor(self) -> Actor:
        return Actor(Platform.CONSOLE, self.handle, display_name=self._name)

    def _event_id(self) -> str:
        return f"console-{self._session}-{next(self._events)}"

    # -- the loop -------------------------------------------------------------------------

    async def run(
        self, lines: Iterable[str] | None = None, read: Callable[[str], str] | None = None
    ) -> None:
        """Handle lines until they run out, `:quit`, or end of input."""
        self._print(f"You are {self._name} ({self.handle}). Type :help for console commands.")
        if self.desk is not None:
            self._print(
                "Try the question desk: `:ask When is the application deadline?` plays a member "
                "of the public asking on our page; `:as ravi` lets you answer as the expert."
            )
        source = iter(lines) if lines is not None else None
        # A form's answers are the lines that follow, from the script or the terminal.
        self._script, self._read = source, read or input
        while True:
            try:
                line = next(source) if source is not None else self._read(f"{self.handle}> ")
            except (EOFError, StopIteration, KeyboardInterrupt):
                break
            line = line.rstrip("\n")
            if self.echo:
                self._print(f"{self.handle}> {line}")
            if not await self.handle_line(line):
                break
        self._print("Bye!")

    async def handle_line(self, line: str) -> bool:
        """Handle one line; False means the person asked to leave."""
        text = line.strip()
        if not text or text.startswith("//"):
            return True
        going_on = True
        if text.startswith(":"):
            going_on = await self._console_command(text[1:].strip())
        else:
            await self._say(text)
        if going_on:
            await self._fill_in_forms()
        return going_on

    async def _say(self, text: str) -> None:
        """A line for the bot: a button number, the slash command, a channel post or a DM."""
        if text.isdigit():
            await self._press(int(text))
        elif text.startswith("/evangelist"):
            await self._submit(
                IncomingMessage(
                    event_id=self._event_id(),
                    actor=self.actor,
                    text=text.removeprefix("/evangelist").strip(),
                    where=Address(
                        Platform.CONSOLE,
                        AddressKind.EPHEMERAL,
                        channel=f"dm:{self.handle}",
                        user=self.handle,
                    ),
                    is_command=True,
                )
            )
        elif text.startswith("#"):
            await self._post_in_channel(text)
        else:
            await self._submit(
                IncomingMessage(
                    event_id=self._event_id(),
                    actor=self.actor,
                    text=text,
                    where=Address.direct(Platform.CONSOLE, self.handle),
                )
            )

    async def _fill_in_forms(self) -> None:
        """Ask the questions of each form shown; a form sent back (to fix) is asked again."""
        while self._forms:
            pending = self._forms.pop(0)
            try:
                answers = fill_in(pending.form, self._answer, self._print)
            except FormCancelled:
                self._print("(form cancelled)")
                continue
            except (EOFError, StopIteration):
                self._print("(form cancelled: no more input)")
                self._forms.clear()
                return
            await self._submit(
                ButtonPress(
                    self._event_id(),
                    self.actor,
                    pending.form.id,
                    json.dumps(answers),
                    pending.where,
                    pending.message,
                )
            )

    def _answer(self, prompt: str) -> str:
        if self._script is None:
            return self._read(prompt)
        line = next(self._script).rstrip("\n")
        if self.echo:
            self._print(f"{prompt}{line}")
        return line

    async def _post_in_channel(self, text: str) -> None:
        channel, _, body = text.partition(" ")
        if channel not in self._channels:
            self._print(f"(you are not in {channel}; :join {channel} first)")
            return
        event_id = self._event_id()
        if "@evangelist" in body.lower():
            cleaned = " ".join(w for w in body.split() if w.lower() != "@evangelist")
            where = Address.in_thread(Platform.CONSOLE, channel, event_id)
            await self._submit(
                IncomingMessage(event_id, self.actor, cleaned, where, mentions_bot=True)
            )
        else:
            await self._submit(
                ChannelMessage(
                    event_id, self.actor, body, Address.to_channel(Platform.CONSOLE, channel)
                )
            )

    async def _press(self, number: int) -> None:
        button = self.buttons.get(number)
        if button is None:
            self._print(f"(there is no button {number})")
            return
        await self._submit(
            ButtonPress(
                self._event_id(),
                self.actor,
                button.action,
                button.value,
                button.where,
                button.message,
            )
        )

    async def _console_command(self, text: str) -> bool:
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        if word in ("quit", "exit", "q"):
            return False
        if word == "help":
            self._print(CONSOLE_HELP)
        elif word == "as":
            if await self.switch_to(rest):
                self._print(f"You are now {self._name} ({self.handle}).")
                self._catch_up()
            else:
                self._print(f"(nobody called {rest!r}; try :people)")
        elif word == "join":
            channel = rest if rest.startswith("#") else f"#{rest}"
            self._channels.add(channel)
            self._print(f"(you joined {channel})")
            await self._submit(MemberJoined(self._event_id(), self.actor, channel))
        elif word == "home":
            await self._submit(HomeOpened(self._event_id(), self.actor))
        elif word == "people":
            await self._list_people()
        elif word in ("ask", "reply"):
            await self._brand_page(word, rest)
        elif word == "channels":
            self._print("You are in: " + ", ".join(sorted(self._channels)))
        else:
            self._print(f"(unknown console command :{word}; try :help)")
        return True

    async def _brand_page(self, word: str, rest: str) -> None:
        """Play the public and the page on a demo brand page, so the desk can be seen at work."""
        if self.desk is None or not rest:
            self._print("(usage: :ask <question> or :reply <question number>)")
            return
        n = next(self._events)
        if word == "ask":
            item = SourceItem(
                source_id="demo",
                external_id=f"{self._session}-{n}",
                text=rest,
                url=f"https://www.facebook.com/demo/posts/{self._session}{n}",
                author_name="Sam Visitor",
                posted_at=self.desk.clock.now(),
            )
        else:
            async with self.db.transaction() as session:
                question = await session.get(QuestionRow, int(rest)) if rest.isdigit() else None
                parent = question.external_id if question else None
                source = question.source_key if question else "demo"
            if parent is None:
                self._print(f"(no question #{rest})")
                return
            item = SourceItem(
                source_id=source,
                external_id=f"{self._session}-reply-{n}",
                text="Thanks for asking! Here is the answer.",
                kind=ItemKind.REPLY,
                parent_id=parent,
                by_page=True,
                url=f"https://www.facebook.com/demo/posts/{self._session}{n}",
            )
        report = await self.desk.take_in([item], via="console")
        if word == "ask":
            outcome = f"tracked as question #{report.new[0]}" if report.new else "not tracked"
            reasons = ", ".join(report.skipped) or "-"
            self._print(f"(Sam Visitor asked on the demo page: {outcome}; skipped: {reasons})")
        await self.deliver()

    async def _list_people(self) -> None:
        async with self.db.transaction() as session:
            rows = (
                await session.scalars(
                    select(PersonRow).where(PersonRow.in_directory).order_by(PersonRow.key)
                )
            ).all()
            lines = [f"  {r.key:<12} {r.name} ({r.roles.replace(',', ', ')})" for r in rows]
        self._print("People:\n" + "\n".join(lines))

    async def _submit(
        self, event: IncomingMessage | ChannelMessage | ButtonPress | MemberJoined | HomeOpened
    ) -> None:
        await self.service.handle(event)
        await self.deliver()

    # -- output ---------------------------------------------------------------------------

    def _visible(self, entry: ConsoleEntry) -> bool:
        if entry.visible_to is not None:
            return entry.visible_to == self.handle
        if entry.conversation.startswith("dm:"):
            return entry.conversation == f"dm:{self.handle}"
        return entry.conversation in self._channels

    def _show(self, entry: ConsoleEntry) -> None:
        if not self._visible(entry):
            return
        self._seen.setdefault(self.handle, set()).add(entry.message_id)
        if entry.conversation.startswith("home:"):
            place = "Home"
        elif entry.conversation.startswith("dm:"):
            place = "DM" if entry.visible_to is None else "only you"
        else:
            place = entry.conversation + (" thread" if entry.thread else "")
            if entry.visible_to is not None:
                place += ", only you"
        title = " (updated)" if entry.updated else ""
        lines = [f"[{place}] {self.service.bot_name}{title}:"]
        body = entry.message.sections or (entry.message.text,)
        for section in body:
            lines.extend(f"  {line}" for line in to_plain(section).splitlines())
        if entry.message.context:
            lines.append(f"  ({to_plain(entry.message.context)})")
        if entry.image_path:
            lines.append(f"  image saved to {entry.image_path}")
        if entry.message.buttons:
            where = self._where_of(entry)
            labels = []
            ref = MessageRef(Platform.CONSOLE, entry.conversation, entry.message_id)
            for button in entry.message.buttons:
                number = next(self._numbers)
                self.buttons[number] = PressableButton(button.action, button.value, where, ref)
                opens = f" <{button.url}>" if button.url else ""
                labels.append(f"[{number}] {button.label}{opens}")
            lines.append("  " + "  ".join(labels))
        self._print("\n".join(lines))
        if entry.message.form is not None:
            ref = MessageRef(Platform.CONSOLE, entry.conversation, entry.message_id)
            self._forms.append(PendingForm(entry.message.form, self._where_of(entry), ref))

    def _where_of(self, entry: ConsoleEntry) -> Address:
        if entry.conversation.startswith(("dm:", "home:")):
            return Address.direct(Platform.CONSOLE, self.handle)
        if entry.thread:
            return Address.in_thread(Platform.CONSOLE, entry.conversation, entry.thread)
        return Address.to_channel(Platform.CONSOLE, entry.conversation)

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
