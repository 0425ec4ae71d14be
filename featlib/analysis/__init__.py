"""What the features say: nearest neighbours, projections, clusters, channel statistics, the linear
probe and the dataset checks (``featlib.analysis.checks``).
"""

from featlib._exports import lazy_modules

__getattr__, __dir__ = lazy_modules(
    globals(),
    [
        "featlib.analysis.neighbors",
        "featlib.analysis.projection",
        "featlib.analysis.cluster",
        "featlib.analysis.maps",
        "featlib.analysis.probe",
    ],
)
