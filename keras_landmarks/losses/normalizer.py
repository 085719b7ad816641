"""The EMA-normalised loss (PAPER.md "Loss"): per-layer errors divided by running means.

For loss terms ``l`` (VGG taps, or the pixels alone) with per-example errors ``e_l[b]``:

    alpha_l <- rho * alpha_l + (1 - rho) * mean_b e_l[b]      (before it divides, as officially)
    loss[b]  = loss_scale * sum_l e_l[b] / alpha_l            (alpha a constant for the gradient)

so after ``n`` updates with constant batch means ``e``, ``alpha = rho^n alpha_0 + (1 - rho^n) e``
(a geometric sum; ``tests/test_model.py`` checks it). An ``alpha_0`` entry of 0 (or less)
means "not yet seen": the first training batch's error seeds it (``alpha_1 = e_1``, a
running mean from the start, for any feature network; the official ``alpha_0`` was set for
the colorization VGG-16), and until then the batch's own error divides (each term counts
``loss_scale``). The pixel losses (``l2``, ``l2_grad``) are not normalised (``alpha = 1``,
``rho = 1``). Pure ``keras.ops`` math: ``PerceptualLoss`` owns the ``alpha`` variable and
calls these.
"""

from __future__ import annotations

from keras import ops

from keras_landmarks.config import OFFICIAL_ALPHA_DECAY, OFFICIAL_ALPHA_INIT, PIXEL_LOSSES  # noqa: F401 (re-exported)


def uses_ema(perceptual: str) -> bool:
    """Whether loss ``perceptual`` (a ``LandmarkConfig.perceptual`` value) is EMA-normalised."""
    return perceptual not in PIXEL_LOSSES


def initial_alpha(perceptual: str, alpha_init) -> tuple[float, ...]:
    """Starting ``alpha``: ``alpha_init`` for a VGG loss, ones for the pixel losses."""
    return tuple(alpha_init) if uses_ema(perceptual) else (1.0,) * len(PIXEL_LOSSES[perceptual])


def decay(perceptual: str, alpha_decay: float) -> float:
    """The EMA decay in force: ``alpha_decay``, or 1 (alpha frozen at 1) for pixel L2."""
    return alpha_decay if uses_ema(perceptual) else 1.0


def updated_alpha(alpha, batch_errors, rho: float):
    """``rho * alpha + (1 - rho) * batch_errors`` (``batch_errors`` where ``alpha <= 0``: not yet
    seen), both ``[L]`` float32, as a gradient constant."""
    alpha, batch_errors = ops.stop_gradient(alpha), ops.stop_gradient(batch_errors)
    return ops.where(alpha > 0, rho * alpha + (1.0 - rho) * batch_errors, batch_errors)


def current_alpha(alpha, batch_errors):
    """``[L]`` float32 ``alpha`` outside training (``batch_errors`` ``[L]`` float32 where it is
    not yet seen, i.e. 0), a gradient constant."""
    alpha, batch_errors = ops.stop_gradient(alpha), ops.stop_gradient(batch_errors)
    return ops.where(alpha > 0, alpha, batch_errors)


def normalized_loss(errors: list, alpha, loss_scale: float):
    """``[B]`` per-example loss ``loss_scale * sum_l errors[l][b] / alpha[l]``.

    Args:
      errors: ``L`` tensors ``[B]`` float32 (``perceptual.per_example_errors``).
      alpha: ``[L]`` float32.
    """
    return loss_scale * ops.sum(ops.stack(errors, axis=1) / alpha[None, :], axis=1)


def loss_terms(batch_errors, alpha, loss_scale: float):
    """``[L]`` per-term loss of batch means ``batch_errors`` ``[L]``: what the trackers log."""
    return loss_scale * batch_errors / alpha


__all__ = ["OFFICIAL_ALPHA_DECAY", "OFFICIAL_ALPHA_INIT", "current_alpha", "decay", "initial_alpha", "loss_terms",
           "normalized_loss", "updated_alpha", "uses_ema"]
