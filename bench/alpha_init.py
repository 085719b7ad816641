r"""How far is the official initial alpha from the errors it normalises? (issue 28 item 5)

    taskset -c 1 python bench/alpha_init.py --data_dir=../shared/data/ytfaces/images --perceptual=vgg19_random

The official alpha_0 = [100, 1.6, 2.3, 1.8, 2.8, 100] was set for the colorization VGG-16.
Prints, for an untrained ``LandmarkModel`` at 128 px on TPS pairs of a folder of images (4
batches of 8), the first batches' per-term errors e_l, e_l / alpha_0 (a term's weight relative
to its running value at the start), and alpha_n / e_l after n EMA steps at constant errors
(``rho^n alpha_0 + (1 - rho^n) e``): how long the official start takes to wear off.
``alpha_init`` entries of 0 seed alpha from the first batch instead (``losses.normalizer``).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_landmarks import LandmarkConfig, LandmarkModel, data  # noqa: E402
from keras_landmarks.config import OFFICIAL_ALPHA_DECAY, OFFICIAL_ALPHA_INIT  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", required=True, help="a folder of face images")
    p.add_argument("--perceptual", default="vgg19_imagenet", help="a VGG loss (LandmarkConfig.perceptual)")
    p.add_argument("--image_size", type=int, default=128)
    args = p.parse_args()
    model = LandmarkModel(LandmarkConfig(image_size=args.image_size, perceptual=args.perceptual))
    pairs = iter(data.training_pairs("folder", data_dir=args.data_dir, image_size=args.image_size, batch_size=8,
                                     seed=0))
    errors = []
    for _ in range(4):
        batch = next(pairs)
        reconstruction = model(batch, training=True)["reconstruction"]
        out = model.perceptual_loss(batch["future_image"], reconstruction, batch["mask"], training=False)
        errors.append(np.asarray(out["errors"]))
    e, a0, rho = np.mean(errors, 0), np.array(OFFICIAL_ALPHA_INIT), OFFICIAL_ALPHA_DECAY
    np.set_printoptions(precision=4, suppress=False)
    print(f"terms {model.loss_layers} ({args.perceptual}, {args.image_size} px, {os.path.basename(args.data_dir)})")
    print("first batches' e_l:", e, " relative spread over the 4 batches:", np.std(errors, 0) / e)
    print("e_l / alpha_0:", e / a0)
    for n in (1, 100, 300, 460, 1000):
        print(f"after {n} steps alpha / e:", (rho**n * a0 + (1 - rho**n) * e) / e)


if __name__ == "__main__":
    main()
