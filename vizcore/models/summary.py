"""A model at a glance: headline figures and a Graphviz diagram (per layer or per block)."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from vizcore.models import blocks
from vizcore.models.graph import (
    InputSpec,
    LayerInfo,
    architecture_edges,
    conv_layers,
    head_type,
    input_spec,
    layer_table,
)


@dataclass(frozen=True)
class ModelSummary:
    """Headline figures of a model."""

    name: str
    params: int
    trainable_params: int
    layers: int
    conv_layers: tuple[str, ...]
    input: InputSpec
    head: str
    outputs: int
    default_layer: str | None


def summarize(model: keras.Model) -> ModelSummary:
    """Parameter counts, conv layers, input, head and default target layer (a block output) of a model."""
    rows = layer_table(model)
    convs = tuple(conv_layers(model))
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    return ModelSummary(
        name=model.name,
        params=int(model.count_params()),
        trainable_params=trainable,
        layers=len(rows),
        conv_layers=convs,
        input=input_spec(model),
        head=head_type(model),
        outputs=int(rows[-1].output_shape[-1] or 1),
        default_layer=blocks.default_target_layer(model) if convs else None,
    )


COLOURS = {"conv": "#cfe2ff", "pool": "#d1e7dd", "dense": "#fff3cd", "model": "#e2d9f3", "other": "#f8f9fa"}


def _colour(row: LayerInfo) -> str:
    t = row.type.lower()
    if row.is_conv or "conv" in t:
        return COLOURS["conv"]
    if "pool" in t:
        return COLOURS["pool"]
    if t in ("dense", "activation", "softmax"):
        return COLOURS["dense"]
    return COLOURS["model"] if t in ("functional", "sequential") else COLOURS["other"]


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "x".join("?" if d is None else str(d) for d in shape[1:])


@dataclass(frozen=True)
class DiagramNode:
    """One box of the architecture diagram: ``name`` (its id), ``detail`` (type or layer count, and output
    shape), ``fill`` colour; ``plain`` for the "… more layers …" marker."""

    name: str
    detail: str
    fill: str
    plain: bool = False


@dataclass(frozen=True)
class Diagram:
    """The architecture diagram as data: boxes in call order and the arrows between them (by name)."""

    nodes: tuple[DiagramNode, ...]
    edges: tuple[tuple[str, str], ...]


def architecture_diagram(model: keras.Model, *, max_nodes: int = 80, by_block: bool = False) -> Diagram:
    """The boxes and arrows of the model's own layers (nested models as one box), from the input on.

    Args:
        max_nodes: beyond this many layers, the middle ones are left out (one "…" box stands for them).
        by_block: one box per block or stage (``vizcore.models.blocks``) instead of one per layer.
    """
    rows, edges = architecture_edges(model)
    spec = input_spec(model)
    first = DiagramNode("input", f"{spec.height}x{spec.width}x{spec.channels}", "#eeeeee")
    if by_block:
        nodes, links = _block_nodes(rows, edges)
        return Diagram((first, *nodes), tuple(links))
    shown = rows if len(rows) <= max_nodes else rows[: max_nodes // 2] + rows[-max_nodes // 2 :]
    keep = {r.path for r in shown} | {"input"}
    nodes = [first] + [DiagramNode(r.path, f"{r.type} → {_shape_text(r.output_shape)}", _colour(r)) for r in shown]
    if len(shown) < len(rows):
        nodes.append(DiagramNode("…", f"… {len(rows) - len(shown)} more layers …", "", plain=True))
        edges = [(shown[max_nodes // 2 - 1].path, "…"), ("…", shown[max_nodes // 2].path)] + edges
        keep.add("…")
    return Diagram(tuple(nodes), tuple((a, b) for a, b in edges if a in keep and b in keep))


def architecture_dot(model: keras.Model, *, max_nodes: int = 80, by_block: bool = False) -> str:
    """A Graphviz DOT diagram of ``architecture_diagram`` (arguments the same)."""
    diagram = architecture_diagram(model, max_nodes=max_nodes, by_block=by_block)
    lines = [
        "digraph G {",
        '  rankdir=TB; node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
    ]
    for n in diagram.nodes:
        if n.plain:
            lines.append(f'  "{n.name}" [label="{n.detail}", shape=plaintext, style=""];')
        else:
            lines.append(f'  "{n.name}" [label="{n.name}\\n{n.detail}", fillcolor="{n.fill}"];')
    lines += [f'  "{a}" -> "{b}";' for a, b in diagram.edges]
    lines.append("}")
    return "\n".join(lines)


def _block_nodes(
    rows: list[LayerInfo], edges: list[tuple[str, str]]
) -> tuple[list[DiagramNode], list[tuple[str, str]]]:
    """One node per block (name, layer count, output shape) and the links between blocks; a nested model stays
    one node."""
    by_path = {r.path: r for r in rows}
    owner = {"input": "input"}
    nodes: list[DiagramNode] = []

    def add(name: str, paths: tuple[str, ...], output: str | None) -> None:
        name = name if name not in owner.values() else f"{name} #{len(nodes) + 1}"
        owner.update({p: name for p in paths})
        last = by_path[output or paths[-1]]
        count = (
            f"{len(paths)} layer{'s' if len(paths) > 1 else ''}" if len(paths) > 1 or name != paths[0] else last.type
        )
        colour = COLOURS["conv"] if any(by_path[p].is_conv for p in paths) else _colour(last)
        nodes.append(DiagramNode(name, f"{count} → {_shape_text(last.output_shape)}", colour))

    segment: list[LayerInfo] = []
    for row in rows + [None]:
        if row is None or row.type in ("Functional", "Sequential"):
            for g in blocks.group_rows(segment):
                add(g.name, g.layers, g.output)
            segment = []
            if row is not None:
                add(row.path, (row.path,), row.path)
        else:
            segment.append(row)
    links = dict.fromkeys((owner[a], owner[b]) for a, b in edges if a in owner and b in owner and owner[a] != owner[b])
    return nodes, list(links)
