"""Dataset sanity checks: duplicates, near duplicates, outliers, likely label issues, image quality,
rare classes, shortcuts, leakage, and how well the classes separate.
"""

from featlib._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "featlib._text": ["percent"],
        "featlib.analysis.checks.dataset": [
            "check_dataset",
            "check_image_set",
            "report_thumbnails",
        ],
        "featlib.analysis.checks.hashes": [
            "HASH_BITS",
            "MATCH_BITS",
            "hash_candidates",
            "image_hashes",
            "match",
            "match_bound",
        ],
        "featlib.analysis.checks.issues": ["DEFAULT_THRESHOLDS", "ISSUES", "TITLES"],
        "featlib.analysis.checks.label_issues": [
            "LabelIssues",
            "find_label_issues",
            "probe_labels",
            "reason",
        ],
        "featlib.analysis.checks.report": [
            "CheckReport",
            "IssueTable",
            "Separability",
        ],
        "featlib.analysis.checks.set_checks": [
            "PROPERTIES",
            "RARE_SHARE",
            "SHORTCUT_P_VALUE",
            "SHORTCUT_SKILL",
            "RareClass",
            "Shortcut",
            "find_shortcut",
            "leaked_images",
            "property_vectors",
            "rare_classes",
        ],
    },
)
