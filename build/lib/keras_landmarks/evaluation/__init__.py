"""Evaluation (PAPER.md "Evaluation protocol"): the regression protocol in numpy (``protocol``),
a saved model's report (``report``) and its pictures (``pictures``)."""

from keras_landmarks.evaluation.protocol import (MAFL_POINT_NAMES, evaluate_points, fit_regressor,
                                                 normalized_errors)
from keras_landmarks.evaluation.report import annotated_splits, evaluate_saved_model, resolve_model_path

__all__ = ["MAFL_POINT_NAMES", "annotated_splits", "evaluate_points", "evaluate_saved_model", "fit_regressor",
           "normalized_errors", "resolve_model_path"]
