"""The topic router: its softmax regression, its sparse rows, the router itself and its encoders."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.routing import build
from bot.routing.build import KeywordRouter, RouterChoice, make_router, semantic_encoder
from bot.routing.encoders import (
    MODEL_SHA256,
    VOCAB_PATH,
    Encoder,
    EncoderUnavailable,
    MiniLMEncoder,
    ModelSource,
    sha256_of,
)
from bot.routing.lexical import SparseRows, Vectoriser, words
from bot.routing.router import Example, RouterSettings, TopicRouter
from bot.routing.softmax import Problem, Weights, fit, softmax

# -- softmax regression ------------------------------------------------------------------------


def _dense_problem(
    points: np.ndarray, labels: list[int], negative: list[bool] | None = None, classes: int = 3
) -> Problem:
    n = len(labels)
    return Problem(
        dense=points.astype(np.float64),
        sparse=None,
        labels=np.asarray(labels, dtype=np.int64),
        negative=np.asarray(negative or [False] * n, dtype=bool),
        weights=np.ones(n),
        classes=classes,
    )


def _blobs(seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Three well-separated clusters in the plane, eight points each."""
    rng = np.random.default_rng(seed)
    centres = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    points = np.concatenate([c + 0.3 * rng.standard_normal((8, 2)) for c in centres])
    return points, [k for k in range(3) for _ in range(8)]


def _probabilities(weights: Weights, points: np.ndarray) -> np.ndarray:
    return softmax(weights.logits(points.astype(np.float32), None))


def test_softmax_fit_learns_a_separable_problem() -> None:
    points, labels = _blobs()
    weights = fit(_dense_problem(points, labels), l2=1e-3)
    p = _probabilities(weights, points)
    assert p.shape == (24, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert list(p.argmax(axis=1)) == labels
    assert p[np.arange(24), labels].min() > 0.9
    # Points it never saw, near each centre, go to that centre's class.
    unseen = np.array([[2.5, 0.5], [-2.5, -0.5], [0.3, 2.6]])
    assert list(_probabilities(weights, unseen).argmax(axis=1)) == [0, 1, 2]


def test_softmax_fit_is_deterministic() -> None:
    points, labels = _blobs()
    first = fit(_dense_problem(points, labels), l2=1e-2)
    second = fit(_dense_problem(points, labels), l2=1e-2)
    assert first.dense is not None and second.dense is not None
    np.testing.assert_array_equal(first.dense, second.dense)
    np.testing.assert_array_equal(first.bias, second.bias)


def test_a_negative_row_lowers_the_probability_of_its_class() -> None:
    points, labels = _blobs()
    between = np.array([[1.5, 1.5]])  # halfway between class 0 and class 2
    plain = fit(_dense_problem(points, labels), l2=1e-2)
    declined = fit(
        _dense_problem(
            np.concatenate([points, between, between]),
            [*labels, 0, 0],
            [False] * len(labels) + [True, True],
        ),
        l2=1e-2,
    )
    before = _probabilities(plain, between)[0]
    after = _probabilities(declined, between)[0]
    assert after[0] < before[0] - 0.1
    assert after[0] < 0.5
    # ...without undoing what the positive rows taught.
    assert list(_probabilities(declined, points).argmax(axis=1)) == labels


def test_stronger_regularisation_gives_softer_probabilities() -> None:
    points, labels = _blobs()
    loose = fit(_dense_problem(points, labels), l2=1e-3)
    tight = fit(_dense_problem(points, labels), l2=1.0)
    at = np.arange(24)
    assert (
        _probabilities(tight, points)[at, labels].mean()
        < _probabilities(loose, points)[at, labels].mean()
    )


def test_softmax_fit_on_sparse_features_matches_dense_features() -> None:
    points, labels = _blobs()
    dense_problem = _dense_problem(points, labels)
    sparse_problem = Problem(
        None,
        _csr(points),
        dense_problem.labels,
        dense_problem.negative,
        dense_problem.weights,
        3,
    )
    dense = fit(dense_problem, l2=1e-2)
    sparse = fit(sparse_problem, l2=1e-2)
    assert dense.dense is not None and sparse.sparse is not None
    np.testing.assert_allclose(sparse.sparse, dense.dense, atol=1e-3)
    np.testing.assert_allclose(sparse.bias, dense.bias, atol=1e-3)


def test_shared_evidence_coefficients_are_learned() -> None:
    # One feature per class, which is 1 for the right class: its coefficient must come out > 0.
    labels = np.array([0, 1, 2, 0, 1, 2])
    shared = np.zeros((6, 3, 1))
    shared[np.arange(6), labels, 0] = 1.0
    problem = Problem(None, None, labels, np.zeros(6, bool), np.ones(6), 3, shared)
    weights = fit(problem, l2=1e-2)
    assert weights.shared is not None and weights.shared[0] > 1.0
    p = softmax(weights.logits(None, None, shared.astype(np.float32)))
    assert list(p.argmax(axis=1)) == list(labels)


def test_logits_add_dense_and_shared_evidence() -> None:
    weights = Weights(
        np.ones((2, 3), np.float32), None, np.zeros(3, np.float32), np.array([1.0], np.float32)
    )
    dense = np.ones((1, 2), np.float32)
    shared = np.full((1, 3, 1), 5.0, np.float32)
    np.testing.assert_allclose(weights.logits(dense, None, shared), [[7.0, 7.0, 7.0]])


# -- sparse rows -------------------------------------------------------------------------------


def _csr(matrix: np.ndarray) -> SparseRows:
    indptr, indices, data = [0], [], []
    for row in matrix:
        (columns,) = np.nonzero(row)
        indices.extend(columns)
        data.extend(row[columns])
        indptr.append(len(indices))
    return SparseRows(
        np.asarray(indptr, np.int64),
        np.asarray(indices, np.int64),
        np.asarray(data, matrix.dtype),
        matrix.shape[1],
    )


def _dense(rows: SparseRows) -> np.ndarray:
    out = np.zeros((rows.rows, rows.columns), dtype=rows.data.dtype)
    for i in range(rows.rows):
        span = slice(rows.indptr[i], rows.indptr[i + 1])
        out[i, rows.indices[span]] = rows.data[span]
    return out


@pytest.fixture
def random_sparse() -> np.ndarray:
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((9, 13)) * (rng.random((9, 13)) < 0.3)
    matrix[0] = 0.0  # empty rows at the start, in the middle and at the end
    matrix[4] = 0.0
    matrix[8] = 0.0
    matrix[:, 12] = 0.0  # and an empty last column
    return matrix


@pytest.mark.parametrize("block", [1, 2, 5, 1 << 18])
def test_sparse_dot_agrees_with_numpy(random_sparse: np.ndarray, block: int) -> None:
    """Whatever the block of entries multiplied at once (one row at a time, rows cut at
    block boundaries, everything at once)."""
    weights = np.random.default_rng(1).standard_normal((13, 4))
    rows = _csr(random_sparse)
    assert (rows.rows, rows.columns) == (9, 13)
    np.testing.assert_allclose(rows.dot(weights, block=block), random_sparse @ weights, atol=1e-12)


def test_sparse_transpose_agrees_with_numpy(random_sparse: np.ndarray) -> None:
    transposed = _csr(random_sparse).transpose()
    assert (transposed.rows, transposed.columns) == (13, 9)
    np.testing.assert_array_equal(_dense(transposed), random_sparse.T)
    g = np.random.default_rng(2).standard_normal((9, 3))
    np.testing.assert_allclose(transposed.dot(g), random_sparse.T @ g, atol=1e-12)


def test_sparse_take_picks_rows_in_order(random_sparse: np.ndarray) -> None:
    rows = _csr(random_sparse)
    np.testing.assert_array_equal(_dense(rows.take([5, 0, 2, 5])), random_sparse[[5, 0, 2, 5]])
    assert rows.take([]).rows == 0


def test_tfidf_rows_are_unit_length_and_ignore_unknown_words() -> None:
    texts = ["tuition fees for students", "student housing on campus", "fees fees fees"]
    vectoriser = Vectoriser().fit(texts)
    assert "tuition fees" in vectoriser.vocabulary  # bigrams are terms too
    rows = vectoriser.transform([*texts, "completely unrelated"])
    norms = np.linalg.norm(_dense(rows), axis=1)
    np.testing.assert_allclose(norms, [1, 1, 1, 0], atol=1e-6)


def test_words_fold_case_accents_and_apostrophes() -> None:
    assert words("Qu\u2019est-ce QUE la Résidence? 5$") == [
        "qu'est",
        "ce",
        "que",
        "la",
        "residence",
        "?",
        "5",
        "$",
    ]


# -- the router --------------------------------------------------------------------------------

TOPICS = {
    "admissions": [
        "When is the application deadline for the autumn intake?",
        "Do I need IELTS to apply for the master's programme?",
        "What are the entry requirements for undergraduate degrees?",
        "How do I check the status of my application?",
        "Can I apply to two programmes at the same time?",
        "Is there an admissions interview for medicine?",
    ],
    "fees": [
        "How much are the tuition fees for international students?",
        "Can I pay my tuition in instalments?",
        "Are there scholarships to reduce the fees?",
        "When is the tuition payment due each term?",
        "Will I get a refund of my fees if I withdraw?",
        "How do I pay the fee with a bank transfer?",
    ],
    "housing": [
        "Is student accommodation guaranteed in the first year?",
        "How much does a room in the halls of residence cost?",
        "Can I choose a flatmate in student housing?",
        "When can I move into my dorm room?",
        "Are the residence halls open during the summer?",
        "Who do I contact about a broken heater in my flat?",
    ],
    "research": [
        "Are there open PhD positions in marine biology?",
        "Who supervises research on renewable energy?",
        "How do I find a supervisor for my doctorate?",
        "Which research groups work on machine learning?",
        "Is there funding for PhD students in chemistry?",
        "Can I visit the physics lab as a research collaborator?",
    ],
}
OUT_OF_SCOPE = [
    "What is the weather forecast for the weekend?",
    "Who won the football match last night?",
    "Tell me a good joke about cats",
    "What time does the supermarket close on Sunday?",
    "Recommend a good pizza restaurant near the station",
    "Can you tell me a joke about dogs?",
]
IN_TOPIC = [
    ("What is the deadline to apply for the autumn intake?", "admissions"),
    ("How much are tuition fees for international students this year?", "fees"),
    ("Is accommodation in student housing guaranteed in the first year?", "housing"),
    ("Are there open PhD positions with funding in biology?", "research"),
]


def _examples(*, out_of_scope: bool = True) -> list[Example]:
    examples = [Example(text, topic) for topic, texts in TOPICS.items() for text in texts]
    if out_of_scope:
        examples += [Example(text, None) for text in OUT_OF_SCOPE]
    return examples


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return semantic_encoder()


@pytest.fixture(scope="module", params=["lexical", "semantic"])
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def router(kind: str, encoder: Encoder) -> TopicRouter:
    return TopicRouter(encoder if kind == "semantic" else None).fit(_examples())


def test_the_router_knows_its_topics_and_the_out_of_scope_class(
    router: TopicRouter, kind: str
) -> None:
    assert router.trained
    assert router.name == kind
    assert router.topics == ["admissions", "fees", "housing", "research", "__out_of_scope__"]
    assert router.fit_seconds > 0


@pytest.mark.parametrize(("question", "topic"), IN_TOPIC)
def test_in_topic_questions_go_to_their_topic(
    router: TopicRouter, question: str, topic: str
) -> None:
    decision = router.decide(question)
    assert decision.topic == topic, decision
    assert decision.reason == ""
    assert decision.ranked[0][0] == topic
    assert decision.confidence >= router.settings.min_confidence
    ranked = router.rank(question)
    assert ranked[0].topic == topic
    assert [m.score for m in ranked] == sorted((m.score for m in ranked), reverse=True)
    assert len(router.rank(question, limit=2)) == 2
    assert router.rank(question, limit=0) == []


def test_decide_many_agrees_with_decide(router: TopicRouter) -> None:
    questions = [q for q, _ in IN_TOPIC]
    assert [d.topic for d in router.decide_many(questions)] == [t for _, t in IN_TOPIC]


def test_probabilities_cover_every_class(router: TopicRouter) -> None:
    p, nearest = router.probabilities([q for q, _ in IN_TOPIC])
    assert p.shape == (4, 5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert (nearest is None) == (router.encoder is None)


def test_ranked_topics_never_include_the_out_of_scope_class(router: TopicRouter) -> None:
    for question, _ in IN_TOPIC:
        ranked = router.decide(question).ranked
        assert [t for t, _ in ranked if t.startswith("__")] == []
        assert len(ranked) == 4


def test_an_out_of_scope_question_goes_to_the_fallback_owner(router: TopicRouter) -> None:
    question = "Can you tell me a joke about the weather?"
    decision = router.decide(question)
    assert decision.topic is None, decision
    assert decision.reason
    assert router.rank(question) == []


def test_below_min_confidence_goes_to_the_fallback_owner(kind: str, encoder: Encoder) -> None:
    strict = TopicRouter(
        encoder if kind == "semantic" else None, RouterSettings(min_confidence=0.99)
    ).fit(_examples(out_of_scope=False))
    question = "How much does it cost?"  # fees or housing: no topic is sure
    decision = strict.decide(question)
    assert decision.topic is None
    assert decision.reason == "no topic is a confident match"
    assert decision.confidence < 0.99
    assert decision.ranked[0][0] in {"fees", "housing"}  # still ranked, just not confident
    assert decision.ranked[0][1] == pytest.approx(decision.confidence, abs=1e-4)
    assert strict.rank(question) == []


def test_explain_shows_the_most_similar_examples_first(router: TopicRouter) -> None:
    question = "Can I pay my tuition fees in monthly instalments?"
    decision, pulls = router.explain(question, limit=2, examples=3)
    assert decision.topic == "fees"
    assert [p.topic for p in pulls] == [t for t, _ in decision.ranked[:2]]
    top = pulls[0]
    assert top.topic == "fees"
    assert top.examples[0][0] == "Can I pay my tuition in instalments?"
    similarities = [s for _, s in top.examples]
    assert len(similarities) == 3
    assert similarities == sorted(similarities, reverse=True)
    assert all(text in TOPICS["fees"] for text, _ in top.examples)
    assert all(text in TOPICS[pulls[1].topic] for text, _ in pulls[1].examples)


def _p(router: TopicRouter, question: str) -> dict[str, float]:
    probabilities, _ = router.probabilities([question])
    return dict(zip(router.topics, probabilities[0].tolist(), strict=True))


def test_negative_examples_push_a_question_away_from_a_topic(kind: str, encoder: Encoder) -> None:
    question = "Do scholarships cover accommodation costs?"  # fees or housing
    declines = [Example(question, "fees", negative=True)]
    chosen = encoder if kind == "semantic" else None
    plain = _p(TopicRouter(chosen).fit(_examples()), question)
    declined = TopicRouter(chosen).fit(_examples() + declines)
    pushed = _p(declined, question)
    assert pushed["fees"] < plain["fees"] * 0.8
    assert pushed["housing"] > plain["housing"]
    assert declined.decide(question).topic == "housing"
    # A negative example is not a training text: explain never shows it.
    _, pulls = declined.explain(question, limit=4, examples=10)
    shown = {text for pull in pulls for text, _ in pull.examples}
    assert question not in shown


@pytest.mark.parametrize("kind", ["lexical", "semantic"])
def test_a_wrong_topic_decline_makes_a_confident_router_less_sure(
    kind: str, encoder: Encoder
) -> None:
    question = "How do I pay?"
    chosen = encoder if kind == "semantic" else None
    before = TopicRouter(chosen).fit(_examples())
    assert before.decide(question).topic == "fees"
    after = TopicRouter(chosen).fit([*_examples(), Example(question, "fees", negative=True)])
    assert _p(after, question)["fees"] < _p(before, question)["fees"] * 0.8


def test_the_router_needs_a_topic_and_training() -> None:
    with pytest.raises(ValueError, match="at least one example"):
        TopicRouter(None).fit([Example("anything at all", None), Example("  ", "fees")])
    with pytest.raises(RuntimeError, match="not been trained"):
        TopicRouter(None).decide("hello")


def test_without_out_of_scope_rows_there_is_no_out_of_scope_class() -> None:
    router = TopicRouter(None).fit(_examples(out_of_scope=False))
    assert router.topics == ["admissions", "fees", "housing", "research"]


# -- encoders ----------------------------------------------------------------------------------


def test_the_encoder_refuses_a_model_file_with_another_checksum(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    shutil.copyfile(VOCAB_PATH, fake)  # any small file that is not the model
    with pytest.raises(EncoderUnavailable, match="refusing to load it"):
        MiniLMEncoder(ModelSource(fake, MODEL_SHA256))
    with pytest.raises(EncoderUnavailable, match="not found"):
        MiniLMEncoder(ModelSource(tmp_path / "absent.onnx", MODEL_SHA256))


def test_the_packaged_model_has_the_pinned_checksum(encoder: Encoder) -> None:
    assert isinstance(encoder, MiniLMEncoder)
    assert sha256_of(encoder.source.path) == MODEL_SHA256
    assert semantic_encoder() is encoder  # loaded once per process


def test_embeddings_are_unit_length_and_paraphrases_are_closer(encoder: Encoder) -> None:
    texts = [
        "My card still hasn't arrived.",
        "I am still waiting for my card to be delivered.",
        "What is the capital of France?",
        "",
    ]
    vectors = encoder.encode(texts)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar = float(vectors[0] @ vectors[1])
    unrelated = float(vectors[0] @ vectors[2])
    assert similar > 0.6
    assert similar > unrelated + 0.3
    assert encoder.encode([]).shape == (0, 384)


def test_batching_and_padding_do_not_change_embeddings(encoder: Encoder) -> None:
    short = "Where is the library?"
    long = "Could you please tell me where on campus the main university library is found? " * 3
    alone = encoder.encode([short])
    batched = encoder.encode([long, short] * 20)  # over one batch, mixed lengths
    np.testing.assert_allclose(batched[1], alone[0], atol=1e-4)
    np.testing.assert_allclose(batched[39], alone[0], atol=1e-4)


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("EVANGELIST_EMBEDDING_MODEL", str(tmp_path / "missing.onnx"))
    monkeypatch.delenv("EVANGELIST_EMBEDDING_SHA256", raising=False)
    saved = dict(build._encoder_cache)
    build._encoder_cache.clear()
    yield
    build._encoder_cache.update(saved)


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("name", ["auto", "semantic"])
def test_without_the_model_the_router_falls_back_to_words(name: str) -> None:
    router = make_router(RouterChoice(name))
    assert isinstance(router, TopicRouter)
    assert router.encoder is None
    assert router.name == "lexical"
    router.fit(_examples())
    assert router.decide(IN_TOPIC[1][0]).topic == "fees"


def test_make_router_builds_each_kind(encoder: Encoder) -> None:
    semantic = make_router(RouterChoice("auto"))
    assert isinstance(semantic, TopicRouter) and semantic.encoder is encoder
    assert make_router(RouterChoice("lexical")).encoder is None  # type: ignore[union-attr]
    assert isinstance(make_router(RouterChoice("keyword")), KeywordRouter)
    with pytest.raises(ValueError, match="unknown router"):
        make_router(RouterChoice("magic"))


def test_the_openai_router_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EncoderUnavailable, match="OPENAI_API_KEY"):
        make_router(RouterChoice("openai"))


def test_the_keyword_router_ranks_by_example_overlap() -> None:
    router = KeywordRouter().fit(_examples())
    assert router.topics == ["admissions", "fees", "housing", "research"]
    assert router.decide("Are there open PhD positions in marine biology?").topic == "research"
    assert router.decide("zzz qqq").topic is None
    assert router.rank("zzz qqq") == []


def test_out_of_scope_examples_come_from_the_file_and_the_shipped_list() -> None:
    from bot.config.organisation import parse_organisation
    from bot.routing.training import examples_from_organisation

    text = """
organisation: {name: Org}
topics:
  - {id: fees, name: Fees, examples: ["How much are the fees?", "Can I pay in instalments?"]}
routing:
  out_of_scope_examples: ["Where can visitors park?"]
"""
    examples = examples_from_organisation(parse_organisation(text))
    uncovered = [e for e in examples if e.topic is None]
    assert ("Where can visitors park?", 1.0) in [(e.text, e.weight) for e in uncovered]
    generic = [e for e in uncovered if e.origin == "generic"]
    assert len(generic) > 100
    fees = sum(e.weight for e in examples if e.topic == "fees")
    assert sum(e.weight for e in generic) == pytest.approx(fees)  # one topic's worth

    off = parse_organisation(text.replace("routing:", "routing:\n  generic_out_of_scope: false"))
    assert [e.origin for e in examples_from_organisation(off) if e.topic is None] == [
        "out_of_scope"
    ]
