"""Which ``tf.distribute`` strategy trains: one device, every local GPU, or every worker of ``TF_CONFIG``.

``strategy_for`` picks it once per run; ``start_run`` copies the model inside its ``scope()`` and
``fit`` compiles there, so Keras runs each step on every replica and sums the gradients. The
config's ``batch_size`` is per replica: ``global_batch`` images make one step.

``CONVLENS_DISTRIBUTE`` forces a choice: ``one`` (never distribute), ``mirrored`` (every local
device of the kind found, CPUs included: the tests' two logical CPUs) or ``multi_worker``.

Example:
    >>> strategy = strategy_for()                      # two GPUs visible: MirroredStrategy
    >>> with strategy.scope():
    ...     model = trainable_copy(shared_model)
    >>> global_batch(TrainConfig(batch_size=32), strategy)
    64
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from vizcore.errors import TrainingError

ENV = "CONVLENS_DISTRIBUTE"
KINDS = ("one", "mirrored", "multi_worker")


def workers_in(tf_config: str | None) -> int:
    """How many workers (chief included) a ``TF_CONFIG`` JSON names; 0 when unset or it names none.

    Raises:
        TrainingError: ``TF_CONFIG`` is not JSON.
    """
    if not tf_config:
        return 0
    try:
        cluster = json.loads(tf_config).get("cluster") or {}
    except (ValueError, AttributeError) as err:
        raise TrainingError(f"TF_CONFIG is not a JSON object with a 'cluster' ({err}).") from err
    return len(cluster.get("worker", ())) + len(cluster.get("chief", ()))


def strategy_kind(n_gpus: int, env: Mapping[str, str] = os.environ) -> str:
    """'one', 'mirrored' or 'multi_worker' for ``n_gpus`` local GPUs and the ``env`` (TF_CONFIG, CONVLENS_DISTRIBUTE).

    Raises:
        TrainingError: CONVLENS_DISTRIBUTE names no known kind.
    """
    forced = (env.get(ENV) or "").strip().lower()
    if forced and forced != "auto":
        if forced not in KINDS:
            raise TrainingError(f"{ENV} must be one of auto, {', '.join(KINDS)}; got {forced!r}.")
        return forced
    if workers_in(env.get("TF_CONFIG")) > 1:
        return "multi_worker"
    return "mirrored" if n_gpus > 1 else "one"


def strategy_for(devices: Sequence[str] | None = None):
    """The ``tf.distribute`` strategy to train with on this machine (see ``strategy_kind``).

    Args:
        devices: the devices a MirroredStrategy uses (e.g. ``("/cpu:0", "/cpu:1")``); None: every
            local GPU, or every logical CPU when there is no GPU and ``mirrored`` is forced.

    Returns:
        ``tf.distribute.get_strategy()`` (the default, one device), a MirroredStrategy or a
        MultiWorkerMirroredStrategy (which reads TF_CONFIG; call ``strategy_for`` before any other
        TensorFlow work in such a process).
    """
    import tensorflow as tf

    if strategy_kind(0) == "multi_worker":  # before listing devices: TF sets up a cluster before its devices
        return multi_worker()
    gpus = tf.config.list_logical_devices("GPU")
    if strategy_kind(len(devices) if devices is not None else len(gpus)) == "one":
        return tf.distribute.get_strategy()
    if devices is None:
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
    on_gpus = all("GPU" in str(d).upper() for d in devices)
    cross = None if on_gpus else tf.distribute.ReductionToOneDevice()  # NCCL all-reduce is GPU-only
    return tf.distribute.MirroredStrategy(list(devices), cross_device_ops=cross)


@functools.cache
def multi_worker():
    """The process's one MultiWorkerMirroredStrategy (TF sets up its collectives once per process)."""
    import tensorflow as tf

    return tf.distribute.MultiWorkerMirroredStrategy()


def replicas(strategy) -> int:
    """Replicas that train in step (1 for the default strategy)."""
    return int(getattr(strategy, "num_replicas_in_sync", 1))


def global_batch(config, strategy) -> int:
    """Images per step: the config's per-replica ``batch_size`` times the replicas."""
    return int(config.batch_size) * replicas(strategy)


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: always, except on a non-chief multi-worker worker."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", lambda: None)():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and not has_chief)


def write_path(path: str | os.PathLike | None, strategy) -> Path | None:
    """Where this process saves ``path``: itself on the chief, a throw-away folder on other workers.

    Every multi-worker worker must save (saving may read values from all of them); only the
    chief's file is kept.
    """
    if path is None or is_chief(strategy):
        return None if path is None else Path(path)
    return Path(tempfile.mkdtemp(prefix="convlens_worker_")) / Path(path).name
