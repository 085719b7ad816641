"""The reconstruction loss (PAPER.md "Loss"): the ``PerceptualLoss`` layer (``perceptual_loss``),
the features and masked errors it computes (``perceptual``), their EMA normaliser
(``normalizer``) and the official constants (``defaults``, no TensorFlow)."""
