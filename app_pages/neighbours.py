"""Neighbours: the images a layer finds most similar to a query, and the whole set's
similarity matrix."""

import math

import streamlit as st

import featlib
from featlib import render
from featlib.render.images import NO_LABEL
from ui import data, resources, state
from ui.errors import fragment
from ui.explain import explain
from ui.sidebar import sidebar
from ui.state import url_widget

PICKER_SIZE = 5000  # more images: the query is typed, not picked from a list
MATRIX_SIZE = 300  # more images: the matrix is label by label (with one label, a sample)


def query_ui(v, uploads: bool) -> tuple[int | None, int]:
    """The query (an index into the set, or None for an uploaded image) and how many
    neighbours to show. ``uploads``: a new image can be the query (a network is loaded)."""
    cols = st.columns([1.1, 2.4, 2])
    source = url_widget(
        cols[0].radio, "Query", key=state.QUERY_FROM, default="set",
        options=["set", "upload"] if uploads else ["set"],
        format_func={"set": "from the set", "upload": "a new image"}.get,
        help="Look for the neighbours of an image of the set, or of a new one you upload (not "
        "for a feature file: no network runs on it).",
    )  # fmt: skip
    records = v.feats.records
    most = min(24, len(records) - 1)
    k = url_widget(
        cols[2].slider, "Neighbours", key=state.K, default=min(5, most), parse=int,
        valid=range(1, most + 1), min_value=1, max_value=most,
        help="How many of the most similar images to show.",
    )  # fmt: skip
    if source == "upload":
        return None, k
    rows = resources.rows_by_name(v)
    if len(records) <= PICKER_SIZE:
        name = url_widget(
            cols[1].selectbox, "Image", key=state.QUERY, default=records[0].name,
            options=list(rows), help="The image whose neighbours you want. Type to search.",
        )  # fmt: skip
    else:  # a list of 100,000 names would be sent to the browser on every run
        typed = st.session_state.get(state.QUERY)
        if typed is not None and typed not in rows:
            st.warning(f"No image of this set is named {typed!r}: names are paths such as "
                       f"{records[0].name!r}.")  # fmt: skip
        name = url_widget(
            cols[1].text_input, "Image", key=state.QUERY, default=records[0].name, valid=rows,
            help="The file name (with its folders) of the image whose neighbours you want; or "
            "click a point on the Projections page and follow its link here.",
        )  # fmt: skip
    return rows[name], k


def uploaded_query(bb, layer: str, pooling: str, resize_mode: str):
    """An uploaded query image, its pooled vector and name; the page waits for the upload."""
    upload = st.file_uploader(
        "Query image", key=state.QUERY_FILE,
        help="Any PNG, JPEG, GIF, BMP, TIFF or WebP image; it is not added to the set.",
    )  # fmt: skip
    if upload is None:
        st.info("Upload an image to find its neighbours in the set.")
        st.stop()
    image, vector = resources.embedded(
        bb, layer, pooling, resize_mode, upload.name, upload.getvalue()
    )
    return image, vector, upload.name


@fragment
def neighbours_ui(v, choices) -> None:
    """The query and its nearest neighbours, from the vectors ``v`` of the sidebar's
    ``choices``. A fragment: a new query runs this alone, not the page with its similarity
    matrix."""
    images, feats = v.data, v.feats
    index, k = query_ui(v, uploads=v.bb is not None)
    if index is None:
        query_image, query, query_name = uploaded_query(
            v.bb, choices.layer, choices.pooling, choices.resize_mode
        )
        found, scores = resources.neighbor_index(v).query(query, k=k)
    else:
        query_name = feats.names[index]
        query_image = resources.thumbnails(images, [feats.records[index]], 160)[0]
        found, scores = resources.neighbor_index(v).query_row(index, k=k)

    captions = [
        f"{n + 1}. {data.caption(feats.records[i], f'{s:.3f}')}"
        for n, (i, s) in enumerate(zip(found, scores, strict=True))
    ]
    if images.pictures:
        left, right = st.columns([1, 5])
        left.image(query_image, caption=f"query: {query_name}", width=150)
        right.image(
            resources.thumbnails(images, [feats.records[i] for i in found], 160),
            caption=captions,
            width=150,
        )
    else:
        st.dataframe({"neighbour": captions}, hide_index=True, width="stretch")
        st.caption(data.NO_PICTURES)


choices = sidebar(vectors=True)

st.title("Neighbours")
st.caption(
    f"The images whose pooled {choices.layer} vectors point the same way as the query's (cosine "
    "similarity: 1 is the same direction, 0 unrelated)."
)
explain("neighbours")
v = resources.set_features(choices)
feats, x = v.feats, v.x
neighbours_ui(v, choices)

st.subheader("Similarity of every pair")
labels = feats.labels
if len(x) > MATRIX_SIZE and len(set(labels)) > 1:
    names, means = resources.label_means(v)
    shown = [NO_LABEL if name is None else name for name in names]
    st.plotly_chart(render.similarity_heatmap(means, shown, shown), key="matrix")
    st.caption(
        f"With {len(x):,} images, one cell per pair of labels: the mean similarity between their "
        "images (on the diagonal, between two images of one label). A bright diagonal means each "
        "label's images look alike to this layer; bright cells elsewhere, labels it confuses."
    )
else:
    order = featlib.order_by_label(labels)
    if len(order) > MATRIX_SIZE:
        order = order[:: math.ceil(len(order) / MATRIX_SIZE)]
        st.caption(f"An even sample of {len(order)} of the {len(x):,} images, grouped by label.")
    matrix = featlib.similarity_matrix(x, order)
    st.plotly_chart(
        render.similarity_heatmap(
            matrix, [labels[i] for i in order], [feats.names[i] for i in order]
        ),
        key="matrix",
    )
    st.caption(
        "Bright blocks on the diagonal mean images of one label look alike to this layer; bright "
        "blocks elsewhere, labels it confuses."
    )
