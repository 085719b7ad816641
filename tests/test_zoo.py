"""The bad-input zoo (tests/zoo.py): good images with odd names among 16 kinds of
broken or hostile files. Loading uses every good image, skips and counts every bad one with
its reason, and training on the folder finishes (exit 0, in bounded time) with the count in
its summary."""

import os
import subprocess
import sys

import numpy as np
import pytest

import zoo

from keras_landmarks.data import folders

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("zoo"))
    return folder, zoo.write_zoo(folder)


def _which_good(batch):
    """Index into GOOD_NAMES of each solid-colour image, from its centre pixel."""
    centre = batch[:, batch.shape[1] // 2, batch.shape[2] // 2].astype(int)
    colours = np.array([zoo.colour(i) for i in range(len(zoo.GOOD_NAMES))])
    dist = np.abs(centre[:, None, :] - colours[None]).max(-1)
    assert dist.min(1).max() <= 3, dist.min(1)  # each image is one of them (lossy JPEG: +-3)
    return dist.argmin(1)


def test_every_good_image_is_used_and_every_bad_one_skipped_with_its_reason(zoo_dir):
    folder, files = zoo_dir
    assert len(zoo.BAD_KINDS) >= 12 and len(files["bad"]) == len(zoo.BAD_KINDS)
    listed = folders.list_images(folder)
    assert sorted(listed) == sorted(files["good"] + files["bad"])  # the folder named x.jpg is not an image
    good = len(files["good"])
    ds = folders.image_folder_batches(folder, image_size=32, batch_size=good, seed=1)
    batches = list(ds.take(3).as_numpy_iterator())  # batch i = pass i over the good files
    for batch in batches:
        assert sorted(_which_good(batch)) == list(range(good))
    stats = ds.decode_stats
    assert set(stats.skipped_files) == set(files["bad"])
    assert stats.skipped == len(files["bad"]) and all(stats.skipped_files.values())
    reasons = {os.path.basename(p): r for p, r in stats.skipped_files.items()}
    assert "not a regular file" in reasons["fifo.jpg"] and "not a regular file" in reasons["dev zero.png"]
    assert "over the cap" in reasons["claims 30000x30000.png"] and "byte limit" in reasons["sparse 300MB.jpg"]


def test_training_on_the_zoo_completes_and_reports_the_skipped_files(zoo_dir, tmp_path):
    folder, files = zoo_dir
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "trainers", "train.py"), "--dataset=image_folder",
         f"--data_dir={folder}", f"--logdir={tmp_path / 'run'}", "--steps=4", "--save_every=4",
         "--image_size=32", "--width=4", "--heatmap_size=8", "--num_landmarks=4", "--batch_size=4",
         "--perceptual=l2", "--verbose=2"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(files['bad'])} unreadable files skipped" in proc.stdout, proc.stdout[-3000:]
    assert os.path.isfile(tmp_path / "run" / "model.keras")
