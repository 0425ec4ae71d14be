"""The exceptions featlib raises, in one place.

Every error a user can cause is a ``FeatlibError``; it is a ``ValueError`` so that code
which already catches bad values keeps working (``OptionError`` is a ``TypeError`` too, for code
that catches a wrong type that way). Each message says what was expected and ends with
"Received: ..." echoing the value::

    ValueError
    └── FeatlibError
        ├── OptionError               an argument a function does not take (also a TypeError):
        │                             a choice not in its set, a number out of range, a bad shape
        ├── UnknownBackboneError      a backbone name that is not in the registry
        ├── UnknownLayerError         a layer name the model does not have
        ├── WeightsUnavailableError   weights that cannot be had here (offline, missing file)
        ├── ModelFileError            a model or weights file that cannot be loaded safely
        ├── ImageError                one image that cannot be used (names the file and why)
        ├── ArchiveError              a ZIP that is refused as a whole (bomb, not a ZIP)
        ├── SourceError               a folder, CSV or path that cannot be read as an image set
        └── StoreError                the feature store cannot be used (unwritable, full)
"""

from __future__ import annotations

__all__ = [
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
]


class FeatlibError(ValueError):
    """Base class of every error featlib raises on purpose."""


class OptionError(FeatlibError, TypeError):
    """An argument a function does not take: a choice outside its set (``pooling="mean"``), a
    number out of range (``batch_size=0``), an array of the wrong shape, an object of the wrong
    kind."""


class UnknownBackboneError(FeatlibError):
    """A backbone name that ``featlib.list_backbones()`` does not list."""


class UnknownLayerError(FeatlibError):
    """A layer name that ``featlib.list_layers(model)`` does not list."""


class WeightsUnavailableError(FeatlibError):
    """Weights that cannot be loaded here; the message says which file to place where."""


class ModelFileError(FeatlibError):
    """A model or weights file that is missing, corrupt, or needs unsafe deserialization."""


class ImageError(FeatlibError):
    """One image that cannot be used.

    Args:
        name: the file's name as the user knows it.
        reason: why it cannot be used, in plain words.
    """

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class ArchiveError(FeatlibError):
    """A ZIP archive refused as a whole (not a ZIP, too many entries, too large unpacked)."""


class SourceError(FeatlibError):
    """A folder, CSV or other source of images that cannot be read."""


class StoreError(FeatlibError):
    """The on-disk feature store cannot be used (unwritable folder, full disk)."""
