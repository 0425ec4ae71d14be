"""featlib.images.sources: folders, CSVs and the dispatch of open_source."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from featlib import images as fi
from featlib.errors import ImageError, SourceError
from featlib.images import sources
from tests.fake_s3 import fake_s3
from tests.featlib.images.builders import (
    by_name,
    make_zip,
    noise,
    write_tree,
)

# --- folders -------------------------------------------------------------------------------------


@pytest.fixture
def pets(tmp_path) -> Path:
    folder = tmp_path / "pets"
    write_tree(
        folder,
        {
            "train/cat/a.png": noise(1),
            "train/cat/deeper/b.png": noise(2),
            "train/dog/c.jpg": noise(3, fmt="JPEG"),
            "Val/dog/d.png": noise(4),
            "bird/e.png": noise(5),
            "loose.png": noise(6),
            "bird/notes.txt": b"not an image, skipped",
            "bird/weird.dat": b"not an image either",
            "bird/.hidden.png": noise(7),
            ".cache/f.png": noise(8),
            "bird/nested.zip": make_zip([("g.png", noise(9))]),
        },
    )
    outside = tmp_path / "outside"
    write_tree(outside, {"secret.png": noise(10)})
    os.symlink(outside / "secret.png", folder / "bird" / "leak.png")
    os.symlink(outside, folder / "escape")
    os.symlink(folder / "bird" / "e.png", folder / "train" / "cat" / "alias.png")
    os.symlink(folder, folder / "bird" / "up")
    os.symlink("self.png", folder / "bird" / "self.png")
    return folder


def test_folder_labels_splits_and_skips(pets):
    image_set = fi.from_folder(pets)
    assert [(r.name, r.label, r.split, r.error is None) for r in image_set.records] == [
        ("Val/dog/d.png", "dog", "val", True),
        ("bird/e.png", "bird", None, True),
        ("bird/leak.png", "bird", None, False),
        ("bird/nested.zip", "bird", None, False),
        ("bird/self.png", "bird", None, False),
        ("bird/weird.dat", "bird", None, False),
        ("escape", None, None, False),
        ("loose.png", None, None, True),
        ("train/cat/a.png", "cat", "train", True),
        ("train/cat/alias.png", "cat", "train", True),
        ("train/cat/deeper/b.png", "cat", "train", True),
        ("train/dog/c.jpg", "dog", "train", True),
    ]
    errors = by_name(image_set)
    assert "outside the folder" in errors["bird/leak.png"].error
    assert "outside the folder" in errors["escape"].error
    assert "nested archives" in errors["bird/nested.zip"].error
    assert "symbolic link loop" in errors["bird/self.png"].error
    assert "not an image" in errors["bird/weird.dat"].error
    assert errors["train/cat/alias.png"].sha256 == errors["bird/e.png"].sha256
    assert image_set.summary()["splits"] == {"train": 4, "val": 1}
    assert image_set.load_batch(image_set.ok, (6, 6)).shape == (7, 6, 6, 3)


def test_folder_reads_lazily_and_notices_changes(pets):
    image_set = fi.from_folder(pets)
    record = by_name(image_set)["loose.png"]
    assert image_set.read_bytes(record) == noise(6)
    (pets / "loose.png").write_bytes(noise(11))
    with pytest.raises(ImageError, match=r"loose\.png: the file changed"):
        image_set.load(record)
    (pets / "loose.png").unlink()
    with pytest.raises(ImageError, match="file not found"):
        image_set.read_bytes(record)


def test_folder_with_a_root(pets, tmp_path):
    image_set = fi.from_folder(pets / "bird", root=tmp_path)
    assert by_name(image_set)["leak.png"].error is None  # inside the wider root
    with pytest.raises(SourceError, match="outside the allowed root"):
        fi.from_folder(tmp_path / "outside", root=pets)


def test_folder_limits(pets, tmp_path):
    with pytest.raises(SourceError, match="more than 3 files"):
        fi.from_folder(pets, fi.ImageLimits(max_files=3))
    with pytest.raises(SourceError, match="not a folder"):
        fi.from_folder(pets / "loose.png")
    with pytest.raises(SourceError, match="not a folder"):
        fi.from_folder(tmp_path / "missing")


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_source(tmp_path):
    data_dir = tmp_path / "data"
    write_tree(data_dir, {"img/a.png": noise(1), "img/b.png": noise(2), "../secret.png": noise(3)})
    os.symlink(tmp_path / "secret.png", data_dir / "img" / "link.png")
    rows = [
        "path,split,label",
        "img/a.png,train,cat",
        "img\\b.png,Validation,dog",
        "img/../img/a.png,, ",
        "../secret.png,train,cat",
        f"{tmp_path / 'secret.png'},train,cat",
        "C:\\secret.png,train,cat",
        "img/link.png,train,cat",
        "img/missing.png,test,dog",
        "img,test,dog",
        ",test,dog",
        "",
    ]
    (data_dir / "labels.csv").write_text("\n".join(rows), encoding="utf-8-sig")

    image_set = fi.from_csv(data_dir / "labels.csv")
    got = [(r.name, r.label, r.split, r.error) for r in image_set.records]
    assert [g[:3] for g in got] == [
        ("img/a.png", "cat", "train"),
        ("img\\b.png", "dog", "val"),
        ("img/../img/a.png", None, None),
        ("../secret.png", "cat", "train"),
        (str(tmp_path / "secret.png"), "cat", "train"),
        ("C:\\secret.png", "cat", "train"),
        ("img/link.png", "cat", "train"),
        ("img/missing.png", "dog", "test"),
        ("img", "dog", "test"),
        ("row 11", "dog", "test"),
    ]
    reasons = [g[3] or "" for g in got]
    assert reasons[:3] == ["", "", ""]
    assert "outside the CSV's folder through '..'" in reasons[3]
    assert "absolute path refused" in reasons[4] and "absolute path refused" in reasons[5]
    assert "outside the CSV's folder through a symbolic link" in reasons[6]
    assert "file not found" in reasons[7]
    assert "a folder, not a file" in reasons[8]
    assert "no usable path" in reasons[9]
    assert image_set.load_batch(image_set.ok, (4, 4)).shape == (3, 4, 4, 3)


def test_csv_of_uris_reads_them_through_pyarrow(tmp_path):
    bucket = tmp_path / "served" / "bucket"
    write_tree(bucket, {"cat/a.png": noise(1), "big.png": noise(2, size=(64, 64))})
    with fake_s3(tmp_path / "served") as uri:
        rows = [
            f"{uri('bucket/cat/a.png')},cat",
            f"{uri('bucket/missing.png')},dog",
            f"{uri('bucket/big.png')},dog",
            "nosuchscheme://bucket/a.png,cat",
            f"file://{bucket / 'cat' / 'a.png'},cat",
        ]
        (tmp_path / "list.csv").write_text("\n".join(rows))
        limits = fi.ImageLimits(max_file_bytes=len(noise(2, size=(64, 64))) - 1)
        image_set = fi.from_csv(tmp_path / "list.csv", limits)
        (ok,) = image_set.ok
        assert (ok.name, ok.label) == (rows[0][:-4], "cat")
        assert ok.sha256 == hashlib.sha256(noise(1)).hexdigest()
        assert image_set.read_bytes(ok) == noise(1)  # read again through pyarrow, hash checked
        assert image_set.file(ok) == ok.name
    reasons = [r.error for r in image_set.records[1:]]
    assert reasons[0] == "file not found"
    assert "too large" in reasons[1]
    assert "cannot be read through pyarrow (Unrecognized filesystem type" in reasons[2]
    assert "file:// URI refused" in reasons[3]


def test_listed_not_read_then_read_files(tmp_path):
    write_tree(tmp_path / "set", {"cat/a.png": noise(1), "cat/bad.png": b"junk", "x.txt": b"t"})
    (tmp_path / "set" / "dog.zip").write_bytes(b"PK")
    listed = fi.open_source(tmp_path / "set", read=False)
    assert [(r.name, r.label, r.sha256, r.error) for r in listed.ok] == [
        ("cat/a.png", "cat", None, None), ("cat/bad.png", "cat", None, None)
    ]  # fmt: skip
    assert [r.name for r in listed.errors] == ["dog.zip"]  # refused by its name, unread
    entries = [(r.name, listed.file(r), r.label, r.split) for r in listed.ok]
    read = fi.read_files(entries)
    assert read.records == [
        r for r in fi.open_source(tmp_path / "set").records if r.name != "dog.zip"
    ]


def test_csv_without_header_is_positional(tmp_path):
    write_tree(tmp_path, {"a.png": noise(1), "b.png": noise(2)})
    (tmp_path / "list.csv").write_text("a.png,cat\nb.png,dog,test\n")
    image_set = fi.from_csv(tmp_path / "list.csv")
    assert [(r.label, r.split) for r in image_set.ok] == [("cat", None), ("dog", "test")]


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"path,label\n\xff\xfe\xfa,cat\n", "not UTF-8"), (b"a.png," + b"x" * 200_000, "valid CSV")],
    ids=["not-utf8", "huge-field"],
)
def test_csv_that_cannot_be_read(tmp_path, content, match):
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(SourceError, match=match):
        fi.from_csv(tmp_path / "bad.csv")


def test_csv_limits(tmp_path):
    write_tree(tmp_path, {"a.png": noise(1)})
    (tmp_path / "many.csv").write_text("a.png,x\n" * 5)
    with pytest.raises(SourceError, match="more than 4 files"):
        fi.from_csv(tmp_path / "many.csv", fi.ImageLimits(max_files=4))
    with pytest.raises(SourceError, match="no such CSV"):
        fi.from_csv(tmp_path / "missing.csv")


def test_open_source_dispatches(pets, tmp_path, monkeypatch):
    (tmp_path / "pets.zip").write_bytes(make_zip([("cat/a.png", noise(1))]))
    (tmp_path / "list.csv").write_text("pets/loose.png,x\n")
    monkeypatch.setattr(sources, "load_samples", lambda name: f"sample {name}")

    assert fi.open_source(str(pets)).records == fi.from_folder(pets).records
    assert fi.open_source(tmp_path / "pets.zip").labels == ["cat"]
    assert fi.open_source(str(tmp_path / "list.csv")).labels == ["x"]
    assert fi.open_source("sample:faces") == "sample faces"


@pytest.mark.parametrize(
    ("source", "match"),
    [("pets/loose.png", "loose.png: not a folder, .zip or .csv"), ("nowhere", "no such file")],
)
def test_open_source_refuses(pets, tmp_path, source, match):
    with pytest.raises(SourceError, match=match):
        fi.open_source(tmp_path / source)


def _extracted_pets(tmp_path):
    """A folder of four pictures and the records a feature file made from it would hold."""
    folder = tmp_path / "pets"
    for i, name in enumerate(["cat/1.png", "cat/2.png", "dog/1.png", "dog/2.png"]):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(noise(seed=i))
    return folder, fi.from_folder(folder).records


def test_pictures_for_a_folder_match_by_path_and_are_read_when_shown(tmp_path):
    folder, records = _extracted_pets(tmp_path)
    gone = fi.ImageRecord("dog/3.png", "0" * 64, "dog", None, None, None, None, None)
    outside = fi.ImageRecord("../secret.png", "1" * 64, None, None, None, None, None, None)
    (tmp_path / "secret.png").write_bytes(noise(seed=9))
    pictures = fi.pictures_for([*records, gone, outside], folder)
    assert [r.name for r in pictures.records] == [*(r.name for r in records), "dog/3.png",
                                                  "../secret.png"]  # fmt: skip
    assert [r.error for r in pictures.records] == [None] * 4 + [fi.PICTURES_MISSING] * 2
    assert pictures.read_bytes(pictures.ok[2]) == (folder / "dog/1.png").read_bytes()
    (folder / "cat/2.png").write_bytes(noise(seed=7))  # changed after extraction
    with pytest.raises(ImageError, match=r"cat/2\.png.*changed"):
        pictures.thumbnail(pictures.ok[1])
    assert pictures.thumbnail(pictures.ok[0]).mode == "RGB"


def test_pictures_for_a_zip_match_by_content(tmp_path):
    folder, records = _extracted_pets(tmp_path)
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*.png"))[:3]:  # dog/2.png is left out
            zf.write(path, f"renamed_top/{path.relative_to(folder)}")
    pictures = fi.pictures_for(records, archive)
    assert [r.error for r in pictures.records] == [None, None, None, fi.PICTURES_MISSING]
    assert [pictures.read_bytes(r) for r in pictures.ok] == [
        (folder / r.name).read_bytes() for r in records[:3]
    ]


def test_pictures_for_refuses_what_is_neither_folder_nor_zip(tmp_path):
    _, records = _extracted_pets(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    for root in (tmp_path / "notes.txt", tmp_path / "nowhere"):
        with pytest.raises(SourceError, match=f"{root.name}.*folder or a .zip"):
            fi.pictures_for(records, root)
