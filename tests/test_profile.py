"""The server profile (limits from the environment, heavy slots, TensorFlow threads) and pruning old run folders."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time

import pytest
from helpers import ROOT

from vizcore import profile
from vizcore.training import prune_runs


def test_default_and_hosted_profiles_from_the_environment():
    default = profile.from_env({})
    hosted = profile.from_env({"CONVLENS_PROFILE": " Hosted "})
    assert default.name == "default" and hosted.name == "hosted"
    assert hosted.max_applications == 1 < default.max_applications
    assert not hosted.offers("VGG16") and hosted.offers("MobileNetV2") and default.offers("VGG16")
    assert hosted.upload_mb < default.upload_mb
    assert hosted.activation_entries < default.activation_entries
    assert (hosted.heavy_slots, hosted.training_slots, hosted.intra_op_threads, hosted.inter_op_threads) == (1, 1, 1, 1)
    assert default.onednn and not hosted.onednn
    assert default.closed_session_s == 0 < hosted.closed_session_s  # 0: Streamlit's own 60 s
    assert default.compile_single_passes and not hosted.compile_single_passes
    with pytest.raises(dataclasses.FrozenInstanceError):
        hosted.upload_mb = 5


def test_overrides_and_refusals():
    limits = profile.from_env(
        {
            "CONVLENS_PROFILE": "hosted",
            "CONVLENS_TF_THREADS": "3",
            "CONVLENS_HEAVY_SLOTS": "2",
            "CONVLENS_RUN_MAX_AGE_S": "60.5",
            "CONVLENS_UPLOAD_MB": "20",
        }
    )
    assert (limits.intra_op_threads, limits.heavy_slots, limits.run_max_age_s, limits.upload_mb) == (3, 2, 60.5, 20)
    assert limits.max_applications == 1  # the rest stays the profile's
    with pytest.raises(ValueError, match="CONVLENS_PROFILE='cloud'"):
        profile.from_env({"CONVLENS_PROFILE": "cloud"})
    with pytest.raises(ValueError, match="not a number"):
        profile.from_env({"CONVLENS_TF_THREADS": "many"})
    with pytest.raises(ValueError, match="out of range"):
        profile.from_env({"CONVLENS_HEAVY_SLOTS": "0"})


def test_slots_make_the_second_computation_wait_and_say_so_once():
    slots = profile.Slots(1)
    order, waits = [], []
    first_in, release_first = threading.Event(), threading.Event()

    def first():
        with slots.hold():
            order.append("first in")
            first_in.set()
            release_first.wait(5)
            order.append("first out")

    def second():
        with slots.hold(on_wait=lambda: waits.append(slots.in_use)):
            order.append("second in")

    t1 = threading.Thread(target=first)
    t1.start()
    assert first_in.wait(5)
    assert slots.busy()
    t2 = threading.Thread(target=second)
    t2.start()
    time.sleep(0.3)
    assert order == ["first in"]  # the second is still waiting
    release_first.set()
    t1.join(5)
    t2.join(5)
    assert order == ["first in", "first out", "second in"]
    assert waits == [1]  # on_wait ran once, while the first held the only slot
    assert slots.in_use == 0 and not slots.busy()


def test_slots_are_reentrant_in_one_thread_and_free_after_an_error():
    slots = profile.Slots(1)
    waited = []
    with pytest.raises(RuntimeError):
        with slots.hold():
            with slots.hold(on_wait=lambda: waited.append(True)):  # nested heavy work: no deadlock, no wait
                assert slots.in_use == 1
                raise RuntimeError("inner failure")
    assert waited == [] and slots.in_use == 0
    with slots.hold():
        assert slots.busy()
    with pytest.raises(ValueError):
        profile.Slots(0)


def test_hosted_profile_bounds_tensorflow_threads_and_training_slots():
    """In a fresh process (TensorFlow accepts thread bounds only before its first op)."""
    code = (
        "import os\n"
        "from vizcore import profile\n"
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), os.environ.get('TF_NUM_INTRAOP_THREADS'))\n"
        "assert profile.configure_threads()\n"
        "import tensorflow as tf\n"
        "tf.constant(1.0) + 1.0\n"
        "from vizcore import training\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads(),"
        " training.MAX_CONCURRENT, profile.heavy_slots().size,"
        " profile.configure_threads(profile.from_env({'CONVLENS_PROFILE': 'hosted', 'CONVLENS_TF_THREADS': '2'})))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TF_NUM_", "TF_ENABLE_ONEDNN"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "CONVLENS_PROFILE": "hosted", "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[:2] == ["0", "1"]  # set by `import vizcore`, before TensorFlow is imported
    assert out.stdout.split()[-5:] == ["1", "1", "1", "1", "False"]  # too late for new bounds after the first op
    out = subprocess.run(
        [sys.executable, "-c", "import os, vizcore; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"],
        cwd=ROOT,
        env={**clean, "CONVLENS_PROFILE": "default"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["None"]  # the default profile leaves TensorFlow as it is


FREED_RSS = """
import ctypes, vizcore
import numpy as np
def rss_mb():
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')) / 1024
np.ones(4 << 20, np.uint8)  # one 4 MB block freed: glibc's sliding threshold rises to 4 MB
before = rss_mb()
blocks = [np.ones(2 << 20, np.uint8) for _ in range(100)]  # 200 MB of 2 MB blocks
grown = rss_mb()
del blocks[:-1]  # the newest one stays: the heap cannot shrink from its top
print(round(grown - before), round(rss_mb() - before))
"""


def test_hosted_profile_hands_freed_large_blocks_back_to_the_system():
    """glibc's sliding mmap threshold keeps freed 2 MB blocks in the heap; the hosted profile's fixed one
    returns them."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    held = {}
    for name in ("default", "hosted"):
        out = subprocess.run(
            [sys.executable, "-c", FREED_RSS],
            cwd=ROOT,
            env={**clean, "CONVLENS_PROFILE": name},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        grown, held[name] = map(int, out.stdout.split())
        assert grown >= 190  # the blocks were resident
    assert held["default"] >= 150  # freed but kept by glibc
    assert held["hosted"] <= 10  # returned on free
    assert profile.PROFILES["hosted"].mmap_threshold_kb and not profile.PROFILES["default"].mmap_threshold_kb


def _touch(path, age_s, now):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    os.utime(path, (now - age_s, now - age_s))


def test_prune_runs_deletes_only_old_session_folders(tmp_path):
    now = 1_800_000_000.0
    old, fresh, mixed = tmp_path / "0123456789ab", tmp_path / "aaaaaaaaaaaa", tmp_path / "bbbbbbbbbbbb"
    _touch(old / "1234abcd" / "checkpoint.keras", 3 * 3600, now)
    _touch(fresh / "1234abcd" / "checkpoint.keras", 60, now)
    _touch(mixed / "00000000" / "checkpoint.keras", 3 * 3600, now)
    _touch(mixed / "11111111" / "snapshots.npz", 10, now)  # one run of the session still writes
    _touch(tmp_path / "notes" / "keep.txt", 3 * 3600, now)  # not a session folder
    _touch(tmp_path / "readme.txt", 3 * 3600, now)
    for folder in (old, old / "1234abcd", fresh, fresh / "1234abcd", mixed, mixed / "00000000", mixed / "11111111"):
        os.utime(folder, (now - 3 * 3600, now - 3 * 3600))

    gone = prune_runs(tmp_path, 3600, now=now)

    assert gone == [old]
    assert not old.exists()
    assert (fresh / "1234abcd" / "checkpoint.keras").exists() and (mixed / "00000000" / "checkpoint.keras").exists()
    assert (tmp_path / "notes" / "keep.txt").exists() and (tmp_path / "readme.txt").exists()
    assert prune_runs(tmp_path, 30, now=now) == [fresh]  # its newest file is 60 s old; mixed wrote 10 s ago
    assert mixed.exists()


def test_prune_runs_of_a_missing_folder_is_empty(tmp_path):
    assert prune_runs(tmp_path / "nothing", 0) == []


def test_release_memory_frees_a_dropped_model_with_its_traced_functions():
    """A traced tf.function's graph is garbage only after its model's cycle is collected: one gc round is not enough."""
    import weakref

    import numpy as np
    from helpers import tiny_functional

    from vizcore.models import predict

    model = tiny_functional(channels=1)
    predict.image_probabilities(model, np.zeros(model.input_shape[1:], np.float32))  # traces the compiled scores
    fn = predict.scorer(model).fn
    traced = [weakref.ref(model.layers[1]), weakref.ref(fn), weakref.ref(fn.get_concrete_function().graph)]
    del model, fn
    profile.release_memory()
    assert [ref() is None for ref in traced] == [True, True, True]
