"""``LandmarkModel``: conditional image generation through a keypoint bottleneck.

Given a source image ``x`` (appearance) and a target ``x'`` (geometry), the detector
turns ``x'`` into K keypoints, the keypoints become Gaussian maps, and the renderer
draws ``x_hat'`` from Phi(x) and those maps. Training minimises the EMA-normalised
perceptual loss between ``x'`` and ``x_hat'`` (PAPER.md "Loss"):

    loss = loss_scale * sum_l e_l / alpha_l,   alpha_l <- rho * alpha_l + (1 - rho) * e_l

Decisions (BUILD.md): alpha is updated *before* it divides the batch's errors (as the
official code does) but is a constant for the gradient (stop-gradient; the official code
lets gradient flow through the current batch's share). Under ``tf.distribute`` the
errors are summed across replicas and divided by the *global* batch, BatchNorm is
synchronised and gradients are clipped after the cross-replica sum (``config.clipnorm``;
compile the optimizer *without* ``clipnorm``), so N replicas make the same update as one
device on the same global batch. The model trains on every Keras backend (JAX and
PyTorch through ``compute_loss``, see "training" below); TensorFlow is imported only on it.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_landmarks.config import LandmarkConfig
from keras_landmarks.losses import normalizer, perceptual
from keras_landmarks.networks import GaussianMaps, build_detector, build_encoder, build_renderer


@keras.saving.register_keras_serializable(package="keras_landmarks")
class LandmarkModel(keras.Model):
    """Appearance encoder + keypoint detector + renderer + perceptual loss.

    Inputs to ``call`` / ``fit``: a dict with
      ``image``: ``[B, S, S, 3]`` float32 RGB ``[0, 255]``, the source x (appearance);
      ``future_image``: same shape, the target x' (geometry);
      ``mask`` (optional, training only): ``[B, S, S, 1]`` in ``[0, 1]``, loss weight of
      the target's pixels (1 everywhere when absent).
    ``call`` returns ``{"reconstruction": [B, S, S, 3] float32 [0, 255] scale,
    "keypoints": [B, K, 2] float32 (x, y) normalised [-1, 1] of the target}``.

    Attributes:
      detector: the deployable ``keras.Model`` image -> ``{"keypoints", "score_maps"}``.
      alpha: ``[L]`` float32 non-trainable EMA normalisers, one per ``loss_layers``.
    """

    def __init__(self, config: LandmarkConfig | dict | None = None, _pretrained: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = LandmarkConfig.from_dict(config)
        self.config = config or LandmarkConfig()
        cfg = self.config
        self.loss_layers = perceptual.loss_layers(cfg)
        self.appearance_encoder = build_encoder(cfg, name="appearance_encoder")
        self.detector = build_detector(cfg)
        self.renderer = build_renderer(cfg)
        # float32 under any mixed-precision policy: the maps are the detector's only gradient
        # path (BUILD.md); the renderer casts them to its compute dtype after.
        self.gaussian_maps = GaussianMaps(
            cfg.heatmap_size, cfg.heatmap_size, cfg.gaussian_sigma, cfg.gaussian_mode,
            dtype="float32", name="gaussian_maps",
        )
        self.feature_extractor = perceptual.build_feature_extractor(
            cfg, weights="from_config" if _pretrained else None
        )
        self.alpha = self.add_weight(
            shape=(len(self.loss_layers),),
            initializer=keras.initializers.Constant(normalizer.initial_alpha(cfg.perceptual, cfg.alpha_init)),
            trainable=False,
            dtype="float32",
            aggregation="only_first_replica",
            name="alpha",
        )
        self._alpha_decay = normalizer.decay(cfg.perceptual, cfg.alpha_decay)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = [keras.metrics.Mean(name=f"loss_{n}") for n in self.loss_layers]

    @property
    def metrics(self):
        return [self.loss_tracker, *self.term_trackers]

    def call(self, inputs, training=False):
        detected = self.detector(inputs["future_image"], training=training)
        keypoints = detected["keypoints"]
        appearance = self.appearance_encoder(inputs["image"], training=training)
        maps = self.gaussian_maps(keypoints)
        reconstruction = self.renderer([appearance, maps], training=training)
        return {"reconstruction": reconstruction, "keypoints": keypoints}

    # -- the generator as a feature ---------------------------------------------------

    def generate(self, source_images, keypoints):
        """Redraw ``source_images`` with the geometry of ``keypoints`` (inference mode).

        Args:
          source_images: ``[B, S, S, 3]`` float32 RGB ``[0, 255]``: the appearance.
          keypoints: ``[B, K, 2]`` float32 ``(x, y)`` normalised ``[-1, 1]`` (pixel-centre
            convention, ``geometry``): where the K parts should be.
        Returns:
          ``[B, S, S, 3]`` float32 on the ``[0, 255]`` scale (not clipped).
        """
        appearance = self.appearance_encoder(source_images, training=False)
        maps = self.gaussian_maps(ops.convert_to_tensor(keypoints, "float32"))
        return self.renderer([appearance, maps], training=False)

    def transfer(self, source_images, driving_images):
        """``generate(source_images, detector(driving_images))``: the source's appearance in
        the pose of the driving images, both ``[B, S, S, 3]`` float32 ``[0, 255]``."""
        return self.generate(source_images, self.detector(driving_images, training=False)["keypoints"])

    # -- training ---------------------------------------------------------------------
    # On every backend Keras' own train step calls ``compute_loss``, which updates alpha
    # (a non-trainable variable, like BatchNorm's moving statistics: JAX's stateless step
    # carries its new value) and the trackers. TensorFlow keeps its own ``train_step`` for
    # ``tf.distribute``: gradients clipped after the cross-replica sum. On JAX and PyTorch
    # the optimizer clips (``training.make_optimizer``); a JAX ``DataParallel`` step sees
    # the global batch and the global gradient, so the semantics are the same.

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The batch's EMA-normalised loss (a scalar, this replica's share of the global
        mean); in training, ``alpha`` is updated first and then divides the errors."""
        loss, batch_errors, alpha = self._loss(_unpack(x), y_pred["reconstruction"], training)
        if training:
            self.alpha.assign(alpha)
        self._update_trackers(batch_errors, alpha)
        return loss

    def _loss(self, data: dict, reconstruction, training: bool):
        """``(loss, [L] global-batch mean errors, [L] alpha used)`` of one batch."""
        target_features = perceptual.features(self.feature_extractor, data["future_image"])  # no gradient needed
        predicted_features = perceptual.features(self.feature_extractor, reconstruction)
        errors = perceptual.per_example_errors(
            target_features, predicted_features, _mask_of(data), self.loss_layers)
        global_batch, batch_errors = _global_means(errors)
        alpha = (normalizer.updated_alpha(self.alpha, batch_errors, self._alpha_decay) if training
                 else ops.convert_to_tensor(self.alpha))
        per_example = normalizer.normalized_loss(errors, alpha, self.config.loss_scale)
        # This replica's share of the global-batch mean: replicas' gradients are summed.
        loss = ops.sum(per_example) / global_batch
        if self.losses:  # weight decay: every replica adds it, so each adds 1/N of it.
            loss = loss + ops.sum(ops.stack(self.losses)) / _num_replicas()
        return loss, batch_errors, alpha

    if keras.config.backend() == "tensorflow":
        def train_step(self, data):
            import tensorflow as tf  # noqa: PLC0415

            data = _unpack(data)
            with tf.GradientTape() as tape:
                out = self(data, training=True)
                loss, batch_errors, alpha = self._loss(data, out["reconstruction"], training=True)
                scaled = self.optimizer.scale_loss(loss)
            self.alpha.assign(alpha)
            grads = self._clip_global_gradients(tape.gradient(scaled, self.trainable_weights))
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return self._update_trackers(batch_errors, alpha)

        def _clip_global_gradients(self, grads):
            """Clip each variable's *global* gradient to norm ``config.clipnorm``.

            Keras' optimizer ``clipnorm`` clips each replica's partial gradient before the
            cross-replica sum (Keras 3.15), so N replicas would not match one device. Here
            the sum comes first; the optimizer then sums ``1/N`` of the clipped gradient back
            to it. Gradients carry the loss-scale factor (mixed_float16), so the bound does too.
            """
            import tensorflow as tf  # noqa: PLC0415

            clip = self.config.clipnorm
            if not clip:
                return grads
            n = _num_replicas()
            if n > 1:
                grads = tf.distribute.get_replica_context().all_reduce("sum", grads)
            bound = clip * ops.cast(self.optimizer.scale_loss(1.0), "float32")
            grads = [None if g is None else tf.clip_by_norm(g, ops.cast(bound, g.dtype)) for g in grads]
            return grads if n == 1 else [None if g is None else g / n for g in grads]

    def _update_trackers(self, batch_errors, alpha):
        terms = normalizer.loss_terms(batch_errors, alpha, self.config.loss_scale)
        self.loss_tracker.update_state(ops.sum(terms))
        for i, tracker in enumerate(self.term_trackers):
            tracker.update_state(terms[i])
        return {m.name: m.result() for m in self.metrics}

    # -- serialization ----------------------------------------------------------------

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        # Weights (VGG included) come from the saved file: don't look for pretrained ones.
        return cls(config=config.pop("config"), _pretrained=False, **config)


def _unpack(data) -> dict:
    """``fit`` may hand us ``(x,)`` or ``(x, None, None)``: keep the input dict."""
    if isinstance(data, (tuple, list)):
        data = data[0]
    return data


def _mask_of(data: dict):
    if "mask" in data:
        return data["mask"]
    image = data["future_image"]
    return ops.ones_like(image[..., :1], dtype="float32")


def _global_means(errors: list):
    """Global batch size and ``[L]`` mean errors over the *global* batch (all replicas of a
    ``tf.distribute`` strategy; a JAX ``DataParallel`` batch is global already)."""
    local = ops.stack([ops.sum(e) for e in errors])
    count = ops.cast(ops.shape(errors[0])[0], "float32")
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            local, count = ctx.all_reduce("sum", [local, count])
    return count, local / count


def _num_replicas() -> int:
    """Replicas of the ``tf.distribute`` strategy in force (1 on the other backends)."""
    if keras.config.backend() != "tensorflow":
        return 1
    import tensorflow as tf  # noqa: PLC0415

    return tf.distribute.get_strategy().num_replicas_in_sync
