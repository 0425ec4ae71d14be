"""Session-state keys, defined once, and the helper that keeps a widget's value in the URL.

A widget made with ``url_widget`` takes its first value in a session from the query string
(``?layer=block4_pool``), keeps it across page switches (``persist_state="session"``), and
writes it back to the query string on every run, so a copied link reproduces the view. Keys
are the query-parameter names, so they are short and stable.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

import streamlit as st

__all__ = ["Interval", "flag", "url_widget"]

# Sidebar, shared by every page.
IMAGES = "images"
BACKBONE = "backbone"
WEIGHTS = "weights"
SEED = "seed"
WEIGHTS_FILE = "weights_file"
PREPROCESSING = "preprocessing"
LAYER = "layer"
POOLING = "pooling"
RESIZE = "resize"
USE_RANDOM = "use_random"

# Home.
UPLOADS = "uploads"
FEATURE_UPLOAD = "feature_upload"
FORGET_UPLOADS = "forget_uploads"

# Feature maps.
IMAGE = "image"
CHANNELS = "channels"
COUNT = "count"
FIRST = "first"
COLORSCALE = "colors"
SHARED_SCALE = "shared"
CHANNEL = "channel"
COMPARE = "compare"
OTHER_IMAGE = "other"

# Projections.
METHOD = "method"
DIMS = "dims"
COLOR_BY = "color"
CLUSTERS = "clusters"
PERPLEXITY = "perplexity"
NEIGHBOURS = "neighbours"
PROJECTION_SEED = "projection_seed"
PLOT = "plot"
HOVER = "hover"
SELECTION = "selection"
GALLERY_PAGE = "gallery_page"
GALLERY_ROWS = "gallery_rows"  # the pick the gallery page number belongs to
TO_NEIGHBOURS = "to_neighbours"
EXPORT_CSV = "export_csv"
EXPORT_NPZ = "export_npz"
EXPORT_PROJECTOR = "export_projector"

# Neighbours.
QUERY_FROM = "query_from"
QUERY = "query"
QUERY_FILE = "query_file"
K = "k"

# Checks.
THRESHOLD_PREFIX = "t_"  # + issue name, e.g. t_near_duplicates
GALLERY = "gallery"  # the issue whose flagged images are shown
EXPORT_CHECKS_CSV = "export_checks_csv"
EXPORT_CHECKS_HTML = "export_checks_html"

# Teaching.
TEACH_VIEW = "teach"
LESSON_STEP = "step"
LESSON_LINK = "lesson_"  # + step number, or "next"
SWEEP_RANDOM = "sweep_random"
SWEEP_VIEW = "sweep_view"
RUN_SWEEP = "run_sweep"
CAM_IMAGE = "cam_image"
CAM_TARGET = "cam_target"
CAM_SCORE = "cam_score"
CHANNEL_INDEX = "unit"
MAX_STEPS = "max_steps"
MAX_STEP_SIZE = "max_step"
MAX_JITTER = "max_jitter"
MAX_TV = "max_tv"
MAX_SIDE = "max_side"
MAKE_IMAGE = "make_image"

# Not widgets: values kept for the session (uploads never leave it).
UPLOADED = "_uploaded"
UPLOAD_IDS = "_upload_ids"
FEATURE_FILE_ID = "_feature_file_id"
MODEL_FILE = "_model_file"
FEATURES = "_features"
STORE_WARNED = "_store_warned"
CHECK_REPORTS = "_check_reports"
SWEEPS = "_sweeps"
SWEEP_RAN = "_sweep_ran"
CHANNEL_SCANS = "_channel_scans"
LESSON_GO = "_lesson_go"

_MISSING = object()


@dataclass(frozen=True)
class Interval:
    """The numbers from ``low`` to ``high`` (both included), as ``url_widget``'s ``valid`` for a
    slider whose range depends on the data: a value from the URL or from another data set that
    falls outside is replaced by the default instead of crashing the slider. NaN is not in it."""

    low: float
    high: float

    def __contains__(self, value: object) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high


def flag(text: str) -> bool:
    """Read a checkbox or toggle from the URL, where it is ``"True"`` or ``"False"``."""
    if text not in ("True", "False"):
        raise ValueError(f"expected True or False. Received: {text!r}")
    return text == "True"


def _from_url(key: str, parse: Callable[[str], Any], valid: Container | None):
    raw = st.query_params.get(key)
    if raw is None:
        return _MISSING
    try:
        value = parse(raw)
    except ValueError:
        return _MISSING
    return value if valid is None or value in valid else _MISSING


def url_widget(
    widget: Callable,
    label: str,
    *,
    key: str,
    default: Any,
    options: list | None = None,
    valid: Container | None = None,
    parse: Callable[[str], Any] = str,
    **kwargs,
):
    """Draw ``widget`` with its value kept in the session and in the URL under ``key``.

    Args:
        widget: a Streamlit widget function, e.g. ``st.selectbox``.
        label: the widget's label.
        key: session-state key and query-parameter name.
        default: the value when the URL has none (or an invalid one).
        options: the widget's options (for select widgets); also what is valid.
        valid: the values a URL or the session may hold (e.g. ``range(1, 65)`` for a slider);
            ``options`` by default.
        parse: turns the query-string text into a value (``int`` for numbers).
        **kwargs: passed to the widget (``help``, ``min_value``, ``format_func`` ...).

    Returns:
        the widget's value.
    """
    valid = options if valid is None else valid
    current = st.session_state.get(key, _MISSING)
    if current is _MISSING or (valid is not None and current not in valid):
        wanted = _from_url(key, parse, valid) if current is _MISSING else _MISSING
        current = default if wanted is _MISSING else wanted
    # Assigned on every run, not only the first: on the first run after a page switch a
    # persisted widget would otherwise show its first option instead of its value.
    st.session_state[key] = current
    if options is not None:
        kwargs["options"] = options
    value = widget(label, key=key, persist_state="session", **kwargs)
    st.query_params[key] = str(value)
    return value
