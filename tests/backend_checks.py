"""Checks that ``tests/test_backends.py`` runs in a subprocess under JAX or PyTorch with
TensorFlow hidden (``conftest.py``); not collected by the TensorFlow suite (not ``test_*``).

* the NumPy data path trains a run with ``training.train`` (resume included) and writes its
  ``model.keras`` plus the detector's keypoints on fixed images to
  ``$KERAS_LANDMARKS_TEST_OUT`` for the parent to load and export under TensorFlow;
* JAX ``keras.distribution.DataParallel`` over two host CPUs makes the update one device
  makes on the same global batch.
"""

import os
import sys

import cv2
import keras
import numpy as np
import pytest

from keras_landmarks import LandmarkConfig, training

SMALL = LandmarkConfig(image_size=32, width=8, num_landmarks=4, heatmap_size=8, perceptual="vgg19_random",
                       batch_size=4)


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


def test_the_tensorflow_only_parts_say_what_to_install(tmp_path):
    from keras_landmarks import build_detector, data
    from keras_landmarks.export.exporter import export_all

    with pytest.raises(ValueError, match=r"needs TensorFlow: pip install 'keras-landmarks\[tensorflow\]'"):
        data.training_pairs("video", data_dir=str(tmp_path), image_size=32, batch_size=2, seed=0)
    with pytest.raises(ImportError, match=r"export needs TensorFlow .*keras-landmarks\[tensorflow\]"):
        export_all(build_detector(SMALL), str(tmp_path / "out"), ["onnx"], ["none"])
    assert not os.path.exists(tmp_path / "out")
