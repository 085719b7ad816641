"""celeb_a.py: official crop/resize and its exact landmark transform, MAFL filtering on a
real (tiny, multi-shard) TFDS-written ``celeb_a``, the image-by-image verification of the
file-name mapping, and the fail-fast messages when CelebA or its landmark file is missing.

The tiny dataset is written by TFDS itself, by a subclass of the real ``celeb_a`` builder
(same features, version and name) that generates 20 solid-colour images in 3 shards per
split instead of downloading: so the storage order the code reconstructs is checked against
TFDS's writer. Each image's identity number is its file number (the ground truth here).
"""

from types import SimpleNamespace

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


def _landmarks_file(rows=range(1, 21), change=None):
    """CelebA's list_landmarks_align_celeba.txt for files ``rows``; file ``change`` gets x+1."""
    lines = [str(len(rows)), " ".join(celeb_a.LANDMARK_KEYS)]
    for i in rows:
        values = [_landmarks(i)[k] + (k == "lefteye_x" and i == change) for k in celeb_a.LANDMARK_KEYS]
        lines.append(f"{i:06d}.jpg " + " ".join(f"{v:4d}" for v in values))
    return "\n".join(lines) + "\n"


def _mafl_dir(path, train=MAFL_TRAIN, test=MAFL_TEST, landmarks=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "training.txt").write_text("\n".join(train) + "\n")
    (path / "testing.txt").write_text("\n".join(test) + "\n")
    if landmarks is not None:
        (path / celeb_a.LANDMARKS_FILE).write_text(landmarks)
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds")
    _TinyCelebA(data_dir=str(root)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(num_shards=3))
    mafl = _mafl_dir(tmp_path_factory.mktemp("mafl"), landmarks=_landmarks_file())
    patch = pytest.MonkeyPatch()
    patch.setattr(celeb_a, "PARTITIONS", PARTS)
    yield str(root), mafl
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


def test_pairs_are_all_of_celeb_a_but_the_mafl_test_images(tiny):
    """The paper's training set: every partition, MAFL's test images (3, 7, 14, 19) removed; without
    MAFL's lists, CelebA's train and validation partitions (its test partition is evaluated on)."""
    root, mafl = tiny
    ds = celeb_a.celeb_a_pairs(data_dir=root, image_size=32, batch_size=4, seed=3, mafl_dir=mafl)
    seen = []
    for batch in ds.take(16).as_numpy_iterator():  # 64 images = 4 passes over 16 files
        assert batch["image"].shape == (4, 32, 32, 3) and batch["mask"].shape == (4, 32, 32, 1)
        seen += list(_identify(batch["future_image"]))
    assert set(seen) == set(range(1, 21)) - {int(n[:6]) for n in MAFL_TEST}
    plain = celeb_a.celeb_a_pairs(data_dir=root, image_size=32, batch_size=4, seed=3)
    seen = [i for b in plain.take(16).as_numpy_iterator() for i in _identify(b["future_image"])]
    assert set(seen) == set(range(1, 17))  # train 1-12 and validation 13-16


def test_shard_layout_maps_every_example_of_a_multi_shard_split_to_its_file(tiny):
    root, _ = tiny
    builder = celeb_a.load_builder(root)
    names, shards = celeb_a.shard_layout(builder, tuple(PARTS))
    assert all(builder.info.splits[s].num_shards == 3 for s in PARTS) and len(shards) == 9
    assert names == [n for s in PARTS for n in celeb_a.storage_order(s)]
    read = tfds.ReadConfig(add_tfds_id=True)
    ds = builder.as_dataset(split="+".join(PARTS), read_config=read,
                            decoders={"image": tfds.decode.SkipDecoding()})
    seen = []
    for ex in ds.as_numpy_iterator():
        file, index = ex["tfds_id"].decode().split("__")
        start, length = shards[file]
        assert 0 <= int(index) < length
        seen.append(names[start + int(index)])
        assert seen[-1] == f"{int(ex['identity']['Identity_No']):06d}.jpg"  # the image is that file
    assert sorted(seen) == sorted(names) and len(seen) == 20


def _collect_ids(ds):
    return sorted(int(i) for i in _identify(_collect(ds)["image"]))


@pytest.mark.parametrize("wrong", ["file_order", "reversed"])
def test_a_wrong_storage_order_fails_image_by_image(tiny, monkeypatch, wrong):
    """Counts and shard lengths all still match: only the per-image check can catch this."""
    root, mafl = tiny
    right = celeb_a.storage_order
    monkeypatch.setattr(celeb_a, "storage_order", lambda split: sorted(right(split)) if wrong == "file_order"
                        else right(split)[::-1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="CelebA/MAFL mapping mismatch.*was mapped to"):
        _collect(celeb_a.celeb_a_annotated("test", data_dir=root, image_size=16, mafl_dir=mafl))
    with pytest.raises(tf.errors.InvalidArgumentError, match="mapping mismatch"):
        next(iter(celeb_a.celeb_a_pairs(data_dir=root, image_size=16, batch_size=2, mafl_dir=mafl)))


def test_one_mismatched_image_fails_naming_it(tiny, tmp_path):
    root, _ = tiny
    mafl = _mafl_dir(tmp_path / "mafl", landmarks=_landmarks_file(change=7))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"mapped to.*000007\.jpg.*list_landmarks_align"):
        _collect(celeb_a.celeb_a_annotated("train", data_dir=root, image_size=16, mafl_dir=mafl))


class _Reported:
    """The tiny builder (reading its real shards) but reporting shard ``lengths`` for ``split``."""

    def __init__(self, builder, split, lengths):
        self._builder, splits, n = builder, {s: builder.info.splits[s] for s in PARTS}, len(lengths)
        splits[split] = SimpleNamespace(num_examples=sum(lengths), shard_lengths=lengths, filenames=[
            f"celeb_a-{split}.tfrecord-{k:05d}-of-{n:05d}" for k in range(n)])
        self.info = SimpleNamespace(splits=splits)

    def __getattr__(self, name):
        return getattr(self._builder, name)


@pytest.mark.parametrize("lengths,error,match", [
    ("sum+1", ValueError, r"split 'train' has 13 examples in shards of .*CelebA's partition has 12"),
    ("moved", tf.errors.InvalidArgumentError, "mapping mismatch|outside the shard layout"),
    ([6, 6], tf.errors.InvalidArgumentError,
     r"\[celeb_a-train.tfrecord-0000\d-of-00003__\d+\] \[is outside the shard layout"),
])
def test_shards_that_disagree_with_the_order_fail(tiny, monkeypatch, lengths, error, match):
    root, mafl = tiny
    builder = celeb_a.load_builder(root)
    real = list(builder.info.splits["train"].shard_lengths)
    lengths = {"sum+1": real[:-1] + [real[-1] + 1], "moved": [real[0] + 1, real[1] - 1] + real[2:]}.get(
        str(lengths), lengths)
    monkeypatch.setattr(celeb_a, "load_builder", lambda data_dir: _Reported(builder, "train", lengths))
    with pytest.raises(error, match=match):
        _collect(celeb_a.celeb_a_annotated("test", data_dir=root, image_size=16, mafl_dir=mafl))
    monkeypatch.undo()
    assert _collect_ids(celeb_a.celeb_a_annotated("test", data_dir=root, image_size=16, mafl_dir=mafl)) == [
        3, 7, 14, 19]


def test_bad_mafl_lists_and_landmark_files_fail_clearly(tiny, tmp_path):
    root, _ = tiny
    lm = _landmarks_file()
    cases = [
        (dict(test=MAFL_TEST + ["300000.jpg"], landmarks=lm), ValueError,
         r"testing.txt lists 1 names .*300000.jpg"),
        (dict(test=MAFL_TEST + ["000002.jpg"], landmarks=lm), ValueError, r"share 1 names .*000002.jpg"),
        (dict(landmarks=_landmarks_file(rows=[i for i in range(1, 21) if i != 9])), ValueError,
         r"has no row for 1 CelebA files .*000009.jpg"),
        (dict(landmarks="20\nimage_id x y\n"), ValueError, "is not CelebA's list_landmarks_align_celeba.txt"),
        (dict(), FileNotFoundError, r"needs CelebA's list_landmarks_align_celeba.txt .*Anno"),
    ]
    for k, (kw, error, match) in enumerate(cases):
        mafl = _mafl_dir(tmp_path / f"mafl{k}", **kw)
        with pytest.raises(error, match=match):
            celeb_a.celeb_a_annotated("test", data_dir=root, image_size=16, mafl_dir=mafl)
        with pytest.raises(error, match=match):
            celeb_a.celeb_a_pairs(data_dir=root, image_size=16, mafl_dir=mafl)


def test_landmark_file_is_found_in_celeba_anno_or_tfds_manual_folder(tiny, tmp_path):
    root, _ = tiny
    mafl = _mafl_dir(tmp_path / "CelebA" / "MAFL")
    manual = tmp_path / "tfds" / "downloads" / "manual"
    manual.mkdir(parents=True)
    (manual / celeb_a.LANDMARKS_FILE).write_text(_landmarks_file())
    elsewhere = SimpleNamespace(data_dir=str(tmp_path / "tfds" / "celeb_a" / "2.1.0"))
    assert celeb_a.find_landmarks_file(mafl, elsewhere) == str(manual / celeb_a.LANDMARKS_FILE)
    anno = tmp_path / "CelebA" / "Anno"
    anno.mkdir()
    (anno / celeb_a.LANDMARKS_FILE).write_text(_landmarks_file())
    found = celeb_a.find_landmarks_file(mafl, celeb_a.load_builder(root))
    assert found.endswith("Anno/" + celeb_a.LANDMARKS_FILE) and open(found).read() == _landmarks_file()
    assert _collect_ids(celeb_a.celeb_a_annotated("test", data_dir=root, image_size=16, mafl_dir=mafl)) == [
        3, 7, 14, 19]


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
