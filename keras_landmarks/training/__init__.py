"""Training (PAPER.md "Optimisation"): the compiled model (``build``, any Keras backend), the
resumable run (``run``), its directory (``rundir``), callbacks (``callbacks``), TensorBoard
summaries (``summaries``) and distribution (``distribute``). The names a notebook needs are
re-exported here and load on first use, so ``build_model`` under JAX or PyTorch does not
import TensorFlow."""

from __future__ import annotations

from keras_landmarks._internal.lazy import lazy_attributes

_EXPORTS = {
    "averaged_weights": "build", "build_model": "build", "make_optimizer": "build", "resolve_jit_compile": "build",
    "Progress": "callbacks", "ResumableCheckpoint": "callbacks", "StepLimit": "callbacks",
    "STRATEGIES": "distribute", "data_seed": "distribute", "make_strategy": "distribute",
    "MODEL_FILE": "keras_landmarks.model", "model_file": "keras_landmarks.model",
    "current_step": "rundir", "load_config": "rundir",
    "PRECISIONS": "run", "TrainingSetupError": "run", "make_callbacks": "run", "train": "run",
    "Summaries": "summaries", "read_summaries": "summaries",
}
_SUBMODULES = ("build", "callbacks", "checkpoint", "distribute", "run", "rundir", "summaries")

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _SUBMODULES, _EXPORTS)
