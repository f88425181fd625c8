"""StopGuard: end training after the current batch on request, or when the loss stops being finite."""

from __future__ import annotations

import math
import threading

import keras
import numpy as np


class StopGuard(keras.callbacks.Callback):
    """Stop training cleanly when ``event`` is set, and guard against a diverging loss.

    * Stop requested: ``model.stop_training`` is set after the batch that sees the event, so the
      epoch ends there; a validation pass then in progress is cut after its current batch
      (``model.stop_evaluating``). The weights trained so far stay in the model.
    * Loss NaN or infinite after a batch, or weights NaN or infinite after an epoch (a softmax
      head clips its loss, so broken weights can hide behind a finite loss): training stops and
      the weights of the last good epoch (or the starting weights) are put back, so the model
      is never left broken.

    ``reason`` says what happened: None (ran to the end), 'requested' or 'non_finite'; ``where``
    is (epoch, batch) of the stop.

    Runs in the training thread (it overrides the batch hooks, which makes Keras call them
    synchronously).

    Example:
        >>> stop = threading.Event()
        >>> guard = StopGuard(stop)
        >>> model.fit(ds, epochs=50, callbacks=[guard])  # another thread calls stop.set()
        >>> guard.reason
        'requested'
    """

    def __init__(self, event: threading.Event | None = None, *, keep_good_weights: bool = True):
        super().__init__()
        self.event = event
        self.keep_good_weights = keep_good_weights
        self.reason: str | None = None
        self.where: tuple[int, int] | None = None
        self._good_weights = None
        self._epoch = 0

    def _requested(self) -> bool:
        return self.event is not None and self.event.is_set()

    def on_train_begin(self, logs=None):
        self.reason, self.where = None, None
        if self.keep_good_weights:
            self._good_weights = self.model.get_weights()
        if self._requested():
            self.model.stop_training = True
            self.reason, self.where = "requested", (0, 0)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.model.stop_training = True
            self.reason, self.where = "non_finite", (self._epoch, batch)
        elif self._requested() and self.reason is None:
            self.model.stop_training = True
            self.reason, self.where = "requested", (self._epoch, batch)

    def on_test_batch_end(self, batch, logs=None):
        if self.reason is not None or self._requested():
            self.model.stop_evaluating = True

    def on_epoch_end(self, epoch, logs=None):
        if self.reason == "non_finite":
            return
        loss = (logs or {}).get("loss")
        weights = self.model.get_weights() if self.keep_good_weights else []
        if (loss is not None and not math.isfinite(loss)) or not all(np.isfinite(w).all() for w in weights):
            self.model.stop_training = True
            self.reason, self.where = "non_finite", (epoch, max((self.params.get("steps") or 1) - 1, 0))
            return
        if self.keep_good_weights:
            self._good_weights = weights
        if self._requested() and self.reason is None:  # set during validation
            self.model.stop_training = True
            self.reason, self.where = "requested", (epoch, self.params.get("steps") or 0)

    def on_train_end(self, logs=None):
        if self.reason == "non_finite" and self._good_weights is not None:
            self.model.set_weights(self._good_weights)
        self._good_weights = None
