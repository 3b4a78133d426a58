from __future__ import annotations

import csv
import random
import re
import time
import unicodedata
from pathlib import Path

import pytest

from bot.questions.text import (
    ELLIPSIS,
    SAFE_AT,
    QuestionSignal,
    detect_question,
    looks_like_spam,
    neutralise_mentions,
    sanitise,
)

BANKING77 = Path("/work/shared/datasets/banking77/train.csv")

# --- sanitise -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<p>Hello&nbsp;<b>world</b></p><p>Second &amp; third</p>", "Hello world\nSecond & third"),
        ("line one<br>line two<br/>three<BR />four", "line one\nline two\nthree\nfour"),
        ("<div>a</div><div>b</div>", "a\nb"),
        ("<table><tr><td>a</td><td>b</td></tr></table>", "a b"),
        ('<a href="https://x.test/?a=1&amp;b=2">the link</a>', "the link"),
        ("<script>alert('x')</script>kept<style>p{}</style>", "kept"),
        ("before<!-- hidden -->after", "beforeafter"),
        ("<!DOCTYPE html><html><body>Hi</body></html>", "Hi"),
        # Entities are unescaped exactly once: the escaped tag survives as text.
        ("&lt;b&gt;bold&lt;/b&gt; &amp;amp; &#39;q&#39; &#x1F600;", "<b>bold</b> &amp; 'q' 😀"),
        # Angle brackets a person typed stay: adapters escape them when they render.
        ("I <3 this, a<b and <insert name here>", "I <3 this, a<b and <insert name here>"),
        ("Teams <at>Ada</at> mention", "Teams Ada mention"),
        ("unterminated <script>everything after is code", "unterminated"),
    ],
)
def test_sanitise_html(raw: str, clean: str) -> None:
    assert sanitise(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("zero\u200bwidth\u200c\u200d\u2060 joiners\ufeff", "zerowidth joiners"),
        ("tag\U000e0049\U000e0047\U000e004e\U000e004fblock", "tagblock"),
        ("bidi \u202eevil\u202c and \u2066isolate\u2069", "bidi evil and isolate"),
        ("heart \u2764\ufe0f smuggled\U000e0100\U000e0101", "heart \u2764 smuggled"),
        ("soft\u00adhyphen and \x00null\x07bell", "softhyphen and nullbell"),
        ("zero-width from an entity: a&#8203;b&#x2060;c", "zero-width from an entity: abc"),
        # Stripped before the tags are read, so the hidden script goes too.
        ("<scr\u200bipt>alert(1)</script>after", "after"),
    ],
)
def test_sanitise_removes_invisible_characters(raw: str, clean: str) -> None:
    assert sanitise(raw) == clean


def test_sanitise_normalises_and_collapses_whitespace() -> None:
    full_width = "\uff46\uff55\uff4c\uff4c\u3000\uff57\uff49\uff44\uff54\uff48"
    assert sanitise(f"{full_width} ﬁle ①") == "full width file 1"
    assert sanitise("  a \t  b\r\nc\rd\u2028e  ") == "a b\nc\nd\ne"
    assert sanitise("para one\n\n\n\n  \n para two\n \nthree") == "para one\n\npara two\n\nthree"
    assert sanitise("   \n\t \u200b ") == ""


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<!channel> look", f"{SAFE_AT}channel look"),
        ("<!here|here> and <!everyone>", f"{SAFE_AT}here and {SAFE_AT}everyone"),
        ("ping <@U012AB3CD> and <@U99|ada>", f"ping {SAFE_AT}U012AB3CD and {SAFE_AT}ada"),
        ("<!subteam^S123|@devs> now", f"{SAFE_AT}devs now"),
        (
            "hey @here, @Channel and @EVERYONE!",
            f"hey {SAFE_AT}here, {SAFE_AT}Channel and {SAFE_AT}EVERYONE!",
        ),
        (
            "full-width \uff20channel is folded, then neutralised",
            f"full-width {SAFE_AT}channel is folded, then neutralised",
        ),
        # Not mentions: an e-mail address, a handle, a longer word.
        ("mail me at me@here.com, @ada or @channels", "mail me at me@here.com, @ada or @channels"),
        ("&lt;!channel&gt;", f"{SAFE_AT}channel"),
    ],
)
def test_sanitise_neutralises_pings(raw: str, clean: str) -> None:
    assert sanitise(raw) == clean


def test_neutralised_text_stays_neutral_when_sanitised_again() -> None:
    once = sanitise("<!channel> @here")
    assert sanitise(once) == once == f"{SAFE_AT}channel {SAFE_AT}here"
    assert neutralise_mentions("@group") == f"{SAFE_AT}group"


def test_sanitise_cuts_on_a_word_boundary() -> None:
    assert sanitise("word " * 100, limit=23) == "word word word word" + ELLIPSIS
    assert sanitise("alpha beta, gamma delta", limit=17) == "alpha beta" + ELLIPSIS
    # Cut exactly where a word ends.
    assert sanitise("abc def ghi", limit=8) == "abc def" + ELLIPSIS
    # One long token: better cut mid-token than lose it all.
    assert sanitise("x" * 50, limit=10) == "x" * 9 + ELLIPSIS
    assert sanitise("short", limit=5) == "short"
    assert sanitise("shorts", limit=1) == ELLIPSIS
    with pytest.raises(ValueError):
        sanitise("text", limit=0)


def test_sanitise_huge_input_is_fast_and_capped() -> None:
    chunk = "<b>hello</b> &amp; " + "x" * 40 + "\u200b \n"
    huge = chunk * (1_000_000 // len(chunk))
    started = time.perf_counter()
    result = sanitise(huge)
    assert time.perf_counter() - started < 1.0
    # 40 lines of 49 characters, then the cut backs off to the space before the next "xxx…".
    assert result == ("hello & " + "x" * 40 + "\n") * 40 + "hello &" + ELLIPSIS
    # Padding cannot push the text out of the part that is read.
    assert sanitise("\u200b" * 1_000_000 + " " * 1_000_000 + "hi") == "hi"


_FUZZ_ALPHABET = (
    "abc XYZ 019 <>&;#/!@|^?¿.\n\t\r"
    "\u200b\u200d\u202e\u2066\ufeff\ufe0f\u00ad\x00\x1b\x7f\x85\u2028"
    "éß漢字ﷺ\uff20\uff1c\uff1e\uff46①ﬁ😀❤"
    "\ud800\udfff\U000e0041\U000e0100\U0010ffff"
)
_FUZZ_PIECES = (
    "<p>",
    "</p>",
    "<br>",
    "&amp;",
    "&#",
    "&#x",
    "<!--",
    "<script>",
    "<!channel>",
    "@here",
)


_PING = re.compile(r"<!(?:channel|here|everyone)|(?<!\w)@(?:channel|here|everyone)(?!\w)")


def test_sanitise_never_raises_on_random_text() -> None:
    rng = random.Random(20260401)
    for _ in range(1500):
        parts = [
            rng.choice(_FUZZ_PIECES) if rng.random() < 0.2 else rng.choice(_FUZZ_ALPHABET)
            for _ in range(rng.randint(0, 120))
        ]
        if rng.random() < 0.1:
            parts.append("".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(30)))
        limit = rng.randint(1, 80)
        result = sanitise("".join(parts), limit)
        assert len(result) <= limit
        result.encode("utf-8")  # no lone surrogates survive
        assert not any(
            unicodedata.category(c) in {"Cf", "Cc", "Cs"} and c not in "\n\t" for c in result
        )
        assert not _PING.search(result), result
        assert "\t" not in result and "  " not in result and "\n\n\n" not in result


# --- detect_question ------------------------------------------------------------------------

QUESTIONS = [
    "When is the application deadline for September?",
    "What are the tuition fees for international students?",
    "Is the library open on Sundays?",
    "Does anyone know if the open day is still on",
    "Hi, how do I apply for a scholarship",
    "I'd like to know more about the nursing course",
    "Please tell me where to send my documents",
    "Can someone help me with my login",
    "Is there a way to change my course after enrolment",
    "I was wondering if you accept IB results",
    "Price?",
    "Deadline???",
    "Who do I contact about accommodation",
    "Quick question: do you offer part-time MBAs",
    "Congrats to the team! Will the recording be online?",
    "Loved the talk. Where can I find the slides",
    "any update on the results",
    "Looking for info on PhD funding in chemistry",
    "I've been charged twice and I don't know why",
    "¿Cuándo empieza el semestre?",
    "Wann beginnt das Semester",
    "Comment postuler au programme",
    "Où se trouve le campus",
    "Est-ce que les cours sont en anglais",
    "ok so are the dorms mixed",
]
NOT_QUESTIONS = [
    "Great job!",
    "Congrats!!",
    "Love this ❤️",
    "How cool is that?!",
    "What a day! So proud of our graduates",
    "Who else is excited for graduation!",
    "Amazing campus, can't wait to visit!",
    "Well done everyone",
    "🔥🔥🔥",
    "https://example.com/watch?v=123",
    "Thanks",
    "Comment below and share!",
    "Will be there!",
    "Isn't this amazing?",
    "Best university ever",
    "So happy to be part of this community",
    "I graduated in 2010 and loved every minute",
    "Do it now",
    "Don't miss this event",
    "Thank you for the info, it was very helpful",
    "The open day was great, thanks to all staff",
    "Nice",
    "👏👏 https://example.com/photos",
]


@pytest.mark.parametrize("text", QUESTIONS)
def test_questions_are_detected(text: str) -> None:
    signal = detect_question(text)
    assert signal.is_question, signal
    assert 0.5 <= signal.confidence <= 1.0


@pytest.mark.parametrize("text", NOT_QUESTIONS)
def test_chatter_is_not_a_question(text: str) -> None:
    signal = detect_question(text)
    assert not signal.is_question, signal
    assert 0.0 <= signal.confidence < 0.5


def test_question_signal_values_and_reasons() -> None:
    assert detect_question("When is the application deadline?") == QuestionSignal(
        True, 0.82, ("question mark", 'interrogative opener "when"')
    )
    assert detect_question("Price?") == QuestionSignal(True, 0.6, ("question mark",))
    assert detect_question("I was wondering if you accept IB results") == QuestionSignal(
        True, 0.55, ('request phrasing "wondering if"',)
    )
    assert detect_question("Great job!") == QuestionSignal(False, 0.0, ("too short",))
    assert detect_question("🔥🔥") == QuestionSignal(False, 0.0, ("no words",))
    assert detect_question("https://x.test/?q=1") == QuestionSignal(False, 0.0, ("only links",))
    assert detect_question("How cool is that?!") == QuestionSignal(False, 0.2, ("rhetorical",))
    assert detect_question("Who else is excited!") == QuestionSignal(False, 0.0, ("rhetorical",))


def test_confidence_orders_the_evidence() -> None:
    def confidence(text: str) -> float:
        return detect_question(text).confidence

    both = confidence("How do I apply for the course?")
    mark_and_opener = confidence("When does the course start?")
    mark_only = confidence("The course starts in May?")
    request_only = confidence("Please tell me about the course")
    nothing = confidence("The course starts in May")
    assert both > mark_and_opener > mark_only > request_only > nothing == 0.0


def test_detect_question_on_public_banking_questions() -> None:
    # A sanity check against questions real customers wrote (BANKING77, CC BY 4.0), when the
    # shared data set is on this machine. Many rows are complaints without a question, which
    # is why the bar is at 70 %.
    if not BANKING77.exists():
        pytest.skip("the shared BANKING77 data set is not here")
    with BANKING77.open(encoding="utf-8") as file:
        rows = [row["text"] for _, row in zip(range(500), csv.DictReader(file), strict=False)]
    detected = sum(detect_question(text).is_question for text in rows)
    assert detected / len(rows) >= 0.7
    assert not any(looks_like_spam(text) for text in rows)


# --- looks_like_spam ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("see http://a.test http://b.test www.c.test d.ly/x e.com/y", "5 links"),
        ("Invest in bitcoin with our trading expert", "crypto or forex promotion"),
        ("I made huge profits with crypto thanks to Mrs Anna", "crypto or forex promotion"),
        ("Recover your lost BTC fast", "crypto or forex promotion"),
        ("Double your bitcoin in a week", "crypto or forex promotion"),
        ("Earn money from home, DM me for details", "asks to be messaged privately"),
        ("inbox me now", "asks to be messaged privately"),
        ("Click here to claim your prize", "click here"),
        ("Get free followers today", "follower selling"),
        ("Buy 10k followers cheap", "follower selling"),
        ("I earn $500 a day from home", "money promise"),
        ("Make 5000 dollars weekly", "money promise"),
        ("WhatsApp +44 7700 900123 for info", "messenger contact"),
        ("Call me on 07700 900123 for a great deal", "phone number solicitation"),
        ("Reach us at (555) 010-9999 via telegram", "phone number solicitation"),
        ("Check out my profile for more", "promotion"),
        ("Sooooooooooo good", "a character repeated 10+ times"),
        ("WOW" + "!" * 12, "a character repeated 10+ times"),
        (
            "BEST DEAL EVER ON ALL OUR PRODUCTS, VISIT OUR SHOP TODAY AND TOMORROW "
            "AND SAVE BIG ON EVERYTHING YOU WANT AND NEED FOR THE WHOLE FAMILY",
            "mostly capitals",
        ),
    ],
)
def test_spam_is_recognised(text: str, reason: str) -> None:
    assert looks_like_spam(text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "When is the application deadline?",
        "Can you DM me the form please?",
        "Could you please DM me the details?",
        "Why can't I buy crypto in the app?",
        "I spoke to a manager about my bitcoin transfer",
        "My order 12345678 hasn't arrived, what should I do?",
        "I called 0800 123 4567 and nobody answered",
        "see http://a.test http://b.test www.c.test",
        "WHEN IS THE DEADLINE FOR THE SEPTEMBER INTAKE?",
        "Hahahaha that's so true",
        "",
    ],
)
def test_ordinary_comments_are_not_spam(text: str) -> None:
    assert looks_like_spam(text) is None
