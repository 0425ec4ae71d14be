"""Images in: decoding and validating files, and image sets from uploads, folders, ZIPs, CSVs
and the bundled samples.

An ``ImageSet`` holds one ``ImageRecord`` per file, identified by the SHA-256 of its bytes. A file
that cannot be used becomes a record whose ``error`` says why in plain words, and the rest of the
set goes on.
"""

from featlib._exports import lazy_modules

__getattr__, __dir__ = lazy_modules(
    globals(),
    [
        "featlib.images.decode",
        "featlib.images.imageset",
        "featlib.images.sources",
        "featlib.images.zip",
        "featlib.images.samples",
    ],
)
