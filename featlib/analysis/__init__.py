"""What the features say: nearest neighbours, projections, clusters, channel statistics, the linear
probe and the dataset checks (``featlib.analysis.checks``).
"""

from featlib._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "featlib.analysis.cluster": ["kmeans_labels"],
        "featlib.analysis.maps": ["RANKINGS", "ChannelStats", "channel_stats", "top_channels"],
        "featlib.analysis.neighbors": [
            "nearest",
            "nearest_all",
            "order_by_label",
            "similarity_matrix",
        ],
        "featlib.analysis.probe": [
            "MAX_FOLDS",
            "content_groups",
            "cosine_silhouette",
            "out_of_fold_proba",
            "probe_accuracy",
            "probe_folds",
        ],
        "featlib.analysis.projection": [
            "METHODS",
            "Projection",
            "procrustes_align",
            "project",
            "warm_up_umap",
        ],
    },
)
