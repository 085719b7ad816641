r"""Train-step throughput against the analytic FLOPs and this machine's conv throughput.

    python bench/train_step.py --size 64 --batch 8 --steps 20
    python bench/train_step.py --size 128 --batch 4 --steps 10 --jit_compile

Times ``LandmarkModel``'s compiled train step on a cached batch (no input pipeline), after
warm-up, and reports the median samples/s. FLOPs are counted from the layer shapes: each
conv costs ``2 * H_out * W_out * k * k * C_in * C_out`` per sample forward; the trained
networks cost 3x forward (forward, input-gradient, weight-gradient); the frozen VGG costs
1x on the target (no backward) and 2x on the reconstruction (forward + input gradient).
The peak is the best of a few large convs timed in TensorFlow. The last line is
machine-readable.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from keras_landmarks import LandmarkConfig, LandmarkModel


def conv_flops(model: keras.Model) -> float:
    """Forward FLOPs per sample of every Conv2D inside ``model`` (nested models included)."""
    total = 0.0
    for layer in _walk(model):
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            cin = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            total += 2.0 * h * w * kh * kw * cin * cout
    return total


def _walk(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer


def train_step_flops(model: LandmarkModel) -> tuple[float, float]:
    """``(total, vgg)`` FLOPs per sample of one train step."""
    trained = sum(conv_flops(m) for m in (model.detector, model.appearance_encoder, model.renderer))
    vgg = conv_flops(model.feature_extractor) if model.feature_extractor is not None else 0.0
    return 3 * trained + 3 * vgg, 3 * vgg


def peak_conv_gflops(repeats: int = 5) -> float:
    """Best GFLOP/s of a few large 3x3 convs (the machine's practical conv ceiling)."""
    best = 0.0
    for batch, size, ch in ((8, 64, 128), (4, 32, 256), (16, 128, 64)):
        x = tf.random.normal((batch, size, size, ch))
        k = tf.random.normal((3, 3, ch, ch))
        conv = tf.function(lambda a, b: tf.nn.conv2d(a, b, 1, "SAME"))
        conv(x, k).numpy()
        flops = 2.0 * batch * size * size * 9 * ch * ch
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            conv(x, k).numpy()
            times.append(time.perf_counter() - t)
        best = max(best, flops / min(times) / 1e9)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20, help="timed steps after warm-up")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--num_landmarks", type=int, default=10)
    p.add_argument("--perceptual", default="vgg19_random",
                   help="vgg19_random has VGG-19's cost without needing the ImageNet file")
    p.add_argument("--jit_compile", action="store_true")
    p.add_argument("--mixed_precision", default=None, help="e.g. mixed_bfloat16")
    args = p.parse_args()

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(args.mixed_precision)
    cfg = LandmarkConfig(image_size=args.size, width=args.width, num_landmarks=args.num_landmarks,
                         perceptual=args.perceptual)
    model = LandmarkModel(cfg)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), jit_compile=args.jit_compile)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32")
    batch = {"image": x, "future_image": np.roll(x, 4, axis=1),
             "mask": np.ones((args.batch, args.size, args.size, 1), "float32")}
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat().prefetch(2))
    model.make_train_function()
    step = model.train_function
    times = []
    for i in range(args.warmup + args.steps):
        t = time.perf_counter()
        float(step(iterator)["loss"])  # forces the step to finish
        if i >= args.warmup:
            times.append(time.perf_counter() - t)

    samples_per_s = args.batch / statistics.median(times)
    total, vgg = train_step_flops(model)
    achieved = samples_per_s * total / 1e9
    peak = peak_conv_gflops()
    print(f"threads: intra={tf.config.threading.get_intra_op_parallelism_threads() or 'auto'} "
          f"cpus={os.cpu_count()}  jit_compile={args.jit_compile}  policy={keras.mixed_precision.global_policy().name}")
    print("| size | batch | width | perceptual | samples/s | GFLOP/sample (VGG) | GFLOP/s | peak conv GFLOP/s | ratio |")
    print(f"| {args.size} | {args.batch} | {args.width} | {args.perceptual} | {samples_per_s:.2f} | "
          f"{total / 1e9:.1f} ({vgg / 1e9:.1f}) | {achieved:.0f} | {peak:.0f} | {achieved / peak:.2f} |")
    print(f"samples_per_s={samples_per_s:.3f} gflop_per_sample={total / 1e9:.2f} "
          f"achieved_gflops={achieved:.1f} peak_conv_gflops={peak:.1f}")


if __name__ == "__main__":
    main()
