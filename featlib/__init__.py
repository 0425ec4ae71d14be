"""featlib: see what pretrained image networks see.

The public names are re-exported here and loaded on first use, so ``import featlib`` stays cheap
and TensorFlow is imported only by the parts that need it.

Example::

    >>> import featlib
    >>> bb = featlib.load_backbone("vgg16", weights="offline")
    >>> images = featlib.load_samples("photos")
    >>> feats = featlib.extract_set(bb, images, "block4_pool")
    >>> proj = featlib.project(feats.features["block4_pool"], method="pca")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "featlib.errors": [
        "ArchiveError",
        "FeatlibError",
        "ImageError",
        "ModelFileError",
        "OptionError",
        "SourceError",
        "StoreError",
        "UnknownBackboneError",
        "UnknownLayerError",
        "WeightsUnavailableError",
    ],
    "featlib.registry": ["BackboneSpec", "available_weights", "get_spec", "list_backbones"],
    "featlib.weights": ["fetch_weights", "import_weights", "weights_key"],
    "featlib.backbones": ["Backbone", "load_backbone", "load_model_file"],
    "featlib.layers": ["LayerInfo", "block_outputs", "default_layer", "find_layer", "list_layers"],
    "featlib.extraction": ["Extractor", "extract", "extract_set"],
    "featlib.features": ["Features"],
    "featlib.store": ["FeatureStore"],
    "featlib.engine.shards": ["read_features"],
    "featlib.images": [
        "RESIZE_MODES",
        "ImageLimits",
        "ImageRecord",
        "ImageSet",
        "decode_image",
        "from_csv",
        "from_folder",
        "from_uploads",
        "from_zip",
        "list_samples",
        "load_samples",
        "open_source",
        "resize_image",
    ],
    "featlib.projection": ["METHODS", "Projection", "procrustes_align", "project", "warm_up_umap"],
    "featlib.neighbors": ["nearest", "nearest_all", "order_by_label", "similarity_matrix"],
    "featlib.checks": [
        "DEFAULT_THRESHOLDS",
        "ISSUES",
        "CheckReport",
        "IssueTable",
        "Separability",
        "check_dataset",
        "check_image_set",
        "report_thumbnails",
    ],
    "featlib.cluster": ["kmeans_labels"],
    "featlib.export": ["coordinates_csv", "projector_zip", "vectors_npz"],
    "featlib.maps": ["ChannelStats", "channel_stats", "top_channels"],
    "featlib.saliency": ["GradCam", "gradcam"],
    "featlib.channels": [
        "ChannelHits",
        "LayerScan",
        "Maximized",
        "channel_hits",
        "maximize_channel",
        "receptive_field_box",
        "scan_layer",
        "top_activations",
    ],
    "featlib.sweep": [
        "Sweep",
        "describe_sweep",
        "islands",
        "layer_sweep",
        "sweep_problem",
        "sweep_scores",
    ],
}

_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'featlib' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
