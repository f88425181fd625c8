"""Activations against a NumPy oracle on a hand-weighted net; grids, overview and statistics."""

from __future__ import annotations

import gc
import itertools
import weakref

import keras
import numpy as np
import pytest
from helpers import nested_mobilenet

from vizcore import cache, profile
from vizcore.inspect import activations
from vizcore.models import features, graph
from vizcore.present import grids, render


def numpy_conv(
    x_hwc: np.ndarray, k_hwio: np.ndarray, bias: np.ndarray, *, stride: int = 1, padding: str = "valid"
) -> np.ndarray:
    """Plain-loop 2-D convolution (cross-correlation), TensorFlow's 'same' padding."""
    h, w, _ = x_hwc.shape
    kh, kw, _, cout = k_hwio.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-w // stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - w, 0)
        x_hwc = np.pad(x_hwc, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            patch = x_hwc[i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[i, j] = np.tensordot(patch, k_hwio, axes=3) + bias
    return out


def numpy_maxpool(x_hwc: np.ndarray, size: int = 2) -> np.ndarray:
    h, w, c = x_hwc.shape
    return x_hwc[: h // size * size, : w // size * size].reshape(h // size, size, w // size, size, c).max(axis=(1, 3))


def _hand_weights(shape: tuple[int, ...], offset: int) -> np.ndarray:
    return ((np.arange(np.prod(shape)) + offset) % 7 - 3).reshape(shape).astype(np.float32) / 4.0


def build_hand_model() -> keras.Model:
    """A new hand-weighted model each call (a cold cache)."""
    inputs = keras.Input((8, 8, 2), name="img")
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv1")(inputs)  # 6x6x3
    x = keras.layers.MaxPooling2D(2, name="pool")(x)  # 3x3x3
    x = keras.layers.Conv2D(2, 2, strides=2, padding="same", name="conv2")(x)  # 2x2x2, linear
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.Flatten(name="flat")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="pred")(x)
    model = keras.Model(inputs, outputs, name="hand")
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([_hand_weights(tuple(w.shape), offset=i) for i, w in enumerate(layer.weights)])
    return model


@pytest.fixture(scope="module")
def hand_model() -> keras.Model:
    return build_hand_model()


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((8, 8, 2)).astype(np.float32)


def test_activations_equal_a_numpy_forward_pass(hand_model):
    x = _image()
    acts = activations.get_activations(hand_model, x)
    assert list(acts) == ["conv1", "pool", "conv2", "pred"]  # dropout and flatten left out
    w = {
        name: [np.array(v, dtype=np.float64) for v in hand_model.get_layer(name).get_weights()]
        for name in ("conv1", "conv2", "pred")
    }
    conv1 = np.maximum(numpy_conv(x.astype(np.float64), *w["conv1"]), 0)
    pool = numpy_maxpool(conv1)
    conv2 = numpy_conv(pool, *w["conv2"], stride=2, padding="same")
    logits = conv2.reshape(-1) @ w["pred"][0] + w["pred"][1]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    for name, expected in (("conv1", conv1), ("pool", pool), ("conv2", conv2), ("pred", probs)):
        assert acts[name].shape == expected.shape
        np.testing.assert_allclose(acts[name], expected, rtol=1e-5, atol=1e-5, err_msg=name)
    assert (conv2 < 0).any() and (conv1 == 0).any()  # the oracle exercises ReLU and signed maps


def test_one_cached_sub_model_per_layer_list(monkeypatch):
    hand_model = build_hand_model()
    calls = []
    real = features.feature_model
    monkeypatch.setattr(features, "feature_model", lambda m, layers: calls.append(tuple(layers)) or real(m, layers))
    first = activations.get_activations(hand_model, _image(1))
    again = activations.get_activations(hand_model, _image(1), layers=None)
    other = activations.get_activations(hand_model, _image(2), ["conv2", "conv1"])
    assert calls == [("conv1", "pool", "conv2", "pred"), ("conv2", "conv1")]
    assert list(other) == ["conv2", "conv1"]
    np.testing.assert_array_equal(first["conv1"], again["conv1"])
    batch = np.stack([_image(1), _image(2)])
    both = activations.get_activations_batch(hand_model, batch, ["conv1", "pred"])
    np.testing.assert_allclose(both["conv1"][1], other["conv1"], rtol=1e-6, atol=1e-6)
    assert both["pred"].shape == (2, 2)
    with pytest.raises(ValueError, match="8x8x2"):
        activations.get_activations(hand_model, np.zeros((8, 8, 1), np.float32))


def test_slow_passes_switch_to_the_compiled_function_with_equal_numbers(monkeypatch):
    hand_model = build_hand_model()
    monkeypatch.setattr(activations, "COMPILE_AFTER_MS", -1.0)  # every pass counts as slow
    eager = activations.get_activations(hand_model, _image(3))
    runner = activations._runner(hand_model, ("conv1", "pool", "conv2", "pred"))  # the cached one
    assert runner.compiled
    compiled = activations.get_activations(hand_model, _image(3))
    for name in eager:
        np.testing.assert_allclose(compiled[name], eager[name], rtol=1e-6, atol=1e-6)


def test_warm_traces_the_next_inputs_compiled_pass_with_equal_numbers(monkeypatch):
    model = build_hand_model()
    monkeypatch.setattr(activations, "COMPILE_AFTER_MS", -1.0)  # every pass counts as slow
    store = activations.ActivationStore(model, _image(3))
    store.select(["pool"])  # the page's first view: one eager pass of every layer, found slow
    runner = activations._runner(model, store.computed)  # the cached one
    assert runner.compiled and runner.fm.model.predict_function is None  # to be traced by the next pass
    assert store.warm()  # while the user reads
    traced = runner.fm.model.predict_function
    assert traced is not None and runner.traced == {(1, 8, 8, 2)}
    assert not store.warm() and not activations.warm(model, _image(4)[None], store.computed)  # once per shape
    after = activations.get_activations(model, _image(5))  # the next input: the traced pass only runs
    assert runner.fm.model.predict_function is traced
    eager = activations.get_activations(build_hand_model(), _image(5))  # a fresh model's first pass is eager
    for name in eager:
        np.testing.assert_allclose(after[name], eager[name], rtol=1e-6, atol=1e-6)


def test_warm_traces_nothing_where_the_profile_compiles_no_single_pass(monkeypatch):
    model = build_hand_model()
    monkeypatch.setattr(activations, "COMPILE_AFTER_MS", -1.0)
    monkeypatch.setattr(profile, "_CURRENT", profile.from_env({"CONVLENS_PROFILE": "hosted"}))
    store = activations.ActivationStore(model, _image(3))
    store.select(["pool"])
    runner = activations._runner(model, store.computed)
    assert not store.warm() and not runner.compiled and runner.fm.model.predict_function is None


def test_sub_model_cache_is_bounded_per_model():
    model = build_hand_model()
    lists = list(itertools.permutations(["conv1", "pool", "conv2", "pred"], 2)) + [
        ("conv1",),
        ("pool",),
        ("conv2",),
        ("pred",),
    ]
    for layers in lists:  # 16 lists of layers
        activations.get_activations(model, _image(4), list(layers))
    activations.get_activations(model, _image(4), ["conv1", "pred", "conv2"])
    assert cache.cached_count(model, "activations.runner") == cache.DEFAULT_LIMIT < len(lists) + 1


def test_cache_does_not_keep_models_alive():
    inputs = keras.Input((5, 5, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="c")(inputs))
    activations.get_activations(model, np.zeros((5, 5, 1), np.float32))
    ref = weakref.ref(model)
    del model, inputs
    gc.collect()
    assert ref() is None


def test_feature_grid_shape_and_scalings():
    base = np.linspace(0.0, 1.0, 25, dtype=np.float32).reshape(5, 5)
    maps = np.stack([base * k for k in (1, 2, 3, 4)], axis=-1)  # channel k spans 0..k+1
    lut = render.lut("viridis")
    grid = grids.feature_grid(maps, scale="map", tile=20)  # factor 4: 20 px tiles, 2x2
    assert grid.shape == (41, 41, 3) and grid.dtype == np.uint8
    tiles = [grid[r * 21 : r * 21 + 20, c * 21 : c * 21 + 20] for r in (0, 1) for c in (0, 1)]
    for tile in tiles:  # per map: every tile spans the full colour range
        np.testing.assert_array_equal(tile[0, 0], lut[0])
        np.testing.assert_array_equal(tile[-1, -1], lut[255])
        np.testing.assert_array_equal(tile[:4, :4], np.broadcast_to(tile[0, 0], (4, 4, 3)))  # crisp
    assert (grid[20] == 255).all()  # white gap
    layer = grids.feature_grid(maps, scale="layer", tile=5)  # one bound 0..4 for all maps
    np.testing.assert_array_equal(layer[4, 4], lut[round(255 * 1 / 4)])  # channel 0's max is 1 of 4
    np.testing.assert_array_equal(layer[10, 10], lut[255])
    glob = grids.feature_grid(maps, scale="global", global_bounds=(0.0, 8.0), tile=5)
    np.testing.assert_array_equal(glob[10, 10], lut[round(255 * 4 / 8)])
    with pytest.raises(ValueError, match="global_bounds"):
        grids.feature_grid(maps, scale="global")
    picked = grids.feature_grid(maps, channels=[3], scale="layer", tile=5)
    np.testing.assert_array_equal(picked, layer[6:, 6:])  # 4th tile alone, still on the layer's bound


def test_signed_maps_centre_zero_in_a_diverging_colormap():
    maps = np.zeros((3, 3, 2), np.float32)
    maps[0, 0, 0], maps[2, 2, 0], maps[1, 1, 1] = -2.0, 1.0, 0.5
    grid = grids.feature_grid(maps, scale="layer", cmap=render.DIVERGING, tile=3, columns=2)
    lut = render.lut(render.DIVERGING)
    np.testing.assert_array_equal(grid[0, 0], lut[0])
    np.testing.assert_array_equal(grid[1, 1], lut[128])  # zero stays white
    np.testing.assert_array_equal(grid[2, 2], lut[round(255 * 0.75)])
    np.testing.assert_array_equal(grid[0, 3], grids.SIGNED_PAD)


def test_channel_stats_and_sparsity():
    maps = np.zeros((4, 4, 3), np.float32)
    maps[..., 1] = 1.0
    maps[0, :, 2] = 8.0  # channel 2: mean 2, a quarter non-zero
    stats = activations.channel_stats(maps, k=2)
    np.testing.assert_allclose(stats.mean, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(stats.max, [0.0, 1.0, 8.0])
    np.testing.assert_allclose(stats.sparsity, [1.0, 0.0, 0.75])
    assert stats.top.tolist() == [2, 1] and stats.dead.tolist() == [True, False, False]
    assert stats.layer_sparsity == pytest.approx((16 + 12) / 48)
    assert activations.layer_sparsity({"a": maps, "b": np.ones(3)}) == pytest.approx({"a": 28 / 48, "b": 0.0})


def test_overview_columns_from_input_to_prediction(hand_model):
    acts = activations.get_activations(hand_model, _image())
    display = (np.random.default_rng(0).random((8, 8, 1)) * 255).astype(np.uint8)
    ov = grids.overview(acts, list(acts), input_display_hwc=display, tile=24, max_maps=2, pad=2)
    assert [c.layer for c in ov.columns] == ["input", "conv1", "pool", "conv2", "pred"]
    conv1 = ov.columns[1]  # 6x6 maps -> factor 4 -> 24 px, 2 of 3 maps shown
    assert conv1.image.shape == (24 * 2 + 2, 24, 3) and conv1.shown == (0, 1) and conv1.total == 3
    assert ov.columns[2].image.shape == (24 * 2 + 2, 24, 3)  # 3x3 -> factor 8
    pred = ov.columns[-1]
    assert pred.image.shape == (6 * 2 + 2, 6, 3) and pred.shape == (2,)
    whole = ov.composite(gap=10)
    assert whole.shape == (50, 24 * 4 + 6 + 10 * 4, 3)
    np.testing.assert_array_equal(whole[:24, :24], render.to_rgb(render.upscale(display, 3)))
    glob = grids.overview(acts, ["conv1", "conv2"], scale="global")
    assert len(glob.columns) == 2


@pytest.fixture(scope="module")
def nested():
    return nested_mobilenet()


def test_nested_model_all_layers_in_one_pass(nested, rng):
    x = rng.random((64, 64, 3), dtype=np.float32)
    layers = activations.activation_layers(nested)
    assert layers[0].endswith("/Conv1") and layers[-2:] == ("gap", "cls")
    assert not any(p == layers[0].split("/")[0] for p in layers)  # the container itself is not a column
    acts = activations.get_activations(nested, x)
    assert len(acts) == len(layers) > 100
    target = graph.last_conv_layer(nested)
    eager, _ = features.feature_model(nested, [target]).predict(x[None])
    np.testing.assert_allclose(acts[target], eager[target][0], rtol=1e-4, atol=1e-4)
    grid = grids.feature_grid(acts[target], scale="map")
    assert grid.dtype == np.uint8 and grid.ndim == 3


def test_reloaded_sequential_equals_calling_its_layers(saved_dir, rng):
    model = keras.models.load_model(saved_dir / "seq.keras", safe_mode=True)
    x = rng.random((12, 12, 1), dtype=np.float32)
    acts = activations.get_activations(model, x)
    assert list(acts) == ["conv_a", "pool", "conv_b", "pred"]
    h = x[None]
    for layer in model.layers:  # the layers called one by one: an independent path
        h = layer(h)
        if layer.name in acts:
            np.testing.assert_allclose(acts[layer.name], np.asarray(h)[0], rtol=1e-5, atol=1e-6)


def test_store_by_block_computes_only_the_blocks_asked_for_with_the_all_layer_values(nested, rng, monkeypatch):
    x = rng.random((64, 64, 3), dtype=np.float32)
    every = activations.get_activations(nested, x)  # the one-pass design, checked against NumPy above
    assert activations.activations_mb(nested) == pytest.approx(sum(a.nbytes for a in every.values()) / 2**20)
    passes = []
    real = activations.get_activations
    monkeypatch.setattr(
        activations, "get_activations", lambda m, img, layers: passes.append(list(layers)) or real(m, img, layers)
    )
    store = activations.ActivationStore(nested, x, all_at_once_mb=activations.activations_mb(nested) / 2)
    assert not store.all_at_once
    assert list(store) == list(every) and store.maps == tuple(p for p, a in every.items() if a.ndim == 3)
    assert "gap" in store and "nope" not in store and passes == []  # known without a pass
    columns = activations.block_columns(nested)
    assert 3 < len(columns) < len(every) / 4
    shown = store.select(columns)
    assert passes == [list(columns)] and store.computed == columns  # one pass, only the block outputs
    for path in columns:
        np.testing.assert_allclose(shown[path], every[path], rtol=1e-5, atol=1e-5)
        assert not shown[path].flags.writeable
    assert store.select(columns[:2]).keys() == {columns[0], columns[1]} and len(passes) == 1  # a lookup
    inner = next(p for p in every if p not in columns and every[p].ndim == 3)
    np.testing.assert_allclose(store[inner], every[inner], rtol=1e-5, atol=1e-5)
    assert passes[-1] == [inner] and len(store.computed) == len(columns) + 1
    assert store.get("nope") is None
    with pytest.raises(KeyError, match="nope"):
        store.select(["gap", "nope"])


def test_store_of_a_small_model_computes_every_layer_in_its_first_pass(hand_model):
    x = _image(3)
    store = activations.ActivationStore(hand_model, x, all_at_once_mb=1.0)
    assert store.all_at_once and store.computed == ()
    np.testing.assert_array_equal(store["pool"], activations.get_activations(hand_model, x, ["pool"])["pool"])
    assert store.computed == ("conv1", "pool", "conv2", "pred") and store.maps == ("conv1", "pool", "conv2")


def test_store_holds_its_model_weakly():
    model = build_hand_model()
    store = activations.ActivationStore(model, _image(4), all_at_once_mb=0.0)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    with pytest.raises(ReferenceError):
        store["conv1"]
