"""AppTest of the Home page: the image set, uploads, and the sidebar's weights."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

from featlib.extraction.features import CHANNEL_POOLINGS
from featlib.images.decode import RESIZE_MODES
from featlib.models.registry import WEIGHTS_CHOICES
from tests.app.helpers import (
    FEATURE_MAPS,
    HOME,
    PROJECTIONS,
    app,
    image_counts,
    plotted_rows,
    png,
    texts,
)
from tests.system.feature_sets import LAYER, write_feature_set
from ui import data, state


def test_ui_state_imports_no_tensorflow():
    code = "import sys; from ui import state; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


def test_home_shows_the_samples_and_writes_the_url():
    at = app()
    assert at.radio(key=state.POOLING).options == list(CHANNEL_POOLINGS)
    assert at.radio(key=state.RESIZE).options == list(RESIZE_MODES)
    assert len(at.selectbox(key=state.WEIGHTS).options) == len(WEIGHTS_CHOICES) + 1  # + a file
    assert [m.value for m in at.metric] == ["10", "10", "2", "0"]
    assert image_counts(at) == [10]
    assert at.query_params["backbone"] == "vgg16"
    assert at.query_params["layer"] == "block4_pool"
    assert "HED" in texts(at.caption)


def test_home_upload_with_a_bad_file_keeps_the_good_ones():
    at = app()
    at.file_uploader(key=state.UPLOADS).set_value(
        [("a.png", png(0), "image/png"), ("broken.png", b"not a png", "image/png"),
         ("b.png", png(1), "image/png")]
    ).run()  # fmt: skip
    assert not at.exception
    assert at.selectbox(key=state.IMAGES).value == "uploads"
    assert [m.value for m in at.metric] == ["3", "2", "0", "1"]
    assert "could not be used" in texts(at.warning)
    errors = at.dataframe[-1].value
    assert list(errors["file"]) == ["broken.png"]


def test_home_upload_zip_of_class_folders():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for i, label in enumerate(["cat", "cat", "dog"]):
            archive.writestr(f"{label}/{i}.png", png(i))
    at = app()
    at.file_uploader(key=state.UPLOADS).set_value(("pets.zip", buf.getvalue(), "application/zip"))
    at.run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["3", "3", "2", "0"]


def test_uploads_stay_in_their_session():
    first, second = app(), app()
    first.file_uploader(key=state.UPLOADS).set_value(("a.png", png(0), "image/png")).run()
    second.selectbox(key=state.IMAGES).set_value("uploads").run()
    assert not second.exception
    assert "No uploads yet" in texts(second.info)


def test_uploads_are_kept_across_pages_until_forgotten():
    at = app()
    at.file_uploader(key=state.UPLOADS).set_value(("a.png", png(0), "image/png")).run()
    at.switch_page(FEATURE_MAPS).run()
    assert at.selectbox(key=state.IMAGE).value == "a.png"
    at.switch_page("app_pages/home.py").run()
    assert "kept while you switch pages" in texts(at.caption)
    at.button(key=state.FORGET_UPLOADS).click().run()
    assert at.selectbox(key=state.IMAGES).value == "photos"
    assert [m.value for m in at.metric] == ["10", "10", "2", "0"]


def test_weights_unavailable_offers_random():
    at = app(backbone="mobilenetv2")
    assert "No auto weights for mobilenetv2" in texts(at.warning)
    at.button(key=state.USE_RANDOM).click().run()
    assert not at.exception
    assert at.selectbox(key=state.WEIGHTS).value == "random"
    assert not at.warning


def test_uploaded_model_file_that_is_not_a_model():
    at = app(weights="file")
    at.file_uploader(key=state.WEIGHTS_FILE).set_value(("bad.keras", b"junk", "application/zip"))
    at.run()
    assert not at.exception
    assert "bad.keras" in texts(at.error)


def test_home_on_a_feature_file_with_its_pictures(feature_file):
    at = app(HOME)
    assert at.selectbox(key=state.IMAGES).value == data.FILE  # the server's file comes first
    assert at.selectbox(key=state.IMAGES).options[0] == "Feature file"
    assert at.selectbox(key=state.LAYER).value == LAYER
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Vectors": "120", "Layers": "1", "Labels": "4", "Without picture": "1"}
    assert image_counts(at) == [60]
    assert "features.parquet: 120 vectors of embedding (32-d)" in texts(at.subheader)
    assert "Backbone" not in [s.label for s in at.sidebar.selectbox]  # no network runs here


def test_home_on_a_feature_file_without_its_pictures(feature_file, monkeypatch):
    from featlib.cli.commands import APP_IMAGES_ENV

    monkeypatch.delenv(APP_IMAGES_ENV)
    at = app(HOME)
    assert {m.label: m.value for m in at.metric}["Without picture"] == "all"
    assert data.NO_PICTURES in texts(at.info)
    assert image_counts(at) == []


def test_home_takes_an_uploaded_feature_file(tmp_path):
    path, _ = write_feature_set(tmp_path / "set", 30, dim=8, n_classes=3, suffix=".npz")
    at = app(HOME)
    at.file_uploader(key=state.FEATURE_UPLOAD).set_value(
        ("mine.npz", path.read_bytes(), "application/octet-stream")
    ).run()
    assert not at.exception, at.exception
    assert at.selectbox(key=state.IMAGES).value == "uploads"
    assert "Your feature file mine.npz: 30 vectors of features (8-d)" in texts(at.subheader)
    assert {m.label: m.value for m in at.metric}["Vectors"] == "30"
    assert data.NO_PICTURES in texts(at.info)
    at.switch_page(PROJECTIONS).run()
    assert not at.exception, at.exception
    rows = plotted_rows(at)
    assert sorted(rows) == ["class_00", "class_01", "class_02"]
    assert sorted(i for points in rows.values() for i in points) == list(range(30))
    mounted = [json.loads(c.proto.json)["mode"] for c in at.get("bidi_component")]
    assert mounted == ["select"]  # picking points, and no pictures to show on hover
