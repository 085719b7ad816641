"""The reconstruction loss (PAPER.md "Loss"): perceptual features (``perceptual``), their EMA
normaliser (``normalizer``) and the official constants (``defaults``, no TensorFlow)."""
