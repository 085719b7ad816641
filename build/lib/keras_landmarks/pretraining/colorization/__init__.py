"""Colorization pre-training of the perceptual VGG-19 (Zhang et al. 2016; BUILD.md): CIE Lab
and the ab bins (``lab``), the network and its loss (``model``), the resumable run (``run``)."""
