"""Layout: plotly figures, colour-mapped arrays and image tiles, and the files people take away
(coordinates CSV, projector ZIP, vectors). No Streamlit import.
"""

from featlib._exports import lazy_modules

__getattr__, __dir__ = lazy_modules(
    globals(),
    [
        "featlib.render.images",
        "featlib.render.figures",
        "featlib.render.export",
    ],
)
