"""Tests of vaebench.data on small CelebA-like, folder and shapes fixtures built with PIL."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaebench import VaebenchError, data
from vaebench.data import load_split, prepare, rank, shapes

N_PER_PART = {0: 18, 1: 6, 2: 6}  # 30 images: 000001..000018 train, then 6 valid, 6 test


def _jpeg(path: Path, rng: np.random.Generator, size=(178, 218)) -> None:
    """A random but smooth-ish image (noise upsampled) so JPEG sizes stay small."""
    small = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    Image.fromarray(small).resize(size, Image.Resampling.BILINEAR).save(path, quality=90)


def _celeba_names() -> list[tuple[str, int]]:
    out, i = [], 1
    for part, n in N_PER_PART.items():
        for _ in range(n):
            out.append((f"{i:06d}.jpg", part))
            i += 1
    return out


@pytest.fixture(scope="module")
def celeba_official(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("celeba_official")
    (root / "img_align_celeba").mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for name, part in _celeba_names():
        _jpeg(root / "img_align_celeba" / name, rng)
        lines.append(f"{name} {part}\n")
    (root / "list_eval_partition.txt").write_text("".join(lines))
    return root


@pytest.fixture(scope="module")
def celeba_kaggle(tmp_path_factory, celeba_official) -> Path:
    root = tmp_path_factory.mktemp("celeba_kaggle")
    shutil.copytree(
        celeba_official / "img_align_celeba", root / "img_align_celeba" / "img_align_celeba"
    )
    rows = "".join(f"{n},{p}\n" for n, p in _celeba_names())
    (root / "list_eval_partition.csv").write_text("image_id,partition\n" + rows)
    return root


@pytest.fixture
def celeba_copy(tmp_path, celeba_official) -> Path:
    """A private copy of the official layout that a test may break."""
    root = tmp_path / "celeba"
    shutil.copytree(celeba_official, root)
    return root


def _cfg(name="celeba", root=None, **kw) -> dict:
    cfg = dict(
        name=name,
        root=None if root is None else str(root),
        n_train=5,
        n_val=3,
        n_test=3,
        image_size=32,
        crop=148,
        salt="test",
    )
    cfg.update(kw)
    return cfg


def _arrays(out: Path) -> dict[str, np.ndarray]:
    return {s: np.load(out / f"{s}.npy") for s in ("train", "val", "test")}


# ----------------------------------------------------------------------------- CelebA


def test_celeba_layouts_give_identical_arrays(tmp_path, celeba_official, celeba_kaggle):
    a = prepare(_cfg(root=celeba_official), tmp_path / "a")
    b = prepare(_cfg(root=celeba_kaggle), tmp_path / "b")
    assert (a["layout"], b["layout"]) == ("celeba-official", "celeba-kaggle")
    for split in ("train", "val", "test"):
        assert a["splits"][split]["names"] == b["splits"][split]["names"]
        assert a["splits"][split]["source_sha256"] == b["splits"][split]["source_sha256"]
        assert a["splits"][split]["npy_sha256"] == b["splits"][split]["npy_sha256"]
    for split, arr in _arrays(tmp_path / "a").items():
        assert arr.dtype == np.uint8 and arr.shape == (a["splits"][split]["count"], 3, 32, 32)
        np.testing.assert_array_equal(arr, _arrays(tmp_path / "b")[split])


def test_celeba_splits_follow_partitions_and_manifest(tmp_path, celeba_official):
    m = prepare(_cfg(root=celeba_official), tmp_path)
    parts = dict(_celeba_names())
    for split, part in (("train", 0), ("val", 1), ("test", 2)):
        assert {parts[n] for n in m["splits"][split]["names"]} == {part}
    train_pool = [n for n, p in parts.items() if p == 0]
    assert m["splits"]["train"]["names"] == rank(train_pool, "test")[:5]
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["splits"] == m["splits"]
    assert on_disk["preprocessing"]["crop"] == 148 and on_disk["preprocessing"]["filter"]
    assert on_disk["partition_file"].endswith("list_eval_partition.txt")
    assert len(on_disk["partition_sha256"]) == 64
    assert on_disk["root"] == str(celeba_official.resolve())
    assert on_disk["dataset"]["salt"] == "test" and "versions" in on_disk["provenance"]
    assert load_split(tmp_path, "val", mmap=True).shape == (3, 3, 32, 32)


def test_celeba_deterministic(tmp_path, celeba_official):
    prepare(_cfg(root=celeba_official), tmp_path / "a")
    prepare(_cfg(root=celeba_official), tmp_path / "b")
    for split in ("train", "val", "test"):
        a = (tmp_path / "a" / f"{split}.npy").read_bytes()
        assert a == (tmp_path / "b" / f"{split}.npy").read_bytes()


def test_celeba_prefix_property(tmp_path, celeba_official):
    small = prepare(_cfg(root=celeba_official, n_train=5), tmp_path / "s")
    large = prepare(_cfg(root=celeba_official, n_train=10), tmp_path / "l")
    assert large["splits"]["train"]["names"][:5] == small["splits"]["train"]["names"]
    np.testing.assert_array_equal(
        np.load(tmp_path / "l" / "train.npy")[:5], np.load(tmp_path / "s" / "train.npy")
    )


def test_workers_give_identical_bytes(tmp_path, celeba_official):
    cfg = _cfg(root=celeba_official, n_train=18, n_val=6, n_test=6, image_size=16)
    one = prepare(cfg, tmp_path / "w1", workers=1)
    for workers in (2, 3):
        many = prepare(cfg, tmp_path / f"w{workers}", workers=workers)
        for split in ("train", "val", "test"):
            assert one["splits"][split] == many["splits"][split]
            a = (tmp_path / "w1" / f"{split}.npy").read_bytes()
            assert a == (tmp_path / f"w{workers}" / f"{split}.npy").read_bytes()


def test_without_fork_decodes_on_one_core_and_says_so(
    tmp_path, celeba_official, monkeypatch, capsys
):
    import multiprocessing

    cfg = _cfg(root=celeba_official, n_train=18, n_val=6, n_test=6, image_size=16)
    one = prepare(cfg, tmp_path / "w1", workers=1)
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    monkeypatch.setattr(data, "ProcessPoolExecutor", None)  # a pool would fail loudly
    many = prepare(cfg, tmp_path / "w2", workers=2)
    assert one["splits"] == many["splits"]
    assert "cannot fork; decoding on one core" in capsys.readouterr().err


# ----------------------------------------------------------------------------- folder


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "imgs"
    rng = np.random.default_rng(1)
    for i in range(20):
        sub = root / f"class{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        _jpeg(sub / f"img{i:02d}{'.JPG' if i % 4 == 0 else '.jpg'}", rng, size=(80, 60))
    Image.new("RGB", (50, 50), (10, 20, 30)).save(root / "plain.png")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    _jpeg(root / ".hidden" / "skip.jpg", rng)
    return root


def test_folder_source(tmp_path, folder):
    cfg = _cfg("folder", folder, n_train=10, n_val=4, n_test=3, crop=None, image_size=24)
    m = prepare(cfg, tmp_path / "out")
    names = {s: m["splits"][s]["names"] for s in ("train", "val", "test")}
    everything = names["test"] + names["val"] + names["train"]
    assert len(set(everything)) == 17 and all(not n.startswith(".") for n in everything)
    ranked = rank(_all_images(folder), "test")
    assert names["test"] == ranked[:3] and names["val"] == ranked[3:7]
    assert names["train"] == ranked[7:17]
    assert m["layout"] == "folder" and m["partition_file"] is None
    assert _arrays(tmp_path / "out")["train"].shape == (10, 3, 24, 24)
    # the test split does not move when the training subset grows
    m2 = prepare(dict(cfg, n_train=14), tmp_path / "out2")
    assert m2["splits"]["test"]["names"] == names["test"]
    assert m2["splits"]["train"]["names"][:10] == names["train"]


def test_stretching_a_non_square_image_is_said(tmp_path, capsys):
    """A 4x300 px image with dataset.crop null is stretched to a square: the run says so (a
    warning naming the worst image and the fix) and the manifest counts it."""
    root = tmp_path / "imgs"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / f"{i}.png")
    Image.new("RGB", (4, 300), (200, 10, 10)).save(root / "thin.png")
    cfg = _cfg("folder", root, n_train=3, n_val=2, n_test=2, crop=None, image_size=16)
    m = prepare(cfg, tmp_path / "out")
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "not square" in x)
    assert "1 of 7 images" in line and "75:1" in line and "thin.png" in line
    assert "dataset.crop" in line and m["preprocessing"]["stretched"] == 1
    m = prepare(cfg | {"crop": 4}, tmp_path / "cropped")  # a square crop: nothing stretched
    assert m["preprocessing"]["stretched"] == 0 and "not square" not in capsys.readouterr().err


def _all_images(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix.lower() in (".jpg", ".png") and ".hidden" not in p.parts
    )


def test_modes_converted_and_counted(tmp_path):
    root = tmp_path / "modes"
    root.mkdir()
    rng = np.random.default_rng(2)
    rgb = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    rgb.save(root / "rgb.png")
    rgb.convert("L").save(root / "grey.png")
    rgb.convert("P").save(root / "palette.png")
    rgb.convert("CMYK").save(root / "cmyk.jpg")
    rgb.convert("RGBA").save(root / "alpha.png")
    Image.fromarray((np.arange(1600).reshape(40, 40) * 40).astype(np.uint16)).save(
        root / "deep.png"
    )
    cfg = _cfg("folder", root, n_train=4, n_val=1, n_test=1, crop=32, image_size=16)
    m = prepare(cfg, tmp_path / "out")
    assert m["conversions"] == {"CMYK": 1, "I;16": 1, "L": 1, "P": 1, "RGBA": 1}
    per_split = sum((sum(m["splits"][s]["conversions"].values()) for s in m["splits"]), 0)
    assert per_split == 5
    by_name = {}
    for split, arr in _arrays(tmp_path / "out").items():
        by_name.update(zip(m["splits"][split]["names"], arr, strict=True))
    grey = by_name["grey.png"]
    assert (grey[0] == grey[1]).all() and (grey[1] == grey[2]).all()
    deep = by_name["deep.png"]
    assert 0 < deep.mean() < 255  # not clipped to white as convert('RGB') would


# ----------------------------------------------------------------------------- shapes


def test_shapes(tmp_path):
    cfg = _cfg("shapes", None, n_train=40, n_val=10, n_test=10, image_size=64)
    m = prepare(cfg, tmp_path / "a")
    arrays = _arrays(tmp_path / "a")
    assert arrays["train"].shape == (40, 3, 64, 64) and arrays["train"].dtype == np.uint8
    assert arrays["train"].max() == 255 and arrays["train"].min() == 0
    assert set(m["factors"]) == {"shape", "scale", "rotation", "x", "y", "hue"}
    assert m["preprocessing"]["crop"] is None
    # deterministic, and a prefix when n_train shrinks; n_test does not touch train
    prepare(dict(cfg, n_train=25, n_test=3), tmp_path / "b")
    b = _arrays(tmp_path / "b")
    np.testing.assert_array_equal(b["train"], arrays["train"][:25])
    np.testing.assert_array_equal(b["test"], arrays["test"][:3])
    np.testing.assert_array_equal(b["val"], arrays["val"])
    assert not np.array_equal(arrays["train"][:10], arrays["test"])
    # another salt, other images
    prepare(dict(cfg, salt="other"), tmp_path / "c")
    assert not np.array_equal(np.load(tmp_path / "c" / "train.npy"), arrays["train"])


def test_shapes_fast_and_varied():
    t = time.perf_counter()
    images, factors = shapes(2000, 64, seed=7)
    assert time.perf_counter() - t < 3.0
    assert images.shape == (2000, 3, 64, 64)
    assert set(np.unique(factors["shape"])) == {0, 1, 2, 3, 4}
    ink = (images.max(axis=1) > 0).mean(axis=(1, 2))
    assert ink.min() > 0.01 and ink.max() < 0.5  # every image has a visible, bounded shape
    np.testing.assert_array_equal(shapes(50, 64, seed=7)[0], images[:50])


# ----------------------------------------------------------------------------- errors


def _fails(cfg: dict, out: Path, *needles: str, workers: int = 1) -> None:
    with pytest.raises(VaebenchError) as info:
        prepare(cfg, out, workers=workers)
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg
    assert not (out / "manifest.json").exists()
    temporaries = [p.name for p in out.glob(".*")] if out.exists() else []
    assert temporaries == []  # the half-decoded arrays are gone too


def test_missing_root(tmp_path):
    _fails(
        _cfg(root=tmp_path / "nope"),
        tmp_path / "out",
        "dataset.root",
        "nope",
        "list_eval_partition.txt",
        "img_align_celeba/img_align_celeba",
        "Kaggle",
    )
    _fails(_cfg("folder", None), tmp_path / "out", "dataset.root")


def test_wrong_layout(tmp_path):
    root = tmp_path / "random"
    (root / "images").mkdir(parents=True)
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    _fails(
        _cfg(root=root),
        tmp_path / "out",
        "dataset.root",
        "list_eval_partition.txt",
        "list_eval_partition.csv",
        "img_align_celeba/img_align_celeba",
        "found: list_eval_partition.txt",
    )


def _break(root: Path, name: str, how: str) -> None:
    path = root / "img_align_celeba" / name
    data = path.read_bytes()
    if how == "garbage":
        path.write_bytes(np.random.default_rng(3).bytes(len(data)))
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "small":
        Image.new("RGB", (100, 120)).save(path, format="JPEG")


@pytest.mark.parametrize(
    "how,needle,workers",
    [
        ("garbage", "not a readable image", 1),
        ("garbage", "not a readable image", 2),
        ("truncated", "truncated", 1),
        ("empty", "empty", 1),
        ("small", "100x120", 1),
    ],
)
def test_bad_image(tmp_path, celeba_copy, how, needle, workers):
    _break(celeba_copy, "000027.jpg", how)  # in partition 2; n_test=6 selects all of it
    cfg = _cfg(root=celeba_copy, n_test=6)
    extra = ("dataset.crop",) if how == "small" else ()
    _fails(cfg, tmp_path / "out", "000027.jpg", needle, *extra, workers=workers)


def test_too_many_images(tmp_path, celeba_official, folder):
    _fails(
        _cfg(root=celeba_official, n_test=50),
        tmp_path / "out",
        "dataset.n_test = 50",
        "partition 2 (test)",
        "has 6 images",
    )
    _fails(_cfg("folder", folder, n_train=100, crop=None), tmp_path / "o2", "dataset.n_train")


def test_missing_listed_file(tmp_path, celeba_copy):
    (celeba_copy / "img_align_celeba" / "000026.jpg").unlink()
    _fails(_cfg(root=celeba_copy, n_test=6), tmp_path / "out", "000026.jpg", "missing")


def test_failure_removes_stale_manifest(tmp_path, celeba_copy):
    out = tmp_path / "out"
    prepare(_cfg(root=celeba_copy, n_test=6), out)
    assert (out / "manifest.json").exists()
    _break(celeba_copy, "000027.jpg", "truncated")
    _fails(_cfg(root=celeba_copy, n_test=6), out, "000027.jpg")
    with pytest.raises(VaebenchError, match="manifest.json"):
        load_split(out, "train")


def test_bad_partition_file(tmp_path, celeba_kaggle):
    root = tmp_path / "k"
    shutil.copytree(celeba_kaggle, root)
    csv_path = root / "list_eval_partition.csv"
    csv_path.write_text(csv_path.read_text().replace("image_id,partition", "id,part"))
    _fails(_cfg(root=root), tmp_path / "out", "list_eval_partition.csv", "image_id,partition")
    csv_path.write_text("image_id,partition\n000001.jpg,7\n")
    _fails(_cfg(root=root), tmp_path / "out", "list_eval_partition.csv line 2")
