"""Progress and cancel of attribution methods: the shared chunk loops report, a callback stops them."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import tiny_functional

from vizcore.attribution import METHOD_INFO, Cost
from vizcore.attribution.cost import pass_seconds
from vizcore.attribution.progress import progress_to
from vizcore.errors import AttributionCancelled


@pytest.fixture(scope="module")
def model():
    return tiny_functional(channels=1, classes=3)


X = np.random.default_rng(0).uniform(0, 1, (12, 12, 1)).astype(np.float32)


def _record():
    calls: list[tuple[int, int]] = []
    return calls, lambda done, total: calls.append((done, total))


@pytest.mark.parametrize(
    "label, options, step",
    [
        ("Occlusion", dict(patch=3, stride=1, batch_size=16), 16),
        ("Integrated Gradients", dict(steps=40, batch_size=8), 8),
        ("Score-CAM", dict(batch_size=2), 2),
    ],
)
def test_progress_counts_up_to_the_cost(model, label, options, step):
    info = METHOD_INFO[label]
    layer = "conv_b" if info.uses_layer else None
    total = info.cost_of(model, (12, 12), layer=layer, **options).count
    calls, sink = _record()
    heat = info.fn(model, X, target=1, layer=layer, on_progress=sink, **options)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(calls) >= total // step
    assert max(np.diff(done)) <= step  # one report per chunk of the loop
    np.testing.assert_array_equal(
        heat, info.fn(model, X, target=1, layer=layer, **options)
    )  # reporting changes nothing


def test_wrapped_method_reports_once_to_the_outer_total(model):
    info = METHOD_INFO["SmoothGrad (Saliency)"]
    calls, sink = _record()
    info.fn(model, X, target=0, samples=12, on_progress=sink)
    assert calls[0] == (0, 12) and calls[-1] == (12, 12)
    assert {t for _, t in calls} == {12}


def test_true_from_the_callback_cancels_at_the_next_chunk(model):
    calls = []

    def stop_after_first(done, total):
        calls.append(done)
        return done > 0

    with pytest.raises(AttributionCancelled):
        METHOD_INFO["Occlusion"].fn(model, X, target=1, patch=2, stride=1, batch_size=10, on_progress=stop_after_first)
    assert calls[0] == 0 and len(calls) == 2 and 0 < calls[1] <= 10  # stopped after the first chunk, not at the end


def test_an_event_cancels(model):
    stop = threading.Event()
    stop.set()
    with pytest.raises(AttributionCancelled):
        METHOD_INFO["Integrated Gradients"].fn(model, X, steps=8, on_progress=lambda d, t: stop.is_set())


def test_progress_to_outside_a_method_and_no_callback():
    calls, sink = _record()
    with progress_to(sink, 5):
        pass
    assert calls == [(0, 5), (5, 5)]
    with progress_to(None, 5):  # no callback: nothing to report, nothing raised
        pass


def test_pass_seconds_is_measured_once_and_scales_a_cost(model):
    s = pass_seconds(model)
    assert 0 < s < 5
    assert pass_seconds(model) == s  # cached per model
    assert Cost(10).seconds(s) == pytest.approx(10 * s)
    assert Cost(10, "gradient").seconds(s) == pytest.approx(30 * s)
