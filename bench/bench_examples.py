"""Dataset examples per filter: every channel's top-9 in one batched pass vs one pass per channel.

All 64 channels of the MNIST CNN's conv2 over the 5,000 bundled digits. The baseline is the naive
way: for each channel, a sub-model that outputs that channel alone, run over the whole dataset.
The note gives the CPU seconds of one run (all threads), which a busy machine does not inflate.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from bench.common import Row, timeit
from vizcore import models
from vizcore.data import datasets
from vizcore.inspect import examples
from vizcore.models import graph

AREA = "examples"


def _per_channel(model: keras.Model, layer: str, x_nhwc: np.ndarray, k: int) -> np.ndarray:
    traced = graph.trace(model)
    out = traced[layer].output
    tops = []
    for ch in range(out.shape[-1]):
        sub = keras.Model(traced.input, out[..., ch])
        maps = sub.predict(x_nhwc, batch_size=500, verbose=0)
        tops.append(np.argsort(-maps.reshape(len(x_nhwc), -1).max(axis=1), kind="stable")[:k])
    return np.stack(tops)


def run() -> list[Row]:
    loaded = models.open_bundled("mnist_cnn")
    x = np.asarray(datasets.load_mnist_sample().x_nhwc)
    ours = timeit(lambda: examples.top_examples(loaded.model, "conv2", x, k=9), repeat=3, warmup=1)
    naive = timeit(lambda: _per_channel(loaded.model, "conv2", x, 9), repeat=1, warmup=0)
    cpu = time.process_time()
    examples.top_examples(loaded.model, "conv2", x, k=9)
    cpu = time.process_time() - cpu  # all threads: on a loaded machine the wall time waits, the CPU time does not
    return [
        Row(
            AREA,
            f"top-9 of all 64 channels, conv2, MNIST CNN, {len(x)} images",
            ours,
            "one sub-model and one pass per channel",
            naive,
            f"boxes included; {cpu:.2f} CPU s",
        )
    ]
