"""Lazy re-exports for a package's ``__init__``: a name is imported from its module on first use,
so importing a package stays cheap and TensorFlow is imported only by the parts that need it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence

__all__ = ["lazy_exports"]


def lazy_exports(
    namespace: dict, table: Mapping[str, Sequence[str]]
) -> tuple[list[str], Callable, Callable]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for a package that re-exports ``table``
    (module name -> the names it exports); ``namespace`` is the package's ``globals()``."""
    where = {name: module for module, names in table.items() for name in names}
    package = namespace["__name__"]

    def __getattr__(name: str):
        if name in where:
            value = getattr(importlib.import_module(where[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(list(namespace) + list(where))

    return sorted(where), __getattr__, __dir__
