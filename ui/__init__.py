"""The Streamlit side of featlib: the only code, besides the pages, that imports streamlit.

- ``ui.state``: session-state keys, defined once, and URL-backed widgets;
- ``ui.sidebar``: the sidebar every page shares, ``sidebar()`` returning a ``Choices``;
- ``ui.data``: the image set (bundled samples, or this session's uploads);
- ``ui.resources``: what pages compute, cached (backbones, extractors, features, projections).

This package imports none of them: ``from ui import state`` stays cheap (no TensorFlow).
"""
