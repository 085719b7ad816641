"""PEP 562 lazy attributes for a package's ``__init__``: submodules and re-exported names
load on first use, so importing the package (or a CLI's ``--help``) starts no TensorFlow."""

from __future__ import annotations

import importlib


def lazy_attributes(package: str, namespace: dict, submodules=(), exports: dict | None = None):
    """``(__getattr__, __dir__)`` for ``package`` whose module dict is ``namespace``.

    ``submodules``: names importable as ``package.<name>``; ``exports``: ``{name: module}``,
    ``module`` a dotted absolute name or a submodule's bare name. A loaded value is cached
    in ``namespace`` (later lookups skip ``__getattr__``).
    """
    exports = exports or {}

    def __getattr__(name: str):
        if name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        elif name in exports:
            module = exports[name]
            value = getattr(importlib.import_module(module if "." in module else f"{package}.{module}"), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(exports) | set(submodules))

    return __getattr__, __dir__
