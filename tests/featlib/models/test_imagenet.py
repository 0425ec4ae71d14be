"""ImageNet class names and top-k predictions from the Keras cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from featlib.errors import WeightsUnavailableError
from featlib.models import imagenet


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


def test_top_k_names_the_most_probable_classes(keras_home):
    write_class_index(keras_home)
    probabilities = np.zeros((2, 1000), np.float32)
    probabilities[0, [7, 3]] = [0.75, 0.25]
    probabilities[1, 999] = 1.0
    assert imagenet.top_k(probabilities, k=2) == [
        [("class_7", 0.75), ("class_3", 0.25)],
        [("class_999", 1.0), ("class_0", 0.0)],
    ]


def test_class_names_missing_or_damaged(keras_home):
    with pytest.raises(WeightsUnavailableError, match="is not in"):
        imagenet.class_names()
    (keras_home / imagenet.CLASS_INDEX_FILE).write_text('{"0": ["n0", "tench"]}')
    with pytest.raises(WeightsUnavailableError, match="not Keras' ImageNet class index"):
        imagenet.class_names()


def test_top_k_checks_its_input(keras_home):
    with pytest.raises(ValueError, match=r"\(n_images, 1000\)"):
        imagenet.top_k(np.zeros((2, 10)))
