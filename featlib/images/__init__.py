"""Images in: decoding and validating files, and image sets from uploads, folders, ZIPs, CSVs
and the bundled samples.

An ``ImageSet`` holds one ``ImageRecord`` per file, identified by the SHA-256 of its bytes. A file
that cannot be used becomes a record whose ``error`` says why in plain words, and the rest of the
set goes on.
"""

from featlib._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "featlib.images.decode": [
            "RESIZE_MODES",
            "ImageLimits",
            "ImageRecord",
            "decode_image",
            "resize_image",
        ],
        "featlib.images.imageset": ["ImageSet"],
        "featlib.images.samples": ["list_samples", "load_samples"],
        "featlib.images.sources": [
            "from_csv",
            "from_folder",
            "from_uploads",
            "open_source",
            "read_files",
        ],
        "featlib.images.zip": ["from_zip"],
    },
)
