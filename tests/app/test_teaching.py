"""AppTest of the Teaching page and the lesson; the helpers and the autouse fixture come from
tests/app/. Each view computes only when it is the one open."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import featlib
from featlib.teaching import channels
from tests.app import helpers
from tests.app.helpers import SMALL, TEACHING, app, png, texts, tiny_model_file
from ui import explain, state

imagenet_cache = helpers.fake_imagenet  # a Keras cache with fake ImageNet weights


def captions(at) -> list[str]:
    return [img.caption for e in at.get("image") for img in e.proto.imgs]


def test_only_the_open_view_runs():
    at = app(TEACHING, images="photos", **SMALL)
    assert at.segmented_control(key=state.TEACH_VIEW).value == "sweep"
    assert at.button(key=state.RUN_SWEEP)
    assert not captions(at) and not at.get("plotly_chart")  # nothing heavy before the button
    at.segmented_control(key=state.TEACH_VIEW).set_value("channel").run()
    assert not at.exception, at.exception
    assert sum("· peak" in c for c in captions(at)) == 8
    assert state.RUN_SWEEP not in [b.key for b in at.button]
    assert at.query_params[state.TEACH_VIEW] == "channel"


def test_random_weights_are_not_compared_with_themselves():
    """The crash of issue 17: a comparison left on, with random weights chosen, drew two charts
    with one key."""
    at = app(TEACHING, images="photos", sweep_random="True", **SMALL)
    assert at.toggle(key=state.SWEEP_RANDOM).disabled
    at.button(key=state.RUN_SWEEP).click().run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2  # the curves and one set per block
    at.run()
    assert not at.exception, at.exception


def test_a_set_of_small_images_is_swept_at_their_size_and_says_so():
    at = app(TEACHING, images="faces", **SMALL)
    at.button(key=state.RUN_SWEEP).click().run()
    assert not at.exception, at.exception
    assert "Swept at 64 × 64 pixels, not 224 × 224" in texts(at.caption)
    assert len(at.get("plotly_chart")) == 2


@pytest.mark.slow
def test_sweep_trained_against_random_then_random_alone():
    at = app(TEACHING, images="photos", backbone="vgg16", weights="offline")
    at.button(key=state.RUN_SWEEP).click().run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3  # the curves, then the set per block for each weights
    assert "random init" in texts(at.caption)
    read_out = texts(at.markdown)
    assert "the probe accuracy" in read_out and "Chance, always answering" in read_out
    at.sidebar.selectbox(key=state.WEIGHTS).set_value("random").run()
    assert not at.exception, at.exception
    at.button(key=state.RUN_SWEEP).click().run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2
    at.run()  # the crash came back on every rerun
    assert not at.exception, at.exception


@pytest.mark.slow
def test_layer_sweep_animated_from_the_url_and_back():
    at = app(TEACHING, images="photos", sweep_view="animated", **SMALL)
    at.button(key=state.RUN_SWEEP).click().run()
    assert not at.exception, at.exception
    curves, animation = at.get("plotly_chart")  # random weights: nothing to compare with
    bb = featlib.load_backbone(SMALL["backbone"], weights=SMALL["weights"])
    blocks = [i.name for i in featlib.block_outputs(bb)]
    assert [f["name"] for f in json.loads(animation.proto.spec)["frames"]] == blocks
    assert json.loads(curves.proto.spec)["data"][0]["x"] == blocks
    at.radio(key=state.SWEEP_VIEW).set_value("side by side").run()
    assert not at.exception, at.exception
    side_by_side = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert "frames" not in side_by_side or not side_by_side["frames"]
    assert at.query_params[state.SWEEP_VIEW] == "side by side"


def test_one_uploaded_photo_says_why_the_sweep_cannot_run_and_the_rest_works():
    at = app()
    at.file_uploader(key=state.UPLOADS).set_value(("a.png", png(0), "image/png")).run()
    at.switch_page(TEACHING).run()
    assert not at.exception, at.exception
    assert "needs at least 2 labels" in texts(at.info)
    at.segmented_control(key=state.TEACH_VIEW).set_value("channel").run()
    assert sum("· peak" in c for c in captions(at)) == 1
    at.segmented_control(key=state.TEACH_VIEW).set_value("cam").run()
    assert "What the network receives" in captions(at)


def test_gradcam_overlay():
    at = app(TEACHING, teach="cam", **SMALL)
    assert not at.exception, at.exception
    assert "What the network receives" in captions(at)
    assert any(c.startswith("Grad-CAM at") and "last-layer channel" in c for c in captions(at))
    assert state.CAM_SCORE not in [r.key for r in at.radio]  # no classifier: no softmax
    at.selectbox(key=state.CAM_IMAGE).set_value("coffee.png").run()
    assert not at.exception, at.exception


def test_channel_explorer_scans_once_and_makes_an_image(monkeypatch):
    scans = []
    scan = channels.scan_layer
    monkeypatch.setattr(channels, "scan_layer", lambda *a, **k: scans.append(a) or scan(*a, **k))
    at = app(TEACHING, teach="channel", unit="3", max_steps="5", max_side="64", **SMALL)
    assert not at.exception, at.exception
    assert sum("· peak" in c for c in captions(at)) == 8
    assert sum(c.startswith("map on") for c in captions(at)) == 8
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # mean per label
    first = captions(at)
    at.number_input(key=state.CHANNEL_INDEX).set_value(4).run()
    assert not at.exception, at.exception
    assert captions(at) != first and len(scans) == 1  # a new channel is an index into the scan
    at.button(key=state.MAKE_IMAGE).click().run()
    assert not at.exception, at.exception
    made = [c for c in captions(at) if "on the noise" in c]
    assert len(made) == 1 and made[0].startswith("channel 4:")


def test_gradcam_for_a_users_classifier_and_an_imagenet_top(tmp_path, imagenet_cache):
    at = app(TEACHING, teach="cam", weights="file", layer="conv2")
    at.file_uploader(key=state.WEIGHTS_FILE).set_value(
        ("tiny.keras", tiny_model_file(tmp_path), "application/octet-stream")
    ).run()
    at.selectbox(key=state.LAYER).set_value("conv2").run()
    assert not at.exception, at.exception
    assert at.selectbox(key=state.CAM_TARGET).options == ["class 0", "class 1"]
    at.selectbox(key=state.CAM_TARGET).set_value(1).run()
    assert any(c.startswith("Grad-CAM at conv2 for class 1 (logit") for c in captions(at))
    at.radio(key=state.CAM_SCORE).set_value("probability").run()
    assert not at.exception, at.exception
    assert any(c.startswith("Grad-CAM at conv2 for class 1 (probability") for c in captions(at))

    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from featlib.models.registry import get_spec

    notop = keras.applications.MobileNetV2(weights=None, include_top=False)
    with h5py.File(imagenet_cache / get_spec("mobilenetv2").imagenet_files[0], "w") as h5:
        legacy_h5_format.save_weights_to_hdf5_group(h5, notop)
    at = app(TEACHING, teach="cam", backbone="mobilenetv2", weights="imagenet")
    assert not at.exception, at.exception
    assert at.selectbox(key=state.CAM_TARGET).options[5] == "5: class_5"
    at = app(TEACHING, teach="cam", **SMALL)  # random weights: no classifier to explain
    assert state.CAM_TARGET not in [box.key for box in at.selectbox]  # no class to choose
    assert "strongest channel" in texts(at.caption)


@pytest.fixture(scope="module")
def lesson_features(tmp_path_factory):
    """What the lesson's pages compute, in the precision the app runs: every block of VGG16,
    pooled, for the lesson's sample sets with the weights the lesson opens with; and the layer
    sweep of faces with those weights and random ones, at the size the app sweeps them."""
    from featlib.teaching.sweep import sweep_input_size

    store = featlib.FeatureStore(tmp_path_factory.mktemp("lesson-store"))
    name = explain.BASE["backbone"]
    bb = featlib.load_backbone(name, weights=explain.BASE["weights"])
    blocks = [i.name for i in featlib.block_outputs(bb)]
    ex = featlib.Extractor(bb, blocks, pooling="avg", precision="auto")
    found = {}
    for images in ("faces", "digits"):
        found[images] = featlib.extract_set(
            bb, featlib.load_samples(images), blocks, store=store, extractor=ex
        )
    faces = featlib.load_samples("faces")
    side, _ = sweep_input_size(bb, faces)
    assert side < bb.input_size[0]  # faces are 64 x 64: swept small, as the app does
    for weights in (explain.BASE["weights"], "random"):
        small = featlib.load_backbone(name, weights=weights, input_size=(side, side))
        small_ex = featlib.Extractor(small, blocks, pooling="avg", precision="auto")
        found[weights] = featlib.layer_sweep(small, faces, blocks, extractor=small_ex)
    return bb, found


@pytest.mark.slow
def test_every_lesson_claim_holds_for_the_lessons_data(lesson_features):
    """Each step's notice, checked against what its page computes with the lesson's weights."""
    from featlib.analysis.neighbors import nearest_all
    from featlib.teaching.sweep import SAME, describe_sweep, islands

    steps = {step.title: step for step in explain.LESSON}
    bb, found = lesson_features
    faces, trained = found["faces"], found[explain.BASE["weights"]]
    for title in ("Feature maps, early", "Feature maps, deep"):
        step = steps[title]
        info = featlib.find_layer(bb, step.params["layer"])
        h, w = info.output_shape[:2]
        assert f"({h} × {w})" in step.notice
        assert f"sees a {info.receptive_field}-pixel patch" in step.notice

    step = steps["Neighbours"]
    x, labels = faces.features[step.params["layer"]], np.array(faces.labels)
    nearest = nearest_all(x, k=1)[0][:, 0]
    agree = (labels[nearest] == labels).mean()
    assert f"({int(agree * 100)} %)" in step.notice and agree >= 0.99

    step = steps["Projections"]
    digits = found["digits"]
    projection = featlib.project(
        digits.features[step.params["layer"]], method=step.params["method"], random_state=0
    )
    assert islands(projection.embedding, digits.labels) == ["0", "1"]
    assert step.notice.startswith("Only 0 and 1 form islands")

    step = steps["Where meaning emerges"]
    assert step.params["images"] == "faces"
    random = found["random"]
    for sweep in (trained, random):
        assert sweep.accuracy.min() >= 1 - SAME  # "the probe succeeds at every block"
    assert np.all(trained.silhouette > random.silhouette)  # "the silhouette shows ..."
    lines = describe_sweep(trained, random)
    assert "too easy" in lines[1] and "Training adds most to the silhouette" in lines[-2]


def test_lesson_steps_open_in_this_session_with_a_next_step():
    keys = {v for k, v in vars(state).items() if k.isupper() and isinstance(v, str)}
    for step in explain.LESSON:
        assert (Path(__file__).parents[2] / f"app_pages/{step.page}.py").is_file()
        assert set(step.params) | set(explain.BASE) <= keys
    at = app()
    assert [b.key for b in at.button if b.key.startswith(state.LESSON_LINK)] == [
        f"{state.LESSON_LINK}{n}" for n in range(1, len(explain.LESSON) + 1)
    ]
    at.button(key=f"{state.LESSON_LINK}1").click().run()
    assert not at.exception, at.exception
    assert at.query_params[state.LESSON_STEP] == "1"
    assert at.sidebar.selectbox(key=state.LAYER).value == "block1_conv2"
    assert "step 1 of 6" in texts(at.info)
    at.button(key=f"{state.LESSON_LINK}next").click().run()
    assert not at.exception, at.exception
    assert at.query_params[state.LESSON_STEP] == "2"
    assert at.sidebar.selectbox(key=state.LAYER).value == "block4_conv3"
    assert "step 2 of 6" in texts(at.info)
