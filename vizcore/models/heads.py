"""From a model's scores to class probabilities: one rule for every head.

``scores`` are the pre-activation outputs (``features.feature_model``); ``head`` is what
``graph.head_type`` says ('softmax', 'sigmoid' or 'linear').

* one unit that is not a softmax (a sigmoid unit, or a linear one) is a binary logit z:
  two classes, P(1) = sigmoid(z), P(0) = sigmoid(-z);
* several sigmoid units are independent (multi-label): sigmoid of each;
* a softmax head, and a linear head of several units, take the softmax.

Example:
    >>> probabilities(np.array([[0.0]]), "linear").tolist()
    [[0.5, 0.5]]
"""

from __future__ import annotations

import numpy as np


def is_binary(head: str, units: int) -> bool:
    """Whether a head of ``units`` outputs is one binary logit (class 1 when the score is > 0)."""
    return units == 1 and head != "softmax"


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow, float64."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def softmax(scores_nk: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float64."""
    z = np.asarray(scores_nk, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(scores_nk: np.ndarray, head: str) -> np.ndarray:
    """Class probabilities of a batch of scores, float64 (N, K); a binary head gives (N, 2).

    Args:
        scores_nk: pre-activation scores (N, K).
        head: 'softmax', 'sigmoid' or 'linear'.
    Returns:
        (N, 2) = [P(class 0), P(class 1)] for a binary head, else (N, K).
    """
    z = np.asarray(scores_nk, dtype=np.float64)
    if is_binary(head, z.shape[-1]):
        return np.concatenate([sigmoid(-z), sigmoid(z)], axis=-1)
    if head == "sigmoid":
        return sigmoid(z)
    return softmax(z)
