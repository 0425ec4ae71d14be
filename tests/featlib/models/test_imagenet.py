"""featlib.models.imagenet: class names and top-k, from a Keras cache laid out in a temporary
folder, and whether ImageNet predictions can go with a backbone."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from featlib.errors import WeightsUnavailableError
from featlib.models import imagenet
from featlib.models.backbones import load_model_file


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    return tmp_path / "models"


def write_class_index(folder):
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    (folder / imagenet.CLASS_INDEX_FILE).write_text(json.dumps(index))


def test_unavailable_reason_names_the_missing_files(keras_home):
    reason = imagenet.unavailable_reason("mobilenetv2")
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in reason
    assert imagenet.CLASS_INDEX_FILE in reason and str(keras_home) in reason
    write_class_index(keras_home)
    (keras_home / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5").write_bytes(b"")
    assert imagenet.unavailable_reason("mobilenetv2") is None


@pytest.mark.parametrize(
    ("weights", "same_weights", "expected"),
    [("imagenet", True, None), ("random", False, None), ("random", True, "need ImageNet weights"),
     ("file", False, "not your own model")],
)  # fmt: skip
def test_unavailable_for_a_backbone(keras_home, model_file, weights, same_weights, expected):
    write_class_index(keras_home)
    (keras_home / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5").write_bytes(b"")
    bb = dataclasses.replace(load_model_file(model_file), name="mobilenetv2", weights=weights)
    reason = imagenet.unavailable_for(bb, same_weights=same_weights)
    assert reason is None if expected is None else expected in reason
    (keras_home / imagenet.CLASS_INDEX_FILE).unlink()
    reason = imagenet.unavailable_for(bb, same_weights=same_weights)
    assert imagenet.CLASS_INDEX_FILE in reason if expected is None else expected in reason


def test_top_k_names_the_most_probable_classes(keras_home):
    write_class_index(keras_home)
    names = imagenet.class_names()
    (keras_home / imagenet.CLASS_INDEX_FILE).unlink()  # top_k reads no file: names are given
    probabilities = np.zeros((2, 1000), np.float32)
    probabilities[0, [7, 3]] = [0.75, 0.25]
    probabilities[1, 999] = 1.0
    assert imagenet.top_k(probabilities, names, k=2) == [
        [("class_7", 0.75), ("class_3", 0.25)],
        [("class_999", 1.0), ("class_0", 0.0)],
    ]


def test_class_names_reads_the_file_once_until_it_changes(keras_home, monkeypatch):
    write_class_index(keras_home)
    reads = []
    real_load = json.load
    monkeypatch.setattr(json, "load", lambda fh: reads.append(fh.name) or real_load(fh))
    assert imagenet.class_names() == imagenet.class_names()
    assert len(reads) == 1
    path = keras_home / imagenet.CLASS_INDEX_FILE
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert imagenet.class_names()[0] == "class_0" and len(reads) == 2


def test_class_names_missing_or_damaged(keras_home):
    with pytest.raises(WeightsUnavailableError, match="is not in"):
        imagenet.class_names()
    (keras_home / imagenet.CLASS_INDEX_FILE).write_text('{"0": ["n0", "tench"]}')
    with pytest.raises(WeightsUnavailableError, match="not Keras' ImageNet class index"):
        imagenet.class_names()


def test_top_k_checks_its_input():
    names = [f"class_{i}" for i in range(1000)]
    with pytest.raises(ValueError, match=r"\(n_images, 1000\)"):
        imagenet.top_k(np.zeros((2, 10)), names)
    with pytest.raises(ValueError, match="1000 class names"):
        imagenet.top_k(np.zeros((2, 1000)), names[:10])
