"""AppTest of the Checks page: the app's real defaults, the awkward sets a user can make, and
the widgets (thresholds, the gallery's issue, exports)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import streamlit as st
from PIL import Image, ImageOps

import featlib
from featlib.analysis.checks.issues import TITLES
from tests.app.helpers import CHECKS, FEATURE_MAPS, MODEL, SMALL, TEACHING, app, png, texts
from ui import state


def summary(at):
    """The summary table, indexed by issue title."""
    return at.table[0].value.set_index("issue")


def uploaded(files, **params):
    """The Checks page on a set uploaded on the Home page (``(name, bytes)`` pairs)."""
    at = app(**params)
    mime = {".zip": "application/zip"}
    at.file_uploader(key=state.UPLOADS).set_value(
        [(name, data, mime.get(name[-4:], "image/png")) for name, data in files]
    ).run()
    assert not at.exception, at.exception
    at.switch_page(CHECKS).run()
    assert not at.exception, at.exception
    return at


def class_zip(labels, same=False) -> tuple[str, bytes]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for i, label in enumerate(labels):
            archive.writestr(f"{label}/{i}.png", png(0 if same else i))
    return "set.zip", buf.getvalue()


def test_real_defaults_no_choice_changed():
    """vgg16, weights auto (the bundled offline weights here), the sample photos: the first
    thing a newcomer sees. Some issue tables have no rows (no pair is near a duplicate)."""
    at = app(CHECKS)
    assert at.query_params["backbone"] == "vgg16" and at.query_params["weights"] == "auto"
    table = summary(at)
    assert list(table.index[:12]) == list(TITLES.values())
    assert table.loc["Near duplicates", "images"] == "0"
    assert table.loc["Outliers", "images"] == "0"
    assert [m.label for m in at.metric] == ["Probe accuracy", "Chance", "Silhouette", "Imbalance"]
    assert "%" in at.metric[0].value and "of 10 images" in texts(at.caption)
    assert len(at.get("plotly_chart")) == 1  # the confusion matrix
    assert {b.label for b in at.get("download_button")} == {"Report as CSV", "Report as HTML"}


def test_summary_galleries_and_set_facts_on_faces():
    at = app(CHECKS, images="faces", **SMALL)
    assert not at.exception, at.exception
    info = texts(at.info)
    assert "every image is 25×25 px" in info and "every image is grayscale" in info
    table = summary(at)
    assert table.loc["Grayscale", "images"] == "0" and table.loc["Tiny", "images"] == "0"
    assert table.loc["Near duplicates", "pairs"] != "" and table.loc["Dark", "pairs"] == ""
    for issue in ("near_duplicates", "outliers", "dark", "blurry", "label_issues"):
        assert int(table.loc[TITLES[issue], "images"]) <= 0.05 * 200
    gallery = at.radio(key=state.GALLERY)
    assert gallery.options and all("(" in o for o in gallery.options)
    assert at.get("image"), "the flagged images of the chosen issue"


def test_threshold_changes_counts_without_recomputing_and_keeps_the_gallery(monkeypatch):
    at = app(CHECKS, images="faces", **SMALL)
    options = at.radio(key=state.GALLERY).options
    chosen = _issue(options[-1])  # not the first: that is where a reset would land
    at.radio(key=state.GALLERY).set_value(chosen).run()
    assert at.radio(key=state.GALLERY).value == chosen
    before = summary(at)["images"].astype(int)
    calls = []
    monkeypatch.setattr(featlib, "check_image_set", lambda *a, **k: calls.append(1))
    for issue in ("outliers", chosen):  # another issue's count, then the chosen one's
        slider = at.slider(key=f"{state.THRESHOLD_PREFIX}{issue}")
        slider.set_value(slider.min if issue == "outliers" else slider.value * 1.01).run()
        assert not at.exception, at.exception
        assert at.radio(key=state.GALLERY).value == chosen
    after = summary(at)["images"].astype(int)
    assert after["Outliers"] > before["Outliers"]
    assert calls == []


def _issue(option: str) -> str:
    """The issue key of a gallery option ("Blurry (4 images)" -> "blurry")."""
    return next(i for i, title in TITLES.items() if option.startswith(f"{title} ("))


def test_thresholds_from_the_url_are_used_when_in_range():
    url = {"dark": "0.3", "outliers": "99", "near_duplicates": "0.5", "blurry": "nan"}
    keys = {issue: f"{state.THRESHOLD_PREFIX}{issue}" for issue in url}
    plain = app(CHECKS, **SMALL)
    default = {issue: plain.slider(key=keys[issue]).value for issue in url}
    at = app(CHECKS, **{keys[i]: v for i, v in url.items()}, **SMALL)
    value = {issue: at.slider(key=keys[issue]).value for issue in url}
    assert value["dark"] == 0.3
    assert value["near_duplicates"] == default["near_duplicates"]  # below every stored pair
    assert value["outliers"] == default["outliers"]  # above every score
    assert value["blurry"] == default["blurry"]


@pytest.mark.parametrize("count", [1, 2])
def test_too_few_images_say_so(count):
    at = uploaded([(f"{i}.png", png(i)) for i in range(count)], **SMALL)
    assert "needs at least 3 usable images" in texts(at.warning)
    assert not at.table


def test_every_file_broken_says_so():
    at = uploaded([(f"{i}.png", b"not a png") for i in range(3)], **SMALL)
    assert "needs at least 3 usable images" in texts(at.warning)


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ([class_zip(["cat"] * 4)], "fewer than 2 classes"),
        ([(f"{i}.png", png(i)) for i in range(4)], "no image has a label"),
    ],
    ids=["one label", "no labels"],
)
def test_sets_without_two_classes_skip_the_probe_with_a_reason(files, why):
    at = uploaded(files, **SMALL)
    assert not at.metric
    assert why in texts(at.caption)
    assert f"not checked: {why}" in " ".join(summary(at)["meaning"])


def test_identical_images_are_exact_duplicates_and_nothing_else():
    at = uploaded([class_zip(["cat", "cat", "dog", "dog"], same=True)], **SMALL)
    table = summary(at)
    assert table.loc["Exact duplicates", "images"] == "4"
    assert table.loc["Exact duplicates", "pairs"] == "3"
    assert "every image has the same content" in table.loc["Near duplicates", "meaning"]
    assert at.radio(key=state.GALLERY).options == ["Exact duplicates (3 pairs)"]


def test_three_images_two_of_them_one_file():
    at = uploaded([("a.png", png(0)), ("b.png", png(0)), ("c.png", png(1))], **SMALL)
    table = summary(at)
    assert table.loc["Exact duplicates", "pairs"] == "1"
    assert table.loc["Outliers", "images"] == "0"
    assert "Exact duplicates (1 pair)" in at.radio(key=state.GALLERY).options


def test_a_mirrored_copy_is_shown_with_its_evidence():
    """Noise pictures and a mirrored copy of one: the pair's caption says why it was flagged."""
    original = Image.open(io.BytesIO(png(0)))
    buf = io.BytesIO()
    ImageOps.mirror(original).save(buf, "PNG")
    files = [(f"{i}.png", png(i)) for i in range(5)] + [("mirrored.png", buf.getvalue())]
    at = uploaded(files, **SMALL)
    assert summary(at).loc["Near duplicates", "pairs"] == "1"
    at.radio(key=state.GALLERY).set_value("near_duplicates").run()
    captions = [
        img.caption.replace("\u200b", "") for image in at.get("image") for img in image.proto.imgs
    ]
    assert any("mirrored.png" in c and "mirrored copy" in c for c in captions), captions


def _shade(seed: int, scale: float) -> bytes:
    """A picture of random pixels scaled in brightness."""
    rng = np.random.default_rng(seed)
    pixels = (rng.integers(0, 256, (40, 48, 3)) * scale).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def test_set_warnings_rare_class_shortcut_and_leakage_per_split():
    """Dark cats, bright dogs, one fox, and a cat in both train and test: the page warns about
    each, and the summary counts the leaked images per split."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for i in range(10):
            archive.writestr(f"train/cat/{i}.png", _shade(i, 0.3))
            archive.writestr(f"train/dog/{i}.png", _shade(100 + i, 1.0))
        archive.writestr("train/fox/0.png", _shade(200, 0.7))
        archive.writestr("test/cat/copy.png", _shade(0, 0.3))
    at = uploaded([("set.zip", buf.getvalue())], **SMALL)
    warnings = texts(at.warning)
    assert "Class 'fox' has 1 image" in warnings
    assert "'cat' images are dark" in warnings or "'dog' images are bright" in warnings
    assert "2 images have an exact or near duplicate in another split (1 in 'test', 1 in " in (
        warnings
    )
    assert summary(at).loc["Leakage across splits", "images"] == "2"


def test_gallery_names_wrap_between_words_not_inside_them():
    from ui.data import breakable

    shown = breakable("hubble_deep_field.png")
    assert shown.replace("\u200b", "") == "hubble_deep_field.png"
    assert shown.split("\u200b") == ["hubble_", "deep_", "field", ".png"]
    long = breakable("a" * 30 + "_" + "b" * 30 + ".jpg")
    assert "…" in long and len(long.replace("\u200b", "")) == 40


def test_checks_of_a_feature_file_use_its_vectors_only(feature_file, monkeypatch):
    st.cache_resource.clear()
    at = app(CHECKS)
    table = summary(at)
    for computed in ("near_duplicates", "outliers", "label_issues"):
        assert not table.loc[TITLES[computed], "meaning"].startswith("not checked")
    assert table.loc[TITLES["blurry"], "meaning"].startswith("not checked")  # no pixels decoded
    assert table.loc[TITLES["exact_duplicates"], "images"] == "0"
    assert "Report as CSV" in {b.label for b in at.get("download_button")}

    def no_checking(*args, **kwargs):
        raise AssertionError("checked again")

    monkeypatch.setattr(featlib, "check_dataset", no_checking)
    other = app(CHECKS)  # another session of the same server: the report is not made again
    assert not other.exception, other.exception
    assert summary(other).equals(table)


@pytest.mark.parametrize("page", [FEATURE_MAPS, TEACHING, MODEL])
def test_pages_that_run_a_network_say_so_on_a_feature_file(feature_file, page):
    at = app(page)
    assert "This page needs a network" in texts(at.info)
    assert not at.get("plotly_chart") and not at.get("image")
