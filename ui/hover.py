"""The picture under the mouse on a Plotly scatter: a small custom component (Streamlit
components v2, no iframe) that listens to the plot's hover events and shows the hovered point's
thumbnail beside the cursor.

``st.plotly_chart`` has no hover event, and a Plotly hover label can hold text only. The
component finds the chart by its ``key`` in the page, sends the hovered row (``customdata``)
after the mouse has rested on it for a moment, and its fragment answers with that row's
thumbnail: only the fragment reruns, never the page with its plot of up to 100,000 points.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import streamlit as st
from PIL import Image

__all__ = ["hover_picture"]

HOVER_DELAY_MS = 120  # rest on a point this long before its picture is asked for

_JS = """
const controllers = new WeakMap();
const QUIET_AFTER_SELECTION_MS = 1500;

function findPlot(plotKey) {
  const container = document.querySelector(`.st-key-${plotKey}`);
  return container ? container.querySelector('.js-plotly-plot') : null;
}

function makeController(parentElement) {
  const card = parentElement.querySelector('.featlib-hover-card');
  const img = card.querySelector('img');
  const caption = card.querySelector('.featlib-hover-caption');
  const c = {
    card, img, caption, plot: null, row: null, x: 0, y: 0, timer: null, args: null, quietUntil: 0,
  };

  const place = () => {
    const margin = 16, w = card.offsetWidth, h = card.offsetHeight;
    // Left of the cursor, where Plotly's own label (to its right) is not; right near the edge.
    const left = c.x - margin - w < 0 ? c.x + margin : c.x - margin - w;
    const top = Math.min(Math.max(c.y - h / 2, 4), window.innerHeight - h - 4);
    card.style.left = `${Math.max(left, 4)}px`;
    card.style.top = `${top}px`;
  };
  c.show = () => {
    const shown = c.args.data.card;
    if (c.row === null || !shown || shown.row !== c.row) {
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
  c.onHover = (event) => {
    // Just after a box or lasso the page is busy with the selection; the mouse rests where the
    // drag ended, on a point the user did not ask about.
    if (performance.now() < c.quietUntil) return;
    const point = event.points && event.points[0];
    if (!point || point.customdata === undefined) return;
    const row = Number(Array.isArray(point.customdata) ? point.customdata[0] : point.customdata);
    if (event.event && event.event.clientX !== undefined) {
      c.x = event.event.clientX;
      c.y = event.event.clientY;
    } else {
      // A 3-D plot's hover has no mouse event: the plot's top right corner.
      const box = c.plot.getBoundingClientRect();
      c.x = box.right;
      c.y = box.top + 120;
    }
    c.row = row;
    clearTimeout(c.timer);
    c.show();
    c.timer = setTimeout(() => {
      if (c.row === row) c.args.setStateValue('row', row);
    }, c.args.data.delay);
  };
  c.onUnhover = () => {
    clearTimeout(c.timer);
    c.row = null;
    c.show();
  };
  c.onSelect = () => {
    c.quietUntil = performance.now() + QUIET_AFTER_SELECTION_MS;
    c.onUnhover();
  };
  c.listeners = [
    ['plotly_hover', c.onHover], ['plotly_unhover', c.onUnhover],
    ['plotly_selecting', c.onSelect], ['plotly_selected', c.onSelect],
  ];
  c.attach = () => {
    const plot = findPlot(c.args.data.plot);
    if (!plot || plot === c.plot || typeof plot.on !== 'function') return;
    c.plot = plot;
    for (const [event, handler] of c.listeners) plot.on(event, handler);
  };
  c.detach = () => {
    clearInterval(c.poll);
    clearTimeout(c.timer);
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
    c = makeController(args.parentElement);
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

_HTML = """
<div class="featlib-hover-card" data-testid="featlib-hover-card">
  <img alt="">
  <div class="featlib-hover-caption"></div>
</div>
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

_COMPONENT = st.components.v2.component("featlib.hover_picture", html=_HTML, css=_CSS, js=_JS)


def _hovered_row(key: str) -> int | None:
    """The row whose picture the browser asked for last, before the component is mounted
    (so that its answer goes out with it); None before any hover."""
    value = st.session_state.get(key)
    row = value.get("row") if value is not None else None
    return row if isinstance(row, int) else None


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
    row = _hovered_row(key)
    shown = None
    if row is not None and 0 <= row < n_rows:
        picture, caption = card(row)
        shown = {"row": row, "src": _data_url(picture), "caption": caption}
    _COMPONENT(
        key=key,
        data={"plot": plot_key, "delay": HOVER_DELAY_MS, "card": shown},
        height="content",
        on_row_change=lambda: None,
    )
