"""The generator as a feature: motion in closed form, generate/transfer on a trained tiny model,
``landmarks-animate`` on a generated clip, and the exported generator's parity."""

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from keras_landmarks import LandmarkConfig, geometry
from keras_landmarks.apps import animate as anim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
S, K = 32, 4
TINY = LandmarkConfig(image_size=S, width=8, num_landmarks=K, heatmap_size=8, perceptual="l2",
                      batch_size=16, learning_rate=2e-3)


def _shoelace(points: np.ndarray) -> float:
    """Area of a simple polygon given in boundary order (independent of OpenCV)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


# -- motion: closed form -------------------------------------------------------------------


def test_relative_motion_is_source_plus_the_driving_displacement():
    rng = np.random.default_rng(0)
    source, first = rng.uniform(-0.5, 0.5, (2, K, 2))
    driving = first[None] + rng.normal(0, 0.1, (5, K, 2))
    driving[0] = first  # the first frame has moved by nothing
    got = anim.motion_keypoints(source, driving, first, "relative")
    for t in range(5):
        np.testing.assert_allclose(got[t], source + (driving[t] - first), atol=1e-6)
    np.testing.assert_allclose(got[0], source, atol=1e-6)  # frame 0 draws the source's own pose
    np.testing.assert_allclose(anim.motion_keypoints(source, driving, first, "absolute"), driving, atol=1e-6)


def test_adapt_scale_multiplies_the_motion_by_the_sqrt_of_the_hull_area_ratio():
    square = np.array([[-0.1, -0.1], [0.1, -0.1], [0.1, 0.1], [-0.1, 0.1]])
    source = 3.0 * square + 0.2  # 9x the area: motion scaled by 3
    shift = np.array([0.05, -0.02])
    driving = np.stack([square, square + shift])
    got = anim.motion_keypoints(source, driving, square, "relative", adapt_scale=True)
    np.testing.assert_allclose(got[1], source + 3.0 * shift, atol=1e-5)
    assert anim.hull_area(source) == pytest.approx(_shoelace(source), rel=1e-5)
    rng = np.random.default_rng(1)
    cloud = rng.uniform(-1, 1, (30, 2))
    hull = cv2.convexHull(cloud.astype(np.float32)).reshape(-1, 2)
    assert anim.hull_area(cloud) == pytest.approx(_shoelace(hull.astype(np.float64)), rel=1e-5)


def test_motion_rejects_bad_shapes_and_modes():
    with pytest.raises(ValueError, match="motion must be one of"):
        anim.motion_keypoints(np.zeros((K, 2)), np.zeros((1, K, 2)), np.zeros((K, 2)), "sideways")
    with pytest.raises(ValueError, match=r"driving \[T, K, 2\]"):
        anim.motion_keypoints(np.zeros((K, 2)), np.zeros((1, K + 1, 2)), np.zeros((K, 2)))


def test_strip_indices_are_evenly_spaced_and_cover_both_ends():
    np.testing.assert_array_equal(anim.strip_indices(48, 6), [0, 9, 19, 28, 38, 47])
    np.testing.assert_array_equal(anim.strip_indices(3, 8), [0, 1, 2])


# -- generate / transfer ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces():
    """The shipped ``faces`` model: a trained model (64 px, K = 10) that needs no data."""
    from keras_landmarks.export.generator import load_landmark_model

    return load_landmark_model("faces")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``(path, model)`` of a tiny untrained model saved as ``.keras``: the files' mechanics."""
    import keras

    from keras_landmarks import LandmarkModel

    model = LandmarkModel(TINY)
    model.compile(optimizer=keras.optimizers.Adam())
    model({"image": np.zeros((1, S, S, 3), "float32"), "future_image": np.zeros((1, S, S, 3), "float32")})
    path = str(tmp_path_factory.mktemp("tiny") / "model.keras")
    model.save(path)
    from keras_landmarks.export.generator import load_landmark_model

    return path, load_landmark_model(path)


def _toy_faces(n: int, size: int = S) -> np.ndarray:
    from keras_landmarks.data.synthetic import synthetic_annotated

    batch = next(iter(synthetic_annotated("test", n, size, batch_size=n)))
    return np.asarray(batch["image"], np.float32)


def test_generate_with_the_own_points_reconstructs_better_than_with_shuffled_points(faces):
    size, k = faces.config.image_size, faces.config.num_landmarks
    images = _toy_faces(32, size)
    points = np.asarray(faces.detector(images, training=False)["keypoints"])
    error = lambda kp: float(np.mean((np.asarray(faces.generate(images, kp)) - images) ** 2))  # noqa: E731
    own = error(points)
    permuted = error(points[:, np.roll(np.arange(k), 1)])  # each part drawn where another one is
    others = error(np.roll(points, 1, axis=0))  # another face's pose
    assert own < 0.9 * permuted, (own, permuted)
    assert own < 0.9 * others, (own, others)
    # transfer(x, x) is generate(x, detector(x)): the same numbers.
    np.testing.assert_allclose(np.asarray(faces.transfer(images[:4], images[:4])),
                               np.asarray(faces.generate(images[:4], points[:4])), atol=1e-3)


def test_generate_draws_where_the_points_are(faces):
    """Moving every point right by 4 pixels moves the drawing right: the generated image
    matches its own copy shifted right by 4 pixels better than the unshifted or left-shifted
    one (``(x, y)`` order, pixel-centre convention of the keypoints)."""
    size = faces.config.image_size
    image = _toy_faces(1, size)
    points = np.asarray(faces.detector(image, training=False)["keypoints"])
    out = np.asarray(faces.generate(image, points))
    assert out.shape == (1, size, size, 3) and out.dtype == np.float32
    moved = points.copy()
    moved[0, :, 0] += 4 * 2 / (size - 1)  # +4 px in x
    np.testing.assert_allclose(geometry.normalized_to_pixels(moved, size) - geometry.normalized_to_pixels(points, size),
                               np.broadcast_to([4.0, 0.0], points.shape), atol=1e-4)
    shifted = np.asarray(faces.generate(image, moved))[0]
    inner = slice(8, size - 8)
    error = lambda dx: float(np.mean((shifted[inner, inner] - np.roll(out[0], dx, axis=1)[inner, inner]) ** 2))  # noqa: E731
    assert error(4) < error(0) and error(4) < error(-4), (error(4), error(0), error(-4))


# -- the CLI and the app on files ------------------------------------------------------------


def _write_clip(folder, frames: np.ndarray) -> None:
    os.makedirs(folder, exist_ok=True)
    for t, frame in enumerate(frames):
        cv2.imwrite(os.path.join(folder, f"{t}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from keras_landmarks.data.synthetic import toy_clip

    folder = tmp_path_factory.mktemp("clip")
    frames = np.asarray(toy_clip(0, 12, S)[0]).astype(np.uint8)
    _write_clip(str(folder / "frames"), frames)
    video = str(folder / "clip.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (S, S))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    source = str(folder / "source.png")
    cv2.imwrite(source, cv2.cvtColor(np.asarray(toy_clip(1, 2, 2 * S)[0][0]).astype(np.uint8),
                                     cv2.COLOR_RGB2BGR))
    return {"frames": str(folder / "frames"), "video": video, "source": source, "count": len(frames)}


def _keras_runners(trained):
    from keras_landmarks.export.generator import KerasGeneratorRunner
    from keras_landmarks.export.serving import KerasRunner

    logdir, model = trained
    return KerasRunner(logdir, detector=model.detector), KerasGeneratorRunner(model, logdir)


def _frame_count(path: str) -> int:
    if path.endswith(".gif"):
        ok, animation = cv2.imreadanimation(path)
        assert ok
        return len(animation.frames)
    capture = cv2.VideoCapture(path)
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.mark.parametrize("ext", [".mp4", ".gif"])
@pytest.mark.parametrize("driving", ["frames", "video"])
def test_animate_writes_one_frame_per_driving_frame(trained, clip, tmp_path, ext, driving):
    detector, generator = _keras_runners(trained)
    out = str(tmp_path / f"out{ext}")
    stats = anim.animate(detector, generator, clip["source"], clip[driving], out, batch_size=5,
                         display_size=48, layout="side_by_side", progress=False)
    assert stats["frames"] == clip["count"] == _frame_count(out)
    first = _first_frame(out)
    assert first.shape[:2] == (48, 3 * 48)  # source | driving | result
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temporary left


def _first_frame(path: str) -> np.ndarray:
    if path.endswith(".gif"):
        return cv2.imreadanimation(path)[1].frames[0]
    capture = cv2.VideoCapture(path)
    ok, frame = capture.read()
    capture.release()
    assert ok
    return frame


def test_first_frame_of_relative_motion_redraws_the_source_pose(trained, clip, tmp_path):
    """Relative motion at t = 0 gives the source's own points: the result panel equals
    generate(source, detector(source)) resized to the panel."""
    detector, generator = _keras_runners(trained)
    source = anim.read_image(clip["source"], S)
    animator = anim.Animator(detector, generator, source, "relative")
    frames = np.stack(list(anim.driving_frames(clip["frames"], S)))[:3]
    out = animator.step(frames)
    np.testing.assert_allclose(out["points"][0], animator.source_points, atol=1e-6)
    _, model = trained
    want = np.asarray(model.generate(source[None].astype(np.float32),
                                     animator.source_points[None].astype(np.float32)))
    assert np.abs(out["generated"][0].astype(np.float32) - np.clip(want[0], 0, 255)).max() <= 1.0


def test_png_strip_has_one_row_per_panel(trained, clip, tmp_path):
    detector, generator = _keras_runners(trained)
    out = str(tmp_path / "strip.png")
    anim.animate(detector, generator, clip["source"], clip["frames"], out, strip_frames=4,
                 display_size=40, layout="side_by_side", progress=False)
    image = cv2.imread(out)
    assert image.shape[:2] == (3 * 40, 4 * 40)


@pytest.mark.parametrize("field, value, message", [
    ("source", "missing.png", "--source=.*missing.png: not an image file"),
    ("driving", "nowhere", "--driving=.*nowhere does not exist"),
    ("driving", "empty", "--driving=.*empty: the folder has no image frames"),
    ("output", "out.avi", "--output=.*out.avi: the extension picks the format"),
])
def test_bad_input_names_the_file(trained, clip, tmp_path, field, value, message):
    detector, generator = _keras_runners(trained)
    os.makedirs(tmp_path / "empty")
    args = {"source": clip["source"], "driving": clip["frames"], "output": str(tmp_path / "o.gif")}
    args[field] = str(tmp_path / value)
    with pytest.raises(ValueError, match=message):
        anim.animate(detector, generator, args["source"], args["driving"], args["output"], progress=False)
    assert not os.path.exists(str(tmp_path / "o.gif"))


@pytest.mark.slow
def test_cli_animates_a_generated_clip(trained, clip, tmp_path):
    logdir, _ = trained
    out = str(tmp_path / "anim.mp4")
    run = subprocess.run([sys.executable, os.path.join(ROOT, "trainers", "animate.py"), f"--model={logdir}",
                          f"--source={clip['source']}", f"--driving={clip['video']}", f"--output={out}",
                          "--verbose=0", "--display_size=32"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert _frame_count(out) == clip["count"]
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "trainers", "animate.py"), f"--model={logdir}",
                          "--source=nope.jpg", f"--driving={clip['video']}", f"--output={out}"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "animate.py: error: --source=nope.jpg" in bad.stderr


# -- the exported generator ---------------------------------------------------------------------


@pytest.mark.slow
def test_exported_generator_matches_keras_and_animates_without_keras(trained, clip, tmp_path):
    from keras_landmarks.export import generator as gen
    from keras_landmarks.export.exporter import export_all
    from keras_landmarks.export.runners import load_runner

    logdir, model = trained
    out = str(tmp_path / "exported")
    export_all(model.detector, out, ["tflite"], ["none"], parity_images=0)
    manifest = gen.export_generator(model, out, parity_images=4, log=lambda *_: None)
    assert {r["name"] for r in manifest["parity"]} == {"saved_model", "tflite_float32", "tflite_float16", "onnx"}
    assert all(r["max_abs"] <= r["tolerance"] for r in manifest["parity"])
    # Independently of the manifest: every format against Keras on new inputs.
    images = _toy_faces(3).astype(np.uint8)
    points = np.asarray(model.detector(images.astype(np.float32), training=False)["keypoints"])[::-1].copy()
    want = gen.KerasGeneratorRunner(model)(images, points)
    for rel in manifest["files"].values():
        got = gen.load_generator(os.path.join(out, rel), num_threads=1)(images, points)
        tolerance = 1.0 if "float16" in rel else 0.05
        assert np.abs(got - want).max() <= tolerance, rel
    # The exported pair animates like Keras.
    pair = (load_runner(os.path.join(out, "detector_float32.tflite")),
            gen.load_generator(os.path.join(out, "generator_float32.tflite")))
    a, b = str(tmp_path / "tflite.gif"), str(tmp_path / "keras.gif")
    anim.animate(*pair, clip["source"], clip["frames"], a, display_size=S, progress=False)
    anim.animate(*_keras_runners(trained), clip["source"], clip["frames"], b, display_size=S, progress=False)
    fa, fb = (np.stack(cv2.imreadanimation(p)[1].frames).astype(int) for p in (a, b))
    assert fa.shape == fb.shape and np.abs(fa - fb).max() <= 2
    with pytest.raises(FileExistsError, match="--overwrite"):
        gen.export_generator(model, out, parity_images=0)
    with pytest.raises(ValueError, match="not a readable generator"):
        gen.load_generator(os.path.join(out, "detector_float32.tflite"))  # a detector, not a generator
    with pytest.raises(ValueError, match="does not exist"):
        gen.load_generator(os.path.join(out, "missing.onnx"))
