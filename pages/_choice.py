"""Which model is the working model (``Choice``), and its link (``?model=bundled:mnist_cnn``).

The link grammar is the engine's (``vizcore.models.specs``), the same as ``python -m vizcore.precompute``'s.

A choice of a bundled model, a preset or a ``keras.applications`` network has a link; a model uploaded,
built or trained in a session lives in that session only and has none.

Example:
    >>> link_of(Choice("app", "MobileNetV2", "imagenet"))
    'app:MobileNetV2:imagenet'
"""

from __future__ import annotations

from dataclasses import dataclass

from vizcore import models, profile
from vizcore.errors import SpecError
from vizcore.models import specs

SESSION_KINDS = ("upload", "built", "trained")


@dataclass(frozen=True)
class Choice:
    """Which model is the working model: kind is bundled, preset, app, or a session kind
    (upload, built, trained) whose model lives in this session's state."""

    kind: str
    name: str
    weights: str | None = None


def default_choice() -> Choice:
    bundled = models.list_bundled()
    if "mnist_cnn" in bundled:
        return Choice("bundled", "mnist_cnn")
    return Choice("bundled", bundled[0]) if bundled else Choice("preset", "mnist_cnn")


def applications() -> list[str]:
    """The keras.applications networks this server offers (the hosted profile has no VGG16)."""
    limits = profile.current()
    return [name for name in models.applications.APPLICATIONS if limits.offers(name)]


def choice_from_link(text: str) -> Choice | None:
    """The model a link names (``bundled:mnist_cnn``, ``preset:lenet5``, ``app:MobileNetV2:imagenet``), read by
    the engine's one grammar (``vizcore.models.specs``); None for a name this server does not offer."""
    try:
        spec = specs.parse_spec(text, files=False)  # a link never names a file on the server's disk
    except SpecError:
        return None
    if spec.kind == "app" and spec.name not in applications():
        return None
    return Choice(spec.kind, spec.name, spec.weights)


def link_of(choice: Choice) -> str | None:
    """The ``model`` query parameter of a choice (None for models that live in one session)."""
    if choice.kind in SESSION_KINDS:
        return None
    return specs.Spec(choice.kind, choice.name, choice.weights).text
