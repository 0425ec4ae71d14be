"""Checks: what is wrong with a labelled image set, and will a model be able to learn it?"""

import streamlit as st

from featlib import render
from featlib.analysis.checks import percent
from featlib.analysis.checks.dataset import report_thumbnails
from ui import data, resources, state
from ui.explain import explain
from ui.sidebar import sidebar
from ui.state import Interval, url_widget

GALLERY_ROWS = 24
PAIRS_PER_ROW = 3
SUMMARY_COLUMNS = ("issue", "images", "pairs", "threshold", "meaning")


def threshold_ui(report):
    """A slider per issue that has a threshold and scores to choose between, and the summary
    table. Returns the report at the chosen thresholds (nothing is recomputed)."""
    thresholds = {}
    with st.expander("Thresholds", expanded=True):
        st.caption(
            "Each default is set from this set's own scores: what most images share is not "
            "flagged. Moving a slider recomputes nothing."
        )
        cols = st.columns(3)
        adjustable = [(i, t, t.score_range()) for i, t in report.tables.items()]
        adjustable = [(i, t, r) for i, t, r in adjustable if r is not None]
        for n, (issue, table, (low, high)) in enumerate(adjustable):
            thresholds[issue] = url_widget(
                cols[n % 3].slider,
                table.title,
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
    rows = [{c: row[c] for c in SUMMARY_COLUMNS} for row in report.summary_rows()]
    st.table(rows, hide_index=True, border="horizontal")
    return report


def facts_ui(facts) -> None:
    """What the whole set has in common, said once instead of flagged on every image."""
    if facts:
        st.info(
            f"**About the set:** {'; '.join(facts)}. What the set shares is said here once, not "
            "flagged image by image; move a threshold to list the images.",
            icon=":material/info:",
        )


def warnings_ui(warnings) -> None:
    """What would trouble a model trained on the set: rare classes, a shortcut in the image
    properties, duplicates across splits."""
    for warning in warnings:
        st.warning(f"{warning[0].upper()}{warning[1:]}.", icon=":material/warning:")


def separability_ui(sep) -> None:
    """The linear probe's figures: will a model be able to tell the classes apart?"""
    st.subheader("Will a model learn it?")
    cols = st.columns(4)
    cols[0].metric(
        "Probe accuracy",
        percent(sep.accuracy),
        help="Out-of-fold accuracy of a logistic regression on the features: a linear "
        "model's best guess.",
    )
    cols[1].metric(
        "Chance", percent(sep.chance_accuracy), help="Always answering the largest class."
    )
    silhouette = "—" if sep.silhouette is None else f"{sep.silhouette:.2f}"
    cols[2].metric(
        "Silhouette",
        silhouette,
        help="-1 to 1: how well the labels form separate groups in feature space (cosine).",
    )
    cols[3].metric("Imbalance", f"{sep.imbalance_ratio:.1f}x", help="Largest class / smallest.")
    st.caption(
        f"The probe put {sep.n_correct} of {sep.n_images} images in their labelled class "
        f"({sep.n_folds}-fold cross-validation)."
    )
    left, right = st.columns([3, 2])
    left.plotly_chart(render.confusion_heatmap(sep.confusion, sep.classes), key="confusion")
    right.dataframe(
        [
            {
                "label": c,
                "images": sep.class_counts.get(c, 0),
                "accuracy": percent(sep.per_class_accuracy[c]),
            }
            for c in sep.classes
        ],
        hide_index=True,
    )
    if sep.excluded_classes:
        right.caption(f"Left out (fewer than 2 images): {', '.join(sep.excluded_classes)}")


def _caption(row: dict, index_column: str, score_column: str, names, labels) -> str:
    i = row[index_column]
    label = labels[i] or "(no label)"
    text = f"{data.breakable(names[i])} · {label} · {score_column} {row[score_column]:.4g}"
    if row.get("reason"):
        text += f" · {row['reason']}"
    if row.get("evidence") and index_column == "index_b":  # a pair's evidence, said once
        text += f" · {row['evidence']}"
    return text


def galleries_ui(report, images, records) -> None:
    """The flagged images of one issue at a time, worst first; pairs side by side. The chosen
    issue is kept while thresholds move."""
    flagged = [i for i, t in report.tables.items() if t.n_flagged]
    if not flagged:
        st.success("Nothing flagged at these thresholds.")
        return
    issue = url_widget(
        st.radio,
        "Issue",
        key=state.GALLERY,
        default=flagged[0],
        options=flagged,
        format_func=lambda i: f"{report.tables[i].title} ({report.tables[i].flagged_text})",
        horizontal=True,
        label_visibility="collapsed",
    )
    table = report.tables[issue]
    rows = table.flagged_rows()[:GALLERY_ROWS]
    st.caption(table.description)
    score = table.score_column
    if table.pairwise:
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
            caption=[_caption(r, "index", score, report.names, report.labels) for r in rows],
            width=128,
        )
    if table.n_flagged > GALLERY_ROWS:
        st.caption(f"The {GALLERY_ROWS} worst of {table.n_flagged}; the CSV has all.")
    if not images.pictures:
        st.caption(data.NO_PICTURES)


choices = sidebar(vectors=True)

st.title("Dataset checks")
st.caption(
    f"What is wrong with this set, and will a model learn it? Duplicates, outliers and label "
    f"issues use the pooled {choices.layer} features; image quality uses the pixels (not for "
    "a feature file: its pictures are not decoded here; featlib check FOLDER does that)."
)
explain("checks")
v = resources.set_features(choices)
images, feats = v.data, v.feats
report = resources.check_report(v)
facts_ui(report.facts)
report = threshold_ui(report)
warnings_ui(report.warnings)
if report.separability is not None:
    separability_ui(report.separability)
else:
    st.caption(f"No class separability: {report.skipped['separability']}.")
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
