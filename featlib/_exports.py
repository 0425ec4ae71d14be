"""Lazy re-exports for a package's ``__init__``: a name is imported from its module on first use,
so importing a package stays cheap and TensorFlow is imported only by the parts that need it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence

__all__ = ["lazy_exports", "lazy_modules"]


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


def lazy_modules(namespace: dict, modules: Sequence[str]) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for a package that re-exports what each of ``modules``
    lists in its ``__all__``; they are imported in order until one has the name, so list the
    cheap ones (no TensorFlow) first. A name that is one of ``modules`` imports just that one:
    ``from package import module`` asks for it as an attribute first."""
    package = namespace["__name__"]

    def __getattr__(name: str):
        if f"{package}.{name}" in modules:  # a submodule: ``from package import module``
            return importlib.import_module(f"{package}.{name}")
        for module_name in modules:
            module = importlib.import_module(module_name)
            if name in getattr(module, "__all__", ()):
                value = getattr(module, name)
                namespace[name] = value
                return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(namespace)

    return __getattr__, __dir__
