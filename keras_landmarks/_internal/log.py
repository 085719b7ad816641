"""The library's logger: ``logging.getLogger("keras_landmarks")`` and its children.

Library code logs; it never prints. Records propagate to the root logger as usual. So that
``train()`` in a notebook still shows its report where nothing configured logging, the
logger also has a fallback handler: while the root logger has no handler, it writes INFO
lines and up, unadorned, to whatever ``sys.stdout`` is at the time (Jupyter and pytest
replace it). Once an application installs a root handler (absl's in the CLIs,
``logging.basicConfig``, pytest's ``caplog``), the fallback stays silent.
"""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("keras_landmarks")


class _StdoutHandler(logging.StreamHandler):
    """A ``StreamHandler`` on the *current* ``sys.stdout``, silent once the root logger has
    handlers of its own (they get the record by propagation)."""

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            return
        self.setStream(sys.stdout)
        super().emit(record)


_DEFAULT = _StdoutHandler()
_DEFAULT.setFormatter(logging.Formatter("%(message)s"))


def _install_default() -> None:
    if not LOGGER.handlers:
        LOGGER.addHandler(_DEFAULT)
    if LOGGER.level == logging.NOTSET:
        LOGGER.setLevel(logging.INFO)


_install_default()
