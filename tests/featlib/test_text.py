"""featlib._text: the one percentage format of the checks, the sweep, the command line and the
pages."""

import pytest

from featlib import analysis, teaching
from featlib._text import percent


@pytest.mark.parametrize(
    ("share", "text"),
    [(1.0, "100 %"), (0.995, "99.5 %"), (199 / 200, "99.5 %"), (0.99999, "99.9 %"),
     (0.9999, "99.9 %"), (0.8, "80 %"), (0.7, "70 %"), (0.62, "62 %"), (2 / 3, "66.7 %"),
     (0.0004, "0.1 %"), (0.0, "0 %")],
)  # fmt: skip
def test_percentages_never_round_to_all_or_nothing(share, text):
    assert percent(share) == text.replace(" ", "\N{NO-BREAK SPACE}")


def test_the_checks_and_the_sweep_share_it():
    assert analysis.checks.percent is teaching.percent is percent
