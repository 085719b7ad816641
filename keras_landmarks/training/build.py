"""The compiled model of a run: ``make_optimizer`` and ``build_model``, on any Keras backend.

TensorFlow is imported only on its backend (for the ``tf.distribute`` scope), so a JAX or
PyTorch user can build, ``fit`` and save a ``LandmarkModel`` without it.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

from keras_landmarks.config import LandmarkConfig
from keras_landmarks.model import LandmarkModel


def make_optimizer(cfg: LandmarkConfig) -> keras.optimizers.Adam:
    """Adam with ``lr * rate ** floor(step / decay_steps)`` (official 1e-3, x0.95 per 100k).

    No ``clipnorm`` here: ``LandmarkModel`` owns the clipping at ``cfg.clipnorm`` on every
    backend (``LandmarkModel.compile``).
    """
    schedule = keras.optimizers.schedules.ExponentialDecay(
        cfg.learning_rate, cfg.lr_decay_steps, cfg.lr_decay_rate, staircase=True)
    ema = {"use_ema": True, "ema_momentum": cfg.weight_ema} if cfg.weight_ema else {}
    return keras.optimizers.Adam(schedule, **ema)


@contextlib.contextmanager
def averaged_weights(model):
    """Inside, ``model``'s trainable weights are the optimizer's moving average
    (``cfg.weight_ema``); the raw weights are back on exit. A no-op without the average.

    Keras keeps the average in the optimizer and copies it into the model only at the end
    of ``fit`` (``finalize_variable_values``); saves during training use this instead.
    """
    optimizer = getattr(model, "optimizer", None)
    if not getattr(optimizer, "use_ema", False) or not optimizer.built:
        yield model
        return
    raw = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    optimizer.finalize_variable_values(model.trainable_variables)
    try:
        yield model
    finally:
        for v, value in zip(model.trainable_variables, raw):
            v.assign(value)


def resolve_jit_compile(jit_compile: bool | str | None) -> bool:
    """``"auto"``/``None`` -> XLA on JAX only; ``True``/``False`` as given; else ``ValueError``.

    Measured (``bench/train_step.py``, README "Backends side by side", 2-core AVX-512): on
    JAX, ``jit_compile=False`` runs every op eagerly (34 vs 56 samples/s at the demo's
    step); on a CPU, TensorFlow's XLA (68 vs 157) and ``torch.compile`` (78 vs 88) are slower.
    """
    if jit_compile is None or jit_compile == "auto":
        return keras.config.backend() == "jax"
    if jit_compile not in (True, False):
        raise ValueError(f"jit_compile={jit_compile!r}: use True, False or 'auto'")
    return bool(jit_compile)


def build_model(cfg: LandmarkConfig, *, strategy=None, mixed_precision: str | None = None,
                jit_compile: bool | str = "auto") -> LandmarkModel:
    """A compiled ``LandmarkModel`` with its variables and optimizer state created.

    Built under ``strategy``'s scope (a ``tf.distribute.Strategy``; default: the current
    one; TensorFlow only); ``mixed_precision`` is a Keras dtype policy (``"mixed_float16"``
    wraps the optimizer for loss scaling) used for this model only; the global policy is
    restored afterwards. ``jit_compile``: ``True`` (XLA on TensorFlow and JAX,
    ``torch.compile`` on PyTorch), ``False``, or ``"auto"``/``None`` (``resolve_jit_compile``:
    on for JAX only). Its variables are created on
    one blank ``[1, S, S, 3]`` float32 image (``S = cfg.image_size``).
    """
    previous = keras.mixed_precision.global_policy()
    if mixed_precision not in (None, "none", "float32"):
        keras.mixed_precision.set_global_policy(mixed_precision)
    try:
        with _scope(strategy):
            model = LandmarkModel(cfg)
            model.compile(optimizer=make_optimizer(cfg), jit_compile=resolve_jit_compile(jit_compile))
            blank = np.zeros([1, cfg.image_size, cfg.image_size, 3], "float32")
            model({"image": blank, "future_image": blank})
            model.optimizer.build(model.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


def _scope(strategy):
    if strategy is not None:
        return strategy.scope()
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        return tf.distribute.get_strategy().scope()
    return contextlib.nullcontext()
