"""The checks' report as one self-contained HTML page (``CheckReport.to_html``)."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import TYPE_CHECKING

from featlib._text import short_number
from featlib.errors import FeatlibError

if TYPE_CHECKING:
    from featlib.analysis.checks.report import CheckReport, Separability

__all__ = ["report_html"]


def report_html(report: CheckReport, thumbnails: Mapping[int, bytes] | None, max_rows: int) -> str:
    """The page described by :meth:`CheckReport.to_html`."""
    images = {int(i): _data_uri(i, data) for i, data in (thumbnails or {}).items()}
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>featlib dataset checks"
        "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
        "collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 6px;"
        "text-align:left;vertical-align:top}img{max-width:96px;max-height:96px}"
        "</style></head><body>",
        f"<h1>Dataset checks: {len(report.names)} images</h1>",
    ]
    if report.facts:
        parts.append("<h2>About the set</h2><ul>")
        parts += [f"<li>{esc(fact)}</li>" for fact in report.facts]
        parts.append("</ul>")
    if report.warnings:
        parts.append("<h2>Warnings</h2><ul>")
        parts += [f"<li>{esc(warning)}</li>" for warning in report.warnings]
        parts.append("</ul>")
    parts.append(
        "<h2>Summary</h2><table><tr><th>issue</th><th>images</th><th>pairs</th>"
        "<th>threshold</th><th>meaning</th></tr>"
    )
    for row in report.summary_rows():
        cells = (row[c] for c in ("issue", "images", "pairs", "threshold", "meaning"))
        parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    if report.separability is not None:
        parts.append(_separability_html(report.separability))
    for table in report.tables.values():
        rows = table.flagged_rows()
        if not rows:
            continue
        parts.append(f"<h2>{esc(table.title)} ({table.flagged_text})</h2><table><tr>")
        image_columns = [c for c in table.columns if c.startswith("index")]
        parts += [
            f"<th>{c.replace('index', 'image').replace('_', ' ')}</th>" for c in image_columns
        ]
        parts += [f"<th>{esc(c)}</th>" for c in table.columns]
        parts.append("</tr>")
        for row in rows[:max_rows]:
            parts.append("<tr>")
            for c in image_columns:
                uri = images.get(row[c])
                cell = f"<img src='{uri}' alt='{esc(report.names[row[c]])}'>" if uri else ""
                parts.append(f"<td>{cell}</td>")
            parts += [f"<td>{esc(short_number(row[c]))}</td>" for c in table.columns]
            parts.append("</tr>")
        parts.append("</table>")
        if len(rows) > max_rows:
            parts.append(f"<p>{len(rows) - max_rows} more in the CSV export.</p>")
    parts.append("</body></html>")
    return "".join(parts)


def _separability_html(sep: Separability) -> str:
    esc = html.escape
    parts = [
        "<h2>Separability (linear probe)</h2><table>",
        f"<tr><td>accuracy</td><td>{esc(sep.accuracy_text())} ({sep.n_folds}-fold)</td></tr>",
        f"<tr><td>balanced accuracy</td><td>{sep.balanced_accuracy:.3f}</td></tr>",
        f"<tr><td>chance (largest class)</td><td>{sep.chance_accuracy:.3f}</td></tr>",
        f"<tr><td>silhouette (cosine)</td><td>{esc(short_number(sep.silhouette))}</td></tr>",
        f"<tr><td>imbalance (largest / smallest)</td><td>{sep.imbalance_ratio:.2f}</td></tr>",
    ]
    if sep.excluded_classes:
        excluded = ", ".join(sep.excluded_classes)
        parts.append(f"<tr><td>left out (under 2 images)</td><td>{esc(excluded)}</td></tr>")
    parts.append("</table><table><tr><th>true \\ predicted</th>")
    parts += [f"<th>{esc(c)}</th>" for c in sep.classes]
    parts.append("<th>images</th><th>accuracy</th></tr>")
    for c, row in zip(sep.classes, sep.confusion, strict=True):
        parts.append(f"<tr><th>{esc(c)}</th>")
        parts += [f"<td>{v}</td>" for v in row]
        parts.append(f"<td>{sep.class_counts[c]}</td><td>{sep.per_class_accuracy[c]:.3f}</td></tr>")
    parts.append("</table>")
    return "".join(parts)


def _data_uri(index, data) -> str:
    if not isinstance(data, (bytes, bytearray)):
        raise FeatlibError(f"thumbnail {index!r} must be PNG or JPEG bytes. Received: {type(data)}")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        mime = "image/png"
    elif data.startswith(b"\xff\xd8\xff"):
        mime = "image/jpeg"
    else:
        raise FeatlibError(f"thumbnail {index!r} is neither PNG nor JPEG.")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
