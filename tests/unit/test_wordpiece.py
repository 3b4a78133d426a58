"""The WordPiece tokenizer gives the reference (HF BertTokenizer) ids for all-MiniLM-L6-v2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.routing.encoders import VOCAB_PATH
from bot.routing.wordpiece import WordPiece, basic_words

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "wordpiece_reference.json"
CASES: list[dict[str, object]] = json.loads(REFERENCE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tokenizer() -> WordPiece:
    return WordPiece.from_file(VOCAB_PATH)


def test_the_reference_file_covers_the_tricky_cases() -> None:
    assert len(CASES) >= 10
    assert all(isinstance(case["text"], str) and case["ids"] for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_ids_equal_the_reference_tokenizer(tokenizer: WordPiece, case: dict[str, object]) -> None:
    text = case["text"]
    assert isinstance(text, str)
    assert tokenizer.encode(text) == case["ids"]


def test_special_tokens_have_the_bert_ids(tokenizer: WordPiece) -> None:
    assert (tokenizer.cls, tokenizer.sep, tokenizer.unk, tokenizer.pad) == (101, 102, 100, 0)
    assert tokenizer.encode("") == [101, 102]
    assert tokenizer.encode(" \t\n ") == [101, 102]


def test_basic_words_lowercase_strip_accents_and_split_punctuation() -> None:
    assert basic_words("Café's  naïve!") == ["cafe", "'", "s", "naive", "!"]
    assert basic_words("東京") == ["東", "京"]
    assert basic_words("a\u200bb\x00c") == ["abc"]


@pytest.mark.parametrize("max_length", [2, 3, 5, 16, 128])
def test_truncation_keeps_cls_and_sep_within_max_length(
    tokenizer: WordPiece, max_length: int
) -> None:
    text = "unobtainium " * 200  # several pieces per word, far over any limit
    full = tokenizer.encode(text, max_length=10_000)
    ids = tokenizer.encode(text, max_length=max_length)
    assert len(ids) == max_length
    assert ids[0] == tokenizer.cls
    assert ids[-1] == tokenizer.sep
    assert ids[1:-1] == full[1 : max_length - 1]


def test_a_short_text_is_not_padded_or_cut(tokenizer: WordPiece) -> None:
    ids = tokenizer.encode("hello world", max_length=128)
    assert ids == [101, *ids[1:-1], 102]
    assert len(ids) == 4


def test_an_overlong_word_is_unknown(tokenizer: WordPiece) -> None:
    assert tokenizer.encode("a" * 101) == [101, 100, 102]
    assert tokenizer.encode("a" * 100)[1] != 100
