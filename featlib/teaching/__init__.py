"""Teaching views: the layer sweep, the channel explorer and Grad-CAM."""

from featlib._exports import lazy_modules

__getattr__, __dir__ = lazy_modules(
    globals(),
    [
        "featlib._text",
        "featlib.teaching.sweep",
        "featlib.teaching.channels",
        "featlib.teaching.saliency",
    ],
)
