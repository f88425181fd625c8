"""Training page: train the working model with live curves; training runs on its own thread."""

import importlib.util
import os
import time
import uuid
from pathlib import Path

import streamlit as st

from pages import _cache, _shared, _train_results
from vizcore import archive, training
from vizcore.errors import ConvLensError

RUN = "train.run"  # this session's current run: {"job", "model", "val", "names", "dir", "label", ...}
RUNS_DIR = Path(os.environ.get("CONVLENS_RUNS_DIR") or Path(__file__).resolve().parent.parent / "user_models")

loaded = _shared.working_model()
_shared.sidebar(loaded)
st.title("📈 Training")
st.caption("Train the working model on bundled or downloaded data. Curves grow while it trains; you can keep using the app, "
           "and Stop keeps the weights trained so far. A checkpoint is written after every epoch.")
run = st.session_state.get(RUN)
running = bool(run) and not run["job"].snapshot().finished
if not run:
    _train_results.offer_recovery(RUNS_DIR)

DATASETS = {"mnist_sample": "MNIST sample (bundled, 5,000 digits)", "shapes": "Shapes (generated, 3,000 images)",
            "mnist": "MNIST (download)", "fashion_mnist": "Fashion-MNIST (download)", "cifar10": "CIFAR-10 (download)",
            "zip": "My images (a ZIP, one folder per class)"}
spec = loaded.spec
c1, c2 = st.columns([2, 1])
default = "mnist_sample" if spec.channels == 1 else "shapes"
name = c1.selectbox("Dataset", list(DATASETS), list(DATASETS).index(default), format_func=DATASETS.get, disabled=running,
                    **_shared.linked("train.data", default, list(DATASETS), format_func=DATASETS.get, legacy="data"))
limit = c2.number_input("Images to use (0 = all)", 0, 60000, 0, 1000, key="train.limit", disabled=running or name in ("mnist_sample", "shapes"))
dataset = None
try:
    if name == "zip":
        upload = st.file_uploader("ZIP of images, one folder per class", type=["zip"], key="train.zip", disabled=running)
        if upload is not None:
            dataset = archive.load_image_zip(upload.getvalue(), size=(spec.height, spec.width), channels=spec.channels, name=upload.name)
            for note in dataset.notes:
                st.caption(f"ℹ️ {note}")
    else:
        dataset = _cache.dataset(name, int(limit))
except ConvLensError as err:
    st.error(str(err), icon="🚫")

recipe = training.RECOMMENDED.get(loaded.key.split(":")[-1])
if recipe and st.button("Use the recommended recipe for this preset", key="train.recipe", disabled=running):
    _train_results.apply_recipe(recipe)
DEFAULTS = {"train.opt": "adam", "train.lr": 1e-3, "train.momentum": 0.9, "train.schedule": "constant", "train.step_every": 5,
            "train.step_factor": 0.7, "train.batch": 32, "train.epochs": 3, "train.val": 0.2, "train.flip": False,
            "train.shift": 0.0, "train.rot": 0, "train.seed": 0, "train.tb": False}
for key, default in DEFAULTS.items():
    _shared.keep(key, default)
with st.expander("Settings", expanded=not running):
    s = st.columns(4)
    optimizer = s[0].selectbox("Optimizer", training.OPTIMIZERS, key="train.opt", disabled=running)
    lr = s[1].number_input("Learning rate", 1e-6, 1.0, format="%.5f", key="train.lr", disabled=running)
    momentum = s[2].number_input("Momentum (SGD)", 0.0, 0.999, key="train.momentum", disabled=running or optimizer != "sgd")
    schedule = s[3].selectbox("Schedule", training.SCHEDULES, key="train.schedule", disabled=running)
    s = st.columns(4)
    step_every = s[0].number_input("Step every (epochs)", 1, 100, key="train.step_every", disabled=running or schedule != "step")
    step_factor = s[1].number_input("Step factor", 0.01, 1.0, key="train.step_factor", disabled=running or schedule != "step")
    batch = s[2].number_input("Batch size", 1, 4096, key="train.batch", disabled=running)
    epochs = s[3].number_input("Epochs", 1, 500, key="train.epochs", disabled=running)
    s = st.columns(5)
    val_frac = s[0].slider("Validation share", 0.0, 0.5, step=0.05, key="train.val", disabled=running)
    flip = s[1].checkbox("Random flips", key="train.flip", disabled=running)
    shift = s[2].slider("Random shift", 0.0, 0.3, step=0.025, key="train.shift", disabled=running)
    rotation = s[3].slider("Rotation (°)", 0, 45, key="train.rot", disabled=running)
    seed = s[4].number_input("Seed", 0, 2**31 - 1, key="train.seed", disabled=running)
    tensorboard = st.checkbox("Also write TensorBoard logs", key="train.tb", disabled=running)
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        st.caption("⚠️ TensorBoard logs need the `tensorboard` package (`pip install tensorboard`); without it none are written.")
    elif tensorboard:
        st.caption(f"Logs go to `{RUNS_DIR.name}/<session>/<run>/tensorboard`; view them with `tensorboard --logdir {RUNS_DIR.name}`.")

config = training.TrainConfig(optimizer=optimizer, learning_rate=float(lr), momentum=float(momentum), schedule=schedule,
                              step_every=int(step_every), step_factor=float(step_factor), batch_size=int(batch),
                              epochs=int(epochs), validation_fraction=float(val_frac), flip=flip, shift=float(shift),
                              rotation=float(rotation), seed=int(seed))
problems = config.problems()
if dataset is not None and not problems:
    train, val = training.split_for_training(dataset, config)
    problems = training.check_compat(loaded.model, train, config, val=val)
for p in problems:
    st.error(p, icon="⚠️")

if st.button("Start training", key="train.start", type="primary", disabled=running or dataset is None or bool(problems)):
    if not _cache.training_slots().acquire(blocking=False):
        st.error("Other sessions are training right now and this server trains two models at a time; try again in a moment.")
    else:
        run_id = uuid.uuid4().hex[:8]
        folder = RUNS_DIR / st.session_state.setdefault("train.session", uuid.uuid4().hex[:12]) / run_id
        folder.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            config = config.replace(tensorboard_dir=str(folder / "tensorboard"))
        try:
            model = training.trainable_copy(loaded.model)
            job = training.start_job(model, train, val, config, checkpoint_path=folder / "checkpoint.keras",
                                     snapshot_path=folder / "snapshots.npz")
        except BaseException:
            _cache.training_slots().release()  # the job never started: give its slot back
            raise
        _cache.release_slot_when_done(job)
        _shared.on_session_end(job.stop)  # a closed tab stops its training (the last checkpoint stays)
        st.query_params["run"] = f"{folder.parent.name}.{run_id}"  # reopening this address recovers the checkpoint
        st.session_state[RUN] = {"job": job, "model": model, "val": val, "names": dataset.class_names, "dir": folder,
                                 "id": run_id, "label": f"{loaded.model.name} on {DATASETS[name].split(' (')[0]}",
                                 "preprocess": loaded.preprocess, "started": time.time(), "published": False}
        st.rerun()


@st.fragment(run_every=1.0 if running else None)
def live() -> None:
    """Polls the job: progress, Stop, curves. Reruns of the page never touch the training thread."""
    current = st.session_state.get(RUN)
    if not current:
        return
    state = current["job"].snapshot()
    last = state.batches[-1] if state.batches else None
    text = f"{state.status} · {state.progress:.0%}"
    if last is not None:
        text += f" · epoch {last.epoch + 1}/{current['job'].config.epochs} · {last.images_per_s or 0:,.0f} images/s"
    if state.eta_s is not None and not state.finished:
        text += f" · about {state.eta_s:.0f} s left"
    st.progress(min(1.0, state.progress), text=text)
    if not state.finished and st.button("Stop", key="train.stop", help="Ends after the current batch; keeps the weights"):
        current["job"].stop()
    if state.error:
        st.error(state.error)
    loss = _train_results.curves(state, "loss")
    if st.session_state.get("train.logy"):
        loss.update_yaxes(type="log")
    st.plotly_chart(loss, key="train.loss_curve")
    st.plotly_chart(_train_results.curves(state, "accuracy"), key="train.acc_curve")
    if state.finished and not current["published"]:
        _train_results.publish(current, state)
        st.rerun()


if run:
    st.checkbox("Log scale for the loss", key="train.logy", help="Safe to touch while training: training runs on its own thread")
    live()
    if run["published"]:
        _train_results.panel(run)
