"""Projections: the whole set as points in 2-D or 3-D; similar images land close together."""

import math

import streamlit as st

from featlib.analysis.projection import METHODS
from featlib.models import imagenet
from featlib.render import export
from ui import data, plot_events, resources, state
from ui.errors import fragment
from ui.explain import explain
from ui.sidebar import sidebar
from ui.state import url_widget

COLOUR_BY = {"label": "label", "cluster": "k-means cluster", "prediction": "ImageNet prediction"}
GALLERY_SIZE = 48


def projection_ui(n_images: int, predictions: bool, network: bool) -> dict:
    """The projection's method, dimensions, colouring and parameters, as keyword values;
    ``network``: a network made the vectors (colouring by its predictions may be possible)."""
    cols = st.columns([2, 1, 2.6, 1.6])
    method = url_widget(
        cols[0].radio, "Method", key=state.METHOD, default="pca", options=list(METHODS),
        format_func=resources.METHOD_NAMES.get, horizontal=True,
        help="PCA: a linear view, fast, keeps large distances. t-SNE and UMAP: non-linear, "
        "keep neighbourhoods (clusters), slower (UMAP's first run compiles for ~20 s).",
    )  # fmt: skip
    dims = url_widget(
        cols[1].radio, "Dimensions", key=state.DIMS, default=2, options=[2, 3], parse=int,
        horizontal=True, help="A flat map, or a 3-D cloud to turn with the mouse.",
    )  # fmt: skip
    options = [c for c in COLOUR_BY if c != "prediction" or predictions]
    colour = url_widget(
        cols[2].radio, "Colour by", key=state.COLOR_BY, default="label", options=options,
        format_func=COLOUR_BY.get, horizontal=True,
        help="The images' labels, groups k-means finds in the features, or the ImageNet class "
        "the network predicts.",
    )  # fmt: skip
    clusters = url_widget(
        cols[3].number_input, "Clusters", key=state.CLUSTERS, default=min(4, n_images),
        parse=int, valid=range(1, n_images + 1), min_value=1, max_value=n_images,
        disabled=colour != "cluster", help="Number of k-means clusters.",
    )  # fmt: skip
    if network and not predictions:
        st.caption(
            "Colour by ImageNet prediction needs a registry backbone's ImageNet weights with "
            "the classifier top: the Model page says which file to place where."
        )
    with st.expander("Parameters"):
        p = st.columns(3)
        perplexity = url_widget(
            p[0].slider, "Perplexity (t-SNE)", key=state.PERPLEXITY, default=30, parse=int,
            valid=range(2, 101), min_value=2, max_value=100,
            help="About how many neighbours each point cares about; clipped for small sets.",
        )  # fmt: skip
        neighbours = url_widget(
            p[1].slider, "Neighbours (UMAP)", key=state.NEIGHBOURS, default=15, parse=int,
            valid=range(2, 101), min_value=2, max_value=100,
            help="Local (small) versus global (large) structure; clipped for small sets.",
        )  # fmt: skip
        seed = url_widget(
            p[2].number_input, "Seed", key=state.PROJECTION_SEED, default=0, parse=int,
            valid=range(0, 2**31), min_value=0, step=1,
            help="Seed of every random step: the same seed, the same picture.",
        )  # fmt: skip
    return dict(method=method, dims=dims, colour=colour, clusters=clusters,
                perplexity=perplexity, neighbours=neighbours, seed=seed)  # fmt: skip


def quality_line(projection) -> str:
    """One line on how faithful the projection is."""
    q = projection.quality
    parts = []
    if math.isnan(q.get("explained_variance_total", 0.0)):
        return "Every image has the same vector at this layer: the points all lie on one spot."
    if "explained_variance_ratio" in q:
        pcs = " · ".join(f"PC{i + 1} {r:.1%}" for i, r in enumerate(q["explained_variance_ratio"]))
        parts.append(f"Explained variance: {pcs} ({q['explained_variance_total']:.1%} together)")
    parts.append(f"trustworthiness {q['trustworthiness']:.2f}")
    parts.append(f"neighbours kept {q['knn_preservation']:.2f}")
    return " · ".join(parts) + " (1 is perfect)."


def exports_ui(feats, x, embedding, colours, stem: str, source) -> None:
    """Download buttons: coordinates (CSV), vectors (.npz), TensorBoard projector (ZIP, with
    a sprite of thumbnails when the data set has pictures)."""
    cols = st.columns(3)
    cols[0].download_button(
        "Coordinates (CSV)",
        data=lambda: export.coordinates_csv(
            embedding, feats.names, feats.labels, {"colour": colours}
        ),
        file_name=f"{stem}.csv", mime="text/csv", key=state.EXPORT_CSV, on_click="ignore",
        icon=":material/download:",
    )  # fmt: skip
    cols[1].download_button(
        "Vectors (.npz)",
        data=lambda: export.vectors_npz(x, feats.names, feats.labels, source=stem),
        file_name=f"{stem}.npz", mime="application/octet-stream", key=state.EXPORT_NPZ,
        on_click="ignore", icon=":material/download:",
    )  # fmt: skip
    cols[2].download_button(
        "TensorBoard projector (ZIP)",
        data=lambda: export.projector_zip(
            x, feats.labels, feats.names,
            [resources.picture(source, r, 64) for r in feats.records] if source.pictures else None,
        ),
        file_name=f"{stem}_projector.zip", mime="application/zip", key=state.EXPORT_PROJECTOR,
        on_click="ignore", icon=":material/download:",
        help="tensors.tsv, metadata.tsv, sprite.png and projector_config.pbtxt: load them at "
        "projector.tensorflow.org or in TensorBoard.",
    )  # fmt: skip


def gallery(v, rows: list[int]) -> None:
    """The selected images, a page of them at a time (thumbnails are made for the page shown,
    once); for a feature file without pictures, their names and labels."""
    pages = math.ceil(len(rows) / GALLERY_SIZE)
    page = 1
    if pages > 1:
        page = st.number_input(
            f"Page (of {pages}, {GALLERY_SIZE} images each)", min_value=1, max_value=pages,
            value=1, step=1, key=state.GALLERY_PAGE,
        )  # fmt: skip
    shown = [v.feats.records[i] for i in rows[(page - 1) * GALLERY_SIZE : page * GALLERY_SIZE]]
    if v.data.pictures:
        st.image(
            resources.thumbnails(v.data, shown, 128),
            caption=[data.caption(r) for r in shown],
            width=110,
        )
    else:
        st.dataframe(
            {"name": [r.name for r in shown], "label": [r.label for r in shown]},
            hide_index=True, width="stretch",
        )  # fmt: skip
        st.caption(data.NO_PICTURES)


@fragment
def selection_ui(v, figure: str, dims: int) -> None:
    """The images picked on the plot, with a way to their neighbours when there is one. A
    fragment: a pick, or turning the gallery's page, runs this alone, not the page with its plot
    of up to 100,000 points."""
    rows = plot_events.selected_rows(state.SELECTION, state.PLOT, len(v.feats.records), figure)
    if st.session_state.get(state.GALLERY_ROWS) != rows:  # a new pick starts on its first page
        st.session_state[state.GALLERY_ROWS] = rows
        st.session_state.pop(state.GALLERY_PAGE, None)
    if not rows:
        st.caption(
            "Click a point to see its image here, or pick the box or lasso tool (top right of "
            "the plot) and draw around several."
            if dims == 2
            else "Click a point to see its image here; box and lasso work in 2-D."
        )
        return
    st.subheader(f"{len(rows):,} selected")
    if len(rows) == 1 and st.button("Find its neighbours", key=state.TO_NEIGHBOURS,
                                    icon=":material/join_inner:"):  # fmt: skip
        st.session_state[state.QUERY_FROM] = "set"
        st.session_state[state.QUERY] = v.feats.records[rows[0]].name
        st.switch_page("app_pages/neighbours.py")
    gallery(v, rows)


@fragment
def hover_ui(v) -> None:
    """The picture of the point under the mouse, beside it. A fragment: showing it runs this
    alone."""

    def card(row: int):
        record = v.feats.records[row]
        return resources.picture(v.data, record, 160), data.caption(record)

    plot_events.hover_picture(state.HOVER, state.PLOT, len(v.feats.records), card)


choices = sidebar(vectors=True)

st.title("Projections")
st.caption(
    f"Every image as one point, from its pooled {choices.layer} vector: images the layer finds "
    "similar land close together. Click a point, or draw a box or lasso, to see the images."
)
explain("projections")
v = resources.set_features(choices)
feats, x = v.feats, v.x
predictions = v.bb is not None and imagenet.unavailable_for(v.bb) is None
options = projection_ui(len(x), predictions, network=v.bb is not None)

projection = resources.projection(
    v.key, options["method"], options["dims"], options["seed"], options["perplexity"],
    options["neighbours"], x,
)  # fmt: skip
st.caption(f"{data.counted(len(x), 'point')}. {quality_line(projection)}")

if options["colour"] == "cluster":
    colours = [
        f"cluster {c}" for c in resources.kmeans(v.key, options["clusters"], options["seed"], x)
    ]
elif options["colour"] == "prediction":
    colours = [
        top[0][0] for top in resources.imagenet_top_k(v.bb.name, v.data, choices.resize_mode, 1)
    ]
else:
    colours = feats.labels
projection_key = (*v.key, options["method"], options["dims"], options["seed"],
                  options["perplexity"], options["neighbours"])  # fmt: skip
colouring = (options["colour"], options["clusters"], options["seed"])
figure = resources.scatter(
    projection_key, projection, colouring, COLOUR_BY[options["colour"]], colours, feats
)
plot_events.chart(figure, state.PLOT, options["dims"])
if v.data.pictures:
    hover_ui(v)
selection_ui(v, repr((projection_key, colouring)), options["dims"])

stem = f"{v.stem}_{choices.layer}_{options['method']}{options['dims']}d"
exports_ui(feats, x, projection.embedding, colours, stem, v.data)
resources.warm_up_umap()
if feats.errors:
    st.caption(f"{data.counted(len(feats.errors), 'file')} left out: the Home page says why.")
