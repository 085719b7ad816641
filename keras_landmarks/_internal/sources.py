"""Renamed data sources: old name -> its name (issue 29), and the one function that maps them.

``config`` (whose presets are keyed by source name) and ``data`` re-export both; this module
imports nothing of the package's.
"""

from __future__ import annotations

import logging

DEPRECATED_SOURCES = {"image_folder": "folder"}
_warned: set[str] = set()


def source_name(name: str, *, warn: bool = True) -> str:
    """The name of source ``name``: itself, or for a deprecated name (``DEPRECATED_SOURCES``)
    the new one, with one deprecation line per old name and process (``warn``)."""
    new = DEPRECATED_SOURCES.get(name)
    if new is None:
        return name
    if warn and name not in _warned:
        _warned.add(name)
        logging.getLogger("keras_landmarks.config").warning(  # the name users filter (issue 29)
            "source name %r is deprecated: use %r (the same folder source in every program)", name, new)
    return new


__all__ = ["DEPRECATED_SOURCES", "source_name"]
