"""Keras callbacks of a training run: resumable checkpoints, NaN guard, step/time limit, progress.

The *step* everywhere is the optimizer's ``iterations`` (updates applied so far), so a
resumed run, a notebook ``fit`` and TensorBoard count the same way. ``make_callbacks`` in
``keras_landmarks.training.run`` assembles these; they are public so a notebook can mix them
into its own ``model.fit``.
"""

from __future__ import annotations

import math
import os
import sys
import time

import keras
import numpy as np

from keras_landmarks.training.build import averaged_weights
from keras_landmarks.training.checkpoint import MODEL, WEIGHTS, CheckpointStore, RunLock, publish
from keras_landmarks.model import MODEL_FILE
from keras_landmarks.training.rundir import current_step, format_seconds

class ResumableCheckpoint(keras.callbacks.Callback):
    """Transactional checkpoints (``checkpoint.py``), resume, ``model.keras`` and a NaN guard.

    * Restore (``on_train_begin`` or an explicit ``restore()`` before ``fit``): the newest
      complete generation of ``backup_dir`` (a partial or corrupt one falls back to the
      previous with one warning): weights, the optimizer (step counter, Adam moments), the
      model's non-trainable ``alpha`` and BatchNorm statistics; ``fit`` continues at the
      saved epoch. A ``<logdir>/model.keras`` that is not that generation's is replaced.
    * At each epoch end (``fit(steps_per_epoch=save_every)``): check the loss and every
      weight is finite, then save one generation (weights, and ``model.keras`` on the
      chief, fsynced, switched in with one rename) and publish its ``model.keras``. A
      ``kill -9`` at any moment leaves the newest complete generation.
    * While it is in use (``restore`` until ``on_train_end``) the backup folder is locked:
      a second run on it fails at once (``RuntimeError``).
    * A non-finite loss raises ``FloatingPointError`` naming the step at once (nothing is
      written, so the last good generation stays); generations are kept at the end of
      training, so rerunning a finished command does nothing.

    Args:
      logdir: where ``model.keras`` goes.
      backup_dir: this worker's backup folder (one per worker in multi-worker runs).
      chief: whether this worker writes ``model.keras``.
      model_file: the full model's file name in ``logdir``; ``None`` writes only the
        weights (a model that is not saved whole, e.g. the colorization pre-training).
    """

    def __init__(self, logdir: str, backup_dir: str, chief: bool = True,
                 model_file: str | None = MODEL_FILE):
        super().__init__()
        self.logdir, self.backup_dir, self.chief = logdir, backup_dir, chief
        self.model_path = os.path.join(logdir, model_file) if model_file else None
        self.store = CheckpointStore(backup_dir)
        self.restored_from: int | None = None  # the step after restore()
        self.restored = False  # whether a checkpoint was loaded
        self._lock: RunLock | None = None

    def restore(self, model, step: int | None = None) -> int:
        """Load the newest complete generation (or the one of ``step``, which must exist) into
        ``model`` (built, compiled) if there is one; return the step. Takes the backup
        folder's lock."""
        self.set_model(model)
        if self.restored_from is None:
            self._lock = self._lock or RunLock(self.backup_dir)
            self.store.remove_stale()
            found = self.store.latest(step) if step else self.store.latest()
            if step and found is None:
                raise RuntimeError(f"{self.backup_dir} has no complete checkpoint of step {step}")
            self.restored = found is not None
            if found:
                folder, manifest = found
                model.load_weights(os.path.join(folder, manifest["weights"]))
                model._initial_epoch = int(manifest["epoch"])  # what fit starts from (Keras' BackupAndRestore)
                if self.chief and self.model_path:
                    publish(folder, self.model_path)
            self.restored_from = current_step(model)
        return self.restored_from

    def on_train_begin(self, logs=None):
        self.restore(self.model)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self._fail(f"the loss became {loss} at step {current_step(self.model)}")

    def on_epoch_end(self, epoch, logs=None):
        bad = [w.path for w in self.model.weights
               if not np.all(np.isfinite(keras.ops.convert_to_numpy(w)))]
        if bad:
            self._fail(f"non-finite weights after step {current_step(self.model)} "
                       f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})")
        writers = {WEIGHTS: lambda path: self.model.save_weights(path, overwrite=True)}
        if self.chief and self.model_path:
            writers[MODEL] = self._save_averaged
        folder = self.store.save(current_step(self.model), epoch + 1, writers)
        if self.chief and self.model_path:
            publish(folder, self.model_path)
        self.store.prune()

    def _save_averaged(self, path: str) -> None:
        """``model.keras`` holds the weights' moving average when the run keeps one
        (``cfg.weight_ema``; the resume state keeps the raw weights)."""
        with averaged_weights(self.model):
            self.model.save(path)

    def on_train_end(self, logs=None):
        self.release()  # generations stay: rerunning a finished run resumes at its last step

    def release(self) -> None:
        """Give up the backup folder's lock (``on_train_end`` does)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _fail(self, what: str):
        self.release()
        if self.model_path is None:
            saved = "the last good state is the backup"
        elif os.path.exists(self.model_path):
            saved = f"the last good model is {self.model_path}"
        else:
            saved = "no model was saved yet"
        raise FloatingPointError(
            f"Training stopped: {what}. Nothing was written after the last save: {saved}, and "
            f"rerunning the same command resumes from {self.backup_dir}. Lower --learning_rate "
            "or check the data for broken images (NaN/inf pixels).")


class StepLimit(keras.callbacks.Callback):
    """Stop ``fit`` as soon as the optimizer has made ``steps`` updates, or (``max_seconds``)
    after the first batch that ends that long after ``fit`` began.

    Either way the epoch ends there, so ``ResumableCheckpoint`` saves the model and the backup
    at that step; ``timed_out`` tells which limit stopped the run.
    """

    def __init__(self, steps: int, max_seconds: float | None = None):
        super().__init__()
        self.steps, self.max_seconds = steps, max_seconds
        self.timed_out = False
        self._start = None

    def on_train_begin(self, logs=None):
        self._start, self.timed_out = time.monotonic(), False

    def on_train_batch_end(self, batch, logs=None):
        if current_step(self.model) >= self.steps:
            self.model.stop_training = True
        elif self.max_seconds is not None and time.monotonic() - self._start >= self.max_seconds:
            self.model.stop_training = self.timed_out = True


class Progress(keras.callbacks.Callback):
    """One progress bar over the whole run, ``step/total``, rate, ETA and the loss.

    In a terminal the line is redrawn in place (at most 10 times a second); in a log
    file or CI (not a TTY, or ``tty=False``) a new line is printed every 5 % of the run or
    every minute. With a time budget (``max_seconds``, see ``StepLimit``) the bar and the
    ETA follow whichever limit comes first.
    """

    def __init__(self, steps: int, stream=None, width: int = 24, tty: bool | None = None,
                 max_seconds: float | None = None):
        super().__init__()
        self.steps, self.width, self.max_seconds = steps, width, max_seconds
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.last_logs: dict = {}

    def on_train_begin(self, logs=None):
        self.start = self.step = current_step(self.model)
        self.t0 = self.t_rate = time.monotonic()
        self.step_rate = self.start
        self.last_print, self.last_printed_step = 0.0, self.start

    def on_train_batch_end(self, batch, logs=None):
        self.step, self.last_logs = current_step(self.model), dict(logs or {})
        now = time.monotonic()
        if self.step == self.start + 1:  # the first step traces the graph: don't count it
            self.t_rate, self.step_rate = now, self.step
        if self.tty:
            due = now - self.last_print >= 0.1
        else:
            due = (self.step - self.last_printed_step >= max(1, self.steps // 20)
                   or now - self.last_print >= 60)
        if due or self.step >= self.steps:
            self._print(now)

    def on_train_end(self, logs=None):
        if self.step != self.last_printed_step:
            self._print(time.monotonic())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _print(self, now: float):
        frac = min(1.0, self.step / max(1, self.steps))
        left = None
        if self.max_seconds:
            left = max(0.0, self.max_seconds - (now - self.t0))
            frac = max(frac, min(1.0, 1.0 - left / self.max_seconds))
        filled = int(round(frac * self.width))
        bar = "=" * max(0, filled - 1) + (">" if 0 < filled < self.width else "=" * (filled > 0))
        done = self.step - self.step_rate
        rate = done / (now - self.t_rate) if done > 0 and now > self.t_rate else 0.0
        eta_s = (self.steps - self.step) / rate if rate else None
        if left is not None:
            eta_s = left if eta_s is None else min(eta_s, left)
        eta = "?" if eta_s is None else format_seconds(eta_s)
        loss = self.last_logs.get("loss")
        line = (f"step {self.step:>{len(str(self.steps))}}/{self.steps} "
                f"[{bar:<{self.width}}] {100 * frac:3.0f}% | {rate:.2f} step/s | ETA {eta}"
                + (f" | loss {loss:.4g}" if loss is not None else ""))
        self.stream.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        self.stream.flush()
        self.last_print, self.last_printed_step = now, self.step


__all__ = ["Progress", "ResumableCheckpoint", "StepLimit"]
