"""Label issues by confident learning (featlib.analysis.checks.label_issues) through check_dataset:
labels flipped on the bundled digits (scikit-learn's load_digits, the "digits" sample, its 8x8
pixels as features) must be found, a clean set must flag few.

Floors: measured over seeds 0-3 on these 500 digits (2026-12-03), with margin: 10 % flipped,
precision 0.94-0.98 and recall 0.84-0.92; 20 % flipped, precision 0.95-0.99 and recall
0.79-0.92 (the hand rule before found 0.38-0.50 there); none flipped, 6-7 of 500 flagged.
"""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from featlib.analysis.checks.dataset import check_dataset
from featlib.analysis.checks.label_issues import find_label_issues, reason

N = 500


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.data[:N].astype(np.float32), [str(v) for v in data.target[:N]]


def _flip(labels, rate, seed):
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), round(rate * len(labels)), replace=False)
    out = list(labels)
    for i in flipped:
        out[i] = str(rng.choice([c for c in "0123456789" if c != labels[i]]))
    return out, set(flipped.tolist())


@pytest.mark.parametrize(
    ("rate", "seed", "min_precision", "min_recall"),
    [(0.1, 0, 0.85, 0.75), (0.2, 1, 0.85, 0.7), (0.2, 2, 0.85, 0.7)],
)
def test_flipped_labels_are_found(digits, rate, seed, min_precision, min_recall):
    features, labels = digits
    noisy, flipped = _flip(labels, rate, seed)
    report = check_dataset([str(i) for i in range(N)], noisy, features, random_state=seed)
    rows = report.flagged("label_issues")
    found = {row["index"] for row in rows}
    assert len(found & flipped) / len(found) >= min_precision
    assert len(found & flipped) / len(flipped) >= min_recall
    for row in rows:
        if row["index"] in flipped:
            # the suggestion is the true label for most; every reason names both labels
            assert f"'{row['suggested_label']}'" in row["reason"]
            assert f"its label says '{noisy[row['index']]}'" in row["reason"]
    right = sum(row["suggested_label"] == labels[row["index"]] for row in rows)
    assert right >= 0.8 * len(found & flipped)


def test_a_clean_set_gets_few_flags(digits):
    features, labels = digits
    report = check_dataset([str(i) for i in range(N)], labels, features)
    assert report.table("label_issues").n_flagged <= 0.03 * N


def test_rows_are_ranked_by_self_confidence_and_cleanlab_picks_are_flagged(digits):
    features, labels = digits
    noisy, _ = _flip(labels, 0.2, 3)
    table = check_dataset([str(i) for i in range(N)], noisy, features).table("label_issues")
    prob = table.column("label_prob").astype(float)
    assert (np.diff(prob) >= 0).all()
    picked = table.column("confident_learning").astype(bool)
    more = table.column("other_more_likely").astype(bool)
    assert picked.sum() > 0.1 * N
    assert (table.flags[picked & more]).all()
    # the threshold is live: at a lower one the same scores flag fewer images
    assert table.with_threshold(0.05).n_flagged < table.n_flagged


def test_find_label_issues_threshold_covers_its_picks():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    proba = np.full((90, 3), 0.05)
    proba[np.arange(90), y] = 0.9
    wrong = [3, 40, 70]
    for i in wrong:
        proba[i] = [0.05, 0.05, 0.05]
        proba[i, (y[i] + 1) % 3] = 0.9
    proba += rng.uniform(0, 0.01, proba.shape)
    proba /= proba.sum(axis=1, keepdims=True)
    found = find_label_issues(proba, y)
    assert sorted(found.ranked.tolist()) == wrong
    assert found.confident.sum() == 3
    assert (found.self_confidence[found.ranked] < found.threshold).all()
    assert (found.self_confidence[~found.confident] > found.threshold).all()
    assert found.suggested[wrong].tolist() == [(y[i] + 1) % 3 for i in wrong]


def test_a_clean_probability_table_has_no_picks_and_no_threshold():
    y = np.repeat([0, 1], 20)
    proba = np.eye(2)[y] * 0.9 + 0.05
    found = find_label_issues(proba, y)
    assert found.threshold is None and not found.confident.any() and found.ranked.size == 0


def test_reason_says_both_labels():
    assert reason("coffee", "cat", 0.04, 0.93) == (
        "the probe gives 'cat' 0.93, its label says 'coffee' (0.04)"
    )
