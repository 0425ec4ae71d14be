"""What a channel looks for: top images with receptive-field crops, and activation maximization."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

import featlib
from featlib._tf import keras
from featlib.errors import FeatlibError
from featlib.teaching.channels import (
    channel_hits,
    maximize_channel,
    receptive_field_box,
    scan_layer,
    top_activations,
)

SIZE = 48
SQUARE = 6


def bright_square_model(tmp_path) -> featlib.Backbone:
    """Two convolutions whose channel 0 adds up brightness (all-ones kernels), channel 1 its
    opposite; a pooling between them: channel 0 of conv2 fires on bright regions."""
    inputs = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Conv2D(2, 3, padding="same", activation="relu", use_bias=False, name="conv1")(
        inputs
    )
    h = keras.layers.MaxPooling2D(2, name="pool1")(h)
    h = keras.layers.Conv2D(2, 3, padding="same", activation="relu", use_bias=False, name="conv2")(
        h
    )
    model = keras.Model(inputs, h)
    sign = np.array([1.0, -1.0], np.float32)
    model.get_layer("conv1").set_weights([np.ones((3, 3, 3, 2), np.float32) * sign])
    model.get_layer("conv2").set_weights([np.ones((3, 3, 2, 2), np.float32) * np.eye(2) * sign])
    path = tmp_path / "bright.keras"
    model.save(path)
    return featlib.load_model_file(path, preprocessing="scale")


def dark_with_square(corner) -> bytes:
    pixels = np.full((SIZE, SIZE, 3), 20, np.uint8)
    if corner is not None:
        r, c = corner
        pixels[r : r + SQUARE, c : c + SQUARE] = 250
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def labelled(files: dict[str, bytes]) -> featlib.ImageSet:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return featlib.from_zip(buf.getvalue())


CORNERS = {"squares/a.png": (4, 30), "squares/b.png": (33, 9), "squares/c.png": (20, 20)}


def test_top_images_and_their_crops_contain_the_square(tmp_path):
    bb = bright_square_model(tmp_path)
    files = {name: dark_with_square(corner) for name, corner in CORNERS.items()}
    files.update({f"blank/{i}.png": dark_with_square(None) for i in range(3)})
    hits = top_activations(bb, labelled(files), "conv2", channel=0, k=3)
    assert {r.name for r in hits.records} == set(CORNERS)
    for record, box, crop in zip(hits.records, hits.boxes, hits.crops, strict=True):
        r, c = CORNERS[record.name]
        top, left, bottom, right = box
        assert top <= r and r + SQUARE <= bottom and left <= c and c + SQUARE <= right
        assert crop.shape == (bottom - top, right - left, 3)
        assert crop.max() == 250  # the square's pixels are in the crop
    assert hits.maps[0].shape == (SIZE // 2, SIZE // 2)
    assert np.all(np.diff(hits.peaks) <= 0)
    assert hits.class_means["squares"] > hits.class_means["blank"]


def test_one_scan_serves_every_channel_with_or_without_kept_maps(tmp_path):
    bb = bright_square_model(tmp_path)
    files = {name: dark_with_square(corner) for name, corner in CORNERS.items()}
    files.update({f"blank/{i}.png": dark_with_square(None) for i in range(3)})
    images = labelled(files)
    kept = scan_layer(bb, images, "conv2", batch_size=4)
    ex = featlib.Extractor(bb, "conv2", pooling=None)
    dropped = scan_layer(bb, images, "conv2", extractor=ex, max_map_bytes=0)
    assert kept.maps.shape == (6, SIZE // 2, SIZE // 2, 2) and dropped.maps is None
    for channel in (0, 1):
        whole = top_activations(bb, images, "conv2", channel, k=3)
        for hits in (channel_hits(kept, channel, images, k=3), channel_hits(dropped, channel,
                     images, k=3, extractor=ex)):  # fmt: skip
            assert [r.name for r in hits.records] == [r.name for r in whole.records]
            np.testing.assert_allclose(hits.peaks, whole.peaks, rtol=1e-6)
            np.testing.assert_array_equal(hits.boxes, whole.boxes)
            want = images.load_batch(hits.records, bb.input_size)
            np.testing.assert_array_equal(np.stack(hits.inputs), want)
            for a, b in zip(hits.maps, whole.maps, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * b.max())
            assert hits.class_means == pytest.approx(whole.class_means)
    with pytest.raises(ValueError, match="extractor"):
        channel_hits(dropped, 0, images)
    with pytest.raises(FeatlibError, match="channel must be in"):
        channel_hits(kept, 2, images)


def test_receptive_field_box_is_centred_and_clipped():
    assert receptive_field_box(3, 3, (8, 8), (32, 32), 8) == (10, 10, 18, 18)
    assert receptive_field_box(0, 7, (8, 8), (32, 32), 16) == (0, 22, 10, 32)


@pytest.mark.slow
def test_activation_maximization_raises_the_channel_a_lot():
    bb = featlib.load_backbone("vgg16", weights="offline", input_size=(64, 64))
    result = maximize_channel(bb, "block3_conv3", channel=5, steps=30)
    assert result.image.shape == (64, 64, 3) and result.image.dtype == np.uint8
    assert result.final > 10 * max(result.start, 1e-3)


@pytest.mark.parametrize(
    ("layer", "channel", "match"), [("conv2", 7, "channel must be in"), ("conv9", 0, "conv9")]
)
def test_bad_arguments(tmp_path, layer, channel, match):
    bb = bright_square_model(tmp_path)
    images = labelled({"a/x.png": dark_with_square((1, 1))})
    with pytest.raises(FeatlibError, match=match):
        top_activations(bb, images, layer, channel)
    with pytest.raises(FeatlibError, match=match):
        maximize_channel(bb, layer, channel, steps=1)


def test_maximization_works_with_every_preprocessing_mode():
    bb = featlib.load_backbone("mobilenetv2", weights="random", input_size=(32, 32))  # "tf" mode
    result = maximize_channel(bb, "block_1_expand_relu", channel=0, steps=2)
    assert result.image.shape == (32, 32, 3)


def test_random_state_seeds_the_noise_and_the_jitter():
    bb = featlib.load_backbone("mobilenetv2", weights="random", input_size=(32, 32))
    again = [
        maximize_channel(bb, "block_1_expand_relu", 0, steps=2, random_state=s) for s in (1, 1, 2)
    ]
    np.testing.assert_array_equal(again[0].image, again[1].image)
    assert not np.array_equal(again[0].image, again[2].image)
