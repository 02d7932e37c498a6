"""MathQA's multiple-choice options: parsing both upstream forms and the canonical string."""

from __future__ import annotations

import ast
import re

LETTERS = ("a", "b", "c", "d", "e")

def parse_options(options: str) -> dict[str, str]:
    """Parse a MathQA options string into ``{letter: value}``.

    Accepts the usual form ``"a ) 38 , b ) 27.675 , c ) 30 , d ) data inadequate , e ) none"``
    and the Python-list repr form ``"['a ) 12', 'b ) 15', ...]"`` found in some upstream rows.
    Option values may themselves contain commas (``rs . 1 , 200``): a comma only ends a value when
    the next letter marker ``x )`` follows, in order a, b, c, d, e.

    Raises:
        ValueError: when the string does not hold the five options a to e in order.
    """
    text = options.strip()
    if text.startswith("["):
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError) as err:
            raise ValueError(f"options list repr does not parse: {options!r}") from err
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"options list repr is not a list of strings: {options!r}")
        text = " , ".join(items)
    found: dict[str, str] = {}
    position = 0
    previous = None
    for letter in LETTERS:
        pattern = re.compile(r"(?:^|,)\s*" + letter + r"\s*\)\s*")
        match = pattern.search(text, position)
        if match is None:
            raise ValueError(f"option {letter!r} missing in options string {options!r}")
        if previous is not None:
            found[previous] = text[position:match.start()].strip()
        previous, position = letter, match.end()
    found["e"] = text[position:].strip()
    missing = [k for k, v in found.items() if v == ""]
    if missing:
        raise ValueError(f"empty value for option(s) {missing} in options string {options!r}")
    return found


def format_options(options: dict[str, str]) -> str:
    """Canonical MathQA options string ``a ) x , b ) y , c ) z , d ) w , e ) v``."""
    return " , ".join(f"{letter} ) {options[letter]}" for letter in LETTERS)
