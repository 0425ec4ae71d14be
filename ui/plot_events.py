"""Events of a Plotly scatter that ``st.plotly_chart`` does not give a fragment: a small custom
component (Streamlit components v2, no iframe) that finds the chart by its ``key`` in the page
and listens to its Plotly events. Mounted in two modes:

- ``hover_picture``: after the mouse has rested on a point for a moment, the component sends
  that point's row (``customdata``); its fragment answers with the row's thumbnail, shown in a
  card beside the cursor (a Plotly hover label can hold text only).
- ``selected_rows``: the rows picked by a click, box or lasso. ``st.plotly_chart``'s own
  selection reruns the whole page, plot of up to 100,000 points and all; this one reruns the
  fragment that shows the selected pictures, and nothing else.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import streamlit as st
from PIL import Image

__all__ = ["chart", "hover_picture", "selected_rows"]

HOVER_DELAY_MS = 120  # rest on a point this long before its picture is asked for
# A chart without st.plotly_chart's selection loses the box and lasso from Plotly's mode bar
# (Streamlit removes them): name the buttons outright, which Plotly takes over any removal.
MODE_BAR_2D = [
    ["select2d", "lasso2d", "pan2d", "zoom2d"],
    ["zoomIn2d", "zoomOut2d", "autoScale2d", "resetScale2d"],
    ["toImage"],
]

_JS = """
const controllers = new WeakMap();
const QUIET_AFTER_SELECTION_MS = 1500;
const CLICK_SETTLES_MS = 30;

function findPlot(plotKey) {
  const container = document.querySelector(`.st-key-${plotKey}`);
  return container ? container.querySelector('.js-plotly-plot') : null;
}

function rowOf(point) {
  if (!point || point.customdata === undefined) return null;
  return Number(Array.isArray(point.customdata) ? point.customdata[0] : point.customdata);
}

function hoverListeners(c, parentElement) {
  const card = document.createElement('div');
  card.className = 'featlib-hover-card';
  card.dataset.testid = 'featlib-hover-card';
  const img = card.appendChild(document.createElement('img'));
  const caption = card.appendChild(document.createElement('div'));
  caption.className = 'featlib-hover-caption';
  parentElement.appendChild(card);
  const at = { row: null, x: 0, y: 0, timer: null, quietUntil: 0 };

  const place = () => {
    const margin = 16, w = card.offsetWidth, h = card.offsetHeight;
    // Left of the cursor, where Plotly's own label (to its right) is not; right near the edge.
    const left = at.x - margin - w < 0 ? at.x + margin : at.x - margin - w;
    const top = Math.min(Math.max(at.y - h / 2, 4), window.innerHeight - h - 4);
    card.style.left = `${Math.max(left, 4)}px`;
    card.style.top = `${top}px`;
  };
  c.show = () => {
    const shown = c.args.data.card;
    if (at.row === null || !shown || shown.row !== at.row) {
      card.style.display = 'none';
      return;
    }
    img.src = shown.src;
    img.alt = shown.caption;
    caption.textContent = shown.caption;
    card.dataset.row = String(shown.row);
    card.style.display = 'block';
    place();
  };
  const onHover = (event) => {
    // Just after a box or lasso the page is busy with the selection; the mouse rests where the
    // drag ended, on a point the user did not ask about.
    if (performance.now() < at.quietUntil) return;
    const row = rowOf(event.points && event.points[0]);
    if (row === null) return;
    if (event.event && event.event.clientX !== undefined) {
      at.x = event.event.clientX;
      at.y = event.event.clientY;
    } else {
      // A 3-D plot's hover has no mouse event: the plot's top right corner.
      const box = c.plot.getBoundingClientRect();
      at.x = box.right;
      at.y = box.top + 120;
    }
    at.row = row;
    clearTimeout(at.timer);
    c.show();
    at.timer = setTimeout(() => {
      if (at.row === row) c.args.setStateValue('row', row);
    }, c.args.data.delay);
  };
  const onUnhover = () => {
    clearTimeout(at.timer);
    at.row = null;
    c.show();
  };
  const onSelect = () => {
    at.quietUntil = performance.now() + QUIET_AFTER_SELECTION_MS;
    onUnhover();
  };
  c.stop = () => clearTimeout(at.timer);
  return [
    ['plotly_hover', onHover], ['plotly_unhover', onUnhover],
    ['plotly_selecting', onSelect], ['plotly_selected', onSelect],
  ];
}

function selectListeners(c) {
  // Sent at once: the browser then spends most of a second redrawing a large plot's selection,
  // while the server makes the gallery. A click in 2-D gives plotly_click and, as it selects the
  // point, plotly_selected (with every point a shift-click has gathered): the selection wins.
  let selectedAt = -Infinity, timer = null;
  const send = (rows) => c.args.setStateValue(
    'selection', { rows, figure: c.args.data.figure });
  const rowsOf = (event) => (event && event.points ? event.points.map(rowOf) : [])
    .filter((row) => row !== null);
  const onSelected = (event) => {
    clearTimeout(timer);
    selectedAt = performance.now();
    send(rowsOf(event));
  };
  const onClick = (event) => {
    if (performance.now() - selectedAt < CLICK_SETTLES_MS) return;
    const rows = rowsOf(event).slice(0, 1);
    timer = setTimeout(() => send(rows), CLICK_SETTLES_MS);
  };
  c.show = () => {};
  c.stop = () => clearTimeout(timer);
  return [
    ['plotly_selected', onSelected], ['plotly_deselect', onSelected], ['plotly_click', onClick],
  ];
}

function makeController(parentElement, args) {
  const c = { args, plot: null };
  c.listeners = args.data.mode === 'hover'
    ? hoverListeners(c, parentElement) : selectListeners(c);
  c.attach = () => {
    const plot = findPlot(c.args.data.plot);
    if (!plot || plot === c.plot || typeof plot.on !== 'function') return;
    c.plot = plot;
    for (const [event, handler] of c.listeners) plot.on(event, handler);
  };
  c.detach = () => {
    clearInterval(c.poll);
    c.stop();
    if (c.plot && typeof c.plot.removeListener === 'function') {
      for (const [event, handler] of c.listeners) c.plot.removeListener(event, handler);
    }
  };
  // The chart is drawn (and redrawn by a rerun) on its own schedule: look for it until found,
  // and again whenever Streamlit replaces it.
  c.poll = setInterval(c.attach, 300);
  return c;
}

export default function (args) {
  let c = controllers.get(args.parentElement);
  if (!c) {
    c = makeController(args.parentElement, args);
    controllers.set(args.parentElement, c);
  }
  c.args = args;
  c.attach();
  c.show();
  return () => {
    c.detach();
    controllers.delete(args.parentElement);
  };
}
"""

_CSS = """
.featlib-hover-card {
  display: none; position: fixed; z-index: 1000; pointer-events: none;
  background: white; border: 1px solid #d0d3da; border-radius: 6px; padding: 4px;
  box-shadow: 0 2px 8px rgba(0, 0, 0, 0.18); max-width: 180px;
  font: 12px sans-serif; color: #31333f;
}
.featlib-hover-card img {
  display: block; width: 160px; height: 160px; object-fit: contain; background: #f0f2f6;
}
.featlib-hover-caption { margin-top: 2px; overflow-wrap: anywhere; }
"""

_COMPONENT = st.components.v2.component("featlib.plot_events", css=_CSS, js=_JS)


def chart(figure, key: str, dims: int) -> None:
    """``st.plotly_chart`` of a scatter whose points ``selected_rows`` reports: with the box and
    lasso in a 2-D plot's mode bar, and without Streamlit's own selection (which would rerun the
    page)."""
    config = {"modeBarButtons": MODE_BAR_2D} if dims == 2 else {}
    st.plotly_chart(figure, key=key, config=config)


def _sent(key: str, name: str):
    """What the browser last sent as the state ``name`` of the component with key ``key``,
    read before the component is mounted (so that the answer goes out with it); None before
    it sent any."""
    value = st.session_state.get(key)
    return value.get(name) if value is not None else None


def _data_url(picture: Image.Image) -> str:
    """A picture as a data URL: PNG up to 64 pixels a side (JPEG would blur a tiny picture's
    every pixel), JPEG above (a tenth of PNG's size for a photograph)."""
    kind = "png" if max(picture.size) <= 64 else "jpeg"
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format=kind, quality=85)
    return f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def hover_picture(
    key: str, plot_key: str, n_rows: int, card: Callable[[int], tuple[Image.Image, str]]
) -> None:
    """Show the picture of the point under the mouse on the ``st.plotly_chart`` with key
    ``plot_key``, whose points carry their row in ``customdata``. Call it in a fragment.

    Args:
        key: the component's widget key.
        plot_key: the chart's ``key``.
        n_rows: the number of rows; a row outside ``range(n_rows)`` gets no picture.
        card: a row's (thumbnail, caption).
    """
    row = _sent(key, "row")
    shown = None
    if isinstance(row, int) and 0 <= row < n_rows:
        picture, caption = card(row)
        shown = {"row": row, "src": _data_url(picture), "caption": caption}
    _COMPONENT(
        key=key,
        data={"plot": plot_key, "mode": "hover", "delay": HOVER_DELAY_MS, "card": shown},
        height="content",
        on_row_change=lambda: None,
    )


def selected_rows(key: str, plot_key: str, n_rows: int, figure: str) -> list[int]:
    """The rows of the points picked by a click, box or lasso on the ``chart`` with key
    ``plot_key``, sorted; a new pick reruns only the fragment this is called in.

    Args:
        key: the component's widget key.
        plot_key: the chart's ``key``.
        n_rows: the number of rows; the browser's rows outside ``range(n_rows)`` are dropped.
        figure: names the figure drawn; a pick made on another figure counts as none.
    """
    picked = _sent(key, "selection")
    rows = []
    if isinstance(picked, dict) and picked.get("figure") == figure:
        rows = [r for r in picked.get("rows", []) if isinstance(r, int) and 0 <= r < n_rows]
    _COMPONENT(
        key=key,
        data={"plot": plot_key, "mode": "select", "figure": figure},
        height="content",
        on_selection_change=lambda: None,
    )
    return sorted(set(rows))
