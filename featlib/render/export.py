"""Files to take a projection elsewhere: CSV coordinates, ``.npz`` vectors, and the TensorBoard
Embedding Projector's four files in one ZIP.

Every function returns bytes, ready for a download button or ``Path.write_bytes``. Text fields
(names, labels) are written as data: tabs and line breaks inside them become spaces in the TSV
files, and the CSV is quoted by the ``csv`` module.

Example::

    >>> import numpy as np
    >>> x = np.eye(3, dtype=np.float32)
    >>> coordinates_csv(x[:, :2], ["a.png", "b.png", "c.png"], ["cat", None, "dog"])[:19]
    b'name,label,x,y\\r\\na.p'
    >>> len(vectors_npz(x, ["a.png", "b.png", "c.png"], [None] * 3)) > 0
    True
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from featlib.errors import FeatlibError
from featlib.render.images import square

__all__ = ["coordinates_csv", "projector_zip", "sprite", "vectors_npz"]

AXES = ("x", "y", "z")
# TensorBoard's projector reads sprites up to 8192 x 8192 pixels.
MAX_SPRITE_SIDE = 8192


def _check_rows(what: str, n: int, **columns: Sequence) -> None:
    for name, values in columns.items():
        if values is not None and len(values) != n:
            raise FeatlibError(
                f"{name} must have one entry per row of {what} ({n}). Received: {len(values)}"
            )


def _text(value) -> str:
    return "" if value is None else str(value)


def coordinates_csv(
    embedding: np.ndarray,
    names: Sequence[str],
    labels: Sequence[str | None],
    columns: Mapping[str, Sequence] | None = None,
) -> bytes:
    """A projection as CSV: ``name,label,x,y[,z]`` and any extra columns.

    Args:
        embedding: array of shape (n_samples, 2) or (n_samples, 3).
        names: one image name per row.
        labels: one label (or None, written empty) per row.
        columns: more columns by header, each with one value per row (e.g. ``{"cluster": ...}``).

    Returns:
        UTF-8 bytes of the CSV, one header line and one line per row.

    Example::

        >>> coordinates_csv(np.zeros((1, 2)), ["a.png"], ["cat"], {"cluster": [3]})
        b'name,label,x,y,cluster\\r\\na.png,cat,0.0,0.0,3\\r\\n'
    """
    embedding = np.asarray(embedding, dtype=np.float64)
    if embedding.ndim != 2 or embedding.shape[1] not in (2, 3):
        raise FeatlibError(f"embedding must be (n, 2) or (n, 3). Received: {embedding.shape}")
    n = len(embedding)
    extra = dict(columns or {})
    _check_rows("embedding", n, names=names, labels=labels, **extra)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "label", *AXES[: embedding.shape[1]], *extra])
    for i in range(n):
        coords = [repr(float(v)) for v in embedding[i]]
        writer.writerow(
            [names[i], _text(labels[i]), *coords, *(_text(c[i]) for c in extra.values())]
        )
    return out.getvalue().encode("utf-8")


def vectors_npz(
    features: np.ndarray,
    names: Sequence[str],
    labels: Sequence[str | None],
    **metadata: str,
) -> bytes:
    """Feature vectors with their names and labels as a compressed ``.npz``.

    The file loads with ``np.load(path, allow_pickle=False)``: strings are stored as fixed-width
    Unicode arrays, never as objects.

    Args:
        features: array of shape (n_samples, n_features).
        names: one image name per row.
        labels: one label (or None, stored as "") per row.
        **metadata: strings stored alongside, e.g. ``backbone="vgg16"``, ``layer="block4_pool"``.

    Returns:
        bytes of an ``.npz`` with arrays ``features`` (float32), ``names``, ``labels`` and one
        0-d string array per metadata key.

    Example::

        >>> data = np.load(io.BytesIO(vectors_npz(np.ones((2, 4)), ["a", "b"], [None, "x"])))
        >>> data["features"].shape, data["labels"].tolist()
        ((2, 4), ['', 'x'])
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise FeatlibError(f"features must be (n_samples, n_features). Received: {features.shape}")
    _check_rows("features", len(features), names=names, labels=labels)
    arrays = {
        "features": features,
        "names": np.array([str(n) for n in names], dtype=np.str_),
        "labels": np.array([_text(x) for x in labels], dtype=np.str_),
        **{k: np.array(str(v), dtype=np.str_) for k, v in metadata.items()},
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def sprite(thumbnails: Sequence, tile: int | None = None) -> tuple[Image.Image, int]:
    """Thumbnails laid out in a square grid, for the projector: row-major, one tile each.

    Args:
        thumbnails: PIL images or uint8 arrays (h, w, 3); each is fitted into a square tile,
            aspect ratio kept, padded with white.
        tile: side of a tile in pixels; by default as large as fits in 8192 x 8192, at most 64.

    Returns:
        ``(sprite, tile)``: an RGB ``PIL.Image.Image`` and the tile side used.

    Example::

        >>> picture, side = sprite([np.zeros((10, 20, 3), np.uint8)] * 5)
        >>> picture.size, side
        ((192, 192), 64)
    """
    n = len(thumbnails)
    if n == 0:
        raise FeatlibError("sprite needs at least one thumbnail.")
    per_row = math.ceil(math.sqrt(n))
    side = int(tile) if tile is not None else min(64, MAX_SPRITE_SIDE // per_row)
    if side < 1 or side * per_row > MAX_SPRITE_SIDE:
        raise FeatlibError(
            f"{n} thumbnails of {side} px do not fit in a {MAX_SPRITE_SIDE} px sprite."
        )
    sheet = Image.new("RGB", (per_row * side, per_row * side), "white")
    for i, thumb in enumerate(thumbnails):
        sheet.paste(square(thumb, side, "white"), ((i % per_row) * side, (i // per_row) * side))
    return sheet, side


def _tsv_field(value) -> str:
    return re.sub(r"[\t\r\n]+", " ", _text(value))


def projector_zip(
    features: np.ndarray,
    labels: Sequence[str | None],
    names: Sequence[str],
    thumbnails: Sequence | None = None,
    tensor_name: str = "featlib",
) -> bytes:
    """The TensorBoard Embedding Projector files, zipped.

    Unzip into a folder and load ``projector_config.pbtxt`` in TensorBoard (``--logdir`` on the
    folder), or load ``tensors.tsv`` and ``metadata.tsv`` at https://projector.tensorflow.org.

    Args:
        features: array of shape (n_samples, n_features).
        labels: one label (or None) per row.
        names: one image name per row.
        thumbnails: one picture per row for ``sprite.png``; no sprite when None.
        tensor_name: the embedding's name in the projector.

    Returns:
        bytes of a ZIP holding ``tensors.tsv``, ``metadata.tsv`` (columns ``name`` and
        ``label``), ``projector_config.pbtxt`` and, with thumbnails, ``sprite.png``.

    Example::

        >>> data = projector_zip(np.ones((2, 3)), [None, "a"], ["p", "q"])
        >>> sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())
        ['metadata.tsv', 'projector_config.pbtxt', 'tensors.tsv']
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise FeatlibError(f"features must be (n_samples, n_features). Received: {features.shape}")
    n = len(features)
    _check_rows("features", n, labels=labels, names=names, thumbnails=thumbnails)
    tensors = "".join("\t".join(f"{v:.6g}" for v in row) + "\n" for row in features)
    metadata = "name\tlabel\n" + "".join(
        f"{_tsv_field(name)}\t{_tsv_field(label)}\n"
        for name, label in zip(names, labels, strict=True)
    )
    config = [
        "embeddings {",
        f"  tensor_name: {json.dumps(str(tensor_name))}",
        f"  tensor_shape: {n}",
        f"  tensor_shape: {features.shape[1]}",
        '  tensor_path: "tensors.tsv"',
        '  metadata_path: "metadata.tsv"',
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tensors.tsv", tensors)
        archive.writestr("metadata.tsv", metadata)
        if thumbnails is not None:
            sheet, side = sprite(thumbnails)
            png = io.BytesIO()
            sheet.save(png, "PNG")
            archive.writestr("sprite.png", png.getvalue())
            config += [
                "  sprite {",
                '    image_path: "sprite.png"',
                f"    single_image_dim: {side}",
                f"    single_image_dim: {side}",
                "  }",
            ]
        archive.writestr("projector_config.pbtxt", "\n".join([*config, "}", ""]))
    return buf.getvalue()
