"""Checks: what is wrong with a labelled image set, and will a model be able to learn it?"""

import streamlit as st

import ui
from featlib import render
from featlib.checks import report_thumbnails
from ui import resources, state
from ui.explain import explain
from ui.state import Interval, url_widget

GALLERY_ROWS = 24
PAIRS_PER_ROW = 3
TITLES = {
    "exact_duplicates": "Exact duplicates",
    "near_duplicates": "Near duplicates",
    "outliers": "Outliers",
    "label_issues": "Likely label issues",
    "dark": "Dark",
    "overexposed": "Overexposed",
    "blurry": "Blurry",
    "low_information": "Low information",
    "grayscale": "Grayscale",
    "tiny": "Tiny",
    "odd_size": "Odd size",
    "odd_aspect": "Odd aspect ratio",
}


def threshold_ui(report):
    """A slider per issue that has a threshold, over the range of its scores, and the summary
    table. Returns the report at the chosen thresholds (nothing is recomputed)."""
    thresholds = {}
    rows = []
    with st.expander("Thresholds", expanded=True):
        cols = st.columns(3)
        adjustable = [i for i, t in report.tables.items() if t.threshold is not None]
        for n, issue in enumerate(adjustable):
            table = report.tables[issue]
            scores = table.column(table.score_column).astype(float)
            low = table.min_threshold if table.min_threshold is not None else float(scores.min())
            high = max(float(scores.max()), table.threshold)
            low = min(low, table.threshold)
            if high <= low:
                continue
            thresholds[issue] = url_widget(
                cols[n % 3].slider,
                TITLES[issue],
                key=f"{state.THRESHOLD_PREFIX}{issue}",
                default=float(table.threshold),
                valid=Interval(low, high),
                parse=float,
                min_value=float(low),
                max_value=float(high),
                step=(high - low) / 200,
                format="%.3g",
                help=table.description,
            )
    report = report.with_thresholds(**thresholds)
    images = report.image_flags()
    for issue, table in report.tables.items():
        rows.append(
            {
                "issue": TITLES[issue],
                "images": str(images[issue].sum()),
                "pairs": str(table.n_flagged) if "index_b" in table.columns else "",
                "threshold": "all" if table.threshold is None else f"{table.threshold:.3g}",
                "what it means": table.description,
            }
        )
    for issue, reason in report.skipped.items():
        if issue in TITLES:
            rows.append(
                {
                    "issue": TITLES[issue],
                    "images": "",
                    "pairs": "",
                    "threshold": "",
                    "what it means": f"not checked: {reason}",
                }
            )
    st.table(rows, hide_index=True, border="horizontal")
    return report


def separability_ui(sep) -> None:
    """The linear probe's figures: will a model be able to tell the classes apart?"""
    st.subheader("Will a model learn it?")
    cols = st.columns(4)
    cols[0].metric(
        "Probe accuracy",
        f"{sep.accuracy:.0%}",
        help="Out-of-fold accuracy of a "
        "logistic regression on the features: a linear model's best guess.",
    )
    cols[1].metric(
        "Chance", f"{sep.chance_accuracy:.0%}", help="Always answering the largest class."
    )
    silhouette = "—" if sep.silhouette is None else f"{sep.silhouette:.2f}"
    cols[2].metric(
        "Silhouette",
        silhouette,
        help="-1 to 1: how well the labels form separate groups in feature space (cosine).",
    )
    cols[3].metric("Imbalance", f"{sep.imbalance_ratio:.1f}x", help="Largest class / smallest.")
    left, right = st.columns([3, 2])
    left.plotly_chart(render.confusion_heatmap(sep.confusion, sep.classes), key="confusion")
    right.dataframe(
        [
            {
                "label": c,
                "images": sep.class_counts.get(c, 0),
                "accuracy": f"{sep.per_class_accuracy[c]:.0%}",
            }
            for c in sep.classes
        ],
        hide_index=True,
    )
    if sep.excluded_classes:
        right.caption(f"Left out (fewer than 2 images): {', '.join(sep.excluded_classes)}")


def _caption(row: dict, index_column: str, score_column: str, names, labels) -> str:
    i = row[index_column]
    return f"{names[i]} · {labels[i] or '(no label)'} · {score_column} {row[score_column]:.3g}"


def _count(table) -> str:
    return f"{table.n_flagged} pairs" if "index_b" in table.columns else str(table.n_flagged)


def galleries_ui(report, images, records) -> None:
    """For each issue with flagged images, a gallery sorted by score; pairs side by side."""
    flagged = [i for i, t in report.tables.items() if t.n_flagged]
    if not flagged:
        st.success("Nothing flagged at these thresholds.")
        return
    tabs = st.tabs([f"{TITLES[i]} ({_count(report.tables[i])})" for i in flagged])
    for tab, issue in zip(tabs, flagged, strict=True):
        table = report.tables[issue]
        rows = table.flagged_rows()[:GALLERY_ROWS]
        with tab:
            st.caption(table.description)
            score = table.score_column
            if "index_b" in table.columns:
                cols = st.columns(PAIRS_PER_ROW)
                for n, row in enumerate(rows):
                    pair = [records[row["index_a"]], records[row["index_b"]]]
                    cols[n % PAIRS_PER_ROW].image(
                        resources.thumbnails(images, pair, 128),
                        caption=[
                            _caption(row, c, score, report.names, report.labels)
                            for c in ("index_a", "index_b")
                        ],
                        width=128,
                    )
            else:
                st.image(
                    resources.thumbnails(images, [records[row["index"]] for row in rows], 128),
                    caption=[
                        _caption(r, "index", score, report.names, report.labels) for r in rows
                    ],
                    width=128,
                )
            if table.n_flagged > GALLERY_ROWS:
                st.caption(f"The {GALLERY_ROWS} worst of {table.n_flagged}; the CSV has all.")


choices = ui.sidebar()
bb = resources.backbone(choices.model)

st.title("Dataset checks")
st.caption(
    f"What is wrong with this set, and will a model learn it? Duplicates, outliers and label "
    f"issues use the pooled {choices.layer} features; image quality uses the pixels. Moving a "
    "threshold recomputes nothing."
)
explain("checks")
images, feats, x = resources.set_features(bb, choices)
report = threshold_ui(resources.check_report(bb, images, feats, choices.layer))
if report.separability is not None:
    separability_ui(report.separability)
st.subheader("Flagged images")
galleries_ui(report, images, feats.records)

st.subheader("Export")
# Written when a button is clicked (not on every slider move): the HTML report decodes pictures.
with st.container(horizontal=True):
    st.download_button(
        "Report as CSV",
        report.to_csv,
        file_name="featlib-checks.csv",
        mime="text/csv",
        key=state.EXPORT_CHECKS_CSV,
        on_click="ignore",
        help="One row per image: a score and a 0/1 flag per issue.",
    )
    st.download_button(
        "Report as HTML",
        lambda: report.to_html(report_thumbnails(report, images.images, feats.records)),
        file_name="featlib-checks.html",
        mime="text/html",
        key=state.EXPORT_CHECKS_HTML,
        on_click="ignore",
        help="A self-contained page with thumbnails of the flagged images, to share or archive.",
    )
