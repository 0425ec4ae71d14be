"""featlib: see what pretrained image networks see.

The public names are re-exported here and loaded on first use, so ``import featlib`` stays cheap
and TensorFlow is imported only by the parts that need it.

Example::

    >>> import featlib
    >>> bb = featlib.load_backbone("vgg16", weights="random", input_size=(64, 64))
    >>> images = featlib.load_samples("digits", max_images=12)
    >>> feats = featlib.extract_set(bb, images, "block4_pool")
    >>> featlib.project(feats.features["block4_pool"], method="pca").embedding.shape
    (12, 2)

    ``weights="offline"`` (the bundled HED weights) or ``"imagenet"`` give a trained network.
"""

from __future__ import annotations

from featlib._exports import lazy_exports

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
    "featlib.models.registry": ["BackboneSpec", "available_weights", "get_spec", "list_backbones"],
    "featlib.models.weights": ["fetch_weights", "import_weights", "weights_key"],
    "featlib.models.backbones": ["Backbone", "load_backbone", "load_model_file"],
    "featlib.models.layers": [
        "LayerInfo",
        "block_outputs",
        "default_layer",
        "find_layer",
        "list_layers",
    ],
    "featlib.extraction.extractor": ["Extractor", "extract"],
    "featlib.extraction.pipeline": ["extract_set"],
    "featlib.extraction.features": ["Features"],
    "featlib.extraction.store": ["FeatureStore"],
    "featlib.engine.shards": ["read_features"],
    "featlib.images.decode": [
        "ImageLimits",
        "ImageRecord",
        "RESIZE_MODES",
        "decode_image",
        "resize_image",
    ],
    "featlib.images.imageset": ["ImageSet"],
    "featlib.images.sources": ["from_csv", "from_folder", "from_uploads", "open_source"],
    "featlib.images.zip": ["from_zip"],
    "featlib.images.samples": ["list_samples", "load_samples"],
    "featlib.analysis.projection": [
        "METHODS",
        "Projection",
        "procrustes_align",
        "project",
        "warm_up_umap",
    ],
    "featlib.analysis.neighbors": ["nearest", "nearest_all", "order_by_label", "similarity_matrix"],
    "featlib.analysis.checks.issues": ["DEFAULT_THRESHOLDS", "ISSUES"],
    "featlib.analysis.checks.report": ["CheckReport", "IssueTable", "Separability"],
    "featlib.analysis.checks.dataset": ["check_dataset", "check_image_set", "report_thumbnails"],
    "featlib.analysis.cluster": ["kmeans_labels"],
    "featlib.render.export": ["coordinates_csv", "projector_zip", "vectors_npz"],
    "featlib.analysis.maps": ["ChannelStats", "channel_stats", "top_channels"],
    "featlib.teaching.saliency": ["GradCam", "gradcam"],
    "featlib.teaching.channels": [
        "ChannelHits",
        "LayerScan",
        "Maximized",
        "channel_hits",
        "maximize_channel",
        "receptive_field_box",
        "scan_layer",
        "top_activations",
    ],
    "featlib.teaching.sweep": [
        "Sweep",
        "describe_sweep",
        "islands",
        "layer_sweep",
        "sweep_problem",
        "sweep_scores",
    ],
}

__all__, __getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
