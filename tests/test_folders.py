"""folders.py and the data dispatcher: file discovery, pair contract and reproducibility,
skipping bad files, the landmarks CSV (format, errors, exact crop/resize transform)."""

import logging
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from keras_landmarks import data
from keras_landmarks.pairs import warps
from keras_landmarks.data import decode, folders


def _write(path, rgb, ext=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = ext or path.suffix.lower()
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]), params)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def _solid(i, h=20, w=24):
    return np.broadcast_to(np.array([10 * i, 250 - 10 * i, 100], np.uint8), (h, w, 3)).copy()


def _ids(images):
    """File number of solid-colour images from the centre pixel (checked against its colour)."""
    centre = images[:, images.shape[1] // 2, images.shape[2] // 2]
    ids = np.round(centre[:, 0] / 10.0).astype(int)
    np.testing.assert_allclose(centre, [[10 * i, 250 - 10 * i, 100] for i in ids], atol=3)
    return ids


def test_list_images_finds_every_case_and_depth(tmp_path):
    names = ["a.jpg", "B.JPG", "sub/c.Jpeg", "sub/deeper/d.PNG", "e.bmp", "sub/f.WebP"]
    for n in names:
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / n).write_bytes(b"x")
    for n in ("notes.txt", "anim.gif", "jpg", "sub/x.jpg.bak"):
        (tmp_path / n).write_bytes(b"x")
    assert folders.list_images(str(tmp_path)) == sorted(str(tmp_path / n) for n in names)


def test_pairs_contract_and_per_batch_warp_seed(tmp_path):
    pattern = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for i, ext in enumerate([".png", ".bmp", ".webp", ".png", ".bmp", ".webp"]):  # lossless: identical pixels
        _write(tmp_path / f"img{i}{ext}", pattern)
    ds = folders.image_folder_pairs(str(tmp_path), image_size=16, batch_size=4, seed=7)
    spec = ds.element_spec
    assert set(spec) == {"image", "future_image", "mask"}
    assert spec["image"].shape == (4, 16, 16, 3) and spec["mask"].shape == (4, 16, 16, 1)
    crop = decode.crop_resize(pattern, 16)[0].astype(np.float32)
    for i, batch in enumerate(ds.take(3)):
        # Every image is the same crop, so batch i must be warp_pairs(crop x 4, seed [7, i]).
        expected = warps.warp_pairs(np.stack([crop] * 4), tf.constant([7, i], tf.int64))
        for key in ("image", "future_image", "mask"):
            assert batch[key].dtype == tf.float32
            np.testing.assert_allclose(batch[key], expected[key], atol=1e-3)
        assert 0.0 <= float(tf.reduce_min(batch["mask"])) and float(tf.reduce_max(batch["mask"])) <= 1.0
        assert float(tf.reduce_max(batch["image"])) <= 255.01


def test_pairs_epoch_covers_good_files_once_and_skips_bad(tmp_path, caplog):
    for i in range(1, 9):
        _write(tmp_path / f"good{i}.{'jpg' if i % 2 else 'png'}", _solid(i, 30 + i, 40))
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_bytes(b"not an image")
    _write(tmp_path / "cut.jpg", _solid(3)).write_bytes((tmp_path / "cut.jpg").read_bytes()[:200])
    caplog.set_level(logging.WARNING, logger="keras_landmarks.data")
    ds = folders.image_folder_pairs(str(tmp_path), image_size=16, batch_size=4, seed=1)
    batches = list(ds.take(6).as_numpy_iterator())  # 3 passes over the 8 good files
    ids = np.concatenate([_ids(b["future_image"]) for b in batches])
    for epoch in range(3):
        assert sorted(ids[8 * epoch:8 * epoch + 8]) == list(range(1, 9))
    assert list(ids[:8]) != list(ids[8:16])  # reshuffled every pass
    assert ds.decode_stats.skipped == 3 and set(ds.decode_stats.skipped_files) == {
        str(tmp_path / n) for n in ("empty.jpg", "text.png", "cut.jpg")}
    assert len([r for r in caplog.records if "skipping unreadable" in r.getMessage()]) == 3  # once per file
    again = folders.image_folder_pairs(str(tmp_path), image_size=16, batch_size=4, seed=1)
    np.testing.assert_array_equal(next(iter(again))["image"], batches[0]["image"])  # reproducible
    other = folders.image_folder_pairs(str(tmp_path), image_size=16, batch_size=4, seed=2)
    assert not np.allclose(next(iter(other))["image"], batches[0]["image"])


def _folder_with_bad_files(tmp_path, n_good):
    """``n_good`` solid-colour images (ids 1..n_good) among a zero-byte JPEG, a text file
    named .jpg, a truncated JPEG, a PNG signature alone and a file deleted after listing."""
    for i in range(1, n_good + 1):
        _write(tmp_path / f"sub{i % 2}/good{i:02d}.{('jpg', 'png', 'bmp')[i % 3]}", _solid(i, 24 + i, 30))
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not an image")
    _write(tmp_path / "cut.jpg", _solid(5)).write_bytes((tmp_path / "cut.jpg").read_bytes()[:150])
    (tmp_path / "sub0/header.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    _write(tmp_path / "gone.png", _solid(7))
    bad = {str(tmp_path / n) for n in ("zero.jpg", "notes.jpg", "cut.jpg", "sub0/header.png", "gone.png")}
    return bad


def test_batch_path_epochs_are_full_batches_of_every_good_file_once(tmp_path, caplog):
    bad = _folder_with_bad_files(tmp_path, 13)
    caplog.set_level(logging.INFO, logger="keras_landmarks.data")
    ds, again, other = (folders.image_folder_batches(str(tmp_path), image_size=16, batch_size=5, seed=s)
                        for s in (3, 3, 4))
    (tmp_path / "gone.png").unlink()  # listed, then deleted: a read error
    assert ds.element_spec == tf.TensorSpec([5, 16, 16, 3], tf.uint8)
    batches = list(ds.take(13).as_numpy_iterator())  # 5 passes over the 13 good files
    assert all(b.shape == (5, 16, 16, 3) and b.dtype == np.uint8 for b in batches)
    ids = np.concatenate([_ids(b) for b in batches])
    passes = [list(ids[13 * e:13 * e + 13]) for e in range(5)]
    assert all(sorted(p) == list(range(1, 14)) for p in passes)
    assert len({tuple(p) for p in passes}) > 1  # reshuffled
    stats = ds.decode_stats
    assert stats.skipped == 5 and set(stats.skipped_files) == bad
    assert len([r for r in caplog.records if "skipping unreadable" in r.getMessage()]) == 5  # once per file
    assert not [r for r in caplog.records if "unreadable files skipped" in r.getMessage()]  # no line per pass
    starts = [r.getMessage() for r in caplog.records if "image files; unreadable" in r.getMessage()]
    assert len(starts) == 3 and all(": 18 image files;" in m for m in starts), starts  # one per pipeline at its start: 13 good + 5 bad listed
    assert "5 unreadable files skipped" in stats.summary()
    np.testing.assert_array_equal(np.stack(list(again.take(13))), np.stack(batches))  # same seed, same batches
    assert list(np.concatenate([_ids(b) for b in other.take(13).as_numpy_iterator()])) != list(ids)


def test_pairs_are_the_warped_image_batches_despite_skipped_files(tmp_path):
    _folder_with_bad_files(tmp_path, 7)
    kw = {"image_size": 16, "batch_size": 4, "seed": 9}
    pairs = folders.image_folder_pairs(str(tmp_path), **kw).take(5)
    images = folders.image_folder_batches(str(tmp_path), **kw).take(5)
    for i, (pair, batch) in enumerate(zip(pairs, images)):
        expected = warps.warp_pairs(batch, tf.constant([9, i], tf.int64), sampler=warps.PIPELINE_SAMPLER,
                                  coarse_grid=warps.PIPELINE_COARSE_GRID)
        for key in ("image", "future_image", "mask"):
            np.testing.assert_array_equal(pair[key], expected[key])


def test_empty_or_unreadable_folders_fail_fast(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        folders.image_folder_pairs(str(tmp_path / "nowhere"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match=f"{tmp_path}.*has no"):
        folders.image_folder_pairs(str(tmp_path))
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ValueError, match=f"no readable image in image folder '{tmp_path}'.*all 2"):
        folders.image_folder_pairs(str(tmp_path))


# ---------------------------------------------------------------- annotated CSV


def _blobs(h, w, centres, sigma):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) for x, y in centres], -1)
    return np.round(img * 255).astype(np.uint8)


def _annotated_tree(tmp_path):
    """Three blob images of different shapes (one missing, one corrupt) and their CSV."""
    rows, sizes = [], [(60, 90), (80, 50), (40, 40), (64, 48), (50, 70)]
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        side = min(h, w)
        x0, y0 = (w - side) // 2, (h - side) // 2
        pts = np.stack([x0 + rng.uniform(0.35, 0.65, 3) * side, y0 + rng.uniform(0.35, 0.65, 3) * side], -1)
        name = f"imgs/{i}.png"
        if i == 1:
            (tmp_path / "imgs").mkdir(exist_ok=True)
            (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\ncorrupt")
        elif i != 3:  # image 3 is missing
            _write(tmp_path / name, _blobs(h, w, pts, side / 9.0))
        split = "test" if i % 2 else "train"
        rows.append([split, name] + [f"{v:.3f}" for v in pts.ravel()])
    header = "split,file,a_x,a_y,b_x,b_y,c_x,c_y"
    (tmp_path / "landmarks.csv").write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return sizes, [np.array(r[2:], float).reshape(3, 2) for r in rows]


def test_annotated_folder_transforms_landmarks_exactly(tmp_path):
    sizes, points = _annotated_tree(tmp_path)
    ds = folders.annotated_folder(str(tmp_path), image_size=32, batch_size=2)
    out = list(ds.as_numpy_iterator())
    images = np.concatenate([b["image"] for b in out])
    landmarks = np.concatenate([b["landmarks"] for b in out])
    assert images.shape == (3, 32, 32, 3) and landmarks.shape == (3, 3, 2)  # rows 0, 2, 4 in CSV order
    assert ds.decode_stats.skipped == 2 and "missing file" in ds.decode_stats.skipped_files[str(tmp_path / "imgs/3.png")]
    yy, xx = np.mgrid[0:32, 0:32]
    for img, lm, i in zip(images, landmarks, (0, 2, 4)):
        (h, w), side = sizes[i], min(sizes[i])
        closed_form = (points[i] - [(w - side) // 2, (h - side) // 2] + 0.5) * 32 / side - 0.5
        np.testing.assert_allclose(lm, closed_form, atol=1e-4)
        for c in range(3):  # the blob drawn at point c is where its landmark went
            m = img[..., c].astype(np.float64)
            np.testing.assert_allclose([(m * xx).sum() / m.sum(), (m * yy).sum() / m.sum()], lm[c], atol=0.06)


def test_csv_split_and_point_selection(tmp_path):
    sizes, points = _annotated_tree(tmp_path)
    files, lms, names = folders.read_landmarks_csv(str(tmp_path / "landmarks.csv"), points=("c", "a"), split="test")
    assert files == ["imgs/1.png", "imgs/3.png"] and names == ["c", "a"]
    np.testing.assert_allclose(lms, np.stack([points[1][[2, 0]], points[3][[2, 0]]]), atol=1e-6)
    out = list(data.annotated("folder", split="train", data_dir=str(tmp_path), image_size=16, batch_size=8,
                              points=("b",)).as_numpy_iterator())
    assert out[0]["landmarks"].shape == (3, 1, 2)  # train rows 0, 2, 4 all readable


def test_split_folder_links_the_split_of_one_or_several_annotated_folders(tmp_path):
    from keras_landmarks.data import landmarks_csv

    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    _annotated_tree(one), _annotated_tree(two)
    train = [str(d / f"imgs/{i}.png") for d in (one,) for i in (0, 2, 4)]  # the CSV's train rows
    out = landmarks_csv.split_folder(str(one), "train")
    assert [os.readlink(os.path.join(out, n)) for n in sorted(os.listdir(out))] == train
    both = landmarks_csv.split_folder([str(one), str(two)], "train")
    links = {n: os.readlink(os.path.join(both, n)) for n in os.listdir(both)}
    assert sorted(links.values()) == sorted(train + [t.replace(str(one), str(two)) for t in train])
    assert len(links) == 6  # no name of the second folder overwrote one of the first
    with pytest.raises(ValueError, match="csv_path"):
        landmarks_csv.split_folder([str(one), str(two)], "train", csv_path=str(one / "landmarks.csv"))


@pytest.mark.parametrize("text,error", [
    ("name,x0,y0\na.png,1,2\n", "line 1: the header must have a 'file' column"),
    ("file,x0,y0,x1\na.png,1,2,3\n", "line 1: 3 coordinate columns"),
    ("file,x0,y1\na.png,1,2\n", "line 1: columns 'x0','y1' are not the x and y of one point"),
    ("file,y0,x0\na.png,1,2\n", "line 1: columns 'y0','x0'"),
    ("file,x0,y0\na.png,1,2\nb.png,3\n", "line 3: 2 fields, the header has 3"),
    ("file,x0,y0\na.png,1,2\nb.png,3,four\n", "line 3: not a number"),
    ("file,x0,y0\na.png,nan,2\n", "line 2: landmark values must be finite"),
    ("file,x0,y0\n,1,2\n", "line 2: empty 'file' field"),
])
def test_malformed_csv_errors_name_file_and_line(tmp_path, text, error):
    path = tmp_path / "lm.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        folders.read_landmarks_csv(str(path))
    assert str(path) in str(err.value) and error in str(err.value)


def test_csv_selection_errors(tmp_path):
    path = tmp_path / "lm.csv"
    path.write_text("file,x0,y0,le_x,le_y\na.png,1,2,3,4\n")
    assert folders.read_landmarks_csv(str(path))[2] == ["0", "le"]
    with pytest.raises(ValueError, match=r"points \['re'\] not in the header; it has \['0', 'le'\]"):
        folders.read_landmarks_csv(str(path), points=("le", "re"))
    with pytest.raises(ValueError, match="no 'split' column"):
        folders.read_landmarks_csv(str(path), split="test")
    with pytest.raises(ValueError, match="names an existing image"):
        folders.annotated_folder(str(tmp_path), csv_path=str(path))
    with pytest.raises(FileNotFoundError, match="pass csv_path="):
        folders.annotated_folder(str(tmp_path))


# ---------------------------------------------------------------- dispatcher


def test_dispatcher_routes_and_rejects(tmp_path):
    for i in range(4):
        _write(tmp_path / f"{i}.png", _solid(i + 1))
    via = data.training_pairs("folder", data_dir=str(tmp_path), image_size=16, batch_size=2, seed=5)
    direct = folders.image_folder_pairs(str(tmp_path), image_size=16, batch_size=2, seed=5)
    np.testing.assert_array_equal(next(iter(via))["image"], next(iter(direct))["image"])
    with pytest.raises(ValueError, match="unknown training source 'imagenet'; choose one of celeb_a, folder, video, synthetic"):
        data.training_pairs("imagenet", image_size=16, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="unknown annotated source 'video'; choose one of celeb_a, folder, synthetic"):
        data.annotated("video", split="test", image_size=16, batch_size=2)
    with pytest.raises(ValueError, match="'folder' needs data_dir"):
        data.training_pairs("folder", image_size=16, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="reads no files"):
        data.training_pairs("synthetic", data_dir=str(tmp_path), image_size=16, batch_size=2, seed=0)


def test_dispatcher_passes_arguments_through(monkeypatch):
    """Routing of the sources built elsewhere: each name reaches its function with the
    common arguments and the extra keywords (the functions are replaced by recorders)."""
    from keras_landmarks.data import synthetic, video

    calls = []
    for module, fn in ((synthetic, "synthetic_pairs"), (synthetic, "synthetic_annotated"), (video, "video_pairs")):
        monkeypatch.setattr(module, fn, lambda *a, _fn=fn, **k: calls.append((_fn, a, k)) or _fn)
    assert data.training_pairs("synthetic", image_size=32, batch_size=4, seed=3, mode="video") == "synthetic_pairs"
    assert data.annotated("synthetic", split="test", image_size=32, batch_size=4, num_images=8) == "synthetic_annotated"
    assert data.training_pairs("video", data_dir="/clips", image_size=64, batch_size=2, seed=1, tps=True) == "video_pairs"
    assert calls == [
        ("synthetic_pairs", (), {"image_size": 32, "batch_size": 4, "seed": 3, "mode": "video"}),
        ("synthetic_annotated", ("test",), {"image_size": 32, "batch_size": 4, "num_images": 8}),
        ("video_pairs", (), {"data_dir": "/clips", "image_size": 64, "batch_size": 2, "seed": 1, "tps": True}),
    ]


@pytest.mark.parametrize("name", ["../outside.png", "imgs/../../outside.png", "./../outside.png",
                                  "..", ".", "imgs/..", "OUTSIDE_ABS"])
def test_csv_file_outside_the_data_folder_is_refused(tmp_path, name):
    """A row naming a path that is absolute or normalises outside ``data_dir`` is an error
    naming the CSV and its line; the outside image (readable) is never loaded."""
    root = tmp_path / "data"
    (root / "imgs").mkdir(parents=True)
    _write(tmp_path / "outside.png", _solid(3))
    _write(root / "imgs" / "in.png", _solid(4))
    name = str(tmp_path / "outside.png") if name == "OUTSIDE_ABS" else name
    csv_path = root / "landmarks.csv"
    csv_path.write_text(f"file,x0,y0\nimgs/in.png,1,2\n{name},3,4\n")
    # Independent check of what the row means: a path whose join with data_dir is not below it.
    joined = os.path.normpath(os.path.join(str(root), name))
    assert not joined.startswith(str(root) + os.sep)
    for call in (lambda: folders.read_landmarks_csv(str(csv_path)),
                 lambda: folders.annotated_folder(str(root), image_size=8, batch_size=2)):
        with pytest.raises(ValueError) as err:
            call()
        assert f"{csv_path}, line 3" in str(err.value) and repr(name) in str(err.value)


def test_csv_file_normalising_inside_the_data_folder_is_kept(tmp_path):
    (tmp_path / "imgs").mkdir()
    _write(tmp_path / "imgs" / "in.png", _solid(4, 16, 16))
    (tmp_path / "landmarks.csv").write_text("file,x0,y0\nimgs/../imgs/./in.png,1,2\n..in.png,3,4\n")
    files, lms, _ = folders.read_landmarks_csv(str(tmp_path / "landmarks.csv"))
    assert files == ["imgs/../imgs/./in.png", "..in.png"]
    ds = folders.annotated_folder(str(tmp_path), image_size=8, batch_size=4)
    assert next(iter(ds))["landmarks"].shape == (1, 1, 2) and ds.point_names == ("0",)
