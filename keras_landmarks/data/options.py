"""The options of each training source: the keyword parameters of its loaders (``LOADERS``).

Read from the loaders' own signatures and ``Args:`` docstrings, so the trainer's
``--data.<option>`` flags can never drift from what a loader takes: ``video_pairs(tps=,
max_offset=, cache_dir=, ...)`` becomes ``--data.tps``, ``--data.max_offset``, ... The source
files are parsed (``ast``), not imported: the loaders import TensorFlow and OpenCV, and a
CLI answers ``--help`` without them.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util

from keras_landmarks._internal.docstrings import doc_entries
from keras_landmarks.data import LOADERS

# Loader parameters that are not options: the trainer fills them (--data_dir, the
# LandmarkConfig, --mafl_dir of both landmarks-train and landmarks-evaluate), training pairs
# are endless (num_batches), or they are objects (stats).
FILLED = ("data_dir", "image_size", "batch_size", "seed", "target_warp", "source_warp", "mafl_dir",
          "num_batches", "stats")
_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


@dataclasses.dataclass(frozen=True)
class Option:
    """One keyword parameter of a loader.

    Attributes:
      name: the parameter's name.
      type: ``int``, ``float``, ``bool`` or ``str``.
      path: a ``str | os.PathLike`` parameter (``~`` is expanded).
      default: the default as written in the signature (``"4 << 30"``).
      help: its text in the loader's ``Args:`` docstring section ("" if none).
      loader: ``"<submodule>.<function>"``.
    """

    name: str
    type: type
    path: bool
    default: str
    help: str
    loader: str


def _type(annotation: ast.expr | None) -> tuple[type | None, bool]:
    """``(type, is a path)`` of an annotation such as ``int | None`` or ``str | os.PathLike``."""
    parts = {ast.unparse(p).strip() for p in _union(annotation)} - {"None"} if annotation else set()
    path = "os.PathLike" in parts
    parts.discard("os.PathLike")
    return (_TYPES.get(parts.pop()) if len(parts) == 1 else None), path


def _union(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union(node.left) + _union(node.right)
    return [node]


@functools.cache
def loader_options(module: str, name: str) -> dict[str, Option]:
    """The options of ``keras_landmarks.data.<module>.<name>`` (a function, or a class's
    ``__init__``), in signature order; ``TypeError`` for a parameter of a type no flag can
    carry that is not in ``FILLED``."""
    spec = importlib.util.find_spec(f"keras_landmarks.data.{module}")
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    node = next(n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name)
    doc = doc_entries(ast.get_docstring(node), "Args")
    if isinstance(node, ast.ClassDef):
        node = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    args = node.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + args.defaults + args.kw_defaults
    options = {}
    for arg, default in zip(positional + args.kwonlyargs, defaults):
        if arg.arg in ("self", *FILLED):
            continue
        tp, path = _type(arg.annotation)
        if tp is None or default is None:
            raise TypeError(f"{module}.{name}: parameter {arg.arg} ({ast.unparse(arg.annotation or arg)}) "
                            "cannot be a --data.<option> flag; give it an int/float/bool/str type and a "
                            "default, or add it to data.options.FILLED")
        options[arg.arg] = Option(arg.arg, tp, path, ast.unparse(default), doc.get(arg.arg, ""),
                                  f"{module}.{name}")
    return options


def source_options(source: str, pipeline: str | None = None) -> dict[str, Option]:
    """The options of training source ``source`` (for ``pipeline``, or of every pipeline)."""
    found: dict[str, Option] = {}
    for (name, pipe), (module, loader) in LOADERS.items():
        if name == source and pipeline in (None, pipe):
            found.update({k: v for k, v in loader_options(module, loader).items() if k not in found})
    return found


def all_options() -> dict[str, list[Option]]:
    """Every option name of every training source -> its ``Option`` per loader."""
    found: dict[str, list[Option]] = {}
    for module, loader in LOADERS.values():
        for name, option in loader_options(module, loader).items():
            found.setdefault(name, []).append(option)
    return found


__all__ = ["FILLED", "Option", "all_options", "loader_options", "source_options"]
