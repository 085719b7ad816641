"""The run directory: what a training logdir holds, one atomic JSON writer, the step counter.

A logdir holds::

    config.json    {"config": LandmarkConfig fields, "run": the run's flags}   (chief)
    model.keras    latest full model (weights, alpha, optimizer), replaced atomically (chief;
                   ``model.MODEL_FILE``, found by ``model.model_file``)
    backup/        resume state: checkpoint generations gen-<step>/ (checkpoint.py), a .lock
                   while a run trains; backup/<task>/ for other workers
    tensorboard/   scalars and images (chief)
"""

from __future__ import annotations

import json
import os

import keras

from keras_landmarks.config import LandmarkConfig

CONFIG_FILE = "config.json"
BACKUP_DIR = "backup"


def current_step(model) -> int:
    """Updates applied so far: ``model.optimizer.iterations`` as a Python int."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def write_json(path: str, value) -> None:
    """Write ``value`` as JSON to ``path`` atomically (a temporary file, then ``os.replace``)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def load_config(logdir: str) -> LandmarkConfig:
    """The ``LandmarkConfig`` a run stored in ``<logdir>/config.json``."""
    with open(os.path.join(logdir, CONFIG_FILE)) as f:
        return LandmarkConfig.from_dict(json.load(f)["config"])


def backup_state(backup_dir: str) -> dict:
    """``{"epoch", "step"}`` of the newest complete checkpoint (zeros for a fresh run)."""
    from keras_landmarks.training.checkpoint import CheckpointStore  # noqa: PLC0415

    found = CheckpointStore(backup_dir).latest()
    if found is None:
        return {"epoch": 0, "step": 0}
    return {"epoch": int(found[1]["epoch"]), "step": int(found[1]["step"])}


def check_resumable(logdir: str, cfg: LandmarkConfig) -> None:
    """A logdir holding a resumable run must be resumed with the same LandmarkConfig."""
    path = os.path.join(logdir, CONFIG_FILE)
    if not (os.path.exists(path) and os.path.isdir(os.path.join(logdir, BACKUP_DIR))):
        return
    old = load_config(logdir).to_dict()
    diff = [f"{k}: {old[k]!r} -> {v!r}" for k, v in cfg.to_dict().items() if old.get(k) != v]
    if diff:
        raise ValueError(
            f"--logdir={logdir} holds a run with other settings ({'; '.join(diff)}). Pass the "
            "same settings to resume it, or a new --logdir to start another run.")


def format_seconds(seconds: float) -> str:
    """``3725.2`` -> ``"1:02:05"``; days are shown as ``"2d 03:00:00"``."""
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return (f"{days}d {h:02d}:{m:02d}:{s:02d}" if days else f"{h}:{m:02d}:{s:02d}")


__all__ = ["BACKUP_DIR", "CONFIG_FILE", "backup_state", "check_resumable", "current_step", "format_seconds",
           "load_config", "write_json"]
