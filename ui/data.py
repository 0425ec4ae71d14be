"""The data set every page works on: the feature file ``featlib app`` was started with, a
bundled sample, or this session's uploads (images, or a feature file).

Uploads live in ``st.session_state`` only, never in a module global or a shared cache, so two
people using the app at once never see each other's images. Samples and the server's feature
file are shared (they are the same for everyone) and read once per process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from featlib import images
from featlib.cli.commands import APP_FEATURES_ENV, APP_IMAGES_ENV
from featlib.engine.shards import open_features, read_features, shard_files
from featlib.extraction.features import Features
from ui import state

__all__ = [
    "FILE",
    "NO_PICTURES",
    "Data",
    "breakable",
    "caption",
    "counted",
    "current",
    "describe",
    "feature_file_changed",
    "forget_uploads",
    "required",
    "sources",
    "take_feature_file",
    "take_uploads",
    "uploads_changed",
]

UPLOADS = "uploads"
FILE = "file"  # the feature file featlib app was started with
NO_PICTURES = (
    "This feature file came without its pictures: points and labels only. To see them, start "
    "the app with featlib app FILE --images FOLDER (the folder the features were extracted from)."
)
HOME = "app_pages/home.py"  # the page with the uploader, as navigation knows it
_DESCRIPTIONS = {
    "photos": "Sample photos: 10 scikit-image pictures (photo / texture)",
    "faces": "Sample faces: 200 small grey faces and non-faces (LFW subset)",
    "digits": "Sample digits: 300 handwritten digits 0–9 (8×8, scikit-learn)",
    UPLOADS: "Your uploads",
}


@dataclass(frozen=True)
class Data:
    """An image set with what the app needs to name and cache it.

    Attributes:
        images: the ``featlib.images.ImageSet``.
        id: a fingerprint of the records (names, SHA-256s, labels): part of every cache key.
        title: one line for people.
        features: for a feature file, its vectors (rows aligned with ``images.records``);
            None for pictures, whose vectors the pages compute.
        pictures: False for a feature file without its pictures: points and labels only.
    """

    images: images.ImageSet
    id: str
    title: str
    features: Features | None = None
    pictures: bool = True

    @property
    def n_usable(self) -> int:
        """Rows the pages can work on: every vector of a feature file, else usable images."""
        return len(self.features.records) if self.features is not None else len(self.images.ok)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 image"``, ``"2 images"``: a number and its noun, in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


_BREAK = "\u200b"  # a zero-width space: where a browser may wrap a line, invisibly
_LONGEST_NAME = 40


def breakable(name: str) -> str:
    """A file name for a narrow caption: shortened in the middle when very long, and wrapping
    after "_", "-", "/" or before the extension instead of in the middle of a word."""
    if len(name) > _LONGEST_NAME:
        name = f"{name[: _LONGEST_NAME // 2 - 1]}…{name[-(_LONGEST_NAME // 2) :]}"
    for mark in "_-/":
        name = name.replace(mark, mark + _BREAK)
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}{_BREAK}.{suffix}" if dot and stem else name


def caption(record, *parts: str) -> str:
    """A gallery caption: the file name (``breakable``), then ``parts`` and the label, joined
    by " · "."""
    label = () if record.label is None else (record.label,)
    return " · ".join((breakable(record.name), *parts, *label))


def describe(source: str) -> str:
    """A line for a data source in a picker."""
    return _DESCRIPTIONS.get(source, source)


def sources() -> list[str]:
    """What the sidebar offers: the server's feature file first (when ``featlib app`` started
    the server with one), the samples, the uploads."""
    server = [FILE] if os.environ.get(APP_FEATURES_ENV) else []
    return [*server, *images.list_samples(), UPLOADS]


def _from_feature_file(feats: Features, root: str | None, name: str, version: str) -> Data:
    """A feature file's ``Features`` as a data set: its records (with their pictures under
    ``root``, when given) and its vectors; ``version`` identifies the file's content."""
    if root is None:
        image_set = images.ImageSet(feats.records)
    else:
        image_set = images.pictures_for(feats.records, root)
    feats = dataclasses.replace(feats, records=image_set.records)
    layers = ", ".join(f"{layer} ({width}-d)" for layer, width in feats.widths.items())
    title = f"{name}: {counted(len(feats.records), 'vector')} of {layers}"
    return Data(image_set, version, title, feats, pictures=root is not None)


@st.cache_resource(show_spinner="Opening the feature file…", max_entries=2)
def _server_file(path: str, root: str | None, version: str) -> Data:
    # The records at once; the vectors of a .parquet file come in the background meanwhile.
    return _from_feature_file(open_features(path), root, Path(path).name, version)


def _server_data() -> Data:
    path = Path(os.environ[APP_FEATURES_ENV])
    # A file made again (other vectors, same names) is another set: its size or time differs.
    files = shard_files(path) if path.is_dir() else [path]
    stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    version = hashlib.sha256(repr((str(path.resolve()), stats)).encode()).hexdigest()
    return _server_file(str(path), os.environ.get(APP_IMAGES_ENV), version)


def _fingerprint(image_set: images.ImageSet) -> str:
    digest = hashlib.sha256()
    for r in image_set.records:
        digest.update(repr((r.name, r.sha256, r.label, r.split, r.error)).encode())
    return digest.hexdigest()


@st.cache_resource(show_spinner="Loading the sample images…")
def _sample(name: str) -> Data:
    image_set = images.load_samples(name)
    return Data(image_set, _fingerprint(image_set), describe(name))


def current(source: str) -> Data | None:
    """The set chosen in the sidebar; None when it is the uploads and there are none."""
    if source == UPLOADS:
        return st.session_state.get(state.UPLOADED)
    if source == FILE:
        return _server_data()
    return _sample(source)


def required(source: str, min_images: int = 1) -> Data:
    """The chosen set; when it has too few usable images, say so on the page and stop it."""
    chosen = current(source)
    if chosen is None:
        st.info("No uploads yet: add images on the Home page, or pick a sample set in the sidebar.")
        st.page_link(HOME, label="Go to Home", icon=":material/home:")
        st.stop()
    if chosen.n_usable < min_images:
        st.warning(
            f"{chosen.title}: this page needs at least {counted(min_images, 'usable image')}; "
            f"the set has {chosen.n_usable}. The Home page lists the files that could not "
            "be used."
        )
        st.stop()
    return chosen


def take_uploads(files) -> Data | None:
    """Turn this session's uploaded files into its image set, once per change of files.

    Args:
        files: ``st.file_uploader`` results (``UploadedFile``); ZIPs are expanded.

    Returns:
        the session's uploaded ``Data`` (unchanged when the files are the ones seen last), or
        None when there are no uploads.
    """
    ids = tuple(f.file_id for f in files or ())
    if ids and ids != st.session_state.get(state.UPLOAD_IDS):
        with st.spinner(f"Reading {counted(len(ids), 'uploaded file')}…"):
            image_set = images.from_uploads((f.name, f.getvalue()) for f in files)
        # Counted like the Home page's metrics: files inside a ZIP are files too.
        title = (
            f"Your uploads: {counted(len(image_set.ok), 'usable image')} of "
            f"{counted(len(image_set), 'file')}"
        )
        st.session_state[state.UPLOADED] = Data(image_set, _fingerprint(image_set), title)
        st.session_state[state.UPLOAD_IDS] = ids
    return st.session_state.get(state.UPLOADED)


def take_feature_file(upload) -> Data | None:
    """Make an uploaded feature file (``.npz`` or ``.parquet`` from ``featlib extract``) this
    session's data set, once per file: points and labels, no pictures.

    Args:
        upload: an ``st.file_uploader`` result, or None.

    Returns:
        the session's uploaded ``Data``, or None when nothing was uploaded.
    """
    if upload is not None and upload.file_id != st.session_state.get(state.FEATURE_FILE_ID):
        suffix = Path(upload.name).suffix.lower()
        with tempfile.TemporaryDirectory(prefix="featlib-features-") as folder:
            path = Path(folder) / f"upload{suffix}"
            path.write_bytes(upload.getvalue())
            version = hashlib.sha256(upload.getvalue()).hexdigest()
            name = f"Your feature file {upload.name}"
            uploaded = _from_feature_file(read_features(path), None, name, version)
        st.session_state[state.UPLOADED] = uploaded
        st.session_state[state.FEATURE_FILE_ID] = upload.file_id
        st.session_state[state.UPLOAD_IDS] = None
    return st.session_state.get(state.UPLOADED)


def feature_file_changed() -> None:
    """The feature-file uploader's ``on_change``: show the file; when it was removed, forget
    it."""
    if st.session_state.get(state.FEATURE_UPLOAD) is not None:
        st.session_state[state.IMAGES] = UPLOADS
    else:
        forget_uploads()


def uploads_changed() -> None:
    """The uploader's ``on_change``: show the uploads; when its last file was removed (its ×),
    forget them, as the "Forget my uploads" button does."""
    if st.session_state.get(state.UPLOADS):
        st.session_state[state.IMAGES] = UPLOADS
    else:
        forget_uploads()


def forget_uploads() -> None:
    """Drop this session's uploads and go back to the first sample set."""
    st.session_state.pop(state.UPLOADED, None)
    st.session_state.pop(state.UPLOAD_IDS, None)
    st.session_state.pop(state.FEATURE_FILE_ID, None)
    st.session_state[state.IMAGES] = sources()[0]
