"""trainers/train.py flag checks that need no training (subprocess, as a user runs it)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("dataset", ["synthetic", "image_folder", "video"])
def test_mafl_dir_without_celeb_a_is_one_flag_error(tmp_path, dataset):
    """MAFL splits only exist for CelebA: --mafl_dir with another source is exit 2 and one
    ``train.py: error:`` line, before anything is built or written."""
    data = [] if dataset == "synthetic" else [f"--data_dir={tmp_path}"]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "trainers", "train.py"),
                           f"--dataset={dataset}", *data, f"--mafl_dir={tmp_path}",
                           f"--logdir={tmp_path / 'run'}", "--steps=1"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error: "), proc.stderr[-2000:]
    assert "--mafl_dir is for --dataset=celeb_a" in lines[0] and f"--dataset={dataset}" in lines[0]
    assert not (tmp_path / "run").exists()


def test_mafl_dir_must_be_a_folder(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "trainers", "train.py"),
                           "--dataset=celeb_a", f"--mafl_dir={tmp_path / 'missing'}"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"train.py: error: flags dataset=celeb_a, mafl_dir={tmp_path / 'missing'}: "
        f"--mafl_dir={tmp_path / 'missing'} is not a folder"]
