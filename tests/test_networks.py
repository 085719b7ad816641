"""Encoder, detector and renderer: shapes, parameter counts, config checks."""

import keras
import numpy as np
import pytest

from keras_landmarks import LandmarkConfig, build_detector, build_encoder, build_renderer
from keras_landmarks.networks.blocks import encoder_channels


def _conv_params(k, cin, cout, bias=False):
    return k * k * cin * cout + (cout if bias else 0)


def _bn_params(c):
    return 4 * c  # gamma, beta, moving mean, moving variance


def test_official_encoder_shape_and_parameter_count():
    cfg = LandmarkConfig()  # 128x128, width 32
    enc = build_encoder(cfg)
    assert enc.output_shape == (None, 16, 16, 256)
    # conv7x7/32, conv3x3/32, then [3x3 s2, 3x3] at 64, 128, 256 (PAPER.md).
    layers = [(7, 3, 32), (3, 32, 32), (3, 32, 64), (3, 64, 64), (3, 64, 128),
              (3, 128, 128), (3, 128, 256), (3, 256, 256)]
    want = sum(_conv_params(k, i, o) + _bn_params(o) for k, i, o in layers)
    assert enc.count_params() == want


def test_a_stride_two_stem_is_the_half_size_encoder_after_its_first_conv():
    half = build_encoder(LandmarkConfig(image_size=32, width=16, heatmap_size=16))
    stem = build_encoder(LandmarkConfig(image_size=64, width=16, heatmap_size=16, stem_stride=2))
    assert stem.output_shape == half.output_shape == (None, 16, 16, 32)
    assert stem.count_params() == half.count_params()  # the same convs, the first one strided
    assert stem.get_layer("conv0a_conv").strides == (2, 2) and stem.get_layer("conv0a_conv").output.shape[1] == 32
    cfg = LandmarkConfig(image_size=64, width=16, heatmap_size=16, stem_stride=2)
    renderer = build_renderer(cfg)
    assert renderer.output_shape == (None, 64, 64, 3)
    # The half-size image is upsampled bilinearly: a renderer whose last conv draws a
    # constant colour gives that colour at every full-size pixel.
    to_rgb = renderer.get_layer("to_rgb")
    kernel, bias = to_rgb.get_weights() if to_rgb.use_bias else (to_rgb.get_weights()[0], None)
    to_rgb.set_weights([np.zeros_like(kernel), np.full(3, 0.25, np.float32)] if bias is not None
                       else [np.zeros_like(kernel)])
    out = renderer.predict([np.zeros((1, 16, 16, 32), np.float32), np.zeros((1, 16, 16, 10), np.float32)], verbose=0)
    np.testing.assert_allclose(out, 255.0 * (0.25 if bias is not None else 0.0), atol=1e-4)


@pytest.mark.parametrize("normalization,per_conv", [
    ("group", lambda c: 2 * c),  # GroupNorm: gamma, beta
    ("none", lambda c: c),       # the conv's bias instead
])
def test_encoder_parameter_count_per_normalization(normalization, per_conv):
    cfg = LandmarkConfig(image_size=64, width=8, normalization=normalization)
    enc = build_encoder(cfg)
    layers = [(7, 3, 8), (3, 8, 8), (3, 8, 16), (3, 16, 16), (3, 16, 32), (3, 32, 32)]
    assert enc.count_params() == sum(_conv_params(k, i, o) + per_conv(o) for k, i, o in layers)
    kinds = {type(l).__name__ for l in enc.layers}
    assert "BatchNormalization" not in kinds
    assert ("GroupNormalization" in kinds) == (normalization == "group")


@pytest.mark.parametrize("normalization,independent", [("batch", False), ("group", True), ("none", True)])
def test_training_output_depends_on_the_rest_of_the_batch_only_with_batchnorm(normalization, independent):
    """In training mode BatchNorm normalises over the batch, so an example's features change
    with its batch mates; GroupNorm and no normalisation compute each example alone."""
    enc = build_encoder(LandmarkConfig(image_size=32, width=8, normalization=normalization))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    mates = [rng.uniform(0, 255, (3, 32, 32, 3)).astype("float32") for _ in range(2)]
    a, b = (keras.ops.convert_to_numpy(enc(np.concatenate([x, m]), training=True))[0] for m in mates)
    assert np.allclose(a, b, atol=1e-4) == independent
    if independent:  # and equal to the example on its own
        np.testing.assert_allclose(a, keras.ops.convert_to_numpy(enc(x, training=True))[0], atol=1e-4)


@pytest.mark.parametrize("size,channels", [(64, 128), (128, 256)])
def test_detector_and_renderer_shapes(size, channels):
    cfg = LandmarkConfig(image_size=size, num_landmarks=7)
    assert encoder_channels(cfg) == channels
    det = build_detector(cfg)
    img = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    out = det(img)
    assert tuple(out["keypoints"].shape) == (2, 7, 2)
    assert tuple(out["score_maps"].shape) == (2, 16, 16, 7)
    # The points are the soft-argmax of the score maps beside them (numpy, float64): per axis,
    # the mean over the other axis, a softmax, the expectation over linspace(-1, 1).
    kp = keras.ops.convert_to_numpy(out["keypoints"])
    scores = keras.ops.convert_to_numpy(out["score_maps"]).astype(np.float64)
    grid = np.linspace(-1.0, 1.0, 16)
    want = []
    for axis in (1, 2):  # mean over y gives the x profile, over x the y profile
        profile = scores.mean(axis=axis)  # [B, 16, K]
        p = np.exp(profile - profile.max(axis=1, keepdims=True))
        want.append(np.einsum("bik,i->bk", p / p.sum(axis=1, keepdims=True), grid))
    np.testing.assert_allclose(kp, np.stack(want, axis=-1), atol=1e-5)
    assert kp.std() > 1e-4  # the check is not made on all-equal points
    ren = build_renderer(cfg)
    image = ren([np.zeros((2, 16, 16, channels), "float32"), np.zeros((2, 16, 16, 7), "float32")])
    assert tuple(image.shape) == (2, size, size, 3)


def test_renderer_filters_mirror_the_encoder():
    ren = build_renderer(LandmarkConfig())
    convs = [l for l in ren.layers if isinstance(l, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [256, 256, 128, 128, 64, 64, 32, 3]
    assert convs[-1].use_bias and convs[-1].activation is keras.activations.linear


def test_weight_decay_regularises_every_conv_kernel():
    cfg = LandmarkConfig(image_size=32, width=4, weight_decay=1e-2)
    det = build_detector(cfg)
    det(np.zeros((1, 32, 32, 3), "float32"))
    convs = [l for l in det.layers[1].layers if isinstance(l, keras.layers.Conv2D)]
    convs.append(det.get_layer("score_maps"))
    want = sum(1e-2 * np.sum(np.square(c.kernel.numpy())) for c in convs)
    got = float(sum(keras.ops.convert_to_numpy(l) for l in det.losses))
    assert got == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"image_size": 100}, "power of two"),
        ({"image_size": 8}, "power of two"),
        ({"num_landmarks": 0}, "num_landmarks"),
        ({"perceptual": "resnet"}, "perceptual"),
        ({"perceptual": "vgg19:"}, "file path"),
        ({"alpha_init": (1.0, 2.0)}, "alpha_init"),
        ({"normalization": "layer"}, "normalization"),
        ({"stem_stride": 4}, "stem_stride"),
        ({"image_size": 16, "heatmap_size": 16, "stem_stride": 2}, "stem_stride=2"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LandmarkConfig(**kwargs)


def test_config_json_round_trip():
    cfg = LandmarkConfig(image_size=64, num_landmarks=5, perceptual="l2")
    assert LandmarkConfig.from_json(cfg.to_json()) == cfg
