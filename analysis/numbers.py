"""Numbers as tables, figures and progress lines print them: configurations told apart.

Two rules, as pure functions of values (no pandas display options, no rich):

- A swept value (`lr`, `width`) is printed with the fewest significant digits, at least
  MIN_DIGITS, that keep the distinct values beside it (its column, its axis) distinct:
  0.01 and 0.1 as typed, sampled learning rates as 0.00863 and 0.0513, 7.9e-05 and
  0.00011 never both 0.0001. Alone (a progress line does not know the other values) it
  gets ALONE_DIGITS. Ints are never rounded, nor a float's integer digits (1235, not
  1.24e+03).
- A metric is printed with fixed decimals, one count for its whole column so that the
  digits line up: at least MIN_DECIMALS, enough for METRIC_DIGITS significant digits of
  its largest value, and enough that its best and runner-up differ.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

MIN_DIGITS = 3  # typed grid values (0.015, 3e-4, 0.125) print as typed
ALONE_DIGITS = 4  # a value printed without the others it must be told apart from
MAX_DIGITS = 17  # every digit of a float: the shortest text that reads back the same
MIN_DECIMALS = 4  # what the reports printed: 0.9195
METRIC_DIGITS = 4  # significant digits a metric's largest value keeps, at least
MAX_DECIMALS = 15  # beyond this two floats differ in noise only


def count(number: float, noun: str) -> str:
    """ "1 trial", "2 trials", "0.5 GPUs": a number and its noun, plural but for one."""
    text = f"{number:g}" if isinstance(number, float) else str(number)
    return f"{text} {noun}{'' if number == 1 else 's'}"


def is_number(value: Any) -> bool:
    """An int or a float (numpy's too), not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _is_float(value: Any) -> bool:
    return isinstance(value, float | np.floating)


def significant(value: float, digits: int) -> str:
    """`value` to `digits` significant digits (more where its integer part has more),
    trailing zeros dropped: 0.01, 7.9e-05, 0.00863, 1235."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    whole = math.floor(math.log10(abs(value))) + 1
    return f"{value:.{max(digits, whole)}g}"


def digits_apart(values: Iterable[Any], least: int = MIN_DIGITS) -> int:
    """The fewest significant digits, `least` at the least, at which the distinct numbers
    among `values` print distinct (anything else among them is left aside)."""
    floats = {float(v) for v in values if _is_float(v)}
    floats = {v for v in floats if math.isfinite(v)}
    # Ints print whole: a float must not print as one of them either.
    ints = {str(int(v)) for v in values if is_number(v) and not _is_float(v)}
    for digits in range(least, MAX_DIGITS + 1):
        texts = {significant(v, digits) for v in floats}
        if len(texts) == len(floats) and not texts & ints:
            return digits
    return MAX_DIGITS


def value_text(value: Any, among: Iterable[Any] | None = None) -> str:
    """A config value as every line, cell and label shows it: a float with the digits that
    tell it apart from the values `among` it (see the module docstring), ALONE_DIGITS
    without them; an int whole; a list or tuple as a list; anything else as str()."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, tuple | list):
        return str([_plain(item) for item in value])
    if not is_number(value):
        return str(value)
    if not _is_float(value):
        return str(int(value))
    if among is None:
        return significant(value, ALONE_DIGITS)
    return significant(value, digits_apart([*among, value]))


def value_texts(values: Iterable[Any]) -> list[str]:
    """Each of `values` as value_text prints it among the others."""
    values = list(values)
    digits = digits_apart(values)
    return [significant(v, digits) if _is_float(v) else value_text(v) for v in values]


def metric_decimals(values: Iterable[Any], mode: str = "max") -> int:
    """The decimals a metric column is printed with (see the module docstring); `mode`
    says which end is the best ("max" or "min")."""
    finite = sorted({float(v) for v in values if is_number(v) and math.isfinite(float(v))})
    if not finite:
        return MIN_DECIMALS
    largest = max(abs(v) for v in finite)
    magnitude = math.floor(math.log10(largest)) if largest > 0 else 0
    decimals = max(MIN_DECIMALS, METRIC_DIGITS - 1 - magnitude)
    if len(finite) > 1:
        best, runner_up = (finite[-1], finite[-2]) if mode == "max" else (finite[0], finite[1])
        while decimals < MAX_DECIMALS and f"{best:.{decimals}f}" == f"{runner_up:.{decimals}f}":
            decimals += 1
    return min(decimals, MAX_DECIMALS)


def metric_text(value: Any, decimals: int) -> str:
    """A metric to `decimals` decimals; "-" where it has no value."""
    if value is None or not is_number(value) or not math.isfinite(float(value)):
        return "-" if value is None or is_number(value) else str(value)
    return f"{float(value):.{decimals}f}"


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value.item() if hasattr(value, "item") else value
