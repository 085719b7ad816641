"""Native (C++) log lines of TensorFlow and LiteRT kept off the terminal unless asked for.

TensorFlow 2.21 prints oneDNN notes, CUDA probing and a ``cuInit`` error on a machine
without a GPU from C++ before ``TF_CPP_MIN_LOG_LEVEL`` applies; the TFLite converter prints
``fully_quantize: ...`` per int8 conversion and LiteRT announces its XNNPACK delegate, both
straight to file descriptor 2. ``native_stderr_muted`` points that descriptor at a temporary
file for the duration of a block and shows what was written there if the block raises.
``KERAS_LANDMARKS_TF_LOGS=1`` (or ``--tf_logs`` in the CLIs) turns the muting off.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

TF_LOGS_ENV = "KERAS_LANDMARKS_TF_LOGS"


def tf_logs_wanted() -> bool:
    return os.environ.get(TF_LOGS_ENV, "") not in ("", "0")


@contextlib.contextmanager
def native_stderr_muted():
    """Hide what native code writes to fd 2 inside the block (Python's ``sys.stderr`` too,
    as it writes there); replay it when the block raises."""
    if tf_logs_wanted():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
