"""vizcore.transfer.teach: Teachable Machine's head, the base untouched, features computed once, fine-tuning."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from vizcore import attribution, transfer
from vizcore.models import blocks, graph

FAST = transfer.TeachSettings(epochs=3)


def weights_by_layer(model: keras.Model) -> dict[str, list[np.ndarray]]:
    return {
        path.rsplit("/", 1)[-1]: [np.array(w) for w in layer.get_weights()]
        for path, layer, _ in graph.iter_layers(model)
        if layer.weights
    }


def identical(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


def test_the_settings_default_to_teachable_machines_recipe():
    s = transfer.TeachSettings()
    assert (s.epochs, s.batch_size, s.learning_rate, s.head_units, s.validation_fraction) == (50, 16, 1e-3, 100, 0.15)
    assert (s.fine_tune_blocks, s.fine_tune_learning_rate, s.augment, s.seed) == (0, 1e-5, False, 0)
    assert s.problems() == [] and not s.fine_tunes
    assert transfer.TeachSettings(epochs=0, batch_size=0).problems() == [
        "Train the head for at least 1 epoch (got 0).",
        "The batch size must be at least 1, got 0.",
    ]


def test_the_head_is_teachable_machines_and_reads_the_pooled_last_block(digits_base, few):
    train, _ = few
    result = transfer.teach(digits_base, train, FAST)
    model = result.model
    assert result.feature_layer == "block4_relu"  # the last block's output, before GAP, dropout and the old head
    hidden, scores = model.get_layer("teach_hidden"), model.get_layer("teach_scores")
    assert hidden.kernel.shape == (128, 100) and hidden.use_bias and hidden.activation.__name__ == "relu"
    assert scores.kernel.shape == (100, 5) and not scores.use_bias and scores.activation.__name__ == "softmax"
    assert [layer.name for layer in model.layers][-3:] == ["teach_pool", "teach_hidden", "teach_scores"]
    assert "predictions" not in [layer.name for layer in model.layers] and model.output_shape == (None, 5)
    assert result.loaded.class_names == tuple("56789") and result.loaded.preprocess == "unit"
    # the split: 15% of each class held out, reproducible with the seed, disjoint from training
    again = transfer.split(train.y, FAST)
    np.testing.assert_array_equal(again[1], result.validation_indices)
    assert np.bincount(train.y[result.validation_indices]).tolist() == [3] * 5
    assert not set(result.validation_indices) & set(result.train_indices)
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"} and len(result.history["loss"]) == 3
    # the taught model is explained like any other: Grad-CAM at its default layer, the feature layer
    assert blocks.default_target_layer(model) == "block4_relu"
    heat = attribution.METHODS["Grad-CAM"](model, train.x_nhwc[0], layer="block4_relu")
    assert heat.shape == (28, 28) and np.isfinite(heat).all() and heat.max() == pytest.approx(1.0)


def test_a_taught_models_report_shows_its_own_curves_and_settings(digits_base, few):
    from types import SimpleNamespace

    from vizcore.report import sections
    from vizcore.report.content import Plot, Table

    result = transfer.teach(digits_base, few[0], FAST)
    ctx = SimpleNamespace(loaded=result.loaded, numbers={}, results={})
    section = sections.training(ctx)
    got = ctx.numbers["training"]
    assert got["source"] == "history" and got["epoch"] == [1, 2, 3]
    assert got["loss"] == result.history["loss"] and got["val_accuracy"] == result.history["val_accuracy"]
    plots = [b.figure for b in section.blocks if isinstance(b, Plot)]
    assert [list(t.y) for t in plots[0].data] == [result.history["loss"], result.history["val_loss"]]
    settings = dict(next(b for b in section.blocks if isinstance(b, Table)).rows)
    assert settings["epochs"] == "3" and settings["head_units"] == "100"


def test_the_base_stays_bit_identical_and_so_does_its_part_in_the_taught_model(digits_base, few):
    before = weights_by_layer(digits_base.model)
    result = transfer.teach(digits_base, few[0], FAST)
    after = weights_by_layer(digits_base.model)
    assert all(identical(before[name], after[name]) for name in before)
    taught = weights_by_layer(result.model)
    base_layers = [n for n in taught if n.startswith("block")]
    assert len(base_layers) == 8 and all(identical(before[n], taught[n]) for n in base_layers)
    assert all(not result.model.get_layer(n).trainable for n in base_layers)  # frozen in the taught model


class ImagesThroughTheBase:
    """Counts the images that eagerly pass the base's first convolution (symbolic traces have no batch size)."""

    def __init__(self, monkeypatch):
        self.images = 0
        original = keras.layers.Conv2D.call

        def call(layer, inputs, *args, **kwargs):
            if layer.name == "block1_conv" and inputs.shape[0] is not None:
                self.images += int(inputs.shape[0])
            return original(layer, inputs, *args, **kwargs)

        monkeypatch.setattr(keras.layers.Conv2D, "call", call)


def test_the_base_runs_once_over_the_images_however_many_epochs(digits_base, few, monkeypatch):
    train = few[0]
    counts = []
    for epochs in (2, 20):
        counter = ImagesThroughTheBase(monkeypatch)
        result = transfer.teach(digits_base, train, transfer.TeachSettings(epochs=epochs))
        assert len(result.history["loss"]) == epochs
        counts.append(counter.images)
    assert counts == [len(train), len(train)] and result.base_images == len(train)
    counter = ImagesThroughTheBase(monkeypatch)
    result = transfer.teach(digits_base, train, transfer.TeachSettings(epochs=5, augment=True, augment_copies=2))
    assert counter.images == len(train) + 2 * 85 == result.base_images  # each augmented copy of a training image once
    features = [r for r in result.records if isinstance(r, transfer.FeatureRecord)]
    assert features[-1].done == features[-1].total == 270 and features[-1].progress < 1.0


def test_fine_tuning_changes_only_the_last_block_and_never_the_batchnorm_statistics(digits_base, few):
    settings = transfer.TeachSettings(epochs=2, fine_tune_blocks=1, fine_tune_epochs=2, fine_tune_learning_rate=1e-3)
    result = transfer.teach(digits_base, few[0], settings)
    assert result.status == "completed" and result.fine_tuned == ("block4_conv",)
    assert len(result.history["loss"]) == 4  # phase 2's epochs follow phase 1's
    before, after = weights_by_layer(digits_base.model), weights_by_layer(result.model)
    assert not identical(before["block4_conv"], after["block4_conv"])
    for name in ("block1_conv", "block2_conv", "block3_conv"):
        assert identical(before[name], after[name]), name
    for i in range(1, 5):  # gamma, beta, moving mean and variance of every BatchNormalization, the last block's too
        assert identical(before[f"block{i}_bn"], after[f"block{i}_bn"]), i
    assert transfer.fine_tune_layers(digits_base.model, "block4_relu", 2) == ("block3_conv", "block4_conv")


def test_stop_keeps_the_head_trained_so_far(digits_base, few):
    seen = []

    def stop_after_two_epochs() -> bool:
        return sum(1 for r in seen if getattr(r, "kind", "") == "epoch") >= 2

    result = transfer.teach(
        digits_base,
        few[0],
        transfer.TeachSettings(epochs=40),
        on_progress=seen.append,
        should_stop=stop_after_two_epochs,
    )
    assert result.status == "stopped" and 2 <= len(result.history["loss"]) <= 3
    assert result.model.predict(few[1].x_nhwc[:4], verbose=0).shape == (4, 5)
    progress = [r.progress for r in seen if hasattr(r, "progress")]
    features = 100 / (100 + transfer.phases.HEAD_COST * 40 * 85)  # base: 100 images; head: 40 epochs of 85
    assert progress == sorted(progress)  # over the whole run, not restarting per stage
    assert features <= progress[-1] < features + (1 - features) * 4 / 40


def test_a_teach_run_is_a_training_job_with_a_slot(digits_base, few):
    import threading

    slots = threading.BoundedSemaphore(1)
    run = transfer.start_teach(
        digits_base, few[0], transfer.TeachSettings(epochs=200), session="0123456789ab", slots=slots
    )
    from vizcore.errors import TrainingError

    with pytest.raises(TrainingError, match="at a time"):
        transfer.start_teach(digits_base, few[0], FAST, session="0123456789ab", slots=slots)
    while not run.job.snapshot().epochs:
        run.job.wait(0.05)
    run.stop()
    assert run.job.wait(60)
    state = run.job.snapshot()
    assert state.status == "stopped" and run.result is not None and run.result.status == "stopped"
    assert len(state.epochs) == len(run.result.history["loss"]) < 200
    assert slots.acquire(blocking=False)  # given back when the job ended
