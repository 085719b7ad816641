"""Shared pytest setup: quiet TensorFlow, two logical CPU devices, fixed seeds (and, for the
other backends' subprocesses, TensorFlow hidden)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import getpass  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


# The JAX subprocesses (tests/test_backends.py: the backend-neutral tests, the GPU check's
# smoke run) compile ~160 small XLA programs per new model (every weight's initializer, the
# layers' ops). JAX's persistent compilation cache lets a later process or run load them
# instead: two of those tests took 37 s with an empty cache and 10 s with a filled one (2-core
# AVX-512 machine, 2026-12-07); CI starts empty. XLA keys the cache by program, flags and
# device, so a hit is the same program.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"keras_landmarks_tests_jax_cache_{getpass.getuser()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")


class _PathFinderWithoutTensorFlow:
    """``sys.meta_path``'s ``PathFinder``, blind to TensorFlow: ``import tensorflow`` fails
    and ``importlib.util.find_spec`` returns None, as when it is not installed."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, attr):  # invalidate_caches, find_distributions, ...
        return getattr(self.finder, attr)


# tests/test_backends.py runs some tests under JAX and PyTorch as if TensorFlow were not installed.
if os.environ.get("KERAS_LANDMARKS_TEST_WITHOUT_TF"):
    import importlib.machinery  # noqa: E402

    sys.meta_path[:] = [_PathFinderWithoutTensorFlow(f) if f is importlib.machinery.PathFinder else f
                        for f in sys.meta_path]
elif os.environ["KERAS_BACKEND"] == "tensorflow":
    import tensorflow as tf  # noqa: E402

    # MirroredStrategy tests need two logical CPU devices; this must happen before any op runs.
    _cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
        )
    except RuntimeError:  # already initialised by another import
        pass


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(0)
    np.random.seed(0)
    yield


# The fast tier (`make test-fast`, `pytest -m "not slow"`): the method's closed-form and unit
# tests. Everything in these modules is `slow`: they start subprocesses (CLIs, other backends,
# the notebook), convert exports, or train for many steps.
SLOW_MODULES = {
    "test_backends", "test_checkpoint", "test_colorization", "test_demo", "test_distributed", "test_evaluate",
    "test_export", "test_layout", "test_notebook", "test_predict", "test_pretrained", "test_train",
    "test_train_flags", "test_celeb_a", "test_video", "test_zoo", "test_fixtures",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES or "cli" in item.name:
            item.add_marker(pytest.mark.slow)
