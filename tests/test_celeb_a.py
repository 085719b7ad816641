"""celeb_a.py: official crop/resize and its exact landmark transform, MAFL filtering on a
real (tiny) TFDS-written ``celeb_a``, and the fail-fast message when CelebA is missing.

The tiny dataset is written by TFDS itself, by a subclass of the real ``celeb_a`` builder
(same features, version and name) that generates 20 solid-colour images instead of
downloading: so the storage order the code reconstructs is checked against TFDS's writer.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_landmarks import data
from keras_landmarks.data import celeb_a

PARTS = {"train": (1, 12), "validation": (13, 16), "test": (17, 20)}
MAFL_TRAIN = ["000002.jpg", "000005.jpg", "000013.jpg", "000018.jpg", "000011.jpg"]
MAFL_TEST = ["000003.jpg", "000007.jpg", "000014.jpg", "000019.jpg"]


def _colour(i):
    return np.array([10 * i, 250 - 10 * i, 128], np.uint8)


def _landmarks(i):
    return {"lefteye_x": 60 + i, "lefteye_y": 100 - i, "righteye_x": 110, "righteye_y": 100 + i,
            "nose_x": 88, "nose_y": 130, "leftmouth_x": 70 - i, "leftmouth_y": 160, "rightmouth_x": 108,
            "rightmouth_y": 161 + i}


class _TinyCelebA(tfds.builder_cls("celeb_a"), skip_registration=True):
    name = "celeb_a"

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in PARTS}

    def _generate_examples(self, split):
        first, last = PARTS[split]
        for i in range(first, last + 1):
            yield f"{i:06d}.jpg", {
                "image": np.broadcast_to(_colour(i), (218, 178, 3)).copy(),
                "landmarks": _landmarks(i),
                "attributes": {k: False for k in celeb_a_attribute_names()},
                "identity": {"Identity_No": i},
            }


def celeb_a_attribute_names():
    return list(tfds.builder_cls("celeb_a")(data_dir="/nonexistent").info.features["attributes"].keys())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds")
    _TinyCelebA(data_dir=str(root)).download_and_prepare()
    mafl = tmp_path_factory.mktemp("mafl")
    (mafl / "training.txt").write_text("\n".join(MAFL_TRAIN) + "\n")
    (mafl / "testing.txt").write_text("\n".join(MAFL_TEST) + "\n")
    patch = pytest.MonkeyPatch()
    patch.setattr(celeb_a, "PARTITIONS", PARTS)
    yield str(root), str(mafl)
    patch.undo()


def _identify(images):
    """File number of each solid-colour image from its centre pixel's red channel."""
    centre = images[:, images.shape[1] // 2, images.shape[2] // 2]
    ids = np.round(centre[:, 0] / 10.0).astype(int)
    np.testing.assert_allclose(centre, [_colour(i) for i in ids], atol=4)
    return ids


def _collect(ds):
    batches = list(ds.as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_storage_order_matches_tfds_writer(tiny):
    root, _ = tiny
    builder = celeb_a.load_builder(root)
    for split in PARTS:
        ds = builder.as_dataset(split=split, shuffle_files=False)
        written = [int(ex["identity"]["Identity_No"]) for ex in ds.as_numpy_iterator()]
        assert [f"{i:06d}.jpg" for i in written] == celeb_a.storage_order(split)
        assert sorted(written) == list(range(PARTS[split][0], PARTS[split][1] + 1))


def test_annotated_without_mafl_is_the_partition_with_transformed_landmarks(tiny):
    root, _ = tiny
    out = _collect(celeb_a.celeb_a_annotated("validation", data_dir=root, image_size=32, batch_size=3))
    ids = _identify(out["image"])
    assert sorted(ids) == [13, 14, 15, 16]
    assert out["image"].shape == (4, 32, 32, 3) and out["image"].dtype == np.float32
    r, m = 40, 4  # round(1.25 * 32), (40 - 32) // 2
    for i, lm in zip(ids, out["landmarks"]):
        raw = _landmarks(i)
        xy = np.array([[raw[f"{n}_x"], raw[f"{n}_y"]] for n in celeb_a.LANDMARK_NAMES], float)
        expected = (xy + 0.5) * [r / 178, r / 218] - 0.5 - m
        np.testing.assert_allclose(lm, expected, atol=1e-4)


@pytest.mark.parametrize("split,names", [("train", MAFL_TRAIN), ("test", MAFL_TEST)])
def test_annotated_mafl_splits(tiny, split, names):
    root, mafl = tiny
    ds = data.annotated("celeb_a", split=split, data_dir=root, image_size=16, batch_size=2, mafl_dir=mafl)
    out = _collect(ds)
    ids = _identify(out["image"])
    assert sorted(ids) == sorted(int(n[:6]) for n in names)
    # Fixed order: TFDS storage order, partition by partition.
    order = [int(n[:6]) for p in PARTS for n in celeb_a.storage_order(p) if n in names]
    assert list(ids) == order


def test_pairs_exclude_mafl_test_images(tiny):
    root, mafl = tiny
    ds = celeb_a.celeb_a_pairs(data_dir=root, image_size=32, batch_size=4, seed=3, mafl_dir=mafl)
    seen = []
    for batch in ds.take(12).as_numpy_iterator():  # 48 images = 4+ passes over 10 files
        assert batch["image"].shape == (4, 32, 32, 3) and batch["mask"].shape == (4, 32, 32, 1)
        seen += list(_identify(batch["future_image"]))
    train_ids = set(range(1, 13))
    assert set(seen) == train_ids - {3, 7}  # CelebA train minus MAFL test
    plain = celeb_a.celeb_a_pairs(data_dir=root, image_size=32, batch_size=4, seed=3)
    seen = [i for b in plain.take(9).as_numpy_iterator() for i in _identify(b["future_image"])]
    assert set(seen) == train_ids


def _blob_example(centres, sigma=6.0):
    """Aligned-size example; landmark c < 3 is drawn as a Gaussian blob in channel c."""
    yy, xx = np.mgrid[0:218, 0:178].astype(np.float64)
    image = np.zeros((218, 178, 3))
    for c, (cx, cy) in enumerate(centres[:3]):
        image[..., c] = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    lm = {}
    for name, (cx, cy) in zip(celeb_a.LANDMARK_NAMES, centres):
        lm[f"{name}_x"], lm[f"{name}_y"] = tf.constant(cx, tf.int64), tf.constant(cy, tf.int64)
    return {"image": tf.constant(np.round(image * 255).astype(np.uint8)), "landmarks": lm}


@pytest.mark.parametrize("size", [128, 64])
def test_preprocess_moves_landmarks_with_the_pixels(size):
    centres = [(60, 80), (118, 150), (90, 115), (70, 160), (108, 161)]
    out = celeb_a.preprocess(_blob_example(centres), size)
    image, lm = out["image"].numpy(), out["landmarks"].numpy()
    assert image.shape == (size, size, 3)
    yy, xx = np.mgrid[0:size, 0:size]
    for c in range(3):  # blob centroid = transformed landmark
        w = image[..., c].astype(np.float64)
        centroid = [(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()]
        np.testing.assert_allclose(centroid, lm[c], atol=0.05 * size / 64)
    np.testing.assert_allclose(lm, np.array(centres, float) * celeb_a.landmark_affine(size)[:2]
                               + celeb_a.landmark_affine(size)[2:], atol=1e-4)


def test_missing_celeb_a_fails_fast_with_instructions(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        celeb_a.celeb_a_pairs(data_dir=str(tmp_path))
    msg = str(err.value)
    for needed in (str(tmp_path), "downloads/manual", "img_align_celeba.zip", "list_landmarks_align_celeba.txt",
                   "tfds build celeb_a", "--data_dir"):
        assert needed in msg
    with pytest.raises(FileNotFoundError, match="training.txt"):
        celeb_a.read_mafl(str(tmp_path))
    with pytest.raises(ValueError, match="split must be one of"):
        celeb_a.celeb_a_annotated("validation", data_dir=str(tmp_path), mafl_dir=str(tmp_path))
