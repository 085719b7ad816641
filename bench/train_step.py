r"""Train-step throughput against the analytic FLOPs and this machine's conv throughput.

    python bench/train_step.py --size 64 --batch 8 --steps 20
    python bench/train_step.py --size 128 --batch 4 --steps 10 --jit_compile=on
    python bench/train_step.py --backend=tensorflow,jax,torch --jit_compile=off,on \
        --size 64 --batch 32 --width 16 --perceptual l2          # one row per backend and jit
    python bench/train_step.py --size 64 --batch 16 --width 16 --perceptual l2 \
        --num_landmarks 64 --weight_ema 0.99                     # the demo's step, weight average included

Times ``LandmarkModel``'s compiled train step (``train_on_batch``, the same call on every
Keras backend) on a fixed NumPy batch (no input pipeline), after warm-up, and reports the
median samples/s. The optimizer is the training runs' (``training.build.make_optimizer``:
Adam, its schedule, and the weight average with ``--weight_ema``). FLOPs are counted from the layer shapes: each
conv costs ``2 * H_out * W_out * k * k * C_in * C_out`` per sample forward; the trained
networks cost 3x forward (forward, input-gradient, weight-gradient); the frozen VGG costs
1x on the target (no backward) and 2x on the reconstruction (forward + input gradient).
The peak is the best of a few large convs timed on the same backend (``keras.ops.conv``).
A single row's last line is machine-readable; a comma list of backends or jit settings
runs one subprocess per row and prints one table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

BACKENDS = ("tensorflow", "jax", "torch")
HEADER = ("| backend | jit_compile | size | batch | width | perceptual | samples/s | GFLOP/sample (VGG) "
          "| GFLOP/s | peak conv GFLOP/s | ratio |")


def conv_flops(model) -> float:
    """Forward FLOPs per sample of every Conv2D inside ``model`` (nested models included)."""
    import keras  # noqa: PLC0415 (after --backend set KERAS_BACKEND)

    total = 0.0
    for layer in _walk(model):
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            cin = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            total += 2.0 * h * w * kh * kw * cin * cout
    return total


def _walk(model):
    import keras  # noqa: PLC0415

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer


def train_step_flops(model) -> tuple[float, float]:
    """``(total, vgg)`` FLOPs per sample of one train step."""
    trained = sum(conv_flops(m) for m in (model.detector, model.appearance_encoder, model.renderer))
    extractor = model.perceptual_loss.feature_extractor
    vgg = conv_flops(extractor) if extractor is not None else 0.0
    return 3 * trained + 3 * vgg, 3 * vgg


def peak_conv_gflops(repeats: int = 5) -> float:
    """Best GFLOP/s of a few large 3x3 convs on the backend (``keras.ops.conv``, one op per
    call: the machine's practical conv ceiling)."""
    import keras  # noqa: PLC0415

    best = 0.0
    rng = np.random.default_rng(0)
    for batch, size, ch in ((8, 64, 128), (4, 32, 256), (16, 128, 64)):
        x = keras.ops.convert_to_tensor(rng.normal(size=(batch, size, size, ch)).astype("float32"))
        k = keras.ops.convert_to_tensor(rng.normal(size=(3, 3, ch, ch)).astype("float32"))
        keras.ops.convert_to_numpy(keras.ops.conv(x, k, padding="same"))
        flops = 2.0 * batch * size * size * 9 * ch * ch
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            keras.ops.convert_to_numpy(keras.ops.conv(x, k, padding="same"))
            times.append(time.perf_counter() - t)
        best = max(best, flops / min(times) / 1e9)
    return best


def _args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"),
                   help=f"one of {', '.join(BACKENDS)}, or a comma list: one row each (subprocesses)")
    p.add_argument("--jit_compile", default="off",
                   help="off, on (XLA on TensorFlow/JAX, torch.compile on PyTorch), or 'off,on'")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20, help="timed steps after warm-up")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--num_landmarks", type=int, default=10)
    p.add_argument("--perceptual", default="vgg19_random",
                   help="vgg19_random has VGG-19's cost without needing the ImageNet file")
    p.add_argument("--mixed_precision", default=None, help="e.g. mixed_bfloat16")
    p.add_argument("--weight_ema", type=float, default=0.0,
                   help="moving-average momentum of the weights (the demo's 0.99); 0: none")
    return p.parse_args()


def main() -> None:
    args = _args()
    combos = [(b, j) for b in args.backend.split(",") for j in args.jit_compile.split(",")]
    for backend, jit in combos:
        if backend not in BACKENDS or jit not in ("off", "on"):
            sys.exit(f"train_step.py: --backend={backend} / --jit_compile={jit}: use {BACKENDS} and off/on")
    if len(combos) > 1:  # one process per row: Keras reads its backend once
        print(HEADER)
        print("|" + "---|" * (HEADER.count("|") - 1))
        for backend, jit in combos:
            argv = [a for a in sys.argv[1:] if not a.startswith(("--backend", "--jit_compile"))]
            out = subprocess.run([sys.executable, __file__, f"--backend={backend}", f"--jit_compile={jit}",
                                  *argv], capture_output=True, text=True)
            rows = [line for line in out.stdout.splitlines() if line.startswith(f"| {backend} ")]
            print(rows[0] if rows else f"| {backend} | {jit} | failed: {out.stderr.strip().splitlines()[-1:]} |",
                  flush=True)
        return
    os.environ["KERAS_BACKEND"] = combos[0][0]
    row(args, jit=combos[0][1] == "on")


def row(args, jit: bool) -> None:
    """Time the train step on one backend and print the table row and the machine-readable line."""
    import keras  # noqa: PLC0415

    from keras_landmarks import LandmarkConfig, LandmarkModel  # noqa: PLC0415
    from keras_landmarks.training.build import make_optimizer  # noqa: PLC0415

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(args.mixed_precision)
    cfg = LandmarkConfig(image_size=args.size, width=args.width, num_landmarks=args.num_landmarks,
                         perceptual=args.perceptual, weight_ema=args.weight_ema)
    model = LandmarkModel(cfg)
    model.compile(optimizer=make_optimizer(cfg), jit_compile=jit)  # the training runs' optimizer
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32")
    batch = {"image": x, "future_image": np.roll(x, 4, axis=1),
             "mask": np.ones((args.batch, args.size, args.size, 1), "float32")}
    times = []
    for i in range(args.warmup + args.steps):
        t = time.perf_counter()
        float(model.train_on_batch(batch, return_dict=True)["loss"])  # forces the step to finish
        if i >= args.warmup:
            times.append(time.perf_counter() - t)

    samples_per_s = args.batch / statistics.median(times)
    total, vgg = train_step_flops(model)
    achieved = samples_per_s * total / 1e9
    peak = peak_conv_gflops()
    backend = keras.config.backend()
    print(f"backend={backend} cpus={os.cpu_count()} jit_compile={jit} "
          f"policy={keras.mixed_precision.global_policy().name} weight_ema={cfg.weight_ema:g}")
    print(HEADER)
    print(f"| {backend} | {'on' if jit else 'off'} | {args.size} | {args.batch} | {args.width} | {args.perceptual} | "
          f"{samples_per_s:.2f} | {total / 1e9:.1f} ({vgg / 1e9:.1f}) | {achieved:.0f} | {peak:.0f} | "
          f"{achieved / peak:.2f} |")
    print(f"samples_per_s={samples_per_s:.3f} gflop_per_sample={total / 1e9:.2f} "
          f"achieved_gflops={achieved:.1f} peak_conv_gflops={peak:.1f}")


if __name__ == "__main__":
    main()
