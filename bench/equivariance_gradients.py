r"""How large the equivariance term's gradient is beside the reconstruction's, on the detector.

    python bench/equivariance_gradients.py --data_dir=../shared/data/helen \
        --data_dir=../shared/data/ytfaces --preset=faces --num_landmarks=30 \
        --model=init --model=/path/to/run/model.keras

Sets ``config.equivariance_weight`` by measurement: for each model (``init``: a new one of
the preset), on a few training batches of the folders' ``train`` images, the norm of each
detector variable's gradient of the reconstruction loss and of the mean equivariance error
(``losses.equivariance``, per unit ``weight * loss_scale``) under the config's
``equivariance_warp``. The ratio's median is the ``weight * loss_scale`` at which the two
gradients are equal. TensorFlow only (a ``GradientTape``). Prints one markdown table.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def _args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", action="append", required=True, help="annotated folder(s): their train images")
    p.add_argument("--model", action="append", required=True, help="'init' or a .keras file (repeatable)")
    p.add_argument("--preset", default="faces")
    p.add_argument("--num_landmarks", type=int)
    p.add_argument("--batches", type=int, default=4)
    return p.parse_args()


def _ratios(model, cfg, batches):
    """``(ratios, rec, eq)``: per detector variable and batch ``|g_rec| / |g_eq|`` (``[V * n]``
    float64), the mean reconstruction loss and the mean equivariance error (normalised ``[-1, 1]``
    units squared). ``batches``: training pairs, ``future_image`` ``[B, S, S, 3]`` float32 0-255."""
    import keras
    import tensorflow as tf

    from keras_landmarks.losses import equivariance

    seed = keras.random.SeedGenerator(cfg.seed + 1)
    ratios, rec_losses, eq_errors = [], [], []
    for b in batches:
        with tf.GradientTape(persistent=True) as tape:
            out = model(b, training=True)
            rec = model.perceptual_loss(b["future_image"], out["reconstruction"], None, training=False)["loss"]
            m = equivariance.random_similarities(seed, b["future_image"].shape[0], cfg.equivariance_warp)
            warped = model.detector(equivariance.warp_images(b["future_image"], m), training=True)["keypoints"]
            eq = tf.reduce_mean(equivariance.per_example_errors(out["keypoints"], warped, m))
        variables = model.detector.trainable_variables
        g_rec = [np.linalg.norm(g) for g in tape.gradient(rec, variables)]
        g_eq = [np.linalg.norm(g) for g in tape.gradient(eq, variables)]
        ratios.append(np.asarray(g_rec) / np.maximum(g_eq, 1e-30))
        rec_losses.append(float(rec))
        eq_errors.append(float(eq))
    return np.concatenate(ratios), float(np.mean(rec_losses)), float(np.mean(eq_errors))


def main() -> None:
    a = _args()
    import keras

    from keras_landmarks import data, training
    from keras_landmarks.config import preset
    from keras_landmarks.data import landmarks_csv

    cfg = preset(a.preset, **({"num_landmarks": a.num_landmarks} if a.num_landmarks else {}))
    pairs = data.training_pairs("folder", image_size=cfg.image_size, batch_size=cfg.batch_size, seed=cfg.seed,
                                target_warp=cfg.target_warp, source_warp=cfg.source_warp,
                                data_dir=landmarks_csv.split_folder(a.data_dir, "train"))
    it = iter(pairs)
    batches = [next(it) for _ in range(a.batches)]
    half = (cfg.image_size - 1) / 2.0
    print(f"| model | reconstruction loss | equivariance rms, px at {cfg.image_size} | |g_rec|/|g_eq| median "
          "(quartiles) | equivariance_weight for equal gradients |")
    print("| --- | --- | --- | --- | --- |")
    for name in a.model:
        model = training.build_model(cfg) if name == "init" else keras.models.load_model(name)
        r, rec, eq = _ratios(model, cfg, batches)
        q1, med, q3 = np.percentile(r, [25, 50, 75])
        print(f"| {name} | {rec:.3g} | {np.sqrt(eq) * half:.2f} | {med:.3g} ({q1:.3g}-{q3:.3g}) | "
              f"{med / cfg.loss_scale:.3g} |")


if __name__ == "__main__":
    main()
