"""The evaluation protocol recomputed with numpy alone (PAPER.md "Evaluation protocol"), to check
the reports of trainers/evaluate.py and trainers/demo.py against: the detector's points in
pixels of the S x S crop (``(p + 1) (S - 1) / 2``, pixel centres), a least-squares linear map
without intercept from the 2K numbers to the P points fitted on the training split, and the
test error ``|pred - gt| / |gt_eye0 - gt_eye1|`` in %, per point and overall. Not a test module."""

import keras
import numpy as np

from keras_landmarks import data


def synthetic_split(split: str, num_images: int, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``([N, S, S, 3] images, [N, 5, 2] pixel landmarks)`` of the annotated toy faces."""
    ds = data.annotated("synthetic", split=split, image_size=image_size, batch_size=25, num_images=num_images)
    batches = [{k: np.asarray(v) for k, v in b.items()} for b in ds]
    return (np.concatenate([b["image"] for b in batches]),
            np.concatenate([b["landmarks"] for b in batches]).astype(np.float64))


def protocol_errors(detector, train: tuple, test: tuple, eyes=(0, 1)) -> tuple[np.ndarray, float]:
    """``([P] per-point error %, overall error %)`` of ``detector`` on ``(images, landmarks)``
    splits ``train`` and ``test``."""
    def points(images):
        normalised = keras.ops.convert_to_numpy(detector(images, training=False)["keypoints"]).astype(np.float64)
        return ((normalised + 1.0) * (images.shape[1] - 1) / 2.0).reshape(len(images), -1)

    weights, *_ = np.linalg.lstsq(points(train[0]), train[1].reshape(len(train[1]), -1), rcond=None)
    gt = test[1]
    pred = (points(test[0]) @ weights).reshape(gt.shape)
    iod = np.linalg.norm(gt[:, eyes[0]] - gt[:, eyes[1]], axis=-1)
    errors = np.linalg.norm(pred - gt, axis=-1) / iod[:, None]  # [N, P]
    return 100 * errors.mean(axis=0), float(100 * errors.mean())
