"""The reconstruction loss (PAPER.md "Loss"): the ``PerceptualLoss`` layer (``perceptual_loss``),
the features and masked errors it computes (``perceptual``), their EMA normaliser
(``normalizer``); the official constants are ``config``'s (``PERCEPTUAL_LAYERS``,
``OFFICIAL_ALPHA_INIT``, ...: no TensorFlow)."""
