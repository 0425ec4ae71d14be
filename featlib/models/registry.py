"""The backbone registry: plain data, no TensorFlow.

A name maps to a frozen ``BackboneSpec`` that knows the Keras constructor, the module whose
``preprocess_input`` the model expects, its native input size and the ImageNet file names Keras
caches. ``list_backbones()`` is the discoverer; ``featlib.load_backbone()`` the doer. Importing
this module never imports TensorFlow, so the CLI can answer questions about backbones (and
compute store keys) without paying for it.

Example::

    >>> from featlib.models.registry import get_spec, list_backbones
    >>> len(list_backbones()), get_spec("vgg16").input_size
    (40, (224, 224))
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from featlib.errors import UnknownBackboneError

__all__ = [
    "DEFAULT_BACKBONE",
    "PREPROCESSING_MODES",
    "REGISTRY",
    "WEIGHTS_CHOICES",
    "BackboneSpec",
    "available_weights",
    "get_spec",
    "imagenet_cached",
    "keras_cache_dir",
    "list_backbones",
]

WEIGHTS_CHOICES = ("auto", "imagenet", "random", "offline")
PREPROCESSING_MODES = ("caffe", "tf", "torch", "scale", "none")


@dataclass(frozen=True)
class BackboneSpec:
    """One registry entry.

    Attributes:
        name: lower-case registry name, e.g. ``"vgg16"``.
        constructor: the class-like function in ``keras.applications``, e.g. ``"VGG16"``.
        module: the ``keras.applications`` submodule holding ``preprocess_input``.
        family: the architecture family shown to users, e.g. ``"VGG"``.
        input_size: native ``(height, width)``.
        min_size: the smallest side the architecture accepts without its top.
        preprocessing: the convention of ``preprocess_input``: ``"caffe"`` (BGR, mean
            subtracted), ``"tf"`` ([-1, 1]), ``"torch"`` (ImageNet mean/std) or ``"none"`` (the
            model rescales inside; it takes 0..255).
        imagenet_files: the file names Keras caches, ``(no top, with top)``.
        offline: whether featlib has bundled offline weights for it.
    """

    name: str
    constructor: str
    module: str
    family: str
    input_size: tuple[int, int]
    min_size: int
    preprocessing: str
    imagenet_files: tuple[str, str]
    offline: bool = False


def _spec(name, constructor, module, family, size, min_size, pre, files, offline=False):
    return BackboneSpec(
        name, constructor, module, family, (size, size), min_size, pre, files, offline
    )


def _efficientnet(suffix: str, size: int) -> BackboneSpec:
    return _spec(
        f"efficientnet{suffix}",
        f"EfficientNet{suffix.upper()}",
        "efficientnet",
        "EfficientNet",
        size,
        32,
        "none",
        (f"efficientnet{suffix}_notop.h5", f"efficientnet{suffix}.h5"),
    )


def _efficientnet_v2(suffix: str, size: int) -> BackboneSpec:
    return _spec(
        f"efficientnetv2{suffix}",
        f"EfficientNetV2{suffix.upper()}",
        "efficientnet_v2",
        "EfficientNetV2",
        size,
        32,
        "none",
        (f"efficientnetv2-{suffix}_notop.h5", f"efficientnetv2-{suffix}.h5"),
    )


def _convnext(size_name: str) -> BackboneSpec:
    return _spec(
        f"convnext{size_name}",
        f"ConvNeXt{size_name.capitalize() if size_name != 'xlarge' else 'XLarge'}",
        "convnext",
        "ConvNeXt",
        224,
        32,
        "none",
        (f"convnext_{size_name}_notop.h5", f"convnext_{size_name}.h5"),
    )


def _resnet(depth: int) -> BackboneSpec:
    stem = f"resnet{depth}_weights_tf_dim_ordering_tf_kernels"
    return _spec(
        f"resnet{depth}", f"ResNet{depth}", "resnet", "ResNet", 224, 32, "caffe",
        (f"{stem}_notop.h5", f"{stem}.h5"),
    )  # fmt: skip


def _resnet_v2(depth: int) -> BackboneSpec:
    stem = f"resnet{depth}v2_weights_tf_dim_ordering_tf_kernels"
    return _spec(
        f"resnet{depth}v2", f"ResNet{depth}V2", "resnet_v2", "ResNetV2", 224, 32, "tf",
        (f"{stem}_notop.h5", f"{stem}.h5"),
    )  # fmt: skip


def _densenet(depth: int) -> BackboneSpec:
    stem = f"densenet{depth}_weights_tf_dim_ordering_tf_kernels"
    return _spec(
        f"densenet{depth}", f"DenseNet{depth}", "densenet", "DenseNet", 224, 32, "torch",
        (f"{stem}_notop.h5", f"{stem}.h5"),
    )  # fmt: skip


def _mobilenet_v3(kind: str) -> BackboneSpec:
    stem = f"weights_mobilenet_v3_{kind}_224_1.0_float"
    return _spec(
        f"mobilenetv3{kind}", f"MobileNetV3{kind.capitalize()}", "mobilenet_v3", "MobileNetV3",
        224, 32, "none", (f"{stem}_no_top_v2.h5", f"{stem}.h5"),
    )  # fmt: skip


_SPECS: list[BackboneSpec] = [
    _spec(
        "vgg16", "VGG16", "vgg16", "VGG", 224, 32, "caffe",
        ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "vgg16_weights_tf_dim_ordering_tf_kernels.h5"),
        offline=True,
    ),
    _spec(
        "vgg19", "VGG19", "vgg19", "VGG", 224, 32, "caffe",
        ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "vgg19_weights_tf_dim_ordering_tf_kernels.h5"),
    ),
    *(_resnet(d) for d in (50, 101, 152)),
    *(_resnet_v2(d) for d in (50, 101, 152)),
    _spec(
        "inceptionv3", "InceptionV3", "inception_v3", "Inception", 299, 75, "tf",
        ("inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"),
    ),
    _spec(
        "inceptionresnetv2", "InceptionResNetV2", "inception_resnet_v2", "Inception", 299, 75,
        "tf",
        ("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"),
    ),
    _spec(
        "xception", "Xception", "xception", "Xception", 299, 71, "tf",
        ("xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "xception_weights_tf_dim_ordering_tf_kernels.h5"),
    ),
    _spec(
        "mobilenet", "MobileNet", "mobilenet", "MobileNet", 224, 32, "tf",
        ("mobilenet_1_0_224_tf_no_top.h5", "mobilenet_1_0_224_tf.h5"),
    ),
    _spec(
        "mobilenetv2", "MobileNetV2", "mobilenet_v2", "MobileNetV2", 224, 32, "tf",
        ("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
         "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    ),
    *(_mobilenet_v3(k) for k in ("small", "large")),
    *(_densenet(d) for d in (121, 169, 201)),
    *(
        _efficientnet(f"b{i}", s)
        for i, s in enumerate((224, 240, 260, 300, 380, 456, 528, 600))
    ),
    *(
        _efficientnet_v2(k, s)
        for k, s in (("b0", 224), ("b1", 240), ("b2", 260), ("b3", 300),
                     ("s", 384), ("m", 480), ("l", 480))
    ),
    *(_convnext(k) for k in ("tiny", "small", "base", "large", "xlarge")),
    _spec(
        "nasnetmobile", "NASNetMobile", "nasnet", "NASNet", 224, 32, "tf",
        ("nasnet_mobile_no_top.h5", "nasnet_mobile.h5"),
    ),
    _spec(
        "nasnetlarge", "NASNetLarge", "nasnet", "NASNet", 331, 32, "tf",
        ("nasnet_large_no_top.h5", "nasnet_large.h5"),
    ),
]  # fmt: skip

REGISTRY: dict[str, BackboneSpec] = {s.name: s for s in _SPECS}
# What the app and the command line start on: the classic teaching network, with offline weights.
DEFAULT_BACKBONE = "vgg16"


def list_backbones() -> list[str]:
    """Return the registry's backbone names, sorted.

    Example::

        >>> "resnet50" in featlib.list_backbones()
        True
    """
    return sorted(REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    """Return the registry entry for ``name``; raise ``UnknownBackboneError`` with suggestions."""
    key = str(name).lower()
    if key in REGISTRY:
        return REGISTRY[key]
    close = difflib.get_close_matches(key, REGISTRY, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownBackboneError(
        f"Unknown backbone {name!r}.{hint} featlib.list_backbones() lists all "
        f"{len(REGISTRY)} names."
    )


def keras_cache_dir() -> Path:
    """The folder where Keras keeps downloaded weights: ``$KERAS_HOME/models``.

    Read at each call (Keras itself reads ``KERAS_HOME`` only once, at import), so a test or a
    user can point it elsewhere at run time.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def imagenet_cached(name: str, include_top: bool = False) -> bool:
    """Whether the ImageNet weights file of ``name`` is already in the Keras cache."""
    spec = get_spec(name)
    return (keras_cache_dir() / spec.imagenet_files[int(include_top)]).is_file()


def available_weights(name: str) -> list[str]:
    """The weights choices that work here without a download, for tables and pickers."""
    spec = get_spec(name)
    out = ["random"]
    if imagenet_cached(name):
        out.insert(0, "imagenet")
    if spec.offline:
        out.append("offline")
    return out
