"""Toy-face renderer: sampling, landmark placement on the rendered parts, pose geometry.

Pixel checks use *difference images*: the same face rendered twice with one part's colour
changed shows exactly where that part is, independently of how the renderer draws it.
The datasets are tested in ``test_synthetic_data.py``.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks.data import synthetic, toy_faces

S = 96  # big enough that the smallest parts cover a few pixels


def _identity(n, seed=0, **overrides):
    """Sampled identities; ``plain=True`` style overrides give a flat, symmetric scene."""
    ident = {k: v.numpy() for k, v in synthetic.sample_identity([seed, 7], n).items()}
    for k, v in overrides.items():
        ident[k] = np.broadcast_to(np.asarray(v, np.float32), ident[k].shape).copy()
    return ident


def _plain_identity(n, seed=0, **overrides):
    """No lighting, hair, brows or background texture; mirror-symmetric faces."""
    flat = dict(light_strength=0.0, has_hair=0.0, has_brows=0.0, hair_tilt=0.0,
                has_stripes=0.0, blob_alpha=0.0, clutter_present=0.0)
    ident = _identity(n, seed, **{**flat, **overrides})
    ident["bg_rgb2"] = ident["bg_rgb"].copy()
    return ident


def _pose(n, seed=0, **overrides):
    pose = {k: v.numpy() for k, v in synthetic.sample_pose([seed, 8], n).items()}
    for k, v in overrides.items():
        pose[k] = np.broadcast_to(np.asarray(v, np.float32), pose[k].shape).copy()
    return pose


def _render(ident, pose, size=S):
    img, lm = synthetic.render_faces(ident, pose, size, jit_compile=False)
    return img.numpy().astype(np.float64), lm.numpy().astype(np.float64)


def _bilinear(img, x, y):
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    top = (1 - fx) * img[y0, x0] + fx * img[y0, x0 + 1]
    bottom = (1 - fx) * img[y0 + 1, x0] + fx * img[y0 + 1, x0 + 1]
    return (1 - fy) * top + fy * bottom


def _face_to_pixel(pose, i, x, y, size=S):
    """Face-frame (x, y) -> pixel (x, y): q = t + s R(theta) p, then (q + 1) / 2 (S - 1)."""
    c, s = np.cos(pose["rotation"][i]), np.sin(pose["rotation"][i])
    q = pose["translation"][i] + pose["scale"][i] * np.array([c * x - s * y, s * x + c * y])
    return (q + 1.0) / 2.0 * (size - 1)


def _centroid(weights):
    ys, xs = np.mgrid[: weights.shape[0], : weights.shape[1]]
    return np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()


def test_sampling_is_stateless_per_example_and_in_range():
    a = synthetic.sample_identity([3, 1], 8)
    b = synthetic.sample_identity([3, 1], 3, offset=5)  # examples 5..7 alone
    c = synthetic.sample_identity([4, 1], 8)
    for k in a:
        np.testing.assert_array_equal(a[k].numpy()[5:], b[k].numpy())
    assert not np.allclose(a["head_rx"], c["head_rx"])
    ident, pose = synthetic.sample_identity([0, 0], 64), synthetic.sample_pose([0, 0], 64)
    for params, ranges, flags in ((ident, toy_faces.IDENTITY_RANGES, toy_faces.IDENTITY_FLAGS),
                                  (pose, toy_faces.POSE_RANGES, toy_faces.POSE_FLAGS)):
        for name, (size, lo, hi) in ranges.items():
            v = params[name].numpy()
            assert v.shape == ((64,) if size == 1 else (64, size)) and v.dtype == np.float32
            lo = max(lo, 0.0) if name == "mouth_open" else lo  # clipped at 0
            assert v.min() >= lo and v.max() <= hi and v.std() > 0, name
        for name in flags:
            assert set(np.unique(params[name].numpy())) == {0.0, 1.0}, name


def test_render_shapes_ranges_and_determinism():
    ident, pose = _identity(6), _pose(6)
    img, lm = synthetic.render_faces(ident, pose, 32, jit_compile=False)
    assert img.shape == (6, 32, 32, 3) and img.dtype == tf.float32
    assert lm.shape == (6, 5, 2) and lm.dtype == tf.float32
    img, lm = img.numpy(), lm.numpy()
    assert img.min() >= 0.0 and img.max() <= 255.0 and np.isfinite(img).all()
    assert lm.min() > 2.0 and lm.max() < 29.0  # the parts stay well inside the frame
    # Image left/right: eyes and mouth corners are ordered in x at these small rotations.
    assert (lm[:, 0, 0] < lm[:, 1, 0]).all() and (lm[:, 3, 0] < lm[:, 4, 0]).all()
    again, _ = _render(ident, pose, 32)
    np.testing.assert_array_equal(img, again.astype(np.float32))
    other, _ = _render(_identity(6, seed=1), pose, 32)
    assert np.abs(other - img).mean() > 10.0


def test_eye_landmarks_are_iris_and_pupil_centres():
    n = 8
    big = dict(eye_rx=0.26, eye_aspect=0.75, iris_frac=0.9, pupil_frac=0.55)
    a = _plain_identity(n, iris_rgb=(230.0, 40.0, 40.0), **big)
    b = {**a, "iris_rgb": np.tile(np.float32([40.0, 230.0, 40.0]), (n, 1))}
    pose = _pose(n)
    img_a, lm = _render(a, pose)
    img_b, lm_b = _render(b, pose)
    np.testing.assert_array_equal(lm, lm_b)
    iris = np.abs(img_a - img_b).sum(-1)  # the iris ring, minus the pupil
    ys, xs = np.mgrid[:S, :S]
    skin = (np.float32(toy_faces.SKIN_DARK) + a["skin_tone"][:, None]
            * (np.float32(toy_faces.SKIN_LIGHT) - np.float32(toy_faces.SKIN_DARK)))
    skin = np.clip(skin + a["skin_jitter"], 0, 255)
    for i in range(n):
        ry = a["head_rx"][i] * a["head_aspect"][i]
        forehead = _face_to_pixel(pose, i, 0.0, -0.55 * ry)
        np.testing.assert_allclose(_bilinear(img_a[i], *forehead), skin[i], atol=1.0)
        for eye in (0, 1):
            x, y = lm[i, eye]
            near_this = (np.hypot(xs - x, ys - y) < np.hypot(xs - lm[i, 1 - eye, 0],
                                                            ys - lm[i, 1 - eye, 1]))
            np.testing.assert_allclose(_centroid(iris[i] * near_this), (x, y), atol=0.1)
            pupil = _bilinear(img_a[i], x, y)
            np.testing.assert_allclose(pupil, toy_faces.PUPIL_RGB, atol=12.0)
            assert np.abs(pupil - skin[i]).max() > 40.0


def test_nose_landmark_is_the_nose_tip_centre():
    n = 8
    a = _plain_identity(n, nose_shade=0.55)
    b = {**a, "nose_shade": np.full(n, 0.8, np.float32)}
    pose = _pose(n)
    (img_a, lm), (img_b, _) = _render(a, pose), _render(b, pose)
    tip = np.abs(img_a - img_b).sum(-1)  # the nose tip
    ys, xs = np.mgrid[:S, :S]
    for i in range(n):
        x, y = lm[i, 2]
        assert _bilinear(tip[i], x, y) > 0.9 * tip[i].max()  # inside the tip
        np.testing.assert_allclose(_centroid(tip[i] * (np.hypot(xs - x, ys - y) < 12)),
                                   (x, y), atol=0.1)


def _centre_line_at_end(cov, point, outward, across):
    """Across-offset from ``point`` of the lips' centre line, extrapolated to the end.

    Samples the coverage on lines across the lips 1-3 px inside the end, takes each
    profile's centroid and extrapolates a quadratic fit to 0 px (equal lips only).
    """
    depths, taus = np.linspace(1.0, 3.0, 5), np.linspace(-4.0, 4.0, 81)
    centres = []
    for d in depths:
        w = np.array([_bilinear(cov, *(point - d * outward + t * across)) for t in taus])
        centres.append((w * taus).sum() / w.sum())
    return np.polyval(np.polyfit(depths, centres, 2), 0.0)


@pytest.mark.parametrize("expression", [dict(mouth_open=0.0), dict(mouth_open=0.0, smile=1.0),
                                        dict(mouth_open=1.0)])
def test_mouth_corners_are_the_ends_of_the_lips(expression):
    n = 8
    a = _plain_identity(n, lip_mix=1.0, lip_upper=0.08, lip_lower=0.08)
    b = {**a, "lip_mix": np.zeros(n, np.float32)}  # lips the colour of the skin
    pose = _pose(n, **expression)
    (img_a, lm), (img_b, _) = _render(a, pose), _render(b, pose)
    lips = np.abs(img_a - img_b).sum(-1)
    lips /= lips.max(axis=(1, 2), keepdims=True)  # ~ lip coverage
    ys, xs = np.mgrid[:S, :S]
    for i in range(n):
        c, s = np.cos(pose["rotation"][i]), np.sin(pose["rotation"][i])
        along = (xs * c + ys * s)[lips[i] > 0.25]  # coordinate along the face x axis
        for corner, end, sign in ((3, along.min(), -1.0), (4, along.max(), 1.0)):
            point, out = lm[i, corner], sign * np.array([c, s])
            assert abs(point @ (c, s) - end) < 0.75
            assert 0.15 < _bilinear(lips[i], *point) < 0.85  # on the lips' outline
            assert _bilinear(lips[i], *(point + 2.0 * out)) < 0.05  # nothing beyond
            if expression["mouth_open"] == 0.0:  # closed equal lips meet at the corner
                assert abs(_centre_line_at_end(lips[i], point, out, np.array([-s, c]))) < 0.3


def test_similarity_pose_moves_landmarks_in_closed_form():
    ident, pose = _identity(6), _pose(6)
    _, lm = _render(ident, pose, 64)
    phi, k = np.radians(35.0), 0.8
    moved = {**pose, "rotation": pose["rotation"] + phi, "scale": pose["scale"] * k,
             "translation": pose["translation"] + np.float32([0.1, -0.05])}
    _, lm2 = _render(ident, moved, 64)
    centre = (pose["translation"][:, None, :] + 1.0) / 2.0 * 63
    rot = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
    expected = centre + k * (lm - centre) @ rot.T + np.array([0.1, -0.05]) / 2.0 * 63
    np.testing.assert_allclose(lm2, expected, atol=1e-3)


def test_quarter_turn_rotates_the_image():
    ident = _plain_identity(4)
    pose = _pose(4, translation=0.0)
    img, lm = _render(ident, pose, 48)
    turned = {**pose, "rotation": pose["rotation"] + np.float32(np.pi / 2)}
    img2, lm2 = _render(ident, turned, 48)
    # +90 degrees turns the face clockwise on screen (y points down): (x, y) -> (c - y', x').
    np.testing.assert_allclose(img2, np.rot90(img, k=-1, axes=(1, 2)), atol=0.05)
    c = 47 / 2.0
    np.testing.assert_allclose(lm2, np.stack([2 * c - lm[..., 1], lm[..., 0]], -1), atol=1e-3)


def test_pixel_translation_shifts_the_image():
    ident, pose = _plain_identity(4), _pose(4)
    img, lm = _render(ident, pose, 48)
    shift = np.float32([3, -2])  # pixels
    moved = {**pose, "translation": pose["translation"] + shift * 2.0 / 47}
    img2, lm2 = _render(ident, moved, 48)
    np.testing.assert_allclose(img2[:, :-2, 3:], img[:, 2:, :-3], atol=0.05)
    np.testing.assert_allclose(lm2, lm + shift, atol=1e-3)


def test_mirrored_pose_mirrors_the_face_and_swaps_left_right():
    ident, pose = _plain_identity(6), _pose(6)
    img, lm = _render(ident, pose, 48)
    mirror = {**pose, "rotation": -pose["rotation"], "yaw": -pose["yaw"],
              "translation": pose["translation"] * np.float32([-1, 1])}
    img2, lm2 = _render(ident, mirror, 48)
    np.testing.assert_allclose(img2, img[:, :, ::-1], atol=0.05)
    flipped = np.stack([47 - lm[..., 0], lm[..., 1]], -1)[:, [1, 0, 2, 4, 3]]
    np.testing.assert_allclose(lm2, flipped, atol=1e-3)


def test_render_rejects_bad_input():
    ident, pose = _identity(2), _pose(2)
    with pytest.raises(ValueError, match="image_size"):
        synthetic.render_faces(ident, pose, 4)
    with pytest.raises(ValueError, match="yaw"):
        synthetic.render_faces(ident, {k: v for k, v in pose.items() if k != "yaw"}, 32)
