"""The bad-input zoo as a benchmark row: training pairs from a folder of good images among
every kind of broken or hostile file in ``tests/zoo.py`` (test data, loaded from its file).

Builds the zoo in a temporary folder, pulls ``--batches`` batches of TPS pairs from
``image_folder_pairs`` (decode + crop + warp, parallel ``tf.data``), and prints the kinds
tried, files skipped, good images used, wall time and the process's peak resident memory.
The last line is ``skipped=..,good_used=..,seconds=..,peak_rss_mb=..``.

    .venv/bin/python bench/bad_input.py [--batches 50] [--image_size 128]

Numbers depend on the machine and on what else runs on it: quote the command with them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


from keras_landmarks.data import folders  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _zoo():
    """``tests/zoo.py``, the bad-input zoo the tests train on, loaded from its file."""
    spec = importlib.util.spec_from_file_location("zoo", os.path.join(ROOT, "tests", "zoo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zoo = _zoo()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--image_size", type=int, default=128)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = zoo.write_zoo(folder, size=2 * args.image_size)
        start = time.perf_counter()
        ds = folders.image_folder_pairs(folder, args.image_size, args.batch_size, seed=0)
        for _ in ds.take(args.batches).as_numpy_iterator():
            pass
        seconds = time.perf_counter() - start
        stats = ds.decode_stats
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [("kinds of bad file tried", len(zoo.BAD_KINDS)), ("good images", len(files["good"])),
            ("bad files skipped (each counted once)", stats.skipped),
            ("decode attempts / passes", f"{stats.attempts} / {stats.passes:.1f}"),
            (f"{args.batches} batches of {args.batch_size} pairs at {args.image_size} px", f"{seconds:.1f} s"),
            ("peak resident memory (whole process)", f"{peak:.0f} MB")]
    for name, value in rows:
        print(f"{name:<48s} {value}")
    used = stats.decoded > 0 and stats.skipped == len(files["bad"])
    print(f"skipped={stats.skipped},good_used={len(files['good']) if used else 0},seconds={seconds:.2f},"
          f"peak_rss_mb={peak:.0f}")


if __name__ == "__main__":
    main()
