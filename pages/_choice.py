"""Which model is the working model (``Choice``), and the link grammar that names it (``?model=bundled:mnist_cnn``).

A choice of a bundled model, a preset or a ``keras.applications`` network has a link; a model uploaded,
built or trained in a session lives in that session only and has none.

Example:
    >>> link_of(Choice("app", "MobileNetV2", "imagenet"))
    'app:MobileNetV2:imagenet'
"""

from __future__ import annotations

from dataclasses import dataclass

from vizcore import models, profile

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
    """The model a link names (``bundled:mnist_cnn``, ``preset:lenet5``, ``app:MobileNetV2:imagenet``)."""
    kind, _, rest = text.partition(":")
    name, _, weights = rest.partition(":")
    if kind == "bundled" and name in models.list_bundled():
        return Choice("bundled", name)
    if kind == "preset" and name in models.presets.PRESETS:
        return Choice("preset", name)
    if kind == "app" and name in applications() and weights in ("imagenet", "none"):
        return Choice("app", name, None if weights == "none" else weights)
    return None


def link_of(choice: Choice) -> str | None:
    """The ``model`` query parameter of a choice (None for models that live in one session)."""
    if choice.kind in SESSION_KINDS:
        return None
    return ":".join([choice.kind, choice.name] + ([choice.weights or "none"] if choice.kind == "app" else []))
