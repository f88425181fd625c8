"""Training page: train the working model with live curves; training runs on its own thread."""

import importlib.util

import streamlit as st

from pages import _cache, _runner, _search, _sessions, _state, _train_results, _working
from vizcore import training
from vizcore.data import archive
from vizcore.errors import ConvLensError, TrainingError

RUN = "train.run"  # this session's current training.Run
RUNS_DIR = training.runs_dir()
FIELDS = {  # the one map between TrainConfig and the settings widgets: field -> widget key
    "optimizer": "train.opt",
    "learning_rate": "train.lr",
    "momentum": "train.momentum",
    "schedule": "train.schedule",
    "step_every": "train.step_every",
    "step_factor": "train.step_factor",
    "batch_size": "train.batch",
    "epochs": "train.epochs",
    "validation_fraction": "train.val",
    "flip": "train.flip",
    "shift": "train.shift",
    "rotation": "train.rot",
    "seed": "train.seed",
}
NOT_IN_RECIPES = ("validation_fraction", "seed")  # a recommended recipe leaves the split and the seed as they are
PAGE_DEFAULTS = training.TrainConfig(epochs=3)


def apply_recipe(recipe: training.TrainConfig) -> None:
    """Put a recommended recipe into the settings widgets."""
    for field, key in FIELDS.items():
        if field not in NOT_IN_RECIPES:
            _state.put(key, getattr(recipe, field))
    st.rerun()


loaded = _working.working_model()
_working.sidebar(loaded)
st.title("📈 Training")
st.caption(
    "Train the working model on bundled or downloaded data. Curves grow while it trains; you can keep using the app, "
    "and Stop keeps the weights trained so far. A checkpoint is written after every epoch."
)
run: training.Run | None = st.session_state.get(RUN)
running = run is not None and not run.job.snapshot().finished
if run is None:
    _train_results.offer_recovery(RUNS_DIR)

DATASETS = {
    "mnist_sample": "MNIST sample (bundled, 5,000 digits)",
    "shapes": "Shapes (generated, 3,000 images)",
    "mnist": "MNIST (download)",
    "fashion_mnist": "Fashion-MNIST (download)",
    "cifar10": "CIFAR-10 (download)",
    "zip": "My images (a ZIP, one folder per class)",
}
spec = loaded.spec
c1, c2 = st.columns([2, 1])
default = "mnist_sample" if spec.channels == 1 else "shapes"
name = c1.selectbox(
    "Dataset",
    list(DATASETS),
    list(DATASETS).index(default),
    format_func=DATASETS.get,
    disabled=running,
    **_state.linked("train.data", default, list(DATASETS), format_func=DATASETS.get, legacy="data"),
)
limit = c2.number_input(
    "Images to use (0 = all)",
    0,
    60000,
    0,
    1000,
    key="train.limit",
    disabled=running or name in ("mnist_sample", "shapes"),
)
dataset = None
try:
    if name == "zip":
        upload = st.file_uploader(
            "ZIP of images, one folder per class",
            type=["zip"],
            key="train.zip",
            disabled=running,
            max_upload_size=_working.LIMITS.upload_mb,
        )
        if upload is not None:
            dataset = _runner.run(  # decoded once per file, not on every rerun
                "train.zip",
                (upload.file_id, spec.height, spec.width, spec.channels),
                lambda _sink: archive.load_image_zip(
                    upload.getvalue(), size=(spec.height, spec.width), channels=spec.channels, name=upload.name
                ),
                heavy=False,
            )  # a bad ZIP: None, and the runner says why
            for note in dataset.notes if dataset is not None else ():
                st.caption(f"ℹ️ {note}")
        else:
            _runner.drop("train.zip")
    else:
        dataset = _cache.dataset(name, int(limit))
except ConvLensError as err:
    st.error(str(err), icon="🚫")

recipe = training.RECOMMENDED.get(loaded.key.split(":")[-1])
if recipe and st.button("Use the recommended recipe for this preset", key="train.recipe", disabled=running):
    apply_recipe(recipe)
for field, key in FIELDS.items():
    _state.keep(key, getattr(PAGE_DEFAULTS, field))
_state.keep("train.tb", False)
with st.expander("Settings", expanded=not running):
    s = st.columns(4)
    optimizer = s[0].selectbox("Optimizer", training.OPTIMIZERS, key="train.opt", disabled=running)
    s[1].number_input("Learning rate", 1e-6, 1.0, format="%.5f", key="train.lr", disabled=running)
    s[2].number_input("Momentum (SGD)", 0.0, 0.999, key="train.momentum", disabled=running or optimizer != "sgd")
    schedule = s[3].selectbox("Schedule", training.SCHEDULES, key="train.schedule", disabled=running)
    s = st.columns(4)
    s[0].number_input("Step every (epochs)", 1, 100, key="train.step_every", disabled=running or schedule != "step")
    s[1].number_input("Step factor", 0.01, 1.0, key="train.step_factor", disabled=running or schedule != "step")
    s[2].number_input("Batch size", 1, 4096, key="train.batch", disabled=running)
    s[3].number_input("Epochs", 1, 500, key="train.epochs", disabled=running)
    s = st.columns(5)
    s[0].slider("Validation share", 0.0, 0.5, step=0.05, key="train.val", disabled=running)
    s[1].checkbox("Random flips", key="train.flip", disabled=running)
    s[2].slider("Random shift", 0.0, 0.3, step=0.025, key="train.shift", disabled=running)
    s[3].slider("Rotation (°)", 0.0, 45.0, step=1.0, format="%.0f", key="train.rot", disabled=running)
    s[4].number_input("Seed", 0, 2**31 - 1, key="train.seed", disabled=running)
    tensorboard = st.checkbox("Also write TensorBoard logs", key="train.tb", disabled=running)
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        st.caption(
            "⚠️ TensorBoard logs need the `tensorboard` package (`pip install tensorboard`); "
            "without it none are written."
        )
    elif tensorboard:
        st.caption(
            f"Logs go to `{RUNS_DIR.name}/<session>/<run>/tensorboard`; "
            f"view them with `tensorboard --logdir {RUNS_DIR.name}`."
        )

config = training.TrainConfig.from_dict({field: st.session_state[key] for field, key in FIELDS.items()})
problems = config.problems()
if dataset is not None and not problems:
    split = _runner.run(  # the dataset by identity: no copy per rerun
        "train.split",
        (dataset, config.validation_fraction, config.seed),
        lambda _sink: training.split_for_training(dataset, config),
        heavy=False,
    )
    if split is None:  # the runner said why
        dataset = None
    else:
        train, val = split
        problems = training.check_compat(loaded.model, train, config, val=val)
for p in problems:
    st.error(p, icon="⚠️")

if st.button(
    "Start training", key="train.start", type="primary", disabled=running or dataset is None or bool(problems)
):
    session = st.session_state.setdefault("train.session", training.new_session_id())
    try:
        run = training.start_run(
            loaded,
            train,
            val,
            config,
            session=session,
            tensorboard=tensorboard,
            label=f"{loaded.model.name} on {DATASETS[name].split(' (')[0]}",
        )
    except TrainingError as err:
        st.error(str(err))
    else:
        _sessions.on_session_end(run.stop)  # a closed tab stops its training (the last checkpoint stays)
        st.query_params["run"] = run.token  # reopening this address recovers the checkpoint
        st.session_state[RUN] = run
        st.rerun()


@st.fragment(run_every=1.0 if running else None)
def live() -> None:
    """Polls the job: progress, Stop, curves. Reruns of the page never touch the training thread."""
    current: training.Run | None = st.session_state.get(RUN)
    if current is None:
        return
    state = current.job.snapshot()
    last = state.batches[-1] if state.batches else None
    text = f"{state.status} · {state.progress:.0%}"
    if last is not None:
        text += f" · epoch {last.epoch + 1}/{current.job.config.epochs} · {last.images_per_s or 0:,.0f} images/s"
    if state.eta_s is not None and not state.finished:
        text += f" · about {state.eta_s:.0f} s left"
    st.progress(min(1.0, state.progress), text=text)
    if not state.finished and st.button(
        "Stop", key="train.stop", help="Ends after the current batch; keeps the weights"
    ):
        current.stop()
    if state.error:
        st.error(state.error)
    loss = _train_results.curves(state, "loss")
    if st.session_state.get("train.logy"):
        loss.update_yaxes(type="log")
    st.plotly_chart(loss, key="train.loss_curve")
    st.plotly_chart(_train_results.curves(state, "accuracy"), key="train.acc_curve")
    if state.finished and current.finish():
        _train_results.publish(current)
        st.rerun()


if run:
    st.checkbox(
        "Log scale for the loss", key="train.logy", help="Safe to touch while training: training runs on its own thread"
    )
    live()
    if run.final is not None:
        _train_results.panel(run)

ready = dataset is not None and not problems
_search.section(loaded, train if ready else None, val if ready else None, config, busy=running)
