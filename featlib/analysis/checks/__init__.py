"""Dataset sanity checks: duplicates, near duplicates, outliers, likely label issues, image quality,
rare classes, shortcuts, leakage, and how well the classes separate.
"""

from featlib._exports import lazy_modules

__getattr__, __dir__ = lazy_modules(
    globals(),
    [
        "featlib._text",
        "featlib.analysis.checks.issues",
        "featlib.analysis.checks.report",
        "featlib.analysis.checks.hashes",
        "featlib.analysis.checks.label_issues",
        "featlib.analysis.checks.set_checks",
        "featlib.analysis.checks.pixels",
        "featlib.analysis.checks.dataset",
    ],
)
