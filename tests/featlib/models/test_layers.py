"""Layer records: shapes, parameters, blocks, strides and receptive fields."""

from __future__ import annotations

import pytest

import featlib
from featlib.errors import UnknownLayerError
from featlib.models.layers import find_layer, list_layers


def test_tiny_model_records(tiny_model):
    info = {i.name: i for i in list_layers(tiny_model)}
    assert list(info) == ["conv1", "pool1", "conv2", "gap", "probs"]
    assert info["conv1"].output_shape == (32, 32, 8) and info["conv1"].params == 3 * 3 * 3 * 8 + 8
    # conv 3x3: 3 px; pool 2/2: 4 px, stride 2; conv 3x3 stride 2: 4 + 2*2 = 8 px, stride 4.
    assert (info["conv1"].receptive_field, info["conv1"].stride) == (3, 1)
    assert (info["pool1"].receptive_field, info["pool1"].stride) == (4, 2)
    assert (info["conv2"].receptive_field, info["conv2"].stride) == (8, 4)
    assert not info["gap"].spatial and info["gap"].receptive_field is None
    assert info["probs"].type == "Dense" and info["probs"].channels == 3


def test_vgg16_receptive_fields_match_the_literature():
    bb = featlib.load_backbone("vgg16", weights="random")
    info = {i.name: i for i in list_layers(bb)}
    assert (info["block5_pool"].receptive_field, info["block5_pool"].stride) == (212, 32)
    assert (info["block3_conv3"].receptive_field, info["block3_conv3"].stride) == (40, 4)
    assert info["block4_conv1"].block == "block4"
    assert [i.name for i in featlib.block_outputs(bb)] == [f"block{i}_pool" for i in range(1, 6)]
    assert featlib.default_layer(list_layers(bb), featlib.block_outputs(bb)) == "block4_pool"


def test_default_layer_without_blocks_is_the_last_layer(tiny_model):
    layers = list_layers(tiny_model)
    assert featlib.default_layer(layers, []) == layers[-1].name
    assert featlib.default_layer(layers, layers[:1]) == layers[-1].name


@pytest.mark.parametrize(
    ("name", "layer", "block"),
    [
        ("resnet50", "conv4_block3_out", "conv4"),
        ("efficientnetb0", "block3a_expand_conv", "block3"),
        ("inceptionv3", "mixed5", "mixed5"),
        ("mobilenetv2", "block_13_expand", "block_13"),
    ],
)
def test_blocks_from_keras_names(name, layer, block):
    size = 96 if name == "inceptionv3" else 64
    bb = featlib.load_backbone(name, weights="random", input_size=(size, size))
    assert find_layer(bb, layer).block == block
    stages = featlib.block_outputs(bb)
    assert len(stages) >= 4
    strides = [s.stride for s in stages]
    assert strides == sorted(strides)


def test_nested_model_is_flattened(nested_model):
    names = [i.name for i in list_layers(nested_model)]
    assert names == [
        "identity_scale",
        "backbone/conv1",
        "backbone/pool1",
        "backbone/conv2",
        "head_conv",
        "head_pool",
        "head_probs",
    ]
    head = find_layer(nested_model, "head_conv")
    assert (head.receptive_field, head.stride) == (8, 4)


def test_unknown_layer_lists_closest_names_and_the_discoverer(tiny_model):
    with pytest.raises(
        UnknownLayerError, match=r"'conv3'.*Closest: conv2, conv1.*list_layers\(model\)"
    ):
        find_layer(tiny_model, "conv3")
