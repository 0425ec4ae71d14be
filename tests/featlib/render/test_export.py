"""featlib.render.export: CSV coordinates, .npz vectors and the Embedding Projector ZIP."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from featlib.errors import FeatlibError
from featlib.render.export import coordinates_csv, projector_zip, sprite, vectors_npz

NAMES = ["a.png", "cat/b,1.png", 'quote".png']
LABELS = ["cat", None, "tab\tand\nnewline"]


@pytest.fixture
def features():
    return np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)


@pytest.mark.parametrize("dims", [2, 3])
def test_coordinates_csv_round_trips(dims, features):
    embedding = features[:, :dims]
    text = coordinates_csv(embedding, NAMES, LABELS, {"cluster": [0, 1, 0]}).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["name", "label", *"xyz"[:dims], "cluster"]
    assert [r["name"] for r in rows] == NAMES
    assert [r["label"] for r in rows] == ["cat", "", LABELS[2]]
    got = np.array([[float(r[a]) for a in "xyz"[:dims]] for r in rows])
    np.testing.assert_array_equal(got, embedding.astype(np.float64))


@pytest.mark.parametrize(
    ("embedding", "names", "match"),
    [
        (np.zeros((3, 4)), NAMES, "embedding must be"),
        (np.zeros((2, 2)), NAMES, "one entry per row"),
    ],
)
def test_coordinates_csv_refuses_bad_shapes(embedding, names, match):
    with pytest.raises(FeatlibError, match=match):
        coordinates_csv(embedding, names, LABELS[: len(names)])


def test_vectors_npz_loads_without_pickle(features):
    data = np.load(
        io.BytesIO(vectors_npz(features, NAMES, LABELS, layer="block4_pool")), allow_pickle=False
    )
    np.testing.assert_array_equal(data["features"], features)
    assert data["names"].tolist() == NAMES
    assert data["labels"].tolist() == ["cat", "", LABELS[2]]
    assert str(data["layer"]) == "block4_pool"


def read_zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_projector_zip_files(features):
    thumbs = [np.full((8, 12, 3), i * 80, np.uint8) for i in range(3)]
    files = read_zip(projector_zip(features, LABELS, NAMES, thumbs))
    assert sorted(files) == ["metadata.tsv", "projector_config.pbtxt", "sprite.png", "tensors.tsv"]
    tensors = np.loadtxt(io.StringIO(files["tensors.tsv"].decode()), delimiter="\t")
    np.testing.assert_allclose(tensors, features, rtol=1e-5)
    metadata = files["metadata.tsv"].decode().splitlines()
    assert metadata[0] == "name\tlabel"
    assert [line.split("\t") for line in metadata[1:]] == [
        ["a.png", "cat"], ["cat/b,1.png", ""], ['quote".png', "tab and newline"]
    ]  # fmt: skip
    config = files["projector_config.pbtxt"].decode()
    expected = ['tensor_path: "tensors.tsv"', 'metadata_path: "metadata.tsv"', "tensor_shape: 5",
                'image_path: "sprite.png"', "single_image_dim: 64"]  # fmt: skip
    assert all(line in config for line in expected)
    assert Image.open(io.BytesIO(files["sprite.png"])).size == (128, 128)


def test_projector_zip_without_thumbnails_has_no_sprite(features):
    files = read_zip(projector_zip(features, LABELS, NAMES))
    assert "sprite.png" not in files
    assert "sprite" not in files["projector_config.pbtxt"].decode()


@pytest.mark.parametrize(("n", "side", "size"), [(1, 64, 64), (5, 64, 192), (20_000, 57, 8094)])
def test_sprite_fits_the_projector_limit(n, side, size):
    picture = Image.new("RGB", (4, 3))
    sheet, used = sprite([picture] * n)
    assert used == side and sheet.size == (size, size)


def test_sprite_refuses_nothing():
    with pytest.raises(FeatlibError, match="at least one"):
        sprite([])
