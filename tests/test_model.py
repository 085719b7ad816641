"""LandmarkModel: train/test steps, EMA normalisers, the mask, serialization, precision, XLA.

Backend-neutral (no TensorFlow here): ``tests/test_backends.py`` runs the ``BACKEND_NEUTRAL``
tests again under JAX and PyTorch, in subprocesses without TensorFlow.
"""

import keras
import numpy as np
import pytest

from keras_landmarks import LandmarkConfig, LandmarkModel
from keras_landmarks.losses import perceptual

S = 32
SMALL = LandmarkConfig(
    image_size=S, width=8, num_landmarks=4, heatmap_size=8, perceptual="vgg19_random"
)


def _batch(n=4, seed=0, mask=True):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, S, S, 3)).astype("float32")
    data = {"image": x, "future_image": np.roll(x, 3, axis=2)}
    if mask:
        m = np.ones((n, S, S, 1), "float32")
        m[:, :4] = 0.0
        data["mask"] = m
    return data


def _compiled(cfg=SMALL, lr=1e-3, **compile_kwargs):
    model = LandmarkModel(cfg)
    model.compile(optimizer=keras.optimizers.Adam(lr), **compile_kwargs)
    return model


def _gradient(f, x) -> np.ndarray:
    """``df/dx`` of the scalar ``f(x)`` at the numpy array ``x`` on the running backend (zeros
    where ``f`` does not depend on ``x`` through a differentiable path)."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        t = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = f(t)
        g = tape.gradient(y, t)
    elif backend == "jax":
        import jax  # noqa: PLC0415

        g = jax.grad(f)(jax.numpy.asarray(x))
    else:
        import torch  # noqa: PLC0415

        t = torch.tensor(x, requires_grad=True)
        y = f(t)
        g = torch.autograd.grad(y, t, allow_unused=True)[0] if y.requires_grad else None
        g = None if g is None else g.detach()
    return np.zeros_like(x) if g is None else keras.ops.convert_to_numpy(g)


def _repeated(data: dict, times: int) -> dict:
    """``times`` copies of the batch, for ``fit(..., batch_size=len(batch), shuffle=False)``."""
    return {k: np.concatenate([v] * times) for k, v in data.items()}


def test_call_returns_reconstruction_and_keypoints():
    out = LandmarkModel(SMALL)(_batch(mask=False))
    assert tuple(out["reconstruction"].shape) == (4, S, S, 3)
    assert tuple(out["keypoints"].shape) == (4, 4, 2)
    assert keras.backend.standardize_dtype(out["reconstruction"].dtype) == "float32"


def test_alpha_after_n_steps_is_the_closed_form_ema():
    """With lr = 0 the errors e are the same every step, so alpha_n = r^n a0 + (1 - r^n) e."""
    model = _compiled(lr=0.0)
    data = _batch()
    # Independent numpy computation of this batch's per-layer errors (training-mode BN).
    out = model(data, training=True)
    ft = perceptual.features(model.perceptual_loss.feature_extractor, data["future_image"])
    fp = perceptual.features(model.perceptual_loss.feature_extractor, out["reconstruction"])
    e = []
    for name in model.loss_layers:
        t, p = keras.ops.convert_to_numpy(ft[name]), keras.ops.convert_to_numpy(fp[name])
        f = S // t.shape[1]
        m = data["mask"].reshape(4, t.shape[1], f, t.shape[1], f, 1).mean(axis=(2, 4))
        e.append((m * (t - p) ** 2).mean())
    e = np.array(e)
    a0, rho, n = np.array(SMALL.alpha_init), SMALL.alpha_decay, 7
    for _ in range(n):
        logs = model.train_on_batch(data, return_dict=True)
    want = rho**n * a0 + (1 - rho**n) * e
    np.testing.assert_allclose(model.alpha.numpy(), want, rtol=1e-4)
    # The logged loss is 1000 * sum(e / alpha) with the updated alpha.
    assert logs["loss"] == pytest.approx(1000 * np.sum(e / want), rel=1e-4)


def test_a_zero_alpha_init_is_seeded_by_the_first_batch():
    """alpha_init 0: the first training batch's errors e are alpha (each term then logs
    loss_scale), and with lr = 0 (e constant) alpha stays e: the EMA of a constant. Before any
    training step the batch's own errors divide."""
    model = _compiled(SMALL.replace(alpha_init=(0.0,) * 6), lr=0.0)
    data = _batch()
    logs = model.test_on_batch(data, return_dict=True)
    assert logs["loss"] == pytest.approx(1000 * 6, rel=1e-5)
    np.testing.assert_array_equal(model.alpha.numpy(), np.zeros(6))
    logs = model.train_on_batch(data, return_dict=True)
    assert logs["loss"] == pytest.approx(1000 * 6, rel=1e-5)
    first = model.alpha.numpy().copy()
    assert np.all(first > 0)
    for _ in range(3):
        model.train_on_batch(data)
    np.testing.assert_allclose(model.alpha.numpy(), first, rtol=1e-5)


def test_alpha_is_frozen_outside_training():
    model = _compiled()
    before = model.alpha.numpy().copy()
    model.test_on_batch(_batch(), return_dict=True)
    model.predict(_batch(), verbose=0)
    np.testing.assert_array_equal(model.alpha.numpy(), before)
    assert model.alpha.trainable is False


def test_pixel_l2_loss_is_1000_times_masked_mse_and_has_no_ema():
    model = _compiled(LandmarkConfig(image_size=S, width=8, num_landmarks=4, heatmap_size=8,
                                     perceptual="l2"), lr=0.0)
    data = _batch()
    out = model(data, training=True)
    diff = (data["future_image"] - keras.ops.convert_to_numpy(out["reconstruction"])) ** 2
    want = 1000 * np.mean(data["mask"] * diff)
    logs = model.train_on_batch(data, return_dict=True)
    assert logs["loss"] == pytest.approx(want, rel=1e-4)
    np.testing.assert_array_equal(model.alpha.numpy(), [1.0])


def _trainable(model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]


@pytest.mark.parametrize("loss", ["vgg19_random", "l2"])
def test_a_fully_masked_batch_has_zero_gradient(loss):
    """Mask 0 everywhere (no weight decay): every error is 0, so is every gradient; Adam moves nothing
    (m = v = 0 gives a zero step exactly); alpha still takes its EMA step (toward 0)."""
    model = _compiled(SMALL.replace(perceptual=loss, weight_decay=0.0))  # no L2 term either
    data = _batch()
    data["mask"][:] = 0.0
    before = _trainable(model)
    logs = model.train_on_batch(data, return_dict=True)
    assert logs["loss"] == 0.0
    for a, b in zip(before, _trainable(model)):
        np.testing.assert_array_equal(a, b)
    want = SMALL.alpha_decay * np.array(SMALL.alpha_init) if loss != "l2" else [1.0]  # rho a0 + (1 - rho) 0
    np.testing.assert_allclose(model.alpha.numpy(), want, rtol=1e-6)


def test_keras_round_trip_keeps_outputs_and_alpha(tmp_path):
    model = _compiled()
    data = _batch()
    model.fit(_repeated(data, 3), batch_size=4, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.alpha.numpy(), model.alpha.numpy())
    assert not np.allclose(model.alpha.numpy(), SMALL.alpha_init)  # it did move
    a, b = model(data), loaded(data)
    for key in ("reconstruction", "keypoints"):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a[key]),
                                      keras.ops.convert_to_numpy(b[key]))
    assert loaded.config == model.config
    # The optimizer state comes back too, so training can resume.
    assert int(loaded.optimizer.iterations.numpy()) == 3


def test_loss_falls_on_a_fixed_batch():
    # 3 epochs of 15 steps: epochs 2 and 3 averaged 0.24x and 0.18x epoch 1 (JAX, 2026-12-07).
    model = _compiled(lr=3e-3)
    data = _batch(mask=False)
    history = model.fit(_repeated(data, 15), batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert history[-1] < 0.5 * history[0], history


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_float32_loss_and_alpha(policy):
    """From the same weights, steps under the policy log float32's losses and alpha to the policy's
    precision (bfloat16: two steps, the second after an update; float16: the first, as its
    dynamic loss scale, 2^15 at first, overflows and skips updates until it fits), and the
    outputs stay float32."""
    data = _batch()
    reference = _compiled()
    reference(data)
    start = reference.get_weights()

    def two_steps(model):
        first = model.train_on_batch(data, return_dict=True)["loss"]
        alpha = keras.ops.convert_to_numpy(model.alpha).copy()
        return [first, model.train_on_batch(data, return_dict=True)["loss"]], alpha

    want, want_alpha = two_steps(reference)
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = _compiled()
        if policy == "mixed_float16":  # Keras wraps the optimizer for loss scaling.
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        model(data)
        model.set_weights(start)
        got, got_alpha = two_steps(model)
        steps = 2 if policy == "mixed_bfloat16" else 1
        np.testing.assert_allclose(got[:steps], want[:steps], rtol=1e-2)
        assert model.alpha.dtype == "float32"
        np.testing.assert_allclose(got_alpha, want_alpha, rtol=1e-2)
        out = model(_batch())
        assert out["reconstruction"].dtype == "float32" and out["keypoints"].dtype == "float32"
        # The bottleneck stays float32: the Gaussian maps of float32 points are float32 and
        # equal the closed form exp(-d^2 / sigma^2) at float32 precision (bf16 would be ~1e-2 off).
        assert model.gaussian_maps.compute_dtype == "float32"
        points = out["keypoints"]
        maps = keras.ops.convert_to_numpy(model.gaussian_maps(points))
        assert maps.dtype == np.float32
        grid = np.linspace(-1.0, 1.0, model.config.heatmap_size)
        p = keras.ops.convert_to_numpy(points).astype(np.float64)
        want = np.exp(-((grid[None, None, :, None] - p[:, :, 0].reshape(len(p), 1, 1, -1)) ** 2
                        + (grid[None, :, None, None] - p[:, :, 1].reshape(len(p), 1, 1, -1)) ** 2)
                      / model.config.gaussian_sigma**2)
        np.testing.assert_allclose(maps, want, atol=1e-5)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.skipif(keras.config.backend() == "torch", reason="jit_compile is torch.compile there: not this test")
def test_jit_compile_matches_eager_step():
    data = _batch()
    eager, jit = _compiled(run_eagerly=True), _compiled(jit_compile=True)
    jit.set_weights(eager.get_weights())
    a = eager.train_on_batch(data, return_dict=True)
    b = jit.train_on_batch(data, return_dict=True)
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)
    np.testing.assert_allclose(jit.alpha.numpy(), eager.alpha.numpy(), rtol=1e-5)


def test_generate_and_transfer_are_the_forward_pass_in_inference_mode():
    model = _compiled()
    data = _batch()
    out = model(data, training=False)
    transferred = keras.ops.convert_to_numpy(model.transfer(data["image"], data["future_image"]))
    np.testing.assert_allclose(transferred, keras.ops.convert_to_numpy(out["reconstruction"]), atol=1e-4)
    generated = keras.ops.convert_to_numpy(model.generate(data["image"], out["keypoints"]))
    np.testing.assert_allclose(generated, transferred, atol=1e-4)
    # Other keypoints give another image: the renderer reads the points.
    moved = keras.ops.convert_to_numpy(model.generate(data["image"], keras.ops.flip(out["keypoints"], axis=-1)))
    assert np.abs(moved - generated).max() > 1e-3


def test_the_model_owns_the_clipping_and_refuses_another():
    """compile() makes a plain optimizer clip at config.clipnorm where Keras' own step runs (JAX,
    PyTorch; TensorFlow's train_step clips itself), keeps one that clips at that bound, and
    refuses any other clipping (tests/backend_checks.py checks the step itself on each backend)."""
    model = LandmarkModel(SMALL)
    model.compile(optimizer=keras.optimizers.Adam())
    assert model.optimizer.clipnorm == (None if keras.config.backend() == "tensorflow" else SMALL.clipnorm)
    model.compile(optimizer=keras.optimizers.Adam(clipnorm=SMALL.clipnorm))
    for other in ({"clipnorm": 5.0}, {"global_clipnorm": 1.0}, {"clipvalue": 1.0}):
        with pytest.raises(ValueError, match="config.clipnorm=1.0 itself"):
            model.compile(optimizer=keras.optimizers.Adam(**other))


def test_the_target_s_features_are_off_the_tape():
    """The training loss has no gradient with respect to the target x' through its VGG features
    (they are computed from ``stop_gradient(x')``, on every backend), while the reconstruction
    gets one: with the reconstruction held fixed, x' reaches the loss only through them."""
    model = _compiled(SMALL.replace(weight_decay=0.0))  # model.losses reads every weight: not in a bare scope
    data = _batch()
    reconstruction = keras.ops.convert_to_numpy(model(data, training=True)["reconstruction"])

    def loss(target=data["future_image"], predicted=reconstruction):
        with keras.StatelessScope():  # alpha's and the trackers' updates are dropped
            return model.compute_loss(x={**data, "future_image": target}, y_pred={"reconstruction": predicted},
                                      training=True)

    assert not np.any(_gradient(lambda t: loss(target=t), data["future_image"]))
    assert np.abs(_gradient(lambda p: loss(predicted=p), reconstruction)).max() > 0


def test_the_loss_gradient_reaches_every_detector_weight():
    """The keypoints are the detector's only way into the loss (through the Gaussian maps):
    one SGD step without weight decay moves every detector weight, except the score conv's
    bias, which soft-argmax cancels (a constant added to a score map moves no point)."""
    model = LandmarkModel(SMALL.replace(weight_decay=0.0))
    model.compile(optimizer=keras.optimizers.SGD(1e-2))
    data = _batch()
    model(data)
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.detector.trainable_weights}
    model.train_on_batch(data)
    moved = {v.path: np.abs(keras.ops.convert_to_numpy(v) - before[v.path]).max()
             for v in model.detector.trainable_weights}
    bias = model.detector.get_layer("score_maps").bias.path
    assert len(moved) > 10 and all(d > 0 for p, d in moved.items() if p != bias), moved
    assert moved[bias] < 0.05 * min(d for p, d in moved.items() if p != bias), moved  # rounding only


def test_alpha_is_a_constant_of_the_gradient():
    """alpha gets no gradient (training and inference), and the loss's gradient is
    ``loss_scale / B * sum_l grad(sum_b e_l[b]) / alpha_l`` with the updated alpha held fixed
    (the official code's extra term through the batch's share of alpha would differ by
    about ``(1 - rho) e_l / alpha_l``, tens of % at the official initial alpha)."""
    model = _compiled()
    data = _batch()
    layer = model.perceptual_loss
    reconstruction = keras.ops.convert_to_numpy(model(data, training=True)["reconstruction"])

    def loss(predicted=reconstruction, alpha=None, training=True):
        mapping = [] if alpha is None else [(layer.alpha, alpha)]
        with keras.StatelessScope(state_mapping=mapping):  # alpha's update is dropped
            return layer(data["future_image"], predicted, data["mask"], training=training)

    alpha0 = keras.ops.convert_to_numpy(layer.alpha)
    for training in (True, False):
        assert not np.any(_gradient(lambda a, t=training: loss(alpha=a, training=t)["loss"], alpha0))
    used = keras.ops.convert_to_numpy(loss()["alpha"])
    want = 0.0
    for i in range(len(layer.terms)):
        def error_sum(p, i=i):
            errors = perceptual.per_example_errors(
                perceptual.features(layer.feature_extractor, data["future_image"]),
                perceptual.features(layer.feature_extractor, p), data["mask"], layer.terms)
            return keras.ops.sum(errors[i])
        want = want + SMALL.loss_scale / len(reconstruction) * _gradient(error_sum, reconstruction) / used[i]
    got = _gradient(lambda p: loss(predicted=p)["loss"], reconstruction)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6 * np.abs(want).max())


# The tests tests/test_backends.py runs under JAX and PyTorch too.
BACKEND_NEUTRAL = ("test_call_returns_reconstruction_and_keypoints", "test_alpha_after_n_steps_is_the_closed_form_ema",
                   "test_alpha_is_frozen_outside_training", "test_pixel_l2_loss_is_1000_times_masked_mse_and_has_no_ema",
                   "test_a_fully_masked_batch_has_zero_gradient",
                   "test_keras_round_trip_keeps_outputs_and_alpha", "test_loss_falls_on_a_fixed_batch",
                   "test_the_target_s_features_are_off_the_tape", "test_the_model_owns_the_clipping_and_refuses_another",
                   "test_the_loss_gradient_reaches_every_detector_weight",
                   "test_alpha_is_a_constant_of_the_gradient", "test_a_zero_alpha_init_is_seeded_by_the_first_batch")
