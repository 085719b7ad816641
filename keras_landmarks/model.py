"""``LandmarkModel``: conditional image generation through a keypoint bottleneck.

Given a source image ``x`` (appearance) and a target ``x'`` (geometry), the detector
turns ``x'`` into K keypoints, the keypoints become Gaussian maps, and the renderer
draws ``x_hat'`` from Phi(x) and those maps. Training minimises the EMA-normalised
perceptual loss between ``x'`` and ``x_hat'``, a layer of its own
(``losses.perceptual_loss.PerceptualLoss``: the VGG taps, the mask, alpha and its update):

    loss = loss_scale * sum_l e_l / alpha_l,   alpha_l <- rho * alpha_l + (1 - rho) * e_l

Decisions (BUILD.md): alpha is updated *before* it divides the batch's errors (as the
official code does) but is a constant for the gradient (stop-gradient; the official code
lets gradient flow through the current batch's share), and so are the target's features.
Under ``tf.distribute`` the errors are summed across replicas and divided by the *global*
batch, BatchNorm is synchronised and gradients are clipped after the cross-replica sum,
so N replicas make the same update as one device on the same global batch. The model
owns the gradient clipping (``config.clipnorm``, per variable) on every backend: see
``compile``. It trains on every Keras backend (JAX and PyTorch through ``compute_loss``,
see "training" below); TensorFlow is imported only on it.
"""

from __future__ import annotations

import os

import keras
from keras import ops

from keras_landmarks.config import LandmarkConfig
from keras_landmarks.losses import equivariance, normalizer
from keras_landmarks.losses.perceptual_loss import PerceptualLoss, global_means
from keras_landmarks.networks import GaussianMaps, build_detector, build_encoder, build_renderer

# The file a training run keeps its model in (training.rundir lays out the rest of a logdir).
MODEL_FILE = "model.keras"


def model_file(path: str) -> str:
    """The model a path names: ``<path>/model.keras`` for a training logdir, else ``path``
    (what evaluation, export and the apps accept as a model)."""
    return os.path.join(path, MODEL_FILE) if os.path.isdir(path) else path


def load_saved(path: str, hint: str = "") -> keras.Model:
    """The Keras model saved at ``path`` (a ``.keras`` file, or a logdir: ``model_file``),
    loaded without its optimizer. ``ValueError`` naming the file when it is missing (``hint``
    appended to say what else ``path`` may be) or unreadable."""
    file = model_file(path)
    if not os.path.isfile(file):
        raise ValueError(f"{file} does not exist: pass a .keras file or a training logdir "
                         f"containing model.keras{hint}")
    try:
        return keras.saving.load_model(file, compile=False)
    except Exception as e:  # noqa: BLE001 (zip, h5 and json errors all mean "unreadable")
        raise ValueError(f"{file} is not a readable Keras model ({type(e).__name__}: {str(e)[:300]}); "
                         "re-save it or point --model at another checkpoint") from None


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
      perceptual_loss: the loss layer (``PerceptualLoss``); ``alpha`` and ``loss_layers``
        are its ``alpha`` (``[L]`` float32 non-trainable EMA normalisers) and ``terms``.
    """

    def __init__(self, config: LandmarkConfig | dict | None = None, _from_file: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = LandmarkConfig.from_dict(config)
        self.config = config or LandmarkConfig()
        cfg = self.config
        self.appearance_encoder = build_encoder(cfg, name="appearance_encoder")
        self.detector = build_detector(cfg)
        self.renderer = build_renderer(cfg)
        # float32 under any mixed-precision policy: the maps are the detector's only gradient
        # path (BUILD.md); the renderer casts them to its compute dtype after.
        self.gaussian_maps = GaussianMaps(
            cfg.heatmap_size, cfg.heatmap_size, cfg.gaussian_sigma, cfg.gaussian_mode,
            dtype="float32", name="gaussian_maps",
        )
        self.perceptual_loss = PerceptualLoss.for_config(cfg, name="perceptual_loss", _from_file=_from_file)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.term_trackers = [keras.metrics.Mean(name=f"loss_{n}") for n in self.loss_layers]
        # The optional equivariance term (config.equivariance_weight; losses.equivariance):
        # created only when on, so files of models without it keep their layout.
        self.equivariance_seed = self.equivariance_tracker = None
        if cfg.equivariance_weight:
            self.equivariance_seed = keras.random.SeedGenerator(cfg.seed + 1, name="equivariance_seed")
            self.equivariance_tracker = keras.metrics.Mean(name="loss_equivariance")

    @property
    def alpha(self):
        """``[L]`` float32 non-trainable EMA normalisers (``perceptual_loss.alpha``)."""
        return self.perceptual_loss.alpha

    @property
    def loss_layers(self) -> tuple[str, ...]:
        """Names of the ``L`` loss terms (``perceptual_loss.terms``)."""
        return self.perceptual_loss.terms

    @property
    def metrics(self):
        extra = [self.equivariance_tracker] if self.equivariance_tracker is not None else []
        return [self.loss_tracker, *self.term_trackers, *extra]

    def call(self, inputs, training=False):
        """Training with ``config.equivariance_weight`` also returns ``"equivariance_errors"``:
        ``[B]`` float32 (``losses.equivariance.per_example_errors``); the detector then sees
        the targets and their warped copies as one ``[2B]`` batch."""
        target = inputs["future_image"]
        extra = {}
        if training and self.equivariance_seed is not None:
            matrices = equivariance.random_similarities(self.equivariance_seed, ops.shape(target)[0],
                                                        self.config.equivariance_warp)
            both = ops.concatenate([target, equivariance.warp_images(target, matrices)], axis=0)
            keypoints, warped = ops.split(self.detector(both, training=training)["keypoints"], 2, axis=0)
            extra["equivariance_errors"] = equivariance.per_example_errors(keypoints, warped, matrices)
        else:
            keypoints = self.detector(target, training=training)["keypoints"]
        appearance = self.appearance_encoder(inputs["image"], training=training)
        maps = self.gaussian_maps(keypoints)
        reconstruction = self.renderer([appearance, maps], training=training)
        return {"reconstruction": reconstruction, "keypoints": keypoints, **extra}

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
    # On every backend Keras' own train step calls ``compute_loss``, which runs the loss layer
    # (it updates alpha, a non-trainable variable like BatchNorm's moving statistics: JAX's
    # stateless step carries its new value) and the trackers. TensorFlow keeps its own
    # ``train_step`` for ``tf.distribute``: gradients clipped after the cross-replica sum. On
    # JAX and PyTorch the optimizer clips at ``config.clipnorm`` (``compile`` sees to it); a
    # JAX ``DataParallel`` step sees the global batch and the global gradient, so the
    # semantics are the same.

    def compile(self, optimizer="rmsprop", **kwargs):
        """``keras.Model.compile``; the model owns the gradient clipping on every backend.

        Each variable's gradient is clipped to norm ``config.clipnorm`` (0: no clipping): on
        TensorFlow by ``train_step`` after the cross-replica sum, on JAX and PyTorch by the
        optimizer, whose ``clipnorm`` is set here (a plain ``keras.optimizers.Adam()`` clips as
        the config says). Raises ``ValueError`` for an optimizer that clips otherwise
        (``clipvalue``, ``global_clipnorm`` or another ``clipnorm``): set ``config.clipnorm``.
        """
        optimizer = keras.optimizers.get(optimizer)
        _own_clipping(optimizer, self.config.clipnorm)
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # Keras skips this for a model with its own compile(); ours takes Keras' arguments.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def make_train_function(self, force=False):
        self.perceptual_loss.load_feature_weights()  # a loaded model reads them when first needed
        return super().make_train_function(force)

    def make_test_function(self, force=False):
        self.perceptual_loss.load_feature_weights()
        return super().make_test_function(force)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The batch's EMA-normalised loss, the equivariance term when ``y_pred`` has its
        errors (training with ``config.equivariance_weight``), plus the weight decay (a
        scalar, this replica's share of the global mean); in training, ``alpha`` is updated
        first and then divides the errors."""
        data = _unpack(x)
        out = self.perceptual_loss(data["future_image"], y_pred["reconstruction"], data.get("mask"),
                                   training=training)
        loss = out["loss"]
        equivariance_term = None
        if "equivariance_errors" in y_pred:
            errors = y_pred["equivariance_errors"]
            count, means = global_means([errors])
            weight = self.config.equivariance_weight * self.perceptual_loss.loss_scale
            equivariance_term = weight * means[0]
            loss = loss + weight * ops.sum(errors) / count  # this replica's share
        self._update_trackers(out["errors"], out["alpha"], equivariance_term)
        if self.losses:  # weight decay: every replica adds it, so each adds 1/N of it.
            return loss + ops.sum(ops.stack(self.losses)) / _num_replicas()
        return loss

    if keras.config.backend() == "tensorflow":
        def train_step(self, data):
            import tensorflow as tf  # noqa: PLC0415

            data = _unpack(data)
            with tf.GradientTape() as tape:
                out = self(data, training=True)
                loss = self.compute_loss(x=data, y_pred=out, training=True)
                scaled = self.optimizer.scale_loss(loss)
            grads = self._clip_global_gradients(tape.gradient(scaled, self.trainable_weights))
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {m.name: m.result() for m in self.metrics}

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

    def _update_trackers(self, batch_errors, alpha, equivariance_term=None):
        terms = normalizer.loss_terms(batch_errors, alpha, self.perceptual_loss.loss_scale)
        total = ops.sum(terms)
        if equivariance_term is not None:
            self.equivariance_tracker.update_state(equivariance_term)
            total = total + equivariance_term
        self.loss_tracker.update_state(total)
        for i, tracker in enumerate(self.term_trackers):
            tracker.update_state(terms[i])

    # -- serialization ----------------------------------------------------------------

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        # The frozen VGG is not in the file: rebuilt from the config (PerceptualLoss docstring).
        return cls(config=config.pop("config"), _from_file=True, **config)

    def load_own_variables(self, store):
        """Files written before issue 28 hold ``alpha`` as the model's own (only) variable:
        it goes into ``perceptual_loss``, whose own entry in those files is empty."""
        if len(store.keys()) == 1 and not self._trainable_variables + self._non_trainable_variables:
            self.perceptual_loss.alpha.assign(store["0"])
            self.perceptual_loss._alpha_from_model_entry = True
            return
        super().load_own_variables(store)


def _unpack(data) -> dict:
    """``fit`` may hand us ``(x,)`` or ``(x, None, None)``: keep the input dict."""
    if isinstance(data, (tuple, list)):
        data = data[0]
    return data


def _own_clipping(optimizer, clipnorm: float) -> None:
    """Make ``optimizer`` (or the one a ``LossScaleOptimizer`` wraps) clip each variable's
    gradient at ``clipnorm`` on JAX and PyTorch; on TensorFlow ``train_step`` clips. An
    optimizer that already clips at ``clipnorm`` is kept (on TensorFlow clipping again at the
    same bound changes nothing); any other clipping is refused."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    clip = clipnorm or None
    own = {"clipnorm": inner.clipnorm, "global_clipnorm": inner.global_clipnorm, "clipvalue": inner.clipvalue}
    others = {k: v for k, v in own.items() if v and not (k == "clipnorm" and v == clip)}
    if others:
        raise ValueError(
            f"LandmarkModel clips each variable's gradient at config.clipnorm={clipnorm} itself, on every "
            f"backend; compile it with an optimizer without {', '.join(f'{k}={v}' for k, v in others.items())} "
            "(set LandmarkConfig(clipnorm=...) instead).")
    if keras.config.backend() != "tensorflow":
        inner.clipnorm = clip


def _num_replicas() -> int:
    """Replicas of the ``tf.distribute`` strategy in force (1 on the other backends)."""
    if keras.config.backend() != "tensorflow":
        return 1
    import tensorflow as tf  # noqa: PLC0415

    return tf.distribute.get_strategy().num_replicas_in_sync
