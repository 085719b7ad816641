"""TensorBoard summaries of a training run, written without the ``tensorboard`` package.

``Summaries`` logs scalars (losses, alpha, learning rate) and an image grid of pairs with
their reconstructions and landmarks; ``read_summaries`` reads them back (tests, notebooks).
"""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_landmarks import geometry
from keras_landmarks.evaluation import pictures
from keras_landmarks.training.build import averaged_weights
from keras_landmarks.training.rundir import current_step


class Summaries(keras.callbacks.Callback):
    """TensorBoard scalars every ``summary_every`` steps, images every ``image_every``.

    Scalars: ``loss/total`` and ``loss/<layer>`` (means over the steps since the previous
    summary; each term is ``loss_scale * e_l / alpha_l``), ``alpha/<layer>``
    and ``learning_rate``; with a sample, the label-free ``diagnostics/...``
    (``evaluation.diagnostics``: equivariance error in px and %, keypoint spread, collapsed
    and border keypoints, renderer reliance) on that fixed batch, of the weights' average
    when the run keeps one (``cfg.weight_ema``: what ``model.keras`` holds). Images: ``pairs``, one row
    per example of the first ``max_images`` of it: source | target | reconstruction | target
    with the detected landmarks. ``last_diagnostics`` holds the latest values.

    Args:
      logdir: the event files' folder (``<run logdir>/tensorboard``).
      sample_fn: returns a data-contract batch (called once, when first needed).
    """

    def __init__(self, logdir: str, summary_every: int, image_every: int, sample_fn=None,
                 max_images: int = 4):
        super().__init__()
        self.logdir, self.summary_every, self.image_every = logdir, summary_every, image_every
        self.sample_fn, self.max_images = sample_fn, max_images
        self._sample, self._writer = None, None
        self.last_diagnostics: dict | None = None

    def sample(self) -> dict:
        """The fixed batch (``image``, ``future_image``[, ``mask``]) of the summaries."""
        if self._sample is None:
            batch = self.sample_fn()
            self._sample = {k: v for k, v in batch.items() if k in ("image", "future_image", "mask")}
        return self._sample

    def write_diagnostics(self, step: int) -> dict:
        from keras_landmarks.evaluation import diagnostics  # noqa: PLC0415

        with averaged_weights(self.model):  # what is saved and exported: the average, if kept
            values = diagnostics.diagnose(self.model, self.sample(), seed=(step, 1))
        for key in ("equivariance_px", "equivariance_percent", "equivariance_ratio", "consistency_ratio",
                    "shape_ratio", "patch_gain", "mean_spread_px", "collapsed", "at_border", "reliance"):
            write_scalar(f"diagnostics/{key}", float(values[key]), step)
        # The verdict as a number for the curves: 1 learning, 0.5 unclear, 0 not learning.
        write_scalar("diagnostics/verdict", {"learning": 1.0, "unclear": 0.5}.get(values["verdict"], 0.0), step)
        self.last_diagnostics = values
        return values

    def on_train_begin(self, logs=None):
        import tensorflow as tf  # noqa: PLC0415  (summaries are TF's file format)

        self._writer = tf.summary.create_file_writer(self.logdir)
        self._last_step = None

    def on_epoch_begin(self, epoch, logs=None):
        self._sums, self._count = {}, 0  # the model's trackers restart every epoch

    def on_train_batch_end(self, batch, logs=None):
        step, logs = current_step(self.model), logs or {}
        if step == self._last_step:
            return  # no update (a float16 loss-scaling skip): nothing new to log
        count = batch + 1
        if step % self.summary_every == 0:
            with self._writer.as_default(step=step):
                for key, mean in logs.items():
                    total = mean * count
                    window = (total - self._sums.get(key, 0.0)) / max(1, count - self._count)
                    self._sums[key] = total
                    name = "total" if key == "loss" else key.removeprefix("loss_")
                    write_scalar(f"loss/{name}", window, step)
                self._count = count
                alpha = keras.ops.convert_to_numpy(self.model.alpha)
                for name, value in zip(self.model.loss_layers, alpha):
                    write_scalar(f"alpha/{name}", float(value), step)
                lr = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
                write_scalar("learning_rate", float(lr), step)
                if self.sample_fn is not None:
                    self.write_diagnostics(step)
        if self.sample_fn is not None and step % self.image_every == 0:
            self.write_images(step)
        self._last_step = step

    def write_images(self, step: int):
        shown = {k: v[: self.max_images] for k, v in self.sample().items() if k in ("image", "future_image")}
        out = self.model(shown, training=False)
        grid = image_grid(shown["image"], shown["future_image"], out["reconstruction"], out["keypoints"])
        with self._writer.as_default(step=step):
            write_image("pairs", grid, step)

    def on_epoch_end(self, epoch, logs=None):
        self._writer.flush()

    def on_train_end(self, logs=None):
        step = self._last_step
        if self.sample_fn is not None and step is not None and step % self.image_every:
            self.write_images(step)  # the final state, when it fell between image steps
        self._writer.flush()


def write_scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar (the ``scalars`` plugin's format) to the default writer.

    Written with ``tf.summary.write`` so it needs no ``tensorboard`` package (TF >= 2.16
    does not install it); ``pip install tensorboard`` only to *view* the logs.
    """
    import tensorflow as tf  # noqa: PLC0415

    tf.summary.write(tag, tf.constant(value, tf.float32), step=step,
                     metadata=_plugin_metadata("scalars", "DATA_CLASS_SCALAR"))


def write_image(tag: str, image: np.ndarray, step: int) -> None:
    """A TensorBoard image (``images`` plugin: ``[width, height, png]`` strings), ``[H, W, 3]`` uint8."""
    import tensorflow as tf  # noqa: PLC0415

    h, w = image.shape[:2]
    tensor = tf.stack([tf.as_string(w), tf.as_string(h), tf.io.encode_png(image)])
    tf.summary.write(tag, tensor, step=step,
                     metadata=_plugin_metadata("images", "DATA_CLASS_BLOB_SEQUENCE"))


def read_summaries(logdir: str) -> dict:
    """Every summary under ``logdir`` (the event files ``write_scalar`` / ``write_image``
    wrote, without the ``tensorboard`` package): ``{tag: {step: numpy value}}``; a scalar is
    a 0-d float32 array, an image ``[width, height, png bytes]`` strings."""
    import glob  # noqa: PLC0415

    import tensorflow as tf  # noqa: PLC0415

    values: dict = {}
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                values.setdefault(v.tag, {})[event.step] = tf.make_ndarray(v.tensor)
    return values


def _plugin_metadata(plugin: str, data_class: str):
    from tensorflow.core.framework import summary_pb2  # noqa: PLC0415

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
        data_class=getattr(summary_pb2, data_class))


def image_grid(source, target, reconstruction, keypoints) -> np.ndarray:
    """``[B*S, 4*S, 3]`` uint8: per row source | target | reconstruction | target + landmarks.

    Args:
      source, target, reconstruction: ``[B, S, S, 3]`` RGB ``[0, 255]`` (clipped).
      keypoints: ``[B, K, 2]`` ``(x, y)`` normalised ``[-1, 1]`` of ``target``.
    """
    def u8(x):
        return np.clip(np.rint(keras.ops.convert_to_numpy(x)), 0, 255).astype(np.uint8)

    target = u8(target)
    drawn = draw_keypoints(target, keras.ops.convert_to_numpy(keypoints))
    rows = np.concatenate([u8(source), target, u8(reconstruction), drawn], axis=2)
    return rows.reshape(-1, *rows.shape[2:])


def draw_keypoints(images: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Copy of ``images`` ``[B, H, W, 3]`` uint8 with filled dots at the keypoints.

    ``keypoints``: ``[B, K, 2]`` ``(x, y)`` normalised ``[-1, 1]`` (pixel-centre convention,
    ``geometry.normalized_to_pixels``). Landmark ``k`` keeps its colour across images
    (``evaluation.pictures.draw_points``, sub-pixel placement).
    """
    h, w = images.shape[1:3]
    pixels = keras.ops.convert_to_numpy(
        geometry.normalized_to_pixels(keras.ops.convert_to_tensor(keypoints, "float32"), (h, w)))
    radius = max(1, min(h, w) // 40)
    return np.stack([pictures.draw_points(im, pts, radius=radius, outline=False) for im, pts in zip(images, pixels)])


__all__ = ["Summaries", "draw_keypoints", "image_grid", "read_summaries", "write_image", "write_scalar"]
