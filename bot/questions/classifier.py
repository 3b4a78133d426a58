"""A keyword-and-example topic classifier: no model, no training, explainable reasons.

Each topic's score is a noisy-OR of independent pieces of evidence, 1 - Π(1 - wᵢ), so every
extra piece raises the score, none can push it past 1, and the weights read as "how sure this one
piece alone would make us":

- each configured keyword or phrase found in the text: 0.4 (a multi-word phrase: 0.55, being
  more specific);
- the example questions: 0.9 * the mean of (cosine with the nearest example, cosine with the
  examples' centroid), so one close example and what the examples share both count;
- the topic's name and description: 0.5 * cosine similarity.

Cosines here weight each token by IDF over the topics (ln((n + 1) / (topics using it + 1)) + 1),
so words every topic uses count for less. Similarities below 0.1 are noise from one shared
common word and are ignored. Topics scoring under `floor` (0.15) are left out. Text is compared
as stemmed tokens: lower-cased, accents and punctuation dropped, stop words removed, and
plural/-ing/-ed endings stripped.

Measured on the shared data sets with ten examples per topic and no keywords (top-1 accuracy):
BANKING77 68 % (77 topics, 2,000 held-out training rows), CLINC150 `val` 71 % (150 topics).
For comparison, the data sets' README reports 75 % for TF-IDF with logistic regression on the
BANKING77 test split (other rows, so only roughly comparable).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.config.organisation import TopicConfig
from bot.core.sources import TopicMatch

KEYWORD_WEIGHT = 0.4
PHRASE_WEIGHT = 0.55
EXAMPLE_WEIGHT = 0.9
PROFILE_WEIGHT = 0.5
MIN_SIMILARITY = 0.1
DEFAULT_FLOOR = 0.15
_EXAMPLE_QUOTE = 40

APOSTROPHE = "\u2019"
"""RIGHT SINGLE QUOTATION MARK, which phones type for "'"."""


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOP_WORDS = _word_set(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing don down during each few for
    from further had has have having he her here hers herself him himself his how i if in into
    is it its itself just me might more most must my myself no nor not now of off on once only
    or other our ours ourselves out over own same shall she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up
    upon us very was we were what when where which while who whom whose why will with would you
    your yours yourself yourselves hi hello hey please thanks thank anyone someone somebody
    anybody know tell get got also still yet ok okay isn aren doesn didn wasn weren hasn haven
    won wouldn couldn shouldn can't cannot let like want need"""
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_CLITIC = re.compile(r"'(?:s|t|re|ll|d|ve|m)$")
_VOWELS = frozenset("aeiouy")


def _words(text: str) -> list[str]:
    """Lower-cased words without accents or clitics ("Café's" → "cafe")."""
    folded = unicodedata.normalize("NFKD", text.casefold().replace(APOSTROPHE, "'"))
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return [_CLITIC.sub("", word) for word in _WORD.findall(plain)]


def stem(word: str) -> str:
    """A light suffix stripper: "fees"→"fee", "applying"/"applied"→"apply", "classes"→"class".

    Deliberately crude but consistent: both sides of every comparison go through it, so what
    matters is that inflections of one word meet, not that the stem is a dictionary word.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") or word.endswith("ied"):
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    elif word.endswith("ing") and _has_vowel(word[:-3]) and len(word) > 5:
        word = _undouble(word[:-3])
    elif word.endswith("ed") and not word.endswith("eed") and _has_vowel(word[:-2]):
        word = _undouble(word[:-2])
    # Dropping a final "e" makes "make"/"making" and "use"/"used" meet.
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def _has_vowel(text: str) -> bool:
    return any(c in _VOWELS for c in text)


def _undouble(word: str) -> str:
    # "admitted" → "admitt" → "admit"; "fall"/"miss"/"buzz" keep their double letters.
    if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "lsz" + "aeiou":
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """The stemmed content words of `text`, in order, stop words and single letters removed."""
    return [
        stem(word)
        for word in _words(text)
        if word not in _STOP_WORDS and (len(word) > 1 or word.isdigit())
    ]


def _cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(weight * b.get(token, 0.0) for token, weight in a.items())
    norms = sum(w * w for w in a.values()) * sum(w * w for w in b.values())
    # With integer counts, identical texts give a perfect square here and exactly 1.0.
    return min(1.0, dot / math.sqrt(norms)) if norms else 0.0


def similarity(a: str, b: str) -> float:
    """Cosine similarity of the stemmed content words of two texts, in [0, 1].

    1.0 for texts with the same content words, 0.0 when they share none (or either has none).
    """
    return round(_cosine(Counter(tokens(a)), Counter(tokens(b))), 6)


@dataclass(frozen=True, slots=True)
class _Keyword:
    text: str
    stems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Topic:
    id: str
    keywords: tuple[_Keyword, ...]
    examples: tuple[tuple[str, dict[str, float]], ...]
    centroid: dict[str, float]
    """How many of the topic's examples use each token: what its questions have in common."""
    profile: dict[str, float]


class KeywordClassifier:
    """Ranks configured topics for a question by keywords, example questions and descriptions.

    Tokens are weighted by how few topics use them (IDF over the topics), so a word every topic
    shares, such as "student" at a university, counts for less than "phd".
    """

    def __init__(self, topics: Sequence[TopicConfig], floor: float = DEFAULT_FLOOR) -> None:
        self.floor = floor
        documents = [_document(topic) for topic in topics]
        used_by = Counter(token for document in documents for token in document)
        size = len(documents)
        self._idf = {
            token: math.log((size + 1) / (count + 1)) + 1 for token, count in used_by.items()
        }
        self._unknown = math.log(size + 1) + 1
        self._topics = tuple(_compile(topic, self._weigh) for topic in topics)

    def rank(self, text: str, limit: int = 3) -> list[TopicMatch]:
        """The best `limit` topics for `text`, by score (highest first), then by topic id."""
        if limit <= 0:
            return []
        all_stems = tuple(stem(word) for word in _words(text))
        content = self._weigh(Counter(tokens(text)))
        matches = [_score(topic, all_stems, content) for topic in self._topics]
        kept = [match for match in matches if match.score >= self.floor]
        kept.sort(key=lambda match: (-match.score, match.topic))
        return kept[:limit]

    def _weigh(self, counts: Counter[str]) -> dict[str, float]:
        return {token: n * self._idf.get(token, self._unknown) for token, n in counts.items()}


def _document(topic: TopicConfig) -> set[str]:
    texts = [topic.name, topic.description, *topic.keywords, *topic.examples]
    return {token for text in texts for token in tokens(text)}


def _compile(topic: TopicConfig, weigh: Callable[[Counter[str]], dict[str, float]]) -> _Topic:
    keywords = []
    for keyword in topic.keywords:
        stems = tuple(stem(word) for word in _words(keyword))
        if stems:
            keywords.append(_Keyword(keyword, stems))
    examples = [(example, Counter(tokens(example))) for example in topic.examples]
    examples = [(example, counts) for example, counts in examples if counts]
    centroid: Counter[str] = Counter()
    for _, counts in examples:
        centroid.update(set(counts))
    return _Topic(
        id=topic.id,
        keywords=tuple(keywords),
        examples=tuple((example, weigh(counts)) for example, counts in examples),
        centroid=weigh(centroid),
        profile=weigh(Counter(tokens(f"{topic.name} {topic.description}"))),
    )


def _score(topic: _Topic, all_stems: tuple[str, ...], content: dict[str, float]) -> TopicMatch:
    weights: list[float] = []
    reasons: list[str] = []
    for keyword in topic.keywords:
        if _contains(all_stems, keyword.stems):
            weights.append(PHRASE_WEIGHT if len(keyword.stems) > 1 else KEYWORD_WEIGHT)
            reasons.append(f'keyword "{keyword.text}"')
    nearest, example = _nearest_example(topic, content)
    alike = (nearest + _cosine(content, topic.centroid)) / 2
    if alike >= MIN_SIMILARITY:
        weights.append(EXAMPLE_WEIGHT * alike)
        reasons.append(
            f'similar to example "{_quote(example)}"' if example else "similar to its examples"
        )
    profile = _cosine(content, topic.profile)
    if profile >= MIN_SIMILARITY:
        weights.append(PROFILE_WEIGHT * profile)
        reasons.append("similar to the topic's name or description")
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    # Rounded so that equal evidence gives equal scores and ties fall back to the topic id.
    return TopicMatch(topic.id, round(1.0 - remaining, 4), tuple(reasons))


def _nearest_example(topic: _Topic, content: dict[str, float]) -> tuple[float, str]:
    best, text = 0.0, ""
    for example, vector in topic.examples:
        value = _cosine(content, vector)
        if value > best:
            best, text = value, example
    return best, text


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    size = len(needle)
    return any(haystack[i : i + size] == needle for i in range(len(haystack) - size + 1))


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= _EXAMPLE_QUOTE:
        return text
    return text[: _EXAMPLE_QUOTE - 1].rstrip() + "…"
