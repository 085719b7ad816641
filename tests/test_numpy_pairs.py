"""The NumPy data path (``data.numpy_pairs.FolderPairs``): batch ``i`` a pure function of
``(seed, i)``, consecutive batches that cover every readable file, bad files skipped and counted,
the pair contract (shapes, range, border mask), and ``fit`` reading it endlessly."""


import cv2
import keras
import numpy as np
import pytest

from keras_landmarks import data
from keras_landmarks.data.numpy_pairs import FolderPairs
from keras_landmarks.config import WarpParams

S = 16
NO_WARP = WarpParams(0.0, 0.0, 0.0, 0.0, 0.0)


def _folder(tmp_path, count=7, broken=1):
    """``count`` images whose every pixel is its index (so a crop tells which file it is)."""
    for i in range(count):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((S + 4, S, 3), 10 * (i + 1), np.uint8))
    for j in range(broken):
        (tmp_path / f"bad{j}.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return str(tmp_path)


def _ids(images: np.ndarray) -> list[int]:
    return [int(round(v / 10)) - 1 for v in images[:, S // 2, S // 2, 0]]


def test_batches_are_a_function_of_seed_and_index(tmp_path):
    folder = _folder(tmp_path)
    a, b = FolderPairs(folder, S, 4, seed=3), FolderPairs(folder, S, 4, seed=3)
    for i in (5, 0, 2):  # any order, as worker threads ask
        for k, v in a[i].items():
            np.testing.assert_array_equal(v, b[i][k])
    assert not np.array_equal(a[0]["future_image"], FolderPairs(folder, S, 4, seed=4)[0]["future_image"])


def test_each_pass_holds_every_readable_file_once_and_bad_ones_are_counted(tmp_path):
    folder = _folder(tmp_path, count=7, broken=1)  # 8 files, 7 readable
    ds = FolderPairs(folder, S, 4, seed=0)
    # Batches 0 and 1 read stream positions 0..7 (pass 0's order), each continuing past the
    # bad file in place of it: together they hold all 7 readable files, each batch full.
    first, second = _ids(ds.images(0)), _ids(ds.images(1))
    assert len(first) == len(second) == 4  # full (the file after the bad one may repeat)
    assert set(first) | set(second) == set(range(7))
    assert ds.decode_stats.skipped == 1 and "bad0.jpg" in next(iter(ds.decode_stats.skipped_files))
    assert ds.decode_stats.decoded == 8


def test_pairs_follow_the_data_contract(tmp_path):
    ds = FolderPairs(_folder(tmp_path), S, 3, seed=0, target_warp=NO_WARP, source_warp=NO_WARP)
    batch = ds[1]
    assert set(batch) == {"image", "future_image", "mask"}
    assert batch["image"].shape == batch["future_image"].shape == (3, S, S, 3)
    assert batch["mask"].shape == (3, S, S, 1) and batch["image"].dtype == np.float32
    # No warp: both images are the crops themselves, the mask is 1 inside.
    np.testing.assert_allclose(batch["image"], ds.images(1).astype("float32"), atol=1e-3)
    np.testing.assert_allclose(batch["future_image"], batch["image"], atol=1e-3)
    assert batch["mask"][:, S // 2, S // 2, 0].min() == 1.0
    warped = FolderPairs(str(tmp_path), S, 3, seed=0)[1]
    assert 0.0 <= warped["image"].min() and warped["image"].max() <= 255.0


def test_fit_reads_it_endlessly_across_epochs(tmp_path):
    """``steps_per_epoch`` epochs ask for batches 0, 1, 2, ... without restarting at 0."""
    class Recording(FolderPairs):
        asked: list = []

        def __getitem__(self, index):
            self.asked.append(index)
            return super().__getitem__(index)

    ds = Recording(_folder(tmp_path), S, 2, seed=0, workers=1)
    from keras_landmarks import LandmarkConfig, LandmarkModel

    model = LandmarkModel(LandmarkConfig(image_size=S, width=4, num_landmarks=2, heatmap_size=8, perceptual="l2"))
    model.compile(optimizer="adam")
    model.fit(ds, steps_per_epoch=3, epochs=2, verbose=0)
    assert sorted(set(ds.asked))[:6] == list(range(6)), ds.asked


def test_pipeline_choice_and_its_errors(tmp_path):
    assert data.resolve_pipeline("auto", "folder") == ("tf_data" if data.has_tensorflow() else "numpy")
    assert data.resolve_pipeline("numpy", "folder") == "numpy"
    with pytest.raises(ValueError, match="reads folder only, not 'video'"):
        data.resolve_pipeline("numpy", "video")
    with pytest.raises(ValueError, match="unknown pipeline"):
        data.resolve_pipeline("fast", "folder")
    ds = data.training_pairs("folder", data_dir=_folder(tmp_path), image_size=S, batch_size=2, seed=0,
                             pipeline="numpy")
    assert isinstance(ds, keras.utils.PyDataset) and ds.num_batches is None
    with pytest.raises(ValueError, match="no readable image"):
        empty = tmp_path / "only_bad"
        empty.mkdir()
        (empty / "x.png").write_bytes(b"nope")
        FolderPairs(str(empty), S, 2)


def test_annotated_batches_equal_the_tf_data_loader(tmp_path):
    """Same rows, crops and moved landmarks as ``folders.annotated_folder``; the missing and
    the broken file skipped by both."""
    from keras_landmarks.data import folders
    from keras_landmarks.data.numpy_pairs import annotated_batches

    rng = np.random.default_rng(0)
    rows = ["file,le_x,le_y,re_x,re_y,split"]
    for i in range(5):
        h, w = 30 + 4 * i, 24 + 6 * i
        cv2.imwrite(str(tmp_path / f"{i}.png"), rng.integers(0, 255, (h, w, 3), np.uint8))
        rows.append(f"{i}.png,{w / 3:.1f},{h / 2:.1f},{2 * w / 3:.1f},{h / 2 + 1:.1f},{'test' if i % 2 else 'train'}")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    rows += ["bad.png,1,2,3,4,train", "gone.png,1,2,3,4,train"]
    (tmp_path / "landmarks.csv").write_text("\n".join(rows) + "\n")
    for split in ("train", None):
        mine = annotated_batches(str(tmp_path), S, batch_size=2, split=split, points=("le", "re"))
        theirs = list(folders.annotated_folder(str(tmp_path), image_size=S, batch_size=2, split=split,
                                               points=("le", "re")).as_numpy_iterator())
        assert [len(b["image"]) for b in mine] == [len(b["image"]) for b in theirs]
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a["image"], b["image"])
            np.testing.assert_allclose(a["landmarks"], b["landmarks"], rtol=1e-6)
    assert sum(len(b["image"]) for b in annotated_batches(str(tmp_path), S, split="train")) == 3
