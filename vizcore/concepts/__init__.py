"""Concepts: what a layer saw, not only where. CRAFT finds concepts; TCAV tests one the user brings.

* ``craft(model, layer, images, target, n_concepts=10)`` -> ``Craft``: concepts of a layer for a
  class (crops, non-negative factorization, Sobol importances, heatmaps); ``craft_layers(model)``
  says which layers it can use.
* ``tcav(model, layer, concept_images, random_images, class_images, target, runs=10)`` -> ``Tcav``:
  the TCAV score of a concept for a class, its random baseline and significance; ``sweep`` runs it
  over several layers and classes, finding each layer's CAVs once.

Images are NHWC in the model's input range, as everywhere in vizcore. Costly runs take
``on_progress(done, total)``; returning True stops them with ``AttributionCancelled``.

Example:
    >>> from vizcore import concepts
    >>> c = concepts.craft(model, "pool2", triangles, target=2)
    >>> t = concepts.tcav(model, "pool2", striped, random_sample, triangles, target=2)
"""

from vizcore.concepts.craft import Craft, concept_importances, craft
from vizcore.concepts.craft import cost as craft_cost
from vizcore.concepts.craft import estimate_seconds as craft_seconds
from vizcore.concepts.split import channel_source, craft_layers, fitted_patch
from vizcore.concepts.tcav import SIGNIFICANCE, Cavs, Tcav, cavs, derivatives, run_sets, score, sweep, tcav
from vizcore.concepts.tcav import estimate_seconds as tcav_seconds
from vizcore.concepts.tcav import fits as tcav_fits
from vizcore.errors import AttributionCancelled, ConceptError

Cancelled = AttributionCancelled

__all__ = [
    "SIGNIFICANCE",
    "Cancelled",
    "Cavs",
    "ConceptError",
    "Craft",
    "Tcav",
    "cavs",
    "channel_source",
    "concept_importances",
    "craft",
    "craft_cost",
    "craft_layers",
    "craft_seconds",
    "derivatives",
    "fitted_patch",
    "run_sets",
    "score",
    "sweep",
    "tcav",
    "tcav_fits",
    "tcav_seconds",
]
