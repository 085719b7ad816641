"""Training (PAPER.md "Optimisation"): the compiled model (``build``, any Keras backend), the
resumable run (``run``), its directory (``rundir``), callbacks (``callbacks``), TensorBoard
summaries (``summaries``) and distribution (``distribute``). The names a notebook needs are
re-exported here and load on first use, so ``build_model`` under JAX or PyTorch does not
import TensorFlow."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "build_model": "build", "make_optimizer": "build",
    "Progress": "callbacks", "ResumableCheckpoint": "callbacks", "StepLimit": "callbacks",
    "STRATEGIES": "distribute", "data_seed": "distribute", "make_strategy": "distribute",
    "MODEL_FILE": "rundir", "current_step": "rundir", "load_config": "rundir", "model_file": "rundir",
    "PRECISIONS": "run", "TrainingSetupError": "run", "make_callbacks": "run", "train": "run",
    "Summaries": "summaries", "read_summaries": "summaries",
}
_SUBMODULES = ("build", "callbacks", "checkpoint", "distribute", "run", "rundir", "summaries")

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))
