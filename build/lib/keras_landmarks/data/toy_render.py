"""The vectorised TensorFlow renderer of the toy faces (see ``toy_faces`` for the frames).

Each part is an approximate signed distance (negative inside) evaluated on the whole
``[B, S, S]`` pixel grid, turned into anti-aliased coverage and composited back to front:
background gradient, stripes, colour blobs, clutter, neck, head, hair, brows, eyes
(white, iris, pupil, lid), nose (bridge, nostrils, tip), mouth (lips, opening).
"""

from __future__ import annotations

import numbers

import tensorflow as tf

from keras_landmarks.data import toy_faces as faces
from keras_landmarks.geometry import normalized_to_pixels


def _b(v):
    """``[B]`` -> ``[B, 1, 1]`` so it broadcasts against ``[B, S, S]`` maps."""
    return v[:, None, None]


def _rgb(v):
    """``[B, 3]`` -> ``[B, 1, 1, 3]``."""
    return v[:, None, None, :]


def _over(img, alpha, colour):
    """Composite ``colour`` ``[B,1,1,3]``/``[B,S,S,3]`` over ``img`` with ``alpha`` ``[B,S,S]``."""
    return img + alpha[..., None] * (colour - img)


def _ellipse(x, y, rx, ry):
    """Approximate signed distance to an axis-aligned ellipse (negative inside)."""
    k0 = tf.sqrt(tf.square(x / rx) + tf.square(y / ry))
    k1 = tf.sqrt(tf.square(x / (rx * rx)) + tf.square(y / (ry * ry)))
    ok = k1 > 1e-6  # k0 / k1 -> between min and max radius; at the exact centre use -min
    return tf.where(ok, k0 * (k0 - 1.0) / tf.where(ok, k1, 1.0), -tf.minimum(rx, ry) + 0 * x)


def _cover(dist, aa):
    """Anti-aliased coverage in [0, 1] of a signed distance ``dist`` (edge width ``aa``)."""
    return tf.sigmoid(-dist / aa)


def _colours(identity):
    """Skin, hair and lip colours, each ``[B, 3]`` float32 in [0, 255]."""
    def mix(lo, hi, t, jitter):
        lo, hi = tf.constant(lo), tf.constant(hi)
        return tf.clip_by_value(lo + t[:, None] * (hi - lo) + jitter, 0.0, 255.0)

    skin = mix(faces.SKIN_DARK, faces.SKIN_LIGHT, identity["skin_tone"], identity["skin_jitter"])
    hair = mix(faces.HAIR_DARK, faces.HAIR_LIGHT, identity["hair_tone"], identity["hair_jitter"])
    lip = skin + identity["lip_mix"][:, None] * (tf.constant(faces.LIP_RGB) - skin)
    return skin, hair, lip


def _background(identity, qx, qy, aa):
    """Image-frame background ``[B, S, S, 3]``: gradient, stripes, blobs, clutter."""
    ang = _b(identity["bg_angle"])
    g = tf.clip_by_value(0.5 + 0.5 * (qx * tf.cos(ang) + qy * tf.sin(ang)), 0.0, 1.0)
    img = _over(_rgb(identity["bg_rgb"]) + 0 * g[..., None], g, _rgb(identity["bg_rgb2"]))
    ang = _b(identity["stripe_angle"])
    wave = tf.sin(_b(identity["stripe_freq"]) * (qx * tf.cos(ang) + qy * tf.sin(ang))
                  + _b(identity["stripe_phase"]))
    amp = _b(identity["stripe_amp"] * identity["has_stripes"])
    img = _over(img, amp * 0.5 * (1.0 + wave), _rgb(identity["stripe_rgb"]))
    for k in range(3):
        bx, by = _b(identity["blob_xy"][:, 2 * k]), _b(identity["blob_xy"][:, 2 * k + 1])
        d2 = (tf.square(qx - bx) + tf.square(qy - by)) / _b(identity["blob_sigma"][:, k]) ** 2
        alpha = _b(identity["blob_alpha"][:, k]) * tf.exp(-d2)
        img = _over(img, alpha, _rgb(identity["blob_rgb"][:, 3 * k:3 * k + 3]))
    for k in range(3):
        cx, cy = _b(identity["clutter_xy"][:, 2 * k]), _b(identity["clutter_xy"][:, 2 * k + 1])
        w, h = _b(identity["clutter_size"][:, 2 * k]), _b(identity["clutter_size"][:, 2 * k + 1])
        angle = _b(identity["clutter_angle"][:, k])
        ca, sa = tf.cos(angle), tf.sin(angle)
        lx, ly = (qx - cx) * ca + (qy - cy) * sa, (qy - cy) * ca - (qx - cx) * sa
        box = tf.maximum(tf.abs(lx) - w, tf.abs(ly) - h)
        dist = tf.where(_b(identity["clutter_is_box"][:, k]) > 0.5, box, _ellipse(lx, ly, w, h))
        alpha = _cover(dist, aa) * _b(identity["clutter_present"][:, k])
        img = _over(img, alpha, _rgb(identity["clutter_rgb"][:, 3 * k:3 * k + 3]))
    return img


def render_faces(identity, pose, image_size: int, jit_compile: bool = True):
    """Render a batch of toy faces.

    Args:
      identity: dict from ``sample_identity`` (``[B]``/``[B, n]`` float32 tensors).
      pose: dict from ``sample_pose``.
      image_size: side ``S`` of the square images (int >= 8).
      jit_compile: run the renderer as one XLA-compiled function (the default: ~5x
        faster on CPU; the first call per shape compiles for a few seconds). ``False``
        runs the same ops without XLA; both agree to ~1e-3 grey levels.
    Returns:
      ``(images, landmarks)``: ``[B, S, S, 3]`` float32 RGB in [0, 255], and ``[B, 5, 2]``
      float32 pixel ``(x, y)`` (0-based, integer = pixel centre) of the 5 points of
      ``toy_faces.face_landmarks``.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral) \
            or image_size < 8:
        raise ValueError(f"render_faces: image_size must be an int >= 8, got {image_size!r}")
    missing = (set(faces.IDENTITY_RANGES) | set(faces.IDENTITY_FLAGS)) - set(identity)
    missing |= (set(faces.POSE_RANGES) | set(faces.POSE_FLAGS)) - set(pose)
    if missing:
        raise ValueError(f"render_faces: identity/pose dicts lack {sorted(missing)}; "
                         "build them with sample_identity / sample_pose")
    identity = {k: tf.convert_to_tensor(identity[k], tf.float32) for k in identity}
    pose = {k: tf.convert_to_tensor(pose[k], tf.float32) for k in pose}
    if jit_compile:
        return _render_xla(identity, pose, int(image_size))
    # Eagerly, op by op beats tracing a ~600-op graph for one call; inside tf.data or a
    # tf.function, one cached trace serves every dataset.
    render = _render if tf.executing_eagerly() else _render_graph
    return render(identity, pose, int(image_size))


def _render(identity, pose, size: int):
    """``render_faces`` without argument checks (plain TF ops)."""
    grid = tf.linspace(-1.0, 1.0, size)
    qx, qy = grid[None, None, :], grid[None, :, None]  # normalised image coords of pixels
    pixel = 2.0 / (size - 1)
    img = _background(identity, qx, qy, faces.AA_PIXELS * pixel)

    p = faces.shape_params(identity, pose)
    rx, ry, cyaw, syaw = _b(p["rx"]), _b(p["ry"]), _b(p["cos_yaw"]), _b(p["sin_yaw"])
    s, rot = _b(pose["scale"]), _b(pose["rotation"])
    dx, dy = qx - _b(pose["translation"][:, 0]), qy - _b(pose["translation"][:, 1])
    fx = (tf.cos(rot) * dx + tf.sin(rot) * dy) / s  # face frame = R(-theta) (q - t) / s
    fy = (tf.cos(rot) * dy - tf.sin(rot) * dx) / s
    aa = faces.AA_PIXELS * pixel / s
    skin, hair, lip = _colours(identity)
    la = _b(identity["light_angle"])
    light = 1.0 + _b(identity["light_strength"]) * (fx * tf.cos(la) + fy * tf.sin(la)) / ry
    shade = tf.clip_by_value(light, 0.5, 1.5)[..., None]
    skin_map = tf.clip_by_value(_rgb(skin) * shade, 0.0, 255.0)

    # Head, neck and hair: frontal x narrows by sqrt(cos yaw).
    hx = fx / tf.sqrt(cyaw)
    neck = tf.maximum(tf.abs(hx) - 0.45 * rx, tf.abs(fy - 1.05 * ry) - 0.6 * ry)
    img = _over(img, _cover(neck, aa), skin_map * 0.8)
    taper = 1.0 - _b(identity["jaw_taper"]) * tf.clip_by_value(fy / ry, 0.0, 1.0)
    img = _over(img, _cover(_ellipse(hx / taper, fy, rx, ry), aa), skin_map)
    vol = _b(identity["hair_volume"])
    line = ry * (-_b(identity["hair_line"]) + 0.15 * tf.square(hx / rx)
                 + 4.0 * _b(identity["hair_side"]) * tf.nn.relu(tf.abs(hx) / rx - 0.8))
    line += _b(identity["hair_tilt"]) * hx
    hair_d = tf.maximum(_ellipse(hx, fy + 0.04 * ry, rx * vol, ry * vol), fy - line)
    hair_a = _cover(hair_d, aa) * _b(identity["has_hair"])
    img = _over(img, hair_a, tf.clip_by_value(_rgb(hair) * shade, 0.0, 255.0))

    # Eyes and brows (mirror-symmetric in the frontal frame: one shape at |x|).
    ex = tf.abs((fx - faces.EYE_DEPTH * rx * syaw) / cyaw) - _b(p["eye_x"])
    ey = fy - _b(p["eye_y"])
    erx = _b(identity["eye_rx"]) * rx
    ery = erx * _b(identity["eye_aspect"])
    blen = _b(identity["brow_len"]) * erx
    bthick = _b(identity["brow_thick"]) * rx
    raise_ = _b(pose["brow_raise"]) * faces.BROW_RAISE_MAX * rx
    by = ey + ery + _b(identity["brow_gap"]) * rx + bthick + raise_
    by -= _b(identity["brow_curve"]) * blen * tf.square(ex / blen)
    brow_a = _cover(_ellipse(ex, by, blen, bthick), aa) * _b(identity["has_brows"])
    img = _over(img, brow_a, _rgb(hair) * 0.7)
    white_d = _ellipse(ex, ey, erx, ery)
    white_a = _cover(white_d, aa)
    img = _over(img, white_a, tf.constant(faces.EYE_WHITE_RGB))
    iris_r = _b(identity["iris_frac"]) * ery
    img = _over(img, _cover(_ellipse(ex, ey, iris_r, iris_r), aa) * white_a,
                _rgb(identity["iris_rgb"]))
    pupil_r = _b(identity["pupil_frac"]) * iris_r
    img = _over(img, _cover(_ellipse(ex, ey, pupil_r, pupil_r), aa) * white_a,
                tf.constant(faces.PUPIL_RGB))
    lid_w = 0.035 * rx
    img = _over(img, _cover(tf.abs(white_d + lid_w) - lid_w, aa), _rgb(skin) * 0.4)

    # Nose: faint bridge triangle, two nostrils, then the darker tip centred on the landmark.
    nx = (fx - faces.NOSE_DEPTH * rx * syaw) / cyaw
    ny = fy - _b(p["nose_y"])
    nw = _b(identity["nose_w"]) * rx
    top = _b(p["eye_y"]) - _b(p["nose_y"])  # apex height relative to the tip (negative)
    side = (tf.abs(nx) * -top + (ny - top) * -nw) / tf.sqrt(tf.square(top) + tf.square(nw))
    bridge_a = 0.5 * _cover(tf.maximum(side, ny), aa)
    img = _over(img, bridge_a, skin_map * 0.85)
    nostril = _ellipse(tf.abs(nx) - 0.8 * nw, ny - 0.3 * nw, 0.35 * nw, 0.25 * nw)
    img = _over(img, _cover(nostril, aa), _rgb(skin) * 0.3)  # half hidden by the tip
    tip_a = _cover(_ellipse(nx, ny, nw, 0.7 * nw), aa)
    img = _over(img, tip_a, skin_map * _b(identity["nose_shade"])[..., None])

    # Mouth in a frame bent by the smile: corners at (+-w, 0), lips above and below.
    mx = (fx - faces.MOUTH_DEPTH * rx * syaw) / cyaw
    mw = _b(p["mouth_w"])
    my = fy - _b(p["mouth_y"]) + _b(p["lift"]) * tf.square(mx / mw)
    gap = _b(pose["mouth_open"]) * faces.MOUTH_OPEN_MAX * rx
    lips = tf.where(my < 0.0, _ellipse(mx, my, mw, _b(identity["lip_upper"]) * rx),
                    _ellipse(mx, my, mw, _b(identity["lip_lower"]) * rx + gap))
    img = _over(img, _cover(lips, aa), _rgb(lip))
    line_w = 0.03 * rx
    inside = tf.where(my < 0.0, _ellipse(mx, my, 0.85 * mw, line_w + 0.1 * gap),
                      _ellipse(mx, my, 0.85 * mw, line_w + 0.9 * gap))
    img = _over(img, _cover(inside, aa), tf.constant(faces.MOUTH_INSIDE_RGB))

    images = tf.clip_by_value(img, 0.0, 255.0)
    landmarks = normalized_to_pixels(faces.face_landmarks(identity, pose), size)
    return images, landmarks


# Traced once per image size and batch shape, and reused by every dataset and call.
_render_xla = tf.function(_render, jit_compile=True, reduce_retracing=True)
_render_graph = tf.function(_render, reduce_retracing=True)
