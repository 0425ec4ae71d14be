"""Features out of a backbone: the extractor, the settings it runs with and their tuning, the set
pipeline, and the feature store that keeps every vector once.
"""

from featlib._exports import lazy_modules

__getattr__, __dir__ = lazy_modules(
    globals(),
    [
        "featlib.extraction.features",
        "featlib.extraction._device",
        "featlib.extraction.store",
        "featlib.extraction.settings",
        "featlib.extraction.extractor",
        "featlib.extraction.tuning",
        "featlib.extraction.pipeline",
    ],
)
