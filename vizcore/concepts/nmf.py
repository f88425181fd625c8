"""Non-negative factorization of activations, A ~ U W, with scikit-learn's NMF.

Why scikit-learn and not a NumPy multiplicative-update loop: it is the factorizer of the CRAFT
paper and of Xplique (``NMF(n_components, alpha_W=1e-2)``, NNDSVDa start, coordinate descent), so
the concepts can be cross-checked against Xplique component for component; coordinate descent
reaches a given error in far fewer passes than multiplicative updates; and ``transform`` (U for a
fixed concept bank W, used by the heatmaps and the Sobol masks) comes with it. scikit-learn is
already installed for openTSNE.

The activations are expressed in units of the power of ten nearest their root mean square
(``scale``), so that the penalty weighs about the same against the data whatever the layer: an
untrained network's deep layers hold values near 1e-11, where the penalty alone would set every
concept to zero. A layer whose RMS is between 0.32 and 3.2 keeps its own units, as in Xplique.

Example:
    >>> f = factorize(acts_nk, 10, seed=0)
    >>> f.u.shape, f.w.shape, f.error < 0.3           # (n, 10), (10, k)
    ((2700, 10), (10, 10), True)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning

ALPHA_W = 1e-2  # Xplique's CRAFT default: regularizes W (and U, sklearn's alpha_H="same"), L2
MAX_ITER = 200  # scikit-learn's default


@dataclass(frozen=True, eq=False)
class Factorization:
    """A ~ U W with U, W >= 0.

    Attributes:
        u: float32 (n, r) coefficients of each row of A / scale.
        w: float32 (r, k) the concept bank: one row per concept over the layer's channels (A ~ scale * U W).
        scale: the unit of A: the power of ten nearest its root mean square.
        error: relative reconstruction error ||A - U W||_F / ||A||_F.
        reducer: the fitted ``sklearn.decomposition.NMF`` (``transform`` finds U for new rows).
    """

    u: np.ndarray
    w: np.ndarray
    scale: float
    error: float
    reducer: NMF

    def transform(self, acts_nk: np.ndarray) -> np.ndarray:
        """U (n, r) >= 0 of new rows of activations (n, k) with W fixed (scikit-learn's solver, same penalties)."""
        rows = np.asarray(acts_nk, self.reducer.components_.dtype).reshape(-1, self.w.shape[1]) / self.scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return self.reducer.transform(rows).astype(np.float32)


def unit_of(rms: float) -> float:
    """The power of ten nearest ``rms`` (in log scale): 0.614 -> 1.0, 3e-11 -> 1e-11."""
    return float(10.0 ** np.round(np.log10(rms)))


def factorize(acts_nk: np.ndarray, n_components: int, *, seed: int = 0, alpha_w: float = ALPHA_W) -> Factorization:
    """Factorize non-negative activations (n, k) into ``n_components`` concepts.

    Raises:
        ValueError: a negative value, all zeros, or fewer rows than components.
    """
    acts = np.asarray(acts_nk, np.float32)
    if acts.min(initial=0.0) < 0:
        raise ValueError("NMF needs non-negative activations.")
    if len(acts) < n_components:
        raise ValueError(f"{len(acts)} rows cannot be factorized into {n_components} concepts.")
    rms = float(np.sqrt(np.mean(np.square(acts, dtype=np.float64))))
    if not rms > 0:
        raise ValueError("The activations are all zero: there is nothing to factorize.")
    scale = unit_of(rms)
    acts = acts / np.float32(scale)
    reducer = NMF(n_components=n_components, alpha_W=alpha_w, max_iter=MAX_ITER, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        u = reducer.fit_transform(acts)
    w = reducer.components_.astype(np.float32)
    error = float(np.linalg.norm(acts - u @ w) / max(np.linalg.norm(acts), 1e-12))
    return Factorization(u.astype(np.float32), w, scale, error, reducer)
