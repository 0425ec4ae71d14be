"""Reading a Keras functional graph: the graph of a model, the node where a layer is called."""

from __future__ import annotations

from featlib._tf import keras
from featlib.errors import UnknownLayerError

__all__ = ["graph_of", "node_of"]


def graph_of(model: keras.Model):
    """The functional graph of a model (a built Sequential keeps one inside)."""
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    if graph is None or not hasattr(graph, "_nodes_by_depth"):
        raise UnknownLayerError(
            f"{model.name} has no layer graph (a subclassed model); featlib needs a functional "
            f"or sequential model."
        )
    return graph


def node_of(graph, layer):
    """The node where ``layer`` is called in ``graph`` (a layer may be shared with others)."""
    for nodes in graph._nodes_by_depth.values():
        for node in nodes:
            if node.operation is layer:
                return node
    raise UnknownLayerError(f"{layer.name} is not called in {graph.name}.")
