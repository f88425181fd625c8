"""Robustness over a dataset: accuracy against ε (batched over ε) and each image's minimal ε.

``sweep`` attacks every image on its given label at every ε. FGSM's gradient does not depend on
ε, so each image takes one gradient and all its ε go through the model in one forward pass; PGD
runs every ε of a chunk of images as one batch. Either way the numbers equal a loop of ``fgsm`` /
``pgd`` calls, one per ε (same labels, seed and random start).

``minimal_epsilon`` finds, per image, the first ε of a grid at which the prediction changes, then
halves the interval below it ``iterations`` times (every image its own ε, in one batch).

Example:
    >>> sweep(model, x_nhwc, y, (0.0, 0.1, 0.2))                      # accuracies (3,)
    array([0.973, 0.611, 0.154])
    >>> minimal_epsilon(model, x_nhwc[:4])                            # ε per image, inf: none up to max_eps
    array([0.0734, 0.1213, inf, 0.0459])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from vizcore.errors import RobustnessError
from vizcore.models.batches import as_batch
from vizcore.robustness import attacks
from vizcore.robustness.attacks import Bounds, Progress, RangeLike

ATTACKS = ("fgsm", "pgd")
PGD_OPTIONS = {"steps": 40, "step": None, "random_start": True, "seed": 0}


def _options(attack: str, options: dict[str, Any]) -> dict[str, Any]:
    """The attack's options with defaults, checked: FGSM takes none; PGD steps, step, random_start, seed."""
    if attack not in ATTACKS:
        raise RobustnessError(f"attack must be one of {', '.join(ATTACKS)}, got {attack!r}.")
    allowed = PGD_OPTIONS if attack == "pgd" else {}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"{attack} takes no option {', '.join(unknown)}; it takes {', '.join(allowed) or 'none'}.")
    opts = {**allowed, **options}
    if attack == "pgd":
        opts["steps"] = attacks.check_steps(opts["steps"])
        if opts["step"] is not None:
            attacks.step_size(0.0, opts["steps"], opts["step"])  # checked here, before any work
    return opts


def _steps_n(eps_n: np.ndarray, opts: dict[str, Any]) -> np.ndarray:
    """Each image's PGD step: the given one, or 2.5 * its ε / steps."""
    if opts["step"] is not None:
        return np.full(len(eps_n), opts["step"], np.float32)
    return (attacks.MADRY_STEP * np.asarray(eps_n, np.float32) / opts["steps"]).astype(np.float32)


def _offset(on_progress: Progress | None, base: int, total: int) -> Progress | None:
    return None if on_progress is None else (lambda done, _t: on_progress(base + done, total))


def survivors(
    model: keras.Model,
    x_nhwc: np.ndarray,
    labels: np.ndarray,
    epsilons: Sequence[float],
    *,
    attack: str,
    bounds: Bounds,
    opts: dict[str, Any],
    batch_size: int | None = None,
    on_progress: Progress | None = None,
) -> np.ndarray:
    """Whether each image still gets its label at each ε: bool (E, N). ``opts`` as ``_options`` returns them."""
    eps_e = np.asarray(epsilons, np.float32)
    n_eps = len(eps_e)
    eng = attacks.engine(model)
    size = attacks.batch_size_for(x_nhwc, batch_size)
    chunk = size if attack == "fgsm" else max(1, size // n_eps)  # PGD steps (E x chunk) images at once
    per_image = 1 if attack == "fgsm" else n_eps * opts["steps"]
    total, done = len(x_nhwc) * per_image, 0
    tracker = attacks.Tracker(on_progress, total) if attack == "fgsm" else None
    noise = attacks.start_noise(x_nhwc.shape, opts["seed"]) if attack == "pgd" and opts["random_start"] else None
    low, high = tf.constant(bounds.low), tf.constant(bounds.high)
    deltas = tf.constant(attacks.amounts(eps_e, bounds.width))
    out = []
    for i in range(0, len(x_nhwc), chunk):
        x, y = x_nhwc[i : i + chunk], labels[i : i + chunk]
        if attack == "fgsm":
            g = eng.gradient_sign(tf.constant(x), tf.constant(y, tf.int32))  # one gradient for every ε
            xs = tf.clip_by_value(x[None] + deltas[:, None] * g[None], low, high)  # (E, n, H, W, C)
            preds = attacks.predict(model, np.asarray(xs).reshape(-1, *x.shape[1:]), batch_size=batch_size)
            out.append((preds == np.tile(y, n_eps)).reshape(n_eps, len(x)))
            tracker.add(len(x))
            continue
        n = len(x)
        eps_n = np.repeat(eps_e, n)  # (E * n,): ε-major, the images repeated
        start = None if noise is None else np.tile(noise[i : i + n], (n_eps, 1, 1, 1))
        x_adv = attacks.perturb(
            model,
            np.tile(x, (n_eps, 1, 1, 1)),
            np.tile(y, n_eps),
            eps_n,
            bounds=bounds,
            steps=opts["steps"],
            step_n=_steps_n(eps_n, opts),
            noise_nhwc=start,
            batch_size=batch_size,
            on_progress=_offset(on_progress, done, total),
        )
        done += n * per_image
        out.append((attacks.predict(model, x_adv, batch_size=batch_size) == np.tile(y, n_eps)).reshape(n_eps, n))
    return np.concatenate(out, axis=1)


def sweep(
    model: keras.Model,
    x_nhwc: np.ndarray,
    y: Any,
    epsilons: Sequence[float],
    *,
    attack: str = "fgsm",
    input_range: RangeLike = (0.0, 1.0),
    batch_size: int | None = None,
    on_progress: Progress | None = None,
    **attack_options: Any,
) -> np.ndarray:
    """Robust accuracy at each ε: the share of images still classified as their label ``y`` after the attack.

    Args:
        x_nhwc: float32 (N, H, W, C) in the model's range; y: their classes (None: the model's predictions).
        epsilons: fractions of the range's width, each 0..1 (include 0.0 for the clean accuracy).
        attack: 'fgsm' or 'pgd'; ``attack_options`` for PGD: steps (40), step (None: 2.5 ε / steps),
            random_start (True), seed (0).
        on_progress: ``(done, total)`` in images times gradients; True cancels.
    Returns:
        float64 (E,) accuracies in the order of ``epsilons``.
    """
    opts = _options(attack, attack_options)
    eps = [attacks.check_eps(e) for e in epsilons]
    if not eps:
        raise RobustnessError("Give at least one ε.")
    x = as_batch(model, x_nhwc)
    labels = attacks.labels_of(model, x, y, batch_size=batch_size)
    alive = survivors(
        model,
        x,
        labels,
        eps,
        attack=attack,
        bounds=attacks.bounds(x.shape[-1], input_range),
        opts=opts,
        batch_size=batch_size,
        on_progress=on_progress,
    )
    return alive.mean(axis=1)


def minimal_epsilon(
    model: keras.Model,
    x_nhwc: np.ndarray,
    y: Any = None,
    *,
    attack: str = "fgsm",
    max_eps: float = 0.3,
    grid: int = 12,
    iterations: int = 6,
    input_range: RangeLike = (0.0, 1.0),
    batch_size: int | None = None,
    on_progress: Progress | None = None,
    **attack_options: Any,
) -> np.ndarray:
    """The smallest ε that changes each image's prediction (or its label ``y``), to a grid and bisection.

    The first of ``grid`` evenly spaced ε up to ``max_eps`` at which the attack succeeds, then the
    interval below it halved ``iterations`` times: the result is within max_eps / grid / 2**iterations
    above the boundary (an attack need not be monotone in ε; the bracket is the first crossing).

    Returns:
        float64 (N,): ε per image; 0 where ``y`` is already not the prediction; inf where even
        ``max_eps`` leaves it.
    """
    opts = _options(attack, attack_options)
    max_eps = attacks.check_eps(max_eps, "max_eps")
    if int(grid) < 1 or int(iterations) < 0:
        raise RobustnessError(f"grid must be at least 1 and iterations at least 0, got {grid} and {iterations}.")
    x = as_batch(model, x_nhwc)
    labels = attacks.labels_of(model, x, y, batch_size=batch_size)
    bounds = attacks.bounds(x.shape[-1], input_range)
    grid_e = max_eps * np.arange(1, int(grid) + 1) / int(grid)
    per_image = 1 if attack == "fgsm" else opts["steps"]
    total = len(x) * per_image * (int(grid) + int(iterations))
    wrong = attacks.predict(model, x, batch_size=batch_size) != labels
    alive = survivors(
        model,
        x,
        labels,
        grid_e,
        attack=attack,
        bounds=bounds,
        opts=opts,
        batch_size=batch_size,
        on_progress=_offset(on_progress, 0, total),
    )
    found = ~alive.all(axis=0)
    first = np.argmin(alive, axis=0)  # the first ε at which the label is gone
    hi = np.where(found, grid_e[first], np.inf)
    lo = np.where(first > 0, grid_e[np.maximum(first - 1, 0)], 0.0)
    todo = np.flatnonzero(found & ~wrong)
    noise = attacks.start_noise(x.shape, opts["seed"]) if attack == "pgd" and opts["random_start"] else None
    done = len(x) * per_image * int(grid)
    for _ in range(int(iterations)):
        if not len(todo):
            break
        mid = ((lo[todo] + hi[todo]) / 2).astype(np.float32)
        x_adv = attacks.perturb(
            model,
            x[todo],
            labels[todo],
            mid,
            bounds=bounds,
            steps=opts.get("steps"),
            step_n=_steps_n(mid, opts) if attack == "pgd" else None,
            noise_nhwc=None if noise is None else noise[todo],
            batch_size=batch_size,
            on_progress=_offset(on_progress, done, total),
        )
        done += len(x) * per_image
        changed = attacks.predict(model, x_adv, batch_size=batch_size) != labels[todo]
        hi[todo] = np.where(changed, mid, hi[todo])
        lo[todo] = np.where(changed, lo[todo], mid)
    if on_progress is not None and on_progress(total, total):
        raise attacks.AttackCancelled("Cancelled.")
    return np.where(wrong, 0.0, hi)
