"""What a model is made of: one ``LayerInfo`` per layer, nested models flattened.

``list_layers()`` is the discoverer for every function that takes a layer name. Layers of a
nested model (a transfer-learning classifier with a VGG16 inside) are named
``"<inner model>/<layer>"`` so they can be picked like any other.

Example::

    >>> bb = featlib.load_backbone("vgg16", weights="random")
    >>> info = {i.name: i for i in featlib.list_layers(bb)}
    >>> info["block1_conv2"].receptive_field, info["block1_conv2"].stride
    (5, 1)
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from dataclasses import dataclass

from featlib._tf import keras
from featlib.errors import UnknownLayerError
from featlib.models._graph import graph_of, node_of

__all__ = [
    "LayerInfo",
    "block_outputs",
    "default_layer",
    "find_layer",
    "layer_outputs",
    "list_layers",
]


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a model.

    Attributes:
        name: the layer's name; ``"inner/layer"`` inside a nested model.
        type: the Keras class name, e.g. ``"Conv2D"``.
        output_shape: the output shape without the batch axis, e.g. ``(56, 56, 256)``.
        params: number of parameters (trainable and not).
        block: the block or stage the layer belongs to (``"block3"``, ``"conv4"``, ``"mixed5"``),
            from Keras' naming; ``None`` where the name says nothing.
        stride: total stride from the input to this layer's output (spatial layers only).
        receptive_field: side, in input pixels, of the region one output position sees
            (spatial layers only).
    """

    name: str
    type: str
    output_shape: tuple
    params: int
    block: str | None
    stride: int | None
    receptive_field: int | None

    @property
    def spatial(self) -> bool:
        """Whether the output is a (height, width, channels) map."""
        return len(self.output_shape) == 3

    @property
    def channels(self) -> int:
        """Size of the last axis."""
        return int(self.output_shape[-1])


_BLOCK = re.compile(
    r"(?P<b>block_?\d+|stage_?\d+|mixed_?\d+|conv\d+(?=_block)|cell_\d+|reduction_\d+)"
)


def _block_of(name: str) -> str | None:
    match = _BLOCK.search(name.lower())
    return match.group("b") if match else None


def _pair(value) -> int:
    if value is None:
        return 1
    if isinstance(value, (tuple, list)):
        return int(max(value))
    return int(value)


def _geometry(op, rf: int, jump: int) -> tuple[int, int]:
    """Receptive field and total stride after ``op``, given them before it."""
    kernel = getattr(op, "kernel_size", None) or getattr(op, "pool_size", None)
    if kernel is None:
        return rf, jump
    dilation = _pair(getattr(op, "dilation_rate", 1))
    k = (_pair(kernel) - 1) * dilation + 1
    return rf + (k - 1) * jump, jump * _pair(getattr(op, "strides", 1))


def _walk(model: keras.Model, prefix: str, rf0: int, jump0: int, out: list[LayerInfo]):
    graph = graph_of(model)
    state: dict[int, tuple[int, int]] = {}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            op = node.operation
            parents = [state[id(p)] for p in node.parent_nodes if id(p) in state]
            rf = max((p[0] for p in parents), default=rf0)
            jump = max((p[1] for p in parents), default=jump0)
            if isinstance(op, keras.layers.InputLayer):
                state[id(node)] = (rf, jump)
                continue
            if isinstance(op, keras.Model):
                inner = len(out)
                _walk(op, f"{prefix}{op.name}/", rf, jump, out)
                last = out[-1] if len(out) > inner else None
                state[id(node)] = (
                    (last.receptive_field or rf, last.stride or jump) if last else (rf, jump)
                )
                continue
            rf, jump = _geometry(op, rf, jump)
            state[id(node)] = (rf, jump)
            shape = tuple(node.outputs[0].shape[1:]) if node.outputs else ()
            spatial = len(shape) == 3
            out.append(
                LayerInfo(
                    name=prefix + op.name,
                    type=type(op).__name__,
                    output_shape=shape,
                    params=sum(int(math.prod(w.shape)) for w in getattr(op, "weights", [])),
                    block=_block_of(op.name),
                    stride=jump if spatial else None,
                    receptive_field=rf if spatial else None,
                )
            )


def list_layers(model) -> list[LayerInfo]:
    """List a model's layers in graph order, nested models flattened.

    Args:
        model: a ``keras.Model`` or a ``featlib.Backbone``.

    Returns:
        list of ``LayerInfo``, input layers left out.

    Example::

        >>> [i.name for i in list_layers(bb)][:2]
        ['block1_conv1', 'block1_conv2']
    """
    model = getattr(model, "model", model)
    out: list[LayerInfo] = []
    _walk(model, "", 1, 1, out)
    return out


def find_layer(model, name: str, layers: list[LayerInfo] | None = None) -> LayerInfo:
    """Return the ``LayerInfo`` called ``name``; raise ``UnknownLayerError`` with suggestions.

    Args:
        model: a ``keras.Model`` or ``featlib.Backbone``.
        name: a layer name as ``list_layers`` gives it.
        layers: the model's ``list_layers`` result, when the caller has it already.
    """
    layers = layers if layers is not None else list_layers(model)
    for info in layers:
        if info.name == name:
            return info
    names = [i.name for i in layers]
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.4)
    hint = f" Closest: {', '.join(close)}." if close else ""
    model_name = getattr(getattr(model, "model", model), "name", "the model")
    raise UnknownLayerError(
        f"{model_name} has no layer {name!r}.{hint} featlib.list_layers(model) lists all "
        f"{len(names)}."
    )


def default_layer(layers: list[LayerInfo], blocks: list[LayerInfo]) -> str:
    """The layer to look at first: the last block output but one, else the last layer.

    The last block but one groups images by what they show better than the last block does
    for most backbones (and clearly so for VGG16's offline weights, tuned for edges).

    Args:
        layers: ``list_layers(model)``.
        blocks: ``block_outputs(model)``.

    Returns:
        a layer name.

    Example::

        >>> default_layer(list_layers(bb), block_outputs(bb))
        'block4_pool'
    """
    return blocks[-2].name if len(blocks) > 1 else layers[-1].name


def block_outputs(model) -> list[LayerInfo]:
    """The last spatial layer of each block, in order: the stages of "through the network".

    Args:
        model: a ``keras.Model`` or ``featlib.Backbone``.

    Returns:
        list of ``LayerInfo``; for a model whose names carry no block, every pooling or strided
        layer's output instead, so the list still goes from fine to coarse.
    """
    layers = [i for i in list_layers(model) if i.spatial]
    by_block: dict[str, LayerInfo] = {}
    for info in layers:
        if info.block is not None:
            by_block.pop(info.block, None)
            by_block[info.block] = info
    if len(by_block) >= 2:
        return sorted(by_block.values(), key=layers.index)
    picked = [a for a, b in itertools.pairwise(layers) if b.stride != a.stride]
    return picked + layers[-1:]


def layer_outputs(model: keras.Model, names: list[str]) -> list:
    """Symbolic outputs, in ``model``'s own graph, of the layers called ``names``.

    A name ``"inner/layer"`` reaches into a nested model: the inner model's layers are called
    on the tensor that feeds the inner model in the outer graph, so one forward pass of the
    outer model yields them.

    Args:
        model: a functional or sequential ``keras.Model``.
        names: layer names as ``list_layers`` gives them (already checked by the caller).

    Returns:
        list of KerasTensors, one per name.
    """
    graph = graph_of(model)
    out = []
    for name in names:
        head, _, rest = name.partition("/")
        node = node_of(graph, graph.get_layer(head))
        if rest:
            inner_model = node.operation
            inner = keras.Model(graph_of(inner_model).inputs, layer_outputs(inner_model, [rest]))
            out.append(inner(node.input_tensors[0]))
        else:
            out.append(node.output_tensors[0])
    return out
