"""report.json against independent counts, and the command's bad input answered in one sentence."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import vizcore
from vizcore import attribution, models
from vizcore.attribution import metrics
from vizcore.report import BUDGETS, SECTION_IDS
from vizcore.report.__main__ import main


def _predicted(loaded, x: np.ndarray) -> np.ndarray:
    return np.argmax(loaded.model.predict(x, batch_size=100, verbose=0), axis=1)


def test_the_command_prints_each_step_and_writes_both_files(written):
    html_path, json_path, numbers, printed = written
    assert html_path.name == "report.html" and json_path.name == "report.json" and html_path.parent == json_path.parent
    steps = [line for line in printed.splitlines() if line.startswith("[")]
    total = int(steps[0].split("/")[1].split("]")[0])
    assert [int(s[1:].split("/")[0]) for s in steps] == list(range(total + 1))  # each step once, in order
    assert printed.strip().splitlines()[-1].startswith(f"Wrote {html_path}")
    assert [s["id"] for s in numbers["sections"]] == list(SECTION_IDS)


def test_accuracy_confusion_and_per_class_scores_equal_a_numpy_count(written, mnist, n_images):
    loaded, x, y, _ = mnist
    ev = written[2]["evaluation"]
    predicted = _predicted(loaded, x)
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (y, predicted), 1)
    assert ev["images"] == n_images
    assert np.array_equal(np.asarray(ev["confusion"]), confusion)
    assert ev["accuracy"] == pytest.approx(np.mean(predicted == y), abs=1e-12)
    assert ev["correct"] == int(np.sum(predicted == y))
    for c, row in enumerate(ev["per_class"]):
        tp = np.sum((predicted == c) & (y == c))
        precision = tp / np.sum(predicted == c) if np.any(predicted == c) else None
        recall = tp / np.sum(y == c)
        f1 = 2 * precision * recall / (precision + recall) if precision and precision + recall else None
        assert row["name"] == loaded.class_names[c] and row["support"] == int(np.sum(y == c))
        assert row["recall"] == pytest.approx(recall, abs=1e-12)
        assert row["precision"] == (None if precision is None else pytest.approx(precision, abs=1e-12))
        assert row["f1"] == (None if f1 is None else pytest.approx(f1, abs=1e-12))


def test_robust_accuracy_starts_at_the_clean_accuracy_and_falls(written, mnist, n_images):
    loaded, x, y, _ = mnist
    rob = written[2]["robustness"]
    assert rob["epsilons"] == list(BUDGETS["full"].epsilons) and rob["epsilons"][0] == 0.0
    assert rob["images"] == n_images and rob["labels"] == "true" and rob["attack"] == "fgsm"
    assert rob["accuracy"][0] == pytest.approx(np.mean(_predicted(loaded, x) == y), abs=1e-12)  # ε = 0: no change
    assert rob["accuracy"][-1] < rob["accuracy"][0] - 0.3  # ε 0.3 (76 levels) breaks an undefended MNIST CNN
    example = rob["example"]
    assert example["before"]["class_name"] != example["after"]["class_name"]
    assert 0 < example["epsilon"] <= 0.3 and example["levels"] == pytest.approx(example["epsilon"] * 255)


def test_faithfulness_scores_are_the_metrics_of_the_explained_images(written, mnist):
    loaded, x, y, pick = mnist
    faith = written[2]["faithfulness"]
    assert set(faith["methods"]) == {"Grad-CAM", "Saliency", "Random"}
    n = len(faith["images"])
    predicted = _predicted(loaded, x)
    confusions = {(t, p) for t, p in zip(y, predicted) if t != p}  # one wrong image per confusion is explained
    assert n == BUDGETS["full"].explained + min(BUDGETS["full"].explained, len(confusions))
    for scores in faith["methods"].values():
        assert len(scores["deletion_auc"]) == len(scores["insertion_auc"]) == n
        assert scores["mean_deletion_auc"] == pytest.approx(np.mean(scores["deletion_auc"]))
    row = int(np.flatnonzero(pick == faith["images"][0])[0])  # the first explained image, by its dataset index
    target = int(_predicted(loaded, x[row : row + 1])[0])
    heat = attribution.METHODS["Grad-CAM"](loaded.model, x[row], target=target, layer="conv2")
    auc = metrics.deletion_curve(loaded.model, x[row], heat, target=target, steps=faith["steps"]).auc
    assert faith["methods"]["Grad-CAM"]["deletion_auc"][0] == pytest.approx(auc, abs=1e-6)


def test_identity_names_the_file_the_weights_and_the_version(written, mnist, n_images):
    loaded = mnist[0]
    ident = written[2]["identity"]
    path = models.BUNDLED_DIR / "mnist_cnn.keras"
    assert ident["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ident["parameters"] == loaded.model.count_params() == 314_090
    assert ident["convlens_version"] == vizcore.__version__
    assert ident["class_names"] == list(loaded.class_names) and ident["input"]["range"] == "unit"
    assert ident["dataset"]["key"] == f"mnist_sample:{n_images}" and ident["dataset"]["total"] == 5000


def test_the_json_is_strict(written):
    import json

    def refuse(value):
        raise AssertionError(f"{value} in report.json")

    json.loads(written[1].read_text(encoding="utf-8"), parse_constant=refuse)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "bundled:no_such_model", "--dataset", "mnist_sample"], "Unknown model 'bundled:no_such_model'"),
        (["--model", "bundled:mnist_cnn", "--dataset", "no_such_data"], "Unknown dataset 'no_such_data'"),
    ],
)
def test_an_unknown_model_or_dataset_is_one_sentence(tmp_path, args, words):
    with pytest.raises(SystemExit) as err:
        main([*args, "--out", str(tmp_path / "out")])
    message = str(err.value)
    assert message.startswith(words) and message.endswith(".") and "\n" not in message


def test_a_folder_that_cannot_be_written_is_one_sentence_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as err:
        main(["--model", "bundled:no_such_model", "--dataset", "mnist_sample", "--out", str(blocker / "out")])
    message = str(err.value)  # the folder is checked first: the unknown model is never reached
    assert message.startswith(f"The folder '{blocker / 'out'}' cannot be made") and "\n" not in message
    assert message.endswith(".")
