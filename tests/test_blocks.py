"""vizcore.models.blocks on real keras.applications (untrained, 96x96), a Teachable-Machine-shaped nest
and the bundled CNNs.

The structural oracle is Keras's own saved config: the inbound links it records, read without vizcore.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import nested_mobilenet, tiny_functional

from vizcore import models
from vizcore.errors import NotAnImageModelError
from vizcore.inspect import activations
from vizcore.models import blocks, features, graph

SIZE = (96, 96, 3)


def _app(build) -> keras.Model:
    keras.utils.set_random_seed(0)
    return build(weights=None, input_shape=SIZE)


@pytest.fixture(scope="module")
def mobilenet():
    return _app(keras.applications.MobileNetV2)


@pytest.fixture(scope="module")
def resnet():
    return _app(keras.applications.ResNet50)


@pytest.fixture(scope="module")
def efficientnet():
    return _app(keras.applications.EfficientNetB0)


@pytest.fixture(scope="module")
def teachable():
    """Teachable Machine's shape: a Sequential holding a Sequential holding MobileNetV2, then a Sequential head."""
    keras.utils.set_random_seed(5)
    base = keras.applications.MobileNetV2(input_shape=SIZE, alpha=0.35, include_top=False, weights=None)
    features = keras.Sequential(
        [keras.Input(SIZE), base, keras.layers.GlobalAveragePooling2D(name="gap")], name="sequential_1"
    )
    head = keras.Sequential(
        [
            keras.Input((1280,)),
            keras.layers.Dense(100, activation="relu", name="dense_Dense1"),
            keras.layers.Dense(3, activation="softmax", name="dense_Dense2"),
        ],
        name="sequential_3",
    )
    return keras.Sequential([keras.Input(SIZE), features, head], name="sequential_4")


def _config_links(model: keras.Model) -> list[tuple[str, str]]:
    """(source layer, destination layer) for every link Keras's Functional config records."""

    def sources(node):
        if isinstance(node, dict):
            history = (
                node.get("config", {}).get("keras_history") if node.get("class_name") == "__keras_tensor__" else None
            )
            return [history[0]] if history else [s for v in node.values() for s in sources(v)]
        if isinstance(node, (list, tuple)):
            return [s for v in node for s in sources(v)]
        return []

    inputs = {layer.name for layer in model.layers if isinstance(layer, keras.layers.InputLayer)}
    return [
        (src, spec["name"])
        for spec in model.get_config()["layers"]
        for src in sources(spec["inbound_nodes"])
        if src not in inputs
    ]


def test_block_of_reads_keras_application_names():
    cases = {
        "block_3_project_BN": "block_3",
        "mobilenetv2_1.00_224/block_16_add": "block_16",
        "expanded_conv_depthwise": "expanded_conv",
        "conv4_block2_out": "conv4_block2",
        "block2a_se_excite": "block2a",
        "block5_conv3": "block5",
        "conv_dw_7_relu": "block_7",
        "stem_conv": "stem",
        "top_activation": "top",
        "pool1_pool": "pool1",
        "conv2d_1": "",
        "Conv_1": "",
        "out_relu": "",
        "dense": "",
        "blockade_1": "",
    }
    assert {name: blocks.block_of(name) for name in cases} == cases


@pytest.mark.parametrize(
    ("fixture", "default", "first", "count"),
    [
        ("mobilenet", "out_relu", "Conv1_relu", 19),
        ("resnet", "conv5_block3_out", "conv1_relu", 19),
        ("efficientnet", "top_activation", "stem_activation", 18),
    ],
)
def test_applications_default_to_their_block_output(request, fixture, default, first, count):
    model = request.getfixturevalue(fixture)
    groups = blocks.layer_groups(model)
    assert len(groups) == count and groups[0].name == "stem" and groups[0].output == first
    assert blocks.default_target_layer(model) == default
    # every leaf layer in exactly one group
    leaves = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    grouped = [p for g in groups for p in g.layers]
    assert sorted(grouped) == sorted(leaves) and len(set(grouped)) == len(grouped)
    # Keras's own links: a tensor that leaves a block leaves from that block's output
    owner = {p: g for g in groups for p in g.layers}
    crossing = [(a, b) for a, b in _config_links(model) if owner[a] is not owner[b]]
    assert len(crossing) >= count - 1
    assert all(a == owner[a].output for a, _ in crossing), [c for c in crossing if c[0] != owner[c[0]].output]
    # the default is what the last convolution becomes after its BatchNorm, activation (and add)
    convs = graph.conv_layers(model)
    assert graph.last_conv_layer(model) == convs[-1] != default
    assert isinstance(model.get_layer(default), (keras.layers.Activation, keras.layers.ReLU))
    cams = blocks.cam_layers(model)
    assert cams[-1] == default and set(blocks.block_outputs(model)) <= set(cams)
    assert not any(isinstance(model.get_layer(p), graph.CONV_TYPES) for p in cams)  # every conv here feeds a BatchNorm


def test_resnet_blocks_end_at_their_residual_output(resnet):
    groups = {g.name: g for g in blocks.layer_groups(resnet)}
    assert [g for g in groups if g.startswith("conv4_")] == [f"conv4_block{i}" for i in range(1, 7)]
    for name, g in groups.items():
        if "_block" in name:
            assert g.output == f"{name}_out" and f"{name}_add" in g.layers
    assert groups["top"].layers == ("avg_pool", "predictions") and groups["top"].output is None


def test_cam_layers_give_a_gradcam_at_every_block_output(mobilenet):
    from vizcore.attribution import gradcam

    x = np.random.default_rng(0).random(SIZE, dtype=np.float32) * 2 - 1
    default = gradcam(mobilenet, x)  # layer=None: the default block output
    np.testing.assert_array_equal(gradcam(mobilenet, x, layer="out_relu"), default)
    sweep = blocks.sweep_layers(mobilenet, limit=6)
    cams = blocks.cam_layers(mobilenet)
    assert len(sweep) == 6 and sweep[0] == cams[0] and sweep[-1] == cams[-1]
    assert [cams.index(p) for p in sweep] == sorted(cams.index(p) for p in sweep)
    assert blocks.sweep_layers(mobilenet, limit=50) == cams


def test_teachable_machine_nest(teachable):
    base = next(
        p for p, layer, _ in graph.iter_layers(teachable) if isinstance(layer, keras.Model) and "mobilenet" in p
    )
    assert base.startswith("sequential_1/")
    default = blocks.default_target_layer(teachable)
    assert default == f"{base}/out_relu" and graph.resolve_layer(teachable, "out_relu") == default
    groups = blocks.layer_groups(teachable)
    assert groups[0].name == "stem" and groups[0].layers[0] == f"{base}/Conv1"
    assert groups[-1].name == "top" and groups[-1].output == default
    assert groups[-1].layers[-3:] == ("sequential_1/gap", "sequential_3/dense_Dense1", "sequential_3/dense_Dense2")
    paths = {p for g in groups for p in g.layers}
    assert "sequential_1" not in paths and base not in paths  # containers are not layers of a block
    labels = blocks.layer_labels(teachable)
    assert labels[f"{base}/block_3_project_BN"] == f"block_3 · {base}/block_3_project_BN"
    acts, _ = features.feature_model(teachable, [default]).predict(np.zeros((1, *SIZE), np.float32))
    assert acts[default].shape == (1, 3, 3, 1280)


@pytest.mark.parametrize("name", ["mnist_cnn", "lenet5", "shapes_cnn"])
def test_bundled_models_keep_their_last_conv(name):
    model = models.open_bundled(name).model
    convs = graph.conv_layers(model)
    assert blocks.default_target_layer(model) == convs[-1] == models.summary.summarize(model).default_layer
    cams = blocks.cam_layers(model)
    assert set(convs) <= set(cams)  # fused ReLU, no BatchNorm: every conv is worth explaining
    pools = [layer.name for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert blocks.block_outputs(model) == tuple(pools)
    assert blocks.layer_groups(model)[-1].name == "head" and blocks.layer_groups(model)[-1].output is None
    assert blocks.default_target_layer(models.open_bundled("mnist_cnn").model) == "conv2"


def test_user_model_is_cut_into_stages_and_defaults_after_batchnorm():
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            L.Conv2D(8, 3, padding="same", name="c1"),
            L.BatchNormalization(name="bn1"),
            L.ReLU(name="r1"),
            L.Conv2D(8, 3, padding="valid", name="c2"),
            L.Activation("relu", name="r2"),  # 30x30: same stage
            L.MaxPooling2D(name="p1"),
            L.Dropout(0.2, name="d1"),  # a pooling ends stage 1; the dropout stays in it
            L.Conv2D(16, 3, strides=2, padding="same", name="c3"),
            L.BatchNormalization(name="bn3"),
            L.ReLU(name="r3"),  # 15 -> 8
            L.Conv2D(16, 3, padding="same", name="c4"),
            L.BatchNormalization(name="bn4"),
            L.Activation("relu", name="r4"),
            L.SpatialDropout2D(0.1, name="sd"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(4, activation="softmax", name="out"),
        ],
        name="user",
    )
    groups = blocks.layer_groups(model)
    assert [(g.name, g.layers, g.output) for g in groups] == [
        ("stage_1", ("c1", "bn1", "r1", "c2", "r2", "p1", "d1"), "p1"),
        ("stage_2", ("c3", "bn3", "r3", "c4", "bn4", "r4", "sd"), "r4"),
        ("head", ("gap", "out"), None),
    ]
    assert blocks.default_target_layer(model) == "r4"  # not the pre-BatchNorm c4
    assert blocks.cam_layers(model) == ("c2", "p1", "r4")  # c1, c3, c4 feed a BatchNorm


def test_functional_without_block_names_and_no_conv():
    model = tiny_functional()
    assert [g.name for g in blocks.layer_groups(model)] == ["stage_1", "stage_2", "head"]
    assert blocks.default_target_layer(model) == "conv_b"
    dense = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(NotAnImageModelError, match="no convolution layer"):
        blocks.default_target_layer(dense)


def test_overview_columns_by_block(mobilenet):
    cols = activations.block_columns(mobilenet)
    groups = blocks.layer_groups(mobilenet)
    head = tuple(
        layer.name for layer in mobilenet.layers[-2:]
    )  # Keras numbers auto-named layers per process: read them
    assert head[1] == "predictions" and head[0].startswith("global_average_pooling2d")
    assert cols == tuple(g.output for g in groups) + head
    assert set(cols) <= set(activations.activation_layers(mobilenet))
    small = models.open_bundled("lenet5").model
    assert activations.block_columns(small) == ("pool1", "pool2", "fc1", "fc2", "logits", "probs")


def test_architecture_diagram_by_block(mobilenet, resnet):
    dot = models.summary.architecture_dot(mobilenet, by_block=True)
    nodes = [line for line in dot.splitlines() if "[label=" in line]
    assert len(nodes) == 1 + len(blocks.layer_groups(mobilenet))  # the input and one node per block
    assert '"block_3" [label="block_3\\n9 layers → 12x12x32"' in dot
    assert '"input" -> "stem"' in dot and '"block_1" -> "block_2"' in dot and '"block_16" -> "top"' in dot
    assert "block_3_expand" not in dot
    links = [line for line in dot.splitlines() if "->" in line]
    assert len(links) == len(nodes) - 1  # MobileNetV2's residuals stay inside their blocks: a chain
    every = models.summary.architecture_dot(mobilenet, max_nodes=1000)
    assert '"block_3_expand"' in every and '"block_2_add"' in every
    res = models.summary.architecture_dot(resnet, by_block=True)
    assert '"conv2_block3" -> "conv3_block1"' in res and '"conv5_block3" -> "top"' in res
    nested = models.summary.architecture_dot(nested_mobilenet(), by_block=True)  # a nested base stays one box
    assert '"input" -> "mobilenetv2_0.35_64"' in nested and '"mobilenetv2_0.35_64" -> "head"' in nested
    assert '"head" [label="head\\n2 layers → 1"' in nested and "Conv_1" not in nested
