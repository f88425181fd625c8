"""Sobol total-order indices: a quasi-Monte-Carlo replicated design and the Jansen estimator.

CRAFT (Fel et al., CVPR 2023) ranks concepts by how much of the variance of a class score each one
explains, interactions included. Each concept gets a mask value in [0, 1]; the design draws two
matrices A and B of ``nb_design`` points from an unscrambled Halton sequence in 2d dimensions (as
Xplique's ``HaltonSequenceRS``), and C_i is A with column i taken from B. The Jansen estimator

    ST_i = sum_j (f(A_j) - f(C_i,j))^2 / (2 n Var(f(A)))        (n = nb_design, Var with ddof=1)

needs only f on A and on the C_i, so B itself is never evaluated (Xplique evaluates it and drops it).

Example:
    >>> a, c = design(3, 1024)                  # (1024, 3), (3, 1024, 3)
    >>> f = lambda m: m[..., 0] + 2 * m[..., 1]  # x3 does nothing
    >>> jansen_total(f(a), f(c)).round(2)        # ST ~ (0.2, 0.8, 0)
    array([0.2, 0.8, 0. ])
"""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

NB_DESIGN = 32  # Xplique's default for CRAFT
EPS = 1e-12  # floor of Var(f(A)) relative to mean(f(A)^2) (Xplique: 1e-12 absolute)


def design(dim: int, nb_design: int = NB_DESIGN) -> tuple[np.ndarray, np.ndarray]:
    """The replicated design: A (nb_design, dim) and C (dim, nb_design, dim), float32 in [0, 1).

    Row j of C[i] is A[j] with its column i replaced by B[j, i]; A and B are the two halves of the
    first ``nb_design`` points of an unscrambled 2*dim-dimensional Halton sequence.
    """
    if dim < 1 or nb_design < 2:
        raise ValueError(f"dim must be >= 1 and nb_design >= 2, got {dim} and {nb_design}")
    ab = qmc.Halton(2 * dim, scramble=False).random(nb_design).astype(np.float32)
    a, b = ab[:, :dim], ab[:, dim:]
    c = np.repeat(a[None], dim, axis=0)
    idx = np.arange(dim)
    c[idx, :, idx] = b.T  # C_i = A with column i from B
    return a, c


def jansen_total(f_a: np.ndarray, f_c: np.ndarray) -> np.ndarray:
    """Total-order indices from the outputs on A (..., n) and on every C_i (..., dim, n); returns (..., dim)."""
    f_a, f_c = np.asarray(f_a, np.float64), np.asarray(f_c, np.float64)
    n = f_a.shape[-1]
    var = np.maximum(f_a.var(axis=-1, ddof=1), EPS * np.maximum(np.mean(f_a**2, axis=-1), 1e-300))
    return ((f_a[..., None, :] - f_c) ** 2).sum(axis=-1) / (2.0 * n * var[..., None])
