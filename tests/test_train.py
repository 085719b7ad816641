"""Training library and CLI: resume after kill -9, multi-worker, NaN guard, flags, summaries.

Subprocess runs use ``--dataset=image_folder`` on a few random PNGs (its pipeline builds
in about a second; the synthetic faces take longer to trace) and ``--perceptual=l2``.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import cv2
import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks import LandmarkConfig, data, training
from keras_landmarks.training.callbacks import ResumableCheckpoint
from keras_landmarks.training.checkpoint import CheckpointStore
from keras_landmarks.training.rundir import format_seconds
from keras_landmarks.training.summaries import draw_keypoints, read_summaries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "trainers", "train.py")
S = 32
CFG = LandmarkConfig(image_size=S, width=4, num_landmarks=4, heatmap_size=8, batch_size=4,
                     perceptual="l2")
SMALL_FLAGS = [f"--image_size={S}", "--width=4", "--heatmap_size=8", "--num_landmarks=4",
               "--batch_size=4", "--perceptual=l2", "--summary_every=2"]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", no_proxy="127.0.0.1,localhost",
               PYTHONUNBUFFERED="1", **extra)
    return env


def _latest_weights(backup_dir):
    folder, manifest = CheckpointStore(backup_dir).latest()
    return os.path.join(folder, manifest["weights"])


def _popen(args, **extra_env):
    return subprocess.Popen([sys.executable, TRAIN, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env(**extra_env))


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (40, 44, 3), np.uint8))
    return str(folder)


def _h5_arrays(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


# -- resume --------------------------------------------------------------------------------


def test_killed_run_resumes_at_the_saved_step_with_its_state(tmp_path, images):
    logdir = str(tmp_path / "run")
    flagfile = tmp_path / "run.flags"  # the same command twice, through absl's --flagfile
    flagfile.write_text("\n".join(["--dataset=image_folder", f"--data_dir={images}", "--steps=40",
                                   "--save_every=4", f"--logdir={logdir}", *SMALL_FLAGS]))
    args = [f"--flagfile={flagfile}", "--verbose=2"]
    store = CheckpointStore(os.path.join(logdir, "backup"))
    first = _popen(args)
    deadline = time.monotonic() + 240
    while not store.generations() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    _, first_err = first.communicate()
    found = store.latest()
    assert found is not None, first_err[-3000:]
    saved_step = found[1]["step"]
    assert 0 < saved_step < 40, f"not killed mid-run (step {saved_step}); cannot test resume"
    saved = str(tmp_path / "saved.weights.h5")
    shutil.copy(os.path.join(found[0], found[1]["weights"]), saved)
    assert _h5_arrays(saved)["optimizer/vars/0"] == saved_step  # the iteration counter

    second = _popen(args)  # the same command again; replay the remaining steps meanwhile
    try:
        _check_resumed(second, logdir, images, saved, saved_step)
    finally:
        second.kill()


def _check_resumed(second, logdir, images, saved, saved_step):

    # Replay, in this process: Keras loads the killed run's checkpoint into a fresh model
    # and trains the remaining steps on the stream the resumed run reads. Identical results
    # mean the resumed run restored the same step, optimizer moments, alpha and BN state.
    cfg = training.load_config(logdir)
    replay = training.build_model(cfg)
    replay.load_weights(saved)
    assert int(replay.optimizer.iterations.numpy()) == saved_step
    pairs = data.training_pairs("image_folder", data_dir=images, image_size=S, batch_size=4,
                                seed=training.data_seed(cfg.seed, saved_step),
                                target_warp=cfg.target_warp, source_warp=cfg.source_warp)
    replay.fit(pairs, steps_per_epoch=40 - saved_step, epochs=1, shuffle=False, verbose=0)

    out, err = second.communicate(timeout=240)
    assert second.returncode == 0, err[-3000:]
    assert f"resuming at step {saved_step}" in out, out
    for native in ("I0000", "E0000", "oneDNN", "cuInit", "absl::InitializeLog"):  # a quiet start
        assert native not in out + err, (native, err[-3000:])
    assert "step 40/40" in out
    final = keras.models.load_model(os.path.join(logdir, "model.keras"))
    assert int(final.optimizer.iterations.numpy()) == 40
    for a, b in zip(replay.weights, final.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=f"{a.path}, resumed at step {saved_step}")
    for a, b in zip(replay.optimizer.variables, final.optimizer.variables):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-8,
                                   err_msg=f"{a.path}, resumed at step {saved_step}")
    # Not vacuous: the resumed steps moved the weights away from the saved ones.
    loaded = training.build_model(cfg)
    loaded.load_weights(saved)
    assert not np.allclose(loaded.trainable_weights[0].numpy(), final.trainable_weights[0].numpy())


# -- multi-worker --------------------------------------------------------------------------


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_train_in_step_and_only_the_chief_writes(tmp_path, images):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    logdirs = [str(tmp_path / f"worker{i}") for i in range(2)]
    procs = [
        _popen(["--dataset=image_folder", f"--data_dir={images}", "--steps=4", "--save_every=2",
                "--strategy=multi_worker", f"--logdir={logdirs[i]}", *SMALL_FLAGS],
               TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "2 replica(s)" in outs[0][0]
    chief, other = logdirs
    assert sorted(os.listdir(chief)) == ["backup", "config.json", "model.keras", "tensorboard"]
    assert os.listdir(other) == ["backup"]  # its resume state only
    a = _h5_arrays(_latest_weights(os.path.join(chief, "backup")))
    b = _h5_arrays(_latest_weights(os.path.join(other, "backup", "worker_1")))
    assert a.keys() == b.keys() and a["optimizer/vars/0"] == 4
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    model = keras.models.load_model(os.path.join(chief, "model.keras"))
    assert int(model.optimizer.iterations.numpy()) == 4


def _two_workers(tmp_path, images, steps):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = [
        _popen(["--dataset=image_folder", f"--data_dir={images}", f"--steps={steps}", "--save_every=2",
                "--strategy=multi_worker", f"--logdir={tmp_path / f'worker{i}'}", "--verbose=2", *SMALL_FLAGS],
               TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
        return [(p.returncode, *out) for p, out in zip(procs, outs)]
    finally:
        for p in procs:
            p.kill()


def test_workers_whose_checkpoints_differ_resume_from_a_common_one_or_stop_naming_them(tmp_path, images):
    backups = [str(tmp_path / "worker0" / "backup"), str(tmp_path / "worker1" / "backup" / "worker_1")]
    stores = [CheckpointStore(b) for b in backups]
    assert all(rc == 0 for rc, _, _ in _two_workers(tmp_path, images, steps=4))
    assert [[s for s, _ in st.generations()] for st in stores] == [[4, 2], [4, 2]]
    shutil.rmtree(stores[1].generations()[0][1])  # worker 1 killed inside its step-4 save
    runs = _two_workers(tmp_path, images, steps=6)
    for rc, out, err in runs:
        assert rc == 0, err[-3000:]
    assert "resuming at step 2" in runs[0][1], runs[0][1][-2000:]  # the chief reports for both
    a, b = (_h5_arrays(_latest_weights(x)) for x in backups)
    assert a["optimizer/vars/0"] == b["optimizer/vars/0"] == 6
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # No common generation: chief holds 6 (not 4), worker 1 only 4. Both stop, naming the steps.
    shutil.rmtree(stores[0].latest(4)[0])
    shutil.rmtree(stores[1].latest(6)[0])
    for rc, out, err in _two_workers(tmp_path, images, steps=8):
        assert rc == 2, (out + err)[-3000:]
        assert "worker 0: newest step 6, no step 4; worker 1: newest step 4" in err, err[-2000:]


# -- NaN guard -----------------------------------------------------------------------------


def _random_pairs(nan_from=None):
    """``(batch_size, seed) -> Dataset`` of random pairs; batch ``i >= nan_from`` is NaN."""
    def make(batch_size, seed):
        def pair(i):
            x = tf.random.stateless_uniform([batch_size, S, S, 3], tf.stack([seed, i]), 0, 255)
            if nan_from is not None:
                x = tf.where(i >= nan_from, float("nan"), x)
            return {"image": x, "future_image": tf.roll(x, 2, axis=1),
                    "mask": tf.ones([batch_size, S, S, 1])}
        return tf.data.Dataset.range(1 << 40).map(pair)
    return make


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_model(tmp_path):
    logdir = str(tmp_path / "run")
    with pytest.raises(FloatingPointError, match=r"became nan at step 8\b"):
        training.train(CFG, dataset=_random_pairs(nan_from=7), steps=20, logdir=logdir,
                       save_every=3, verbose=0)
    model = keras.models.load_model(os.path.join(logdir, "model.keras"))
    assert int(model.optimizer.iterations.numpy()) == 6
    assert all(np.all(np.isfinite(w.numpy())) for w in model.weights)
    assert CheckpointStore(os.path.join(logdir, "backup")).latest()[1]["step"] == 6


def test_non_finite_weights_are_never_saved(tmp_path):
    model = training.build_model(CFG)
    ckpt = ResumableCheckpoint(str(tmp_path), str(tmp_path / "backup"))
    ckpt.set_model(model)
    ckpt.on_epoch_end(0)
    assert os.path.exists(tmp_path / "model.keras")
    before = _h5_arrays(_latest_weights(str(tmp_path / "backup")))
    kernel = model.trainable_weights[0]
    kernel.assign(np.full(kernel.shape, np.inf, "float32"))
    with pytest.raises(FloatingPointError, match="non-finite weights after step 0"):
        ckpt.on_epoch_end(1)
    after = _h5_arrays(_latest_weights(str(tmp_path / "backup")))
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    assert all(np.all(np.isfinite(w.numpy()))
               for w in keras.models.load_model(str(tmp_path / "model.keras")).weights)


# -- config, summaries, rerun --------------------------------------------------------------


def test_config_json_summaries_and_rerun(tmp_path):
    # Frozen weights (a config refuses lr 0; Adam moves each weight by ~lr = 1e-30, below float32's
    # resolution of any weight that is not 0): per-step losses are computable.
    cfg = CFG.replace(learning_rate=1e-30)
    rng = np.random.default_rng(1)
    batches = []
    for _ in range(4):
        x = rng.uniform(0, 255, (4, S, S, 3)).astype("float32")
        mask = np.ones((4, S, S, 1), "float32")
        mask[:, :, : rng.integers(1, 8)] = 0.0
        batches.append({"image": x, "future_image": np.roll(x, 3, axis=2), "mask": mask})

    def cycle(batch_size, seed):
        stacked = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
        return tf.data.Dataset.from_tensor_slices(stacked).repeat()

    logdir = str(tmp_path / "run")
    model = training.train(cfg, dataset=cycle, steps=4, logdir=logdir, save_every=4,
                           summary_every=2, image_every=4, verbose=0)
    # The label-free diagnostics of the final model on the fixed summary batch (frozen: unchanged;
    # computed now, before the training=True calls below move the BatchNorm statistics).
    from keras_landmarks.evaluation import diagnostics

    sample = {k: v for k, v in next(iter(cycle(batch_size=4, seed=cfg.seed).take(1))).items()
              if k in ("image", "future_image", "mask")}
    expected = diagnostics.diagnose(model, sample, seed=(4, 1))
    assert training.load_config(logdir) == cfg
    with open(os.path.join(logdir, "config.json")) as f:
        run = json.load(f)["run"]
    assert run["steps"] == 4 and run["save_every"] == 4 and run["dataset"] == "cycle"

    # Each scalar is the mean loss of the steps since the previous one: 1000 * masked MSE.
    losses = []
    for b in batches:
        recon = keras.ops.convert_to_numpy(model(b, training=True)["reconstruction"])
        losses.append(1000 * np.mean(b["mask"] * (b["future_image"] - recon) ** 2))
    events = read_summaries(os.path.join(logdir, "tensorboard"))
    np.testing.assert_allclose(events["loss/total"][2], np.mean(losses[:2]), rtol=1e-4)
    np.testing.assert_allclose(events["loss/total"][4], np.mean(losses[2:]), rtol=1e-4)
    np.testing.assert_allclose(events["loss/input"][4], np.mean(losses[2:]), rtol=1e-4)
    assert events["alpha/input"][4] == 1.0 and events["learning_rate"][4] == np.float32(cfg.learning_rate)
    got = {key: float(events[f"diagnostics/{key}"][4]) for key in ("equivariance_px", "collapsed", "at_border", "reliance",
                                                                    "consistency_ratio", "shape_ratio", "patch_gain")}
    for key in got:
        assert set(events[f"diagnostics/{key}"]) == {2, 4}
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-6)
    assert float(events["diagnostics/verdict"][4]) == {"learning": 1.0, "unclear": 0.5}.get(expected["verdict"], 0.0)
    width, height, png = events["pairs"][4]
    image = tf.io.decode_png(png).numpy()
    assert (int(width), int(height)) == (4 * S, 4 * S) and image.shape == (4 * S, 4 * S, 3)
    np.testing.assert_array_equal(image[:S, :S], np.rint(batches[0]["image"][0]).astype(np.uint8))

    # Rerunning the finished command trains nothing; other settings are refused.
    again = training.train(cfg, dataset=cycle, steps=4, logdir=logdir, save_every=4, verbose=0)
    assert int(again.optimizer.iterations.numpy()) == 4
    with pytest.raises(training.TrainingSetupError, match=r"width: 4 -> 8"):
        training.train(cfg.replace(width=8), dataset=cycle, steps=4, logdir=logdir, verbose=0)


def test_time_budget_stops_saves_and_the_same_call_continues(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, (4, S, S, 3)).astype("float32")
    batch = {"image": x, "future_image": np.roll(x, 2, axis=1), "mask": np.ones((4, S, S, 1), "float32")}

    def repeat(batch_size, seed):
        return tf.data.Dataset.from_tensors(batch).repeat()

    logdir = str(tmp_path / "run")
    # A budget shorter than one step: the first batch spends it; the epoch (save_every=10)
    # ends there and the model and the backup are written at step 1.
    model = training.train(CFG, dataset=repeat, steps=10, logdir=logdir, save_every=10,
                           max_minutes=1e-9, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 1
    assert CheckpointStore(os.path.join(logdir, "backup")).latest()[1]["step"] == 1
    saved = keras.saving.load_model(os.path.join(logdir, "model.keras"))
    for a, b in zip(saved.weights, model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    # The same call continues from step 1; without a budget it runs to the end.
    assert int(training.train(CFG, dataset=repeat, steps=10, logdir=logdir, save_every=10,
                              max_minutes=1e-9, verbose=0).optimizer.iterations.numpy()) == 2
    assert int(training.train(CFG, dataset=repeat, steps=5, logdir=logdir, save_every=10,
                              verbose=0).optimizer.iterations.numpy()) == 5
    with pytest.raises(training.TrainingSetupError, match="max_minutes must be positive"):
        training.train(CFG, dataset=repeat, steps=5, logdir=logdir, max_minutes=0, verbose=0)


def _fixed_batches(seed=3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (4, S, S, 3)).astype("float32")
    batch = {"image": x, "future_image": np.roll(x, 2, axis=1), "mask": np.ones((4, S, S, 1), "float32")}
    return lambda batch_size, seed: tf.data.Dataset.from_tensors(batch).repeat()


def test_weight_ema_is_the_moving_average_of_the_raw_weights_step_by_step():
    m = 0.8
    model = training.build_model(CFG.replace(weight_ema=m))
    raw = []  # the trainable weights after each step
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: raw.append(
        [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]))
    model.fit(_fixed_batches()(4, 0), steps_per_epoch=5, epochs=1, callbacks=[record], verbose=0)
    average = raw[0]  # numpy reference: the first step's weights, then a = m a + (1 - m) w
    for weights in raw[1:]:
        average = [m * a + (1 - m) * w for a, w in zip(average, weights)]
    # Keras puts the average into the model at the end of fit.
    for got, want in zip(model.trainable_variables, average):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=1e-5, atol=1e-7)
    assert not np.allclose(average[0], raw[-1][0])  # not vacuous: the average lags the weights


def test_with_weight_ema_model_keras_holds_the_average_and_the_resume_state_the_raw_weights(tmp_path):
    cfg, logdir = CFG.replace(weight_ema=0.5), str(tmp_path / "run")
    model = training.train(cfg, dataset=_fixed_batches(), steps=6, logdir=logdir, save_every=3, verbose=0)
    published = keras.saving.load_model(os.path.join(logdir, "model.keras"))
    resumable = training.build_model(cfg)
    resumable.load_weights(_latest_weights(os.path.join(logdir, "backup")))
    assert int(resumable.optimizer.iterations.numpy()) == 6
    raw = [keras.ops.convert_to_numpy(v) for v in resumable.trainable_variables]
    with training.averaged_weights(resumable):
        for a, b in zip(published.trainable_variables, resumable.trainable_variables):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-7)
    for a, b in zip(resumable.trainable_variables, raw):  # back to the raw weights on exit
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), b)
    assert not np.allclose(keras.ops.convert_to_numpy(published.trainable_variables[0]), raw[0])
    for a, b in zip(published.trainable_variables, model.trainable_variables):  # train() returns it too
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-7)
    with pytest.raises(ValueError, match="weight_ema must be in"):
        CFG.replace(weight_ema=1.0)


def test_with_weight_ema_the_diagnostics_describe_the_average_not_the_raw_weights(tmp_path):
    from keras_landmarks.evaluation import diagnostics

    cfg, logdir = CFG.replace(weight_ema=0.5, learning_rate=0.05), str(tmp_path / "run")
    model = training.train(cfg, dataset=_fixed_batches(), steps=4, logdir=logdir, save_every=4,
                           summary_every=4, image_every=4, verbose=0)  # returns the average
    sample = next(iter(_fixed_batches()(4, 0)))  # the fixed batch the summaries diagnose
    raw = training.build_model(cfg)
    raw.load_weights(_latest_weights(os.path.join(logdir, "backup")))
    want, other = (diagnostics.diagnose(m, sample, seed=(4, 1)) for m in (model, raw))
    events = read_summaries(os.path.join(logdir, "tensorboard"))
    keys = ("equivariance_px", "mean_spread_px", "reliance", "consistency_ratio", "shape_ratio")
    for key in keys:
        np.testing.assert_allclose(float(events[f"diagnostics/{key}"][4]), want[key], rtol=1e-4, atol=1e-6)
    assert any(abs(want[k] - other[k]) > 1e-2 * (abs(want[k]) + 1e-3) for k in keys)  # they differ


# -- command-line errors -------------------------------------------------------------------


def test_bad_flags_exit_with_one_clear_message(tmp_path, images):
    empty = tmp_path / "empty"
    empty.mkdir()
    logdir = f"--logdir={tmp_path / 'run'}"
    cases = [
        (["--dataset=imagenet"], "--dataset"),
        (["--dataset=synthetic", "--image_size=100"], "power of two"),
        (["--dataset=image_folder"], "needs --data_dir"),
        (["--dataset=synthetic", "--perceptual=vgg19:/no/such.h5"], "no such weights file"),
        # CelebA absent: what to download and where (the default ImageNet VGG is not even
        # looked for: the data is checked first).
        (["--dataset=celeb_a", f"--data_dir={empty}", logdir], "downloads/manual"),
        # ImageNet weights neither cached nor downloadable (a dead proxy makes this
        # machine offline whatever the network).
        (["--dataset=image_folder", f"--data_dir={images}", logdir, *SMALL_FLAGS[:5],
          "--perceptual=vgg19_imagenet"], "--perceptual=vgg19_random"),
    ]
    offline = {"KERAS_HOME": str(tmp_path / "keras"), "HTTPS_PROXY": "http://127.0.0.1:9",
               "HTTP_PROXY": "http://127.0.0.1:9"}
    procs = [_popen(args, **offline) for args, _ in cases]
    for (args, phrase), proc in zip(cases, procs):
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 2, (args, err)
        assert "Traceback" not in err, err
        assert err.count(phrase) == 1, (args, err)
        errors = [line for line in err.splitlines() if line.startswith("train.py: error:")]
        assert len(errors) == 1, err
    assert not os.path.exists(tmp_path / "run" / "model.keras")


@pytest.mark.parametrize("shown", [False, True])
def test_tensorflow_start_up_lines_are_hidden_unless_asked_for(shown):
    # TensorFlow 2.21 prints these from C++ before TF_CPP_MIN_LOG_LEVEL applies.
    code = "from keras_landmarks.cli import _flags; _flags.import_tensorflow(); print('imported')"
    env = _env(**({"KERAS_LANDMARKS_TF_LOGS": "1"} if shown else {}))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "imported", proc.stderr
    assert ("oneDNN" in proc.stderr or "absl::InitializeLog" in proc.stderr) == shown, proc.stderr


def test_cli_help_lists_every_flag_and_the_library_s_choices():
    # --help (not only --helpfull) shows the shared run flags; the strategy and precision
    # lists are repeated in the CLI to keep TensorFlow out of flag parsing.
    proc = subprocess.run([sys.executable, TRAIN, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    for flag in ("max_minutes", "save_every", "summary_every", "image_every", "verbose", "tf_logs",
                 "dataset", "config.perceptual", "strategy", "jit_compile"):
        assert re.search(rf"^  --(\[no\])?{flag}:", out, re.M), flag
    assert f"<{'|'.join(data.TRAINING_SOURCES)}>" in out
    assert f"<{'|'.join(training.STRATEGIES)}>" in out
    assert f"<{'|'.join(training.PRECISIONS)}>" in out


# -- small pieces --------------------------------------------------------------------------


def test_jit_compile_auto_is_xla_on_jax_only_and_explicit_values_pass_through():
    on_jax = keras.config.backend() == "jax"
    assert training.resolve_jit_compile("auto") is on_jax and training.resolve_jit_compile(None) is on_jax
    assert training.resolve_jit_compile(True) is True and training.resolve_jit_compile(False) is False
    with pytest.raises(ValueError, match="'off'"):
        training.resolve_jit_compile("off")
    model = training.build_model(CFG)  # the default is "auto"
    assert model.jit_compile is on_jax


def test_optimizer_schedule_is_the_staircase_closed_form():
    cfg = CFG.replace(learning_rate=2e-3, lr_decay_rate=0.5, lr_decay_steps=3)
    opt = training.make_optimizer(cfg)
    opt.build([keras.Variable(np.zeros(2, "float32"))])
    for step in (0, 2, 3, 7, 9):
        opt.iterations.assign(step)
        assert float(opt.learning_rate) == pytest.approx(2e-3 * 0.5 ** (step // 3), rel=1e-6)
    assert opt.clipnorm is None and opt.global_clipnorm is None


def test_strategy_names(monkeypatch):
    assert training.make_strategy("auto") is tf.distribute.get_strategy()  # no GPUs here
    with pytest.raises(ValueError, match="unknown strategy 'gpu'"):
        training.make_strategy("gpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        training.make_strategy("multi_worker")


def test_data_seed_keeps_fresh_runs_and_separates_segments():
    assert training.data_seed(7, 0) == 7
    seeds = {training.data_seed(7, s, p) for s in (0, 1000, 2000) for p in (0, 1)}
    assert len(seeds) == 6 and all(0 <= s < 2**31 for s in seeds)


def test_draw_keypoints_puts_each_dot_at_its_pixel():
    images = np.zeros((1, 33, 33, 3), np.uint8)
    # Normalised (x, y) -> pixels (x + 1) / 2 * 32: (-1, -1) -> (0, 0), (0.5, -0.25) -> (24, 12).
    out = draw_keypoints(images, np.array([[[-1.0, -1.0], [0.5, -0.25]]], "float32"))
    assert out[0, 0, 0].max() > 200 and out[0, 12, 24].max() > 200
    assert out[0, 12, 24].tolist() != out[0, 0, 0].tolist()  # one colour per landmark
    assert out[0, 20, 5].max() == 0 and images.max() == 0  # elsewhere untouched, input kept


def test_format_seconds():
    assert format_seconds(3725.2) == "1:02:05"
    assert format_seconds(2 * 86400 + 3 * 3600) == "2d 03:00:00"


def test_progress_with_a_time_budget_reports_the_nearer_limit(monkeypatch):
    import io
    import types

    from keras_landmarks.training import callbacks as train_callbacks

    clock = [1000.0]
    monkeypatch.setattr(train_callbacks.time, "monotonic", lambda: clock[0])
    step = keras.Variable(0, dtype="int64")
    model = types.SimpleNamespace(optimizer=types.SimpleNamespace(iterations=step))
    out = io.StringIO()
    bar = train_callbacks.Progress(1000, stream=out, tty=False, max_seconds=100.0)
    bar.set_model(model)
    bar.on_train_begin()
    step.assign(1); clock[0] += 5.0; bar.on_train_batch_end(0)     # traces: not timed
    step.assign(11); clock[0] += 65.0; bar.on_train_batch_end(1)   # 10 steps in 65 s, 70 s used
    last = out.getvalue().splitlines()[-1]
    # Steps alone: 989 steps at 0.154/s = 1:47:08 left; the budget has 30 s left: it wins.
    assert "step   11/1000" in last and " 70% " in last and "0.15 step/s" in last
    assert "ETA 0:00:30" in last
    bar.max_seconds = None  # without a budget: the step count's ETA and fraction
    step.assign(21); clock[0] += 65.0; bar.on_train_batch_end(2)
    last = out.getvalue().splitlines()[-1]
    assert "  2% " in last and f"ETA {format_seconds(979 / (20 / 130))}" in last
