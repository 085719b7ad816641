"""One frozen configuration for the model, its loss and its training.

Every field has a default equal to the official code's choice (see ``../shared/PAPER.md``
in the project's development notes and ``BUILD.md``); nothing is read with ``getattr``.
``LandmarkConfig.to_json`` / ``from_json`` round-trip it so the trainer can store the
resolved config beside its checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing

# Renamed data sources (issue 29): their home is ``_internal.sources`` (no package imports);
# re-exported here because the presets are keyed by source name.
from keras_landmarks._internal.sources import DEPRECATED_SOURCES, source_name  # noqa: F401

# The loss's official constants (here so that the config and the CLIs' flags read them before
# TensorFlow starts; ``losses`` imports them).
# VGG-19 taps of the perceptual loss, in order: the image itself, then conv{1..5}_2.
PERCEPTUAL_LAYERS = ("input", "block1_conv2", "block2_conv2", "block3_conv2", "block4_conv2", "block5_conv2")
# Official initial values of the EMA normalisers alpha_l, one per PERCEPTUAL_LAYERS entry.
OFFICIAL_ALPHA_INIT = (100.0, 1.6, 2.3, 1.8, 2.8, 100.0)
# EMA decay rho of the official code.
OFFICIAL_ALPHA_DECAY = 0.99
# LandmarkConfig.perceptual values: "vgg19:<weights file>" is the fourth kind.
PERCEPTUAL_CHOICES = ("vgg19_imagenet", "vgg19_random", "l2", "l2_grad")
# The pixel losses (no VGG) and their terms: the image, and its finite differences.
PIXEL_LOSSES = {"l2": ("input",), "l2_grad": ("input", "gradients")}


@dataclasses.dataclass(frozen=True)
class WarpParams:
    """Random thin-plate-spline warp (PAPER.md "Training pairs"; ``keras_landmarks.pairs``).

    As in the official code, ``a`` and ``b`` are standard deviations of the spline's
    *kernel weights* at the 10x10 control points (``N(0, a)``, plus ``N(0, b)`` on a random
    half), not of point displacements (0.001 normalised units would be 0.06 px at 128);
    ``tps.displacement_std`` gives the resulting pixel motion (about 5 px at 128 for the
    target warp). The affine part has rotation ``N(0, rotation_deg)`` degrees, scale
    ``1 + N(0, scale)`` and translation ``N(0, translation)`` (normalised units).

    Attributes:
      a: std of the spline's kernel weights at the 10x10 control points.
      b: std of the extra kernel weights on a random half of the control points.
      rotation_deg: std of the affine rotation, degrees.
      scale: std of the affine scale around 1.
      translation: std of the affine translation, normalised units.
    """

    a: float = 0.001
    b: float = 0.005
    rotation_deg: float = 0.0
    scale: float = 0.0
    translation: float = 0.1


NORMALIZATIONS = ("batch", "group", "none")  # LandmarkConfig.normalization's values

TARGET_WARP = WarpParams(a=0.001, b=0.005, rotation_deg=0.0, scale=0.0, translation=0.1)
SOURCE_WARP = WarpParams(a=0.001, b=0.01, rotation_deg=5.0, scale=0.1, translation=0.1)


@dataclasses.dataclass(frozen=True)
class SimilarityParams:
    """Random similarity ``M = [s R | t]`` (``[2, 3]``) of the equivariance term
    (``losses.equivariance``), normal draws: it maps an ``(x, y)`` point of the warped image,
    normalised ``[-1, 1]`` pixel-centre (``geometry``), to the point of the original it shows.

    Attributes:
      rotation_deg: std of the rotation, degrees.
      scale: std of the scale around 1 (the scale is kept >= 0.5).
      translation: std of the translation per axis, in normalised units (0.1 is 5 % of the side).
    """

    rotation_deg: float = 10.0
    scale: float = 0.1
    translation: float = 0.1


EQUIVARIANCE_WARP = SimilarityParams()


@dataclasses.dataclass(frozen=True)
class LandmarkConfig:
    """Hyper-parameters of the model, the loss and the optimiser.

    Attributes:
      image_size: side of the square input, a power of two >= 16 (official 128).
      num_landmarks: K, number of keypoints (official 10).
      width: filters of the encoder's first convs; doubles per stride-2 block
        (official 32 -> 16x16x256 at 128 input). The renderer mirrors it.
      heatmap_size: side of the score maps and Gaussian maps (16: the encoder's output).
      stem_stride: stride of Phi's first conv (1, official) or 2: the networks then work at
        ``image_size / 2`` from the first layer on (a quarter of the compute) while the stem
        still reads every input pixel, and the renderer's half-size image is upsampled
        bilinearly to ``image_size`` for the loss.
      gaussian_sigma: sigma of the rendered keypoint maps, normalised units (0.1).
      gaussian_mode: ``"rot"`` ``exp(-d^2/s^2)`` (official) or ``"paper"`` ``exp(-d^2/(2 s^2))``.
      perceptual: ``"vgg19_imagenet"``, ``"vgg19_random"``, ``"vgg19:<weights file>"``, ``"l2"``
        (pixels) or ``"l2_grad"`` (pixels and their x/y differences, equally weighted).
      alpha_init: initial EMA normalisers, one per ``PERCEPTUAL_LAYERS`` entry.
      alpha_decay: EMA decay rho of the normalisers (0.99).
      loss_scale: constant factor on the summed loss (official 1000).
      weight_decay: L2 factor on conv kernels (1e-5).
      learning_rate: Adam's initial learning rate (1e-3).
      lr_decay_rate: factor of the staircase exponential learning-rate schedule (0.95).
      lr_decay_steps: steps between two learning-rate decays (100k).
      clipnorm: per-variable gradient norm clip (1.0).
      weight_ema: momentum of an exponential moving average of the trainable weights kept
        by the optimizer (Keras ``use_ema``); the saved ``model.keras`` (what is evaluated
        and exported) holds the average, the resume state the raw weights. 0: off (official).
      batch_size: global batch size (50).
      sync_batchnorm: BatchNorm statistics over the global batch under ``tf.distribute``
        (so N replicas train exactly like one device); no effect on one device.
      normalization: what follows each conv of Phi and the renderer: ``"batch"``
        (BatchNorm, official), ``"group"`` (GroupNorm, ``gcd(8, filters)`` groups: independent
        of the batch size) or ``"none"`` (the conv gets a bias).
      seed: seed of data randomness and initialisation.
      target_warp: TPS warp of the static-image pairs' target ``x'``.
      source_warp: TPS warp composed with the target's to make the source ``x``.
      equivariance_weight: weight of the detector's equivariance term (not in the paper;
        ``losses.equivariance``): ``weight * loss_scale * mean_k |M q - p|^2`` in normalised
        units, ``p`` the points on ``x'``, ``q`` on ``x'`` warped by a random similarity ``M``.
        0: off (official); costs one more detector pass per step.
      equivariance_warp: the random similarity ``M`` of that term.
    """

    image_size: int = 128
    num_landmarks: int = 10
    width: int = 32
    heatmap_size: int = 16
    stem_stride: int = 1
    gaussian_sigma: float = 0.1
    gaussian_mode: str = "rot"
    perceptual: str = "vgg19_imagenet"
    alpha_init: tuple[float, ...] = OFFICIAL_ALPHA_INIT
    alpha_decay: float = OFFICIAL_ALPHA_DECAY
    loss_scale: float = 1000.0
    weight_decay: float = 1e-5
    learning_rate: float = 1e-3
    lr_decay_rate: float = 0.95
    lr_decay_steps: int = 100_000
    clipnorm: float = 1.0
    weight_ema: float = 0.0
    batch_size: int = 50
    sync_batchnorm: bool = True
    normalization: str = "batch"
    seed: int = 0
    target_warp: WarpParams = TARGET_WARP
    source_warp: WarpParams = SOURCE_WARP
    equivariance_weight: float = 0.0
    equivariance_warp: SimilarityParams = EQUIVARIANCE_WARP

    def __post_init__(self):
        if self.stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {self.stem_stride}")
        n = math.log2(self.image_size) if self.image_size > 0 else -1
        if n != int(n) or self.image_size < self.heatmap_size * self.stem_stride:
            raise ValueError(
                f"image_size must be a power of two >= heatmap_size={self.heatmap_size} "
                f"x stem_stride={self.stem_stride}, got {self.image_size}"
            )
        if self.heatmap_size < 2 or math.log2(self.heatmap_size) % 1:
            raise ValueError(f"heatmap_size must be a power of two >= 2, got {self.heatmap_size}")
        for name in ("num_landmarks", "width", "batch_size", "lr_decay_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.gaussian_mode not in ("rot", "paper"):
            raise ValueError(f"gaussian_mode must be 'rot' or 'paper', got {self.gaussian_mode!r}")
        if not 0.0 <= self.weight_ema < 1.0:
            raise ValueError(f"weight_ema must be in [0, 1) (0: off), got {self.weight_ema}")
        if not self.equivariance_weight >= 0.0:
            raise ValueError(f"equivariance_weight must be >= 0 (0: off), got {self.equivariance_weight}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")
        if len(self.alpha_init) != len(PERCEPTUAL_LAYERS):
            raise ValueError(
                f"alpha_init needs {len(PERCEPTUAL_LAYERS)} values, got {len(self.alpha_init)}"
            )
        kind = self.perceptual.split(":", 1)[0]
        if kind not in PERCEPTUAL_CHOICES + ("vgg19",):
            raise ValueError(
                "perceptual must be 'vgg19_imagenet', 'vgg19_random', 'vgg19:<weights file>', "
                f"'l2' or 'l2_grad', got {self.perceptual!r}"
            )
        if kind == "vgg19" and not self.perceptual[len("vgg19:"):]:
            raise ValueError("perceptual='vgg19:<weights file>' needs a file path after 'vgg19:'")

    @property
    def num_downsamples(self) -> int:
        """Stride-2 blocks after the stem, from ``image_size / stem_stride`` down to ``heatmap_size``."""
        return int(math.log2(self.image_size // (self.stem_stride * self.heatmap_size)))

    def replace(self, **changes) -> "LandmarkConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "LandmarkConfig":
        d = dict(d)
        for key, kind in (("target_warp", WarpParams), ("source_warp", WarpParams),
                          ("equivariance_warp", SimilarityParams)):
            if isinstance(d.get(key), dict):
                d[key] = kind(**d[key])
        if "alpha_init" in d:
            d["alpha_init"] = tuple(d["alpha_init"])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "LandmarkConfig":
        return cls.from_dict(json.loads(text))


def override_fields(cls=LandmarkConfig, prefix: str = "") -> dict[str, type]:
    """Every settable leaf of dataclass ``cls`` by dotted name -> its type (``int``, ``float``,
    ``bool``, ``str`` or ``tuple``): nested dataclasses are flattened (``target_warp.a``).
    The command line's ``--config.<name>`` flags are generated from this."""
    hints = typing.get_type_hints(cls)
    leaves = {}
    for field in dataclasses.fields(cls):
        tp = hints[field.name]
        if dataclasses.is_dataclass(tp):
            leaves.update(override_fields(tp, f"{prefix}{field.name}."))
        else:
            leaves[prefix + field.name] = typing.get_origin(tp) or tp
    return leaves


def parse_value(tp: type, text: str):
    """``text`` as a value of leaf type ``tp`` (``override_fields``): tuples are comma lists of
    floats, booleans true/false/1/0. ``ValueError`` on anything else."""
    if tp is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text.lower() in ("true", "1")
    if tp is tuple:
        return tuple(float(v) for v in text.split(","))
    return tp(text)


def format_value(value) -> str:
    """A leaf value as ``parse_value`` reads it back (tuples as comma lists)."""
    if isinstance(value, tuple):
        return ",".join(format_value(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def leaf_value(cfg, name: str):
    """The value of dotted leaf ``name`` of ``cfg`` (``cfg.target_warp.a`` for ``target_warp.a``)."""
    for part in name.split("."):
        cfg = getattr(cfg, part)
    return cfg


def with_overrides(cfg: LandmarkConfig, overrides: dict) -> LandmarkConfig:
    """``cfg`` with dotted leaves replaced (``{"image_size": 64, "target_warp.a": 0.0}``);
    ``ValueError`` from ``LandmarkConfig``'s checks, ``KeyError`` for an unknown name."""
    nested: dict[str, dict] = {}
    for name, value in overrides.items():
        if name not in override_fields(type(cfg)):
            raise KeyError(f"{type(cfg).__name__} has no field {name!r}")
        head, _, rest = name.partition(".")
        nested.setdefault(head, {}).update({rest: value} if rest else {"": value})
    changes = {head: (parts[""] if "" in parts else
                      with_overrides(getattr(cfg, head), parts))
               for head, parts in nested.items()}
    return dataclasses.replace(cfg, **changes)




# Presets: the fields that differ from the defaults, one per data source (the trainer's
# default for that --dataset) plus named recipes chosen by measurement (--preset).
PRESETS: dict[str, dict] = {
    "celeb_a": {},
    "folder": {},
    "video": {},
    # Toy faces train fast: a smaller image and width (chosen by measurement, BUILD.md).
    "synthetic": {"image_size": 64, "num_landmarks": 10},
    # Real photographs on a CPU: 32 px images, a narrow net and pixel L2 learned fastest per
    # CPU minute on ytfaces (BUILD.md, "Experiment log: real faces"); on a GPU use the
    # dataset's own preset (the paper's 128 px VGG recipe).
    "real_faces": {"image_size": 32, "width": 16, "perceptual": "l2", "batch_size": 16},
    # In-the-wild faces (loose crops, the pretrained "faces" detector): real_faces at 64 px with a
    # stride-2 stem (the same compute per step), 30 points, a weight average and the equivariance
    # term (BUILD.md, "Presets for real faces"; docs/experiments.md, "faces in the wild").
    "faces": {"image_size": 64, "stem_stride": 2, "width": 16, "perceptual": "l2", "batch_size": 16,
              "num_landmarks": 30, "weight_ema": 0.999, "equivariance_weight": 10000.0},
    # make demo's model (trainers/demo.py's defaults): toy faces in 11 CPU minutes (BUILD.md, "The demo").
    "demo": {"image_size": 64, "width": 16, "num_landmarks": 64, "perceptual": "l2", "batch_size": 16,
             "learning_rate": 2e-3, "weight_ema": 0.99, "gaussian_sigma": 0.15},
}


def preset(name: str, **overrides) -> LandmarkConfig:
    """The config for dataset ``name`` (a deprecated source name too) with ``overrides`` applied."""
    name = source_name(name) if name not in PRESETS else name
    if name not in PRESETS:
        raise ValueError(f"unknown dataset preset {name!r}; known: {sorted(PRESETS)}")
    return LandmarkConfig(**{**PRESETS[name], **overrides})
