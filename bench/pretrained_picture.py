r"""A strip of a shipped detector's named points on frames of a video (the README's picture).

    .venv/bin/python bench/pretrained_picture.py --video=../shared/data/video/talking_head.mp4 \
        --output=docs/images/faces_talking_head.png [--name=faces --frames=6]

Reads ``--frames`` evenly spaced frames, runs ``pretrained.load(name).predict`` on each whole
frame (a square crop of a face), draws the named points (left eye red, right eye green,
nose blue, mouth corners yellow / magenta) and the raw keypoints (small white dots), and
writes one PNG row.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from keras_landmarks import pretrained  # noqa: E402

COLOURS = [(255, 0, 0), (0, 200, 0), (0, 90, 255), (255, 220, 0), (255, 0, 255)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--name", default="faces")
    p.add_argument("--frames", type=int, default=6)
    p.add_argument("--side", type=int, default=192, help="side of each drawn frame")
    a = p.parse_args()
    cap = cv2.VideoCapture(a.video)
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not frames:
        raise SystemExit(f"{a.video}: no readable frames")
    picked = [frames[i] for i in np.linspace(0, len(frames) - 1, a.frames).round().astype(int)]
    det = pretrained.load(a.name)
    out = det.predict(picked)
    tiles = []
    for frame, points, keypoints in zip(picked, out["points"], out["keypoints"]):
        scale = a.side / frame.shape[1]
        tile = cv2.resize(frame, (a.side, round(frame.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        for x, y in keypoints:
            cv2.circle(tile, (round((x + 0.5) * scale - 0.5), round((y + 0.5) * scale - 0.5)), 2, (255, 255, 255), -1)
        for (x, y), colour in zip(points, COLOURS):
            cv2.circle(tile, (round((x + 0.5) * scale - 0.5), round((y + 0.5) * scale - 0.5)), 4, colour, -1)
        tiles.append(tile)
    os.makedirs(os.path.dirname(a.output) or ".", exist_ok=True)
    if not cv2.imwrite(a.output, cv2.cvtColor(np.concatenate(tiles, 1), cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"could not write {a.output}")
    print(f"wrote {a.output}: {len(tiles)} frames of {a.video} ({len(frames)} in all)")


if __name__ == "__main__":
    main()
