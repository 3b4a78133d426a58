"""The first commands every person has: help, whoami, and the evangelist's delivery status."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.core.permissions import Permission, allowed, require
from bot.core.types import Button, ButtonStyle, OutgoingMessage, Person, Role
from bot.delivery import outbox
from bot.services import forms
from bot.services.commands import Command, CommandContext, CommandRegistry
from bot.storage import audit
from bot.storage.models import IdentityRow, ProcessedEventRow

ROLE_INTROS: dict[Role, str] = {
    Role.EMPLOYEE: (
        "I help our people take part in the organisation's social media, a small step at a time. "
        "Now and then I may suggest one small thing to try, never at night or on holidays, and "
        "you can pause or stop that with one click."
    ),
    Role.EXPERT: (
        "When someone asks a question on our brand pages that you know about, I bring it to you: "
        "one question, one person at a time. You answer on the page *as yourself*, with a line "
        "saying how you are connected to us, and I make sure you get the credit."
    ),
    Role.EVANGELIST: (
        "You run the show: connect brand pages, define topics and who knows them, set up "
        "campaigns and the learning library, and keep an eye on the question queue and delivery."
    ),
    Role.LEADER: (
        "Every week you get a short digest of how your teams take part: questions answered and "
        "how fast, who stepped up (with their consent), and the trend, with a chart."
    ),
}


def register(registry: CommandRegistry) -> None:
    registry.command(
        Command("help", "what I can do for you", help_command, aliases=("hi", "hello", "?"))
    )
    registry.command(Command("whoami", "how I know you", whoami_command, aliases=("me",)))
    registry.command(
        Command(
            "status",
            "delivery health: messages waiting, failed, people who blocked the bot",
            status_command,
            permission=Permission.VIEW_DELIVERY_STATUS,
        )
    )
    registry.action("help", help_command)
    registry.action("whoami", whoami_command)
    registry.action("dismiss", dismiss_action)
    forms.register(registry)


def first_name(person: Person) -> str:
    """How to greet someone; never by a raw platform id when we do not know their name."""
    if not person.name or any(person.name == i.external_id for i in person.identities):
        return "there"
    return person.name.split()[0]


def help_message(
    person: Person, registry: CommandRegistry, bot_name: str = "Evangelist"
) -> OutgoingMessage:
    first = first_name(person)
    roles = [r for r in (Role.EXPERT, Role.LEADER, Role.EVANGELIST) if person.has_role(r)]
    intro = [ROLE_INTROS[Role.EMPLOYEE], *(ROLE_INTROS[r] for r in roles)]
    commands = [
        f"- `{c.name}`{(' ' + c.usage) if c.usage else ''}: {c.summary}"
        for c in registry.listed()
        if c.permission is None or allowed(person, c.permission)
    ]
    role_names = ", ".join(r.value for r in sorted(person.roles, key=_role_order))
    return OutgoingMessage(
        text=f"Hi {first}! Here is what {bot_name} can do for you.",
        sections=(
            f"**Hi {first}! I'm {bot_name}.**",
            *intro,
            "**Things you can ask me** (as `/evangelist <command>`, by mentioning me, or in a "
            "direct message):\n" + "\n".join(commands),
        ),
        buttons=(Button("whoami", "How do you know me?"),),
        context=f"Your roles: {role_names}",
    )


def _role_order(role: Role) -> int:
    return list(Role).index(role)


async def help_command(ctx: CommandContext) -> None:
    name = ctx.organisation.organisation.bot_name if ctx.organisation else "Evangelist"
    ctx.reply(help_message(ctx.person, ctx.registry, name))


async def whoami_command(ctx: CommandContext) -> None:
    person = ctx.person
    local = ctx.now.astimezone(ZoneInfo(person.timezone))
    lines = [
        f"- Name: {person.name}",
        f"- Roles: {', '.join(r.value for r in sorted(person.roles, key=_role_order))}",
        f"- Time zone: {person.timezone} (it is {local:%A %H:%M} for you now)",
    ]
    if person.email:
        lines.append(f"- Email: {person.email}")
    if person.teams:
        lines.append(f"- Teams: {', '.join(person.teams)}")
    labels = {"slack": "Slack user", "teams": "Teams user", "console": "Console handle"}
    for identity in person.identities:
        if identity.platform in labels:
            lines.append(f"- {labels[identity.platform]}: `{identity.external_id}`")
    sections = [f"**This is how I know you, {first_name(person)}:**", "\n".join(lines)]
    if not person.known:
        sections.append(
            f"You are not in the organisation file yet, so I treat you as an employee in "
            f"{person.timezone}. "
            "Ask your evangelist to add you (with your time zone) so I never message you at night."
        )
    else:
        sections.append(f"I know you from the organisation file as `{person.key}`.")
    ctx.reply(
        OutgoingMessage(text=f"This is how I know you, {person.name}.", sections=tuple(sections))
    )


async def status_command(ctx: CommandContext) -> None:
    require(ctx.person, Permission.VIEW_DELIVERY_STATUS)
    numbers = await outbox.stats(ctx.session, ctx.now)
    blocked = await ctx.session.scalar(
        select(func.count()).select_from(IdentityRow).where(IdentityRow.blocked_at.is_not(None))
    )
    recent = await ctx.session.scalar(
        select(func.count())
        .select_from(ProcessedEventRow)
        .where(ProcessedEventRow.received_at >= ctx.now - timedelta(hours=24))
    )
    audit.record(ctx.session, at=ctx.now, actor=ctx.person, action="status.view")
    age = int(numbers["oldest_pending_age_seconds"])
    lines = [
        f"- Messages waiting to be sent: {int(numbers['pending'])}"
        + (f" (oldest {age}s)" if numbers["pending"] else ""),
        f"- Messages that failed for good: {int(numbers['failed'])}",
        f"- Messages delivered: {int(numbers['sent'])}",
        f"- People who blocked the bot: {blocked or 0}",
        f"- Events handled in the last 24 hours: {recent or 0}",
    ]
    ctx.reply(
        OutgoingMessage(text="Delivery status", sections=("**Delivery status**", "\n".join(lines)))
    )


async def dismiss_action(ctx: CommandContext) -> None:
    ctx.reply("No problem. Say `help` whenever you want to know what I do.")


def welcome_message(person: Person, channel: str, bot_name: str) -> OutgoingMessage:
    first = first_name(person)
    return OutgoingMessage(
        text=f"Welcome, {first}! I'm {bot_name}.",
        sections=(
            f"**Welcome to {channel}, {first}!** I'm {bot_name}, the bot that helps us take part "
            "in our social media together.",
            "I will rarely message you, never at night or on holidays, and you can pause me any "
            "time. Want to see what I do?",
        ),
        buttons=(
            Button("help", "Show me", style=ButtonStyle.PRIMARY),
            Button("dismiss", "Maybe later"),
        ),
    )
