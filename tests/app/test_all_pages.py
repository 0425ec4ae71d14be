"""AppTest of every page as a newcomer meets it: the app's real defaults (sample photos, vgg16,
weights auto, which offline means the bundled HED weights, the default layer), nothing changed;
then the awkward sets, uploaded through the Home page's uploader, on every page: a clear message,
never an exception."""

from __future__ import annotations

import io
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

import featlib
from tests.app.helpers import (
    CHECKS,
    FEATURE_MAPS,
    HOME,
    MODEL,
    NEIGHBOURS,
    PROJECTIONS,
    SMALL,
    TEACHING,
    app,
    image_counts,
    png,
    texts,
)
from ui import state

PAGES = [HOME, FEATURE_MAPS, PROJECTIONS, NEIGHBOURS, CHECKS, TEACHING, MODEL]


def shown(at) -> str:
    """Everything a page says in text: titles, messages, captions, markdown, metrics."""
    kinds = ["title", "header", "subheader", "markdown", "caption", "info", "warning", "success"]
    return " ".join(texts(at.get(kind)) for kind in kinds) + " " + texts(at.metric)


def no_failure(at, where: str) -> None:
    assert not at.exception, f"{where}: {at.exception}"
    assert not at.error, f"{where}: {texts(at.error)}"


def drawn(at) -> int:
    """Charts, pictures and tables on the page."""
    return sum(len(at.get(kind)) for kind in ("plotly_chart", "image", "dataframe", "table"))


# --- the true defaults ---------------------------------------------------------------------------


@pytest.mark.slow
def test_every_page_on_the_true_defaults():
    """Each page opened by its URL in a fresh session, no parameter given."""
    for page in PAGES:
        at = app(None if page == HOME else page)
        no_failure(at, page)
        assert at.selectbox(key=state.BACKBONE).value == "vgg16"
        assert at.selectbox(key=state.WEIGHTS).value == "auto"
        assert at.selectbox(key=state.IMAGES).value == "photos"
        assert "HED" in texts(at.sidebar.caption), page  # offline, auto means the bundled weights
        if page != TEACHING:  # Teaching computes nothing before its button is pressed
            assert drawn(at) > 0, f"{page} drew nothing: {shown(at)}"
        if page == HOME:
            assert [m.value for m in at.metric] == ["10", "10", "2", "0"]
            assert image_counts(at) == [10]
        elif page == FEATURE_MAPS:
            assert len(at.get("plotly_chart")) == 1
            assert image_counts(at) == [1, 1, 5]  # input, overlay, one strongest map per block
        elif page == PROJECTIONS:
            assert len(at.get("plotly_chart")) == 1
            assert "trustworthiness" in texts(at.caption)
        elif page == NEIGHBOURS:
            assert image_counts(at) == [1, 5] and len(at.get("plotly_chart")) == 1
        elif page == MODEL:
            assert at.metric[0].value == "vgg16"
            assert len(at.dataframe[0].value) == 18  # VGG16 without its top: 13 convs, 5 pools
        elif page == CHECKS:
            assert at.get("download_button"), "the report can be downloaded"
        elif page == TEACHING:
            assert "Teaching" in texts(at.title)
            assert at.button(key=state.RUN_SWEEP).label == "Run the sweep"


# --- awkward sets --------------------------------------------------------------------------------


def zipped(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def files(*names_and_bytes) -> list:
    return [(name, data, "image/png") for name, data in names_and_bytes]


AWKWARD = {
    "one image": files(("only.png", png(0))),
    "two images": files(("a.png", png(0)), ("b.png", png(1))),
    "one label": [("c.zip", zipped({f"cat/{i}.png": png(i) for i in range(4)}), "application/zip")],
    "no labels": files(*((f"{i}.png", png(i)) for i in range(4))),
    "identical": files(*((f"copy_{i}.png", png(7)) for i in range(4))),
    "all broken": files(("a.png", b"not a png"), ("b.jpg", b""), ("c.txt", b"hello")),
}
# Usable images in each set, and the fewest a page needs (None: it always shows something).
USABLE = {"one image": 1, "two images": 2, "one label": 4, "no labels": 4, "identical": 4,
          "all broken": 0}  # fmt: skip
NEEDS = {FEATURE_MAPS: 1, PROJECTIONS: 3, NEIGHBOURS: 3}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(AWKWARD))
def test_awkward_sets_on_every_page(name):
    at = app(**SMALL)
    at.file_uploader(key=state.UPLOADS).set_value(AWKWARD[name]).run()
    no_failure(at, f"{name} on Home")
    assert at.selectbox(key=state.IMAGES).value == "uploads"
    assert at.metric[1].value == str(USABLE[name])
    for page in PAGES[1:]:
        at.switch_page(page).run()
        where = f"{name} on {page}"
        no_failure(at, where)
        assert at.selectbox(key=state.IMAGES).value == "uploads", where  # still the uploads
        needed = NEEDS.get(page)
        if needed is not None and USABLE[name] < needed:
            assert "this page needs at least" in texts(at.warning), where
        else:
            assert drawn(at) > 0 or at.info or at.warning, f"{where} shows nothing: {shown(at)}"
        if name == "identical" and page == PROJECTIONS:
            assert "Every image has the same vector" in texts(at.caption)


def test_uploads_after_a_reload_say_where_to_add_them():
    """A copied link or a reload with images=uploads: the uploads stayed in the old session."""
    for page in PAGES[1:]:
        at = app(page, images="uploads", **SMALL)
        no_failure(at, page)
        if page == MODEL:  # the model needs no images until its ImageNet predictions
            assert at.dataframe, page
            continue
        assert "No uploads yet" in texts(at.info), page
        assert at.get("page_link"), page


def test_removing_the_uploaded_files_forgets_them():
    at = app(**SMALL)
    uploader = at.file_uploader(key=state.UPLOADS)
    uploader.set_value(files(("a.png", png(0)), ("b.png", png(1)))).run()
    assert "Your uploads: 2 usable images of 2 files" in texts(at.subheader)
    at.file_uploader(key=state.UPLOADS).set_value(files(("a.png", png(0)))).run()
    assert "Your uploads: 1 usable image of 1 file" in texts(at.subheader)
    at.file_uploader(key=state.UPLOADS).set_value([]).run()  # the chip's ×
    no_failure(at, "uploads removed")
    assert at.selectbox(key=state.IMAGES).value == "photos"
    assert [m.value for m in at.metric] == ["10", "10", "2", "0"]
    at.selectbox(key=state.IMAGES).set_value("uploads").run()
    assert "No uploads yet" in texts(at.info)


def test_a_zip_counts_its_files_like_the_metrics():
    archive = zipped({"cat/a.png": png(0), "cat/b.png": png(1), "dog/c.png": b"junk",
                      "dog/notes.txt": b"hello"})  # fmt: skip
    at = app(**SMALL)
    at.file_uploader(key=state.UPLOADS).set_value(("pets.zip", archive, "application/zip")).run()
    assert "Your uploads: 2 usable images of 4 files" in texts(at.subheader)
    assert [m.value for m in at.metric] == ["4", "2", "1", "2"]
    errors = at.dataframe[-1].value
    assert list(errors["file"]) == ["pets.zip/dog/c.png", "pets.zip/dog/notes.txt"]


def test_a_failed_extraction_says_why_and_leaves_no_progress_running(monkeypatch):
    def fail(*args, **kwargs):
        raise featlib.FeatlibError("the store's disk is full")

    monkeypatch.setattr(featlib, "extract_set", fail)
    at = app(PROJECTIONS, **SMALL)
    assert "the store's disk is full" in texts(at.error)
    assert not at.get("progress")  # the status box with its bar is gone


def test_an_unusable_store_is_said_once_and_the_page_still_works(tmp_path, monkeypatch):
    from ui import resources

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("FEATLIB_CACHE_DIR", str(blocker / "store"))
    resources._store.clear()
    try:
        at = app(PROJECTIONS, **SMALL)
        assert "feature store is off" in texts(at.warning)
        assert len(at.get("plotly_chart")) == 1
        at.switch_page(NEIGHBOURS).run()
        at.radio(key=state.POOLING).set_value("max").run()  # computed again, without the store
        assert not at.exception, at.exception
        assert len(at.get("image")) > 0
        assert "feature store is off" not in texts(at.warning)
    finally:
        resources._store.clear()


@pytest.mark.parametrize("page", [FEATURE_MAPS, PROJECTIONS, NEIGHBOURS, CHECKS, TEACHING])
def test_every_page_explains_itself(page):
    at = app(page, **SMALL)
    assert not at.exception, at.exception
    assert "What am I looking at?" in [e.label for e in at.expander]


def test_session_memo_keeps_the_newest_results_and_computes_each_once():
    def script():
        import streamlit as st

        from ui import resources

        calls = st.session_state.setdefault("calls", [])
        for key in st.session_state.keys_asked:
            resources._session_memo("memo", (key,), lambda k=key: calls.append(k) or 10 * k, 2)

    at = AppTest.from_function(script)
    at.session_state["keys_asked"] = [1, 2, 1, 3, 1]
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["calls"] == [1, 2, 3, 1]
    assert at.session_state["memo"] == {(3,): 30, (1,): 10}
