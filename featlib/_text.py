"""Numbers as people read them, shared by the checks, the sweep, the command line and the pages."""

from __future__ import annotations

__all__ = ["percent", "short_number"]


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


def short_number(value) -> str:
    """A table cell's value as text: empty for None, a float to 4 significant digits, anything
    else as ``str`` gives it.

    Example::

        >>> short_number(None), short_number(0.123456), short_number(12), short_number("a.png")
        ('', '0.1235', '12', 'a.png')
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
