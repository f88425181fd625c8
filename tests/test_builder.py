"""Tests of vizcore.training.builder: shapes and parameters before building match Keras; bad choices give messages."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from vizcore.errors import ModelBuildError
from vizcore.models.graph import layer_table
from vizcore.models.presets import PRESETS, build_preset
from vizcore.training import builder
from vizcore.training.builder import AvgPool, BatchNorm, Conv, Dense, Dropout, Flatten, GlobalAvgPool, MaxPool


def keras_rows(model: keras.Model) -> list[tuple[str, tuple, int]]:
    return [(r.path, r.output_shape[1:], r.params) for r in layer_table(model)]


def inferred_rows(rows: list[builder.Row]) -> list[tuple[str, tuple, int]]:
    return [(r.name, r.output_shape, r.params) for r in rows[1:]]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_infer_matches_keras_for_every_preset(name):
    preset = PRESETS[name]
    specs = builder.specs_from_preset(name)
    rows = builder.infer(specs, preset.input_shape, 10)
    assert builder.problems(rows) == []
    reference = build_preset(name)
    assert inferred_rows(rows) == keras_rows(reference)
    assert builder.total_params(rows) == reference.count_params()
    built = builder.build(specs, preset.input_shape, 10, name=name)
    assert keras_rows(built) == keras_rows(reference)
    # same layer names and shapes: the bundled preset weights load into the built model
    built.set_weights(reference.get_weights())
    x = np.random.default_rng(0).random((2, *preset.input_shape), dtype=np.float32)
    np.testing.assert_allclose(built(x), reference(x), rtol=1e-5, atol=1e-6)


def test_infer_matches_keras_for_every_layer_kind_and_option():
    specs = (
        Conv(8, 3, stride=2, padding="same", activation="leaky_relu"),
        BatchNorm(),
        Conv(5, 4, stride=3, activation="elu"),
        AvgPool(3, stride=2, padding="same"),
        MaxPool(2, stride=1),
        Dropout(0.1),
        GlobalAvgPool(),
        Dense(7, activation="tanh"),
        BatchNorm(),
        Dense(3, activation="sigmoid"),
        Flatten(),  # a no-op on a vector: allowed, with a note
    )
    rows = builder.infer(specs, (37, 29, 3), 4)
    assert builder.problems(rows) == []
    assert [r.name for r in rows] == [
        "image",
        "conv1",
        "bn1",
        "conv2",
        "pool1",
        "pool2",
        "dropout1",
        "gap1",
        "fc1",
        "bn2",
        "fc2",
        "flatten1",
        "logits",
        "probs",
    ]
    assert rows[11].note and "does nothing" in rows[11].note
    model = builder.build(specs, (37, 29, 3), 4, name="all kinds")
    assert inferred_rows(rows) == keras_rows(model)
    assert model.name == "all_kinds"
    assert model.get_layer("conv1").activation.__name__ == "leaky_relu"


def test_one_output_gives_a_sigmoid_head():
    model = builder.build((Conv(2, 3), Flatten()), (8, 8, 1), 1)
    assert model.get_layer("probs").activation.__name__ == "sigmoid"
    assert model.output_shape == (None, 1)


@pytest.mark.parametrize(
    ("specs", "row_name", "words"),
    [
        ((Conv(8, 5), MaxPool(2), Conv(8, 3), Conv(8, 3)), "conv3", "does not fit the 2x2 input"),
        ((Conv(8, 3), Dense(10)), "fc1", "add a Flatten"),
        ((Conv(8, 3), Flatten(), Conv(8, 3)), "conv2", "move this layer before Flatten"),
        ((Conv(8, 3), Flatten(), MaxPool(2)), "pool1", "already a vector"),
        ((Conv(8, 3), Flatten(), GlobalAvgPool()), "gap1", "already a vector"),
        ((Conv(8, 3), Dropout(1.0), Flatten()), "dropout1", "[0, 1)"),
        ((Conv(8, 3), Dropout(-0.1), Flatten()), "dropout1", "[0, 1)"),
        ((Conv(0, 3), Flatten()), "conv1", "at least 1"),
        ((Conv(8, 3, activation="swish"), Flatten()), "conv1", "Unknown activation"),
        ((Conv(8, 3, padding="full"), Flatten()), "conv1", "Padding"),
        ((Conv(8, 3, name="a"), Conv(8, 3, name="a"), Flatten()), "a", "used by another layer"),
        ((Conv(8, 3, name="logits"), Flatten()), "logits", "not allowed"),
        ((Conv(8, 3),), "logits", "add a Flatten or GlobalAveragePooling"),
        ((Flatten(), Dense(10)), "image", "no Conv2D layer"),
        ((Conv(64, 3), Flatten(), Dense(65536)), "logits", "parameters"),
    ],
)
def test_invalid_choices_give_messages_not_exceptions(specs, row_name, words):
    rows = builder.infer(specs, (12, 12, 1), 10)
    flagged = [r for r in rows if r.problem]
    assert flagged, "expected a problem"
    assert flagged[0].name == row_name
    assert words in flagged[0].problem
    with pytest.raises(ModelBuildError, match="cannot be built"):
        builder.build(specs, (12, 12, 1), 10)


def test_rows_after_a_problem_have_no_shape_but_still_check_their_own_settings():
    rows = builder.infer((Conv(8, 20), Conv(8, 3), Dropout(2.0), Flatten()), (12, 12, 1), 10)
    assert rows[1].problem and rows[1].output_shape is None
    assert rows[2].problem is None and rows[2].output_shape is None
    assert rows[3].problem and "[0, 1)" in rows[3].problem
    assert rows[-2].output_shape is None and rows[-2].problem is None


def test_bad_input_shape_and_classes_are_messages():
    assert builder.infer((Conv(4, 3), Flatten()), (0, 12, 1), 10)[0].problem
    assert "classes" in builder.infer((Conv(4, 3), Flatten()), (12, 12, 1), 0)[-2].problem


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_specs_round_trip_through_json(name):
    specs = builder.specs_from_preset(name)
    text = builder.specs_to_json(specs)
    assert builder.specs_from_json(text) == specs
    assert len(text) < 600  # compact enough for a URL


def test_json_round_trip_keeps_every_setting():
    specs = (
        Conv(7, 5, stride=2, padding="same", activation="tanh", name="c"),
        AvgPool(3, stride=1),
        MaxPool(2, padding="same"),
        BatchNorm(),
        Dropout(0.3),
        GlobalAvgPool(),
        Dense(9, activation="linear"),
    )
    assert builder.specs_from_json(builder.specs_to_json(specs)) == specs
    assert json.loads(builder.specs_to_json((Conv(),))) == [{"type": "conv"}]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"type": "conv"}',
        '[{"filters": 3}]',
        '[{"type": "lstm"}]',
        '[{"type": "conv", "size": 3}]',
        '[{"type": "conv", "filters": "many"}]',
        '[{"type": "conv", "stride": null}]',
        '[{"type": "dropout", "rate": true}]',
    ],
)
def test_bad_json_is_a_typed_error(text):
    with pytest.raises(ModelBuildError):
        builder.specs_from_json(text)


def test_unknown_preset():
    with pytest.raises(ValueError, match="Unknown preset"):
        builder.specs_from_preset("alexnet")
