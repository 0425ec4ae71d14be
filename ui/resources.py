"""Everything the pages compute, cached at the UI edge.

- ``st.cache_resource`` (shared by every session, built once per process): backbones, the
  extractors compiled for them, the upload folder. Inference through an ``Extractor`` is a
  ``tf.function`` call, safe from several sessions at once; construction is guarded by the cache.
- ``st.cache_data`` (copies, keyed by content): one image's feature maps, projections, clusters.
- ``st.session_state`` (this session only): pooled features of the current set, because they are
  computed under a progress bar, which a cached function could not replay. The on-disk
  ``FeatureStore`` keeps them across sessions and restarts, keyed by image content.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.logger import get_logger

import featlib
from featlib import analysis, extraction, models, render, teaching
from featlib.analysis.neighbors import NeighborIndex, label_mean_similarity
from featlib.extraction.settings import Settings, auto_settings
from featlib.models import imagenet
from featlib.models import weights as weights_files
from featlib.models.weights import ModelFile
from ui import state
from ui.data import Data, required

__all__ = [
    "METHOD_NAMES",
    "ModelChoice",
    "ModelFile",
    "Vectors",
    "backbone",
    "block_outputs",
    "channel_hits",
    "check_report",
    "embedded",
    "extractor",
    "feature_maps",
    "gradcam",
    "imagenet_backbone",
    "imagenet_top_k",
    "kmeans",
    "label_means",
    "layer_sweep",
    "layers",
    "maximized",
    "neighbor_index",
    "picture",
    "pooled_features",
    "projection",
    "rows_by_name",
    "save_model_file",
    "scatter",
    "set_features",
    "sweep_backbone",
    "thumbnails",
    "warm_up_analysis",
    "warm_up_umap",
]

_NO_PICTURE = (224, 224, 224)
METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}  # as people write them
_MEMO_SIZE = 4  # pooled features, and sweeps, kept per session
_LOG = get_logger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class ModelChoice:
    """What the sidebar picked to load: a registry backbone with weights, or a user's model."""

    backbone: str
    weights: str
    seed: int = 0
    file: ModelFile | None = None
    preprocessing: str = "scale"

    def open_args(self) -> tuple[str, str]:
        """``(backbone, weights)`` for ``featlib.models.backbones.open_backbone``: an uploaded
        model stands for the backbone, uploaded weights for the weights."""
        if self.file is None:
            return self.backbone, self.weights
        if self.file.kind == "model":
            return self.file.path, self.weights
        return self.backbone, self.file.path


@st.cache_resource
def _upload_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="featlib-uploads-"))


def save_model_file(name: str, data: bytes) -> ModelFile:
    """An uploaded model or weights file written to this process's upload folder
    (``featlib.models.weights.save_model_file``)."""
    return weights_files.save_model_file(_upload_dir(), name, data)


@st.cache_resource(max_entries=6, show_spinner="Loading the network…")
def _load(backbone: str, weights: str, seed: int, preprocessing: str):
    bb = models.backbones.open_backbone(backbone, weights, seed=seed, preprocessing=preprocessing)
    _LOG.info("built backbone %s", bb.key)  # once per process and choice: st.cache_resource
    return bb


def backbone(choice: ModelChoice) -> featlib.Backbone:
    """The loaded backbone for a sidebar choice, built once per process.

    Raises:
        WeightsUnavailableError, ModelFileError: as ``featlib.load_backbone`` /
            ``featlib.load_model_file`` do, naming an uploaded file as the user named it.
    """
    args = (*choice.open_args(), choice.seed, choice.preprocessing)
    if choice.file is None:
        with st.spinner(f"Loading {choice.backbone} ({choice.weights})…", show_time=True):
            return _load(*args)
    saved, name = Path(choice.file.path).name, choice.file.name
    try:
        with st.spinner(f"Loading {name}…"):
            bb = _load(*args)
    except featlib.FeatlibError as exc:
        # The file was saved under its SHA-256; messages should name it as the user does.
        raise type(exc)(str(exc).replace(saved, name)) from None
    label = bb.weights_label.replace(saved, name)
    return dataclasses.replace(
        bb, name=name if bb.family == "custom" else bb.name, weights_label=label
    )


@st.cache_resource(max_entries=2, show_spinner=False)
def imagenet_backbone(name: str) -> featlib.Backbone:
    """``name`` with ImageNet weights and its classification top (only when both are cached)."""
    return featlib.load_backbone(name, weights="imagenet", include_top=True)


def run_settings(bb: featlib.Backbone) -> Settings:
    """How ``precision="auto"`` runs ``bb`` here, timing nothing: the measured settings where a
    set large enough to repay the timing was extracted, else the hardware defaults."""
    return auto_settings(bb)


@st.cache_resource(max_entries=24, show_spinner=False)
def _extractor(key: str, layers: tuple[str, ...], pooling: str | None, _bb) -> featlib.Extractor:
    return featlib.Extractor(_bb, list(layers), pooling=pooling, precision="auto")


def extractor(bb: featlib.Backbone, layers: tuple[str, ...], pooling: str | None):
    """An ``Extractor`` for these layers, compiled once per (backbone, layers, pooling), with
    the precision and batch size measured fastest for the backbone here (``precision="auto"``)."""
    return _extractor(f"{bb.key}|{bb.input_size}", layers, pooling, bb)


@st.cache_data(max_entries=12, show_spinner=False)
def _maps(key: str, layers: tuple[str, ...], sha256: str, resize_mode: str, _bb, _image):
    out = extractor(_bb, layers, None)(_image[None])
    return {name: array[0] for name, array in out.items()}


def feature_maps(bb, layers, data: Data, record, resize_mode: str) -> tuple:
    """One image's input and full feature maps.

    Args:
        bb: the backbone.
        layers: layer names (a list or tuple).
        data: the image set ``record`` belongs to.
        record: an ``ImageRecord`` of ``data.images.ok``.
        resize_mode: how the image is fitted to the input size.

    Returns:
        ``(image, maps)``: the uint8 (h, w, 3) array the network receives, and a dict layer ->
        float32 array (height, width, channels).
    """
    image = data.images.load(record, size=bb.input_size, resize_mode=resize_mode)
    # A spinner shows only when the maps take longer than half a second (not cached yet).
    with st.spinner(f"Running {record.name} through {bb.name}…", show_time=True):
        return image, _maps(bb.key, tuple(layers), record.sha256, resize_mode, bb, image)


@st.cache_data(max_entries=16, show_spinner=False)
def _gradcam(key: str, sha256: str, layer: str, resize_mode, target, score: str, _bb, _image):
    return featlib.gradcam(_bb, _image, layer, target, score=score)


def gradcam(bb, data: Data, record, layer: str, resize_mode: str, target=None, score="logit"):
    """``featlib.gradcam`` of one image of the set, cached per image, layer, target and score.

    Args:
        target: a class or last-layer channel; None for the highest-scoring one.

    Returns:
        ``(image, cam)``: the uint8 (h, w, 3) array the network receives, and the ``GradCam``.
    """
    image = data.images.load(record, size=bb.input_size, resize_mode=resize_mode)
    with st.spinner(f"Grad-CAM at {layer}…"):
        key = f"{bb.key}|{bb.input_size}"
        return image, _gradcam(key, record.sha256, layer, resize_mode, target, score, bb, image)


def embedded(bb, layer: str, pooling: str, resize_mode: str, name: str, data: bytes) -> tuple:
    """``featlib.extraction.pipeline.embed_image`` of a file that is not in the set, with the
    extractor the set's features came from, so its vector compares with theirs.

    Returns:
        ``(image, vector)``: what the network received, and the pooled vector.
    """
    with st.spinner(f"Running {name} through {bb.name}…", show_time=True):
        return extraction.pipeline.embed_image(
            data, name, bb, layer, pooling=pooling, resize_mode=resize_mode,
            extractor=extractor(bb, (layer,), pooling),
        )  # fmt: skip


def _session_memo(name: str, key: tuple, compute: Callable[[], _T], keep: int) -> _T:
    """``compute()``, kept in this session's ``st.session_state[name]`` under ``key``.

    At most ``keep`` results stay, the oldest going first; room is made before computing, so the
    memory of a result that is dropped is free while the next one is made.
    """
    memo = st.session_state.setdefault(name, {})
    if key not in memo:
        while len(memo) >= keep:
            memo.pop(next(iter(memo)))
        memo[key] = compute()
    return memo[key]


def _progress_bar(what: str):
    """A status box with a progress bar, and the ``progress(done, total)`` callback that moves
    it. The box shows from the start (building and timing the extractor come before the first
    batch); ``.empty()`` the first value to remove it when the work is done."""
    slot = st.empty()
    bar = slot.status(f"Computing {what}…", expanded=True).progress(0.0, text="Preparing…")
    start, first = time.perf_counter(), None

    def update(done: int, total: int) -> None:
        nonlocal first
        text = f"{done:,} of {total:,} images"
        if first is None:
            first = done
        elif done > first:
            text += f" · {(done - first) / (time.perf_counter() - start):.1f} images/s"
        bar.progress(done / max(total, 1), text=text)

    return slot, update


@st.cache_resource
def _store() -> featlib.FeatureStore:
    return featlib.FeatureStore()


def _say_once_if_the_store_is_off() -> None:
    """One warning per session when the feature store could not be used (unwritable, full)."""
    reason = _store().disabled
    if reason and not st.session_state.get(state.STORE_WARNED):
        st.session_state[state.STORE_WARNED] = True
        st.warning(
            f"The feature store is off ({reason}). Everything still works, but features are "
            "computed again each time instead of being kept on disk."
        )


def pooled_features(bb, data: Data, layer: str, pooling: str, resize_mode: str) -> featlib.Features:
    """Pooled vectors of every usable image of the set, with a progress bar while computing.

    Nothing the session has, or the feature store holds, is computed again.

    Returns:
        ``featlib.Features`` with ``features[layer]`` of shape (n_images, n_features).
    """

    def compute() -> featlib.Features:
        bar, update = _progress_bar(f"{layer} features")
        try:
            feats = featlib.extract_set(
                bb, data.images, layer, pooling=pooling, resize_mode=resize_mode,
                store=_store(), progress=update,
                extractor=extractor(bb, (layer,), pooling),
            )  # fmt: skip
        finally:  # a failure is shown by app.py: no box may go on saying it is running
            bar.empty()
        _say_once_if_the_store_is_off()
        return feats

    key = (data.id, bb.key, layer, pooling, resize_mode)
    return _session_memo(state.FEATURES, key, compute, _MEMO_SIZE)


@dataclass(frozen=True)
class Vectors:
    """The vectors a page works on, with what names and caches them.

    Attributes:
        data: the data set.
        feats: its ``featlib.Features`` (for a feature file, the file's).
        x: float32 array of shape (n_images, n_features), the chosen layer's vectors.
        bb: the backbone that made them; None for a feature file.
        key: identifies ``x`` in caches: the set, the model, the layer and how it was pooled.
        stem: a short name for downloads (the backbone's, or the file's).
    """

    data: Data
    feats: featlib.Features
    x: np.ndarray
    bb: featlib.Backbone | None
    key: tuple
    stem: str


def set_features(choices, min_images: int = 3) -> Vectors:
    """The chosen data set's vectors for the chosen layer: a feature file's own, or the
    pooled features of the set's images (computed with a progress bar, or from the store).

    Stops the page with a message when the set has fewer than ``min_images`` usable rows.
    """
    images = required(choices.images, min_images=min_images)
    if images.features is not None:
        with st.spinner("Reading the file's vectors…"):  # they load while Home is shown
            x = images.features.features[choices.layer]
        return Vectors(images, images.features, x, None, (images.id, choices.layer), "features")
    bb = backbone(choices.model)
    feats = pooled_features(bb, images, choices.layer, choices.pooling, choices.resize_mode)
    key = (images.id, bb.key, choices.layer, choices.pooling, choices.resize_mode)
    return Vectors(images, feats, feats.features[choices.layer], bb, key, bb.name)


@st.cache_resource(max_entries=4, show_spinner="Building the neighbour index…")
def _neighbor_index(key: tuple, _x) -> NeighborIndex:
    return NeighborIndex(_x)


def neighbor_index(v: Vectors) -> NeighborIndex:
    """The exact cosine neighbour index of a set's vectors (``featlib.NeighborIndex``), built
    once per vectors and kept by the server for every session: its unit rows take 0.2 s to
    make at 100,000 x 512, less than reading them back from the store would."""
    return _neighbor_index(v.key, v.x)


@st.cache_resource(max_entries=4, show_spinner=False)
def _label_means(key: tuple, _x, _labels) -> tuple[list, np.ndarray]:
    return label_mean_similarity(_x, _labels)


def label_means(v: Vectors) -> tuple[list, np.ndarray]:
    """``featlib.analysis.neighbors.label_mean_similarity`` of a set's vectors, once per set
    (0.7 s at 100,000 x 512: too long to repeat on every query)."""
    return _label_means(v.key, v.x, v.feats.labels)


@st.cache_resource(max_entries=4, show_spinner=False)
def _rows_by_name(key: tuple, _records) -> dict[str, int]:
    return {r.name: i for i, r in enumerate(_records)}


def rows_by_name(v: Vectors) -> dict[str, int]:
    """Image name -> row of ``v``'s records (built once per set of vectors)."""
    return _rows_by_name(v.key, v.feats.records)


@st.cache_resource(max_entries=2, show_spinner=False)
def _vector_checks(key: tuple, _records, _x) -> featlib.CheckReport:
    splits = [r.split for r in _records]
    return featlib.check_dataset(
        [r.sha256 for r in _records], [r.label for r in _records], _x,
        names=[r.name for r in _records], splits=splits if any(splits) else None,
    )  # fmt: skip


def check_report(v: Vectors) -> featlib.CheckReport:
    """The checks of a set's vectors. For images: with the pictures' quality checks, once per
    session and set. For a feature file: from the vectors alone (its pictures, when there are
    any, are not decoded: 100,000 of them would take minutes), once per file and layer for
    every session of the server (about 2.5 minutes at 100,000 x 512).

    Thresholds are applied afterwards (``CheckReport.with_thresholds``, which returns a new
    report), so moving a slider recomputes nothing.
    """
    records = v.feats.records
    spinner = st.spinner(f"Checking {len(records):,} images…", show_time=True)
    if v.data.features is not None:
        with spinner:
            return _vector_checks(v.key, records, v.x)

    def compute() -> featlib.CheckReport:
        with spinner:
            return featlib.check_image_set(v.data.images, records, v.x)

    return _session_memo(state.CHECK_REPORTS, (*v.key, id(v.feats)), compute, 1)


def sweep_backbone(choice: ModelChoice, bb, data: Data) -> featlib.Backbone:
    """``bb`` at the input size a sweep of the set needs
    (``featlib.teaching.sweep.sweep_input_size``): smaller for a set of small images, built once
    per process; a user's model as it is."""
    size = teaching.sweep.sweep_input_size(bb, data.images)
    if size == bb.input_size or choice.file is not None:
        return bb
    return _at_size(choice.backbone, bb.weights, choice.seed, size[0])


def layer_sweep(bb, data: Data, resize_mode: str) -> featlib.Sweep:
    """``featlib.layer_sweep`` over every block, with a progress bar; kept for the session.

    Every block comes out of one forward pass, pooled in the graph, with the precision measured
    fastest here; the feature store keeps the vectors across sessions.
    """

    def compute() -> featlib.Sweep:
        blocks = tuple(i.name for i in block_outputs(bb))
        bar, update = _progress_bar(f"every block of {bb.name} ({bb.weights_label})")
        with st.spinner(f"Fitting a linear probe at each of {len(blocks)} blocks…"):
            sweep = featlib.layer_sweep(
                bb, data.images, list(blocks), store=_store(), resize_mode=resize_mode,
                progress=update, extractor=extractor(bb, blocks, "avg"),
            )  # fmt: skip
        bar.empty()
        return sweep

    key = (data.id, bb.key, bb.input_size, resize_mode)
    return _session_memo(state.SWEEPS, key, compute, _MEMO_SIZE)


def channel_hits(bb, data: Data, layer: str, channel: int, resize_mode: str):
    """``featlib.teaching.channels.channel_hits`` (8 images). The layer is scanned once per
    session and set, under a progress bar; after that a new channel is an index into the scan."""
    maps = extractor(bb, (layer,), None)

    def compute():
        bar, update = _progress_bar(f"every channel of {layer}")
        scan = teaching.channels.scan_layer(
            bb, data.images, layer, resize_mode=resize_mode, extractor=maps, progress=update,
            batch_size=min(16, maps.batch_size),
        )  # fmt: skip
        bar.empty()
        return scan

    # One scan per session: the maps of a layer can take a few hundred MB.
    scan = _session_memo(state.CHANNEL_SCANS, (data.id, bb.key, layer, resize_mode), compute, 1)
    return teaching.channels.channel_hits(scan, channel, data.images, k=8, extractor=maps)


@st.cache_resource(max_entries=4, show_spinner=False)
def _at_size(backbone: str, weights: str, seed: int, side: int) -> featlib.Backbone:
    return featlib.load_backbone(backbone, weights=weights, seed=seed, input_size=(side, side))


@st.cache_data(max_entries=16, show_spinner=False)
def _maximized(key: str, layer: str, channel: int, settings: tuple, _bb):
    steps, step_size, jitter, tv_weight = settings
    return teaching.channels.maximize_channel(
        _bb, layer, channel, steps=steps, step_size=step_size, jitter=jitter, tv_weight=tv_weight
    )


def maximized(choice: ModelChoice, bb, layer: str, channel: int, side: int, settings: tuple):
    """An image made to excite the channel; registry backbones run at ``side`` pixels, users'
    models at their own size. ``settings``: (steps, step size, jitter, TV weight)."""
    resizable = bb.weights in ("imagenet", "offline", "random") and choice.file is None
    if resizable and featlib.get_spec(choice.backbone).min_size <= side:
        bb = _at_size(choice.backbone, bb.weights, choice.seed, side)
    with st.spinner("Gradient ascent on the input…"):
        return _maximized(bb.key + f"|{bb.input_size}", layer, channel, settings, bb)


@st.cache_resource(show_spinner=False)
def warm_up_analysis() -> threading.Thread:
    """Import the analysis code (scikit-learn, SciPy, openTSNE: seconds) on a background thread
    once per process, after a feature file's Home page has run, so that its first projection
    does not wait for them."""

    def load() -> None:
        for module in ("featlib.analysis.projection", "featlib.analysis.cluster", "openTSNE"):
            importlib.import_module(module)

    thread = threading.Thread(target=load, name="warm-up-analysis", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def warm_up_umap() -> threading.Thread:
    """Compile UMAP (about 20 s, once per process) on a background thread, so that the first
    UMAP projection a user asks for does not pay for it."""
    thread = threading.Thread(target=featlib.warm_up_umap, name="warm-up-umap", daemon=True)
    thread.start()
    return thread


@st.cache_resource(max_entries=16, show_spinner=False)
def _projection(key: tuple, method: str, dims: int, seed: int, perplexity: int, neighbours, _x):
    """The projection from the feature store when it is there (a second visit, or another
    server on the same store), else computed with a progress bar and stored."""
    name = json.dumps(["projection", repr(key), method, dims, seed, perplexity, neighbours])
    store = _store()
    embedding, quality = store.get(name + "/embedding"), store.get(name + "/quality")
    if embedding is not None and quality is not None:
        figures = json.loads(quality.tobytes().decode())
        return featlib.Projection(embedding, method, figures["params"], figures["quality"])
    what = f"{METHOD_NAMES[method]} of {len(_x):,} images to {dims}-D"
    slot, start = st.empty(), time.perf_counter()
    bar = slot.progress(0.0, text=f"Projecting: {what}…")

    def update(done: int, total: int, stage: str) -> None:
        seconds = time.perf_counter() - start
        bar.progress(done / max(total, 1), text=f"Projecting: {what}: {stage} ({seconds:.0f} s)")

    try:
        projection = featlib.project(
            _x, method=method, n_components=dims, random_state=seed, perplexity=perplexity,
            n_neighbors=neighbours, progress=update,
        )  # fmt: skip
    finally:  # a failure is shown by app.py: no bar may stay behind
        slot.empty()
    figures = json.dumps(
        {"params": projection.params, "quality": projection.quality},
        default=lambda value: value.item(),  # numpy numbers
    )
    store.put(name + "/embedding", projection.embedding)
    store.put(name + "/quality", np.frombuffer(figures.encode(), dtype=np.uint8))
    return projection


@st.cache_resource(max_entries=8, show_spinner=False)
def _scatter(key: tuple, colour: str, title: str, _projection, _colours, _names, _labels):
    return render.scatter(_projection.embedding, _colours, _names, _labels, title)


def scatter(key: tuple, projection, colour: tuple, title: str, colours, feats) -> Any:
    """``featlib.render.scatter`` of a projection, built once per projection and colouring
    (0.7 s at 100,000 points), so that selecting points does not build it again.

    Args:
        key: identifies the projection (vectors, method and parameters).
        projection: the ``Projection``.
        colour: identifies the colouring (its name and, for clusters, their number and seed).
        title: the legend's title.
        colours: one colour category per row.
        feats: the ``Features`` whose names and labels the points carry.
    """
    return _scatter(
        (*key, *colour), colour[0], title, projection, colours, feats.names, feats.labels
    )


def projection(key: tuple, method: str, dims: int, seed: int, perplexity: int, neighbours: int, x):
    """``featlib.analysis.projection.project`` of the features ``x`` (identified by ``key``):
    kept in this process and in the feature store, so that a second visit is instant."""
    return _projection(key, method, dims, seed, perplexity, neighbours, x)


@st.cache_data(max_entries=16, show_spinner="Clustering…")
def kmeans(key: tuple, n_clusters: int, seed: int, _x):
    """``featlib.analysis.cluster.kmeans_labels`` of the features ``_x`` (identified by
    ``key``), cached."""
    return analysis.cluster.kmeans_labels(_x, n_clusters=n_clusters, random_state=seed)


@st.cache_resource(max_entries=16, show_spinner=False)
def _layers(key: str, _bb) -> tuple[list, list]:
    return featlib.list_layers(_bb), featlib.block_outputs(_bb)


def layers(bb: featlib.Backbone) -> list:
    """``featlib.list_layers(bb)``, computed once per backbone."""
    return _layers(bb.key, bb)[0]


def block_outputs(bb: featlib.Backbone) -> list:
    """``featlib.block_outputs(bb)``, computed once per backbone."""
    return _layers(bb.key, bb)[1]


def picture(data: Data, record, side: int) -> Image.Image:
    """A record's thumbnail, longer side ``side`` (``ImageSet.thumbnail``), not kept; a grey
    square when the picture cannot be had (a feature file's picture that is missing or changed:
    a caption still names the file)."""
    try:
        return data.images.thumbnail(record, side)
    except featlib.FeatlibError:
        return Image.new("RGB", (side, side), _NO_PICTURE)


@st.cache_data(max_entries=64, show_spinner=False)
def _thumbnails(key: str, shas: tuple[str, ...], side: int, _data, _records) -> list:
    return [render.square(picture(_data, r, side), side) for r in _records]


def thumbnails(data: Data, records, side: int = 128) -> list:
    """Square RGB pictures (``PIL.Image``, side x side) of some records, for galleries; made
    once per set, records and size."""
    records = list(records)
    return _thumbnails(data.id, tuple(r.sha256 for r in records), side, data, records)


def imagenet_top_k(name: str, data: Data, resize_mode: str, k: int = 5) -> list:
    """ImageNet top-k classes of every usable image (``featlib.models.imagenet.top_k``).

    Only call when ``featlib.models.imagenet.unavailable_for`` the chosen backbone is None.
    """
    top = imagenet_backbone(name)
    output = layers(top)[-1].name
    feats = pooled_features(top, data, output, "avg", resize_mode)
    return imagenet.top_k(feats.features[output], imagenet.class_names(), k)
