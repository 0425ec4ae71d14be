"""AppTest of the Teaching page's animated layer sweep; the rest of the page is tested in
tests/test_app.py, whose helpers and autouse fixture this file shares."""

from __future__ import annotations

import json

import pytest

import featlib
from tests import test_app
from tests.test_app import SMALL, TEACHING, app
from ui import state

offline = test_app.offline  # autouse here too: offline, empty caches, a fresh store


@pytest.mark.slow
def test_teaching_layer_sweep_animated_from_the_url_and_back():
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
