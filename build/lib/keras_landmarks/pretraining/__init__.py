"""Pre-training of the perceptual network without labels or ImageNet (``colorization``)."""
