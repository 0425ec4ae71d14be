"""Features out of a backbone: the extractor, the settings it runs with and their tuning, the set
pipeline, and the feature store that keeps every vector once.
"""

from featlib._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "featlib.extraction._device": ["device_name"],
        "featlib.extraction.extractor": ["Extractor", "extract"],
        "featlib.extraction.features": [
            "CHANNEL_POOLINGS",
            "POOLINGS",
            "PRECISIONS",
            "Features",
            "check_batch_size",
            "check_choice",
            "collect",
            "layer_names",
            "set_keys",
            "stored_features",
            "unique_records",
        ],
        "featlib.extraction.pipeline": ["decode_threads", "embed_image", "extract_set"],
        "featlib.extraction.settings": [
            "LONG_BATCH_S",
            "MARGIN",
            "MAX_BATCH_FACTOR",
            "MAX_GAIN",
            "Settings",
            "architecture",
            "auto_settings",
            "default_settings",
            "known_settings",
            "machine_id",
            "remembered",
            "tuning_cost",
            "worth_tuning",
        ],
        "featlib.extraction.store": [
            "DEFAULT_SIZE_LIMIT",
            "FeatureStore",
            "default_cache_dir",
            "read_json",
            "update_json",
        ],
        "featlib.extraction.tuning": ["tuned_settings"],
    },
)
