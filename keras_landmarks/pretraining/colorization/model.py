"""Self-supervised colorization network: a plain VGG-19 trunk that sees only lightness.

Pre-training the perceptual network without labels (``trainers/pretrain_colorization.py``).
The formulation is Zhang, Isola, Efros (ECCV 2016): classify each pixel's ab colour among
the ``Q`` in-gamut bins of ``lab``, soft targets, class-rebalanced soft
cross-entropy. The predictor sits on hypercolumns (Larsson et al. 2016/2017): the features
the perceptual loss taps, ``block{1..5}_conv2``, brought to 1/4 of the image resolution
(average pooling or bilinear upsampling), layer-normalised per block, concatenated, then a
1x1 conv (``hidden`` ReLU units) and a 1x1 conv to ``Q`` logits. Every tapped layer so
gets a direct training signal.

**Lightness in, a plain RGB VGG-19 out.** The trunk is ``VGGPreprocess`` (RGB -> caffe BGR,
mean-subtracted) + ``keras.applications.VGG19(include_top=False)``, exactly as
``perceptual.build_feature_extractor`` builds it, so the trained trunk's weights drop into
the perceptual loss unchanged. ``block1_conv1``'s kernel ``W [3, 3, 3, 64]`` (BGR input
channels) is constrained (``LumaTiedKernel``, at initialisation and after every update) to
``W[:, :, c, :] = lambda_c V`` with ``lambda`` the Rec. 601 luma weights in BGR order
(0.114, 0.587, 0.299). Then, per pixel and so also at zero-padded borders,
``sum_c W_c (bgr_c - mean_c) = V (luma - sum_c lambda_c mean_c)``: the trunk's features of
an RGB image *equal* its features of the grey image (luma in all three channels), by
construction. So the network is fed RGB images but sees only their lightness; the
lightness is Rec. 601 luma (linear in RGB, so it folds exactly into the first conv), the
targets are the CIE Lab ab of the same images. A perceptual loss built on these weights
compares grey-level features, as the official code's colorization VGG did.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_landmarks.losses.perceptual import PERCEPTUAL_LAYERS, VGGPreprocess
from keras_landmarks.pretraining.colorization import lab

TAPS = PERCEPTUAL_LAYERS[1:]  # block1_conv2 ... block5_conv2, the perceptual loss's layers
OUTPUT_STRIDE = 4  # the logits are at 1/4 of the image resolution
LUMA_BGR = tuple(reversed(lab.LUMA_RGB))  # VGGPreprocess feeds BGR to block1_conv1
TIED_LAYER = "block1_conv1"


@keras.saving.register_keras_serializable(package="keras_landmarks")
class LumaTiedKernel(keras.constraints.Constraint):
    """Least-squares projection of a conv kernel ``[kh, kw, C, F]`` onto
    ``{W : W[:, :, c, :] = channel_weights[c] * V}``: ``V = sum_c l_c W_c / sum_c l_c^2``.

    The conv then sees only ``sum_c l_c x_c`` of its input (here: luma, ``LUMA_BGR``).
    """

    def __init__(self, channel_weights=LUMA_BGR):
        self.channel_weights = tuple(float(c) for c in channel_weights)

    def __call__(self, w):
        lam = ops.reshape(ops.convert_to_tensor(self.channel_weights, w.dtype), (1, 1, -1, 1))
        v = ops.sum(w * lam, axis=2, keepdims=True) / ops.sum(lam * lam)
        return v * lam

    def get_config(self):
        return {"channel_weights": list(self.channel_weights)}


def build_trunk(image_size: int, seed: int = 0) -> keras.Model:
    """The VGG-19 trunk, RGB ``[B, S, S, 3]`` in ``[0, 255]`` -> ``block5_pool``.

    Built like ``perceptual.build_feature_extractor`` (``VGGPreprocess`` named
    ``vgg_preprocess``, then ``VGG19(include_top=False, input_tensor=...)``), so
    ``save_weights`` of this model loads there. Kernels are drawn He-normal from ``seed``
    (a plain 16-conv stack without BatchNorm trains from scratch with it), biases zero,
    and ``block1_conv1`` carries the ``LumaTiedKernel`` constraint, already applied.
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = VGGPreprocess(name="vgg_preprocess")(inputs)
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_tensor=x)
    for i, layer in enumerate(vgg.layers):
        if isinstance(layer, keras.layers.Conv2D):
            layer.kernel.assign(keras.initializers.HeNormal(seed=seed * 1000 + i)(layer.kernel.shape))
            layer.bias.assign(ops.zeros(layer.bias.shape))
    # block5_conv3/conv4 feed no tap: they get no gradient and stay at their initial values.
    for layer in vgg.layers[[l.name for l in vgg.layers].index(TAPS[-1]) + 1:]:
        layer.trainable = False
    kernel = vgg.get_layer(TIED_LAYER).kernel
    kernel.constraint = LumaTiedKernel()
    kernel.assign(kernel.constraint(kernel))
    return vgg


def build_head(trunk: keras.Model, image_size: int, hidden: int, num_bins: int) -> keras.Model:
    """Hypercolumn colorization head: trunk input -> logits ``[B, S/4, S/4, Q]`` float32."""
    size = image_size // OUTPUT_STRIDE
    columns = []
    for name in TAPS:
        x = trunk.get_layer(name).output
        side = x.shape[1]
        if side > size:
            x = keras.layers.AveragePooling2D(side // size, name=f"pool_{name}")(x)
        elif side < size:
            x = keras.layers.UpSampling2D(size // side, interpolation="bilinear", name=f"up_{name}")(x)
        columns.append(keras.layers.LayerNormalization(name=f"norm_{name}")(x))
    x = keras.layers.Concatenate(name="hypercolumn")(columns)
    x = keras.layers.Conv2D(hidden, 1, activation="relu", name="head_hidden")(x)
    logits = keras.layers.Conv2D(num_bins, 1, dtype="float32", name="head_logits")(x)
    return keras.Model(trunk.inputs[0], logits, name="colorizer")


def target_ab(images):
    """The ab the logits predict: Lab ab of RGB ``[B, S, S, 3]`` averaged over 4x4 blocks,
    ``[B, S/4, S/4, 2]`` float32."""
    ab = lab.rgb_to_lab(ops.cast(images, "float32"))[..., 1:]
    return ops.average_pool(ab, OUTPUT_STRIDE, strides=OUTPUT_STRIDE, padding="valid")


@keras.saving.register_keras_serializable(package="keras_landmarks")
class ColorizationModel(keras.Model):
    """VGG-19 trunk + hypercolumn head, trained by ``fit`` on batches of RGB images.

    ``call(images [B, S, S, 3] RGB [0, 255])`` -> logits ``[B, S/4, S/4, Q]``. ``fit``
    takes a dataset of image batches (no labels): the targets are the images' own Lab ab.
    ``class_weights`` (non-trainable, saved with the weights) are the rebalancing weights;
    set them with ``set_prior`` before training (all ones: no rebalancing).

    Args:
      image_size: side ``S``, a power of two >= 32 (VGG-19 halves it five times).
      hidden: units of the head's hidden 1x1 conv.
      seed: seed of the weight initialisation.
    """

    def __init__(self, image_size: int, hidden: int = 256, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if image_size < 32 or image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 32, got {image_size}")
        self.image_size, self.hidden, self.seed = image_size, hidden, seed
        self.bins = lab.ab_bins()
        self.trunk = build_trunk(image_size, seed)
        self.net = build_head(self.trunk, image_size, hidden, len(self.bins))
        self.features = keras.Model(self.trunk.inputs[0], {n: self.trunk.get_layer(n).output for n in TAPS},
                                    name="vgg19_features")
        self.class_weights = self.add_weight(shape=(len(self.bins),), initializer="ones",
                                             trainable=False, name="class_weights")
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, images, training=False):
        return self.net(images, training=training)

    def set_prior(self, prior) -> None:
        """Class-rebalancing weights from the smoothed bin distribution ``p~`` ``[Q]``."""
        self.class_weights.assign(lab.rebalance_weights(prior).astype(np.float32))

    def colorization_loss(self, images, logits):
        """Mean over pixels of ``w_{q*} * -sum_q z_q log p_q`` (``z``: soft targets of the
        images' ab, area-averaged to the logits' resolution; ``q*``: the nearest bin)."""
        indices, weights = lab.soft_encode(target_ab(images), self.bins)
        log_p = tf.nn.log_softmax(ops.cast(logits, "float32"), axis=-1)
        cross_entropy = -ops.sum(weights * tf.gather(log_p, indices, batch_dims=3), axis=-1)
        return ops.mean(ops.take(self.class_weights, indices[..., 0]) * cross_entropy)

    def train_step(self, data):
        images = keras.utils.unpack_x_y_sample_weight(data)[0]  # a bare batch, or (x,)
        with tf.GradientTape() as tape:
            loss = self.colorization_loss(images, self(images, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)  # also applies LumaTiedKernel
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        images = keras.utils.unpack_x_y_sample_weight(data)[0]
        self.loss_tracker.update_state(self.colorization_loss(images, self(images, training=False)))
        return {"loss": self.loss_tracker.result()}

    def colorize(self, images, temperature: float = lab.ANNEAL_TEMPERATURE):
        """RGB ``[B, S, S, 3]`` in ``[0, 255]``: the images' own L with the predicted ab
        (annealed mean, bilinearly upsampled from 1/4 resolution)."""
        images = ops.cast(images, "float32")
        ab = lab.annealed_mean(self(images, training=False), self.bins, temperature)
        ab = ops.image.resize(ab, images.shape[1:3], interpolation="bilinear")
        return lab.lab_to_rgb(ops.concatenate([lab.rgb_to_lab(images)[..., :1], ab], axis=-1))

    def get_config(self):
        return {**super().get_config(), "image_size": self.image_size, "hidden": self.hidden,
                "seed": self.seed}


def save_trunk(model: ColorizationModel, path: str) -> None:
    """Write the trunk's weights to ``path`` (``*.weights.h5``) atomically.

    ``LandmarkConfig(perceptual="vgg19:<path>")`` (``trainers/train.py
    --config.perceptual=vgg19:<path>``) loads the file, as does
    ``keras.applications.VGG19(include_top=False, weights=path)``.
    """
    if not path.endswith(".weights.h5"):
        raise ValueError(f"the trunk weights file must end in .weights.h5 (Keras 3's "
                         f"weights format), got {path!r}")
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, "." + name.removesuffix(".weights.h5") + ".tmp.weights.h5")
    model.trunk.save_weights(tmp, overwrite=True)
    os.replace(tmp, path)
