"""What one trial trains: the base config with the trial's settings, and the model (the source, or a fresh
one built from its architecture with the trial's filters, units and dropout).

Example:
    >>> specs = builder.architecture_of(loaded.model)
    >>> trial_config(base, {"learning_rate": 3e-3, "batch_size": 64}).learning_rate
    0.003
    >>> model_for(loaded, specs, {"filters_scale": 2.0}, seed=0).model.get_layer("conv1").filters
    64
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

import keras

from vizcore.models import LoadedModel
from vizcore.training import builder
from vizcore.training.config import TrainConfig
from vizcore.training.search.space import SearchSpace


def apply_architecture(
    specs: tuple[builder.LayerSpec, ...], params: Mapping[str, Any]
) -> tuple[builder.LayerSpec, ...]:
    """The specs with a trial's ``filters_scale`` (every conv), ``dense_units`` (the first hidden Dense)
    and ``dropout`` (the last Dropout) applied."""
    dense = [i for i, s in enumerate(specs) if isinstance(s, builder.Dense)][:1]
    drop = [i for i, s in enumerate(specs) if isinstance(s, builder.Dropout)][-1:]
    out = []
    for i, spec in enumerate(specs):
        if isinstance(spec, builder.Conv) and "filters_scale" in params:
            spec = replace(spec, filters=max(1, round(spec.filters * params["filters_scale"])))
        elif i in dense and "dense_units" in params:
            spec = replace(spec, units=int(params["dense_units"]))
        elif i in drop and "dropout" in params:
            spec = replace(spec, rate=float(params["dropout"]))
        out.append(spec)
    return tuple(out)


def trial_config(base: TrainConfig, params: Mapping[str, Any]) -> TrainConfig:
    """The base config with a trial's training settings (architecture ones are left to the model)."""
    names = {f.name for f in fields(TrainConfig)}
    config = base.replace(**{k: v for k, v in params.items() if k in names}, snapshot_every_batches=0)
    return config.replace(schedule="step") if "step_every" in params or "step_factor" in params else config


def base_params(space: SearchSpace, base: TrainConfig, specs: tuple[builder.LayerSpec, ...] | None) -> dict[str, Any]:
    """The base config's (and model's) values of the searched settings that lie inside the space."""
    values = {k: getattr(base, k) for k in ("learning_rate", "batch_size", "optimizer", "shift", "rotation")}
    # a constant learning rate is a step schedule with factor 1
    values.update(step_every=base.step_every, step_factor=base.step_factor if base.schedule == "step" else 1.0)
    if specs:
        values["filters_scale"] = 1.0
        dense = [s.units for s in specs if isinstance(s, builder.Dense)]
        drops = [s.rate for s in specs if isinstance(s, builder.Dropout)]
        values.update({"dense_units": dense[0]} if dense else {}, **({"dropout": drops[-1]} if drops else {}))
    searched = space.searched()
    return {k: v for k, v in values.items() if k in searched and space.contains(k, v)}


def model_for(
    source: LoadedModel, specs: tuple[builder.LayerSpec, ...] | None, params: Mapping[str, Any], seed: int
) -> LoadedModel:
    """What a trial trains: the source model, or a fresh one built from the trial's architecture.

    A fresh model's weights come from ``keras.utils.set_random_seed(seed)`` (process-wide seeds).
    """
    if specs is None:
        return source
    keras.utils.set_random_seed(seed)
    model = builder.build(
        apply_architecture(specs, params),
        tuple(source.model.input_shape[1:]),
        int(source.model.output_shape[-1]),
        name=source.model.name,
    )
    return replace(source, model=model)
