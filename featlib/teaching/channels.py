"""What one channel looks for: the images that excite it most, the patch it sees, and an image
made to excite it.

:func:`scan_layer` runs a set through a layer once, in batches (one batch of maps in memory at a
time), and keeps, per image and channel, the peak, where it is, and the mean, and the maps
themselves while they fit a memory budget; :func:`channel_hits` then picks any channel's top
images by indexing. The crop around the peak is the channel's receptive field
(:func:`receptive_field_box`). :func:`maximize_channel`
makes an image by gradient ascent on the input, with jitter and a total-variation penalty.

Example::

    >>> scan = scan_layer(bb, images, "block4_conv3")
    >>> hits = channel_hits(scan, 17, images, k=8)
    >>> crop = hits.crops[0]  # the patch of the top image that channel 17 responds to
    >>> picture = maximize_channel(bb, "block4_conv3", 17).image
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featlib._tf import keras, tf
from featlib.errors import FeatlibError
from featlib.models.backbones import Backbone
from featlib.models.layers import find_layer, layer_outputs

__all__ = [
    "MAP_BUDGET",
    "ChannelHits",
    "LayerScan",
    "Maximized",
    "channel_hits",
    "maximize_channel",
    "receptive_field_box",
    "scan_layer",
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
        inputs: uint8 arrays of shape (height, width, 3): the top images as the network
            received them.
        crops: uint8 arrays, the input images cut to ``boxes``.
        maps: float32 arrays of shape (h, w): the channel's map on each top image.
        class_means: label -> the channel's mean activation over the whole set's images of that
            label (None for unlabelled images).
    """

    records: list
    peaks: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    inputs: list[np.ndarray]
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


@dataclass(frozen=True)
class LayerScan:
    """Every channel of one layer over a set, scanned once: a new channel is then an index.

    Attributes:
        layer: the layer's name.
        records: the usable image records, in the set's order.
        peaks: float32 array of shape (n_images, channels): each image's highest activation.
        peak_index: int32 array of shape (n_images, channels): where it is, as a flat index
            into the map.
        means: float32 array of shape (n_images, channels): each image's mean activation.
        map_size: (height, width) of the layer's maps.
        maps: float16 array of shape (n_images, height, width, channels), or None when the
            set's maps would exceed the memory budget (the top images are then run again).
        input_size: the network's input (height, width).
        receptive_field: the layer's receptive field, in input pixels.
        resize_mode: how the images were fitted to the input.
    """

    layer: str
    records: list
    peaks: np.ndarray
    peak_index: np.ndarray
    means: np.ndarray
    map_size: tuple[int, int]
    maps: np.ndarray | None
    input_size: tuple[int, int]
    receptive_field: int
    resize_mode: str


MAP_BUDGET = 256 * 2**20  # bytes of float16 maps a scan keeps


def scan_layer(
    backbone: Backbone,
    image_set,
    layer: str,
    *,
    resize_mode: str = "stretch",
    batch_size: int = 16,
    extractor=None,
    max_map_bytes: int = MAP_BUDGET,
    progress=None,
) -> LayerScan:
    """Run a set through a layer once, keeping every channel's peak, its place and its mean.

    Args:
        backbone: a ``featlib.Backbone``.
        image_set: a ``featlib.ImageSet``; its usable images are scanned.
        layer: a spatial layer.
        resize_mode: see ``featlib.extract_set``.
        batch_size: images per forward pass (full maps of one batch are in memory).
        extractor: an ``Extractor`` of ``layer`` with ``pooling=None`` to reuse.
        max_map_bytes: keep the whole set's maps (float16) when they take at most this.
        progress: called as ``progress(done, total)`` after each batch.

    Returns:
        :class:`LayerScan`.

    Example::

        >>> scan = scan_layer(bb, images, "block4_conv3")
        >>> len(channel_hits(scan, 17, images, k=3).records)  # no network run: the maps were kept
        3
    """
    from featlib.extraction.extractor import Extractor

    info = _spatial_layer(backbone, layer, 0)
    records = list(image_set.ok)
    if not records:
        raise FeatlibError("The image set has no usable image.")
    ex = extractor or Extractor(backbone, layer, pooling=None, batch_size=batch_size)
    h, w = info.output_shape[:2]
    keep = len(records) * h * w * info.channels * 2 <= max_map_bytes
    maps = np.empty((len(records), h, w, info.channels), np.float16) if keep else None
    peaks, peak_index, means = [], [], []
    for start in range(0, len(records), batch_size):
        batch = image_set.load_batch(
            records[start : start + batch_size], backbone.input_size, resize_mode
        )
        out = np.asarray(ex.run_batch(batch)[0], np.float32)
        flat = out.reshape(len(out), h * w, info.channels)
        peaks.append(flat.max(axis=1))
        peak_index.append(flat.argmax(axis=1).astype(np.int32))
        means.append(flat.mean(axis=1))
        if maps is not None:
            maps[start : start + len(out)] = out
        if progress is not None:
            progress(start + len(out), len(records))
    return LayerScan(
        layer=layer,
        records=records,
        peaks=np.concatenate(peaks),
        peak_index=np.concatenate(peak_index),
        means=np.concatenate(means),
        map_size=(h, w),
        maps=maps,
        input_size=tuple(backbone.input_size),
        receptive_field=info.receptive_field,
        resize_mode=resize_mode,
    )


def channel_hits(scan: LayerScan, channel: int, image_set, k: int = 8, extractor=None):
    """The k images of a scanned set whose ``channel`` peaks highest, with crops and maps.

    Args:
        scan: a :class:`LayerScan` of ``image_set``.
        channel: the channel's index.
        image_set: the scanned ``featlib.ImageSet`` (its top images are decoded for the crops).
        k: how many images to keep.
        extractor: an ``Extractor`` of ``scan.layer`` with ``pooling=None``; needed only when
            the scan did not keep the maps.

    Returns:
        :class:`ChannelHits`.
    """
    channels = scan.peaks.shape[1]
    if not 0 <= int(channel) < channels:
        raise FeatlibError(f"channel must be in 0..{channels - 1}. Received: {channel}")
    if k < 1:
        raise FeatlibError(f"k must be at least 1. Received: {k}")
    peaks = scan.peaks[:, channel]
    order = np.argsort(-peaks, kind="stable")[:k]
    top = [scan.records[i] for i in order]
    images = image_set.load_batch(top, scan.input_size, scan.resize_mode)
    if scan.maps is not None:
        maps = scan.maps[order, ..., channel].astype(np.float32)
    elif extractor is not None:
        maps = np.asarray(extractor.run_batch(images)[0][..., channel], np.float32)
    else:
        raise ValueError("the scan kept no maps: pass the layer's extractor to compute them.")
    positions = np.stack(np.unravel_index(scan.peak_index[order, channel], scan.map_size), axis=1)
    boxes = np.array(
        [
            receptive_field_box(*pos, scan.map_size, scan.input_size, scan.receptive_field)
            for pos in positions
        ]
    )
    labels = [r.label for r in scan.records]
    means = scan.means[:, channel]
    class_means = {
        label: float(np.mean([m for m, lab in zip(means, labels, strict=True) if lab == label]))
        for label in dict.fromkeys(labels)
    }
    return ChannelHits(
        records=top,
        peaks=peaks[order],
        positions=positions,
        boxes=boxes,
        inputs=list(images),
        crops=[img[t:b, lf:r] for img, (t, lf, b, r) in zip(images, boxes, strict=True)],
        maps=list(maps),
        class_means=class_means,
    )


def top_activations(
    backbone: Backbone,
    image_set,
    layer: str,
    channel: int,
    k: int = 8,
    resize_mode: str = "stretch",
    batch_size: int = 16,
) -> ChannelHits:
    """The k images of a set whose ``channel`` of ``layer`` peaks highest: :func:`scan_layer`
    then :func:`channel_hits`. To look at several channels, scan once and call ``channel_hits``.

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
    from featlib.extraction.extractor import Extractor

    _spatial_layer(backbone, layer, channel)
    ex = Extractor(backbone, layer, pooling=None, batch_size=batch_size)
    scan = scan_layer(
        backbone, image_set, layer, resize_mode=resize_mode, batch_size=batch_size, extractor=ex
    )
    return channel_hits(scan, channel, image_set, k=k, extractor=ex)


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
    random_state: int = 0,
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
        random_state: seed of the noise and the jitter.

    Returns:
        :class:`Maximized`.
    """
    _spatial_layer(backbone, layer, channel)
    model = backbone.model
    upto = keras.Model(model.inputs, layer_outputs(model, [layer])[0])
    rng = np.random.default_rng(random_state)
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
