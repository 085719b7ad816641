"""``PerceptualLoss``: the EMA-normalised reconstruction loss as one Keras layer (PAPER.md "Loss").

The layer owns everything the loss needs: the frozen feature network (the VGG-19 taps, none for
the pixel losses), the loss mask's resizing to each tap, the normalisers ``alpha`` (a
non-trainable weight) and their EMA update. ``LandmarkModel`` composes it, as keras-io's
``neural_style_transfer.py`` and ``vae.py`` compose theirs; ``evaluation.diagnostics`` calls it.
For terms ``l`` and the examples ``b`` of a batch (of the *global* batch under ``tf.distribute``):

    e_l[b]   = mean_{h,w,c}(mask_l * (G_l(x') - G_l(x_hat'))^2)       (perceptual.per_example_errors)
    alpha_l <- rho * alpha_l + (1 - rho) * mean_b e_l[b]              (training only, before it divides)
    loss     = loss_scale * sum_b sum_l e_l[b] / alpha_l / B_global   (this replica's share)

Gradient: the target ``x'`` enters under ``stop_gradient`` (its features are constants, so no
backend records their pass), and ``alpha`` is a constant (the official code lets the current
batch's share through; BUILD.md).

Saving: only ``alpha`` is saved. The frozen network is rebuilt from the config (``perceptual``,
``image_size``, ``seed``) instead of being written into every ``model.keras`` and checkpoint:
a layer loaded from a file reads its weights from where a new one would (Keras' cache, the
``vgg19:`` file, the seed), and if they are not on this machine it still loads (the detector
needs no VGG) and reads them when the loss is first needed (``load_feature_weights``, which
``LandmarkModel``'s ``fit``/``evaluate`` call; it may download the ImageNet file).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_landmarks.config import OFFICIAL_ALPHA_DECAY, OFFICIAL_ALPHA_INIT, PERCEPTUAL_LAYERS, PIXEL_LOSSES
from keras_landmarks.losses import normalizer
from keras_landmarks.losses.perceptual import (feature_network, features, per_example_errors, target_features,
                                               weights_on_disk)

# Attributes Keras' saving walk does not see (it lists a layer's children with ``dir``): the
# frozen network is rebuilt from the config, not saved.
_NOT_SAVED = ("feature_extractor",)


@keras.saving.register_keras_serializable(package="keras_landmarks")
class PerceptualLoss(keras.layers.Layer):
    """``call(target, reconstruction, mask=None, training=False)`` -> ``{"loss", "errors", "alpha"}``.

    Args (``LandmarkConfig`` fields of the same names): ``perceptual`` (``"vgg19_imagenet"``,
    ``"vgg19_random"``, ``"vgg19:<file>"``, ``"l2"``, ``"l2_grad"``), ``image_size`` (S),
    ``alpha_init`` (one per ``PERCEPTUAL_LAYERS`` entry), ``alpha_decay`` (rho), ``loss_scale``,
    ``seed`` (of ``"vgg19_random"``). Its dtype is float32 under any mixed-precision policy (the
    feature network runs in the policy it was built under).

    Call args:
      target, reconstruction: ``[B, S, S, 3]`` float RGB ``[0, 255]``: ``x'`` and ``x_hat'``.
      mask: ``[B, S, S, 1]`` in ``[0, 1]`` (1 = counts; default all ones), area-averaged to
        each tap's resolution.
      training: update ``alpha`` (before it divides, as officially) or not.
    Returns:
      ``{"loss": [] float32 this replica's share of the global-batch mean, "errors": [L]
      global-batch mean e_l, "alpha": [L] the alpha that divided them}``.

    Attributes:
      terms: the ``L`` term names (``PERCEPTUAL_LAYERS``, or ``PIXEL_LOSSES[perceptual]``).
      alpha: ``[L]`` float32 non-trainable EMA normalisers (1 and frozen for the pixel losses).
      feature_extractor: the frozen network (``perceptual.feature_network``) or ``None``.
    """

    def __init__(self, perceptual: str = "vgg19_imagenet", image_size: int = 128,
                 alpha_init=OFFICIAL_ALPHA_INIT, alpha_decay: float = OFFICIAL_ALPHA_DECAY,
                 loss_scale: float = 1000.0, seed: int = 0, **kwargs):
        from_file = kwargs.pop("_from_file", False)  # LandmarkModel.from_config: see the module docstring
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.perceptual, self.image_size, self.seed = perceptual, int(image_size), int(seed)
        self.alpha_init = tuple(float(a) for a in alpha_init)
        self.alpha_decay, self.loss_scale = float(alpha_decay), float(loss_scale)
        self.terms = PIXEL_LOSSES.get(perceptual, PERCEPTUAL_LAYERS)
        self._pending = from_file and not weights_on_disk(perceptual)  # read by load_feature_weights
        self.feature_extractor = feature_network(perceptual, self.image_size, self.seed,
                                                 weights=None if self._pending else "from_config")
        self.alpha = self.add_weight(
            shape=(len(self.terms),), trainable=False, dtype="float32", aggregation="only_first_replica",
            initializer=keras.initializers.Constant(normalizer.initial_alpha(perceptual, self.alpha_init)),
            name="alpha")
        self._rho = normalizer.decay(perceptual, self.alpha_decay)
        self._alpha_from_model_entry = False  # set by LandmarkModel.load_own_variables (old files)
        self.built = True  # all its state exists: nothing depends on the inputs' shapes

    @classmethod
    def for_config(cls, cfg, **kwargs) -> "PerceptualLoss":
        """The loss of a ``LandmarkConfig``."""
        return cls(cfg.perceptual, cfg.image_size, cfg.alpha_init, cfg.alpha_decay, cfg.loss_scale, cfg.seed,
                   **kwargs)

    def call(self, target, reconstruction, mask=None, training=False):
        if self._pending:
            raise RuntimeError(
                f"PerceptualLoss(perceptual={self.perceptual!r}) was loaded from a file on a machine where "
                "its frozen network's weights were not found; call its load_feature_weights() (fit and "
                "evaluate do) before computing the loss.")
        if mask is None:
            mask = ops.ones_like(target[..., :1], dtype="float32")
        errors = per_example_errors(target_features(self.feature_extractor, target),
                                    features(self.feature_extractor, reconstruction), mask, self.terms)
        count, batch_errors = global_means(errors)
        if training:
            alpha = normalizer.updated_alpha(self.alpha, batch_errors, self._rho)
            self.alpha.assign(alpha)
        else:
            alpha = normalizer.current_alpha(self.alpha, batch_errors)
        loss = ops.sum(normalizer.normalized_loss(errors, alpha, self.loss_scale)) / count
        return {"loss": loss, "errors": batch_errors, "alpha": alpha}

    def load_feature_weights(self) -> None:
        """Read the frozen network's weights if they were not found when the layer was loaded
        (a no-op otherwise). Raises ``feature_network``'s errors, which say what to do."""
        if self._pending:
            found = feature_network(self.perceptual, self.image_size, self.seed)
            self.feature_extractor.set_weights(found.get_weights())
            self._pending = False

    def compute_output_shape(self, *args, **kwargs):
        return {"loss": (), "errors": (len(self.terms),), "alpha": (len(self.terms),)}

    def load_own_variables(self, store):
        # Files before issue 28 keep alpha as the model's own variable: LandmarkModel.load_own_variables
        # read it into this layer, and this layer's entry is empty.
        if not len(store.keys()) and self._alpha_from_model_entry:
            return
        super().load_own_variables(store)

    def __dir__(self):
        return [name for name in super().__dir__() if name not in _NOT_SAVED]

    def get_config(self):
        return {**super().get_config(), "perceptual": self.perceptual, "image_size": self.image_size,
                "alpha_init": list(self.alpha_init), "alpha_decay": self.alpha_decay,
                "loss_scale": self.loss_scale, "seed": self.seed}


def global_means(errors: list):
    """``(count, means)`` of ``errors``, a list of ``L`` per-example ``[B]`` float32 errors:
    ``count`` the *global* batch size (a ``[]`` float32; all replicas of a ``tf.distribute``
    strategy, a JAX ``DataParallel`` batch is global already), ``means`` ``[L]`` float32."""
    local = ops.stack([ops.sum(e) for e in errors])
    count = ops.cast(ops.shape(errors[0])[0], "float32")
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            local, count = ctx.all_reduce("sum", [local, count])
    return count, local / count


__all__ = ["PerceptualLoss", "global_means"]
