"""Home: what featlib does, the images to look at, and what is in them."""

import streamlit as st

from ui import data, resources, state
from ui.explain import lesson
from ui.sidebar import sidebar

GALLERY_SIZE = 60

st.title("featlib — what does the network see?")
st.markdown(
    "Pick some images, a pretrained network and one of its layers in the sidebar, then look: "
    "at the **feature maps** one image produces, at the whole set **projected** to a plane, at "
    "each image's **nearest neighbours**, at what is wrong with a labelled set (**checks**), and "
    "at the **model** itself."
)
links = st.columns(5)
links[0].page_link("app_pages/feature_maps.py", label="Feature maps", icon=":material/grid_view:")
links[1].page_link("app_pages/projections.py", label="Projections", icon=":material/scatter_plot:")
links[2].page_link("app_pages/neighbours.py", label="Neighbours", icon=":material/join_inner:")
links[3].page_link("app_pages/checks.py", label="Checks", icon=":material/fact_check:")
links[4].page_link("app_pages/model.py", label="Model", icon=":material/account_tree:")

with st.expander("Teaching a class? A lesson in six steps, with the bundled pictures"):
    lesson()

choices = sidebar(needs_model=False)  # Home shows the images even when no model loads


st.subheader("Your own images")
files = st.file_uploader(
    "Images, or a ZIP of class folders",
    accept_multiple_files=True,
    key=state.UPLOADS,
    on_change=data.uploads_changed,
    help="PNG, JPEG, GIF, BMP, TIFF or WebP files, as many as you like; or a ZIP whose folders "
    "are the labels (cat/1.jpg, dog/2.jpg). Files that cannot be used are listed with the "
    "reason; the others are kept. Your uploads stay in your session only.",
)
feature_file = st.file_uploader(
    "Or a feature file from featlib extract (.npz or .parquet)",
    type=["npz", "parquet"],
    key=state.FEATURE_UPLOAD,
    on_change=data.feature_file_changed,
    help="Its vectors become the data set for Projections, Neighbours and Checks: points and "
    "labels only, as the file holds no pictures. To see the pictures too, start the app with "
    "featlib app FILE --images FOLDER.",
)
uploaded = data.take_uploads(files)
uploaded = data.take_feature_file(feature_file) or uploaded
if uploaded is not None and not files and feature_file is None:
    st.caption(f"{uploaded.title} (kept while you switch pages).")
    st.button("Forget my uploads", key=state.FORGET_UPLOADS, on_click=data.forget_uploads)

current = data.current(choices.images)
if current is None:
    st.info("No uploads yet: add images above, or pick a sample set in the sidebar.")
    st.stop()

summary = current.images.summary()
st.subheader(current.title)
counts = st.columns(4)
if current.features is None:
    counts[0].metric("Files", summary["count"])
    counts[1].metric("Usable images", summary["ok"])
    counts[2].metric("Labels", len(summary["labels"]))
    counts[3].metric("Could not be used", summary["errors"])
else:
    counts[0].metric("Vectors", f"{summary['count']:,}")
    counts[1].metric("Layers", len(current.features.features))
    counts[2].metric("Labels", len(summary["labels"]))
    counts[3].metric("Without picture", f"{summary['errors']:,}" if current.pictures else "all")
    if not current.pictures:
        st.info(data.NO_PICTURES)

if summary["labels"]:
    st.dataframe(
        {"label": list(summary["labels"]), "images": list(summary["labels"].values())},
        hide_index=True,
        width=360,
    )

shown = current.images.ok[:GALLERY_SIZE] if current.pictures else []
if shown:
    st.image(
        resources.thumbnails(current, shown, 128),
        caption=[data.caption(r) for r in shown],
        width=110,
    )
if len(shown) == GALLERY_SIZE and len(current.images.ok) > GALLERY_SIZE:
    st.caption(f"… and {len(current.images.ok) - GALLERY_SIZE} more.")

if current.images.errors and current.pictures:
    st.warning(f"{data.counted(len(current.images.errors), 'file')} could not be used:")
    st.dataframe(
        {
            "file": [r.name for r in current.images.errors],
            "reason": [r.error for r in current.images.errors],
        },
        hide_index=True,
        width="stretch",
    )

if current.features is not None:  # the first projection will not wait for its imports
    resources.warm_up_analysis()
