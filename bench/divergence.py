r"""Does training become NaN when the optimiser diverges? A stress run at raised learning rates.

Trains ``training.build_model(cfg)`` (the trainer's model, loss, per-variable gradient clip
and optimiser) on an image folder's TPS pairs at ``--learning_rate`` and prints, every 250
steps, the loss (running mean), the largest trainable weight and the largest BatchNorm
moving variance; it stops at the first non-finite loss and names the step.
``--check_numerics`` turns on ``tf.debugging.enable_check_numerics`` (slow): the first op
that makes a NaN or inf raises, with its name.

    .venv/bin/python bench/divergence.py --data_dir=../shared/data/ytfaces/images \
        --learning_rate=0.1 --steps=1500

Defaults are the issue-11 recipe (``folder``, 64 px, width 16, pixel L2, batch 16,
K = 10). The last line is ``finite=<True|False> steps=<n> seconds=<s> max_abs_weight=<w>``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_landmarks import data, preset, training  # noqa: E402


class Watch(keras.callbacks.Callback):
    """Print the loss, largest weight and moving variance every ``every`` steps; stop on NaN."""

    def __init__(self, every: int = 250):
        super().__init__()
        self.every, self.finite, self.max_w = every, True, 0.0

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {})["loss"])
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every and np.isfinite(loss):
            return
        self.max_w = max(float(np.max(np.abs(v.numpy()))) for v in self.model.trainable_weights)
        var = max(float(np.max(v.numpy())) for v in self.model.non_trainable_weights
                  if "moving_variance" in v.path)
        print(f"step {step:>6}  loss {loss:.4g}  max|w| {self.max_w:.3g}  max moving_var {var:.3g}",
              flush=True)
        if not np.isfinite(loss):
            print(f"loss is {loss} at step {step}: stopping")
            self.finite, self.model.stop_training = False, True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", required=True, help="a folder of images (the folder source)")
    p.add_argument("--learning_rate", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--perceptual", default="l2")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--check_numerics", action="store_true")
    a = p.parse_args()
    if a.check_numerics:
        import tensorflow as tf  # noqa: PLC0415

        tf.debugging.enable_check_numerics()
    cfg = preset("folder", image_size=a.image_size, width=a.width, perceptual=a.perceptual,
                 batch_size=a.batch_size, learning_rate=a.learning_rate)
    keras.utils.set_random_seed(cfg.seed)
    model = training.build_model(cfg)
    pairs = data.training_pairs("folder", data_dir=a.data_dir, image_size=cfg.image_size,
                                batch_size=cfg.batch_size, seed=cfg.seed,
                                target_warp=cfg.target_warp, source_warp=cfg.source_warp)
    watch, start = Watch(), time.monotonic()
    model.fit(pairs, steps_per_epoch=a.steps, epochs=1, callbacks=[watch], shuffle=False, verbose=0)
    print(f"finite={watch.finite} steps={int(model.optimizer.iterations.numpy())} "
          f"seconds={time.monotonic() - start:.0f} max_abs_weight={watch.max_w:.3g}")


if __name__ == "__main__":
    main()
