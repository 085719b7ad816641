"""Python callbacks run by tf.data threads must stop cleanly when the interpreter exits.

Measured: a script that ended with a live pipeline whose map calls Python
(``tf.numpy_function``: the OpenCV decoder and the OpenCV TPS sampler) aborted
("terminate called without an active exception") or deadlocked on ~1 in 6-10 exits,
because TF threads called into a finalizing interpreter. At exit, ``enter()`` starts
failing fast, so the pipelines' threads fill their buffers with errors and block in C++,
and the exit hook waits until no call has started for 0.1 s (at most 2 s): 0 of 28 exits
failed after.

A call still *running* at exit (a large decode takes a second or more) is waited for too:
``running()`` counts the calls in flight and the exit hook waits until none is (at most
``MAX_WAIT_S``), so the interpreter never finalizes under a live decode.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time

MAX_WAIT_S = 30.0  # longest the exit hook waits for calls in flight
_EXITING = threading.Event()
_last_call = [0.0]
_in_flight = [0]
_lock = threading.Lock()


def enter() -> None:
    """Call first in every Python function that tf.data runs; raises once exiting."""
    _last_call[0] = time.monotonic()
    if _EXITING.is_set():
        raise RuntimeError("the Python interpreter is exiting")


@contextlib.contextmanager
def running():
    """``enter()``, then count the block as a call in flight until it ends."""
    enter()
    with _lock:
        _in_flight[0] += 1
    try:
        yield
    finally:
        with _lock:
            _in_flight[0] -= 1
        _last_call[0] = time.monotonic()


def in_flight() -> int:
    """Calls inside ``running()`` now."""
    return _in_flight[0]


def _quiesce_at_exit() -> None:
    """Wait until no call is in flight and none has started for 0.1 s (that part at most 2 s;
    calls in flight at most ``MAX_WAIT_S``)."""
    _EXITING.set()
    start = time.monotonic()
    while True:
        now = time.monotonic()
        if in_flight() == 0 and (now - _last_call[0] >= 0.1 or now - start >= 2.0):
            return
        if now - start >= MAX_WAIT_S:
            return
        time.sleep(0.02)


atexit.register(_quiesce_at_exit)
