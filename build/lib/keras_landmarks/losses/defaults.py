"""The loss's official constants, in a module without TensorFlow so that ``config`` and the
CLIs' flag definitions can read them before the slow import."""

# VGG-19 taps of the perceptual loss, in order: the image itself, then conv{1..5}_2.
PERCEPTUAL_LAYERS = (
    "input",
    "block1_conv2",
    "block2_conv2",
    "block3_conv2",
    "block4_conv2",
    "block5_conv2",
)
# Official initial values of the EMA normalisers alpha_l, one per PERCEPTUAL_LAYERS entry.
OFFICIAL_ALPHA_INIT = (100.0, 1.6, 2.3, 1.8, 2.8, 100.0)
# EMA decay rho of the official code.
OFFICIAL_ALPHA_DECAY = 0.99
# LandmarkConfig.perceptual values: "vgg19:<weights file>" is the fourth kind.
PERCEPTUAL_CHOICES = ("vgg19_imagenet", "vgg19_random", "l2", "l2_grad")
# The pixel losses (no VGG) and their terms: the image, and its finite differences.
PIXEL_LOSSES = {"l2": ("input",), "l2_grad": ("input", "gradients")}
