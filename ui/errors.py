"""What a user can cause (a file, a choice, a parameter) reads as a message, not a crash: one
rule for the pages, which ``app.py`` runs under ``user_errors``, and for fragments, whose
errors Streamlit stops inside the fragment, short of ``app.py``."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import streamlit as st

import featlib

__all__ = ["fragment", "user_errors"]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show a ``featlib.FeatlibError`` raised inside as an error message, and go on after."""
    try:
        yield
    except featlib.FeatlibError as exc:
        st.error(str(exc))


def fragment(func: Callable) -> Callable:
    """``st.fragment``, with ``user_errors`` around each run of ``func``."""

    @functools.wraps(func)
    def run(*args, **kwargs) -> None:
        with user_errors():
            func(*args, **kwargs)

    return st.fragment(run)
