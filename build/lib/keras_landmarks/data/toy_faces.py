"""Procedural "toy faces": parameter ranges, stateless sampling, closed-form landmarks.

The renderer is ``toy_render.py``; the public entry points are in ``synthetic.py``.

A face is drawn from two dicts of per-image parameters:

* ``identity`` (who and where: head/feature shapes, colours, background, clutter), and
* ``pose`` (in-plane rotation, scale, translation, yaw, and the expression).

Frames. The *face frame* has its origin at the head centre, ``x`` to the image right and
``y`` down, in normalised image units (the ``[-1, 1]`` convention of
``keras_landmarks.geometry``) at pose scale 1. A face point ``p`` lands at the normalised
image point ``q = t + s * R(theta) @ p`` with ``R = [[cos, -sin], [sin, cos]]``; since
``y`` points down, a positive ``theta`` turns the face clockwise on screen. Yaw: a part
at frontal face-frame ``x`` with depth ``d`` (units of the head half-width ``rx``)
appears at ``x * cos(yaw) + d * rx * sin(yaw)``, and its shape narrows by ``cos(yaw)``
(the head outline by ``sqrt(cos(yaw))``). Landmarks go through the same maps in closed
form, so they are exact for the rendered shapes.

Every shape is an implicit function (approximate signed distance, negative inside) on the
pixel grid, turned into an anti-aliased coverage by a sigmoid about a third of a pixel
wide, and composited back to front. Randomness is stateless Philox only: example ``i``
of stream seed ``seed`` uses the seed ``fold_in(seed, i)``, whatever the batch size, so
the parameters are bit-identical on every machine (the rendered pixels agree up to float
rounding). Sample outside ``jit_compile`` functions (the per-example draw is a
``tf.map_fn``; ``pairs/warps.py`` notes that some stateless draws differ under XLA).
"""

from __future__ import annotations

import math

import tensorflow as tf

# Parameter ranges: name -> (size, low, high); every value is uniform in [low, high].
# Lengths are fractions of the head half-width ``rx`` or half-height ``ry`` as named.
IDENTITY_RANGES: dict[str, tuple[int, float, float]] = {
    "head_rx": (1, 0.46, 0.56),  # head half-width, normalised units at scale 1
    "head_aspect": (1, 1.15, 1.30),  # ry / rx
    "jaw_taper": (1, 0.0, 0.25),  # how much narrower the chin is than the brow
    "eye_dx": (1, 0.38, 0.48),  # |x| of each eye centre, x rx
    "eye_y": (1, -0.22, -0.06),  # y of the eye centres, x ry
    "eye_rx": (1, 0.20, 0.26),  # eye-white half-width, x rx
    "eye_aspect": (1, 0.55, 0.75),  # eye-white half-height / half-width
    "iris_frac": (1, 0.70, 0.90),  # iris radius / eye-white half-height
    "pupil_frac": (1, 0.40, 0.55),  # pupil radius / iris radius
    "brow_gap": (1, 0.06, 0.14),  # gap between eye top and brow, x rx
    "brow_len": (1, 0.85, 1.20),  # brow half-length / eye-white half-width
    "brow_thick": (1, 0.05, 0.09),  # brow half-thickness, x rx
    "brow_curve": (1, 0.0, 0.3),  # brow end drop / brow half-length
    "nose_y": (1, 0.14, 0.26),  # y of the nose tip, x ry
    "nose_w": (1, 0.10, 0.16),  # nose-tip half-width, x rx
    "nose_shade": (1, 0.55, 0.80),  # nose-tip colour = skin * nose_shade
    "mouth_y": (1, 0.44, 0.56),  # y of the mouth line, x ry
    "mouth_w": (1, 0.30, 0.42),  # mouth half-width (corner |x|), x rx
    "lip_upper": (1, 0.05, 0.09),  # upper-lip height, x rx
    "lip_lower": (1, 0.07, 0.12),  # lower-lip height, x rx
    "lip_mix": (1, 0.35, 0.80),  # lip colour = mix(skin, LIP_RGB, lip_mix)
    "hair_line": (1, 0.45, 0.70),  # hairline height at the centre, x ry (upwards)
    "hair_side": (1, 0.5, 1.1),  # how far the hair comes down the sides
    "hair_tilt": (1, -0.3, 0.3),  # slant of the hairline (a side parting)
    "hair_volume": (1, 1.03, 1.10),  # hair outline / head outline
    "skin_tone": (1, 0.0, 1.0),  # dark -> light skin
    "skin_jitter": (3, -15.0, 15.0),
    "hair_tone": (1, 0.0, 1.0),  # black -> blond hair
    "hair_jitter": (3, -20.0, 20.0),
    "iris_rgb": (3, 40.0, 200.0),
    "light_angle": (1, 0.0, 2.0 * math.pi),  # direction of the shading gradient
    "light_strength": (1, 0.0, 0.25),
    "bg_rgb": (3, 0.0, 255.0),  # background gradient start colour
    "bg_rgb2": (3, 0.0, 255.0),  # background gradient end colour
    "bg_angle": (1, 0.0, 2.0 * math.pi),
    "stripe_freq": (1, 6.0, 20.0),  # radians per normalised unit
    "stripe_angle": (1, 0.0, math.pi),
    "stripe_phase": (1, 0.0, 2.0 * math.pi),
    "stripe_amp": (1, 0.0, 0.6),  # opacity of the stripes (0 unless has_stripes)
    "stripe_rgb": (3, 0.0, 255.0),
    "blob_xy": (6, -1.0, 1.0),  # 3 soft colour blobs in the background
    "blob_sigma": (3, 0.2, 0.6),
    "blob_alpha": (3, 0.0, 0.6),
    "blob_rgb": (9, 0.0, 255.0),
    "clutter_xy": (6, -1.0, 1.0),  # 3 hard background shapes (ellipse or box)
    "clutter_size": (6, 0.06, 0.30),
    "clutter_angle": (3, 0.0, math.pi),
    "clutter_rgb": (9, 0.0, 255.0),
}
# Bernoulli flags: name -> (size, probability of 1.0).
IDENTITY_FLAGS: dict[str, tuple[int, float]] = {
    "has_brows": (1, 0.85),
    "has_hair": (1, 0.80),
    "has_stripes": (1, 0.40),
    "clutter_is_box": (3, 0.5),
    "clutter_present": (3, 0.6),
}
POSE_RANGES: dict[str, tuple[int, float, float]] = {
    "rotation": (1, -math.radians(20.0), math.radians(20.0)),  # theta, radians
    "scale": (1, 0.85, 1.10),
    "translation": (2, -0.08, 0.08),  # (x, y) head centre, normalised units
    "yaw": (1, -math.radians(25.0), math.radians(25.0)),
    "mouth_open": (1, -0.6, 1.0),  # clipped at 0 below: ~37 % of mouths closed
    "smile": (1, -0.3, 1.0),  # corner lift, x mouth half-width x SMILE_LIFT
    "brow_raise": (1, 0.0, 1.0),  # x BROW_RAISE_MAX x rx
}
POSE_FLAGS: dict[str, tuple[int, float]] = {}

# Depths (x rx) of the parts under yaw, and fixed colours (RGB, [0, 255]).
EYE_DEPTH, NOSE_DEPTH, MOUTH_DEPTH = 0.55, 0.95, 0.60
SKIN_DARK, SKIN_LIGHT = (85.0, 55.0, 40.0), (245.0, 210.0, 185.0)
HAIR_DARK, HAIR_LIGHT = (20.0, 15.0, 12.0), (225.0, 190.0, 120.0)
EYE_WHITE_RGB, PUPIL_RGB = (240.0, 240.0, 235.0), (12.0, 10.0, 14.0)
LIP_RGB, MOUTH_INSIDE_RGB = (175.0, 45.0, 60.0), (55.0, 15.0, 20.0)
MOUTH_OPEN_MAX = 0.30  # x rx, gap of a fully open mouth
SMILE_LIFT = 0.25
BROW_RAISE_MAX = 0.10
AA_PIXELS = 0.30  # sigmoid width of the anti-aliased edges, in pixels
NUM_LANDMARKS = 5  # left eye, right eye, nose tip, left mouth corner, right mouth corner


def _draw(seed, indices, ranges, flags) -> dict[str, tf.Tensor]:
    """Per-example uniform draws: example ``indices[j]`` uses seed ``fold_in(seed, idx)``."""
    sizes = [v[0] for v in ranges.values()] + [v[0] for v in flags.values()]
    total = sum(sizes)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    indices = tf.cast(indices, tf.int64)
    key = tf.random.stateless_uniform([], seed, minval=None, maxval=None,
                                      dtype=tf.int64, alg="philox")
    seeds = tf.stack([tf.fill(tf.shape(indices), key), indices], axis=1)  # fold_in, batched
    u = tf.map_fn(lambda s: tf.random.stateless_uniform([total], s, alg="philox"),
                  seeds, fn_output_signature=tf.TensorSpec([total], tf.float32))
    out, start = {}, 0
    for name, (size, lo, hi) in ranges.items():
        v = lo + (hi - lo) * u[:, start:start + size]
        out[name], start = (v[:, 0] if size == 1 else v), start + size
    for name, (size, prob) in flags.items():
        v = tf.cast(u[:, start:start + size] < prob, tf.float32)
        out[name], start = (v[:, 0] if size == 1 else v), start + size
    return out


def _indices(batch, offset) -> tf.Tensor:
    """``offset + [0 .. batch-1]`` as int64, static length when ``batch`` is a Python int."""
    return tf.cast(offset, tf.int64) + tf.range(batch, dtype=tf.int64)


def sample_identity(seed, batch, offset=0) -> dict[str, tf.Tensor]:
    """Identities of examples ``offset .. offset + batch - 1`` of stream ``seed``.

    Args:
      seed: stateless seed, ``[2]`` int. batch, offset: ints or scalar int tensors.
    Returns:
      dict name -> ``[B]`` or ``[B, n]`` float32 (``IDENTITY_RANGES``/``IDENTITY_FLAGS``).
    """
    return _draw(seed, _indices(batch, offset), IDENTITY_RANGES, IDENTITY_FLAGS)


def sample_pose(seed, batch, offset=0) -> dict[str, tf.Tensor]:
    """Poses and expressions of examples ``offset .. offset + batch - 1`` (``POSE_RANGES``).

    ``rotation``/``yaw`` in radians, ``translation`` ``[B, 2]`` normalised ``(x, y)``;
    ``mouth_open`` is clipped to ``[0, 1]``.
    """
    pose = _draw(seed, _indices(batch, offset), POSE_RANGES, POSE_FLAGS)
    pose["mouth_open"] = tf.maximum(pose["mouth_open"], 0.0)
    return pose


def shape_params(identity, pose):
    """Per-image scalars shared by the renderer and the landmarks, each ``[B]``."""
    rx = identity["head_rx"]
    p = {"rx": rx, "ry": rx * identity["head_aspect"]}
    p["cos_yaw"], p["sin_yaw"] = tf.cos(pose["yaw"]), tf.sin(pose["yaw"])
    p["eye_x"], p["eye_y"] = identity["eye_dx"] * rx, identity["eye_y"] * p["ry"]
    p["nose_y"] = identity["nose_y"] * p["ry"]
    p["mouth_w"], p["mouth_y"] = identity["mouth_w"] * rx, identity["mouth_y"] * p["ry"]
    p["lift"] = pose["smile"] * SMILE_LIFT * p["mouth_w"]  # corners rise by this (y up)
    return p


def face_landmarks(identity, pose) -> tf.Tensor:
    """The 5 ground-truth points, ``[B, 5, 2]`` float32 normalised ``(x, y)``.

    Order: left eye centre, right eye centre, nose tip, left mouth corner, right mouth
    corner. "Left" is the part at negative face-frame ``x``: image left for |theta| < 90.
    """
    p = shape_params(identity, pose)
    zero = tf.zeros_like(p["rx"])
    # Frontal face-frame (x, y, depth) of each point: [B, 5] each.
    fx = tf.stack([-p["eye_x"], p["eye_x"], zero, -p["mouth_w"], p["mouth_w"]], axis=1)
    my = p["mouth_y"] - p["lift"]
    fy = tf.stack([p["eye_y"], p["eye_y"], p["nose_y"], my, my], axis=1)
    depth = tf.constant([EYE_DEPTH, EYE_DEPTH, NOSE_DEPTH, MOUTH_DEPTH, MOUTH_DEPTH])
    x = fx * p["cos_yaw"][:, None] + depth * (p["rx"] * p["sin_yaw"])[:, None]
    c, s = tf.cos(pose["rotation"])[:, None], tf.sin(pose["rotation"])[:, None]
    scale, t = pose["scale"][:, None], pose["translation"]
    qx = t[:, 0:1] + scale * (c * x - s * fy)
    qy = t[:, 1:2] + scale * (s * x + c * fy)
    return tf.stack([qx, qy], axis=-1)
