"""Checkpoints as transactions: each save is one *generation*, switched to atomically.

A worker's backup folder holds generations ``gen-<step>/`` (ten digits), each with every
file of one save and a ``generation.json`` manifest (step, epoch, and each file's size and
SHA-256). A save writes everything into a hidden ``.gen-<step>.tmp-<pid>/``, fsyncs each
file, the manifest and the folder, renames the folder into place (the switch: one
``rename``) and fsyncs the parent; only then is ``<logdir>/model.keras`` replaced (a hard
link to the generation's copy, moved in with ``os.replace``) and generations older than the
previous one removed. So a kill at any moment leaves the newest complete generation, and
the one before it until the next is complete.

Restore takes the newest generation whose manifest and files check out; a partial or
corrupt one is skipped with one warning naming it and the generation used instead. A
``<logdir>/model.keras`` that is not the restored generation's (a kill between the switch
and the publish) is replaced by it. Hidden temporary folders left by a kill are removed.
The layout of 0.1.0 (``latest.weights.h5`` + ``training_metadata.json``) is still read
when no generation exists.

``RunLock`` keeps a second process off a backup folder while one trains from it.

Fault injection (tests): ``fault_point(name)`` is called between every two steps of a save
(``FAULT_POINTS``); ``set_fault_hook`` makes it raise in-process, and
``KERAS_LANDMARKS_FAULT_AT=<name>[@<n>]`` makes the process SIGKILL itself there, at the
``n``-th time (default 1).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal

from keras_landmarks._internal.stale import remove_stale

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked
    fcntl = None

logger = logging.getLogger("keras_landmarks.training")

MANIFEST = "generation.json"
WEIGHTS = "weights.weights.h5"
MODEL = "model.keras"
LEGACY_WEIGHTS, LEGACY_METADATA = "latest.weights.h5", "training_metadata.json"
KEEP = 2  # the newest generation and the one before it
FAULT_ENV = "KERAS_LANDMARKS_FAULT_AT"
FAULT_POINTS = ("weights_written", "model_written", "manifest_written", "switched", "published")
_GEN = re.compile(r"^gen-(\d{10})$")
_fault_hook = [None]
_fault_counts: dict[str, int] = {}
_warned: set[str] = set()
_verified: dict[str, tuple] = {}  # folder -> (file signature, manifest) of a verified generation


class CorruptGeneration(ValueError):
    """A generation whose manifest or files do not check out; the message says which."""


def set_fault_hook(hook) -> None:
    """``hook(name)`` is called at every fault point (None: no hook)."""
    _fault_hook[0] = hook


def fault_point(name: str) -> None:
    if _fault_hook[0] is not None:
        _fault_hook[0](name)
    spec = os.environ.get(FAULT_ENV)
    if spec:
        point, _, nth = spec.partition("@")
        if point == name:
            _fault_counts[name] = _fault_counts.get(name, 0) + 1
            if _fault_counts[name] == int(nth or 1):
                os.kill(os.getpid(), signal.SIGKILL)


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _signature(folder: str):
    """``(name, size, mtime_ns)`` of every file in ``folder``, or None if it cannot be listed."""
    try:
        return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder)))
    except OSError:
        return None


def _file_entry(path: str) -> dict:
    return {"bytes": os.path.getsize(path), "sha256": _sha256(path)}


class CheckpointStore:
    """The generations of one backup folder (module docstring)."""

    def __init__(self, backup_dir: str):
        self.backup_dir = backup_dir

    def generations(self) -> list[tuple[int, str]]:
        """``(step, folder)`` of every switched-in generation, newest first (unverified)."""
        if not os.path.isdir(self.backup_dir):
            return []
        found = [(int(m.group(1)), os.path.join(self.backup_dir, n))
                 for n in os.listdir(self.backup_dir) if (m := _GEN.match(n))]
        return sorted(found, reverse=True)

    @staticmethod
    def verify(folder: str) -> dict:
        """The manifest of ``folder`` after checking every file's size and SHA-256.

        A folder already verified in this process whose files still have the same sizes and
        modification times is not hashed again (a resume looks up its generation up to three
        times: the data seed, the workers' agreement, the restore)."""
        signature = _signature(folder)
        if signature is not None and _verified.get(folder, (None,))[0] == signature:
            return _verified[folder][1]
        manifest = CheckpointStore._verify(folder)
        if signature is not None:
            _verified[folder] = (signature, manifest)
        return manifest

    @staticmethod
    def _verify(folder: str) -> dict:
        try:
            with open(os.path.join(folder, MANIFEST)) as f:
                manifest = json.load(f)
            files = manifest["files"]
            int(manifest["step"]), int(manifest["epoch"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CorruptGeneration(f"{folder}: no readable {MANIFEST} ({type(e).__name__}: {e})") from None
        for name, entry in files.items():
            path = os.path.join(folder, name)
            if not os.path.isfile(path) or os.path.getsize(path) != entry["bytes"] or _sha256(path) != entry["sha256"]:
                raise CorruptGeneration(f"{folder}: {name} is missing or differs from its manifest")
        return manifest

    def latest(self, step: int | None = None) -> tuple[str, dict] | None:
        """``(folder, manifest)`` of the newest generation that checks out (warning once about
        each one skipped), the 0.1.0 layout as ``(backup_dir, manifest)``, or None. With
        ``step``: the complete generation of that step, or None."""
        skipped = []
        for gen_step, folder in self.generations():
            if step is not None and gen_step != step:
                continue
            try:
                manifest = self.verify(folder)
            except CorruptGeneration as e:
                skipped.append(str(e))
                continue
            self._warn(skipped, folder)
            return folder, manifest
        legacy = self._legacy()
        if legacy and step is not None and legacy[1]["step"] != step:
            legacy = None
        self._warn(skipped, legacy[0] if legacy else None)
        return legacy

    def _warn(self, skipped: list[str], used: str | None) -> None:
        for why in skipped:
            if why not in _warned:
                _warned.add(why)
                logger.warning("skipping an incomplete or corrupt checkpoint: %s; resuming from %s", why,
                               used or "nothing (a fresh start)")

    def _legacy(self) -> tuple[str, dict] | None:
        weights = os.path.join(self.backup_dir, LEGACY_WEIGHTS)
        if not os.path.isfile(weights):
            return None
        try:
            with open(os.path.join(self.backup_dir, LEGACY_METADATA)) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = {}
        return self.backup_dir, {"step": int(meta.get("step", 0)), "epoch": int(meta.get("epoch", 0)),
                                 "files": {LEGACY_WEIGHTS: None}, "weights": LEGACY_WEIGHTS}

    def save(self, step: int, epoch: int, writers: dict) -> str:
        """Write one generation: ``writers`` maps file names to ``write(path)``; returns its folder."""
        os.makedirs(self.backup_dir, exist_ok=True)
        final = os.path.join(self.backup_dir, f"gen-{step:010d}")
        tmp = os.path.join(self.backup_dir, f".gen-{step:010d}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        files = {}
        for name, write in writers.items():
            path = os.path.join(tmp, name)
            write(path)
            _fsync_path(path)
            files[name] = _file_entry(path)
            fault_point(f"{'weights' if name == WEIGHTS else 'model'}_written")
        with open(os.path.join(tmp, MANIFEST), "w") as f:
            json.dump({"step": step, "epoch": epoch, "files": files, "weights": WEIGHTS}, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        _fsync_path(tmp)
        fault_point("manifest_written")
        if os.path.exists(final):  # the same step saved again (a run resumed at its last save)
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_path(self.backup_dir)
        fault_point("switched")
        return final

    def prune(self) -> None:
        """Remove generations older than the ``KEEP`` newest, temporary folders of dead
        processes, and the 0.1.0 files once a generation exists."""
        gens = self.generations()
        for _, folder in gens[KEEP:]:
            shutil.rmtree(folder, ignore_errors=True)
        if gens:
            for name in (LEGACY_WEIGHTS, LEGACY_METADATA):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(self.backup_dir, name))
        self.remove_stale()

    def remove_stale(self) -> None:
        """Remove ``.gen-*.tmp-<pid>`` folders whose process is gone (left by a kill) or is
        this one (left by an interrupted save)."""
        remove_stale(self.backup_dir, r"\.gen-\d{10}\.tmp-(\d+)")


def publish(generation: str, model_path: str) -> None:
    """Make ``model_path`` the generation's ``model.keras`` (hard link, else a copy; then an
    atomic ``os.replace``), unless it already is that file's content."""
    source = os.path.join(generation, MODEL)
    if not os.path.isfile(source):
        return
    folder, base = os.path.split(os.path.abspath(model_path))
    remove_stale(folder, re.escape(base) + r"\.tmp-(\d+)")  # a kill inside an earlier publish
    if os.path.isfile(model_path) and os.path.samefile(source, model_path):
        return
    tmp = f"{model_path}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.remove(tmp)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
        _fsync_path(tmp)
    os.replace(tmp, model_path)
    _fsync_path(os.path.dirname(os.path.abspath(model_path)))
    fault_point("published")


class RunLock:
    """An exclusive ``flock`` on ``<folder>/.lock`` for as long as a run trains from it.

    A second run on the same folder fails at once with ``RuntimeError`` naming the folder
    and the holder's pid; the lock dies with its process, so a kill leaves none behind. In
    one process a new lock on the folder takes over an unreleased one.
    """

    _held: dict[str, "RunLock"] = {}  # this process's locks: a new run here takes an old one over

    def __init__(self, folder: str):
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.abspath(os.path.join(folder, ".lock"))
        previous = RunLock._held.pop(self.path, None)
        if previous is not None:  # e.g. a notebook's fit that stopped with an exception
            previous.release()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise RuntimeError(f"{folder} is in use by another training process (pid {holder}): wait for it "
                               "to finish, or give this run another --logdir") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)
        RunLock._held[self.path] = self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if RunLock._held.get(self.path) is self:
                del RunLock._held[self.path]


__all__ = ["FAULT_POINTS", "CheckpointStore", "CorruptGeneration", "RunLock", "fault_point", "publish",
           "set_fault_hook"]
