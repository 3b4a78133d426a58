"""Multinomial logistic regression over dense and sparse features, fitted with L-BFGS in numpy.

The model: logits = D·A + S·B + b, for dense features D (sentence embeddings), sparse features
S (TF-IDF) and one bias per class. It minimises the mean cross-entropy plus an L2 penalty
`l2/2 (|A|² + |B|² + |c|²)` (c: the shared coefficients). Two kinds of training row:

- positive: "this text is about class y" (loss -ln p_y);
- negative: "this text is NOT about class y" (loss -ln(1 - p_y)), from "Not me — wrong topic".

Each row may carry a weight. The optimiser is a plain limited-memory BFGS (two-loop recursion,
backtracking line search), deterministic for the same data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bot.routing.lexical import SparseRows


@dataclass
class Problem:
    dense: np.ndarray | None
    sparse: SparseRows | None
    labels: np.ndarray
    """Class index per row."""
    negative: np.ndarray
    """True where the row says the text is not about its class."""
    weights: np.ndarray
    classes: int
    shared: np.ndarray | None = None
    """Per-class evidence (rows x classes x m); one coefficient per kind, shared by all classes."""


@dataclass
class Weights:
    dense: np.ndarray | None
    sparse: np.ndarray | None
    bias: np.ndarray
    shared: np.ndarray | None = None

    def logits(
        self,
        dense: np.ndarray | None,
        sparse: SparseRows | None,
        shared: np.ndarray | None = None,
    ) -> np.ndarray:
        out: np.ndarray | None = None
        if self.shared is not None and shared is not None:
            out = shared @ self.shared
        if self.dense is not None and dense is not None:
            part = dense @ self.dense
            out = part if out is None else out + part
        if self.sparse is not None and sparse is not None:
            part = sparse.dot(self.sparse)
            out = part if out is None else out + part
        if out is None:
            out = np.zeros((1, len(self.bias)), dtype=self.bias.dtype)
        result: np.ndarray = out + self.bias
        return result


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return result


def fit(problem: Problem, *, l2: float, max_iter: int = 300, tolerance: float = 1e-5) -> Weights:
    k = problem.classes
    dense_size = problem.dense.shape[1] if problem.dense is not None else 0
    sparse_size = problem.sparse.columns if problem.sparse is not None else 0
    sparse_t = problem.sparse.transpose() if problem.sparse is not None else None
    shared_size = problem.shared.shape[2] if problem.shared is not None else 0
    n = len(problem.labels)
    rows = np.arange(n)
    total = float(problem.weights.sum()) or 1.0
    scale = problem.weights / total
    neg = problem.negative

    def unpack(theta: np.ndarray) -> Weights:
        a = theta[: dense_size * k].reshape(dense_size, k) if dense_size else None
        offset = dense_size * k
        b = (
            theta[offset : offset + sparse_size * k].reshape(sparse_size, k)
            if sparse_size
            else None
        )
        offset += sparse_size * k
        c = theta[offset + k :] if shared_size else None
        return Weights(a, b, theta[offset : offset + k], c)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        # The big products run in float32 (twice as fast, and the features are float32
        # anyway); the loss, the penalty and the parameters the optimiser steps stay float64.
        w = unpack(theta)
        w32 = unpack(theta.astype(np.float32))
        p = softmax(w32.logits(problem.dense, problem.sparse, problem.shared))
        p_y = np.clip(p[rows, problem.labels].astype(np.float64), 1e-12, 1 - 1e-12)
        loss = np.where(neg, -np.log1p(-p_y), -np.log(p_y))
        # d/dz of -ln p_y is p - e_y; of -ln(1 - p_y) it is p_y / (1 - p_y) * (e_y - p).
        g = p
        g[rows, problem.labels] -= 1.0
        factor = np.where(neg, -p_y / (1 - p_y), 1.0)
        g *= (factor * scale).astype(np.float32)[:, None]
        value = float((loss * scale).sum())
        parts: list[np.ndarray] = []
        if w.dense is not None and problem.dense is not None:
            grad_a = (problem.dense.T @ g) + l2 * w.dense
            value += 0.5 * l2 * float((w.dense * w.dense).sum())
            parts.append(grad_a.ravel())
        if w.sparse is not None and sparse_t is not None:
            grad_b = sparse_t.dot(g) + l2 * w.sparse
            value += 0.5 * l2 * float((w.sparse * w.sparse).sum())
            parts.append(grad_b.ravel())
        parts.append(g.sum(axis=0, dtype=np.float64))
        if w.shared is not None and problem.shared is not None:
            grad_c = np.einsum("ik,ikm->m", g, problem.shared) + l2 * w.shared
            value += 0.5 * l2 * float((w.shared * w.shared).sum())
            parts.append(grad_c)
        return value, np.concatenate(parts).astype(np.float64)

    theta0 = np.zeros((dense_size + sparse_size) * k + k + shared_size, dtype=np.float64)
    theta = lbfgs(objective, theta0, max_iter=max_iter, tolerance=tolerance)
    return unpack(theta.astype(np.float32))


def lbfgs(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    *,
    max_iter: int,
    tolerance: float,
    memory: int = 10,
) -> np.ndarray:
    value, grad = objective(x)
    s_list: list[np.ndarray] = []
    y_list: list[np.ndarray] = []
    for _ in range(max_iter):
        if float(np.abs(grad).max()) < tolerance:
            break
        direction = -_two_loop(grad, s_list, y_list)
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: start again from the gradient
            s_list.clear()
            y_list.clear()
            direction, slope = -grad, -float(grad @ grad)
        step = 1.0 if s_list else min(1.0, 1.0 / max(float(np.abs(grad).sum()), 1e-12))
        for _ in range(30):
            candidate = x + step * direction
            new_value, new_grad = objective(candidate)
            if new_value <= value + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        # The history is kept in float32: with the words-only router's millions of weights it
        # is most of the memory a fit takes, and the search direction needs no more precision.
        s = (candidate - x).astype(np.float32)
        y = (new_grad - grad).astype(np.float32)
        if float(s @ y) > 1e-10:
            s_list.append(s)
            y_list.append(y)
            if len(s_list) > (memory if x.size < 2_000_000 else memory // 2):
                s_list.pop(0)
                y_list.pop(0)
        improvement = value - new_value
        x, value, grad = candidate, new_value, new_grad
        if improvement < tolerance * 1e-3 * max(1.0, abs(value)):
            break
    return x


def _two_loop(grad: np.ndarray, s_list: list[np.ndarray], y_list: list[np.ndarray]) -> np.ndarray:
    q = grad.copy()
    alphas: list[float] = []
    rhos = [1.0 / float(y.astype(np.float64) @ s) for s, y in zip(s_list, y_list, strict=True)]
    for s, y, rho in reversed(list(zip(s_list, y_list, rhos, strict=True))):
        alpha = rho * float(s @ q)
        alphas.append(alpha)
        q -= alpha * y
    if s_list:
        s, y = s_list[-1], y_list[-1]
        q *= float(s @ y) / float(y @ y)
    for (s, y, rho), alpha in zip(
        zip(s_list, y_list, rhos, strict=True), reversed(alphas), strict=True
    ):
        beta = rho * float(y @ q)
        q += (alpha - beta) * s
    return q
