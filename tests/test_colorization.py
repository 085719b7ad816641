"""Colorization pre-training: Lab conversion, ab quantisation, the luma-tied VGG, the CLI.

Closed-form checks of the colour math; the tied first conv makes RGB and grey features
equal after training; the trunk file loads into the perceptual loss unchanged; a tiny CLI
run writes the weights and a rerun resumes. Generated data only, 32 px images.
"""

import os
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks import LandmarkConfig
from keras_landmarks.losses import perceptual
from keras_landmarks.pretraining.colorization import lab, model as colorization
from keras_landmarks.pretraining.colorization import run as ct
from keras_landmarks.training.summaries import read_summaries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAIN = os.path.join(ROOT, "trainers", "pretrain_colorization.py")
S = 32
DELTA = 6 / 29


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _colour_fields(n=4, seed=0):
    """``[n, S, S, 3]`` float32: smooth random colour fields (bilinear 4x4 -> S)."""
    small = np.random.default_rng(seed).uniform(0, 255, (n, 4, 4, 3)).astype("float32")
    return np.stack([cv2.resize(im, (S, S), interpolation=cv2.INTER_LINEAR) for im in small])


def _srgb_linear(c):
    c = np.asarray(c, np.float64) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


# -- Lab -----------------------------------------------------------------------------------


def test_lab_closed_form_values():
    rgb = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [128, 128, 128], [2, 2, 2]], "float32")
    got = _np(lab.rgb_to_lab(rgb))
    np.testing.assert_allclose(got[0], [100, 0, 0], atol=1e-4)
    np.testing.assert_allclose(got[1], [0, 0, 0], atol=1e-4)
    np.testing.assert_allclose(got[2], [53.24, 80.09, 67.20], atol=0.01)  # sRGB red
    # Greys: X/Xn = Y = Z/Zn = the linearised value, so a = b = 0 and L = 116 f(Y) - 16,
    # cube-root branch for mid grey, linear branch (Y <= (6/29)^3) for a dark grey.
    y = _srgb_linear(128)
    np.testing.assert_allclose(got[3], [116 * y ** (1 / 3) - 16, 0, 0], atol=1e-3)
    y = _srgb_linear(2)
    assert y < DELTA ** 3
    np.testing.assert_allclose(got[4], [116 * (y / (3 * DELTA ** 2) + 4 / 29) - 16, 0, 0], atol=1e-4)


def test_lab_matches_opencv_and_lab_to_rgb_inverts_it():
    rng = np.random.default_rng(0)
    corners = np.array(np.meshgrid(*[[0, 255]] * 3)).reshape(3, -1).T
    rgb = np.concatenate([rng.uniform(0, 255, (2000, 3)), corners]).astype("float32")[:, None, :]
    ours = _np(lab.rgb_to_lab(rgb))
    # OpenCV interpolates tables (and rounds its matrix): agreement to ~0.3 Lab units.
    theirs = cv2.cvtColor(rgb / 255.0, cv2.COLOR_RGB2Lab)
    assert np.abs(ours - theirs).max() < 0.5 and np.abs(ours - theirs).mean() < 0.15
    np.testing.assert_allclose(_np(lab.lab_to_rgb(ours)), rgb, atol=5e-3)
    # Out of gamut is clipped into [0, 255], not NaN.
    out = _np(lab.lab_to_rgb(np.array([[50.0, 120.0, -120.0], [100.0, -100.0, 100.0]], "float32")))
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 255


# -- quantisation --------------------------------------------------------------------------


def test_ab_bins_are_the_grid_cells_srgb_colours_reach():
    bins = lab.ab_bins()
    assert bins.shape == (261, 2) and np.all(bins % 10 == 0)
    cells = {tuple(b) for b in bins.astype(int)}
    assert (0, 0) in cells  # greys
    assert (80, 70) in cells  # red (53.2, 80.1, 67.2)
    assert (80, -110) in cells  # blue (32.3, 79.2, -107.9)
    assert (-90, 80) in cells  # green (87.7, -86.2, 83.2)
    assert (100, -100) not in cells and (-90, -110) not in cells and (0, 100) not in cells
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100
    assert bins[:, 1].min() == -110 and bins[:, 1].max() == 90
    # Every colour's ab rounds to a kept bin.
    rgb = np.random.default_rng(1).uniform(0, 255, (20000, 3)).astype("float64")
    reached = np.round(_np(lab.rgb_to_lab(rgb))[:, 1:] / 10).astype(int) * 10
    assert {tuple(c) for c in reached} <= cells


def test_soft_encoding_closed_form():
    bins = lab.ab_bins()
    index = {tuple(b): i for i, b in enumerate(bins.astype(int))}
    indices, weights = (_np(t) for t in lab.soft_encode(np.array([[[0.0, 0.0], [3.0, -4.0]]], "float32")))
    assert indices.shape == weights.shape == (1, 2, 5)
    # Exactly at a bin: it gets the largest weight, its 4 axis neighbours (d = 10) e^-2 each.
    assert indices[0, 0, 0] == index[(0, 0)]
    assert {tuple(bins[i].astype(int)) for i in indices[0, 0, 1:]} == {(10, 0), (-10, 0), (0, 10), (0, -10)}
    e = np.exp(-100 / (2 * 5.0 ** 2))
    np.testing.assert_allclose(weights[0, 0], [1 / (1 + 4 * e)] + [e / (1 + 4 * e)] * 4, rtol=1e-5)
    # Elsewhere: the 5 nearest bins, Gaussian weights exp(-d^2 / 50) normalised.
    d2 = ((bins - [3.0, -4.0]) ** 2).sum(1)
    nearest = np.argsort(d2)[:5]
    want = np.exp(-d2[nearest] / 50)
    np.testing.assert_array_equal(indices[0, 1], nearest)
    np.testing.assert_allclose(weights[0, 1], want / want.sum(), rtol=1e-4)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)


def test_prior_smoothing_and_rebalancing_weights():
    bins, q = lab.ab_bins(), len(lab.ab_bins())
    centre = int(np.flatnonzero((bins == [0, 0]).all(1))[0])
    right = int(np.flatnonzero((bins == [10, 0]).all(1))[0])
    counts = np.zeros(q)
    counts[centre] = 7
    prior = lab.smooth_prior(counts)
    assert prior.sum() == pytest.approx(1.0) and prior.argmax() == centre
    assert prior[right] / prior[centre] == pytest.approx(np.exp(-100 / 50), rel=1e-9)
    # E_p~[w] = 1; a uniform p~ gives weights 1; rarer bins weigh more.
    p = lab.smooth_prior(np.random.default_rng(0).integers(0, 100, q))
    w = lab.rebalance_weights(p)
    assert np.sum(p * w) == pytest.approx(1.0)
    assert np.all(np.diff(w[np.argsort(p)]) <= 1e-12)
    np.testing.assert_allclose(lab.rebalance_weights(np.full(q, 1 / q)), 1.0, rtol=1e-12)
    # Closed form for lambda = 1/2: w = 1 / (p/2 + 1/(2Q)) normalised.
    raw = 1 / (0.5 * p + 0.5 / q)
    np.testing.assert_allclose(w, raw / np.sum(p * raw), rtol=1e-12)


def test_annealed_mean():
    bins, q = lab.ab_bins(), len(lab.ab_bins())
    logits = np.zeros((3, q), "float32")
    logits[0, 5] = 50.0  # confident: the bin itself
    logits[1, [5, 6]] = 50.0  # two equal bins: their midpoint
    got = _np(lab.annealed_mean(logits))
    np.testing.assert_allclose(got[0], bins[5], atol=1e-3)
    np.testing.assert_allclose(got[1], (bins[5] + bins[6]) / 2, atol=1e-3)
    np.testing.assert_allclose(got[2], bins.mean(0), atol=1e-3)  # uniform: the mean bin
    # T = 1 is the plain expectation; T < 1 sharpens towards the mode.
    logits = np.random.default_rng(0).normal(size=(1, q)).astype("float32")
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose(_np(lab.annealed_mean(logits, temperature=1.0))[0], p @ bins, rtol=1e-4)


def test_measure_prior_counts_nearest_bins():
    red = tf.data.Dataset.from_tensors(tf.fill([3, S, S, 3], 0.0) + [255.0, 0.0, 0.0]).repeat()
    counts, seen = ct.measure_prior(red, num_images=5)
    assert seen == 6 and counts.sum() == 6 * (S // 4) ** 2
    assert tuple(lab.ab_bins()[counts.argmax()].astype(int)) == (80, 70)


# -- the luma-tied network -----------------------------------------------------------------


def test_luma_tied_kernel_is_the_least_squares_projection():
    c = colorization.LumaTiedKernel()
    w = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 3, 8)).astype("float32"))
    p = _np(c(w))
    lam = np.array(colorization.LUMA_BGR)
    v = p[:, :, 0] / lam[0]
    for ch in range(3):
        np.testing.assert_allclose(p[:, :, ch], lam[ch] * v, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(_np(c(p)), p, rtol=1e-5, atol=1e-7)  # idempotent
    # Least squares: the residual is orthogonal to the subspace (sum_c l_c (W_c - P_c) = 0).
    np.testing.assert_allclose(np.einsum("c,hwcf->hwf", lam, _np(w) - p), 0, atol=1e-5)
    assert colorization.LumaTiedKernel.from_config(c.get_config()).channel_weights == c.channel_weights


@pytest.fixture(scope="module")
def trained():
    """A 32 px model trained 4 steps on a fixed batch of 2; losses before and after."""
    keras.utils.set_random_seed(0)
    model = ct.build_model(S, hidden=32, learning_rate=1e-4)
    x = _colour_fields(2)
    model.set_prior(lab.smooth_prior(np.ones(len(model.bins))))
    kernel0 = _np(model.trunk.get_layer("block1_conv1").kernel).copy()
    before = float(model.colorization_loss(x, model(x)))
    model.fit(tf.data.Dataset.from_tensors(x).repeat(), steps_per_epoch=4, epochs=1, verbose=0)
    after = float(model.colorization_loss(x, model(x)))
    return model, x, kernel0, before, after


def test_training_lowers_the_loss_on_a_fixed_batch(trained):
    model, _, _, before, after = trained
    assert int(model.optimizer.iterations.numpy()) == 4
    assert np.isfinite(before) and after < before - 0.1, (before, after)


def test_rgb_and_luma_grey_images_give_the_same_features(trained):
    model, x, kernel0, _, _ = trained
    kernel = _np(model.trunk.get_layer("block1_conv1").kernel)
    assert np.abs(kernel - kernel0).max() > 1e-5  # trained, and still tied:
    lam = np.array(colorization.LUMA_BGR)
    np.testing.assert_allclose(kernel[:, :, 0] / lam[0], kernel[:, :, 2] / lam[2], rtol=1e-4, atol=1e-6)
    grey = np.repeat(_np(lab.luma(x)), 3, axis=-1)
    rgb_f, grey_f, swapped_f = model.features(x), model.features(grey), model.features(x[..., ::-1])
    for name in colorization.TAPS:
        a, b = _np(rgb_f[name]), _np(grey_f[name])
        scale = np.abs(a).max()
        assert scale > 0
        np.testing.assert_allclose(a, b, atol=2e-5 * scale, err_msg=name)
        # Not vacuous: another luma (R and B swapped) gives other features.
        assert np.abs(_np(swapped_f[name]) - a).max() > 1e-3 * scale, name
    pictures = ct.colorization_grid(model, x[:2])
    assert pictures.shape == (2 * S, 3 * S, 3) and pictures.dtype == np.uint8


def test_trunk_file_round_trips_into_the_perceptual_loss(trained, tmp_path):
    model, x, _, _, _ = trained
    path = str(tmp_path / "vgg19_colour.weights.h5")
    colorization.save_trunk(model, path)
    assert os.listdir(tmp_path) == ["vgg19_colour.weights.h5"]  # no temporary file left
    extractor = perceptual.build_feature_extractor(LandmarkConfig(image_size=S, perceptual=f"vgg19:{path}"))
    want, got = model.features(x), extractor(x)
    for name in colorization.TAPS:
        np.testing.assert_allclose(_np(got[name]), _np(want[name]), rtol=1e-6, atol=1e-6, err_msg=name)
    # A plain VGG19 (no preprocessing layer) loads it too.
    plain = keras.applications.VGG19(include_top=False, weights=path, input_shape=(S, S, 3))
    np.testing.assert_array_equal(_np(plain.get_layer("block4_conv2").kernel),
                                  _np(model.trunk.get_layer("block4_conv2").kernel))
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        colorization.save_trunk(model, str(tmp_path / "vgg.h5"))


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_a_wrong_weights_file_gets_one_clear_error(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    with pytest.raises(ValueError, match=r"not a VGG-19 \(include_top=False\) weights file.*"
                                         r"pretrain_colorization"):
        perceptual.build_feature_extractor(LandmarkConfig(image_size=S, perceptual=f"vgg19:{path}"))


# -- the CLI -------------------------------------------------------------------------------


def _popen(args):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, PRETRAIN, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def test_cli_writes_the_weights_resumes_and_rejects_bad_flags(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, im in enumerate(_colour_fields(6, seed=1)):
        cv2.imwrite(str(folder / f"{i}.png"), im.astype(np.uint8))
    logdir, existing = tmp_path / "run", tmp_path / "existing.weights.h5"
    existing.write_bytes(b"not mine")
    small = [f"--image_size={S}", "--batch_size=2", "--prior_images=4", "--summary_every=1",
             "--verbose=2", f"--logdir={logdir}"]
    bad = [
        (["--dataset=imagenet"], "--dataset"),
        (["--dataset=synthetic", "--image_size=48"], "power of two >= 32"),
        (["--dataset=image_folder"], "needs --data_dir"),
        (["--dataset=synthetic", "--output=vgg.h5"], "must end in .weights.h5"),
        (["--dataset=synthetic", "--steps=0"], "must be >= 1"),
        (["--dataset=synthetic", "extra"], "unexpected arguments"),
        (["--dataset=image_folder", f"--data_dir={folder}", f"--logdir={tmp_path / 'other'}",
          f"--output={existing}", f"--image_size={S}"], "holds no run to resume"),
    ]
    run = _popen(["--dataset=image_folder", f"--data_dir={folder}", "--steps=1", "--save_every=1",
                  *small])
    procs = [_popen(args) for args, _ in bad]
    for (args, phrase), proc in zip(bad, procs):
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 2, (args, err)
        assert "Traceback" not in err, err
        lines = [line for line in err.splitlines() if line.startswith("pretrain_colorization.py: error:")]
        assert len(lines) == 1 and phrase in lines[0], (args, err)
    assert existing.read_bytes() == b"not mine"

    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    assert "fresh run" in out and "step 1/1" in out, out
    output = logdir / "vgg19_colorization.weights.h5"
    assert sorted(os.listdir(logdir)) == ["backup", "prior.json", "settings.json", "tensorboard",
                                          output.name]
    events = read_summaries(os.path.join(str(logdir), "tensorboard"))
    assert set(events["loss"]) == {1} and events["learning_rate"][1] == pytest.approx(1e-4)
    width, height, png = events["colorization"][1]
    assert (int(width), int(height)) == (3 * S, 2 * S)
    assert tf.io.decode_png(png).shape == (2 * S, 3 * S, 3)
    before = perceptual.build_feature_extractor(
        LandmarkConfig(image_size=S, perceptual=f"vgg19:{output}")).get_layer("block1_conv1").kernel.numpy()

    again = _popen(["--dataset=image_folder", f"--data_dir={folder}", "--steps=2", "--save_every=1",
                    *small])
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    assert "resuming at step 1" in out and "step 2/2" in out, out
    after = perceptual.build_feature_extractor(
        LandmarkConfig(image_size=S, perceptual=f"vgg19:{output}")).get_layer("block1_conv1").kernel.numpy()
    assert not np.array_equal(before, after)  # the file holds the step-2 weights
