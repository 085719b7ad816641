r"""Inference latency of the exported detector in every format, against a compute floor.

    python bench/inference.py [--image_size=128 --width=32 --num_landmarks=10] \
        [--model=<.keras or logdir>] [--representative_data=<image folder>|synthetic]

Exports the detector (a trained one with ``--model``, else a randomly initialised one of
the given shape) to SavedModel, TFLite (none / float16 / dynamic / int8, XNNPACK) and ONNX,
prints the parity table, then one line per measurement:

    format=tflite quant=int8 batch=1 ms=12.34 mb=0.29 min_ms=9.87 images_per_s=81.0 runs=40

``ms`` is the median wall time of one call through the project's ``Runner`` interface
(numpy in, numpy out) after warm-up, ``min_ms`` the best one, ``mb`` the artifact's size
on disk. The candidates run round-robin, so load from other processes hits them alike. Every runtime
gets ``--threads`` threads (TF intra-op, LiteRT, ONNX Runtime). The floor line divides
the detector's analytic FLOPs (2 x MACs of its convolutions) by the conv throughput TF
reaches on this machine for a large 3x3 conv. Timings on a shared machine are noisy:
re-run on a quiet one before quoting them.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging

flags.DEFINE_integer("image_size", 128, "S of a randomly initialised detector")
flags.DEFINE_integer("width", 32, "encoder width of a randomly initialised detector")
flags.DEFINE_integer("num_landmarks", 10, "K of a randomly initialised detector")
flags.DEFINE_string("model", None, "a trained .keras file or logdir instead of random weights")
flags.DEFINE_string("representative_data", "synthetic", "image folder or 'synthetic': int8 "
                    "calibration and parity images")
flags.DEFINE_list("batches", ["1", "32"], "batch sizes to time")
flags.DEFINE_integer("threads", 2, "threads for every runtime", lower_bound=1)
flags.DEFINE_float("seconds", 3.0, "approximate timing budget per measurement")
flags.DEFINE_string("output_dir", None, "keep the exports here (default: a temp dir)")
FLAGS = flags.FLAGS


def conv_flops(model) -> int:
    """2 x multiply-accumulates of every ``Conv2D`` in ``model`` (nested models included)."""
    import keras  # noqa: PLC0415

    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            total += 2 * h * w * c_out * kh * kw * c_in
    return int(total)


def conv_gflops(seconds: float) -> tuple[float, float]:
    """GFLOP/s of a large 3x3 conv (``[8, 64, 64, 128] -> 128``) in TF float32: (median, best)."""
    import tensorflow as tf  # noqa: PLC0415

    x = tf.random.normal([8, 64, 64, 128])
    k = tf.random.normal([3, 3, 128, 128])
    fn = tf.function(lambda x: tf.nn.conv2d(x, k, 1, "SAME"))
    flops = 2 * 8 * 64 * 64 * 128 * 3 * 3 * 128
    (times,) = interleaved_times({"conv": lambda: fn(x).numpy()}, seconds).values()
    return flops / statistics.median(times) / 1e9, flops / min(times) / 1e9


def interleaved_times(calls: dict, seconds: float, warmup: int = 2) -> dict[str, list[float]]:
    """Wall times (s) of each call, run round-robin so that load from other processes on a
    shared machine spreads evenly over the candidates; about ``seconds`` per candidate."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in calls}
    start = time.perf_counter()
    while True:
        for name, call in calls.items():
            t = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t)
        rounds = len(next(iter(times.values())))
        if rounds >= 200 or (rounds >= 5 and time.perf_counter() - start > seconds * len(calls)):
            return times


def size_mb(path: str) -> float:
    if os.path.isfile(path):
        return os.path.getsize(path) / 2**20
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files) / 2**20


def main(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf  # noqa: PLC0415

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras  # noqa: PLC0415

    from keras_landmarks.export import parity  # noqa: PLC0415
    from keras_landmarks.export.runners import load_runner  # noqa: PLC0415
    from keras_landmarks.export.serving import KerasRunner, load_keras_detector  # noqa: PLC0415
    from keras_landmarks.export.exporter import export_all  # noqa: PLC0415
    from keras_landmarks import LandmarkConfig, build_detector  # noqa: PLC0415

    work = FLAGS.output_dir or tempfile.mkdtemp(prefix="bench_inference_")
    if FLAGS.model:
        det = load_keras_detector(FLAGS.model)
        source = FLAGS.model
    else:
        keras.utils.set_random_seed(0)
        det = build_detector(LandmarkConfig(image_size=FLAGS.image_size, width=FLAGS.width,
                                            num_landmarks=FLAGS.num_landmarks))
        source = os.path.join(work, "detector.keras")
        os.makedirs(work, exist_ok=True)
        det.save(source)
    size = det.inputs[0].shape[1]
    out = os.path.join(work, "exported")
    manifest = export_all(det, out, ["saved_model", "tflite", "onnx"],
                          ["none", "float16", "dynamic", "int8"],
                          representative_data=FLAGS.representative_data, calibration_images=100,
                          parity_images=32, overwrite=True)
    flops = conv_flops(det)
    gflops, best_gflops = conv_gflops(FLAGS.seconds)
    floor_ms = flops / (gflops * 1e9) * 1e3
    print(f"detector S={size} K={det.outputs[0].shape[1]}: {flops / 1e9:.3f} GFLOP/image; TF "
          f"3x3 conv {gflops:.1f} GFLOP/s median ({best_gflops:.1f} best) on {FLAGS.threads} "
          f"threads -> floor {floor_ms:.2f} ms/image ({flops / best_gflops / 1e6:.2f} best)")
    runners = {("keras", "none"): (KerasRunner(source, detector=det), source)}
    for key, rel in manifest["files"].items():
        fmt, quant = key.split("_") if key.startswith("tflite_") else (key, "none")
        path = os.path.join(out, rel)
        runners[(fmt, "none" if quant == "float32" else quant)] = (
            load_runner(path, num_threads=FLAGS.threads), path)
    images = parity.load_images(FLAGS.representative_data, size, max(map(int, FLAGS.batches)),
                                offset=500)
    results = {}
    for batch in map(int, FLAGS.batches):
        calls = {}
        for key, (runner, _) in runners.items():
            x = images[:batch].astype(runner.input_dtype)
            calls[key] = lambda runner=runner, x=x: runner(x)
        for (fmt, quant), times in interleaved_times(calls, FLAGS.seconds).items():
            ms, best = 1e3 * statistics.median(times), 1e3 * min(times)
            results[(fmt, quant, batch)] = (ms, best)
            print(f"format={fmt} quant={quant} batch={batch} ms={ms:.2f} mb="
                  f"{size_mb(runners[(fmt, quant)][1]):.2f} min_ms={best:.2f} "
                  f"images_per_s={1e3 * batch / ms:.1f} runs={len(times)}", flush=True)
        print(f"format=floor quant=none batch={batch} ms={floor_ms * batch:.2f} mb=0 "
              f"min_ms={flops / best_gflops / 1e6 * batch:.2f}", flush=True)
    floor_best = flops / best_gflops / 1e6
    _targets(results, floor_ms, floor_best)
    if not FLAGS.output_dir:
        shutil.rmtree(work, ignore_errors=True)


def _targets(results: dict, floor_ms: float, floor_best: float) -> None:
    """The project's speed targets, on medians and (less load-sensitive) best times."""
    for i, stat, floor in ((0, "median", floor_ms), (1, "best", floor_best)):
        get = lambda *key: results[key][i] if key in results else None  # noqa: E731
        f32, i8, ort = get("tflite", "none", 1), get("tflite", "int8", 1), get("onnx", "none", 1)
        if f32:
            print(f"target ({stat}) tflite float32 batch 1 <= 1.5 x floor: {f32 / floor:.2f} x")
        if f32 and i8:
            print(f"target ({stat}) int8 >= 1.8 x faster than float32 at batch 1: "
                  f"{f32 / i8:.2f} x")
        if f32 and ort:
            print(f"target ({stat}) onnxruntime / tflite within 1.2 x at batch 1: "
                  f"{max(f32, ort) / min(f32, ort):.2f} x "
                  f"({'onnxruntime' if ort < f32 else 'tflite'} faster)")


if __name__ == "__main__":
    app.run(main)
