"""The "add a link" form and the "what I learned" note (Slack modal, Teams card, console)."""

from __future__ import annotations

from bot.core.types import FieldKind, Form, FormField
from content_library.candidates import LinkCandidate
from content_library.canonical import InvalidLink, canonical_url
from content_library.messages import NOTE_FORM
from nudges.config import LADDER, Stage

ADD_FORM = "library.add"
ADD_COMMAND = "library add"
LEVELS = (("", "Anyone"), *((s.value, s.value.capitalize()) for s in LADDER))


def add_form() -> Form:
    return Form(
        id=ADD_FORM,
        title="Add a library link",
        submit_label="Add it",
        intro="One good link: people get it as the link of the week or as a personal pick.",
        fields=(
            FormField("url", "Link", max_length=2000, placeholder="https://…"),
            FormField("title", "Title", required=False, max_length=300),
            FormField(
                "topics",
                "Topics",
                required=False,
                max_length=300,
                hint="Separated by commas, e.g. video, admissions.",
            ),
            FormField("level", "Best for", FieldKind.CHOICE, required=False, options=LEVELS),
            FormField(
                "experiment",
                "Experiment to try",
                FieldKind.LONG_TEXT,
                required=False,
                max_length=500,
                placeholder="Try one reply on our page this week",
            ),
        ),
    )


def validate_add_form(values: dict[str, str]) -> dict[str, str]:
    return parse_add_form(values)[1]


def parse_add_form(values: dict[str, str]) -> tuple[LinkCandidate | None, dict[str, str]]:
    errors: dict[str, str] = {}
    try:
        url = canonical_url(values.get("url", ""))
    except InvalidLink as exc:
        errors["url"] = str(exc)
        url = ""
    level = values.get("level", "").strip().lower()
    if level and level not in Stage._value2member_map_:
        errors["level"] = "Choose one of " + ", ".join(s.value for s in LADDER) + "."
    topics = tuple(
        dict.fromkeys(
            t.strip().lower()[:40] for t in values.get("topics", "").split(",") if t.strip()
        )
    )[:10]
    if errors:
        return None, errors
    candidate = LinkCandidate(
        url=url,
        where="chat",
        title=values.get("title", "").strip()[:300] or None,
        topics=topics,
        level=Stage(level) if level else None,
        experiment=values.get("experiment", "").strip()[:500] or None,
    )
    return candidate, {}


SHARE_CHOICES = (("yes", "Yes, post it in the thread with my name"), ("no", "No, keep it to me"))


def note_form() -> Form:
    return Form(
        id=NOTE_FORM,
        title="What I learned",
        submit_label="Save",
        intro="What did you try, and what happened? A sentence or two is plenty.",
        fields=(
            FormField("note", "What I learned", FieldKind.LONG_TEXT, max_length=1500),
            FormField(
                "share", "Share it with the channel?", FieldKind.CHOICE, options=SHARE_CHOICES
            ),
        ),
    )


def validate_note_form(values: dict[str, str]) -> dict[str, str]:
    errors = {}
    if not values.get("note", "").strip():
        errors["note"] = "Write a sentence or two."
    if values.get("share") not in ("yes", "no"):
        errors["share"] = "Choose whether to share it."
    return errors
