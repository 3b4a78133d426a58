"""Cleaning public comments, telling questions from chatter, and spotting spam.

Everything here is pure and fast: it runs on every item a brand page hands us, and on text nobody
on staff wrote, so it must never raise on any `str` and must stay linear in the input size.

Mentions are neutralised by swapping the ASCII "@" for FULLWIDTH COMMERCIAL AT (U+FF20).
It reads the same to people, contains no invisible character (which we strip ourselves), and
neither Slack nor Teams treats it as a mention. NFKC folds it back to "@", so running `sanitise`
twice re-applies the swap and keeps the result harmless.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

ELLIPSIS = "…"
_APOSTROPHE = "\u2019"
"""RIGHT SINGLE QUOTATION MARK, which phones type for "'"."""
SAFE_AT = "\uff20"
"""FULLWIDTH COMMERCIAL AT: looks like "@" but pings nobody."""

# Public comments are short (Facebook allows 8,000 characters, YouTube 10,000): past this many
# characters the costly steps only waste time, and NFKC can make text up to 18 times longer.
_MIN_SCAN = 20_000
_SCAN_PER_LIMIT = 16


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# OWASP LLM01:2026 lists these for stripping at ingest; categories Cf/Cc/Cs are added in
# `_invisible_pattern`. Variation selectors (Mn) and the supplement block are used to smuggle
# data ("emoji smuggling"), hence their removal despite not being format characters.
_EXPLICIT_INVISIBLE = (
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x2069),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xE0000, 0xE007F),
    (0xE0100, 0xE01EF),
)
_KEPT_CONTROLS = frozenset({0x09, 0x0A})

_HTML_ELEMENTS = _word_set(
    """a abbr acronym address area article aside at audio b base basefont bdi bdo big blink
    blockquote body br button canvas caption center cite code col colgroup data datalist dd del
    details dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form frame
    frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins kbd label legend
    li link main map mark marquee menu meta meter nav nobr noscript object ol optgroup option
    output p param picture pre progress q rp rt ruby s samp section select small source span
    strike strong sub summary sup table tbody td template textarea tfoot th thead time title tr
    track tt u ul var video wbr"""
)
_BREAKING = frozenset({"br", "p", "div", "li", "tr", "hr", "h1", "h2", "h3", "h4", "h5", "h6"})
_BREAK_ALWAYS = frozenset({"br", "hr"})
_SPACING = frozenset({"td", "th"})

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)(?:\s[^<>]*)?/?>")
_DOCTYPE = re.compile(r"<!doctype\b[^<>]*>", re.IGNORECASE)
_RAW_OPEN = re.compile(r"<!--|<(script|style)\b", re.IGNORECASE)
_NEWLINES = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_HSPACE = re.compile(r"[^\S\n]{2,}|[^\S\n ]")
"""Runs of horizontal whitespace and single tabs or odd spaces; a lone " " is left as it is."""
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")
_SLACK_SPECIAL = re.compile(r"<([!@])([^<>|\s]{1,80})(?:\|([^<>]{0,80}))?>")
_BROADCAST = re.compile(r"(?<!\w)@(channel|here|everyone|group)(?!\w)", re.IGNORECASE)


def sanitise(text: str, limit: int = 2000) -> str:
    """Return `text` as safe, plain, normalised text of at most `limit` characters.

    HTML tags are dropped (line-breaking ones become newlines), entities are unescaped exactly
    once, invisible and control characters go, the text is NFKC-normalised, whitespace is
    collapsed (single newlines kept, at most one blank line), Slack/Teams pings are neutralised
    and an over-long text is cut on a word boundary with "…". `<`, `>` and `&` stay literal:
    the platform adapters escape them when they render.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    scan = max(_MIN_SCAN, _SCAN_PER_LIMIT * limit)
    # Invisible characters and runs of spaces are cheap to drop from the whole input, so padding
    # cannot push the real text out of the part we read.
    text = _HSPACE.sub(" ", _remove_invisible(text))[:scan]
    # Tags first, then entities: "&lt;b&gt;" must survive as the literal text "<b>".
    text = html.unescape(_strip_html(text))
    text = unicodedata.normalize("NFKC", _remove_invisible(text))[:scan]
    text = _remove_invisible(text)
    text = _collapse_whitespace(text)
    text = neutralise_mentions(text)
    return _cap(text, limit)


def neutralise_mentions(text: str) -> str:
    """Make Slack/Teams mention markup in `text` render as plain words that ping nobody.

    `<!channel>` becomes "channel" after a full-width at sign, `<@U123|ada>` becomes "ada"
    after one, and the broadcast words `@channel`, `@here`, `@everyone` and `@group` get the
    full-width at sign instead of "@". Other `@name` handles are left alone: adapters post
    without `link_names`, so they cannot ping.
    """
    text = _SLACK_SPECIAL.sub(_render_slack_special, text)
    return _BROADCAST.sub(lambda m: SAFE_AT + m.group(1), text)


def _render_slack_special(match: re.Match[str]) -> str:
    label = (match.group(3) or "").strip().lstrip("@")
    name = label or match.group(2).split("^")[0]
    return SAFE_AT + name


@cache
def _invisible_pattern() -> re.Pattern[str]:
    """A character class of everything `sanitise` removes, built once from the Unicode tables."""
    ranges = list(_EXPLICIT_INVISIBLE)
    # Every assigned Cf/Cc/Cs code point lives in planes 0, 1 and 14; scanning just those keeps
    # start-up cheap while following the Unicode version Python ships.
    for block in (range(0x20000), range(0xE0000, 0xE1000)):
        for code in block:
            if code not in _KEPT_CONTROLS and unicodedata.category(chr(code)) in {"Cf", "Cc", "Cs"}:
                ranges.append((code, code))
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    parts = "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in merged)
    return re.compile(f"[{parts}]+")


def _remove_invisible(text: str) -> str:
    # Line separators are controls too, but they carry meaning: turn them into "\n" first.
    return _invisible_pattern().sub("", _NEWLINES.sub("\n", text))


def _strip_html(text: str) -> str:
    text = _DOCTYPE.sub("", _strip_raw_blocks(text))
    return _TAG.sub(_replace_tag, text)


def _strip_raw_blocks(text: str) -> str:
    """Drop comments and script/style contents, in one linear pass.

    A regex with a lazy `.*?` would rescan to the end for every unterminated opener (quadratic
    on hostile input); like a browser, an unterminated block swallows the rest of the text.
    """
    lowered = text.lower()
    kept: list[str] = []
    position = 0
    while (match := _RAW_OPEN.search(text, position)) is not None:
        kept.append(text[position : match.start()])
        closer = "-->" if match.group(1) is None else f"</{match.group(1).lower()}"
        end = lowered.find(closer, match.end())
        if end < 0:
            return "".join(kept)
        position = end + len(closer)
        if closer != "-->":
            close_tag = lowered.find(">", position)
            position = len(text) if close_tag < 0 else close_tag + 1
    kept.append(text[position:])
    return "".join(kept)


def _replace_tag(match: re.Match[str]) -> str:
    name = match.group(2).lower()
    if name not in _HTML_ELEMENTS:
        # "<insert name here>" is text a person typed, not markup.
        return match.group(0)
    closing = match.group(1) == "/"
    if name in _BREAK_ALWAYS or (closing and name in _BREAKING):
        return "\n"
    if closing and name in _SPACING:
        return " "
    return ""


def _collapse_whitespace(text: str) -> str:
    text = _HSPACE.sub(" ", text)
    text = _SPACE_AROUND_NEWLINE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if not text[limit - 1].isspace():
        # Back off to the last space, unless that would throw away most of the text (one long
        # URL, or a language written without spaces).
        cut = max(head.rfind(" "), head.rfind("\n"))
        if cut > limit // 2:
            head = head[:cut]
    return head.rstrip(" \n,;:-") + ELLIPSIS


@dataclass(frozen=True, slots=True)
class QuestionSignal:
    """Whether a text asks something, how sure we are (0 to 1), and why."""

    is_question: bool
    confidence: float
    reasons: tuple[str, ...]


QUESTION_THRESHOLD = 0.5

# Weights of the independent signals; they combine as a noisy-OR, 1 - Π(1 - w), so that two weak
# signals together outweigh either alone and the result stays within [0, 1].
_W_QUESTION_MARK = 0.6
_W_WH_OPENER = 0.55
_W_AUX_OPENER = 0.5
_W_WEAK_OPENER = 0.3
_W_REQUEST = 0.55
_W_RHETORICAL_MARK = 0.2
_EXCLAIMED = 0.5
"""A sentence ending in "!" asks less: its opener counts at half weight."""

_WH = _word_set(
    """who whom whose what when where why how which
    qué cuándo dónde cómo quién quiénes cuál cuáles cuánto cuánta cuántos cuántas
    wer wen wem wessen wann wo woher wohin warum wieso weshalb wie welche welcher welches welchen
    welchem pourquoi quand où combien quel quelle quels quelles qui quoi lequel laquelle"""
)
_WH_PAIRS = frozenset({("por", "qué"), ("est", "ce")})
"""Two-word interrogatives: "por qué", "est-ce que"."""
_AUX = _word_set(
    """can could do does did is are was were will would should shall may might must have has
    am isn't aren't doesn't don't didn't can't couldn't won't wouldn't shouldn't wasn't weren't
    hasn't haven't kann können könnt gibt ist sind hat haben habt bietet bieten"""
)
_SUBJECTS = _word_set(
    """i you we they he she it this that these those there the a an my your our their his her its
    any anyone anybody someone somebody one ich man es das die der ihr sie du wir jemand"""
)
# "Do it now", "Don't miss this": imperatives, not questions.
_IMPERATIVE_OBJECTS = {
    "do": frozenset({"it", "this", "that"}),
    "don't": frozenset({"it", "this", "that", "the", "a", "an"}),
}
# Interrogatives that are also ordinary words in another language count only before these.
_CONDITIONAL_WH = {
    "comment": _word_set("faire puis peut est on je vous s ça ca se obtenir postuler"),
}
_PRAISE = (
    "cool|awesome|amazing|great|beautiful|lovely|nice|wonderful|cute|sweet|exciting|proud|"
    "incredible|fantastic|brilliant|gorgeous|stunning|perfect|funny|inspiring"
)
_RHETORICAL = re.compile(
    rf"^(?:what an? |how (?:{_PRAISE})\b|how (?:very |so )|guess what\b|am i the only\b|"
    r"who else (?:is|'s|loves|agrees|remembers|misses|thinks|can't wait)\b|"
    rf"isn'?t (?:it|this|that) (?:just )?(?:{_PRAISE})\b|"
    r"is(?:n'?t)? (?:this|that) (?:not )?the (?:best|greatest|cutest)\b)"
)
_REQUEST = re.compile(
    r"\b(?:i'?d like to know|i would like to know|(?:please|pls|plz) (?:tell|let) me|"
    r"(?:does )?any(?:one|body) know|(?:does )?any(?:one|body) have|looking for (?:info|details)|"
    r"(?:can|could) (?:someone|somebody|anyone|you|i|we)|would you|do you (?:have|know|offer)|"
    r"help me|need help|is there (?:a|any)(?: way)?\b|is it possible|wondering (?:if|whether)|"
    r"i wonder|want(?:ed)? to know|need to know|any (?:idea|ideas|info|update|news)\b|"
    r"let me know|please advise|i have a question|quick question|question about|"
    r"how (?:do|can|should) i|where (?:do|can|should) i|who (?:do|should) i|"
    r"(?:please|pls|plz|kindly) (?:help|explain|inform|check|look into|fix|confirm|clarify|"
    r"assist|reply|respond|contact)|tell me (?:about|how|what|why|where|when|if)|"
    r"(?:not sure|don't know|do not know|unsure|no idea) (?:how|what|where|why|when|whether|if)|"
    r"(?:^|[.!?] *)help *!)"
)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_SENTENCE = re.compile(
    "[\u00bf\u00a1]?[^.!?\uff1f\u00bf\u00a1\u061f\n;\u2026\u2753\u2754]+"
    "[.!?\uff1f\u061f;\u2026\u2753\u2754]*"
)
_MARKS = frozenset("?\uff1f\u061f\u2753\u2754")
"""Question marks: ASCII, full-width, Arabic, and the two question-mark emoji."""
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_CLAUSE = re.compile(r"[,:]| - ")
_GREETINGS = _word_set("hi hello hey dear hola bonjour hallo salut ok okay so")


def detect_question(text: str) -> QuestionSignal:
    """Decide whether a public comment asks something someone on staff could answer.

    Question marks (also full-width, Arabic and an opening "¿"), interrogative openers at the
    start of any sentence or clause, and request phrasing ("anyone know", "is there a way") each
    add confidence; exclamations such as "How cool is that?!" hardly count. Texts of fewer than
    three words that do not end with a question mark, and texts of only links or emoji, are
    never questions. `is_question` is `confidence >= 0.5`.
    """
    cleaned = _URL.sub(" ", text).strip()
    words = _WORD.findall(cleaned)
    if not words:
        reason = "only links" if _URL.search(text) else "no words"
        return QuestionSignal(False, 0.0, (reason,))
    asks = cleaned.rstrip().endswith(tuple(_MARKS))
    if len(words) < 3 and not asks:
        return QuestionSignal(False, 0.0, ("too short",))
    weights: list[float] = []
    reasons: list[str] = []
    sentence_weight, sentence_reasons = _best_sentence(cleaned)
    if sentence_weight:
        weights.append(sentence_weight)
    reasons += sentence_reasons
    request = _REQUEST.search(cleaned.lower().replace(_APOSTROPHE, "'"))
    if request:
        weights.append(_W_REQUEST)
        reasons.append(f'request phrasing "{request.group(0)}"')
    confidence = round(_noisy_or(weights), 4)
    return QuestionSignal(confidence >= QUESTION_THRESHOLD, confidence, tuple(reasons))


def _noisy_or(weights: list[float]) -> float:
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return 1.0 - remaining


def _best_sentence(text: str) -> tuple[float, list[str]]:
    """The strongest question signal of any one sentence, with its reasons."""
    best: tuple[float, list[str]] = (0.0, [])
    rhetorical = False
    for raw in _SENTENCE.findall(text):
        sentence = raw.strip()
        if not sentence:
            continue
        weight, reasons = _sentence_signal(sentence)
        rhetorical = rhetorical or "rhetorical" in reasons
        if weight > best[0]:
            best = (weight, reasons)
    if rhetorical and not best[1]:
        # Say why "Who else is excited!" scored nothing.
        return 0.0, ["rhetorical"]
    return best


def _sentence_signal(sentence: str) -> tuple[float, list[str]]:
    lowered = sentence.lower().replace(_APOSTROPHE, "'")
    body = lowered.lstrip("¿¡ \"'(")
    asked = lowered.lstrip(" \"'(").startswith("¿") or any(mark in sentence for mark in _MARKS)
    if _RHETORICAL.match(body):
        return (_W_RHETORICAL_MARK if asked else 0.0), ["rhetorical"]
    weights: list[float] = []
    reasons: list[str] = []
    if asked:
        weights.append(_W_QUESTION_MARK)
        reasons.append("question mark")
    opener_weight, opener = _opener(body)
    if opener_weight:
        exclaimed = sentence.endswith("!") and not asked
        weights.append(opener_weight * (_EXCLAIMED if exclaimed else 1.0))
        reasons.append(f'interrogative opener "{opener}"')
    return _noisy_or(weights), reasons


def _opener(sentence: str) -> tuple[float, str]:
    """The weight of the interrogative that opens the sentence or any of its clauses."""
    best: tuple[float, str] = (0.0, "")
    for clause in _CLAUSE.split(sentence):
        words = _WORD.findall(clause)
        while words and words[0] in _GREETINGS:
            words = words[1:]
        if not words:
            continue
        weight = _opener_weight(words)
        if weight > best[0]:
            best = (weight, words[0])
    return best


def _opener_weight(words: list[str]) -> float:
    first, following = words[0], (words[1] if len(words) > 1 else "")
    if first in _CONDITIONAL_WH:
        return _W_WH_OPENER if following in _CONDITIONAL_WH[first] else 0.0
    if first in _WH or (first, following) in _WH_PAIRS:
        return _W_WH_OPENER
    if first in _AUX:
        subject = following in _SUBJECTS and following not in _IMPERATIVE_OBJECTS.get(first, ())
        return _W_AUX_OPENER if subject else _W_WEAK_OPENER
    return 0.0


_LINK = re.compile(
    r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|net|org|ly|io|co|me|xyz|info|biz|link|site)/\S*",
    re.IGNORECASE,
)
_COIN = r"\b(?:crypto(?:currency)?|bitcoin|btc|forex|binary options?|usdt|nft)\b"
_PITCH = (
    r"\b(?:invest(?:ing|ment|or)?|profits?|earn(?:ing|ed)?|signals?|mining|giveaway|mentor|"
    r"recover(?:ed|y)?|guaranteed|double your|whatsapp|telegram)\b"
)
_SPAM_PHRASES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "crypto or forex promotion",
            # Customers of a bank may well ask about crypto; spam pairs it with a pitch.
            rf"{_COIN}.{{0,80}}?{_PITCH}|{_PITCH}.{{0,80}}?{_COIN}"
            r"|\b(?:investment plan|trading (?:expert|mentor|signals?))\b",
        ),
        (
            "asks to be messaged privately",
            r"(?<!you )(?<!you please )(?<!someone )(?<!anyone )"
            r"\b(?:dm|inbox|pm) me\b",
        ),
        ("click here", r"\bclick (?:here|the link|my link|link in bio)\b"),
        (
            "follower selling",
            r"\b(?:free|buy|cheap|real|get) (?:\d+k? )?(?:followers|likes|subs"
            r"|subscribers)\b",
        ),
        (
            "money promise",
            r"\b(?:earn|make|making|earning) (?:up to )?[$€£]\s?\d|"
            r"\b(?:earn|make) \d[\d,.]*k? ?(?:[$€£]|dollars|usd|euros?)",
        ),
        ("messenger contact", r"\b(?:whatsapp|telegram|viber|signal|wa\.me)\b\W{0,20}\+?\d"),
        (
            "promotion",
            r"\b(?:check (?:out )?my (?:profile|page|bio)|visit my (?:page|profile)"
            r"|work from home and|100% guaranteed|limited offer|promo code)\b",
        ),
    )
)
_PHONE = r"\+?\d[\d\s().-]{6,20}\d"
_PHONE_SOLICIT = re.compile(
    rf"\b(?:call|text|ring|sms|message|contact|reach)\s+(?:me|us)\b.{{0,20}}?{_PHONE}"
    rf"|{_PHONE}.{{0,20}}?\b(?:whatsapp|telegram|viber)\b",
    re.IGNORECASE,
)
_SOLICIT_WORD = re.compile(
    r"\b(?:call|text|ring|sms|message|contact|reach|whatsapp|telegram|viber)\b", re.IGNORECASE
)
_REPEATED = re.compile(r"(\S)\1{9,}")
_SHOUTING_MIN_LETTERS = 100
_SHOUTING_SHARE = 0.8
_MAX_LINKS = 3


def looks_like_spam(text: str) -> str | None:
    """Return why `text` looks like spam, or None when it looks like an ordinary comment.

    Flags more than three links, known spam phrasing (crypto/forex, "DM me", "click here",
    follower selling, "earn $", messenger numbers), phone-number solicitation, one character
    repeated ten or more times, and shouting (over 80 % capitals in a text of 100+ letters).
    "Can you DM me?" asked of the page is not spam.
    """
    links = len(_LINK.findall(text))
    if links > _MAX_LINKS:
        return f"{links} links"
    lowered = text.lower().replace(_APOSTROPHE, "'")
    for name, pattern in _SPAM_PHRASES:
        if pattern.search(lowered):
            return name
    # The phone pattern backtracks over digit runs; the cheap word test keeps it off most text.
    if _SOLICIT_WORD.search(text) and _PHONE_SOLICIT.search(text):
        return "phone number solicitation"
    if _REPEATED.search(text):
        return "a character repeated 10+ times"
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= _SHOUTING_MIN_LETTERS:
        capitals = sum(1 for c in letters if c.isupper())
        if capitals > _SHOUTING_SHARE * len(letters):
            return "mostly capitals"
    return None
