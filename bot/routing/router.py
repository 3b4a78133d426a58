"""The topic router: which topic a public question is about, or that no topic covers it.

Two models, trained together from the same examples, vote (a product of experts):

1. **Sentence model.** A softmax regression on sentence embeddings (all-MiniLM-L6-v2 by
   default). It carries most of the accuracy: it knows "card hasn't arrived" and "still
   waiting for my card" mean the same.
2. **Evidence model.** Three similarities per topic, each with one learned coefficient shared
   by all topics: the question's TF-IDF cosine with the topic's examples (words the topic
   uses), its embedding cosine with the topic's centroid, and with the topic's nearest
   example. On training rows these are computed leaving the row itself out, so the learned
   coefficients say how far each similarity can be trusted on unseen questions. It adds the
   exact-word evidence the embeddings blur and is what lets ten examples per topic go far.

Without an encoder (the lexical router) the sentence model is replaced by a softmax regression
on the TF-IDF features and the evidence model keeps only the word similarity.

The probabilities are those of a regularised softmax. A question goes to the fallback owner
(out of scope) when the best topic is the out-of-scope class (rows the organisation marked as
"no topic covers this"), when its probability is under `min_confidence`, or, with an encoder,
when no example of any topic is even loosely similar (`min_similarity`).

"Not me — wrong topic" is a negative example: the sentence model learns -ln(1 - p(topic)) for
it, which pushes that question (and ones like it) away from the topic without saying where.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.core.sources import TopicMatch
from bot.routing.encoders import Encoder
from bot.routing.lexical import SparseRows, Vectoriser
from bot.routing.softmax import Problem, Weights, fit, softmax

OUT_OF_SCOPE = "__out_of_scope__"


@dataclass(frozen=True)
class Example:
    """A training row: `text` is about `topic` (None: about nothing we cover).

    `negative`: the text is NOT about `topic` (a wrong-topic decline).
    """

    text: str
    topic: str | None
    weight: float = 1.0
    negative: bool = False
    origin: str = "example"


@dataclass(frozen=True)
class Decision:
    topic: str | None
    """None: out of scope, the fallback owner's."""
    confidence: float
    ranked: tuple[tuple[str, float], ...]
    """In-scope topics by probability, best first."""
    reason: str


@dataclass(frozen=True)
class Pull:
    topic: str
    probability: float
    examples: tuple[tuple[str, float], ...]
    """The topic's training examples most similar to the question, with their similarity."""
    evidence: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RouterSettings:
    min_confidence: float = 0.25
    min_similarity: float = 0.15
    regularisation: float = 10.0
    """C: larger trusts the training data more."""
    dense_scale: float = 2.5
    blend: float = 0.5
    """How much the evidence model's log-probabilities count next to the sentence model's."""


class TopicRouter:
    """Trained from examples; then `decide` (with the out-of-scope call) or `rank` (the port)."""

    def __init__(
        self, encoder: Encoder | None, settings: RouterSettings | None = None, name: str = ""
    ) -> None:
        self.encoder = encoder
        self.settings = settings or RouterSettings()
        self.name = name or ("semantic" if encoder is not None else "lexical")
        self.topics: list[str] = []
        self.fit_seconds = 0.0
        self._vectoriser = Vectoriser()
        self._sentence: Weights | None = None
        self._evidence: Weights | None = None
        self._texts: list[str] = []
        self._labels = np.zeros(0, dtype=np.int64)
        self._embeddings: np.ndarray | None = None
        self._word_sums = np.zeros((0, 0), dtype=np.float32)
        self._word_norms = np.zeros(0, dtype=np.float32)
        self._centroids: np.ndarray | None = None
        self._oos: int | None = None
        self._rows: SparseRows | None = None
        self._word_sums_t = np.zeros((0, 0), dtype=np.float32)
        self._centroid_norms = np.zeros(0, dtype=np.float32)
        self._grouped = np.zeros((0, 0), dtype=np.float32)
        self._group_of = np.zeros(0, dtype=np.int64)
        self._bounds = np.zeros(1, dtype=np.int64)

    @property
    def trained(self) -> bool:
        return self._sentence is not None

    # -- training ---------------------------------------------------------------------------

    def fit(self, examples: Sequence[Example]) -> TopicRouter:
        started = time.perf_counter()
        usable = [e for e in examples if e.text.strip()]
        positives = [e for e in usable if not e.negative]
        topics = sorted({e.topic for e in positives if e.topic is not None})
        if not topics:
            raise ValueError("the router needs at least one example of one topic")
        labels = [*topics, OUT_OF_SCOPE] if any(e.topic is None for e in positives) else topics
        index = {label: i for i, label in enumerate(labels)}
        usable = [e for e in usable if (e.topic or OUT_OF_SCOPE) in index]
        y = np.array([index[e.topic or OUT_OF_SCOPE] for e in usable], dtype=np.int64)
        negative = np.array([e.negative for e in usable], dtype=bool)
        weights = np.array([e.weight for e in usable], dtype=np.float64)
        texts = [e.text for e in usable]
        k = len(labels)

        self._vectoriser = Vectoriser().fit(
            t for t, n in zip(texts, negative, strict=True) if not n
        )
        rows = self._vectoriser.transform(texts)
        embeddings = self.encoder.encode(texts) if self.encoder is not None else None
        l2 = 1.0 / (self.settings.regularisation * max(float(weights.sum()), 1.0))

        pos = ~negative
        pos_idx = np.flatnonzero(pos)
        self._texts = [texts[i] for i in pos_idx]
        self._labels = y[pos]
        self._rows = rows.take(list(pos_idx))
        self._embeddings = embeddings[pos] if embeddings is not None else None
        self._word_sums, self._word_norms = _class_sums(self._rows, self._labels, k)
        if embeddings is not None:
            self._centroids = np.zeros((k, embeddings.shape[1]), dtype=np.float32)
            np.add.at(self._centroids, self._labels, embeddings[pos])
            self._centroid_norms = np.linalg.norm(self._centroids, axis=1)
            self._index_examples()
        self._word_sums_t = np.ascontiguousarray(self._word_sums.T)

        if embeddings is not None:
            self._sentence = fit(
                Problem(embeddings * self.settings.dense_scale, None, y, negative, weights, k),
                l2=l2,
            )
        else:
            self._sentence = fit(Problem(None, rows, y, negative, weights, k), l2=l2, max_iter=150)
        evidence = self._evidence_of_training()
        self._evidence = fit(
            Problem(
                None,
                None,
                self._labels,
                np.zeros(len(self._labels), bool),
                weights[pos],
                k,
                evidence,
            ),
            l2=l2,
        )
        self.topics = labels
        self._oos = index.get(OUT_OF_SCOPE)
        self.fit_seconds = time.perf_counter() - started
        return self

    def _evidence_of_training(self) -> np.ndarray:
        """The similarity features of every training row, leaving the row out of its topic."""
        assert self._rows is not None
        n = len(self._labels)
        at = np.arange(n)
        own_label = self._labels
        dots = self._rows.dot(self._word_sums_t)
        own = dots[at, own_label]
        self_sq = _row_norms_sq(self._rows)
        norms = np.tile(np.sqrt(self._word_norms), (n, 1))
        norms[at, own_label] = np.sqrt(
            np.maximum(self._word_norms[own_label] - 2 * own + self_sq, 0)
        )
        dots[at, own_label] = own - self_sq
        features = [_safe_divide(dots, norms)]
        if self._embeddings is not None and self._centroids is not None:
            e = self._embeddings
            c_dots = e @ self._centroids.T
            c_sq = (self._centroids * self._centroids).sum(axis=1)
            c_norms = np.tile(np.sqrt(c_sq), (n, 1))
            c_own = c_dots[at, own_label]
            c_norms[at, own_label] = np.sqrt(np.maximum(c_sq[own_label] - 2 * c_own + 1.0, 0))
            c_dots[at, own_label] = c_own - 1.0
            features.append(_safe_divide(c_dots, c_norms))
            features.append(self._nearest(e, leave_out=True))
        return np.stack(features, axis=2).astype(np.float32)

    def _index_examples(self) -> None:
        """Examples grouped by topic, so the nearest example per topic is one pass."""
        assert self._embeddings is not None
        k = len(self._word_norms)
        order = np.argsort(self._labels, kind="stable")
        self._grouped = np.ascontiguousarray(self._embeddings[order].T)
        self._group_of = np.argsort(order)
        self._bounds = np.searchsorted(self._labels[order], np.arange(k + 1))

    def _nearest(self, queries: np.ndarray, *, leave_out: bool = False) -> np.ndarray:
        """Per topic, the highest embedding cosine with one of its examples (-1 if none).

        With `leave_out`, `queries` are the training rows themselves and each row's own
        similarity is ignored.
        """
        k = len(self._word_norms)
        out = np.full((len(queries), k), -1.0, dtype=np.float32)
        starts = self._bounds[:-1]
        present = self._bounds[1:] > starts
        for start in range(0, len(queries), 1024):
            sims = queries[start : start + 1024] @ self._grouped
            if leave_out:
                positions = self._group_of[start : start + len(sims)]
                sims[np.arange(len(sims)), positions] = -1.0
            block = np.maximum.reduceat(sims, starts[present], axis=1)
            out[start : start + len(sims), np.flatnonzero(present)] = block
        return out

    # -- prediction -------------------------------------------------------------------------

    def probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Topic probabilities per text, and the nearest-example similarities (with an encoder)."""
        if self._sentence is None or self._evidence is None:
            raise RuntimeError("the router has not been trained")
        rows = self._vectoriser.transform(texts)
        embeddings = self.encoder.encode(texts) if self.encoder is not None else None
        if embeddings is not None:
            sentence = self._sentence.logits(embeddings * self.settings.dense_scale, None)
        else:
            sentence = self._sentence.logits(None, rows)
        word = _safe_divide(rows.dot(self._word_sums_t), np.sqrt(self._word_norms)[None, :])
        features = [word]
        nearest = None
        if embeddings is not None and self._centroids is not None:
            features.append(
                _safe_divide(embeddings @ self._centroids.T, self._centroid_norms[None, :])
            )
            nearest = self._nearest(embeddings)
            features.append(nearest)
        evidence = self._evidence.logits(None, None, np.stack(features, axis=2))
        combined = _log_softmax(sentence) + self.settings.blend * _log_softmax(evidence)
        return softmax(combined), nearest

    def decide(self, text: str) -> Decision:
        return self.decide_many([text])[0]

    def decide_many(self, texts: Sequence[str]) -> list[Decision]:
        probabilities, nearest = self.probabilities(texts)
        return [
            self._decision(probabilities[i], None if nearest is None else nearest[i])
            for i in range(len(texts))
        ]

    def _decision(self, p: np.ndarray, nearest: np.ndarray | None) -> Decision:
        order = np.argsort(-p, kind="stable")
        ranked = tuple((self.topics[i], round(float(p[i]), 4)) for i in order if i != self._oos)
        best = int(order[0])
        confidence = float(p[best])
        if best == self._oos:
            return Decision(None, confidence, ranked, "like questions no topic covers")
        if confidence < self.settings.min_confidence:
            return Decision(None, confidence, ranked, "no topic is a confident match")
        if nearest is not None and float(nearest[best]) < self.settings.min_similarity:
            return Decision(None, confidence, ranked, "unlike every example of every topic")
        return Decision(self.topics[best], confidence, ranked, "")

    def rank(self, text: str, limit: int = 3) -> list[TopicMatch]:
        """The TopicClassifier port: in-scope topics only, none when out of scope."""
        if limit <= 0:
            return []
        decision = self.decide(text)
        if decision.topic is None:
            return []
        reason = f"router {self.name}: {decision.confidence:.0%} sure"
        return [TopicMatch(topic, score, (reason,)) for topic, score in decision.ranked[:limit]]

    def explain(self, text: str, limit: int = 3, examples: int = 3) -> tuple[Decision, list[Pull]]:
        """The top topics and, for each, the training examples that pulled hardest."""
        decision = self.decide(text)
        query_rows = self._vectoriser.transform([text])
        query = self.encoder.encode([text])[0] if self.encoder is not None else None
        pulls: list[Pull] = []
        for topic, probability in decision.ranked[:limit]:
            t = self.topics.index(topic)
            members = np.flatnonzero(self._labels == t)
            if query is not None and self._embeddings is not None:
                sims = self._embeddings[members] @ query
            else:
                assert self._rows is not None
                sims = self._rows.take(list(members)).dot(_dense_of(query_rows))[:, 0]
            best = np.argsort(-sims, kind="stable")[:examples]
            pulls.append(
                Pull(
                    topic,
                    probability,
                    tuple((self._texts[members[i]], round(float(sims[i]), 3)) for i in best),
                )
            )
        return decision, pulls


def _class_sums(rows: SparseRows, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sums = np.zeros((k, rows.columns), dtype=np.float32)
    row_of = np.repeat(np.arange(rows.rows), np.diff(rows.indptr))
    np.add.at(sums, (labels[row_of], rows.indices), rows.data)
    return sums, (sums * sums).sum(axis=1)


def _row_norms_sq(rows: SparseRows) -> np.ndarray:
    row_of = np.repeat(np.arange(rows.rows), np.diff(rows.indptr))
    return np.bincount(row_of, weights=rows.data.astype(np.float64) ** 2, minlength=rows.rows)


def _dense_of(rows: SparseRows) -> np.ndarray:
    """A one-row sparse matrix as a dense column vector."""
    column = np.zeros((rows.columns, 1), dtype=np.float32)
    column[rows.indices, 0] = rows.data
    return column


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    result: np.ndarray = numerator / np.maximum(denominator, 1e-9)
    return result


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    result: np.ndarray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return result
