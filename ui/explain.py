"""Short explanations for students, one per page, and the lesson that walks through the pages.

``explain(topic)`` draws a closed "What am I looking at?" expander, and on a lesson step's page
the step with a "Next step" link; ``lesson()`` lists the lesson's steps as links that open each
page, in the same tab, with the bundled samples and a preset view.

What a step says about a result holds for the lesson's data and weights (VGG16 with the offline
weights): ``tests/app/test_teaching.py`` computes each claim. Where a result depends on the data,
the page words it from the numbers instead (``featlib.teaching.sweep.describe_sweep``).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from featlib.models.registry import DEFAULT_BACKBONE
from ui import state

__all__ = ["BASE", "LESSON", "Step", "explain", "lesson"]

TEXTS = {
    "feature_maps": """
A **layer** turns its input into many **channels**. Each channel is a small detector that slides
over the image; its **feature map** shows where it found its pattern (bright) and where not
(dark). Early layers find edges and colours; deeper ones combine them into textures and parts.
Each output position of a layer only sees a square of the input, its **receptive field**: a few
pixels early on, most of the image near the end — which is why deep maps are coarse. The grid
shows the channels with the highest mean activation; the colour scale runs from each map's
lowest to highest value (or one scale for all with "One scale").
""",
    "projections": """
Each image becomes one long vector: the layer's maps **pooled** (averaged, or their maximum
taken) over the image, one number per channel. To see hundreds of such vectors at once they are
squeezed onto a plane. **PCA** keeps the directions in which the vectors differ most (a linear,
faithful-at-large-scale view). **t-SNE** and **UMAP** keep neighbourhoods instead: images close
in the layer's eyes land close on the plane, but distances between far-apart groups mean little.
t-SNE's **perplexity** is roughly how many neighbours each point pays attention to; UMAP's
**neighbours** does the same job. Trustworthiness (1 is perfect) says how well the plane keeps
the true neighbours.
""",
    "neighbours": """
Two images are compared by the angle between their pooled vectors: **cosine similarity** is 1
when they point the same way and 0 when they have nothing in common. The nearest neighbours are
the images this layer finds most alike — try an early layer (similar colours and edges) and a
late one (similar content). The matrix shows every pair at once, grouped by label: bright
squares on the diagonal mean a label's images look alike to the layer.
""",
    "checks": """
The network's features make a quick health check of a labelled set. **Duplicates** are files with
the same bytes, or pictures whose features are almost identical or whose perceptual hashes match
(resized, cropped, slightly rotated, mirrored or re-encoded copies; also across train and test:
*leakage*, counted per split). **Outliers** are far from all other images. A **label issue** is an
image whose label a simple model, trained on the other images, finds unlikely; *confident learning*
(cleanlab) sets how unlikely is suspicious for this set. **Image quality** comes from the pixels
(brightness, sharpness, information). **Separability** asks whether a straight line in feature
space can tell the labels apart: if it cannot, a model will struggle too. **Warnings** concern the
whole set: a class much rarer than the others, or labels that image properties alone (brightness,
size, shape, colour) predict — a shortcut a model would learn instead of the content.
""",
    "sweep": """
Each block of the network turns the image into a new set of
features. For every block we ask a simple question: *can a straight line (a linear probe)
tell the labels apart using only these features?* The **probe accuracy** is the share of
images it gets right on images it was not fitted on (cross-validation); the dotted line is
chance. The **silhouette** (−1 to 1) says how tightly images of one label cluster together.

Early blocks see edges and colours, later ones textures and parts of objects. Whether the
curve rises with depth depends on the set: on an easy one even the first block separates the
labels, and only the silhouette shows more. The dashed lines are the same network with
**random weights**: same architecture, nothing learned; the gap between them is what training
added. Under the curves the page reads out what these numbers say.
The small plots below show the whole set at each block (PCA, each aligned to the one before),
so you can see whether, and where, the labels pull apart; "animated" shows one block at a
time, and on Play each image's dot glides to where the next block puts it.
""",
    "cam": """
Grad-CAM asks: *which places in the image made the score go up?*
It takes the chosen layer's feature maps, weighs each channel by how much the score would
change if that channel were stronger (its gradient), adds them up and keeps the positive
part. Bright means "evidence for the target was found here". A layer closer to the output gives
coarser but more meaningful maps; an early layer gives sharp maps of simple patterns.

For a classifier the target is a class, and the score is the class's score *before* the
softmax (its logit, as in the Grad-CAM paper): after the softmax, a class the network is sure
of has a probability stuck near 1, whose gradient is nearly zero, and its map turns to noise.
"after softmax" shows that map. For a feature extractor (no classifier on top) the target is
the strongest channel of the last layer — "what the deepest features respond to most".
""",
    "channel": """
A channel is one feature detector of a layer. Its **feature map**
says where in an image it fired. Below are the images of your set that made it fire most,
each with the **patch it sees**: a layer's output position only looks at a square of the
input, its *receptive field*, which grows with depth (from a few pixels to most of the image).
Cut around the strongest position, that patch is what the channel responds to.

The last picture is **made** for the channel: starting from grey noise, the image is nudged
step by step in the direction that raises the channel's activation (gradient ascent), with a
little random shifting (jitter) and a penalty on pixel noise (total variation) so that the
pattern, not static, emerges.
""",
}


@dataclass(frozen=True)
class Step:
    """One lesson step: the page it opens, the settings it opens with, and what to notice."""

    title: str
    page: str
    params: dict
    notice: str


LESSON = (
    Step("Feature maps, early", "feature_maps", {"layer": "block1_conv2", "image": "chelsea.png"},
         "Maps as fine as the picture (224 × 224): each position sees a 5-pixel patch, enough for "
         "an edge or a colour blob, so each channel finds one kind of edge or colour."),
    Step("Feature maps, deep", "feature_maps", {"layer": "block4_conv3", "image": "chelsea.png"},
         "Coarser maps (28 × 28): each position sees a 92-pixel patch, room for textures and "
         "parts."),
    Step("Through the network", "feature_maps", {"layer": "block5_conv3", "image": "astronaut.png",
         "compare": "weights"}, "Trained weights against random ones, block by block."),
    Step("Neighbours", "neighbours", {"images": "faces", "layer": "block4_pool"},
         "Faces find faces: for almost every image (99 %), the nearest neighbour at block4_pool "
         "has its label."),
    Step("Projections", "projections", {"images": "digits", "layer": "block4_pool",
         "method": "tsne"}, "Only 0 and 1 form islands of their own; the other digits mix: these "
         "weights were trained to find edges, not digits."),
    Step("Where meaning emerges", "teaching", {"images": "faces", "teach": "sweep"},
         "Run the layer sweep: telling faces from other pictures is so easy that the probe "
         "succeeds at every block, even with random weights; the silhouette shows what training "
         "added. Under the curves the page reads out the numbers."),
)  # fmt: skip
BASE = {"backbone": DEFAULT_BACKBONE, "weights": "offline", "images": "photos"}
_PAGE_OF_TOPIC = {"sweep": "teaching", "channel": "teaching", "cam": "teaching"}


def _go(n: int) -> None:
    """Button callback: put step ``n``'s settings into the session (a widget prefers its session
    value to the URL's), then let the next run switch to its page."""
    step = LESSON[n - 1]
    for key, value in {**BASE, **step.params}.items():
        st.session_state[key] = value
    st.session_state[state.LESSON_GO] = n


def _follow() -> None:
    """Switch to the page of the step whose link was just pressed, in this tab and session."""
    n = st.session_state.pop(state.LESSON_GO, None)
    if n is not None:
        step = LESSON[n - 1]
        st.switch_page(
            f"app_pages/{step.page}.py",
            query_params={**BASE, **step.params, state.LESSON_STEP: str(n)},
        )


def _link(place, n: int, label: str, key: str, width: str = "content") -> None:
    place.button(
        label, key=key, on_click=_go, args=(n,), icon=":material/arrow_forward:", width=width
    )


def _current_step(topic: str) -> int | None:
    raw = st.query_params.get(state.LESSON_STEP, "")
    n = int(raw) if raw.isdigit() else None
    page = _PAGE_OF_TOPIC.get(topic, topic)
    return n if n is not None and 1 <= n <= len(LESSON) and LESSON[n - 1].page == page else None


def explain(topic: str) -> None:
    """A closed "What am I looking at?" expander with the topic's explanation; on the page a
    lesson step opened, the step and a link to the next one."""
    _follow()
    n = _current_step(topic)
    if n is not None:
        step = LESSON[n - 1]
        st.info(f"**Lesson, step {n} of {len(LESSON)}: {step.title}.** {step.notice}")
        if n < len(LESSON):
            _link(st, n + 1, f"Next step: {LESSON[n].title}", f"{state.LESSON_LINK}next")
        else:
            st.caption("That was the last step of the lesson.")
    with st.expander("What am I looking at?"):
        st.markdown(TEXTS[topic])


def lesson() -> None:
    """The lesson's steps, each a link that opens its page, in this tab, with the samples and a
    preset view."""
    _follow()
    for n, step in enumerate(LESSON, start=1):
        left, right = st.columns([1, 3], vertical_alignment="center")
        _link(left, n, f"{n}. {step.title}", f"{state.LESSON_LINK}{n}", width="stretch")
        right.markdown(step.notice)
