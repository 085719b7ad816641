"""Evaluation (PAPER.md "Evaluation protocol"): the regression protocol in numpy (``protocol``),
a saved model's report (``report``), its pictures (``pictures``) and the label-free
``diagnostics``. Names load on first use, so ``evaluation.protocol`` (numpy only) starts no
Keras or TensorFlow."""

from keras_landmarks._internal.lazy import lazy_attributes

_EXPORTS = {
    "MAFL_POINT_NAMES": "protocol", "evaluate_points": "protocol", "fit_regressor": "protocol",
    "normalized_errors": "protocol", "annotated_splits": "report", "evaluate_saved_model": "report",
    "resolve_model_path": "report",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_attributes(__name__, globals(), ("diagnostics", "pictures", "protocol", "report"), _EXPORTS)
