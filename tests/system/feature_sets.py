"""Made-up feature files with their pictures, as ``featlib extract`` would leave them: for the
feature-file app's browser test and ``benchmarks/app_scale.py`` (100,000 images).

The vectors are a Gaussian mixture, one centre per class, so a projection shows the classes
as clouds; each picture is a small PNG in its class's colour with noise of its own, so every
file has its own SHA-256.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from featlib.cli.commands import write_features
from featlib.extraction.features import Features
from featlib.images.decode import ImageRecord

__all__ = ["LAYER", "class_names", "write_feature_set"]

LAYER = "embedding"


def class_names(n_classes: int) -> list[str]:
    """``class_00``, ``class_01``, ...: names that sort in class order."""
    return [f"class_{c:02d}" for c in range(n_classes)]


def _picture(hue: float, rng: np.random.Generator, side: int) -> bytes:
    colour = np.array(colorsys.hsv_to_rgb(hue, 0.8, 0.9)) * 255
    pixels = np.clip(colour + rng.normal(0, 40, (side, side, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def write_feature_set(
    folder: str | Path,
    n: int,
    dim: int = 512,
    n_classes: int = 20,
    side: int = 24,
    seed: int = 0,
    suffix: str = ".parquet",
) -> tuple[Path, Path]:
    """Write ``n`` pictures under ``folder/images/<class>/<i>.png`` and their made-up vectors to
    ``folder/features<suffix>``, rows in the order of the pictures, classes taken in turn.

    Returns:
        ``(feature file, images folder)``.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    classes = class_names(n_classes)
    centres = rng.normal(0, 1, (n_classes, dim)).astype(np.float32)
    which = np.arange(n) % n_classes
    x = centres[which] + rng.normal(0, 0.6, (n, dim)).astype(np.float32)
    images = folder / "images"
    for name in classes:
        (images / name).mkdir(parents=True, exist_ok=True)
    records = []
    for i, c in enumerate(which):
        name = f"{classes[c]}/{i:06d}.png"
        data = _picture(c / n_classes, rng, side)
        (images / name).write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        records.append(ImageRecord(name, sha, classes[c], None, side, side, "RGB", None))
    out = folder / f"features{suffix}"
    write_features(out, Features(records=records, features={LAYER: x}, errors=[]))
    return out, images
