"""Progress and cancel for every attribution method: one callback, counted where the images run.

Every public function and batch form takes ``on_progress(done, total) -> bool | None``; ``total``
is the method's cost, ``done`` counts the images the shared chunk loops (``engines.forward``,
``engines.input_gradients``, ``engines.cam_maps``, ``engines.target_scores``) have run, each of
which calls ``advance`` (a computation with its own ``on_progress`` keyword, such as LIME, gets
the callback instead). A callback that returns True stops the run with ``AttributionCancelled``
(a ``threading.Event`` works too: ``on_progress=lambda d, t: stop.is_set()``).

Example:
    >>> with progress_to(lambda done, total: print(done, total), total=64):
    ...     maps = gradcam_batch(model, batch_nhwc)     # prints 0 64, then 64 64
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from vizcore.errors import AttributionCancelled

Progress = Callable[[int, int], "bool | None"]  # (done, total) -> True to cancel


@dataclass
class _Tracker:
    total: int
    sink: Progress
    done: int = field(default=0)

    def report(self, done: int) -> None:
        self.done = max(0, min(self.total, done))
        if self.sink(self.done, self.total):
            raise AttributionCancelled("Cancelled.")


_TRACKER: contextvars.ContextVar[_Tracker | None] = contextvars.ContextVar("attribution_progress", default=None)


@contextlib.contextmanager
def progress_to(on_progress: Progress | None, total: int) -> Iterator[None]:
    """Report the images the chunk loops run inside the block to ``on_progress(done, total)``.

    Starts with (0, total) and ends with (total, total); a nested block (a wrapped method) reports
    to the outer one. Raises ``AttributionCancelled`` when the callback returns True.
    """
    if on_progress is None or _TRACKER.get() is not None:
        yield
        return
    tracker = _Tracker(max(1, int(total)), on_progress)
    token = _TRACKER.set(tracker)
    try:
        tracker.report(0)
        yield
        tracker.report(tracker.total)
    finally:
        _TRACKER.reset(token)


def advance(images: int) -> None:
    """Count ``images`` more run through the model (a no-op outside ``progress_to``)."""
    tracker = _TRACKER.get()
    if tracker is not None:
        tracker.report(min(tracker.total - 1, tracker.done + images))  # the total when the block ends
