"""Training overhead: ``vizcore.training.fit`` with the work a live page does vs a plain ``model.fit``.

LeNet-5 on the bundled MNIST sample (4,000 training images, batch 32, 125 batches per epoch),
SGD (lr 0.001, momentum 0.9) as in the seed. Every variant is timed the same way, by a
callback with epoch hooks only: wall and process CPU time from one epoch's end to the next (so
work done between epochs, such as checkpoints, counts), leaving out the first epoch (graph
tracing). The figures are the fastest such epoch over two interleaved rounds; the CPU-time
overhead is also given because the benchmark machine is shared and wall time then measures the
neighbours as well.
The measured sink does what a Streamlit fragment's data side does with each record it gets: keep
it and rebuild a Plotly-style figure dict of the whole history as JSON.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from bench.common import Row

EPOCHS = 5  # timed epochs, after one untimed first epoch
ROUNDS = 2


def _ui_sink():
    """A sink that keeps the records and serialises a two-trace figure of the history each time."""
    records = []

    def sink(record):
        records.append(record)
        batches = [r for r in records if r.kind == "batch"]
        epochs = [r for r in records if r.kind == "epoch"]
        figure = {
            "data": [
                {
                    "type": "scatter",
                    "name": "loss (smoothed)",
                    "x": [b.epoch_float for b in batches],
                    "y": [b.smooth_loss for b in batches],
                },
                {
                    "type": "scatter",
                    "name": "val loss",
                    "x": [e.epoch_float for e in epochs],
                    "y": [e.val_loss for e in epochs],
                },
            ],
            "layout": {"title": f"epoch {record.epoch + 1}", "xaxis": {"title": "epoch"}},
        }
        json.dumps(figure)

    return sink, records


class _EpochClock:
    """Wall and process CPU time at each epoch end (epoch hooks only: Keras' batch loop is untouched)."""

    def __new__(cls):
        import keras

        class EpochClock(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.ends: list[tuple[float, float]] = []

            def on_epoch_end(self, epoch, logs=None):
                self.ends.append((time.perf_counter(), time.process_time()))

            def fastest_ms(self) -> tuple[float, float]:
                """(wall, cpu) ms of the fastest epoch after the first, each from one epoch end to the next."""
                steps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(self.ends, self.ends[1:])]
                return min(w for w, _ in steps) * 1000.0, min(c for _, c in steps) * 1000.0

        return EpochClock()


def _plain_ms(train, config) -> tuple[float, float]:
    from vizcore import models
    from vizcore.training import loss_and_metric, make_optimizer, steps_per_epoch

    clock = _EpochClock()
    model = models.presets.lenet5()
    loss, metric = loss_and_metric(model)
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch(len(train), config.batch_size)), loss=loss, metrics=[metric]
    )
    model.fit(train.x_nhwc, train.y, batch_size=config.batch_size, epochs=1 + EPOCHS, verbose=0, callbacks=[clock])
    return clock.fastest_ms()


def _vizcore_ms(train, config, **kwargs) -> tuple[float, float, int]:
    from vizcore import models
    from vizcore.training import fit

    sink, _ = _ui_sink()
    clock = _EpochClock()
    result = fit(
        models.presets.lenet5(),
        train,
        None,
        config.replace(epochs=1 + EPOCHS),
        on_progress=sink,
        callbacks=[clock],
        **kwargs,
    )
    sent = sum(1 for r in result.records if r.kind == "batch")
    return (*clock.fastest_ms(), sent)


def run() -> list[Row]:
    from vizcore.data import datasets
    from vizcore.training import TrainConfig

    full = datasets.load_mnist_sample()
    train_idx, _ = datasets.stratified_split(full.y, validation_fraction=0.2, seed=0)
    train = full.subset(train_idx)
    config = TrainConfig(optimizer="sgd", learning_rate=1e-3, momentum=0.9, batch_size=32, snapshot_every_batches=0)
    folder = Path(tempfile.mkdtemp(prefix="convlens_bench_"))
    variants = {
        "throttled": dict(),
        "every batch": dict(min_interval_s=0.0),
        "files": dict(checkpoint_path=folder / "lenet.keras", snapshot_path=folder / "lenet.npz"),
    }
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    sent: dict[str, int] = {}
    for _ in range(ROUNDS):
        w, c = _plain_ms(train, config)
        wall["plain"], cpu["plain"] = min(wall.get("plain", w), w), min(cpu.get("plain", c), c)
        for name, kwargs in variants.items():
            w, c, sent[name] = _vizcore_ms(train, config, **kwargs)
            wall[name], cpu[name] = min(wall.get(name, w), w), min(cpu.get(name, c), c)
    label = "plain model.fit, no callbacks"

    def row(name: str, title: str, extra: str) -> Row:
        over_wall = (wall[name] / wall["plain"] - 1.0) * 100.0
        over_cpu = (cpu[name] / cpu["plain"] - 1.0) * 100.0
        note = (
            f"overhead {over_wall:+.1f}% wall, {over_cpu:+.1f}% CPU time "
            f"({cpu[name]:.0f} vs {cpu['plain']:.0f} ms); {extra}"
        )
        return Row("training", title, wall[name], label, wall["plain"], note)

    return [
        row(
            "throttled",
            "fit + live progress (records every 0.25 s) + figure JSON, LeNet-5 per epoch",
            f"{sent['throttled']} batch records over {1 + EPOCHS} epochs",
        ),
        row(
            "every batch",
            "fit + a record every batch + figure JSON, LeNet-5 per epoch",
            f"{sent['every batch']} batch records; what the throttle saves",
        ),
        row(
            "files",
            "fit + progress + checkpoint and snapshots each epoch, LeNet-5 per epoch",
            "atomic .keras + history + .npz every epoch",
        ),
    ]


def accuracy_check(epochs: int = 10) -> dict:
    """The MNIST CNN preset (128 dense units) with the default TrainConfig (Adam, lr 0.001, batch 32),
    on the bundled sample split 80/20 (stratified, seed 0): held-out accuracy and wall time."""
    from vizcore import models
    from vizcore.data import datasets
    from vizcore.inspect.evaluation import evaluate
    from vizcore.training import TrainConfig, fit, split_for_training

    config = TrainConfig(epochs=epochs)
    train, val = split_for_training(datasets.load_mnist_sample(), config)
    model = models.presets.mnist_cnn()
    start = time.perf_counter()
    result = fit(model, train, val, config)
    seconds = time.perf_counter() - start
    return {
        "held_out_accuracy": evaluate(model, val).accuracy,
        "seconds": round(seconds, 1),
        "status": result.status,
        "val_accuracy_per_epoch": [round(a, 4) for a in result.history["val_accuracy"]],
        "train_images": len(train),
        "held_out_images": len(val),
    }


if __name__ == "__main__":  # python -m bench.bench_training  ->  the 10-epoch accuracy check
    print(json.dumps(accuracy_check(), indent=2))
