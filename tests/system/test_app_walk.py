"""A seeded random walk over the app, as a curious person would use it: open a page, change a
sidebar choice or a widget of the page to a random allowed value, press buttons, reload (a new
session with the same URL: uploads and everything else of the old session are gone), upload a
few files, look at another sample set; after every step, no exception.

Three walks of ``FEATLIB_WALK_STEPS`` steps each (default 70: a step is one or two reruns,
0.6 s on two idle cores and 2.5 s on busy ones, so 210 steps take two to nine minutes; under
``make test`` the three walks run side by side on its two workers), seeded
from ``FEATLIB_WALK_SEED`` (default 0). A failure prints every step so far (with its seconds) and
the command that replays the walk up to the failing step.

To stay affordable the walk mostly uses MobileNetV2 (fast) and the bundled photos, keeps to a
handful of each backbone's layers, and visits the 200- and 300-image samples only for a step;
every other choice is any value the widget allows. One walk starts on the app's true defaults
(VGG16, weights auto).
"""

from __future__ import annotations

import contextlib
import os
import random
import time

import pytest
from streamlit.testing.v1 import AppTest

from featlib.extraction.features import CHANNEL_POOLINGS
from featlib.images.decode import RESIZE_MODES
from tests.app import helpers
from tests.app.helpers import APP, png
from ui import data, state
from ui.sidebar import WEIGHTS

offline = helpers.offline  # autouse here too: offline, empty caches, a fresh store

SEED = int(os.environ.get("FEATLIB_WALK_SEED", "0"))
STEPS = int(os.environ.get("FEATLIB_WALK_STEPS", "70"))
PAGES = ["app_pages/home.py", "app_pages/feature_maps.py", "app_pages/projections.py",
         "app_pages/neighbours.py", "app_pages/checks.py", "app_pages/teaching.py",
         "app_pages/model.py"]  # fmt: skip
BACKBONES = {"mobilenetv2": 6, "vgg16": 1}  # relative odds: MobileNetV2 is about 10x faster
LAYERS_PER_BACKBONE = 5  # a few layers each: every new layer compiles a new extractor
BIG_SAMPLES = ["faces", "digits"]
UPLOADS = {
    "two images": [("a.png", png(0)), ("b.png", png(1))],
    "one image": [("only.png", png(2))],
    "broken and good": [("x.png", b"junk"), ("y.png", png(3)), ("z.png", png(4)),
                        ("w.png", png(5))],
    "all broken": [("x.png", b"junk"), ("n.txt", b"hello")],
}  # fmt: skip
SIDEBAR = {
    state.IMAGES: [s for s in data.sources() if s not in BIG_SAMPLES],
    state.WEIGHTS: list(WEIGHTS),
    state.POOLING: list(CHANNEL_POOLINGS),
    state.RESIZE: list(RESIZE_MODES),
}
# Widgets the walk leaves alone: files (uploaded by the "upload" step), downloads, and the
# lesson's buttons, which open a step on a big sample with VGG16 (a minute each; the lesson has
# its own tests).
UNTOUCHED = {"file_uploader", "download_button"}
UNTOUCHED_KEYS = ("lesson",)
ACTIONS = {"page": 5, "widget": 8, "sidebar": 4, "reload": 1, "upload": 1, "sample": 1}


def _candidates(widget) -> set:
    """Values a select widget's options may stand for: the labels, numbers, the part before
    " — " (layers), and the keys of a dict whose ``get`` formats them."""
    labels = list(widget.options)
    pool = set(labels) | {label.split(" — ")[0] for label in labels}
    pool |= {int(label) for label in labels if label.lstrip("-").isdigit()}
    owner = getattr(widget.format_func, "__self__", None)
    if isinstance(owner, dict):
        pool |= set(owner)
    return pool


def _raw_options(widget) -> list:
    """The values behind a select widget's labels, of the type its current value has."""
    kind = type(widget.value)
    values = []
    for label in widget.options:
        matches = []
        for value in _candidates(widget):
            with contextlib.suppress(Exception):  # a format_func that only knows its options
                if str(widget.format_func(value)) == label:
                    matches.append(value)
        same_kind = [v for v in matches if isinstance(v, kind)]
        if same_kind or matches:
            values.append((same_kind or matches)[0])
    return values


class Walk:
    """One walk: the AppTest of the current session, the page it is on, the steps so far."""

    def __init__(self, name: str, seed: int, start: dict[str, str]):
        self.name, self.seed, self.rng, self.steps = name, seed, random.Random(seed), []
        self.actions = 0
        self.clock = time.perf_counter()
        self.page = PAGES[0]
        self.at = self._session(start)
        self.layers = {}
        self._check("start " + " ".join(f"{k}={v}" for k, v in start.items()))

    def _session(self, params: dict) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=300)
        at.query_params.update(params)
        at.run()
        if self.page != PAGES[0]:
            at.switch_page(self.page).run()
        return at

    def _check(self, step: str) -> None:
        seconds, self.clock = time.perf_counter() - self.clock, time.perf_counter()
        page = self.at.title[0].value if self.at.title else "?"  # a button may switch pages
        self.steps.append(f"{len(self.steps):3d} {page}: {step} ({seconds:.1f} s)")
        failure = [str(e.value) for e in self.at.exception]
        failure += [e.value for e in self.at.error if "Traceback" in e.value]
        if failure:
            replay = (
                f"FEATLIB_WALK_SEED={SEED} FEATLIB_WALK_STEPS={self.actions} pytest "
                f"'tests/system/test_app_walk.py::test_random_walk[{self.name}]'"
            )
            pytest.fail(
                f"walk {self.name!r}, seed {self.seed}: {failure}\nreplay: {replay}\nsteps:\n"
                + "\n".join(self.steps),
                pytrace=False,
            )

    def _run(self, step: str, element=None) -> None:
        (element or self.at).run()
        self._check(step)

    # --- the actions -----------------------------------------------------------------------------

    def page_(self) -> None:
        self.page = self.rng.choice(PAGES)
        self.at.switch_page(self.page)
        self._run("open the page")

    def reload(self) -> None:
        params = {k: v for k, v in self.at.query_params.items()}
        self.at = self._session(params)
        self._check(f"reload with {params}")

    def upload(self) -> None:
        name = self.rng.choice(list(UPLOADS))
        self.page = PAGES[0]
        self._run("open the page", self.at.switch_page(self.page))
        files = [(n, b, "image/png") for n, b in UPLOADS[name]]
        self._run(f"upload {name}", self.at.file_uploader(key=state.UPLOADS).set_value(files))

    def sample(self) -> None:
        """A look at a big sample set, then back: each of its steps costs seconds."""
        box = self.at.selectbox(key=state.IMAGES)
        before = box.value
        big = self.rng.choice(BIG_SAMPLES)
        self._run(f"sidebar images = {big}", box.set_value(big))
        with contextlib.suppress(KeyError):  # a page may have stopped before the sidebar
            back = self.at.selectbox(key=state.IMAGES).set_value(before)
            self._run(f"sidebar images = {before}", back)

    def sidebar_(self) -> None:
        keys = {w.key for w in self.at.sidebar.get("selectbox") + self.at.sidebar.get("radio")}
        keys |= {w.key for w in self.at.sidebar.get("number_input")}
        key = self.rng.choice(sorted(keys))
        if key == state.BACKBONE:
            value = self.rng.choices(list(BACKBONES), weights=list(BACKBONES.values()))[0]
            self._run(f"sidebar {key} = {value}", self.at.selectbox(key=key).set_value(value))
        elif key == state.LAYER:
            box = self.at.selectbox(key=key)
            value = self.rng.choice(self._layers(box))
            self._run(f"sidebar {key} = {value}", box.set_value(value))
        elif key in SIDEBAR:
            widget = self.at.sidebar.get("selectbox") + self.at.sidebar.get("radio")
            widget = next(w for w in widget if w.key == key)
            value = self.rng.choice(SIDEBAR[key])
            self._run(f"sidebar {key} = {value}", widget.set_value(value))
        else:
            self._widget(next(w for w in self.at.sidebar.get("number_input") if w.key == key))

    def _layers(self, box) -> list[str]:
        backbone = self.at.selectbox(key=state.BACKBONE).value
        if backbone not in self.layers:
            names = [label.split(" — ")[0] for label in box.options]
            picked = self.rng.sample(names, min(LAYERS_PER_BACKBONE, len(names)))
            self.layers[backbone] = [box.value, *picked]
        return self.layers[backbone]

    def widget(self) -> None:
        widgets = [
            w for kind in ("selectbox", "radio", "select_slider", "button_group", "slider",
                           "number_input", "toggle", "checkbox", "button")
            for w in self.at.main.get(kind)
            if not w.proto.disabled and w.type not in UNTOUCHED
            and not (w.key or "").startswith(UNTOUCHED_KEYS)
        ]  # fmt: skip
        if not widgets:
            self.page_()
            return
        self._widget(self.rng.choice(widgets))

    def _widget(self, w) -> None:
        what = f"{w.type} {w.key or w.label!r}"
        if w.type == "button":
            self._run(f"click {what}", w.click())
        elif w.type in ("toggle", "checkbox"):
            self._run(f"{what} = {not w.value}", w.set_value(not w.value))
        elif w.type in ("selectbox", "radio", "select_slider", "button_group"):
            options = _raw_options(w)
            value = self.rng.choice(options) if options else w.value
            self._run(f"{what} = {value!r}", w.set_value(value))
        else:  # slider, number_input: a value in range, on the step grid
            low = 0 if w.min is None else w.min
            high = low + 50 if w.max is None else w.max
            step = w.step or 1
            value = min(high, low + step * self.rng.randint(0, int((high - low) / step)))
            value = int(value) if isinstance(w.value, int) else value
            if isinstance(w.value, (tuple, list)):  # a range slider: from its low end
                self._run(f"{what} = {low!r}..{value!r}", w.set_range(low, value))
            else:
                self._run(f"{what} = {value!r}", w.set_value(value))

    def step(self) -> None:
        self.actions += 1
        action = self.rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        {"page": self.page_, "widget": self.widget, "sidebar": self.sidebar_,
         "reload": self.reload, "upload": self.upload, "sample": self.sample}[action]()  # fmt: skip


START = {
    "defaults": {},  # VGG16, weights auto (offline: the bundled HED weights), the photos
    "small": {state.BACKBONE: "mobilenetv2", state.WEIGHTS: "random"},
    "uploads in the link": {state.BACKBONE: "mobilenetv2", state.WEIGHTS: "random",
                            state.IMAGES: "uploads"},
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", list(START))
def test_random_walk(name):
    seed = SEED * len(START) + list(START).index(name)  # each walk its own, from one seed
    walk = Walk(name, seed, START[name])
    for _ in range(STEPS):
        walk.step()
    print("\n".join(walk.steps))  # with -s: what the walk did, and how long each step took
    assert walk.actions == STEPS and len(walk.steps) > STEPS
