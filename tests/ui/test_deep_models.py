"""AppTest on an untrained MobileNetV2 (155 layers): pages read it block by block.

The expected blocks come from MobileNetV2's published structure (residual adds in blocks 2, 4, 5,
7, 8, 9, 11, 12, 14, 15), written out here rather than taken from vizcore.models.blocks.
"""

from __future__ import annotations

import json

from helpers import app_with_network
from streamlit.testing.v1 import AppTest

TIMEOUT = 60
ADDS = {2, 4, 5, 7, 8, 9, 11, 12, 14, 15}
BLOCKS = (
    ["stem · Conv1_relu", "expanded_conv · expanded_conv_project_BN"]
    + [f"block_{i} · block_{i}_{'add' if i in ADDS else 'project_BN'}" for i in range(1, 17)]
    + ["top · out_relu"]
)


def _mobilenet() -> AppTest:
    return app_with_network("MobileNetV2", timeout=TIMEOUT)


def test_mobilenetv2_pages_by_block():
    at = _mobilenet()
    # Model page: the diagram has one box per block (and the input), the default layer is the block output
    assert at.toggle(key="model.by_block").value
    dot = at.get("graphviz_chart")[0].proto.spec
    boxes = [line.split('"')[1] for line in dot.splitlines() if "[label=" in line]
    assert boxes == ["input"] + [b.split(" · ")[0] for b in BLOCKS]
    assert any("`out_relu`" in c.value for c in at.caption)
    at.toggle(key="model.by_block").set_value(False).run()
    assert '"block_3_expand"' in at.get("graphviz_chart")[0].proto.spec

    # Activations: one column per block output, then the head's vectors; every layer on request
    at.switch_page("pages/activations.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key="act.every").value is False
    caption = at.get("image")[1].captions[0]  # image 0 is the input preview
    columns = caption.split(" (each column")[0].split(" → ")
    assert columns == ["Input"] + BLOCKS + ["top · global_average_pooling2d", "top · predictions"]
    assert "block_3_expand" not in caption
    at.session_state["act.tab"] = "One layer"  # stateful tabs: only the open one runs
    at.run()
    picker = at.selectbox(key="act.layer")
    assert (
        picker.value == "out_relu" and "block_3_project_BN" in picker.options
    )  # named by its block: type block_3 to find it
    sparsity = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Sparsity per block output" in c.proto.spec]
    assert len(sparsity) == 1 and list(sparsity[0]["data"][0]["x"]) == [b.split(" · ")[1] for b in BLOCKS]
    at.session_state["act.tab"] = "Overview"
    at.run()
    at.toggle(key="act.every").set_value(True).run()
    assert not at.exception
    every = at.get("image")[1].captions[0]
    count = int(every.split("Input → ")[1].split(" layers")[0])
    assert count > 100 and "stem · Conv1 …" in every

    # Attribution: the CAM layers are the block outputs, the default is out_relu, not the pre-BatchNorm Conv_1
    at.switch_page("pages/attribution.py").run()
    assert not at.exception, [e.value for e in at.exception]
    layer = at.selectbox(key="attr.layer")
    assert layer.value == "out_relu"
    picker_labels = [lb.split(" · ")[1] if lb.split(" · ")[0] in lb.split(" · ")[1] else lb for lb in BLOCKS]
    assert list(layer.options) == picker_labels  # a name that says its block shows plain
    assert any(
        c.startswith("Grad-CAM · ") and c.endswith(" · out_relu") for img in at.get("image") for c in img.captions
    )


def test_mobilenetv2_filters_default_to_a_quick_texture_gallery():
    """224 px input: the Filters page opens on the deepest layer optimized as a 64 px texture
    (block_4_expand: receptive field 27 px, written out from MobileNetV2's strides), 16 filters, and says so."""
    at = _mobilenet()
    at.switch_page("pages/filters.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="fv.layer").value == "block_4_expand"
    assert at.slider(key="fv.range.block_4_expand").value == (0, 15)
    assert any("as a texture at 64×64 px" in c.value and "8-px strides" in c.value for c in at.caption)
    assert any("16 image(s)" in c.value for c in at.caption)
    at.selectbox(key="fv.layer").set_value("Conv_1").run()  # a late layer: the full-size recipe, no texture caption
    assert not any("as a texture" in c.value for c in at.caption)


def test_hosted_activations_compute_only_the_blocks_shown_with_the_same_overview(monkeypatch):
    """Above the hosted profile's size threshold the overview by block runs the 21 block outputs, not 155 layers."""
    from pages import _cache
    from vizcore import profile
    from vizcore.inspect import activations

    at = _mobilenet()
    real = activations.get_activations
    computed, captions = {}, {}
    for name in ("default", "hosted"):
        monkeypatch.setattr(_cache, "LIMITS", profile.PROFILES[name])
        _cache.activations.clear()
        computed[name] = []
        monkeypatch.setattr(
            activations,
            "get_activations",
            lambda m, x, layers=None, out=computed[name]: out.extend(layers) or real(m, x, layers),
        )
        at.switch_page("pages/activations.py").run()
        assert not at.exception, [e.value for e in at.exception]
        captions[name] = at.get("image")[1].captions[0]
    assert captions["hosted"] == captions["default"]
    assert len(computed["default"]) > 150
    assert len(computed["hosted"]) == len(BLOCKS) + 2  # the block outputs and the head's two vectors
    at.session_state["act.tab"] = "One layer"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(computed["hosted"]) == len(BLOCKS) + 2  # out_relu and the sparsity per block: no new pass
    at.selectbox(key="act.layer").set_value("block_3_expand").run()
    assert not at.exception and computed["hosted"][-1] == "block_3_expand"  # one more layer, on its own
