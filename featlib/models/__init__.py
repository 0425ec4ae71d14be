"""Backbones: the registry of Keras applications, weights (download, offline copies, import),
loading, layers, BatchNorm folding and ImageNet labels.
"""

from featlib._exports import lazy_modules

__getattr__, __dir__ = lazy_modules(
    globals(),
    [
        "featlib.models.registry",
        "featlib.models.weights",
        "featlib.models.layers",
        "featlib.models.imagenet",
        "featlib.models.backbones",
        "featlib.models.fold",
    ],
)
