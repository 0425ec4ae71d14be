"""AppTest of the Model page."""

from __future__ import annotations

import pytest

import featlib
from tests.app.helpers import (
    MODEL,
    PROJECTIONS,
    SMALL,
    app,
    texts,
)
from ui import state


def test_model_page():
    at = app(MODEL, **SMALL)
    assert at.metric[0].value == "mobilenetv2"
    layers = at.dataframe[0].value
    assert "receptive field (px)" in layers.columns and len(layers) > 100
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in texts(at.info)
    bb = featlib.load_backbone(SMALL["backbone"], weights=SMALL["weights"])
    run = featlib.Extractor(bb, featlib.list_layers(bb)[-1].name, precision="auto")  # remembered
    assert f"in {run.precision}, {run.batch_size} images per pass" in texts(at.caption)


@pytest.mark.slow
def test_imagenet_predictions_on_the_model_and_projection_pages(fake_imagenet):
    at = app(MODEL, **SMALL)
    assert not at.info
    top5 = at.dataframe[-1].value
    assert list(top5.columns) == ["image", "#1", "#2", "#3", "#4", "#5"]
    assert len(top5) == 10 and top5["#1"].str.startswith("class_").all()
    at.switch_page(PROJECTIONS).run()
    at.radio(key=state.COLOR_BY).set_value("prediction").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
