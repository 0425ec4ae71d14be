"""Grad-CAM: where in the image a layer's evidence for a decision lies.

For a classifier (a model whose output is a vector of class scores) the target is a class; for a
feature extractor it is the strongest channel of the model's last layer. The heat map weights the
chosen layer's channels by the mean gradient of the target's score and keeps the positive part
(Selvaraju et al., 2017). The score is the class's score before the softmax, as in the paper
(``score="logit"``: a model whose last layer ends in a softmax is read before that activation, as
tf-keras-vis' ``ReplaceToLinear`` does); ``score="probability"`` differentiates the softmax output
instead, whose gradient vanishes for a class the model is sure of. Layers inside a nested model
(``"vgg16/block5_conv3"``, a transfer-learning model) work too: the model is split at that layer so
that the score's gradient flows through it.

Example::

    >>> from featlib._tf import keras
    >>> inputs = keras.Input((32, 32, 3))
    >>> x = keras.layers.Conv2D(4, 3, strides=4, name="conv2")(inputs)
    >>> x = keras.layers.GlobalAveragePooling2D()(x)
    >>> keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save("classifier.keras")
    >>> bb = featlib.load_model_file("classifier.keras")
    >>> image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    >>> cam = gradcam(bb, image, "conv2")
    >>> cam.heatmap.shape
    (8, 8)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featlib._tf import keras, tf
from featlib.errors import FeatlibError
from featlib.models._graph import graph_of, node_of
from featlib.models.backbones import Backbone
from featlib.models.layers import find_layer, layer_outputs, list_layers

__all__ = ["SCORES", "GradCam", "gradcam"]

SCORES = ("logit", "probability")


@dataclass(frozen=True)
class GradCam:
    """A Grad-CAM heat map and what it explains.

    Attributes:
        heatmap: float32 array of shape (h, w), the layer's spatial size, in [0, 1].
        target: the class index (classifiers) or channel of the last layer (feature extractors).
        target_kind: ``"class"`` or ``"channel"``.
        score: the target's score for the image: its logit or probability (classifiers, see
            ``score_kind``), its mean activation (feature extractors).
        score_kind: ``"logit"``, ``"probability"`` or ``"activation"``; a classifier without a
            softmax at its end gives its output as it is, called ``"logit"``.
    """

    heatmap: np.ndarray
    target: int
    target_kind: str
    score: float
    score_kind: str


def _is_classifier(model) -> bool:
    return len(model.outputs) == 1 and len(model.outputs[0].shape) == 2


def _before_softmax(model):
    """The model with its output read before a final softmax: the pre-activation of a layer
    with ``activation="softmax"`` (a copy of it, linear, sharing nothing with the original), or
    the input of a ``Softmax`` / ``Activation("softmax")`` layer. Any other model as it is."""
    last = model.outputs[0]._keras_history.operation
    activation = getattr(last, "activation", None)
    softmax = keras.activations.softmax
    if isinstance(last, keras.layers.Softmax) or (
        isinstance(last, keras.layers.Activation) and activation is softmax
    ):
        return keras.Model(model.inputs, node_of(graph_of(model), last).input_tensors[0])
    if activation is not softmax:
        return model
    linear = type(last).from_config({**last.get_config(), "activation": "linear"})
    node = node_of(graph_of(model), last)
    out = linear(node.input_tensors[0])
    linear.set_weights(last.get_weights())
    return keras.Model(model.inputs, out)


def _split(model, name: str):
    """A callable image batch -> (activation of ``name``, model output), on one gradient path."""
    head, _, rest = name.partition("/")
    if not rest:
        both = keras.Model(model.inputs, [*layer_outputs(model, [name]), model.outputs[0]])
        return lambda x: both(x, training=False)
    graph = graph_of(model)
    node = node_of(graph, graph.get_layer(head))
    inner = node.operation
    front = keras.Model(model.inputs, node.input_tensors[0])
    middle = _split(inner, rest)
    tail = keras.Model(node.output_tensors[0], model.outputs[0])

    def run(x):
        activation, inner_out = middle(front(x, training=False))
        return activation, tail(inner_out, training=False)

    return run


def gradcam(
    backbone: Backbone,
    image: np.ndarray,
    layer: str,
    target: int | None = None,
    *,
    score: str = "logit",
):
    """Grad-CAM of one image at one spatial layer.

    Args:
        backbone: a ``featlib.Backbone`` (a registry backbone or a user's model).
        image: uint8 array of shape (height, width, 3) at ``backbone.input_size``.
        layer: a spatial layer (see ``featlib.list_layers``), nested names included.
        target: class index (classifiers) or last-layer channel (feature extractors); None for
            the highest-scoring one.
        score: for classifiers, ``"logit"`` (the class score before the softmax, the paper's
            definition) or ``"probability"`` (after it). Ignored for feature extractors.

    Returns:
        :class:`GradCam`.

    Raises:
        FeatlibError: the layer is not spatial, the image has the wrong shape, or the target is
            out of range.
    """
    info = find_layer(backbone, layer)
    if not info.spatial:
        raise FeatlibError(
            f"Grad-CAM needs a layer with a spatial output; {layer} gives {info.output_shape}. "
            "Pick a convolution or pooling layer (featlib.list_layers shows the shapes)."
        )
    expected = (*backbone.input_size, 3)
    image = np.asarray(image)
    if image.shape != expected or image.dtype != np.uint8:
        raise FeatlibError(
            f"image must be uint8 of shape {expected}. Received: {image.dtype} {image.shape}"
        )
    if score not in SCORES:
        raise FeatlibError(f"score must be one of {SCORES}. Received: score={score!r}")
    model = backbone.model
    classifier = _is_classifier(model)
    if classifier and score == "logit":
        model = _before_softmax(model)
    if not classifier:  # explain the strongest channel of the last spatial layer
        last = [i for i in list_layers(backbone) if i.spatial][-1].name
        pooled = keras.layers.GlobalAveragePooling2D()(layer_outputs(model, [last])[0])
        model = keras.Model(model.inputs, pooled)
    run = _split(model, layer)
    x = tf.convert_to_tensor(backbone.preprocess(image[None].astype(np.float32)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        activation, scores = run(x)
        scores = tf.cast(scores, tf.float32)
        n_targets = int(scores.shape[-1])
        chosen = int(tf.argmax(scores[0])) if target is None else int(target)
        if not 0 <= chosen < n_targets:
            raise FeatlibError(f"target must be in 0..{n_targets - 1}. Received: {target}")
        value = scores[0, chosen]
    grads = tape.gradient(value, activation)
    if grads is None:
        raise FeatlibError(f"the target's score does not depend on {layer}: no Grad-CAM there.")
    weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2))
    cam = tf.nn.relu(tf.einsum("bhwc,bc->bhw", tf.cast(activation, tf.float32), weights))[0]
    cam = cam.numpy()
    peak = float(cam.max())
    heatmap = (cam / peak if peak > 0 else cam).astype(np.float32)
    return GradCam(
        heatmap=heatmap,
        target=chosen,
        target_kind="class" if classifier else "channel",
        score=float(value),
        score_kind=score if classifier else "activation",
    )
