"""The colorization pre-training run: images, class prior, callbacks, resumable ``pretrain``.

``trainers/pretrain_colorization.py`` is a thin flag parser around ``pretrain``. A logdir
holds::

    settings.json  the run's settings (a resumed run must keep the model and data ones)
    prior.json     the class-rebalancing prior: ab bins, p~, weights, how it was measured
    backup/        resume state: weights (trunk and head), optimizer, class weights
    tensorboard/   scalars loss, learning_rate; images "colorization" (grey | prediction | truth)

The VGG-19 trunk weights go to ``output`` (default ``<logdir>/vgg19_colorization.weights.h5``)
at every save and at the end, for ``--config.perceptual=vgg19:<output>``. Steps are optimizer
updates; ``fit`` runs epochs of ``save_every`` steps, and a run killed at any moment
resumes from the last save (same command), as in ``keras_landmarks.training``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_landmarks import data
from keras_landmarks.config import WarpParams
from keras_landmarks.pretraining.colorization import lab
from keras_landmarks.pretraining.colorization.model import ColorizationModel, save_trunk, target_ab
from keras_landmarks.training.callbacks import Progress, ResumableCheckpoint, StepLimit
from keras_landmarks.training.distribute import data_seed
from keras_landmarks.training.checkpoint import CheckpointStore
from keras_landmarks.training.rundir import backup_state, current_step, format_seconds, write_json
from keras_landmarks.training.run import TrainingSetupError, check_counts
from keras_landmarks.training.summaries import write_image, write_scalar

logger = logging.getLogger("keras_landmarks.pretraining")

OUTPUT_FILE = "vgg19_colorization.weights.h5"
SETTINGS_FILE, PRIOR_FILE = "settings.json", "prior.json"
NO_WARP = WarpParams(a=0.0, b=0.0, rotation_deg=0.0, scale=0.0, translation=0.0)
# Settings a resumed run must keep (the rest, e.g. steps or output, may change).
RESUME_KEYS = ("dataset", "data_dir", "image_size", "batch_size", "learning_rate", "hidden", "seed")


def training_images(dataset, *, data_dir: str | None = None, image_size: int, batch_size: int,
                    seed: int) -> tf.data.Dataset:
    """Endless batches ``[B, S, S, 3]`` float32 RGB ``[0, 255]``, unwarped.

    ``dataset``: a source of ``data.TRAINING_SOURCES`` (its pairs with identity warps, the
    ``image`` key), or a function ``(batch_size, seed) -> Dataset`` of image batches.
    """
    if callable(dataset):
        return dataset(batch_size=batch_size, seed=seed)
    pairs = data.training_pairs(dataset, data_dir=data_dir, image_size=image_size,
                                batch_size=batch_size, seed=seed, target_warp=NO_WARP,
                                source_warp=NO_WARP)
    return pairs.map(lambda batch: batch["image"])


def measure_prior(images: tf.data.Dataset, num_images: int) -> tuple[np.ndarray, int]:
    """Nearest-bin counts ``[Q]`` of the loss's target ab (1/4 resolution) over the first
    ``>= num_images`` images of ``images``; returns ``(counts, images seen)``."""
    num_bins = len(lab.ab_bins())

    @tf.function
    def count(batch):
        nearest = lab.soft_encode(target_ab(batch))[0][..., 0]
        return tf.math.bincount(tf.reshape(nearest, [-1]), minlength=num_bins, maxlength=num_bins)

    counts, seen = np.zeros(num_bins, np.int64), 0
    for batch in images:
        counts += count(batch).numpy()
        seen += int(batch.shape[0])
        if seen >= num_images:
            break
    return counts, seen


def build_model(image_size: int, *, hidden: int = 256, seed: int = 0,
                learning_rate: float = 1e-4) -> ColorizationModel:
    """A compiled ``ColorizationModel`` (Adam) with its variables and optimizer state created."""
    model = ColorizationModel(image_size, hidden=hidden, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=False)
    model(tf.zeros([1, image_size, image_size, 3]))
    model.optimizer.build(model.trainable_variables)
    return model


class SaveTrunk(keras.callbacks.Callback):
    """Write the trunk weights to ``path`` at every epoch end (after ``ResumableCheckpoint``)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        save_trunk(self.model, self.path)


class ColorizationSummaries(keras.callbacks.Callback):
    """TensorBoard: ``loss`` (mean of the steps since the previous scalar) and
    ``learning_rate`` every ``summary_every`` steps; every ``image_every`` steps the image
    ``colorization``, one row per image of ``sample``: grey input | prediction | truth."""

    def __init__(self, logdir: str, summary_every: int, image_every: int, sample=None):
        super().__init__()
        self.logdir, self.summary_every, self.image_every = logdir, summary_every, image_every
        self.sample = sample

    def on_train_begin(self, logs=None):
        self._writer, self._last_step = tf.summary.create_file_writer(self.logdir), None

    def on_epoch_begin(self, epoch, logs=None):
        self._sum, self._count = 0.0, 0  # the loss tracker restarts every epoch

    def on_train_batch_end(self, batch, logs=None):
        step, count = current_step(self.model), batch + 1
        if step % self.summary_every == 0 and "loss" in (logs or {}):
            total = logs["loss"] * count
            with self._writer.as_default(step=step):
                write_scalar("loss", (total - self._sum) / max(1, count - self._count), step)
                lr = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
                write_scalar("learning_rate", float(lr), step)
            self._sum, self._count = total, count
        if self.sample is not None and step % self.image_every == 0:
            self.write_images(step)
        self._last_step = step

    def write_images(self, step: int):
        with self._writer.as_default(step=step):
            write_image("colorization", colorization_grid(self.model, self.sample), step)

    def on_epoch_end(self, epoch, logs=None):
        self._writer.flush()

    def on_train_end(self, logs=None):
        step = self._last_step
        if self.sample is not None and step is not None and step % self.image_every:
            self.write_images(step)
        self._writer.flush()


def colorization_grid(model: ColorizationModel, images) -> np.ndarray:
    """``[B*S, 3*S, 3]`` uint8, per row: luma grey (what the network sees) | colorized
    (annealed mean) | the RGB image."""
    grey = tf.repeat(lab.luma(tf.cast(images, tf.float32)), 3, axis=-1)
    rows = np.concatenate([np.clip(np.rint(keras.ops.convert_to_numpy(x)), 0, 255).astype(np.uint8)
                           for x in (grey, model.colorize(images), images)], axis=2)
    return rows.reshape(-1, *rows.shape[2:])


def pretrain(dataset, *, data_dir: str | None = None, image_size: int, batch_size: int = 32,
             steps: int, learning_rate: float = 1e-4, logdir: str, output: str | None = None,
             seed: int = 0, hidden: int = 256, prior_images: int = 2000, save_every: int = 1000,
             summary_every: int = 100, image_every: int | None = None,
             verbose: int = 1, max_minutes: float | None = None) -> ColorizationModel:
    """Pre-train (or resume) the colorization VGG-19 for ``steps`` updates.

    Args:
      dataset, data_dir: a ``data.TRAINING_SOURCES`` name and its folder, or a function
        ``(batch_size, seed) -> Dataset`` of ``[B, S, S, 3]`` RGB batches.
      image_size: ``S``, a power of two >= 32.
      output: the trunk weights file, ``*.weights.h5`` (default in ``logdir``); a fresh run
        refuses an existing file.
      prior_images: images measured for the class-rebalancing prior (fresh runs only;
        a resumed run reads ``prior.json``).
      save_every, summary_every, image_every: steps between saves (backup and ``output``),
        scalars and images (default ``save_every``).
      max_minutes: also stop (saving the backup and ``output``) after this much training
        time; running again continues toward ``steps``.
    Returns:
      the model; its trunk is also in ``output``.
    Raises:
      TrainingSetupError: bad settings or data (before any training).
      FloatingPointError: the loss or the weights became NaN/inf.
    """
    t0 = time.monotonic()
    image_every = image_every or save_every
    output = output or os.path.join(logdir, OUTPUT_FILE)
    backup_dir = os.path.join(logdir, "backup")
    settings = {"dataset": dataset if isinstance(dataset, str) else getattr(dataset, "__name__", "custom"),
                "data_dir": data_dir, "image_size": image_size, "batch_size": batch_size,
                "learning_rate": learning_rate, "hidden": hidden, "seed": seed}
    try:
        check_counts(max_minutes, steps=steps, batch_size=batch_size, save_every=save_every,
                     summary_every=summary_every, image_every=image_every, prior_images=prior_images)
        _check_output(logdir, backup_dir, output, settings)
        planned = backup_state(backup_dir)  # {"epoch", "step"}, zeros for a fresh run
        keras.utils.set_random_seed(seed)
        make_images = lambda batch, s: training_images(  # noqa: E731
            dataset, data_dir=data_dir, image_size=image_size, batch_size=batch, seed=s)
        train_images = make_images(batch_size, data_seed(seed, planned["step"]))
        model = build_model(image_size, hidden=hidden, seed=seed, learning_rate=learning_rate)
        say = logger.info if verbose else (lambda *a, **k: None)
        prior = _load_or_measure_prior(logdir, make_images, batch_size, seed, prior_images, say)
        sample = next(iter(make_images(min(4, batch_size), seed).take(1)))
    except (ValueError, OSError) as err:
        raise TrainingSetupError(str(err)) from err

    model.set_prior(prior)
    os.makedirs(logdir, exist_ok=True)
    ckpt = ResumableCheckpoint(logdir, backup_dir, model_file=None)
    max_seconds = None if max_minutes is None else 60.0 * max_minutes
    callbacks = [ckpt, SaveTrunk(output), StepLimit(steps, max_seconds),
                 ColorizationSummaries(os.path.join(logdir, "tensorboard"), summary_every,
                                       image_every, sample)]
    if verbose:
        callbacks.append(Progress(steps, tty=None if verbose == 1 else False, max_seconds=max_seconds))
    start = ckpt.restore(model)
    write_json(os.path.join(logdir, SETTINGS_FILE), {**settings, "steps": steps, "output": output})
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    say(f"keras-landmarks colorization pre-training\n  logdir      {logdir} ("
        + (f"resuming at step {start}" if ckpt.restored else "fresh run") + ")\n"
        f"  dataset     {settings['dataset']}" + (f" ({data_dir})" if data_dir else "") + "\n"
        f"  model       VGG-19 + hypercolumn head, {image_size}x{image_size}, {len(model.bins)} ab "
        f"bins, {params:,} trainable parameters\n  batch       {batch_size}, Adam lr "
        f"{learning_rate:g}\n  steps       {steps} (save every {save_every})\n  output      {output}")
    if start < steps:
        epochs = planned["epoch"] + math.ceil((steps - start) / save_every) + 1
        model.fit(train_images, epochs=epochs, initial_epoch=planned["epoch"],
                  steps_per_epoch=save_every, callbacks=callbacks, shuffle=False, verbose=0)
    else:
        say(f"Nothing to do: {logdir} is already at step {start} (--steps={steps}).")
    save_trunk(model, output)
    say(f"Done: steps {start} -> {current_step(model)} in {format_seconds(time.monotonic() - t0)}"
        f"\n  VGG-19 weights: {output}  (landmarks-train --config.perceptual=vgg19:{output})\n  prior: "
        f"{os.path.join(logdir, PRIOR_FILE)}\n  TensorBoard: tensorboard --logdir "
        f"{os.path.join(logdir, 'tensorboard')}\n  resume state: {backup_dir}")
    return model


def _check_output(logdir: str, backup_dir: str, output: str, settings: dict) -> None:
    """A resumed run keeps its settings; a fresh one refuses to overwrite an existing ``output``."""
    if not output.endswith(".weights.h5"):
        raise ValueError(f"output must end in .weights.h5 (Keras 3's weights format, what "
                         f"--config.perceptual=vgg19:<file> loads), got {output!r}")
    if CheckpointStore(backup_dir).latest() is not None:
        _check_resumable(logdir, settings)
    elif os.path.exists(output):
        raise ValueError(f"output {output} exists and {logdir} holds no run to resume: pass "
                         "another output (or delete the file) to start a new run")


def _load_or_measure_prior(logdir, make_images, batch_size, seed, num_images, say) -> np.ndarray:
    """``p~`` from ``<logdir>/prior.json``, or measured on ``num_images`` images and written there."""
    path, bins = os.path.join(logdir, PRIOR_FILE), lab.ab_bins()
    if os.path.exists(path):
        with open(path) as f:
            stored = json.load(f)
        if not np.array_equal(np.asarray(stored["bins"], np.float32), bins):
            raise ValueError(f"{path} was written for other ab bins; delete it to measure again")
        return np.asarray(stored["prior"], np.float64)
    t0 = time.monotonic()
    counts, seen = measure_prior(make_images(batch_size, seed), num_images)
    prior = lab.smooth_prior(counts, bins)
    os.makedirs(logdir, exist_ok=True)
    write_json(path, {"bins": bins.tolist(), "counts": counts.tolist(), "prior": prior.tolist(),
                       "weights": lab.rebalance_weights(prior).tolist(),
                       "lambda": lab.REBALANCE_LAMBDA, "sigma": lab.PRIOR_SIGMA, "images": seen,
                       "pixels": int(counts.sum())})
    say(f"Class prior: {seen} images, {int(counts.sum()):,} target pixels, "
        f"{int((counts > 0).sum())}/{len(bins)} bins seen ({time.monotonic() - t0:.1f} s) -> {path}")
    return prior


def _check_resumable(logdir: str, settings: dict) -> None:
    path = os.path.join(logdir, SETTINGS_FILE)
    if not os.path.exists(path):
        return
    with open(path) as f:
        old = json.load(f)
    if isinstance(old.get("dataset"), str):  # a run of a source's deprecated name resumes under the new one
        old["dataset"] = data.source_name(old["dataset"], warn=False)
    diff = [f"{k}: {old.get(k)!r} -> {settings[k]!r}" for k in RESUME_KEYS if old.get(k) != settings[k]]
    if diff:
        raise ValueError(f"--logdir={logdir} holds a run with other settings ({'; '.join(diff)}). "
                         "Pass the same settings to resume it, or a new --logdir to start another run.")
