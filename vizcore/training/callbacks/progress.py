"""ProgressReporter: turn Keras logs into throttled BatchRecords and per-epoch EpochRecords."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable

import keras

from vizcore.training.records import BatchRecord, EpochRecord, Record


class ProgressReporter(keras.callbacks.Callback):
    """Send a BatchRecord at most every ``min_interval_s`` and an EpochRecord after every epoch.

    Keras logs hold running means over the epoch; the batch's own loss and accuracy are recovered
    exactly from consecutive means weighted by images seen. A sink that raises does not stop
    training: the first error is warned about and counted in ``sink_errors``.

    Runs in the training thread: overriding ``on_train_batch_end`` makes Keras dispatch batch hooks
    synchronously (and the TensorFlow backend never dispatches them on a thread pool).

    Example:
        >>> got = []
        >>> model.fit(ds, epochs=2, callbacks=[ProgressReporter(got.append, n_images=4000, batch_size=32)])
        >>> [r.kind for r in got][-1]
        'epoch'
    """

    def __init__(
        self,
        sink: Callable[[Record], object] | None,
        *,
        n_images: int,
        batch_size: int,
        learning_rate_at: Callable[[int], float] | None = None,
        min_interval_s: float = 0.25,
        smoothing: float = 0.9,
        clock: Callable[[], float] = time.perf_counter,
    ):
        super().__init__()
        self.sink, self.n_images, self.batch_size = sink, n_images, batch_size
        self.steps_per_epoch = max(1, math.ceil(n_images / batch_size))
        self.learning_rate_at = learning_rate_at or (lambda step: math.nan)
        self.min_interval_s, self.smoothing, self.clock = min_interval_s, smoothing, clock
        self.records: list[Record] = []
        self.sink_errors = 0

    def on_train_begin(self, logs=None):
        self.t0 = self.clock()
        self.first_epoch = None
        self.total_steps = self.steps_done = 0
        self.t_first_step = None
        self.ema = [0.0, 0.0]
        self.ema_weight = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
            self.total_steps = (self.params.get("epochs", epoch + 1) - epoch) * self.steps_per_epoch
        self.epoch, self.epoch_t0 = epoch, self.clock()
        self.prev_sums = (0.0, 0.0)
        self.seen = self.batches = 0
        self.last_sent_t, self.last_sent_seen = None, 0

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        now = self.clock()
        seen = min((batch + 1) * self.batch_size, self.n_images)
        n = max(seen - self.seen, 1)
        loss_sum, acc_sum = logs.get("loss", math.nan) * seen, logs.get("accuracy", math.nan) * seen
        loss, acc = (loss_sum - self.prev_sums[0]) / n, (acc_sum - self.prev_sums[1]) / n
        acc = round(acc * n) / n if math.isfinite(acc) else acc  # a share of the n images of this batch
        self.prev_sums, self.seen, self.batches = (loss_sum, acc_sum), seen, batch + 1
        self.steps_done += 1
        self.t_first_step = now if self.t_first_step is None else self.t_first_step
        self.ema_weight = self.smoothing * self.ema_weight + (1 - self.smoothing)
        self.ema = [self.smoothing * e + (1 - self.smoothing) * v for e, v in zip(self.ema, (loss, acc))]
        last = batch + 1 == self.steps_per_epoch
        if self.last_sent_t is not None and not last and now - self.last_sent_t < self.min_interval_s:
            return
        since = now - (self.last_sent_t if self.last_sent_t is not None else self.epoch_t0)
        rate = (
            (seen - self.last_sent_seen) / since if since > 0 and self.steps_done > 1 else None
        )  # step 1 includes tracing
        eta = None
        if self.steps_done > 1:
            eta = (self.total_steps - self.steps_done) * (now - self.t_first_step) / (self.steps_done - 1)
        step = self.epoch * self.steps_per_epoch + batch
        self._send(
            BatchRecord(
                epoch=self.epoch,
                batch=batch,
                steps_per_epoch=self.steps_per_epoch,
                step=step,
                loss=loss,
                accuracy=acc,
                smooth_loss=self.ema[0] / self.ema_weight,
                smooth_accuracy=self.ema[1] / self.ema_weight,
                learning_rate=self.learning_rate_at(step),
                images_per_s=rate,
                elapsed_s=now - self.t0,
                eta_s=eta,
                progress=min(1.0, self.steps_done / max(1, self.total_steps)),
            )
        )
        self.last_sent_t, self.last_sent_seen = now, seen

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        now = self.clock()
        self._send(
            EpochRecord(
                epoch=epoch,
                loss=float(logs.get("loss", math.nan)),
                accuracy=float(logs.get("accuracy", math.nan)),
                val_loss=logs.get("val_loss"),
                val_accuracy=logs.get("val_accuracy"),
                learning_rate=self.learning_rate_at(epoch * self.steps_per_epoch + max(self.batches - 1, 0)),
                seconds=now - self.epoch_t0,
                elapsed_s=now - self.t0,
                complete=self.batches == self.steps_per_epoch,
            )
        )

    def _send(self, record: Record) -> None:
        self.records.append(record)
        if self.sink is None:
            return
        try:
            self.sink(record)
        except Exception as err:  # noqa: BLE001 - a broken display must not stop training
            self.sink_errors += 1
            if self.sink_errors == 1:
                warnings.warn(
                    f"The progress callable raised {type(err).__name__}: {err}; training goes on.",
                    RuntimeWarning,
                    stacklevel=2,
                )
