"""The speed paths of the attribution engines: chunk sizes per model, RISE's masks on the graph, folded BatchNorm."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import tiny_functional

from vizcore.attribution import METHOD_INFO, rise_masks
from vizcore.attribution.engines import (
    CHUNK_BYTES,
    DEFAULT_BATCH,
    MAX_BATCH,
    batch_for,
    input_gradients,
    max_abs_over_channels,
)
from vizcore.present.render import resize_map


def test_chunks_keep_the_largest_layer_output_within_the_budget():
    wide = keras.Sequential(
        [
            keras.Input((64, 64, 3)),
            keras.layers.Conv2D(256, 3, padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    per_image = 64 * 64 * 256 * 4  # the conv's output, the largest
    assert batch_for(wide) == CHUNK_BYTES // per_image == 10
    assert batch_for(tiny_functional()) == MAX_BATCH  # a 12x12 toy: as many as allowed
    any_size = keras.Sequential(
        [keras.Input((None, None, 1)), keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D()]
    )
    assert batch_for(any_size) == DEFAULT_BATCH


def test_the_chunk_size_does_not_change_a_result():
    model = tiny_functional(channels=3)
    x = np.random.default_rng(2).random((20, 12, 12, 3)).astype(np.float32)
    np.testing.assert_allclose(input_gradients(model, x, 1), input_gradients(model, x, 1, batch_size=3), atol=1e-6)
    rise = METHOD_INFO["RISE"].batch
    np.testing.assert_allclose(
        rise(model, x[:1], target=0, n_masks=50, grid=3),
        rise(model, x[:1], target=0, n_masks=50, grid=3, batch_size=7),
        rtol=1e-5,
    )


@pytest.mark.parametrize(("size", "grid"), [((12, 12), 4), ((30, 17), 5), ((224, 224), 7)])
def test_rise_masks_on_the_graph_equal_a_pil_upsampling_of_the_same_cells(size, grid):
    n, p, seed = 30, 0.5, 3
    h, w = size
    rng = np.random.default_rng(seed)  # the draw rise_masks documents: cells, then the shifts
    cells = (rng.random((n, grid, grid)) < p).astype(np.float32)
    cell_h, cell_w = -(-h // grid), -(-w // grid)
    shifts = np.stack([rng.integers(0, cell_h, n), rng.integers(0, cell_w, n)], axis=1)
    up = ((grid + 1) * cell_h, (grid + 1) * cell_w)
    expected = np.stack(
        [resize_map(cells[i], up)[shifts[i, 0] : shifts[i, 0] + h, shifts[i, 1] : shifts[i, 1] + w] for i in range(n)]
    )
    np.testing.assert_allclose(rise_masks(size, n, grid=grid, p=p, seed=seed), np.clip(expected, 0, 1), atol=1e-6)


def test_a_chunk_reduced_on_tensorflows_threads_equals_the_numpy_reduction():
    model = tiny_functional(channels=3)
    x = np.random.default_rng(4).random((5, 12, 12, 3)).astype(np.float32)
    full = input_gradients(model, x, 2, batch_size=2)
    reduced = input_gradients(model, x, 2, batch_size=2, reduce=max_abs_over_channels)
    assert reduced.shape == (5, 12, 12)
    np.testing.assert_array_equal(reduced, np.abs(full).max(axis=-1))


def test_rise_traces_its_compiled_function_once_for_any_grid_mask_count_and_chunk():
    from vizcore.attribution.engines import engine

    model = tiny_functional(channels=3)
    x = np.random.default_rng(5).random((12, 12, 3)).astype(np.float32)
    for grid, n, chunk in ((3, 20, 7), (4, 33, None), (6, 5, 2)):
        METHOD_INFO["RISE"].fn(model, x, n_masks=n, grid=grid, batch_size=chunk)
    assert engine(model, "masked").fn.experimental_get_tracing_count() == 1
