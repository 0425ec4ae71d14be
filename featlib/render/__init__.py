"""Layout: plotly figures, colour-mapped arrays and image tiles, and the files people take away
(coordinates CSV, projector ZIP, vectors). No Streamlit import.
"""

from featlib._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "featlib.render.export": ["coordinates_csv", "projector_zip", "sprite", "vectors_npz"],
        "featlib.render.figures": [
            "confusion_heatmap",
            "scatter",
            "similarity_heatmap",
            "sweep_animation",
            "sweep_figure",
            "sweep_projections",
        ],
        "featlib.render.images": [
            "COLORSCALES",
            "NO_LABEL",
            "COLORSCALES",
            "channel_grid",
            "colorize",
            "map_image",
            "overlay",
            "square",
        ],
    },
)
