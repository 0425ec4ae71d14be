"""The sidebar every page shares: images, backbone, weights, layer, pooling, resize mode.

``sidebar()`` draws it and returns a ``Choices``; every value is also in the URL (see
``ui.state.url_widget``). Loading the backbone happens here, because the layer list depends on
it; when weights cannot be had, the page says why and offers random weights instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

import featlib
from featlib.extraction.features import CHANNEL_POOLINGS
from featlib.images.decode import RESIZE_MODES
from featlib.models.registry import DEFAULT_BACKBONE, PREPROCESSING_MODES, WEIGHTS_CHOICES
from ui import data, resources, state
from ui.state import url_widget

__all__ = ["Choices", "layer_label", "sidebar"]

WEIGHTS = (*WEIGHTS_CHOICES, "file")  # the library's choices, and an uploaded file
_SOURCE_LABELS = {
    data.FILE: "Feature file",
    "photos": "Sample: photos",
    "faces": "Sample: faces",
    "digits": "Sample: digits",
}
_WEIGHTS_LABELS = {
    "auto": "auto",
    "imagenet": "ImageNet",
    "offline": "offline (HED, vgg16)",
    "random": "random (untrained)",
    "file": "your file",
}
_PREPROCESSING_LABELS = {
    "caffe": "caffe — BGR, ImageNet mean subtracted",
    "tf": "tf — scaled to [-1, 1]",
    "torch": "torch — ImageNet mean and std",
    "scale": "scale — divided by 255",
    "none": "none — raw 0–255 pixels",
}


@dataclass(frozen=True)
class Choices:
    """What the sidebar picked.

    Attributes:
        images: ``"file"`` (the server's feature file), a sample name or ``"uploads"``.
        model: the backbone, weights and file to load (``ui.resources.backbone(model)``);
            None for a feature file.
        layer: a layer name of that backbone (None when it could not be loaded).
        pooling: ``"avg"`` or ``"max"``, for pooled vectors.
        resize_mode: one of ``featlib.images.RESIZE_MODES``.
    """

    images: str
    model: resources.ModelChoice | None
    layer: str | None
    pooling: str
    resize_mode: str


def layer_label(info) -> str:
    """``"name — shape — block"`` for a ``LayerInfo`` (no block part when it has none)."""
    shape = "×".join(str(s) for s in info.output_shape)
    return f"{info.name} — {shape}" + (f" — {info.block}" if info.block else "")


def _model_file_ui() -> resources.ModelFile | None:
    upload = st.file_uploader(
        "Weights or model file",
        type=["h5", "keras"],
        key=state.WEIGHTS_FILE,
        help="A .weights.h5 file for the chosen backbone, or a whole .keras model. Models load "
        "in Keras' safe mode: a file that would run code is refused.",
    )
    saved = st.session_state.get(state.MODEL_FILE)
    if upload is not None and (saved is None or saved[0] != upload.file_id):
        saved = (upload.file_id, resources.save_model_file(upload.name, upload.getvalue()))
        st.session_state[state.MODEL_FILE] = saved
    return saved[1] if saved else None


def _model_ui() -> resources.ModelChoice:
    name = url_widget(
        st.selectbox, "Backbone", key=state.BACKBONE, default=DEFAULT_BACKBONE,
        options=featlib.list_backbones(),
        help="The pretrained network. vgg16 is the clearest for teaching; resnet50, mobilenetv2 "
        "and efficientnetb0 are modern alternatives.",
    )  # fmt: skip
    weights = url_widget(
        st.selectbox, "Weights", key=state.WEIGHTS, default="auto", options=list(WEIGHTS),
        format_func=_WEIGHTS_LABELS.get,
        help="What the network learned. auto: ImageNet from the Keras cache, else downloaded "
        "(unless FEATLIB_OFFLINE=1), else the weights bundled for offline use (vgg16 only). "
        "random: untrained, the "
        "teaching baseline. your file: a .weights.h5 or a whole .keras model.",
    )  # fmt: skip
    seed, file, preprocessing = 0, None, "scale"
    if weights == "random":
        seed = url_widget(
            st.number_input, "Seed", key=state.SEED, default=0, parse=int,
            valid=range(0, 2**31), min_value=0, step=1,
            help="Seed of the random initialisation: the same seed, the same untrained network.",
        )  # fmt: skip
    if weights == "file":
        file = _model_file_ui()
        if file is not None and file.kind == "model":
            preprocessing = url_widget(
                st.selectbox, "Preprocessing", key=state.PREPROCESSING, default="scale",
                options=list(PREPROCESSING_MODES), format_func=_PREPROCESSING_LABELS.get,
                help="How your model expects its input pixels.",
            )  # fmt: skip
    return resources.ModelChoice(name, weights, int(seed), file, preprocessing)


def _use_random() -> None:
    st.session_state[state.WEIGHTS] = "random"


def _loaded(model: resources.ModelChoice) -> featlib.Backbone | None:
    """The backbone; when its weights cannot be had, a message, an offer of random weights,
    and None. (Other errors, such as a damaged file, are shown by ``app.py``.)"""
    if model.weights == "file" and model.file is None:
        st.info("Upload a weights file (.weights.h5) or a whole model (.keras) in the sidebar.")
        return None
    try:
        return resources.backbone(model)
    except featlib.WeightsUnavailableError as exc:
        st.warning(f"**No {model.weights} weights for {model.backbone} here.** {exc}")
        st.button("Use random weights instead", key=state.USE_RANDOM, on_click=_use_random)
        return None


def _layer_ui(bb: featlib.Backbone) -> str:
    layers = resources.layers(bb)
    infos = {info.name: info for info in layers}
    default = featlib.default_layer(layers, resources.block_outputs(bb))
    return url_widget(
        st.selectbox, "Layer", key=state.LAYER, default=default, options=list(infos),
        format_func=lambda name: layer_label(infos[name]),
        help="Where to look inside the network: early layers respond to edges and colours, "
        "late ones to parts of objects. Type to search.",
    )  # fmt: skip


def _file_layer_ui(features) -> str:
    dims = features.widths  # without waiting for vectors still being read
    return url_widget(
        st.selectbox, "Layer", key=state.LAYER, default=next(iter(dims)), options=list(dims),
        format_func=lambda name: f"{name} — {dims[name]}-d",
        help="The layers the feature file holds, one pooled vector per image each.",
    )  # fmt: skip


def _needs_a_network() -> None:
    st.info(
        "**This page needs a network.** A feature file brings vectors (and, when the app was "
        "started with its folder, pictures), not the network that made them: Projections, "
        "Neighbours and Checks work on it. For this page, pick a sample set or your uploads "
        "under Images in the sidebar."
    )
    with st.container(horizontal=True):
        st.page_link(
            "app_pages/projections.py", label="Projections", icon=":material/scatter_plot:"
        )
        st.page_link("app_pages/neighbours.py", label="Neighbours", icon=":material/join_inner:")
        st.page_link("app_pages/checks.py", label="Checks", icon=":material/fact_check:")
    st.stop()


def sidebar(needs_model: bool = True, vectors: bool = False) -> Choices:
    """Draw the shared sidebar and return the choices (the backbone is loaded on the way).

    Args:
        needs_model: when the backbone cannot be loaded (no weights, no file yet), the page is
            stopped after the message that says why; with False (the Home page, which needs
            only the images) it goes on, and the choices have ``layer=None``.
        vectors: the page works on vectors alone (Projections, Neighbours, Checks), so it
            takes a feature file too: the layer is then one of the file's and ``model`` is
            None. Other pages that need a model are stopped with a note on a feature file.
    """
    with st.sidebar:
        options = data.sources()
        source = url_widget(
            st.selectbox, "Images", key=state.IMAGES, default=options[0], options=options,
            format_func=lambda s: _SOURCE_LABELS.get(s, "Your uploads"),
            help="The pictures every page works on: the feature file the app was started with, "
            "a bundled sample set, or the files you upload on the Home page.",
        )  # fmt: skip
        chosen = data.current(source)
        file = chosen.features if chosen is not None else None
        if file is not None:
            st.caption("Vectors from a feature file: no network runs on this data set.")
            layer = _file_layer_ui(file)
    if file is not None:
        if needs_model and not vectors:
            _needs_a_network()
        return Choices(source, None, layer, "avg", "stretch")
    with st.sidebar:
        model = _model_ui()
    bb = _loaded(model)
    if bb is None:
        if needs_model:
            st.stop()
        return Choices(source, model, None, "avg", "stretch")
    with st.sidebar:
        st.caption(f"Weights loaded: {bb.weights_label}")
        layer = _layer_ui(bb)
        pooling = url_widget(
            st.radio, "Pooling", key=state.POOLING, default="avg", options=list(CHANNEL_POOLINGS),
            horizontal=True,
            help="How a layer becomes one vector per image (projections, neighbours): each "
            "channel's mean (avg) or strongest response (max).",
        )  # fmt: skip
        resize_mode = url_widget(
            st.radio, "Resize", key=state.RESIZE, default="stretch", options=list(RESIZE_MODES),
            horizontal=True,
            help="How images are fitted to the network's input size: stretched, cropped to the "
            "centre, or padded with black.",
        )  # fmt: skip
    return Choices(source, model, layer, pooling, resize_mode)
