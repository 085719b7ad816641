"""Distribution: strategies by name, per-worker input pipelines, the multi-worker loop.

Under every strategy the global batch is ``cfg.batch_size``; ``LandmarkModel`` sums the
loss over the global batch, synchronises BatchNorm and clips the all-reduced gradient, so
N replicas make the update one device would make on the same batch. On TensorFlow the
strategies are ``tf.distribute``'s; on JAX and PyTorch a ``KerasStrategy`` stands in
(JAX: ``keras.distribution.DataParallel`` over the local devices, whose global-batch
step needs no all-reduce of ours). TensorFlow is imported only on its backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import types

import keras

from keras_landmarks.config import LandmarkConfig

STRATEGIES = ("auto", "one_device", "mirrored", "data_parallel", "multi_worker", "tpu")


class KerasStrategy:
    """What ``training.train`` uses of a ``tf.distribute.Strategy``, for JAX and PyTorch.

    One process, the chief (``extended.should_checkpoint``, no ``cluster_resolver``);
    ``num_replicas_in_sync`` devices; ``scope()`` puts ``distribution`` (a
    ``keras.distribution.Distribution``, JAX only) in force, or does nothing.
    """

    cluster_resolver = None

    def __init__(self, distribution=None):
        self.distribution = distribution
        self.num_replicas_in_sync = int(distribution.device_mesh.devices.size) if distribution else 1
        self.extended = types.SimpleNamespace(should_checkpoint=True)

    def scope(self):
        return self.distribution.scope() if self.distribution else contextlib.nullcontext()


def make_strategy(name: str = "auto"):
    """Distribution strategy by name (one of ``STRATEGIES``).

    TensorFlow backend: ``auto``: ``MirroredStrategy`` over all GPUs when there are several,
    else the default (no-op) strategy. ``one_device``: the first GPU, or the CPU.
    ``mirrored`` / ``data_parallel``: all local GPUs (the CPU when there is none).
    ``multi_worker``: ``MultiWorkerMirroredStrategy`` from the ``TF_CONFIG`` environment
    variable; create it before anything else touches TensorFlow. ``tpu``: ``TPUStrategy``
    (Colab/Cloud TPU; ``TPU_NAME`` or the local TPU VM); not exercised by the tests here.

    JAX and PyTorch: a ``KerasStrategy``; ``data_parallel`` (and ``auto`` with several
    accelerators) is JAX's ``keras.distribution.DataParallel``; the others are refused.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if keras.config.backend() != "tensorflow":
        return _keras_strategy(name)
    import tensorflow as tf  # noqa: PLC0415

    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "strategy 'multi_worker' reads the cluster from the TF_CONFIG environment "
                "variable, which is not set; on each worker set e.g. TF_CONFIG='{\"cluster\": "
                "{\"worker\": [\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": \"worker\", "
                "\"index\": 0}}' (index 1 on the second host)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        tpu = os.environ.get("TPU_NAME") or ("" if "COLAB_TPU_ADDR" in os.environ else "local")
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name in ("mirrored", "data_parallel") or len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _keras_strategy(name: str) -> KerasStrategy:
    backend = keras.config.backend()
    if name in ("mirrored", "multi_worker", "tpu"):
        raise ValueError(f"strategy {name!r} is TensorFlow's tf.distribute (backend now {backend!r}): "
                         "use KERAS_BACKEND=tensorflow, or on JAX strategy 'data_parallel'")
    if backend != "jax":
        if name == "data_parallel":
            raise ValueError(f"strategy 'data_parallel' needs KERAS_BACKEND=jax (or tensorflow), not {backend!r}")
        return KerasStrategy()
    devices = keras.distribution.list_devices()
    accelerators = [d for d in devices if not d.lower().startswith("cpu")]
    if name == "data_parallel" or (name == "auto" and len(accelerators) > 1):
        return KerasStrategy(keras.distribution.DataParallel(devices=accelerators or devices))
    return KerasStrategy()


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` is ``tf.distribute.MultiWorkerMirroredStrategy``."""
    if isinstance(strategy, KerasStrategy):
        return False
    import tensorflow as tf  # noqa: PLC0415

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def data_seed(seed: int, start_step: int, pipeline: int = 0) -> int:
    """Seed of the data stream of a run segment starting at ``start_step`` on input pipeline
    ``pipeline``: ``seed`` itself for a fresh single-pipeline run, else a hash of the three,
    so a resumed run or another worker never repeats the batches already seen."""
    if start_step == 0 and pipeline == 0:
        return seed
    digest = hashlib.sha256(f"{seed}/{start_step}/{pipeline}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def agreed_step(strategy, store) -> int:
    """The step every worker resumes from: this worker's newest complete checkpoint, or,
    when workers differ (a kill inside a save), the oldest of their newest steps if every
    worker still holds a complete generation of it (each keeps the previous one).

    Two all-gathers, run by every worker alike, so all of them reach the same answer or
    the same ``ValueError`` (naming each worker's steps): none is left waiting in a
    collective. One worker: its newest step (0 for a fresh run).
    """
    latest = store.latest()
    mine = int(latest[1]["step"]) if latest else 0
    if not is_multi_worker(strategy):
        return mine
    steps = _all_gather(strategy, mine)
    if len(set(steps)) == 1:
        return mine
    common = min(steps)
    held = _all_gather(strategy, int(common == 0 or store.latest(common) is not None))
    if not all(held):
        detail = "; ".join(f"worker {i}: newest step {s}" + ("" if h else f", no step {common}")
                           for i, (s, h) in enumerate(zip(steps, held)))
        raise ValueError(f"the workers' checkpoints disagree and have no common step ({detail}): restore "
                         "the same generation on every worker's backup folder, or start a new --logdir")
    return common


def _all_gather(strategy, value: int) -> list[int]:
    """``value`` of every worker (task order), through one collective."""
    import tensorflow as tf  # noqa: PLC0415

    def gather():
        return tf.distribute.get_replica_context().all_gather(tf.constant([value], tf.int64), axis=0)

    result = strategy.experimental_local_results(strategy.run(tf.function(gather)))[0]
    return [int(v) for v in result.numpy()]


def training_data(strategy, make_pairs, cfg: LandmarkConfig, start: int):
    """The dataset ``fit`` reads.

    One worker: the global-batch pipeline (Keras splits it over local replicas). Several
    workers: one pipeline per worker with its own seed, built by
    ``distribute_datasets_from_function`` at the per-replica batch size.
    """
    if is_multi_worker(strategy):
        return strategy.distribute_datasets_from_function(
            lambda ctx: make_pairs(ctx.get_per_replica_batch_size(cfg.batch_size),
                                   data_seed(cfg.seed, start, ctx.input_pipeline_id)))
    return make_pairs(cfg.batch_size, data_seed(cfg.seed, start))


def fit_multi_worker(model, strategy, dataset, callbacks, steps_per_epoch: int, epoch: int,
                     epochs: int):
    """``fit``'s loop for ``MultiWorkerMirroredStrategy``: same ``train_step``, same callbacks.

    Keras 3.15's ``fit`` cannot run under this strategy: it reduces the dict batch across
    workers before the first step and then every scalar log with ``axis=0``
    (keras-team/keras#20329, #20585). ``LandmarkModel``'s logs are already global means,
    identical on every replica, so this loop takes the first local one. The step is a
    ``tf.function`` without XLA (``jit_compile`` is not applied here).
    """
    import tensorflow as tf  # noqa: PLC0415

    @tf.function
    def step(iterator):
        logs = strategy.run(model.train_step, args=(next(iterator),))
        return {k: strategy.experimental_local_results(v)[0] for k, v in logs.items()}

    hooks = keras.callbacks.CallbackList(callbacks, model=model)
    iterator, logs = iter(dataset), {}
    model.stop_training = False
    hooks.on_train_begin()
    while not model.stop_training and epoch < epochs:
        model.reset_metrics()
        hooks.on_epoch_begin(epoch)
        for batch in range(steps_per_epoch):
            hooks.on_train_batch_begin(batch)
            logs = {k: float(v) for k, v in step(iterator).items()}
            hooks.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        hooks.on_epoch_end(epoch, logs)
        epoch += 1
    hooks.on_train_end(logs)


def task_name(strategy) -> str:
    """``"<task type>_<index>"`` of this process in a cluster (``"worker_0"`` alone)."""
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.task_type:
        return "worker_0"
    return f"{resolver.task_type}_{resolver.task_id}"
