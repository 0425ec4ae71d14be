"""Teaching: where meaning emerges in the network, and where it looked to decide."""

import streamlit as st

import featlib
import ui
from featlib import render
from ui import data, resources, state
from ui.state import url_widget

EXPLAIN_SWEEP = """
**What am I looking at?** Each block of the network turns the image into a new set of
features. For every block we ask a simple question: *can a straight line (a linear probe)
tell the labels apart using only these features?* The **probe accuracy** is the share of
images it gets right on images it was not fitted on (cross-validation); the dotted line is
chance. The **silhouette** (−1 to 1) says how tightly images of one label cluster together.

Early blocks see edges and colours, later ones textures and parts of objects, so the curve
usually rises with depth — **for trained weights**. The dashed lines are the same network with
**random weights**: same architecture, nothing learned. The gap between them is what training
added. The small plots below show the whole set at each block (PCA, each aligned to the one
before), so you can watch the labels pull apart.
"""

EXPLAIN_CAM = """
**What am I looking at?** Grad-CAM asks: *which places in the image made the score go up?*
It takes the chosen layer's feature maps, weighs each channel by how much the score would
change if that channel were stronger (its gradient), adds them up and keeps the positive
part. Bright means "evidence for the target was found here". A layer closer to the output gives
coarser but more meaningful maps; an early layer gives sharp maps of simple patterns.

For a classifier the target is a class; for a feature extractor (no classifier on top) it is
the strongest channel of the last layer — "what the deepest features respond to most".
"""


def sweep_tab(choices, bb) -> None:
    st.markdown(EXPLAIN_SWEEP)
    images = data.required(choices.images, min_images=4)
    if any(label is None for label in images.images.labels):
        st.info(
            "The layer sweep needs labels: pick a sample set, or upload a ZIP of class folders."
        )
        return
    registry = choices.model.file is None
    compare = url_widget(
        st.toggle, "Also random weights (the same network, untrained)", key=state.SWEEP_RANDOM,
        default=registry and choices.model.weights != "random", valid=[True, False],
        parse=lambda v: v == "True", disabled=not registry,
        help="Draw the same curves for random weights, dashed.",
    )  # fmt: skip
    if st.button("Run the sweep", key=state.RUN_SWEEP, type="primary"):
        st.session_state[state.SWEEP_RAN] = True
    if not st.session_state.get(state.SWEEP_RAN):
        st.caption(f"Extracts every block of {bb.name} for {len(images.images.ok)} images.")
        return
    sweeps = [resources.layer_sweep(bb, images, choices.resize_mode)]
    if compare and registry:
        random = resources.backbone(resources.ModelChoice(choices.model.backbone, "random"))
        sweeps.append(resources.layer_sweep(random, images, choices.resize_mode))
    st.plotly_chart(render.sweep_figure(sweeps), key="sweep")
    for sweep in sweeps:
        st.caption(f"{sweep.weights}: the set at each block")
        st.plotly_chart(render.sweep_projections(sweep), key=f"sweep_projection_{sweep.weights}")


def cam_tab(choices, bb) -> None:
    st.markdown(EXPLAIN_CAM)
    images = data.required(choices.images)
    info = featlib.find_layer(bb, choices.layer, resources.layers(bb))
    if not info.spatial:
        st.info(f"{choices.layer} has no spatial output; pick a convolution or pooling layer.")
        return
    names = [r.name for r in images.images.ok]
    name = url_widget(
        st.selectbox, "Image", key=state.CAM_IMAGE, default=names[0], options=names,
        help="The image to explain. Type to search.",
    )  # fmt: skip
    record = images.images.ok[names.index(name)]
    image = images.images.load(record, size=bb.input_size, resize_mode=choices.resize_mode)
    cam = featlib.gradcam(bb, image, choices.layer)
    left, right = st.columns(2)
    left.image(image, caption="What the network receives", width="stretch")
    target = (
        f"class {cam.target}" if cam.target_kind == "class" else f"last-layer channel #{cam.target}"
    )
    right.image(
        render.overlay(image, cam.heatmap),
        caption=f"Grad-CAM at {choices.layer} for {target} (score {cam.score:.3g})",
        width="stretch",
    )


choices = ui.sidebar()
bb = resources.backbone(choices.model)

st.title("Teaching")
st.caption(
    "Two questions a first course on convolutional networks asks: where does meaning emerge, "
    "and where did the network look?"
)
sweep, cam = st.tabs(["Where meaning emerges (layer sweep)", "Why did it decide (Grad-CAM)"])
with sweep:
    sweep_tab(choices, bb)
with cam:
    cam_tab(choices, bb)
