"""Toy-face datasets: the data contract, the documented seed streams, tf.data vs eager.

Expected batches are rebuilt from the public pieces (``sample_identity``, ``sample_pose``,
``render_faces`` with plain TF ops and ``STREAMS``), independently of the pipelines.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks.config import WarpParams
from keras_landmarks.data import synthetic

SIZE, BATCH = 32, 4


def _take(ds, n):
    it = iter(ds)
    return [{k: v.numpy() for k, v in next(it).items()} for _ in range(n)]


def _cat(batches, key):
    return np.concatenate([b[key] for b in batches])


def _expected(seed, identity_stream, pose_stream, n):
    identity = synthetic.sample_identity([seed, synthetic.STREAMS[identity_stream]], n)
    pose = synthetic.sample_pose([seed, synthetic.STREAMS[pose_stream]], n)
    img, lm = synthetic.render_faces(identity, pose, SIZE, jit_compile=False)
    return img.numpy(), lm.numpy()


def test_video_pairs_contract_and_streams():
    # Plain TF ops here and below: XLA compiles for seconds per dataset (tested once, last).
    ds = synthetic.synthetic_pairs(SIZE, BATCH, seed=3, mode="video", jit_compile=False)
    spec = ds.element_spec
    assert set(spec) == {"image", "future_image", "mask", "landmarks"}
    for key, shape in (("image", (BATCH, SIZE, SIZE, 3)), ("future_image", (BATCH, SIZE, SIZE, 3)),
                       ("mask", (BATCH, SIZE, SIZE, 1)), ("landmarks", (BATCH, 5, 2))):
        assert spec[key].shape == shape and spec[key].dtype == tf.float32
    batches = _take(ds, 2)
    assert all((b["mask"] == 1.0).all() for b in batches)
    # Batch b holds examples b*B..: the same as rendering the 2B first examples at once.
    image, _ = _expected(3, "pairs_identity", "pairs_pose", 2 * BATCH)
    future, landmarks = _expected(3, "pairs_identity", "pairs_future_pose", 2 * BATCH)
    np.testing.assert_allclose(_cat(batches, "image"), image, atol=0.01)
    np.testing.assert_allclose(_cat(batches, "future_image"), future, atol=0.01)
    np.testing.assert_allclose(_cat(batches, "landmarks"), landmarks, atol=1e-4)
    assert np.abs(image - future).mean() > 1.0  # two poses of one face
    again = _take(ds, 1)[0]  # a new pass over the stream
    # Same images up to float rounding (Eigen's vectorised exp/sqrt depend on how the
    # work is split across threads: ~1e-5 grey levels); the landmarks are exact.
    np.testing.assert_allclose(again["future_image"], batches[0]["future_image"], atol=1e-3)
    np.testing.assert_array_equal(again["landmarks"], batches[0]["landmarks"])


def test_tps_pairs_contract():
    ds = synthetic.synthetic_pairs(SIZE, BATCH, seed=3, mode="tps", jit_compile=False)
    assert set(ds.element_spec) == {"image", "future_image", "mask"}  # no landmarks
    assert ds.element_spec["mask"].shape == (BATCH, SIZE, SIZE, 1)
    b = _take(ds, 1)[0]
    for key in ("image", "future_image"):
        assert b[key].shape == (BATCH, SIZE, SIZE, 3)
        assert b[key].min() >= 0.0 and b[key].max() <= 255.0
    assert b["mask"].min() >= 0.0 and b["mask"].max() <= 1.0 and b["mask"].max() > 0.9
    assert np.abs(b["image"] - b["future_image"]).mean() > 1.0  # the source warp
    # Without warps both images are the rendered faces of the pairs stream.
    still = WarpParams(a=0.0, b=0.0, rotation_deg=0.0, scale=0.0, translation=0.0)
    flat = _take(synthetic.synthetic_pairs(SIZE, BATCH, seed=3, target_warp=still,
                                           source_warp=still, jit_compile=False), 1)[0]
    faces, _ = _expected(3, "pairs_identity", "pairs_pose", BATCH)
    np.testing.assert_allclose(flat["future_image"], faces, atol=0.05)
    np.testing.assert_allclose(flat["image"], faces, atol=0.05)


def test_annotated_splits_are_finite_ordered_and_held_out():
    ds = synthetic.synthetic_annotated("test", num_images=10, image_size=SIZE, batch_size=4,
                                       jit_compile=False)
    batches = _take(ds, 3)
    assert [len(b["image"]) for b in batches] == [4, 4, 2]
    assert sum(1 for _ in ds) == 3  # finite
    image, landmarks = _expected(0, "test_identity", "test_pose", 10)
    np.testing.assert_allclose(_cat(batches, "image"), image, atol=0.01)
    np.testing.assert_allclose(_cat(batches, "landmarks"), landmarks, atol=1e-4)
    assert np.isfinite(landmarks).all() and landmarks.min() > 0 and landmarks.max() < SIZE - 1
    second = _take(ds, 3)  # a second pass: same order, same images
    np.testing.assert_allclose(_cat(second, "image"), _cat(batches, "image"), atol=1e-3)
    np.testing.assert_array_equal(_cat(second, "landmarks"), _cat(batches, "landmarks"))
    train = _take(synthetic.synthetic_annotated("train", 4, SIZE, 4, jit_compile=False), 1)[0]
    image, landmarks = _expected(0, "train_identity", "train_pose", 4)
    np.testing.assert_allclose(train["image"], image, atol=0.01)
    np.testing.assert_allclose(train["landmarks"], landmarks, atol=1e-4)

    def identities(stream):
        params = synthetic.sample_identity([0, synthetic.STREAMS[stream]], 300)
        return np.concatenate([np.reshape(v.numpy(), (300, -1)) for v in params.values()], 1)

    test = identities("test_identity")
    for stream in ("train_identity", "pairs_identity"):
        other = identities(stream)
        gap = np.abs(test[:, None, :] - other[None, :, :]).max(-1)  # L-inf between faces
        assert gap.min() > 0.01, stream  # no test identity appears in training


def test_default_xla_dataset_equals_eager_render():
    # The default path: XLA rendering inside tf.data gives the eager XLA call's numbers.
    batch = _take(synthetic.synthetic_annotated("test", BATCH, SIZE, BATCH), 1)[0]
    identity = synthetic.sample_identity([0, synthetic.STREAMS["test_identity"]], BATCH)
    pose = synthetic.sample_pose([0, synthetic.STREAMS["test_pose"]], BATCH)
    eager = synthetic.render_faces(identity, pose, SIZE)
    np.testing.assert_array_equal(batch["image"], eager[0].numpy())
    np.testing.assert_array_equal(batch["landmarks"], eager[1].numpy())
    plain = synthetic.render_faces(identity, pose, SIZE, jit_compile=False)
    np.testing.assert_allclose(plain[0].numpy(), eager[0].numpy(), atol=0.01)
    np.testing.assert_allclose(plain[1].numpy(), eager[1].numpy(), atol=1e-4)


@pytest.mark.parametrize("call, match", [
    (lambda: synthetic.synthetic_pairs(mode="frames"), "mode"),
    (lambda: synthetic.synthetic_pairs(image_size=4), "image_size"),
    (lambda: synthetic.synthetic_pairs(image_size=32.0), "image_size"),
    (lambda: synthetic.synthetic_pairs(batch_size=0), "batch_size"),
    (lambda: synthetic.synthetic_pairs(seed=-1), "seed"),
    (lambda: synthetic.synthetic_annotated("val"), "split"),
    (lambda: synthetic.synthetic_annotated("test", num_images=0), "num_images"),
])
def test_bad_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
