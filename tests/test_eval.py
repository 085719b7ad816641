"""Evaluation protocol against closed-form answers."""

import numpy as np
import pytest

from keras_landmarks.evaluation import protocol as lm_eval


def _faces(n, rng):
    """Random 5-point shapes: eyes 20 px apart at a random place."""
    base = np.array([[-10, 0], [10, 0], [0, 10], [-8, 20], [8, 20]], float)
    return base[None] + rng.uniform(20, 40, (n, 1, 2)) + rng.normal(0, 1, (n, 5, 2))


def test_exact_linear_relation_gives_zero_error():
    rng = np.random.default_rng(0)
    gt_train, gt_test = _faces(60, rng), _faces(20, rng)
    mix = rng.normal(size=(10, 10))  # K = 5 detector points, an invertible linear mix of gt

    def detect(gt):
        return (gt.reshape(len(gt), -1) @ mix).reshape(len(gt), 5, 2)

    report = lm_eval.evaluate_points(detect(gt_train), gt_train, detect(gt_test), gt_test)
    assert report["error_percent"] == pytest.approx(0.0, abs=1e-6)
    assert report["baseline_error_percent"] > 5.0
    np.testing.assert_allclose(report["predictions"], gt_test, atol=1e-6)


def test_normalized_error_closed_form():
    gt = np.array([[[0, 0], [10, 0], [5, 5], [2, 8], [8, 8]]], float)  # iod = 10
    pred = gt.copy()
    pred[0, 2] += [3, 4]  # 5 px off on the nose
    err = lm_eval.normalized_errors(pred, gt)
    np.testing.assert_allclose(err, [[0, 0, 0.5, 0, 0]])


def test_baseline_is_the_mean_training_shape():
    rng = np.random.default_rng(1)
    gt_train, gt_test = _faces(40, rng), _faces(10, rng)
    det = rng.normal(size=(40, 3, 2))
    report = lm_eval.evaluate_points(det, gt_train, rng.normal(size=(10, 3, 2)), gt_test)
    mean = gt_train.mean(0)
    iod = np.linalg.norm(gt_test[:, 0] - gt_test[:, 1], axis=-1)
    want = np.mean(np.linalg.norm(mean[None] - gt_test, axis=-1) / iod[:, None]) * 100
    assert report["baseline_error_percent"] == pytest.approx(want)
    assert set(report["per_point_error_percent"]) == set(lm_eval.MAFL_POINT_NAMES)


def test_intercept_option_absorbs_a_constant_offset():
    rng = np.random.default_rng(2)
    gt = _faces(50, rng)
    det = gt[:, :3] * 0.5 + 7.0  # affine (not linear) in the detections
    no_int = lm_eval.fit_regressor(det, gt[:, :3])
    with_int = lm_eval.fit_regressor(det, gt[:, :3], intercept=True)
    assert np.abs(with_int.predict(det) - gt[:, :3]).max() < 1e-8
    assert np.abs(no_int.predict(det) - gt[:, :3]).max() > 1e-3


def test_too_few_training_images_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 20"):
        lm_eval.fit_regressor(np.zeros((5, 10, 2)), np.zeros((5, 5, 2)))


def test_non_finite_detections_are_a_clear_error_not_an_svd_failure():
    det = np.random.default_rng(0).normal(size=(40, 10, 2))
    det[3, 2, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite points"):
        lm_eval.fit_regressor(det, np.zeros((40, 5, 2)))


def _independent_errors(pred, gt, a, b):
    """``[N, P]`` errors normalised by the distance of points ``a`` and ``b`` (plain loops)."""
    out = np.zeros(gt.shape[:2])
    for n in range(len(gt)):
        iod = np.hypot(*(gt[n, a] - gt[n, b]))
        for p in range(gt.shape[1]):
            out[n, p] = np.hypot(*(pred[n, p] - gt[n, p])) / iod
    return out


@pytest.mark.parametrize("eyes", [(0, 1), (2, 0)])
def test_point_names_and_eye_pair_are_the_callers(eyes):
    rng = np.random.default_rng(3)
    gt_train, gt_test = _faces(40, rng)[:, [1, 0, 2]], _faces(12, rng)[:, [1, 0, 2]]
    det_train, det_test = rng.normal(size=(40, 4, 2)), rng.normal(size=(12, 4, 2))
    report = lm_eval.evaluate_points(det_train, gt_train, det_test, gt_test,
                                     point_names=("re", "le", "n"), eyes=eyes)
    assert list(report["per_point_error_percent"]) == ["re", "le", "n"]
    assert report["eyes"] == [["re", "le", "n"][eyes[0]], ["re", "le", "n"][eyes[1]]]
    err = _independent_errors(report["predictions"], gt_test, *eyes)
    np.testing.assert_allclose(list(report["per_point_error_percent"].values()), 100 * err.mean(0),
                               rtol=1e-9)
    base = _independent_errors(np.broadcast_to(gt_train.mean(0), gt_test.shape), gt_test, *eyes)
    assert report["baseline_error_percent"] == pytest.approx(100 * base.mean(), rel=1e-9)


def test_point_names_must_match_the_points():
    rng = np.random.default_rng(4)
    gt, det = _faces(30, rng)[:, :3], rng.normal(size=(30, 3, 2))
    assert list(lm_eval.evaluate_points(det, gt, det, gt)["per_point_error_percent"]) == [
        "point_0", "point_1", "point_2"]  # not MAFL's names: P is not 5
    with pytest.raises(ValueError, match="need 3 distinct names"):
        lm_eval.evaluate_points(det, gt, det, gt, point_names=("le", "re"))
    with pytest.raises(ValueError, match="need 3 distinct names"):
        lm_eval.evaluate_points(det, gt, det, gt, point_names=("le", "le", "n"))
    with pytest.raises(ValueError, match="two different indices"):
        lm_eval.evaluate_points(det, gt, det, gt, eyes=(1, 1))
    with pytest.raises(ValueError, match="two different indices"):
        lm_eval.evaluate_points(det, gt, det, gt, eyes=(0, 3))
