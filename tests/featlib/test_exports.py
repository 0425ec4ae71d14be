"""The public names of ``featlib``, pinned (as httpx's test_exported_members does)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import featlib

PUBLIC = [
    "ArchiveError", "Backbone", "BackboneSpec", "ChannelStats", "CheckReport",
    "DEFAULT_THRESHOLDS", "Extractor", "FeatlibError", "FeatureStore", "Features", "ISSUES",
    "ImageError", "ImageLimits", "ImageRecord", "ImageSet", "IssueTable", "LayerInfo", "METHODS",
    "ModelFileError", "OptionError", "Projection", "RESIZE_MODES", "Separability", "SourceError",
    "StoreError",
    "UnknownBackboneError", "UnknownLayerError", "WeightsUnavailableError", "available_weights",
    "block_outputs", "channel_stats", "check_dataset", "check_image_set", "coordinates_csv",
    "decode_image", "default_layer", "extract", "extract_set", "find_layer", "from_csv",
    "from_folder",
    "from_uploads", "from_zip", "get_spec", "gradcam", "GradCam", "kmeans_labels",
    "list_backbones", "list_layers",
    "list_samples", "load_backbone", "load_model_file", "load_samples", "nearest", "nearest_all",
    "open_source", "order_by_label", "procrustes_align", "project", "projector_zip",
    "report_thumbnails", "resize_image", "similarity_matrix", "top_channels", "vectors_npz",
    "Sweep", "layer_sweep", "sweep_scores", "ChannelHits", "Maximized", "maximize_channel",
    "receptive_field_box", "top_activations", "describe_sweep", "islands", "sweep_problem",
    "LayerScan", "channel_hits", "scan_layer",
    "warm_up_umap", "weights_key", "fetch_weights", "import_weights", "read_features",
]  # fmt: skip


def test_public_names_are_pinned():
    assert featlib.__all__ == sorted(PUBLIC)


def test_each_name_comes_from_its_module_and_is_public_there():
    for module, names in featlib._EXPORTS.items():
        source = importlib.import_module(module)
        for name in names:
            assert name in source.__all__, f"{module} does not export {name}"
            assert getattr(featlib, name) is getattr(source, name)


def test_import_featlib_does_not_import_tensorflow_or_ray():
    code = (
        "import sys, featlib; featlib.nearest, featlib.list_backbones, featlib.weights_key; "
        "featlib.read_features; print('tensorflow' in sys.modules, 'ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
