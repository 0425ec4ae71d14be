"""featlib's web app: see what a pretrained image network sees.

Run with ``streamlit run app.py`` (or ``make run``). This file only sets up the navigation;
each page is a file in ``app_pages/`` and shares the sidebar drawn by ``ui.sidebar.sidebar()``.
(Not ``pages/``: with a folder of that name Streamlit runs those files directly, without this
navigation and its error handling.)
"""

import importlib
import os

import streamlit as st

from featlib.cli.commands import APP_FEATURES_ENV
from ui.errors import user_errors

# An emoji, not a ":material/...:" icon: Streamlit fetches a material page icon from
# fonts.gstatic.com, which fails offline; an emoji is drawn by the browser itself.
st.set_page_config(page_title="featlib", page_icon="👁️", layout="wide")

# The pages need TensorFlow to run a network: ten seconds or more to import on the first run
# of a server, which would otherwise show an empty page. Later runs find it loaded and show
# nothing here. A server started on a feature file (featlib app) shows its vectors without it,
# and loads it only when a page first runs a network.
if not os.environ.get(APP_FEATURES_ENV):
    with st.spinner("Starting featlib: loading TensorFlow (once per server)…", show_time=True):
        importlib.import_module("featlib._tf")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/feature_maps.py", title="Feature maps", icon=":material/grid_view:"),
    st.Page("app_pages/projections.py", title="Projections", icon=":material/scatter_plot:"),
    st.Page("app_pages/neighbours.py", title="Neighbours", icon=":material/join_inner:"),
    st.Page("app_pages/checks.py", title="Checks", icon=":material/fact_check:"),
    st.Page("app_pages/teaching.py", title="Teaching", icon=":material/school:"),
    st.Page("app_pages/model.py", title="Model", icon=":material/account_tree:"),
]

with user_errors():
    st.navigation(PAGES).run()
