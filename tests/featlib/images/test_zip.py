"""featlib.images.zip: ZIPs that escape, lie, bomb, or are not ZIPs at all."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile

import pytest

from featlib import images as fi
from featlib.errors import ArchiveError, SourceError
from tests.featlib.images.builders import (
    by_name,
    make_zip,
    noise,
    patch_entry,
    snapshot,
    symlink_entry,
)

# --- ZIP -----------------------------------------------------------------------------------------

REFUSED = [
    ("../evil.png", "'..'"),
    ("cats/../../evil.png", "'..'"),
    ("..\\evil.png", "'..'"),
    ("/tmp/evil.png", "absolute path"),
    ("C:/evil.png", "drive letter"),
    ("c:\\evil.png", "drive letter"),
]


@pytest.mark.parametrize(("entry", "reason"), REFUSED)
def test_zip_refuses_escaping_entries_and_writes_nothing(tmp_path, monkeypatch, entry, reason):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    data = make_zip([("good.png", noise(1)), (entry, noise(2)), (symlink_entry("link.png"), b"/")])

    image_set = fi.from_zip(data)

    errors = by_name(image_set)
    assert reason in errors[entry.replace("\\", "/")].error
    assert "symbolic link refused" in errors["link.png"].error
    assert [r.name for r in image_set.ok] == ["good.png"]
    assert image_set.load(image_set.ok[0]).shape == (6, 8, 3)
    assert snapshot(tmp_path) == before
    assert not (tmp_path.parent / "evil.png").exists()


def test_zip_with_two_entries_of_the_same_name_uses_the_first():
    data = make_zip([("cats/a.png", noise(1)), ("cats/a.png", noise(2)), ("cats/b.png", noise(3))])
    image_set = fi.from_zip(data)
    first, second, other = image_set.records
    assert first.name == second.name == "cats/a.png"
    assert first.error is None and first.sha256 == hashlib.sha256(noise(1)).hexdigest()
    assert "same name" in second.error
    assert other.error is None


def test_zip_of_thousands_of_tiny_entries():
    entries = [(f"c{i % 3}/{i}.png", noise(i, (2, 2))) for i in range(3_000)]
    image_set = fi.from_zip(make_zip(entries))
    assert len(image_set.ok) == 3_000
    assert image_set.summary()["labels"] == {"c0": 1_000, "c1": 1_000, "c2": 1_000}


def test_zip_skips_folders_and_hidden_files_reports_text_and_refuses_nested_archives():
    data = make_zip(
        [
            ("cats/", b""),
            ("cats/a.png", noise(1)),
            ("cats/.DS_Store", b"\x00\x01"),
            ("__MACOSX/cats/._a.png", b"\x00\x05"),
            ("./dogs/b.png", noise(2)),
            ("README.md", b"# pets"),
            ("more.zip", make_zip([("c.png", noise(3))])),
        ]
    )
    image_set = fi.from_zip(data)
    assert [(r.name, r.label, r.error) for r in image_set.records] == [
        ("README.md", None, "a text file, not an image: skipped"),
        ("cats/a.png", "cats", None),
        ("dogs/b.png", "dogs", None),
        ("more.zip", None, "nested archives are not expanded"),
    ]


def test_text_files_are_reported_alike_loose_and_inside_a_zip():
    zipped = make_zip([("cats/a.png", noise(1)), ("cats/notes.txt", b"hello")])
    image_set = fi.from_uploads(
        [("notes.txt", b"hello"), ("pets.zip", zipped), ("b.png", noise(2))]
    )
    assert [(r.name, r.error) for r in image_set.errors] == [
        ("notes.txt", "a text file, not an image: skipped"),
        ("pets.zip/cats/notes.txt", "a text file, not an image: skipped"),
    ]
    assert image_set.summary()["ok"] == 2


def test_zip_layout_skips_a_wrapping_folder():
    entries = [
        ("pets/train/cat/a.png", noise(1)),
        ("pets/train/dog/b.png", noise(2)),
        ("pets/val/cat/c.png", noise(3)),
        ("pets/test/d.png", noise(4)),
    ]
    image_set = fi.from_zip(make_zip(entries))
    assert [(r.name, r.label, r.split) for r in image_set.records] == [
        ("pets/test/d.png", None, "test"),
        ("pets/train/cat/a.png", "cat", "train"),
        ("pets/train/dog/b.png", "dog", "train"),
        ("pets/val/cat/c.png", "cat", "val"),
    ]
    (single,) = fi.from_zip(make_zip([("cat/a.png", noise(1))])).records
    assert single.label == "cat"


@pytest.mark.parametrize(
    ("placeholder", "raw"),
    [("cafXY", "café".encode()), ("cafX", "café".encode("cp437"))],
    ids=["utf8-without-flag", "cp437"],
)
def test_zip_names_without_the_utf8_flag(placeholder, raw):
    data = make_zip([(f"{placeholder}/a.png", noise(1))])
    data = data.replace(placeholder.encode(), raw)
    (record,) = fi.from_zip(data).records
    assert (record.name, record.label, record.error) == ("café/a.png", "café", None)


def test_zip_with_a_utf8_flagged_name():
    (record,) = fi.from_zip(make_zip([("猫/a.png", noise(1))])).records
    assert record.label == "猫" and record.error is None


BOMBS = [
    ("entries", [(f"{i}.png", noise(i)) for i in range(5)], {"max_zip_entries": 3}),
    ("unpacks to", [("a.png", noise(1)), ("b.png", noise(2))], {"max_zip_bytes": 200}),
    ("compression ratio", [("zeros.bmp", bytes(2 * 1024 * 1024))], {}),
    ("holds 5 files", [(f"{i}.png", noise(i)) for i in range(5)], {"max_files": 4}),
]


@pytest.mark.parametrize(("match", "entries", "limits"), BOMBS, ids=[b[0] for b in BOMBS])
def test_zip_bombs_are_refused_from_the_directory(monkeypatch, match, entries, limits):
    data = make_zip(entries)

    def never(*args, **kwargs):
        raise AssertionError("an entry was read")

    monkeypatch.setattr(zipfile.ZipFile, "open", never)
    with pytest.raises(ArchiveError, match=match):
        fi.from_zip(data, fi.ImageLimits(**limits))


@pytest.mark.parametrize("n_entries", [5, 65_536], ids=["zip", "zip64"])
def test_zip_entry_count_is_read_before_the_directory(monkeypatch, n_entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n_entries):
            zf.writestr(str(i), b"")

    def never(*args, **kwargs):
        raise AssertionError("the central directory was parsed")

    monkeypatch.setattr(zipfile, "ZipFile", never)
    with pytest.raises(ArchiveError, match=f"has {n_entries:,} entries"):
        fi.from_zip(buf.getvalue(), fi.ImageLimits(max_zip_entries=4))


def test_zip_end_record_that_understates_the_entries():
    data = bytearray(make_zip([(f"{i}.png", noise(i)) for i in range(5)]))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)  # "1 entry" on this disk and in total
    with pytest.raises(ArchiveError, match="has 5 entries"):
        fi.from_zip(bytes(data), fi.ImageLimits(max_zip_entries=4))


def test_zip_bomb_among_uploads_is_one_error_record():
    bomb = make_zip([("zeros.bmp", bytes(2 * 1024 * 1024))])
    nested = make_zip([("cats/a.png", noise(1)), ("cats/bad.png", b"nope")])
    image_set = fi.from_uploads([("bomb.zip", bomb), ("x.png", noise(2)), ("pets.ZIP", nested)])
    assert [(r.name, r.label, r.error is None) for r in image_set.records] == [
        ("bomb.zip", None, False),
        ("x.png", None, True),
        ("pets.ZIP/cats/a.png", "cats", True),
        ("pets.ZIP/cats/bad.png", "cats", False),
    ]
    assert "ZIP bomb" in image_set.records[0].error
    assert image_set.load_batch(image_set.ok, (3, 3)).shape == (2, 3, 3, 3)


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"size": 100}, "corrupt ZIP entry"),  # more data than declared: never read past it
        ({"size": 100_000}, "corrupt ZIP entry"),  # less data than declared
        ({"flags": 0x1}, "encrypted"),
    ],
)
def test_zip_entry_that_lies_about_itself(patch, reason):
    forged = noise(5, (32, 32))
    data = patch_entry(
        make_zip([("a.png", noise(1)), ("forged.png", forged)]), "forged.png", **patch
    )
    image_set = fi.from_zip(data)
    assert reason in by_name(image_set)["forged.png"].error
    assert [r.name for r in image_set.ok] == ["a.png"]


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 not really", noise(1)])
def test_not_a_zip(data):
    with pytest.raises(ArchiveError, match="not a readable ZIP"):
        fi.from_zip(data)


def test_zip_from_a_path(tmp_path):
    path = tmp_path / "pets.zip"
    path.write_bytes(make_zip([("cat/a.png", noise(1))]))
    assert fi.from_zip(path).labels == ["cat"]
    with pytest.raises(SourceError, match=r"missing\.zip: no such ZIP file"):
        fi.from_zip(tmp_path / "missing.zip")
