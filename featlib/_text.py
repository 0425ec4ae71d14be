"""Numbers as people read them, shared by the checks, the sweep, the command line and the pages."""

from __future__ import annotations

__all__ = ["percent"]


def percent(share: float) -> str:
    r"""A share in [0, 1] as a percentage to a tenth that reads 0 % or 100 % only when it is
    exactly that: 199 of 200 right is "99.5 %", 99,999 of 100,000 "99.9 %", 1 in 2,500 "0.1 %".
    A no-break space keeps the sign with its number.

    Example::

        >>> percent(0.995), percent(0.99999), percent(1.0), percent(0.0004), percent(0.62)
        ('99.5\xa0%', '99.9\xa0%', '100\xa0%', '0.1\xa0%', '62\xa0%')
    """
    text = f"{share * 100:.1f}"
    if text == "100.0" and share < 1:
        text = "99.9"
    elif text == "0.0" and share > 0:
        text = "0.1"
    return f"{text.removesuffix('.0')}\N{NO-BREAK SPACE}%"
