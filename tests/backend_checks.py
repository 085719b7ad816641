"""Checks that ``tests/test_backends.py`` runs in a subprocess under JAX or PyTorch with
TensorFlow hidden (``conftest.py``); not collected by the TensorFlow suite (not ``test_*``).

* the NumPy data path trains a run with ``training.train`` (resume included) and writes its
  ``model.keras`` plus the detector's keypoints on fixed images to
  ``$KERAS_LANDMARKS_TEST_OUT`` for the parent to load and export under TensorFlow;
* JAX ``keras.distribution.DataParallel`` over two host CPUs makes the update one device
  makes on the same global batch;
* one step compiled with a plain optimizer (no ``clipnorm``) makes TensorFlow's update: the
  model clips at ``config.clipnorm`` on every backend (the parent writes TensorFlow's step,
  ``sgd_step``, to ``$KERAS_LANDMARKS_TEST_OUT/tf_step.npz``).
"""

import os
import sys

import cv2
import keras
import numpy as np
import pytest

from keras_landmarks import LandmarkConfig, LandmarkModel, training

SMALL = LandmarkConfig(image_size=32, width=8, num_landmarks=4, heatmap_size=8, perceptual="vgg19_random",
                       batch_size=4)


STEP_LR = 0.05  # SGD: the update is -lr times the (clipped) gradient, so it shows the clipping


def step_batch() -> dict:
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    mask = np.ones((4, 32, 32, 1), "float32")
    mask[:, :, :3] = 0.0
    return {"image": x, "future_image": np.roll(x, 2, axis=1), "mask": mask}


def sgd_step(batch: dict, start: list | None = None) -> tuple[list, list, list, int]:
    """One ``train_on_batch`` of ``SMALL`` with the pixel loss (the clipping is the loss's business
    alone; no 60 MB of VGG to pass around) compiled with a plain ``keras.optimizers.SGD(STEP_LR)``
    (no ``clipnorm``) from ``start`` (default: a fresh model's weights): ``(weights before,
    weights after, indices of the trainable ones, index of the score conv's bias)``,
    ``model.get_weights()`` order. That bias's gradient is 0 up to rounding (soft-argmax
    ignores a constant added to a score map), so its step is rounding noise."""
    model = LandmarkModel(SMALL.replace(perceptual="l2"))
    model.compile(optimizer=keras.optimizers.SGD(STEP_LR))
    model(batch)
    if start is not None:
        model.set_weights(start)
    before = model.get_weights()
    model.train_on_batch(batch)
    trainable = {id(v) for v in model.trainable_weights}
    bias = [i for i, v in enumerate(model.weights) if v is model.detector.get_layer("score_maps").bias]
    return before, model.get_weights(), [i for i, v in enumerate(model.weights) if id(v) in trainable], bias[0]


def _folder(path, count=10, size=40, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    for i in range(count):
        cv2.imwrite(os.path.join(path, f"{i:02d}.png"), rng.integers(0, 255, (size, size + 8, 3), np.uint8))
    with open(os.path.join(path, "broken.jpg"), "wb") as f:
        f.write(b"\xff\xd8 not a jpeg")
    return str(path)


def test_tensorflow_is_hidden():
    import keras_landmarks.data as data

    assert "tensorflow" not in sys.modules and not data.has_tensorflow()
    with pytest.raises(ImportError):
        import tensorflow  # noqa: F401
    assert keras.config.backend() in ("jax", "torch")


def test_numpy_pipeline_trains_resumes_and_saves(tmp_path):
    folder, logdir = _folder(tmp_path / "faces"), str(tmp_path / "run")
    model = training.train(SMALL, dataset="image_folder", data_dir=folder, steps=4, save_every=2,
                           logdir=logdir, verbose=0)
    assert training.current_step(model) == 4
    model = training.train(SMALL, dataset="image_folder", data_dir=folder, steps=6, save_every=2,
                           logdir=logdir, verbose=0)
    assert training.current_step(model) == 6  # resumed at 4, not restarted
    assert model.jit_compile is (keras.config.backend() == "jax")  # "auto": XLA on JAX only
    assert np.all(np.isfinite(model.alpha.numpy())) and not np.allclose(model.alpha.numpy(), SMALL.alpha_init)
    out = os.environ.get("KERAS_LANDMARKS_TEST_OUT")
    if out:
        images = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
        keypoints = keras.ops.convert_to_numpy(model.detector(images)["keypoints"])
        np.savez(os.path.join(out, "keypoints.npz"), images=images, keypoints=keypoints)
        os.replace(os.path.join(logdir, training.MODEL_FILE), os.path.join(out, "model.keras"))


@pytest.mark.skipif(keras.config.backend() != "jax", reason="keras.distribution.DataParallel: JAX")
def test_jax_data_parallel_equals_one_device():
    import jax

    devices = jax.devices("cpu")
    assert len(devices) == 2, "run with XLA_FLAGS=--xla_force_host_platform_device_count=2"
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    mask = np.ones((4, 32, 32, 1), "float32")
    mask[:, :5] = 0.0
    batch = {"image": x, "future_image": np.roll(x, 3, axis=2), "mask": mask}
    one = training.build_model(SMALL)
    start = one.get_weights()
    logs_one = [one.train_on_batch(batch, return_dict=True)["loss"] for _ in range(2)]
    parallel = keras.distribution.DataParallel(devices=[f"cpu:{d.id}" for d in devices])
    with parallel.scope():
        two = training.build_model(SMALL)
        two.set_weights(start)
        logs_two = [two.train_on_batch(batch, return_dict=True)["loss"] for _ in range(2)]
        sharding = two.trainable_weights[0].value.sharding
    assert len(sharding.device_set) == 2  # the weights live on both devices (replicated)
    np.testing.assert_allclose(logs_two, logs_one, rtol=1e-5)
    np.testing.assert_allclose(two.alpha.numpy(), one.alpha.numpy(), rtol=1e-5)
    # Weights to Adam's resolution: soft-argmax ignores a constant added to a score map, so
    # the score conv's bias has a zero gradient up to rounding, which Adam (dividing by
    # sqrt(v)) turns into steps of +-lr in either direction: up to 4 lr apart after 2 steps.
    # The losses and alpha above, which the second step's weights produce, agree to 1e-5.
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=4 * SMALL.learning_rate)


def test_a_plain_optimizer_step_is_clipped_and_is_tensorflow_s_step():
    """Compiled with ``SGD`` without ``clipnorm``, each variable still moves by at most
    ``lr * config.clipnorm`` (the model clips; several variables hit the bound), and the
    whole step (weights and BatchNorm statistics; alpha is 1 and frozen under the pixel loss
    ``sgd_step`` uses) is TensorFlow's on the same batch."""
    path = os.path.join(os.environ.get("KERAS_LANDMARKS_TEST_OUT", ""), "tf_step.npz")
    if not os.path.isfile(path):
        pytest.skip("tests/test_backends.py writes TensorFlow's step for this check")
    ref = np.load(path)
    count = int(ref["count"])
    start, tf_after = [ref[f"start_{i}"] for i in range(count)], [ref[f"after_{i}"] for i in range(count)]
    before, after, trainable, bias = sgd_step({k: ref[k] for k in ("image", "future_image", "mask")}, start)
    assert trainable == list(ref["trainable"]) and bias == int(ref["bias"])
    norms = np.array([np.linalg.norm(after[i] - before[i]) for i in trainable])
    bound = STEP_LR * SMALL.clipnorm
    assert norms.max() <= bound * (1 + 1e-4) and np.sum(norms > 0.99 * bound) >= 3, norms
    for i, (a, b, want) in enumerate(zip(after, before, tf_after)):
        if i == bias:  # rounding noise, within the bound (above)
            continue
        if i in trainable:  # the update, to 0.1 % of the bound
            np.testing.assert_allclose(a - b, want - b, rtol=1e-3, atol=1e-3 * bound, err_msg=f"weight {i}")
        else:  # BatchNorm's moving statistics (up to ~1e4 here: their updates are float32-quantised)
            np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-6, err_msg=f"weight {i}")


def test_the_tensorflow_only_parts_say_what_to_install(tmp_path):
    from keras_landmarks import build_detector, data
    from keras_landmarks.export.exporter import export_all

    with pytest.raises(ValueError, match=r"needs TensorFlow: pip install 'keras-landmarks\[tensorflow\]'"):
        data.training_pairs("video", data_dir=str(tmp_path), image_size=32, batch_size=2, seed=0)
    with pytest.raises(ImportError, match=r"export needs TensorFlow .*keras-landmarks\[tensorflow\]"):
        export_all(build_detector(SMALL), str(tmp_path / "out"), ["onnx"], ["none"])
    assert not os.path.exists(tmp_path / "out")
