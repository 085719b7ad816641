"""Applications built on the library: what reads users' files and writes results for them
(animation today). The CLIs in ``keras_landmarks.cli`` parse flags and call these."""
