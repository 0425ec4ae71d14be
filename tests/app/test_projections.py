"""AppTest of the Projections page."""

from __future__ import annotations

import pytest

from tests.app.helpers import (
    PROJECTIONS,
    SMALL,
    app,
    texts,
)
from ui import state


@pytest.mark.parametrize(
    ("method", "dims", "colour"),
    [("pca", 2, "label"), ("tsne", 2, "cluster"), ("pca", 3, "cluster")],
)
def test_projections(method, dims, colour):
    at = app(PROJECTIONS, **SMALL)
    at.radio(key=state.METHOD).set_value(method)
    at.radio(key=state.DIMS).set_value(dims)
    at.radio(key=state.COLOR_BY).set_value(colour).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("download_button")) == 3
    assert "trustworthiness" in texts(at.caption)
    assert "prediction" in texts(at.caption)  # ImageNet colouring is off, and says why
