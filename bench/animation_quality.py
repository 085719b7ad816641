r"""Animation quality on a real clip, and the generator's latency per frame in every format.

    .venv/bin/python bench/animation_quality.py --model=faces \
        --video=../shared/data/video/talking_head.mp4 [--first_frame=0 --export_dir=/tmp/gen]

Quality (First Order Motion's video-reconstruction protocol): the clip's frames from
``--first_frame`` on must be frames the model did not train on (the shipped ``faces`` model
never saw this clip). Every frame is centre-cropped and resized to the model's ``S x S``.
For each frame ``t`` after the first one, ``transfer(frame_0, frame_t)`` (the first frame's
appearance in frame t's pose, absolute motion) is compared with frame ``t``:

* L1: mean absolute error of RGB on the ``[0, 1]`` scale;
* PSNR: ``10 log10(1 / MSE)`` on the ``[0, 1]`` scale, from the mean MSE over frames;
* AKD: average keypoint distance, in pixels of the ``S x S`` frame, between the points the
  model's own detector finds on the generated frame and on the real frame ``t``, over the K
  raw keypoints (First Order Motion uses an external face landmark detector; this measures
  with the model's detector, so it says how faithfully the pose is redrawn), and over the 5
  named points of the pretrained point map when ``--model`` is a shipped model.

Rows: ``transfer`` (the method), ``copy source`` (frame 0 itself: the baseline every
animation must beat on AKD), and ``reconstruct`` (``generate(frame_t, detector(frame_t))``:
the generator's own ceiling on this clip).

Latency: the generator (``landmarks-export --what=generator``: Keras, SavedModel, TFLite
float32 / float16, ONNX) at batch 1, median of ``--runs`` calls after 10 warm-ups, 1 thread
for TFLite and ONNX Runtime (Keras and SavedModel use TensorFlow's own pools).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_landmarks import pretrained  # noqa: E402
from keras_landmarks.apps.animate import driving_frames  # noqa: E402
from keras_landmarks.export import generator as gen  # noqa: E402


def _detect(model, images: np.ndarray) -> np.ndarray:
    return np.asarray(model.detector(images.astype(np.float32), training=False)["keypoints"])


def _metrics(model, generated: np.ndarray, real: np.ndarray, point_map) -> dict:
    size = model.config.image_size
    generated = np.clip(np.rint(generated), 0, 255)
    diff = (generated - real) / 255.0
    akd = lambda a, b: float(np.linalg.norm(a - b, axis=-1).mean())  # noqa: E731
    kp_gen, kp_real = _detect(model, generated), _detect(model, real)
    row = {"l1": float(np.abs(diff).mean()), "psnr": float(10 * np.log10(1.0 / np.mean(diff**2))),
           "akd": akd(kp_gen, kp_real) * (size - 1) / 2}  # normalised [-1, 1] -> pixels
    if point_map is not None:
        to_px = lambda k: (k + 1) * (size - 1) / 2  # noqa: E731
        row["akd_named"] = akd(point_map(to_px(kp_gen)), point_map(to_px(kp_real)))
    return row


def quality(model, frames: np.ndarray, point_map) -> dict:
    source, targets = frames[:1], frames[1:]
    sources = np.repeat(source, len(targets), axis=0)
    transfer = np.asarray(model.transfer(sources, targets))
    reconstruct = np.asarray(model.generate(targets, _detect(model, targets)))
    return {"transfer": _metrics(model, transfer, targets, point_map),
            "copy source": _metrics(model, sources, targets, point_map),
            "reconstruct": _metrics(model, reconstruct, targets, point_map)}


def latency(model, export_dir: str, runs: int) -> list[tuple[str, float]]:
    if not os.path.isdir(export_dir):
        gen.export_generator(model, export_dir, log=lambda *_: None)
    images, keypoints = gen.parity_inputs(model, 1)
    runners = {"keras": gen.KerasGeneratorRunner(model)}
    with open(os.path.join(export_dir, "generator.json")) as f:
        manifest = json.load(f)
    for key, rel in manifest["files"].items():
        runners[key] = gen.load_generator(os.path.join(export_dir, rel), num_threads=1)
    rows = []
    for name, runner in runners.items():
        for _ in range(10):
            runner(images, keypoints)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            runner(images, keypoints)
            times.append(time.perf_counter() - start)
        rows.append((name, 1000 * statistics.median(times)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="faces")
    p.add_argument("--video", default="../shared/data/video/talking_head.mp4")
    p.add_argument("--first_frame", type=int, default=0, help="first held-out frame (the source)")
    p.add_argument("--max_frames", type=int, default=1000)
    p.add_argument("--export_dir", default=None, help="the generator's export (written if absent; "
                   "default: a temporary folder)")
    p.add_argument("--runs", type=int, default=200)
    a = p.parse_args()
    model = gen.load_landmark_model(a.model)
    size = model.config.image_size
    frames = np.stack(list(driving_frames(a.video, size, max_frames=a.first_frame + a.max_frames)))
    frames = frames[a.first_frame:].astype(np.float32)
    point_map = pretrained.point_map(a.model) if a.model in pretrained.available() else None
    print(f"model {a.model} ({size} px, K={model.config.num_landmarks}); clip {a.video}: frames "
          f"{a.first_frame}..{a.first_frame + len(frames) - 1} ({len(frames) - 1} targets); "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'row':<14}{'L1':>8}{'PSNR dB':>9}{'AKD px':>8}{'AKD named px':>14}")
    for name, row in quality(model, frames, point_map).items():
        named = f"{row['akd_named']:>14.2f}" if "akd_named" in row else f"{'-':>14}"
        print(f"{name:<14}{row['l1']:>8.4f}{row['psnr']:>9.2f}{row['akd']:>8.2f}{named}")
    with tempfile.TemporaryDirectory() as scratch:
        export_dir = a.export_dir or os.path.join(scratch, "generator")
        print(f"\ngenerator latency, batch 1 ({size} px): median of {a.runs} calls")
        for name, ms in latency(model, export_dir, a.runs):
            print(f"{name:<16}{ms:>8.3f} ms")


if __name__ == "__main__":
    main()
