"""Search overhead: an Optuna study (``vizcore.training.search.run_study``) vs the same trials as plain ``fit`` calls.

LeNet-5 on 2,000 images of the bundled MNIST sample (500 for validation), 4 trials of 1 epoch
with fixed settings (enqueued, so both sides train exactly the same configs). The study adds per
trial: a run folder, a checkpoint and snapshots after each epoch, the SQLite writes of Optuna's
storage, the sampler and pruner, and the polling thread. Both sides start after one untimed
warm-up fit; the figure is the faster of two interleaved rounds, wall time and process CPU time.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.common import Row

TRIALS = (
    {"learning_rate": 1e-3, "optimizer": "adam"},
    {"learning_rate": 3e-3, "optimizer": "adam"},
    {"learning_rate": 1e-2, "optimizer": "sgd"},
    {"learning_rate": 3e-4, "optimizer": "rmsprop"},
)
ROUNDS = 2


def run() -> list[Row]:
    import keras

    from vizcore import models
    from vizcore.data.datasets import load_mnist_sample, stratified_split
    from vizcore.models import LoadedModel
    from vizcore.training import TrainConfig, fit, search, trainable_copy

    full = load_mnist_sample()
    train_idx, val_idx = stratified_split(full.y, validation_fraction=0.2, seed=0)
    train, val = full.subset(train_idx[:2000]), full.subset(val_idx[:500])
    keras.utils.set_random_seed(0)
    source = LoadedModel(models.presets.lenet5(), "preset:lenet5", "LeNet-5", tuple("0123456789"))
    base = TrainConfig(batch_size=32, epochs=1)
    space = search.SearchSpace(
        learning_rate=(1e-4, 1e-2),
        batch_size=(),
        optimizer=("adam", "sgd", "rmsprop"),
        step_every=None,
        step_factor=None,
    )
    fit(trainable_copy(source.model), train, val, base)  # warm-up: TensorFlow's first graph

    def plain() -> None:
        for params in TRIALS:
            fit(trainable_copy(source.model), train, val, search.trial_config(base, params))

    def study(root: Path) -> None:
        folder = root / "0123456789ab" / uuid.uuid4().hex[:12]
        opened = search.open_study(folder)
        for params in TRIALS:
            opened.enqueue_trial(params)
        result = search.run_study(
            source,
            train,
            val,
            space,
            base,
            folder=folder,
            budget=search.Budget(trials=len(TRIALS)),
            slots=threading.BoundedSemaphore(1),
            prune_after=len(TRIALS),
        )
        assert [r.state for r in result.rows] == ["complete"] * len(TRIALS), result.rows

    def clock(fn) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000

    times = {"plain": [], "study": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ROUNDS):
            times["plain"].append(clock(plain))
            times["study"].append(clock(lambda: study(Path(tmp))))
    (p_wall, p_cpu), (s_wall, s_cpu) = min(times["plain"]), min(times["study"])
    n = len(TRIALS)
    return [
        Row(
            "search",
            f"Optuna study, {n} trials of LeNet-5 x 1 epoch on 2,000 digits",
            s_wall,
            "the same trials as plain fit calls",
            p_wall,
            note=f"{(s_wall - p_wall) / n:+.0f} ms wall and {(s_cpu - p_cpu) / n:+.0f} ms CPU per trial; "
            f"CPU {s_cpu:.0f} vs {p_cpu:.0f} ms",
        )
    ]
