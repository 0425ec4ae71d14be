"""featlib.images.samples: the bundled sample sets, offline."""

from __future__ import annotations

import socket

import pytest

from featlib import images as fi
from featlib.errors import FeatlibError, SourceError

# --- samples and dispatch ------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    ("name", "max_images", "labels"),
    [
        ("photos", None, {"photo": 7, "texture": 3}),
        ("faces", None, {"face": 100, "non-face": 100}),
        ("faces", 20, {"face": 10, "non-face": 10}),
        ("digits", 30, None),
    ],
)
def test_samples_load_offline(no_network, name, max_images, labels):
    image_set = fi.load_samples(name, max_images=max_images)
    summary = image_set.summary()
    assert summary["errors"] == 0 and summary["ok"] == (max_images or len(image_set))
    assert summary["labels"] == labels or labels is None
    assert all(len(r.sha256) == 64 for r in image_set.records)
    assert image_set.load_batch(image_set.ok[:3], (16, 16)).shape == (3, 16, 16, 3)


def test_digits_default_count_and_size():
    image_set = fi.load_samples("digits")
    assert len(image_set) == 300 and set(image_set.labels) == {str(d) for d in range(10)}
    assert {(r.width, r.height) for r in image_set.records} == {(32, 32)}


def test_samples_arguments():
    assert fi.list_samples() == ["photos", "faces", "digits"]
    with pytest.raises(SourceError, match=r"unknown sample set 'cats'.*list_samples"):
        fi.load_samples("cats")
    with pytest.raises(FeatlibError, match="max_images must be a positive integer"):
        fi.load_samples("digits", max_images=0)
