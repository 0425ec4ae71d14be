"""Short explanations for students, one per page, and the lesson that walks through the pages.

``explain(topic)`` draws a closed "What am I looking at?" expander; ``lesson()`` lists the
lesson's steps as links that open each page with the bundled samples and a preset view.
"""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

__all__ = ["LESSON", "explain", "lesson"]

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
The network's features make a quick health check of a labelled set. **Duplicates** are files
with the same bytes, or pictures whose features are almost identical (also across train and test:
*leakage*). **Outliers** are far from all other images. A **label issue** is an image whose label
a simple model, trained on the other images, finds unlikely. **Image quality** comes from the
pixels (brightness, sharpness, information). **Separability** asks whether a straight line in
feature space can tell the labels apart: if it cannot, a model will struggle too.
""",
    "sweep": """
Each block of the network turns the image into a new set of
features. For every block we ask a simple question: *can a straight line (a linear probe)
tell the labels apart using only these features?* The **probe accuracy** is the share of
images it gets right on images it was not fitted on (cross-validation); the dotted line is
chance. The **silhouette** (−1 to 1) says how tightly images of one label cluster together.

Early blocks see edges and colours, later ones textures and parts of objects, so the curve
usually rises with depth — **for trained weights**. The dashed lines are the same network with
**random weights**: same architecture, nothing learned. The gap between them is what training
added. The small plots below show the whole set at each block (PCA, each aligned to the one
before), so you can watch the labels pull apart; "animated" shows one block at a time, and on
Play each image's dot glides to where the next block puts it.
""",
    "cam": """
Grad-CAM asks: *which places in the image made the score go up?*
It takes the chosen layer's feature maps, weighs each channel by how much the score would
change if that channel were stronger (its gradient), adds them up and keeps the positive
part. Bright means "evidence for the target was found here". A layer closer to the output gives
coarser but more meaningful maps; an early layer gives sharp maps of simple patterns.

For a classifier the target is a class; for a feature extractor (no classifier on top) it is
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

LESSON = [
    ("Feature maps, early", "feature_maps", {"layer": "block1_conv2", "image": "chelsea.png"},
     "Edges and colours: each channel finds one kind of edge or colour blob."),
    ("Feature maps, deep", "feature_maps", {"layer": "block4_conv3", "image": "chelsea.png"},
     "Coarser maps, and channels that fire on textures and parts (eyes, fur)."),
    ("Through the network", "feature_maps", {"layer": "block5_conv3", "image": "astronaut.png",
     "compare": "weights"}, "Trained weights against random ones, block by block."),
    ("Neighbours", "neighbours", {"images": "faces", "layer": "block4_pool"},
     "Faces find faces: the layer has learned what they have in common."),
    ("Projections", "projections", {"images": "digits", "layer": "block4_pool", "method": "tsne"},
     "Each digit class forms its own island."),
    ("Where meaning emerges", "teaching", {"images": "faces"},
     "Run the layer sweep: accuracy rises with depth for trained weights, not for random ones."),
]  # fmt: skip
BASE = {"backbone": "vgg16", "weights": "offline", "images": "photos"}


def explain(topic: str) -> None:
    """A closed "What am I looking at?" expander with the topic's explanation."""
    with st.expander("What am I looking at?"):
        st.markdown(TEXTS[topic])


def lesson() -> None:
    """The lesson's steps, each a link that opens its page with the samples and a preset view."""
    for n, (title, page, params, notice) in enumerate(LESSON, start=1):
        query = urlencode({**BASE, **params})
        st.markdown(f"{n}. [{title}](/{page}?{query}) — {notice}")
