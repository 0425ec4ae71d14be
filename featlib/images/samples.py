"""The bundled sample sets (photos, faces, digits), made from scikit-image and scikit-learn
data, so that the app and the tests work offline."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from featlib.errors import FeatlibError, SourceError
from featlib.images.decode import ImageLimits
from featlib.images.imageset import Builder, ImageSet

__all__ = [
    "list_samples",
    "load_samples",
]


# --- samples -------------------------------------------------------------------------------------

# scikit-image pictures that ship with the package (no download), and their labels.
_PHOTOS = (
    ("astronaut", "photo"),
    ("camera", "photo"),
    ("chelsea", "photo"),
    ("coffee", "photo"),
    ("coins", "photo"),
    ("hubble_deep_field", "photo"),
    ("rocket", "photo"),
    ("brick", "texture"),
    ("grass", "texture"),
    ("gravel", "texture"),
)
_SAMPLES = {"photos": len(_PHOTOS), "faces": 200, "digits": 300}  # name -> default count


def list_samples() -> list[str]:
    """Names of the bundled sample sets, for ``load_samples``.

    Returns:
        list[str]: ``["photos", "faces", "digits"]``.

    Example::

        >>> list_samples()
        ['photos', 'faces', 'digits']
    """
    return list(_SAMPLES)


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _pick(total: int, n: int) -> np.ndarray:
    """n indices spread evenly over range(total), so every class is represented."""
    return np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int))


def load_samples(name: str = "photos", max_images: int | None = None) -> ImageSet:
    """A bundled sample set that needs no download, encoded as PNG bytes in memory.

    - ``"photos"``: 10 scikit-image pictures, labelled ``"photo"`` (7) or ``"texture"`` (3);
    - ``"faces"``: scikit-image's ``lfw_subset``, 25x25 grayscale, ``"face"`` / ``"non-face"``
      (100 each);
    - ``"digits"``: scikit-learn's ``load_digits``, 8x8 upscaled to 32x32, dark ink on white,
      labelled ``"0"`` .. ``"9"``; 300 of the 1,797 by default.

    Args:
        name: one of ``list_samples()``.
        max_images: how many images to take, spread evenly over the set; None for the default
            (all photos and faces, 300 digits).

    Returns:
        ImageSet: records named like ``"chelsea.png"``, ``"face_007.png"``, ``"digit_3_0042.png"``.

    Raises:
        SourceError: an unknown sample name.

    Example::

        >>> load_samples("digits", max_images=50).summary()["ok"]
        50
    """
    if name not in _SAMPLES:
        raise SourceError(f"unknown sample set {name!r}; list_samples() gives {list_samples()}")
    n = _SAMPLES[name] if max_images is None else max_images
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise FeatlibError(f"max_images must be a positive integer; received {max_images!r}")
    builder = Builder(ImageLimits(), f"the sample set {name!r}")
    if name == "photos":
        import skimage.data

        for i in _pick(len(_PHOTOS), n):
            picture, label = _PHOTOS[i]
            builder.add_bytes(f"{picture}.png", _png(getattr(skimage.data, picture)()), label)
    elif name == "faces":
        import skimage.data

        faces = skimage.data.lfw_subset()  # 100 faces, then 100 non-faces
        if faces.dtype.kind == "f":
            faces = np.rint(faces * 255)
        faces = faces.astype(np.uint8)
        for i in _pick(len(faces), n):
            label = "face" if i < len(faces) // 2 else "non-face"
            builder.add_bytes(f"{label}_{i:03d}.png", _png(faces[i]), label)
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        for i in _pick(len(digits.target), n):
            ink = np.rint(digits.images[i] * (255 / 16)).astype(np.uint8)
            picture = Image.fromarray(255 - ink).resize((32, 32), Image.Resampling.NEAREST)
            label = str(digits.target[i])
            builder.add_bytes(f"digit_{label}_{i:04d}.png", _png(np.asarray(picture)), label)
    return builder.build()
