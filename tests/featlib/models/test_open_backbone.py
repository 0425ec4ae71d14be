"""``open_backbone``: one rule, shared by the command line and the app, for what a user gave:
a registry name with weights, or a model file."""

from __future__ import annotations

import pytest

from featlib.errors import ModelFileError
from featlib.models.backbones import open_backbone
from featlib.models.weights import is_model_file


@pytest.mark.parametrize(
    ("given", "expected"),
    [("mine.keras", True), ("old.h5", True), ("MINE.KERAS", True), ("dir/w.weights.h5", False),
     ("vgg16", False), ("model.keras.zip", False)],
)  # fmt: skip
def test_is_model_file(given, expected):
    assert is_model_file(given) is expected


def test_a_model_file_is_loaded_as_a_model(model_file):
    bb = open_backbone(str(model_file), "imagenet", preprocessing="tf")
    assert (bb.family, bb.weights, bb.preprocessing) == ("custom", "file", "tf")


def test_a_registry_name_is_loaded_with_its_weights():
    bb = open_backbone("mobilenetv2", "random", seed=3)
    assert (bb.name, bb.weights, bb.weights_id) == ("mobilenetv2", "random", "random:3")


def test_a_weights_file_goes_to_the_registry_backbone(tmp_path):
    with pytest.raises(ModelFileError, match="no such weights file"):
        open_backbone("mobilenetv2", str(tmp_path / "missing.weights.h5"))
