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

from keras_landmarks.training.rundir import (BACKUP_METADATA, BACKUP_WEIGHTS, MODEL_FILE, current_step,
                                            format_seconds, write_json)

class ResumableCheckpoint(keras.callbacks.BackupAndRestore):
    """Keras' ``BackupAndRestore`` made atomic, plus ``model.keras`` and a NaN guard.

    * Restore (``on_train_begin`` or an explicit ``restore()`` before ``fit``): Keras'
      own logic: weights, the optimizer (step counter, Adam moments) and the model's
      non-trainable ``alpha`` from ``<backup_dir>/latest.weights.h5``.
    * At each epoch end (``fit(steps_per_epoch=save_every)``): check the loss and every
      weight is finite, write ``<logdir>/model.keras`` (chief only), then the backup;
      both go to a temporary file first and are moved in with ``os.replace``, so a
      ``kill -9`` at any moment leaves the previous complete files.
    * Keras' own integer ``save_freq`` is not used: it saves mid-epoch but resumes at the
      start of the saved epoch (the batch is ignored), and its writes are not atomic.
    * A non-finite loss raises ``FloatingPointError`` naming the step at once (nothing is
      written, so the last good ``model.keras`` and backup stay); the backup is kept at
      the end of training, so rerunning a finished command does nothing.

    Args:
      logdir: where ``model.keras`` goes.
      backup_dir: this worker's backup folder (one per worker in multi-worker runs).
      chief: whether this worker writes ``model.keras``.
      model_file: the full model's file name in ``logdir``; ``None`` writes only the
        backup (a model that is not saved whole, e.g. the colorization pre-training).
    """

    def __init__(self, logdir: str, backup_dir: str, chief: bool = True,
                 model_file: str | None = MODEL_FILE):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)
        self.logdir, self.chief = logdir, chief
        self.model_path = os.path.join(logdir, model_file) if model_file else None
        self.restored_from: int | None = None  # the step after restore()
        self.restored = False  # whether a backup was loaded

    def restore(self, model) -> int:
        """Load the backup into ``model`` (built, compiled) if there is one; return the step."""
        self.set_model(model)
        if self.restored_from is None:
            self.restored = os.path.exists(os.path.join(self.backup_dir, BACKUP_WEIGHTS))
            super().on_train_begin()
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
        if self.chief and self.model_path:
            tmp = os.path.join(self.logdir, "model.tmp.keras")
            self.model.save(tmp)
            os.replace(tmp, self.model_path)
        os.makedirs(self.backup_dir, exist_ok=True)
        weights = os.path.join(self.backup_dir, BACKUP_WEIGHTS)
        tmp = os.path.join(self.backup_dir, "latest.tmp.weights.h5")
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, weights)
        # Keras reads "epoch" (first epoch of a resumed fit); the step comes back with the
        # optimizer's iterations and is repeated here for readers that build no model.
        write_json(os.path.join(self.backup_dir, BACKUP_METADATA),
                    {"epoch": epoch + 1, "batch": 0, "step": current_step(self.model)})

    def on_train_end(self, logs=None):
        pass  # keep the backup: rerunning a finished run then resumes at its last step

    def _fail(self, what: str):
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
