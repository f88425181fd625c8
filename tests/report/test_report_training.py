"""The training section: a model trained here shows its own curves and settings; a bundled one its card."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from helpers import tiny_sequential

from vizcore import models
from vizcore.report import sections
from vizcore.report.content import Plot, Table
from vizcore.training.config import TrainConfig
from vizcore.training.records import EpochRecord
from vizcore.training.run import CHECKPOINT, SNAPSHOTS
from vizcore.training.storage import write_history


def _ctx(loaded):
    return SimpleNamespace(loaded=loaded, numbers={}, results={})


def test_a_model_trained_here_shows_its_recorded_epochs(tmp_path):
    losses, accs = [0.9, 0.5, 0.3], [0.6, 0.8, 0.9]
    records = [
        EpochRecord(
            epoch=e,
            loss=lo,
            accuracy=a,
            val_loss=lo + 0.1,
            val_accuracy=a - 0.05,
            learning_rate=1e-3,
            seconds=1.0,
            elapsed_s=e + 1.0,
        )
        for e, (lo, a) in enumerate(zip(losses, accs))
    ]
    write_history(tmp_path / CHECKPOINT, records, TrainConfig(epochs=3, batch_size=16))
    card = {"snapshots": str(tmp_path / SNAPSHOTS), "trained_here": True, "status": "finished"}
    loaded = models.LoadedModel(tiny_sequential(), "trained:abc", "tiny (trained here)", ("a", "b", "c"), card=card)
    ctx = _ctx(loaded)
    section = sections.training(ctx)
    got = ctx.numbers["training"]
    assert got["source"] == "history" and got["epoch"] == [1, 2, 3]
    assert got["loss"] == losses and np.allclose(got["val_accuracy"], np.array(accs) - 0.05)
    assert got["settings"]["batch_size"] == 16
    plots = [b.figure for b in section.blocks if isinstance(b, Plot)]
    assert [list(t.y) for t in plots[0].data] == [losses, [lo + 0.1 for lo in losses]]
    assert any(isinstance(b, Table) and ("epochs", "3") in b.rows for b in section.blocks)


def test_a_bundled_model_shows_its_card_and_a_preset_says_it_is_untrained():
    ctx = _ctx(models.open_bundled("lenet5"))
    section = sections.training(ctx)
    assert ctx.numbers["training"]["source"] == "card"
    assert not any(isinstance(b, Plot) for b in section.blocks)
    rows = dict(next(b for b in section.blocks if isinstance(b, Table)).rows)
    assert rows["held-out accuracy"] == f"{models.bundled_card('lenet5')['test_accuracy']:.1%}"
    ctx = _ctx(models.open_preset("lenet5"))
    assert "untrained" in sections.training(ctx).blocks[0].text and ctx.numbers["training"] is None
