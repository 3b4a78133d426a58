"""The uncased BERT WordPiece tokenizer that all-MiniLM-L6-v2 was trained with.

Written here, from the published algorithm, so the semantic router needs no tokenizer library
(and none of the model-hub client such libraries bring with them). Steps, as in BERT:

1. clean: drop NUL, U+FFFD and control characters; any whitespace becomes a space;
2. put spaces around CJK ideographs, so each one is a word;
3. lower-case, then strip accents (NFD, drop combining marks);
4. split on whitespace, and make every punctuation character a word of its own;
5. WordPiece: for each word, repeatedly take the longest prefix in the vocabulary (pieces after
   the first carry "##"); a word with no such split, or longer than 100 characters, is [UNK].

The tests compare its ids with those of the reference implementation for a set of tricky texts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

MAX_WORD_CHARS = 100


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    # BERT treats all non-alphanumeric ASCII as punctuation ("$", "^", "`" included).
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def _clean(text: str) -> str:
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code in (0, 0xFFFD):
            continue
        if char in " \t\n\r" or unicodedata.category(char) == "Zs":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf"):
            continue
        elif _is_cjk(code):
            out.append(f" {char} ")
        else:
            out.append(char)
    return "".join(out)


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


# For ASCII text, steps 1 to 4 reduce to: tab and line breaks become spaces, other control
# characters go, lower-case, and every printable non-alphanumeric character is a punctuation
# word (BERT counts all of them as punctuation). Most questions are ASCII; this is 3x faster.
_ASCII_CLEAN = {code: None for code in (*range(32), 127)} | {9: " ", 10: " ", 13: " "}
_ASCII_WORD = re.compile(r"[a-z0-9]+|[^ a-z0-9]")


def basic_words(text: str) -> list[str]:
    """Steps 1 to 4: the words and punctuation marks WordPiece then splits."""
    if text.isascii():
        return _ASCII_WORD.findall(text.translate(_ASCII_CLEAN).lower())
    words: list[str] = []
    for chunk in _strip_accents(_clean(text).lower()).split():
        current: list[str] = []
        for char in chunk:
            if _is_punctuation(char):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
    return words


class WordPiece:
    """Text to token ids for a BERT-style vocabulary file (one token per line, id = line number)."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.ids = {token: index for index, token in enumerate(vocabulary)}
        self.cls = self.ids["[CLS]"]
        self.sep = self.ids["[SEP]"]
        self.unk = self.ids["[UNK]"]
        self.pad = self.ids.get("[PAD]", 0)
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_file(cls, path: Path) -> WordPiece:
        lines = path.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls(lines)

    def encode(self, text: str, max_length: int = 128) -> list[int]:
        """[CLS] pieces… [SEP], cut so the whole is at most `max_length` ids."""
        if max_length < 2:
            raise ValueError("max_length must leave room for [CLS] and [SEP]")
        pieces: list[int] = []
        budget = max_length - 2
        for word in basic_words(text):
            pieces.extend(self._word(word))
            if len(pieces) >= budget:
                break
        return [self.cls, *pieces[:budget], self.sep]

    def _word(self, word: str) -> tuple[int, ...]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        result = self._split(word)
        if len(self._cache) < 200_000:
            self._cache[word] = result
        return result

    def _split(self, word: str) -> tuple[int, ...]:
        if len(word) > MAX_WORD_CHARS:
            return (self.unk,)
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.ids.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (self.unk,)
            pieces.append(found)
            start = end
        return tuple(pieces)
