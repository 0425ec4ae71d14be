"""Teaching: where meaning emerges in the network, and where it looked to decide."""

import streamlit as st

import featlib
from featlib import render
from featlib.models import imagenet
from featlib.teaching.saliency import SCORES
from featlib.teaching.sweep import describe_sweep, sweep_problem
from ui import data, resources, state
from ui.explain import explain, lesson
from ui.sidebar import sidebar
from ui.state import flag, url_widget


def sweep_view(choices, bb) -> None:
    explain("sweep")
    images = data.required(choices.images)
    problem = sweep_problem([r.label for r in images.images.ok])
    if problem is not None:
        st.info(f"{problem} The channel explorer and Grad-CAM work on any set.")
        return
    registry = choices.model.file is None
    comparable = registry and bb.weights != "random"
    compare = url_widget(
        st.toggle, "Also random weights (the same network, untrained)", key=state.SWEEP_RANDOM,
        default=comparable, valid=[True, False], parse=flag, disabled=not comparable,
        help="Draw the same curves for random weights, dashed."
        if comparable
        else "Only for a registry backbone with trained weights: these are the baseline.",
    )  # fmt: skip
    if st.button("Run the sweep", key=state.RUN_SWEEP, type="primary"):
        st.session_state[state.SWEEP_RAN] = True
    if not st.session_state.get(state.SWEEP_RAN):
        st.caption(f"Extracts every block of {bb.name} for {len(images.images.ok)} images.")
        return
    swept = resources.sweep_backbone(choices.model, bb, images)
    sweeps = [resources.layer_sweep(swept, images, choices.resize_mode)]
    if compare and comparable:
        untrained = resources.ModelChoice(choices.model.backbone, "random")
        random = resources.sweep_backbone(untrained, resources.backbone(untrained), images)
        sweeps.append(resources.layer_sweep(random, images, choices.resize_mode))
    if swept.input_size != bb.input_size:
        h, w = swept.input_size
        st.caption(
            f"Swept at {h} × {w} pixels, not {bb.input_size[0]} × {bb.input_size[1]}: no image "
            f"of this set is larger, so a larger input would add no detail, only work."
        )
    st.plotly_chart(render.sweep_figure(sweeps), key="sweep")
    st.markdown("\n".join(f"- {line}" for line in describe_sweep(*sweeps)))
    view = url_widget(
        st.radio, "The set at each block", key=state.SWEEP_VIEW, default="side by side",
        options=["side by side", "animated"], horizontal=True,
        help="Animated: press Play or drag the slider, and each image glides from block to block.",
    )  # fmt: skip
    animated = view == "animated"
    draw = render.sweep_animation if animated else render.sweep_projections
    places = st.columns(len(sweeps)) if animated else [st.container() for _ in sweeps]
    for n, (place, sweep) in enumerate(zip(places, sweeps, strict=True)):
        place.caption(f"{sweep.weights}: the set at each block")
        place.plotly_chart(draw(sweep), key=f"sweep_{view}_{n}")


def spatial_layer_ui(choices, bb):
    """The image set and the chosen layer's ``LayerInfo``; None, with a note, for a layer that
    has no spatial map."""
    images = data.required(choices.images)
    info = featlib.find_layer(bb, choices.layer, resources.layers(bb))
    if not info.spatial:
        st.info(f"{choices.layer} has no spatial output; pick a convolution or pooling layer.")
        return None
    return images, info


def channel_view(choices, bb) -> None:
    explain("channel")
    picked = spatial_layer_ui(choices, bb)
    if picked is None:
        return
    images, info = picked
    channel = url_widget(
        st.number_input, f"Channel of {choices.layer} (0-{info.channels - 1})",
        key=state.CHANNEL_INDEX, default=0, parse=int, valid=range(info.channels),
        min_value=0, max_value=info.channels - 1, step=1,
        help="Which feature detector to look at. The Feature maps page shows the strongest ones.",
    )  # fmt: skip
    hits = resources.channel_hits(bb, images, choices.layer, channel, choices.resize_mode)
    st.caption(
        f"Receptive field of {choices.layer}: {info.receptive_field} px of the "
        f"{bb.input_size[0]} px input."
    )
    names = [r.name for r in hits.records]
    st.image(
        [render.square(crop, 96) for crop in hits.crops],
        caption=[f"{n} · peak {p:.3g}" for n, p in zip(names, hits.peaks, strict=True)],
        width=96,
    )
    st.image(
        [render.overlay(img, heat) for img, heat in zip(hits.inputs, hits.maps, strict=True)],
        caption=[f"map on {n}" for n in names], width=96,
    )  # fmt: skip
    if len(hits.class_means) > 1:
        st.caption("Mean activation of the channel per label, over the whole set")
        st.bar_chart({str(k): v for k, v in hits.class_means.items()}, horizontal=True)
    with st.expander("Make an image for this channel: settings"):
        cols = st.columns(5)
        side = url_widget(cols[0].select_slider, "Size (px)", key=state.MAX_SIDE, default=128,
                          options=[64, 96, 128, 160, 224], parse=int)  # fmt: skip
        steps = url_widget(cols[1].slider, "Steps", key=state.MAX_STEPS, default=40, parse=int,
                           valid=range(5, 201), min_value=5, max_value=200)  # fmt: skip
        step_size = url_widget(cols[2].slider, "Step size", key=state.MAX_STEP_SIZE, default=8.0,
                               parse=float, min_value=1.0, max_value=32.0)  # fmt: skip
        jitter = url_widget(cols[3].slider, "Jitter (px)", key=state.MAX_JITTER, default=4,
                            parse=int, valid=range(0, 17), min_value=0, max_value=16)  # fmt: skip
        tv = url_widget(cols[4].slider, "Smoothness (TV)", key=state.MAX_TV, default=1.0,
                        parse=float, min_value=0.0, max_value=10.0)  # fmt: skip
    if st.button("Make an image for this channel", key=state.MAKE_IMAGE):
        made = resources.maximized(
            choices.model, bb, choices.layer, channel, side, (steps, step_size, jitter, tv)
        )
        st.image(
            made.image, width=224,
            caption=f"channel {channel}: mean activation {made.start:.3g} on the noise, "
            f"{made.final:.3g} on this image",
        )  # fmt: skip


def cam_view(choices, bb) -> None:
    explain("cam")
    picked = spatial_layer_ui(choices, bb)
    if picked is None:
        return
    images = picked[0]
    names = [r.name for r in images.images.ok]
    name = url_widget(
        st.selectbox, "Image", key=state.CAM_IMAGE, default=names[0], options=names,
        help="The image to explain. Type to search.",
    )  # fmt: skip
    record = images.images.ok[names.index(name)]
    if imagenet.unavailable_for(bb, same_weights=True) is None:
        bb = resources.imagenet_backbone(bb.name)  # the same weights with their classifier
    image, predicted = resources.gradcam(bb, images, record, choices.layer, choices.resize_mode)
    target, score = predicted.target, predicted.score_kind
    if predicted.target_kind == "class":
        n_classes = int(bb.model.outputs[0].shape[-1])
        labels = imagenet.class_names() if n_classes == 1000 and bb.weights == "imagenet" else None
        target = st.selectbox(
            "Explain the class", range(n_classes), index=predicted.target, key=state.CAM_TARGET,
            format_func=lambda c: f"{c}: {labels[c]}" if labels else f"class {c}",
            help="The predicted class comes first; pick another to see where its evidence is.",
        )  # fmt: skip
        score = url_widget(
            st.radio, "Score", key=state.CAM_SCORE, default="logit", options=list(SCORES),
            format_func={"logit": "before softmax (logit)", "probability": "after softmax"}.get,
            horizontal=True, help="Before the softmax is the Grad-CAM paper's definition; after "
            "it, a class the network is sure of has a flat probability and a noisy map.",
        )  # fmt: skip
    else:
        st.caption(
            "No classifier on top of this network: Grad-CAM explains the strongest channel of "
            "its last layer. With ImageNet weights (Model page) it explains ImageNet classes."
        )
    cam = (
        predicted
        if (target, score) == (predicted.target, predicted.score_kind)
        else resources.gradcam(
            bb, images, record, choices.layer, choices.resize_mode, target, score
        )[1]
    )
    left, right = st.columns(2)
    left.image(image, caption="What the network receives", width="stretch")
    what = (
        f"class {cam.target}" if cam.target_kind == "class" else f"last-layer channel #{cam.target}"
    )
    right.image(
        render.overlay(image, cam.heatmap),
        caption=f"Grad-CAM at {choices.layer} for {what} ({cam.score_kind} {cam.score:.3g})",
        width="stretch",
    )


choices = sidebar()
bb = resources.backbone(choices.model)

st.title("Teaching")
st.caption(
    "Questions a first course on convolutional networks asks: where does meaning emerge, what "
    "does one channel look for, and where did the network look?"
)
with st.expander("A lesson in six steps, with the bundled pictures"):
    lesson()
VIEWS = {
    "sweep": "Where meaning emerges (layer sweep)",
    "channel": "What a channel looks for",
    "cam": "Why did it decide (Grad-CAM)",
}
view = url_widget(
    st.segmented_control, "Question", key=state.TEACH_VIEW, default="sweep", options=list(VIEWS),
    format_func=VIEWS.get, required=True, label_visibility="collapsed",
)  # fmt: skip
{"sweep": sweep_view, "channel": channel_view, "cam": cam_view}[view](choices, bb)
