"""The paper's evaluation protocol (MAFL / AFLW): linear regression to labelled points.

Freeze the detector, take its K points (pixels of the S x S crop) on the annotated
training split, fit a linear map from the 2K numbers to the P ground-truth points by
least squares (official default: no intercept), apply it on the test split, and report
the mean over test images and points of ``||pred - gt|| / ||gt_left_eye - gt_right_eye||``
in percent. The mean training shape predicted for every test image is the baseline.

All points are pixel ``(x, y)`` ``[N, P, 2]`` float arrays (numpy; 0-based, integer =
pixel centre). The inter-ocular pair is ``eyes`` (indices into the P points, default
``(0, 1)``): by the MAFL convention, and for a CSV's ``--points``, the first two points are
the eyes. Per-point errors are keyed by ``point_names`` (default: the MAFL names for 5
points, ``point_<i>`` otherwise).
"""

from __future__ import annotations

import dataclasses

import numpy as np

MAFL_POINT_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")


@dataclasses.dataclass(frozen=True)
class Regressor:
    """Linear map from K detected points ``[N, K, 2]`` to P points ``[N, P, 2]``."""

    weights: np.ndarray  # [2K (+1 with intercept), 2P]
    num_points: int
    intercept: bool

    def predict(self, detected: np.ndarray) -> np.ndarray:
        x = _design(detected, self.intercept)
        return (x @ self.weights).reshape(len(detected), self.num_points, 2)


def fit_regressor(detected: np.ndarray, target: np.ndarray, intercept: bool = False) -> Regressor:
    """Least-squares fit ``target ~ detected`` (flattened), no intercept by default.

    Args:
      detected: ``[N, K, 2]`` detector points (pixels).
      target: ``[N, P, 2]`` ground-truth points (pixels).
    """
    detected, target = np.asarray(detected, np.float64), np.asarray(target, np.float64)
    if len(detected) != len(target):
        raise ValueError(f"{len(detected)} detections but {len(target)} annotations")
    if not (np.isfinite(detected).all() and np.isfinite(target).all()):
        raise ValueError("the detector gave non-finite points (NaN or inf): its weights diverged; "
                         "evaluate an earlier save, or retrain")
    x = _design(detected, intercept)
    if len(x) < x.shape[1]:
        raise ValueError(
            f"the regression needs at least {x.shape[1]} annotated training images "
            f"(2K{' + 1' if intercept else ''} unknowns per output), got {len(x)}"
        )
    weights, *_ = np.linalg.lstsq(x, target.reshape(len(target), -1), rcond=None)
    return Regressor(weights=weights, num_points=target.shape[1], intercept=intercept)


def normalized_errors(pred: np.ndarray, gt: np.ndarray, eyes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """``[N, P]`` distances ``||pred - gt||`` divided by each image's inter-ocular distance
    ``||gt[:, eyes[0]] - gt[:, eyes[1]]||`` (``pred``, ``gt``: ``[N, P, 2]`` pixel ``(x, y)``)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    iod = np.linalg.norm(gt[:, eyes[0]] - gt[:, eyes[1]], axis=-1)
    if np.any(iod <= 0):
        raise ValueError("an annotation has coincident eye points (inter-ocular distance 0)")
    return np.linalg.norm(pred - gt, axis=-1) / iod[:, None]


def evaluate_points(train_detected, train_gt, test_detected, test_gt, intercept: bool = False,
                    point_names=None, eyes: tuple[int, int] = (0, 1)) -> dict:
    """The whole protocol on precomputed points; returns a JSON-ready report.

    Args:
      train_detected, test_detected: ``[N, K, 2]`` detector points (pixel ``(x, y)``).
      train_gt, test_gt: ``[N, P, 2]`` ground truth (pixel ``(x, y)``).
      point_names: ``P`` distinct names of the ground-truth points, in order; default
        ``MAFL_POINT_NAMES`` when ``P == 5``, else ``point_0 ... point_<P-1>``.
      eyes: the two indices (into the P points) whose distance normalises the errors.
    Keys: ``error_percent``, ``baseline_error_percent`` (mean training shape),
    ``per_point_error_percent`` ``{name: %}`` in point order, ``eyes`` (their two names),
    ``num_train``, ``num_test``, ``intercept``, ``predictions`` ``[N_test, P, 2]`` (numpy,
    not JSON: pop it before dumping).
    Raises:
      ValueError for names that are not P distinct ones, or bad ``eyes``.
    """
    num_points = int(np.shape(test_gt)[1])
    names = _point_names(point_names, num_points)
    eyes = tuple(int(e) for e in eyes)
    if len(eyes) != 2 or eyes[0] == eyes[1] or not all(0 <= e < num_points for e in eyes):
        raise ValueError(f"eyes={eyes}: need two different indices of the {num_points} points "
                         "(the inter-ocular pair; the first two points by convention)")
    reg = fit_regressor(train_detected, train_gt, intercept)
    pred = reg.predict(test_detected)
    err = normalized_errors(pred, test_gt, eyes)
    mean_shape = np.broadcast_to(np.mean(train_gt, axis=0), np.shape(test_gt))
    base = normalized_errors(mean_shape, test_gt, eyes)
    return {
        "error_percent": float(100 * err.mean()),
        "baseline_error_percent": float(100 * base.mean()),
        "per_point_error_percent": {n: float(100 * e) for n, e in zip(names, err.mean(0))},
        "eyes": [names[eyes[0]], names[eyes[1]]],
        "num_train": int(len(train_gt)),
        "num_test": int(len(test_gt)),
        "intercept": intercept,
        "predictions": pred,
    }


def _point_names(point_names, num_points: int) -> list[str]:
    """``point_names`` checked against ``num_points`` (or the default names)."""
    if point_names is None:
        if num_points == len(MAFL_POINT_NAMES):
            return list(MAFL_POINT_NAMES)
        return [f"point_{i}" for i in range(num_points)]
    names = [str(n) for n in point_names]
    if len(names) != num_points or len(set(names)) != len(names):
        raise ValueError(f"point names {names}: need {num_points} distinct names, one per "
                         "annotated point")
    if num_points < 2:
        raise ValueError(f"points {names}: need at least two, the eyes first")
    return names


def _design(detected: np.ndarray, intercept: bool) -> np.ndarray:
    x = np.asarray(detected, np.float64).reshape(len(detected), -1)
    return np.concatenate([x, np.ones((len(x), 1))], axis=1) if intercept else x


def collect(detector, dataset, keep_images: int = 0):
    """Run ``detector`` over an annotated dataset.

    Args:
      detector: image ``[B, S, S, 3]`` float32 ``[0, 255]`` -> ``{"keypoints": [B, K, 2]}``
        normalised ``(x, y)`` (``LandmarkModel.detector``).
      dataset: batches of ``{"image", "landmarks" [B, P, 2] pixel (x, y)}``.
      keep_images: how many of the first images to return too (for pictures).
    Returns:
      ``(detected [N, K, 2] pixel (x, y) of the S x S image, landmarks [N, P, 2],
      images [min(N, keep_images), S, S, 3] uint8)``.
    """
    from keras_landmarks import geometry  # TF-backed; keep the numpy part import-light

    detected, truth, kept = [], [], []
    for batch in dataset:
        image = batch["image"]
        size = (int(image.shape[1]), int(image.shape[2]))
        points = detector(image, training=False)["keypoints"]
        detected.append(np.asarray(geometry.normalized_to_pixels(points, size)))
        truth.append(np.asarray(batch["landmarks"]))
        if sum(len(k) for k in kept) < keep_images:
            kept.append(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    if not detected:
        raise ValueError("the annotated dataset is empty")
    images = np.concatenate(kept)[:keep_images] if kept else np.zeros((0,), np.uint8)
    return np.concatenate(detected), np.concatenate(truth), images
