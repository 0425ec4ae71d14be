"""What one channel looks for: the images that excite it most, the patch it sees, and an image
made to excite it.

:func:`top_activations` runs a set through a layer in batches (one batch of maps in memory at a
time) and keeps, per image, the channel's peak, where it is, and its mean; the crop around the
peak is the channel's receptive field (:func:`receptive_field_box`). :func:`maximize_channel`
makes an image by gradient ascent on the input, with jitter and a total-variation penalty.

Example::

    >>> hits = top_activations(bb, images, "block4_conv3", channel=17, k=8)
    >>> crop = hits.crops[0]  # the patch of the top image that channel 17 responds to
    >>> picture = maximize_channel(bb, "block4_conv3", 17).image
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featlib._tf import keras, tf
from featlib.backbones import Backbone
from featlib.errors import FeatlibError
from featlib.layers import find_layer, layer_outputs

__all__ = [
    "ChannelHits",
    "Maximized",
    "maximize_channel",
    "receptive_field_box",
    "top_activations",
]


@dataclass(frozen=True)
class ChannelHits:
    """The images of a set that activate one channel most, strongest first.

    Attributes:
        records: the top-k image records.
        peaks: float array of shape (k,): each image's highest activation of the channel.
        positions: int array of shape (k, 2): (row, column) of the peak in the layer's map.
        boxes: int array of shape (k, 4): (top, left, bottom, right) of the receptive field around
            the peak, in the network's input pixels, clipped to the image.
        crops: uint8 arrays, the input images cut to ``boxes``.
        maps: float32 arrays of shape (h, w): the channel's map on each top image.
        class_means: label -> the channel's mean activation over the whole set's images of that
            label (None for unlabelled images).
    """

    records: list
    peaks: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    crops: list[np.ndarray]
    maps: list[np.ndarray]
    class_means: dict


def receptive_field_box(
    row: int, col: int, map_size: tuple[int, int], input_size: tuple[int, int], field: int
) -> tuple[int, int, int, int]:
    """The input region one map position sees: ``field`` pixels square around its centre.

    Args:
        row, col: the position in the map.
        map_size: (height, width) of the map.
        input_size: (height, width) of the network's input.
        field: the layer's receptive field, in input pixels (``LayerInfo.receptive_field``).

    Returns:
        (top, left, bottom, right), clipped to the input; bottom and right are exclusive.
    """
    (h, w), (height, width) = map_size, input_size
    centre_y, centre_x = (row + 0.5) * height / h, (col + 0.5) * width / w
    half = field / 2
    top, bottom = int(max(0, np.floor(centre_y - half))), int(min(height, np.ceil(centre_y + half)))
    left, right = int(max(0, np.floor(centre_x - half))), int(min(width, np.ceil(centre_x + half)))
    return top, left, bottom, right


def _spatial_layer(backbone: Backbone, layer: str, channel: int):
    info = find_layer(backbone, layer)
    if not info.spatial:
        raise FeatlibError(
            f"{layer} has no spatial output ({info.output_shape}); pick a convolution or pooling "
            "layer (featlib.list_layers shows the shapes)."
        )
    if not 0 <= int(channel) < info.channels:
        raise FeatlibError(f"channel must be in 0..{info.channels - 1}. Received: {channel}")
    return info


def top_activations(
    backbone: Backbone,
    image_set,
    layer: str,
    channel: int,
    k: int = 8,
    resize_mode: str = "stretch",
    batch_size: int = 16,
) -> ChannelHits:
    """The k images of a set whose ``channel`` of ``layer`` peaks highest.

    Args:
        backbone: a ``featlib.Backbone``.
        image_set: a ``featlib.ImageSet``; its usable images are scanned.
        layer: a spatial layer.
        channel: the channel's index.
        k: how many images to keep.
        resize_mode: see ``featlib.extract_set``.
        batch_size: images per forward pass (full maps of one batch are in memory).

    Returns:
        :class:`ChannelHits`.
    """
    from featlib.extraction import Extractor

    info = _spatial_layer(backbone, layer, channel)
    if k < 1:
        raise FeatlibError(f"k must be at least 1. Received: {k}")
    records = list(image_set.ok)
    if not records:
        raise FeatlibError("The image set has no usable image.")
    ex = Extractor(backbone, layer, pooling=None, batch_size=batch_size)
    peaks, positions, means = [], [], []
    for start in range(0, len(records), batch_size):
        batch = image_set.load_batch(
            records[start : start + batch_size], backbone.input_size, resize_mode
        )
        maps = ex.run_batch(batch)[0][..., channel]
        flat = maps.reshape(len(maps), -1)
        best = flat.argmax(axis=1)
        peaks.append(flat.max(axis=1))
        means.append(flat.mean(axis=1))
        positions.append(np.stack(np.unravel_index(best, maps.shape[1:]), axis=1))
    peaks, positions, means = (
        np.concatenate(peaks),
        np.concatenate(positions),
        np.concatenate(means),
    )
    order = np.argsort(-peaks, kind="stable")[:k]
    top = [records[i] for i in order]
    images = image_set.load_batch(top, backbone.input_size, resize_mode)
    maps = ex.run_batch(images)[0][..., channel]
    boxes = np.array(
        [
            receptive_field_box(
                *positions[i], maps.shape[1:], backbone.input_size, info.receptive_field
            )
            for i in order
        ]
    )
    labels = [r.label for r in records]
    class_means = {
        label: float(np.mean([m for m, lab in zip(means, labels, strict=True) if lab == label]))
        for label in dict.fromkeys(labels)
    }
    return ChannelHits(
        records=top,
        peaks=peaks[order],
        positions=positions[order],
        boxes=boxes,
        crops=[
            img[top:bottom, left:right]
            for img, (top, left, bottom, right) in zip(images, boxes, strict=True)
        ],
        maps=list(maps.astype(np.float32)),
        class_means=class_means,
    )


@dataclass(frozen=True)
class Maximized:
    """An image made to excite one channel.

    Attributes:
        image: uint8 array of shape (height, width, 3).
        start: the channel's mean activation on the starting noise.
        final: the channel's mean activation on ``image``.
    """

    image: np.ndarray
    start: float
    final: float


def _total_variation(x):
    return tf.reduce_mean(tf.abs(x[:, 1:] - x[:, :-1])) + tf.reduce_mean(
        tf.abs(x[:, :, 1:] - x[:, :, :-1])
    )


def maximize_channel(
    backbone: Backbone,
    layer: str,
    channel: int,
    *,
    steps: int = 40,
    step_size: float = 8.0,
    jitter: int = 4,
    tv_weight: float = 1.0,
    seed: int = 0,
) -> Maximized:
    """Gradient ascent on the input: an image whose ``channel`` of ``layer`` is as high as possible.

    Starts from faint noise around grey; each step shifts the image by a random jitter (so the
    result does not rely on exact pixel positions), follows the normalised gradient of the
    channel's mean activation minus ``tv_weight`` times the total variation (which favours
    smooth patterns over pixel noise), and keeps pixels in 0..255. Only the network up to
    ``layer`` runs.

    Args:
        backbone: a ``featlib.Backbone``.
        layer: a spatial layer.
        channel: the channel's index.
        steps: gradient steps.
        step_size: pixels (0..255 scale) moved per step along the normalised gradient.
        jitter: largest random shift per step, in pixels.
        tv_weight: weight of the total-variation penalty (per-pixel mean differences).
        seed: seed of the noise and the jitter.

    Returns:
        :class:`Maximized`.
    """
    _spatial_layer(backbone, layer, channel)
    model = backbone.model
    upto = keras.Model(model.inputs, layer_outputs(model, [layer])[0])
    rng = np.random.default_rng(seed)
    h, w = backbone.input_size
    x = tf.Variable(128 + rng.normal(0, 8, (1, h, w, 3)).astype(np.float32))

    @tf.function
    def activation(pixels):
        out = tf.cast(upto(backbone.preprocess(pixels), training=False), tf.float32)
        return tf.reduce_mean(out[..., channel])

    @tf.function
    def step(shift):
        with tf.GradientTape() as tape:
            shifted = tf.roll(x, shift, axis=(1, 2))
            objective = activation(shifted) - tv_weight * _total_variation(shifted)
        grad = tape.gradient(objective, x)
        x.assign(tf.clip_by_value(x + step_size * grad / (tf.math.reduce_std(grad) + 1e-8), 0, 255))

    start = float(activation(tf.identity(x)))
    for _ in range(steps):
        step(tf.constant(rng.integers(-jitter, jitter + 1, 2), tf.int32))
    image = np.asarray(x.numpy()[0].round(), np.uint8)
    return Maximized(
        image=image, start=start, final=float(activation(image[None].astype(np.float32)))
    )
