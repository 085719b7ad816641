"""Applications built on the library: what reads users' files and writes results for them.

``animate`` (+ ``media``: video and image reading and writing), ``predict`` (detect on image
files and videos, draw, write CSV), ``build_pretrained`` (pack a trained model as a shipped
detector in ``pretrained/``). The CLIs in ``keras_landmarks.cli`` parse flags and call these."""
