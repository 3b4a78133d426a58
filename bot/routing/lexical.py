"""Words as features: TF-IDF over word unigrams and bigrams, as compact sparse rows.

Sparse rows are kept as CSR arrays (`indptr`, `indices`, `data`) and multiplied with numpy
alone, so the plain install needs neither SciPy nor scikit-learn. Term frequency is
sublinear (1 + ln tf), IDF is smoothed (ln((n + 1) / (df + 1)) + 1), rows are L2-normalised.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[$€£¥%#?!]")
APOSTROPHE = "\u2019"


def words(text: str) -> list[str]:
    """Lower-cased words with accents dropped; a few meaningful symbols count as words."""
    folded = unicodedata.normalize("NFKD", text.casefold().replace(APOSTROPHE, "'"))
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return _WORD.findall(plain)


def terms(text: str) -> list[str]:
    tokens = words(text)[:200]
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


@dataclass
class SparseRows:
    """A CSR matrix: row i holds `data[indptr[i]:indptr[i+1]]` at columns `indices[...]`."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    columns: int

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    def take(self, rows: Sequence[int]) -> SparseRows:
        starts, ends = self.indptr[:-1][rows], self.indptr[1:][rows]
        lengths = ends - starts
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        spans = [np.arange(s, e) for s, e in zip(starts, ends, strict=True)]
        pick = np.concatenate(spans).astype(np.int64) if spans else np.zeros(0, np.int64)
        return SparseRows(indptr, self.indices[pick], self.data[pick], self.columns)

    def dot(self, weights: np.ndarray, block: int = 1 << 18) -> np.ndarray:
        """self @ weights, for a dense (columns x k) matrix.

        Rows are taken a few at a time so that the per-entry products (entries x k) stay
        under about `block` x k values, whatever the size of the matrix.
        """
        out = np.zeros((self.rows, weights.shape[1]), dtype=weights.dtype)
        first = 0
        while first < self.rows:
            # The last row whose entries still fit in this block (at least one row).
            last = int(np.searchsorted(self.indptr, self.indptr[first] + block, side="right")) - 1
            last = min(max(last, first + 1), self.rows)
            start, end = int(self.indptr[first]), int(self.indptr[last])
            if end > start:
                starts = self.indptr[first:last] - start
                nonempty = starts < self.indptr[first + 1 : last + 1] - start
                contributions = weights[self.indices[start:end]] * self.data[start:end, None]
                out[first:last][nonempty] = np.add.reduceat(contributions, starts[nonempty], axis=0)
            first = last
        return out

    def transpose(self) -> SparseRows:
        order = np.argsort(self.indices, kind="stable")
        row_of = np.repeat(np.arange(self.rows), np.diff(self.indptr))
        counts = np.bincount(self.indices, minlength=self.columns)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return SparseRows(indptr, row_of[order], self.data[order], self.rows)


class Vectoriser:
    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}
        self.idf = np.zeros(0, dtype=np.float32)

    def fit(self, texts: Iterable[str]) -> Vectoriser:
        df: Counter[str] = Counter()
        count = 0
        for text in texts:
            df.update(set(terms(text)))
            count += 1
        self.vocabulary = {term: i for i, term in enumerate(sorted(df))}
        idf = np.zeros(len(self.vocabulary), dtype=np.float32)
        for term, index in self.vocabulary.items():
            idf[index] = math.log((count + 1) / (df[term] + 1)) + 1
        self.idf = idf
        return self

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    def transform(self, texts: Sequence[str]) -> SparseRows:
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        for text in texts:
            counts = Counter(t for t in terms(text) if t in self.vocabulary)
            row = sorted((self.vocabulary[t], 1.0 + math.log(n)) for t, n in counts.items())
            values = [v * float(self.idf[i]) for i, v in row]
            norm = math.sqrt(sum(v * v for v in values)) or 1.0
            indices.extend(i for i, _ in row)
            data.extend(v / norm for v in values)
            indptr.append(len(indices))
        return SparseRows(
            np.asarray(indptr, dtype=np.int64),
            np.asarray(indices, dtype=np.int64),
            np.asarray(data, dtype=np.float32),
            self.size,
        )
