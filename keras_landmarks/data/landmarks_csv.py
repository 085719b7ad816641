"""Landmarks CSVs of annotated image folders (``folders.annotated_folder``).

Format (UTF-8, comma separated, one header line)::

    file,x0,y0,x1,y1,...            # optional extra column: split
    faces/0001.jpg,30.5,41,...

``file`` is relative to the data folder and must stay inside it: an absolute path, or one
whose normalised form (``os.path.normpath``, symlinks not resolved) starts with ``..``, is
refused with a ``ValueError`` naming the CSV and the line. Every other column is a
coordinate; consecutive columns pair up as one point, named ``x<name>,y<name>`` or
``<name>_x,<name>_y``. Values are pixel ``(x, y)`` of the original image, 0-based,
integer = pixel centre.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Sequence

import numpy as np

_POINT_COLUMN = re.compile(r"^(?:(?P<a>[xy])(?P<name>.+)|(?P<name2>.+)_(?P<b>[xy]))$")


def _point_columns(header: list[str], csv_path: str) -> dict[str, tuple[int, int]]:
    """``{point name: (x column, y column)}`` in header order; raises on an unpaired column."""
    coords = [(i, c.strip()) for i, c in enumerate(header) if c.strip() not in ("file", "split")]
    if len(coords) % 2:
        raise ValueError(f"{csv_path}, line 1: {len(coords)} coordinate columns, not (x, y) pairs")
    points = {}
    for (ix, cx), (iy, cy) in zip(coords[::2], coords[1::2]):
        mx, my = _POINT_COLUMN.match(cx), _POINT_COLUMN.match(cy)
        nx = mx and (mx["name"] or mx["name2"])
        ny = my and (my["name"] or my["name2"])
        axes = mx and my and ((mx["a"] or mx["b"]), (my["a"] or my["b"]))
        if not (nx and nx == ny and axes == ("x", "y")) or nx in points:
            raise ValueError(f"{csv_path}, line 1: columns {cx!r},{cy!r} are not the x and y of one "
                             "point (expected x<name>,y<name> or <name>_x,<name>_y, each once)")
        points[nx] = (ix, iy)
    return points


def _check_inside(file: str, where: str) -> None:
    """Raise unless ``file`` is a relative path that stays inside the folder it is relative to
    (judged on ``os.path.normpath``, without resolving symlinks)."""
    norm = os.path.normpath(file)
    if os.path.isabs(file) or os.path.splitdrive(file)[0]:
        problem = "is absolute"
    elif norm == os.pardir or norm.startswith(os.pardir + os.sep) or (
            os.altsep and norm.startswith(os.pardir + os.altsep)):
        problem = "leaves the data folder"
    elif norm == os.curdir:
        problem = "names the data folder itself"
    else:
        return
    raise ValueError(f"{where}: 'file' {file!r} {problem}; it must be an image path relative to "
                     "the data folder, inside it")


def read_landmarks_csv(
    csv_path: str, points: Sequence[str] | None = None, split: str | None = None
) -> tuple[list[str], np.ndarray, list[str]]:
    """Parse a landmarks CSV (module docstring).

    Returns:
      ``(files, landmarks [N, P, 2] float32 pixel (x, y), point names [P])`` of the rows
      in file order (only those whose ``split`` equals ``split``, if given).
    Raises:
      ValueError naming the file, the line and the problem (also for a ``file`` that is
      absolute or leaves the CSV's data folder; nothing outside it is ever opened).
    """
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or "file" not in [c.strip() for c in rows[0]]:
        raise ValueError(f"{csv_path}, line 1: the header must have a 'file' column "
                         "followed by x,y columns (e.g. file,x0,y0,x1,y1)")
    header = [c.strip() for c in rows[0]]
    columns = _point_columns(header, csv_path)
    names = list(columns) if points is None else [str(p) for p in points]
    missing = [p for p in names if p not in columns]
    if missing or not names:
        raise ValueError(f"{csv_path}: points {missing or names} not in the header; it has {list(columns)}")
    if split is not None and "split" not in header:
        raise ValueError(f"{csv_path}: split={split!r} asked for but the header has no 'split' column")
    fi, si = header.index("file"), header.index("split") if "split" in header else None
    files, values = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise ValueError(f"{csv_path}, line {line}: {len(row)} fields, the header has {len(header)}")
        if split is not None and row[si].strip() != split:
            continue
        if not row[fi].strip():
            raise ValueError(f"{csv_path}, line {line}: empty 'file' field")
        _check_inside(row[fi].strip(), f"{csv_path}, line {line}")
        try:
            xy = [[float(row[columns[p][0]]), float(row[columns[p][1]])] for p in names]
        except ValueError as e:
            raise ValueError(f"{csv_path}, line {line}: not a number ({e})") from None
        if not all(math.isfinite(v) for pt in xy for v in pt):
            raise ValueError(f"{csv_path}, line {line}: landmark values must be finite")
        files.append(row[fi].strip())
        values.append(xy)
    landmarks = np.asarray(values, np.float32).reshape(len(values), len(names), 2)
    return files, landmarks, names


def annotated_rows(data_dir: str, csv_path: str | None = None, split: str | None = None,
                   points: Sequence[str] | None = None, stats=None):
    """``(paths, landmarks [N, P, 2], point names, stats)`` of the CSV's rows whose image
    exists: what both annotated loaders (``folders.annotated_folder``, tf.data, and
    ``numpy_pairs.annotated_batches``) read. Missing files are recorded in ``stats`` (a
    ``decode.DecodeStats``, new by default) and skipped.

    Raises:
      FileNotFoundError without the CSV (default ``<data_dir>/landmarks.csv``); ValueError
      (``read_landmarks_csv``), or when no row names an existing image.
    """
    from keras_landmarks.data.decode import DecodeStats  # noqa: PLC0415 (OpenCV)

    csv_path = csv_path or os.path.join(data_dir, "landmarks.csv")
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"landmarks CSV {csv_path!r} not found; pass csv_path=")
    files, landmarks, names = read_landmarks_csv(csv_path, points, split)
    paths = [os.path.join(data_dir, f) for f in files]
    present = np.array([os.path.isfile(p) for p in paths], bool)
    if stats is None:
        stats = DecodeStats(f"annotated {csv_path}", files_per_epoch=int(present.sum()))
    for p, ok in zip(paths, present):
        if not ok:
            stats.skip(p, "missing file")
    if not present.any():
        raise ValueError(f"{csv_path}: none of its {len(files)} rows{'' if split is None else f' of split {split!r}'} "
                         f"names an existing image under {data_dir!r}")
    return [p for p, ok in zip(paths, present) if ok], landmarks[present], names, stats


def split_folder(data_dir, split: str, csv_path: str | None = None) -> str:
    """A new temporary folder of symbolic links to the images of the CSV's ``split`` rows
    (removed at exit; the images stay): a ``folder`` source that trains on one split only,
    e.g. the train split of an annotated set without its labels. ``data_dir`` may be a list
    of annotated folders (each with its own ``landmarks.csv``; no ``csv_path`` then): their
    ``split`` images all go into the one folder."""
    import atexit  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    dirs = [data_dir] if isinstance(data_dir, (str, os.PathLike)) else list(data_dir)
    if len(dirs) > 1 and csv_path is not None:
        raise ValueError("split_folder: csv_path names one folder's CSV; give one data_dir with it")
    out = tempfile.mkdtemp(prefix=f"landmarks_{split}_")
    atexit.register(shutil.rmtree, out, True)
    for d, folder in enumerate(dirs):
        for i, src in enumerate(annotated_rows(folder, csv_path, split)[0]):
            name = f"{i:06d}{os.path.splitext(src)[1]}" if d == 0 else f"{d}_{i:06d}{os.path.splitext(src)[1]}"
            os.symlink(os.path.abspath(src), os.path.join(out, name))
    return out


__all__ = ["annotated_rows", "read_landmarks_csv", "split_folder"]
