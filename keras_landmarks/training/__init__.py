"""Training (PAPER.md "Optimisation"): the resumable run (``run``), its directory (``rundir``),
callbacks (``callbacks``), TensorBoard summaries (``summaries``) and distribution
(``distribute``). The names a notebook needs are re-exported here."""

from keras_landmarks.training.callbacks import Progress, ResumableCheckpoint, StepLimit
from keras_landmarks.training.distribute import STRATEGIES, data_seed, make_strategy
from keras_landmarks.training.rundir import MODEL_FILE, current_step, load_config, model_file
from keras_landmarks.training.run import (PRECISIONS, TrainingSetupError, build_model, make_callbacks,
                                          make_optimizer, train)
from keras_landmarks.training.summaries import Summaries, read_summaries

__all__ = ["MODEL_FILE", "PRECISIONS", "Progress", "ResumableCheckpoint", "STRATEGIES", "StepLimit", "Summaries",
           "TrainingSetupError", "build_model", "current_step", "data_seed", "load_config", "make_callbacks",
           "make_optimizer", "make_strategy", "model_file", "read_summaries", "train"]
