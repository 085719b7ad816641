"""Colorization pre-training of the perceptual VGG-19: ``landmarks-pretrain-colorization``.

Needs the package installed (``pip install -e .``, or ``make demo`` / ``make test``, which do it);
``--help`` lists every flag.
"""

from _launch import launch

if __name__ == "__main__":
    launch("pretrain_colorization")
