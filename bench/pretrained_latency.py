r"""Latency of a shipped detector's TFLite files at batch 1 (the README's "Pretrained detectors").

    .venv/bin/python bench/pretrained_latency.py [--name=faces --runs=300]

Loads ``detector_float32.tflite`` and ``detector_int8.tflite`` through the project's
``Runner`` (LiteRT, XNNPACK; numpy uint8 in, pixel keypoints out), warms up 20 calls, then
prints the median and best of ``--runs`` single-image calls with 1 and 2 threads. (The
float16 file is not shipped: ``bench/inference.py`` on this model fails the float16 parity
check, 0.32 px max against a 0.05 px target.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_landmarks import pretrained  # noqa: E402
from keras_landmarks.export import to_tflite  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", default="faces")
    p.add_argument("--runs", type=int, default=300)
    a = p.parse_args()
    image = pretrained.reference_images(pretrained.card(a.name)["image_size"])[:1]
    for quantization, file in pretrained.TFLITE_FILES.items():
        for threads in (1, 2):
            runner = to_tflite.load(pretrained.path(a.name, file), num_threads=threads)
            for _ in range(20):
                runner(image)
            times = []
            for _ in range(a.runs):
                start = time.perf_counter()
                runner(image)
                times.append(time.perf_counter() - start)
            print(f"{a.name} tflite {quantization} batch=1 threads={threads} median_ms={1000 * statistics.median(times):.3f} "
                  f"min_ms={1000 * min(times):.3f} load={os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
