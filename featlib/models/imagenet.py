"""ImageNet class predictions from a registry backbone with its classification top.

Predictions need two files in the Keras cache (``featlib.models.backbones.keras_cache_dir()``): the
backbone's with-top weights (``get_spec(name).imagenet_files[1]``) and Keras' class index
``imagenet_class_index.json``. ``unavailable_reason`` says which are missing, and
``unavailable_for`` whether a loaded backbone can have predictions at all; nothing here
downloads. The class index is read as JSON, never unpickled, by ``class_names`` only.

With both files in the cache (not run as a doctest: it needs the ImageNet weights), the top
class of a photo of a cat::

    bb = featlib.load_backbone("mobilenetv2", weights="imagenet", include_top=True)
    probs = featlib.extract(bb, images, featlib.list_layers(bb)[-1].name, pooling=None)
    top_k(next(iter(probs.values())), class_names(), k=5)[0][0]  # ('tabby', 0.71)
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from featlib.errors import OptionError, WeightsUnavailableError
from featlib.models.registry import get_spec, keras_cache_dir

if TYPE_CHECKING:
    from featlib.models.backbones import Backbone

__all__ = [
    "CLASS_INDEX_FILE",
    "CLASS_INDEX_URL",
    "class_names",
    "top_k",
    "unavailable_for",
    "unavailable_reason",
]

CLASS_INDEX_FILE = "imagenet_class_index.json"
CLASS_INDEX_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)
_N_CLASSES = 1000


def unavailable_reason(name: str) -> str | None:
    """Why ImageNet predictions of ``name`` cannot be made here, or None when they can.

    Args:
        name: a registry name from ``featlib.list_backbones()``.

    Returns:
        None when both files are in the Keras cache; else one sentence naming the missing
        files and the folder to place them in.

    Example::

        >>> unavailable_reason("vgg16")  # offline, nothing cached
        'ImageNet predictions need vgg16_weights_tf_dim_ordering_tf_kernels.h5 and ...'
    """
    spec = get_spec(name)
    folder = keras_cache_dir()
    wanted = (spec.imagenet_files[1], CLASS_INDEX_FILE)
    missing = [f for f in wanted if not (folder / f).is_file()]
    if not missing:
        return None
    return (
        f"ImageNet predictions need {' and '.join(missing)} in {folder} (the Keras cache; "
        f"Keras downloads them on first use with internet, or place them there yourself: "
        f"the class index is {CLASS_INDEX_URL})."
    )


def unavailable_for(backbone: Backbone, *, same_weights: bool = False) -> str | None:
    """Why ImageNet predictions cannot go with ``backbone``, or None when they can.

    Predictions come from the registry architecture with ImageNet weights and its classifier
    (``load_backbone(backbone.name, weights="imagenet", include_top=True)``), whatever weights
    ``backbone`` itself was loaded with; a user's model or weights file has none.

    Args:
        backbone: a loaded ``featlib.Backbone``.
        same_weights: also require that ``backbone`` has ImageNet weights, for uses that stand
            the classifier in for ``backbone`` itself (Grad-CAM of its classes).

    Returns:
        None, or one sentence saying why not (see ``unavailable_reason``).
    """
    if backbone.weights == "file":
        return "they need a registry backbone, not your own model."
    if same_weights and backbone.weights != "imagenet":
        return f"they need ImageNet weights; {backbone.name} has {backbone.weights_label}."
    return unavailable_reason(backbone.name)


@functools.lru_cache(maxsize=4)
def _read_class_index(path: str, mtime_ns: int) -> tuple[str, ...]:
    try:
        with open(path, encoding="utf-8") as fh:
            index = json.load(fh)
        names = tuple(str(index[str(i)][1]) for i in range(_N_CLASSES))
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise WeightsUnavailableError(
            f"{path} is not Keras' ImageNet class index ({exc}); replace it with a fresh copy "
            f"of {CLASS_INDEX_URL}."
        ) from None
    return names


def class_names() -> list[str]:
    """The 1,000 ImageNet class names, in the order of the models' outputs.

    Returns:
        list of 1,000 str, e.g. ``names[281] == "tabby"``.

    Raises:
        WeightsUnavailableError: the class index is not in the Keras cache, or is damaged.
    """
    path = keras_cache_dir() / CLASS_INDEX_FILE
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{CLASS_INDEX_FILE} is not in {path.parent}; download {CLASS_INDEX_URL} there."
        )
    return list(_read_class_index(os.fspath(path), path.stat().st_mtime_ns))


def top_k(
    probabilities: np.ndarray, names: Sequence[str], k: int = 5
) -> list[list[tuple[str, float]]]:
    """The k most probable classes of each row, with their names.

    Args:
        probabilities: array of shape (n_images, 1000), a classifier's softmax output.
        names: the 1,000 class names, in the order of the outputs (``class_names()``).
        k: classes per image.

    Returns:
        one list per image of ``(class name, probability)``, most probable first.

    Example::

        >>> import json
        >>> from featlib.models.backbones import keras_cache_dir
        >>> index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
        >>> index["281"] = ["n02123045", "tabby"]
        >>> keras_cache_dir().mkdir(parents=True, exist_ok=True)
        >>> _ = (keras_cache_dir() / CLASS_INDEX_FILE).write_text(json.dumps(index))
        >>> p = np.zeros((1, 1000), np.float32); p[0, 281] = 0.5
        >>> top_k(p, class_names(), k=1)
        [[('tabby', 0.5)]]
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2 or probabilities.shape[1] != _N_CLASSES:
        raise OptionError(
            f"probabilities must be (n_images, {_N_CLASSES}). Received: {probabilities.shape}"
        )
    if len(names) != _N_CLASSES:
        raise OptionError(f"names must be {_N_CLASSES} class names. Received: {len(names)} names")
    if isinstance(k, bool) or not 1 <= int(k) <= _N_CLASSES:
        raise OptionError(f"k must be between 1 and {_N_CLASSES}. Received: k={k!r}")
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, : int(k)]
    return [
        [(names[c], float(row[c])) for c in classes]
        for row, classes in zip(probabilities, best, strict=True)
    ]
