"""Checkpoints as transactions (keras_landmarks.training.checkpoint): a save interrupted at
any point between two of its file writes leaves a complete generation, restore uses the
newest complete one (falling back, with one warning, over a corrupt one), model.keras
follows it, and a second process cannot train from a locked backup folder."""

import logging
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks import LandmarkConfig, training
from keras_landmarks.training import checkpoint
from keras_landmarks.training.callbacks import ResumableCheckpoint
from keras_landmarks.training.checkpoint import CheckpointStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S = 32
CFG = LandmarkConfig(image_size=S, width=4, num_landmarks=4, heatmap_size=8, batch_size=2, perceptual="l2",
                     learning_rate=1e-2)
# With a VGG loss alpha moves with every step (pixel L2 keeps it at 1), so a generation that
# mixed two saves would show; it costs ~4x (the frozen VGG-19 is in every model.keras).
VGG = CFG.replace(perceptual="vgg19_random")


class _Killed(BaseException):
    """What the fault hook raises: the save stops there, as a kill would stop it."""


def _batch():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (2, S, S, 3)).astype("float32")
    return {"image": image, "future_image": image[::-1].copy()}


def _state(model) -> list[np.ndarray]:
    """Every variable a resume must bring back: weights (alpha, BatchNorm statistics
    included) and the optimizer's (step counter, Adam moments)."""
    return [keras.ops.convert_to_numpy(v).copy() for v in (*model.weights, *model.optimizer.variables)]


class _Snapshots(keras.callbacks.Callback):
    """The model's state at each epoch end, taken just before the checkpoint saves it."""

    def __init__(self):
        super().__init__()
        self.at: dict[int, list] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.at[training.current_step(self.model)] = _state(self.model)


def _train(logdir, epochs, fault=None, cfg=CFG):
    """``epochs`` epochs of one step, a save after each; ``fault``: the point of the last
    save where it is interrupted. Returns the snapshots by step."""
    model = training.build_model(cfg)
    ckpt = ResumableCheckpoint(str(logdir), str(logdir / "backup"))
    snaps = _Snapshots()
    data = tf.data.Dataset.from_tensors(_batch()).repeat()
    start = ckpt.restore(model)
    saves = [0]

    def hook(name):
        if name == "weights_written":
            saves[0] += 1
        if fault and name == fault and saves[0] == epochs - start:
            raise _Killed(name)

    checkpoint.set_fault_hook(hook)
    try:
        model.fit(data, epochs=epochs, initial_epoch=start, steps_per_epoch=1, callbacks=[snaps, ckpt],
                  verbose=0)
    except _Killed:
        pass
    finally:
        checkpoint.set_fault_hook(None)
        ckpt.release()
    return snaps.at


def _restored(logdir, cfg=CFG):
    model = training.build_model(cfg)
    ckpt = ResumableCheckpoint(str(logdir), str(logdir / "backup"))
    step = ckpt.restore(model)
    ckpt.release()
    return step, model


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _write(content: bytes):
    def write(path):
        with open(path, "wb") as f:
            f.write(content)
    return write


@pytest.mark.parametrize("fault", checkpoint.FAULT_POINTS)
def test_every_interrupted_save_leaves_the_newest_complete_generation(tmp_path, fault):
    """The store alone, at every point between two file writes of a save (no TensorFlow)."""
    store, model_path = CheckpointStore(str(tmp_path / "backup")), str(tmp_path / "model.keras")
    files = {step: {checkpoint.WEIGHTS: b"w%d" % step * 1000, checkpoint.MODEL: b"m%d" % step * 999} for step in (1, 2)}
    checkpoint.publish(store.save(1, 1, {k: _write(v) for k, v in files[1].items()}), model_path)

    def hook(name):
        if name == fault:
            raise _Killed(name)

    checkpoint.set_fault_hook(hook)
    try:
        with pytest.raises(_Killed):
            checkpoint.publish(store.save(2, 2, {k: _write(v) for k, v in files[2].items()}), model_path)
    finally:
        checkpoint.set_fault_hook(None)
    expected = 2 if checkpoint.FAULT_POINTS.index(fault) >= checkpoint.FAULT_POINTS.index("switched") else 1
    folder, manifest = store.latest()
    assert manifest["step"] == expected == manifest["epoch"]
    for name, content in files[expected].items():
        assert open(os.path.join(folder, name), "rb").read() == content
    assert open(model_path, "rb").read() == files[expected if fault == "published" else 1][checkpoint.MODEL]
    checkpoint.publish(folder, model_path)  # what a restore does
    assert open(model_path, "rb").read() == files[expected][checkpoint.MODEL]
    store.remove_stale()
    assert sorted(os.listdir(store.backup_dir)) == sorted(f"gen-{s:010d}" for s in range(1, expected + 1))


@pytest.mark.parametrize("fault,cfg", [("weights_written", CFG), ("manifest_written", VGG)],
                         ids=["weights_written", "manifest_written-vgg"])
def test_a_save_interrupted_anywhere_leaves_a_complete_consistent_generation(tmp_path, fault, cfg):
    snaps = _train(tmp_path, epochs=2, fault=fault, cfg=cfg)  # saves at steps 1 and 2; the second is cut
    assert set(snaps) == {1, 2}
    assert sum(not np.array_equal(a, b) for a, b in zip(snaps[1], snaps[2])) > 10  # the two saves differ
    switched = checkpoint.FAULT_POINTS.index(fault) >= checkpoint.FAULT_POINTS.index("switched")
    expected = 2 if switched else 1
    step, model = _restored(tmp_path, cfg)
    assert step == expected
    _assert_same(_state(model), snaps[expected])  # weights, alpha, BN statistics, optimizer: one step
    alpha = [i for i, w in enumerate(model.weights) if w is model.alpha][0]
    if cfg.perceptual != "l2":
        assert not np.array_equal(snaps[1][alpha], snaps[2][alpha])  # alpha did move between the saves
    # model.keras is the restored generation's (republished if the cut fell before the publish).
    published = keras.models.load_model(str(tmp_path / "model.keras"))
    _assert_same([keras.ops.convert_to_numpy(w) for w in published.weights], snaps[expected][:len(published.weights)])
    assert not [n for n in os.listdir(tmp_path / "backup") if n.startswith(".gen-")]  # leftovers removed
    # Training on continues from there and keeps the previous generation until the next is complete.
    more = _train(tmp_path, epochs=3, cfg=cfg)
    assert set(more) == set(range(expected + 1, 4))
    assert [s for s, _ in CheckpointStore(str(tmp_path / "backup")).generations()] == [3, 2]


def test_a_corrupt_newest_generation_falls_back_with_one_warning(tmp_path, caplog):
    snaps = _train(tmp_path, epochs=2)
    store = CheckpointStore(str(tmp_path / "backup"))
    newest = store.generations()[0][1]
    with open(os.path.join(newest, checkpoint.WEIGHTS), "r+b") as f:
        f.seek(100)
        f.write(b"\0" * 64)  # flipped bytes: same size, other content
    caplog.set_level(logging.WARNING, logger="keras_landmarks.training")
    step, model = _restored(tmp_path)
    assert step == 1
    _assert_same(_state(model), snaps[1])
    warnings = [r.getMessage() for r in caplog.records if "corrupt checkpoint" in r.getMessage()]
    assert len(warnings) == 1 and newest in warnings[0] and "differs from its manifest" in warnings[0]
    os.remove(os.path.join(store.generations()[1][1], checkpoint.MANIFEST))  # both unusable: a fresh start
    assert _restored(tmp_path)[0] == 0


def test_a_second_process_cannot_train_from_a_locked_backup_folder(tmp_path):
    lock = checkpoint.RunLock(str(tmp_path / "backup"))
    try:
        code = ("import sys; from keras_landmarks.training import checkpoint\n"
                "try:\n    checkpoint.RunLock(sys.argv[1])\nexcept RuntimeError as e:\n    print(e); sys.exit(3)")
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "backup")], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 3 and f"pid {os.getpid()}" in proc.stdout and "another --logdir" in proc.stdout
    finally:
        lock.release()
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "backup")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # free again


def test_sigkill_between_the_switch_and_the_publish_resumes_and_republishes(tmp_path):
    """A real kill (SIGKILL from the fault point) of the CLI at its second save."""
    args = [sys.executable, os.path.join(ROOT, "trainers", "train.py"), "--dataset=synthetic", "--steps=4",
            "--save_every=2", f"--logdir={tmp_path}", f"--image_size={S}", "--width=4", "--heatmap_size=8",
            "--num_landmarks=4", "--batch_size=2", "--perceptual=l2", "--verbose=2"]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(CUDA_VISIBLE_DEVICES="", **{checkpoint.FAULT_ENV: "switched@2"})
    killed = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    store = CheckpointStore(str(tmp_path / "backup"))
    assert [s for s, _ in store.generations()] == [4, 2]
    stale = keras.models.load_model(str(tmp_path / "model.keras"))
    assert int(stale.optimizer.iterations.numpy()) == 2  # cut before the publish of step 4
    env.pop(checkpoint.FAULT_ENV)
    rerun = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming at step 4" in rerun.stdout and "Nothing to do" in rerun.stdout
    assert int(keras.models.load_model(str(tmp_path / "model.keras")).optimizer.iterations.numpy()) == 4


def test_temporary_files_of_killed_processes_are_removed_on_the_next_run(tmp_path):
    from keras_landmarks._internal.stale import remove_stale
    from keras_landmarks.export.serving import atomic_path

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # a pid whose process has exited
    alive = str(os.getppid())
    for name in (f".gen-0000000004.tmp-{dead}", f".det.tmp-{dead}-x1", f"model.keras.tmp-{dead}"):
        (tmp_path / name).mkdir() if name.startswith(".") else (tmp_path / name).write_bytes(b"half")
    (tmp_path / f"model.keras.tmp-{alive}").write_bytes(b"another process, still writing")
    assert remove_stale(str(tmp_path), r"model\.keras\.tmp-(\d+)") == [f"model.keras.tmp-{dead}"]
    CheckpointStore(str(tmp_path)).remove_stale()
    with atomic_path(str(tmp_path / "det")) as tmp:
        os.makedirs(tmp)
    assert sorted(os.listdir(tmp_path)) == ["det", f"model.keras.tmp-{alive}"]
