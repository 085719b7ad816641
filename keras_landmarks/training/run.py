"""Training: optimizer, model building, callbacks and the resumable ``train`` run.

``keras_landmarks.cli.train`` (``landmarks-train``, ``trainers/train.py``) is a thin flag
parser around ``train``. A notebook can call ``train``
directly, or ``build_model`` + ``make_callbacks`` + its own ``model.fit``: the model owns
the training step (loss, EMA alpha, global-norm clipping), the callbacks own checkpoints,
resume, the NaN guard and TensorBoard, so both paths run the same code.

The logdir's files are described in ``rundir``.

Steps are optimizer updates. ``fit`` runs epochs of ``save_every`` steps; every epoch end
saves, and a run killed at any moment resumes from the last save (same command).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time

import keras
import numpy as np

from keras_landmarks import data
from keras_landmarks.config import LandmarkConfig
from keras_landmarks.model import MODEL_FILE, LandmarkModel
from keras_landmarks.training.build import build_model, resolve_jit_compile
from keras_landmarks.training.callbacks import Progress, ResumableCheckpoint, StepLimit
from keras_landmarks.training.checkpoint import CheckpointStore
from keras_landmarks.training.distribute import (KerasStrategy, agreed_step, fit_multi_worker, is_multi_worker,
                                                 make_strategy, task_name, training_data)
from keras_landmarks.training.rundir import BACKUP_DIR, CONFIG_FILE, check_resumable, format_seconds, write_json
from keras_landmarks.training.summaries import Summaries

logger = logging.getLogger("keras_landmarks.training")

PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")
SKIP_ALLOWANCE = 1000  # batches a run may spend beyond its steps (skipped float16 updates)


class TrainingSetupError(ValueError):
    """A run could not start: bad settings, missing data or weights. The message says what to do."""


def make_callbacks(model: LandmarkModel, *, logdir: str, steps: int, summary_every: int = 100,
                   image_every: int = 1000, sample_fn=None, chief: bool = True,
                   backup_dir: str | None = None, verbose: int = 1,
                   max_seconds: float | None = None) -> list:
    """Callbacks of a run; use with ``fit(steps_per_epoch=save_every)``.

    The first is the ``ResumableCheckpoint`` (restore, NaN guard, ``model.keras`` and the
    backup at every epoch end); then a stop at ``steps`` updates, TensorBoard summaries
    (or after ``max_seconds`` of training), TensorBoard summaries and a progress bar
    (``verbose`` 1: redrawn in a terminal, 2: one line per 5 %).
    ``sample_fn() -> batch`` feeds the image summaries (none when ``None``). Without
    TensorFlow installed (JAX, PyTorch) there are no summaries.
    """
    ckpt = ResumableCheckpoint(logdir, backup_dir or os.path.join(logdir, BACKUP_DIR), chief)
    callbacks = [ckpt, StepLimit(steps, max_seconds)]
    if chief and data.has_tensorflow():  # TensorBoard's event files are written by TensorFlow
        callbacks.append(Summaries(os.path.join(logdir, "tensorboard"), summary_every,
                                   image_every, sample_fn))
    elif chief:
        logger.info("TensorBoard summaries and diagnostics are off: they need TensorFlow installed")
    if chief and verbose:
        callbacks.append(Progress(steps, tty=None if verbose == 1 else False, max_seconds=max_seconds))
    return callbacks


def train(cfg: LandmarkConfig, *, dataset, data_dir: str | None = None, steps: int, logdir: str,
          strategy="auto", mixed_precision: str | None = None,
          jit_compile: bool | str = "auto", save_every: int = 1000, summary_every: int = 100,
          image_every: int | None = None, verbose: int = 1, data_kwargs: dict | None = None,
          max_minutes: float | None = None, pipeline: str = "auto") -> LandmarkModel:
    """Train (or resume) a ``LandmarkModel`` for ``steps`` optimizer updates.

    Args:
      cfg: the model, loss and optimiser settings; ``cfg.batch_size`` is the global batch
        (split over replicas), ``cfg.seed`` seeds initialisation and data.
      dataset: a source of ``keras_landmarks.data.TRAINING_SOURCES``, or a function
        ``(batch_size, seed) -> tf.data.Dataset`` (or endless ``keras.utils.PyDataset``)
        following the data contract.
      data_dir, data_kwargs: passed to ``data.training_pairs`` (warps default to cfg's).
      steps: total updates; a resumed run continues to this count.
      strategy: a name of ``STRATEGIES``, a ``tf.distribute.Strategy`` (TensorFlow) or a
        ``distribute.KerasStrategy`` (JAX, PyTorch).
      pipeline: ``data.PIPELINES``: ``tf_data``, ``numpy`` (no TensorFlow needed) or
        ``auto`` (``tf_data`` when TensorFlow is installed).
      mixed_precision: ``None``/``"none"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.
      jit_compile: ``True``, ``False`` or ``"auto"`` (XLA on JAX only: the fastest setting
        of each backend on a CPU, ``build.resolve_jit_compile``).
      save_every, summary_every, image_every: steps between saves, scalar summaries and
        image summaries (default ``save_every``).
      max_minutes: also stop (and save) after this much training time, before ``steps``
        if need be; running again continues toward ``steps``. A time budget: results then
        depend on the machine's speed. Not with ``MultiWorkerMirroredStrategy`` (workers
        would stop at different steps).
    Returns:
      the trained model (also in ``<logdir>/model.keras``).
    Raises:
      TrainingSetupError: bad settings, missing data or VGG weights (before any training).
      FloatingPointError: the loss or the weights became NaN/inf (names the step).
    """
    t0 = time.monotonic()
    image_every = image_every or save_every
    run = {"dataset": dataset if isinstance(dataset, str) else getattr(dataset, "__name__", "custom"),
           "data_dir": data_dir, "steps": steps, "strategy": strategy if isinstance(strategy, str)
           else type(strategy).__name__, "mixed_precision": mixed_precision or "none",
           "jit_compile": jit_compile, "save_every": save_every,
           "summary_every": summary_every, "image_every": image_every, "data_kwargs": data_kwargs or {},
           "max_minutes": max_minutes, "pipeline": pipeline, "backend": keras.config.backend()}
    try:
        run["jit_compile"] = resolve_jit_compile(jit_compile)  # a bad value is a setup error
        _check_run(run, max_minutes)
        strat = make_strategy(strategy) if isinstance(strategy, str) else strategy
        chief, backup_dir = _worker_backup(strat, cfg, logdir, max_minutes)
        check_resumable(logdir, cfg)
        planned = _planned(strat, backup_dir)
        keras.utils.set_random_seed(cfg.seed)  # before the data: tf.data seeds use it too
        decode_stats: list = []
        make_pairs = _pairs_maker(dataset, data_dir, cfg, data_kwargs, decode_stats, pipeline)
        train_data = training_data(strat, make_pairs, cfg, planned["step"])
        model = build_model(cfg, strategy=strat, mixed_precision=mixed_precision,
                            jit_compile=run["jit_compile"])
    except (ValueError, OSError) as err:
        raise TrainingSetupError(str(err)) from err

    os.makedirs(logdir, exist_ok=True)
    callbacks = make_callbacks(model, logdir=logdir, steps=steps, summary_every=summary_every,
                               image_every=image_every, chief=chief, backup_dir=backup_dir,
                               verbose=verbose, sample_fn=lambda: _first_batch(make_pairs, cfg),
                               max_seconds=None if max_minutes is None else 60.0 * max_minutes)
    try:
        start = callbacks[0].restore(model, planned["step"] or None)  # also locks the backup folder
    except RuntimeError as err:  # another process trains from it
        raise TrainingSetupError(str(err)) from err
    if chief:
        write_json(os.path.join(logdir, CONFIG_FILE), {"config": cfg.to_dict(), "run": run})
    say = logger.info if verbose and chief else (lambda *a, **k: None)
    resumed = (f"resuming at step {start} from {backup_dir}" if callbacks[0].restored
               else "fresh run")
    say("%s", _describe(cfg, run, strat, model, logdir, resumed))
    if start >= steps:
        say("Nothing to do: %s is already at step %d (--steps=%d).", logdir, start, steps)
        return model
    # Epochs of save_every batches, with room for up to SKIP_ALLOWANCE batches whose update
    # float16 loss scaling skips (they do not count as steps); StepLimit ends the run.
    epochs = planned["epoch"] + math.ceil((steps - start + SKIP_ALLOWANCE) / save_every) + 1
    try:
        if is_multi_worker(strat):
            fit_multi_worker(model, strat, train_data, callbacks, save_every, planned["epoch"], epochs)
        else:  # a KerasStrategy's scope puts a JAX DataParallel in force for the steps too
            with strat.scope() if isinstance(strat, KerasStrategy) else contextlib.nullcontext():
                model.fit(train_data, epochs=epochs, initial_epoch=planned["epoch"],
                          steps_per_epoch=save_every, callbacks=callbacks, shuffle=False, verbose=0)
    finally:
        callbacks[0].release()
    say("%s", _summary(model, callbacks, start, steps, t0, max_minutes, logdir if chief else None, backup_dir,
                       decode_stats[:1]))
    return model


def check_counts(max_minutes=None, **counts) -> None:
    """``ValueError`` unless every value of ``counts`` is a positive int and ``max_minutes``
    is None or positive: the step-count arguments of a run."""
    for name, value in counts.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if max_minutes is not None and not max_minutes > 0:
        raise ValueError(f"max_minutes must be positive, got {max_minutes!r}")


def _planned(strat, backup_dir: str) -> dict:
    """``{"epoch", "step"}`` this run resumes from, agreed by all workers (``agreed_step``)."""
    store = CheckpointStore(backup_dir)
    step = agreed_step(strat, store)
    found = store.latest(step) if step else None
    return {"epoch": int(found[1]["epoch"]), "step": step} if found else {"epoch": 0, "step": 0}


def _check_run(run: dict, max_minutes) -> None:
    check_counts(max_minutes, **{k: run[k] for k in ("steps", "save_every", "summary_every", "image_every")})
    if run["mixed_precision"] not in ("float32", *PRECISIONS):
        raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {run['mixed_precision']!r}")


def _worker_backup(strat, cfg: LandmarkConfig, logdir: str, max_minutes) -> tuple[bool, str]:
    """``(chief, backup folder)`` of this worker; refuses settings the strategy cannot run."""
    replicas = strat.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise ValueError(f"batch_size {cfg.batch_size} (global) must be divisible by the "
                         f"{replicas} replicas of the strategy")
    if max_minutes is not None and is_multi_worker(strat):
        raise ValueError("max_minutes cannot be used with several workers: each would stop "
                         "at a different step. Pass steps instead.")
    chief, task = strat.extended.should_checkpoint, task_name(strat)
    return chief, os.path.join(logdir, BACKUP_DIR, *([] if chief else [task]))


def _summary(model, callbacks, start: int, steps: int, t0: float, max_minutes, logdir, backup_dir,
             decode_stats=()) -> str:
    """The final lines of a run: where it stopped, why, its last losses, its images and files."""
    end = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    limit = next(c for c in callbacks if isinstance(c, StepLimit))
    lines = []
    if end < steps and limit.timed_out:
        lines.append(f"Stopped at step {end} of {steps}: the {max_minutes:g}-minute budget is spent "
                     "(model and resume state saved). Run the same command again to continue.")
    elif end < steps:
        lines.append(f"Warning: stopped at step {end} < {steps}: more than {SKIP_ALLOWANCE} batches were "
                     "skipped by float16 loss scaling. Run the same command again to continue.")
    logs = next((c.last_logs for c in callbacks if isinstance(c, Progress)), {})
    summaries = next((c for c in callbacks if isinstance(c, Summaries) and c.sample_fn), None)
    lines.append(f"Done: steps {start} -> {end} in {format_seconds(time.monotonic() - t0)}"
                 + ("; losses (mean of the last interval): "
                    + ", ".join(f"{k} {v:.4g}" for k, v in logs.items()) if logs else ""))
    if summaries is not None:  # label-free: is it learning? (README, "Is my run learning?")
        from keras_landmarks.evaluation import diagnostics  # noqa: PLC0415

        lines.append("  diagnostics: " + diagnostics.format_diagnostics(
            diagnostics.diagnose(model, summaries.sample(), seed=(end, 1))))
    lines += [f"  images: {s.summary()}" for s in decode_stats]
    if logdir:
        lines.append(f"  model: {os.path.join(logdir, MODEL_FILE)}\n  config: "
                     f"{os.path.join(logdir, CONFIG_FILE)}\n  TensorBoard: tensorboard --logdir "
                     f"{os.path.join(logdir, 'tensorboard')}\n  resume state: {backup_dir}")
    return "\n".join(lines)


def _pairs_maker(dataset, data_dir, cfg: LandmarkConfig, data_kwargs, decode_stats: list | None = None,
                 pipeline: str = "auto"):
    """``(batch_size, seed) -> pairs``; the ``decode_stats`` of every training pipeline it makes
    (file sources) are appended to ``decode_stats``."""
    kw = {"target_warp": cfg.target_warp, "source_warp": cfg.source_warp, **(data_kwargs or {})}

    def make(batch_size, seed):
        if callable(dataset):
            ds = dataset(batch_size=batch_size, seed=seed)
        else:
            ds = data.training_pairs(dataset, data_dir=data_dir, image_size=cfg.image_size,
                                     batch_size=batch_size, seed=seed, pipeline=pipeline, **kw)
        if decode_stats is not None and getattr(ds, "decode_stats", None) is not None:
            decode_stats.append(ds.decode_stats)
        return ds

    return make


def _first_batch(make_pairs, cfg: LandmarkConfig, size: int = 16) -> dict:
    """A fixed batch for the image summaries, from a pipeline of its own: a second iterator
    over the training dataset would share (and advance) its shuffle state."""
    pairs = make_pairs(min(size, cfg.batch_size), cfg.seed)
    if isinstance(pairs, keras.utils.PyDataset):
        return pairs[0]
    return next(iter(pairs.take(1)))


def _describe(cfg, run, strategy, model, logdir, resumed: str) -> str:
    count = _devices()
    replicas = strategy.num_replicas_in_sync
    lr = (f"Adam lr {cfg.learning_rate:g} x{cfg.lr_decay_rate:g} every {cfg.lr_decay_steps} steps, "
          f"clipnorm {cfg.clipnorm:g} per variable (global gradient)")
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return "\n".join([
        "keras-landmarks training",
        f"  logdir      {logdir} ({resumed})",
        f"  dataset     {run['dataset']}" + (f" ({run['data_dir']})" if run["data_dir"] else ""),
        f"  model       {cfg.image_size}x{cfg.image_size}, {cfg.num_landmarks} landmarks, width "
        f"{cfg.width}, perceptual {cfg.perceptual}, {params:,} trainable parameters",
        f"  devices     {', '.join(f'{n} {k}' for k, n in count.items())} ({run['backend']}); {type(strategy).__name__}"
        f", {replicas} replica(s)",
        f"  batch       {cfg.batch_size} global, {cfg.batch_size // replicas} per replica",
        f"  optimizer   {lr}",
        f"  precision   {run['mixed_precision']}, jit_compile {run['jit_compile']}",
        f"  steps       {run['steps']} (save every {run['save_every']}, scalars every "
        f"{run['summary_every']}, images every {run['image_every']})",
        f"  settings    {os.path.join(logdir, CONFIG_FILE)}",
    ])


def _devices() -> dict[str, int]:
    """``{kind: count}`` of the devices the backend sees (``keras.distribution.list_devices``
    names them ``"cpu:0"``, ``"gpu:0"``, ... on JAX; TensorFlow's logical devices; CUDA's on PyTorch)."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        names = [d.device_type for d in tf.config.list_logical_devices()]
    elif keras.config.backend() == "jax":
        names = [d.split(":")[0].upper() for d in keras.distribution.list_devices()]
    else:
        import torch  # noqa: PLC0415

        names = ["GPU"] * torch.cuda.device_count() or ["CPU"]
    return {k: names.count(k) for k in sorted(set(names))}
