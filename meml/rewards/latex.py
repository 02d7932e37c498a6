"""LaTeX in answers: the last ``\\boxed{}``, and arithmetic LaTeX rewritten as plain arithmetic.

:func:`to_plain` turns ``\\frac{3}{4}``, ``1{,}080``, ``\\$18``, ``18 \\text{ dollars}``, ``\\sqrt{324}``,
``\\binom{10}{2}``, ``3 \\times 6`` into text :mod:`meml.rewards.arith` evaluates exactly
(``((3)/(4))``, ``1,080``, ``$18``, ``18 dollars``, ``sqrt(324)``, ``binom(10,2)``, ``3 * 6``).
Macros it does not know are kept, so the caller can tell arithmetic from other math.
"""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(boxed|fbox)[ \t]*")


_MAX_BOXES = 50  # the last boxes decide


def boxed(text: str) -> list[tuple[int, str]]:
    """``(position, content)`` of every closed ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces), in order.

    One pass over the text pairs every brace, so many boxes cost no more than one (no quadratic rescans).
    A ``\\boxed 5`` without braces gives its first word.
    """
    boxes = list(_BOX.finditer(text))
    if not boxes:
        return []
    closing, stack = {}, []
    for index, char in enumerate(text):
        if char == "{":
            stack.append(index)
        elif char == "}" and stack:
            closing[stack.pop()] = index
    spans, covered = [], -1
    for box in boxes:  # outermost boxes only: a box inside a box is part of its content
        offset = box.end()
        if box.start() < covered:
            continue
        if text.startswith("{", offset):
            if offset in closing:
                spans.append((box.start(), offset + 1, closing[offset]))
                covered = closing[offset]
        elif offset > box.start() + len(box.group(1)) + 1 and offset < len(text):
            word = text[offset:offset + 200].split(None, 1)[0] if text[offset:offset + 200].strip() else ""
            spans.append((box.start(), offset, offset + len(word)))  # "\\boxed 5"
    return [(start, text[begin:end].rstrip("$.") if text[begin - 1] != "{" else text[begin:end])
            for start, begin, end in spans[-_MAX_BOXES:]]


def last_boxed(text: str) -> tuple[int, str] | None:
    """``(position, content)`` of the last closed ``\\boxed{...}`` / ``\\fbox{...}``, else None."""
    found = boxed(text)
    return found[-1] if found else None


def unbox(text: str) -> str:
    """``text`` with nested boxes opened: ``\\boxed{\\boxed{5}}`` -> ``5``."""
    for _ in range(8):
        found = last_boxed(text)
        if found is None or found[1] == text:
            return text
        text = found[1]
    return text


_TEXT_MACRO = re.compile(
    r"\\(?:text|textbf|textit|textrm|texttt|mathrm|mathbf|mathit|mbox|operatorname|emph|underline)\s*\{([^{}]*)\}"
)
_NOISE = re.compile(
    r"\\[,;:! ]|~|\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])|\\(?:displaystyle|quad|qquad)(?![A-Za-z])"
    r"|\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree"
)
_SIMPLE = (
    (re.compile(r"\{,\}"), ","),
    (re.compile(r"\\\$"), "$"),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\(?:times|cdot|ast)(?![A-Za-z])"), "*"),
    (re.compile(r"\\div(?![A-Za-z])"), "/"),
    (re.compile(r"\\(?:approx|simeq)(?![A-Za-z])"), "="),
    (re.compile(r"\\(?:lbrace|\{)"), "("),
    (re.compile(r"\\(?:rbrace|\})"), ")"),
    (re.compile(r"\\\(|\\\)|\\\[|\\\]"), " "),
)
_MAX_DEPTH = 30


class LatexTooDeep(ValueError):
    """Nesting beyond any real answer's (a bomb): the caller refuses the answer."""


def _argument(text: str, index: int) -> tuple[str, int] | None:
    """One macro argument at ``index``: a balanced ``{...}`` group or a single character."""
    while index < len(text) and text[index] == " ":
        index += 1
    if index >= len(text):
        return None
    if text[index] != "{":
        return text[index], index + 1
    depth = 0
    for end in range(index, len(text)):
        if text[end] == "{":
            depth += 1
        elif text[end] == "}":
            depth -= 1
            if depth == 0:
                return text[index + 1:end], end + 1
    return None


_STRUCTURAL = re.compile(r"\\(d?t?frac|dfrac|tfrac|cfrac|sqrt|d?t?binom)(?![A-Za-z])|\{|\^")


def _convert(text: str, depth: int) -> str:
    """Rewrite ``\\frac``, ``\\sqrt``, ``\\binom``, ``^{..}`` and braces, recursively."""
    if depth > _MAX_DEPTH:
        raise LatexTooDeep(text[:40])
    out, index = [], 0
    while True:
        match = _STRUCTURAL.search(text, index)
        if match is None:
            out.append(text[index:])
            return "".join(out)
        out.append(text[index:match.start()])
        token, index = match.group(), match.end()
        if token == "{":
            inner = _argument(text, match.start())
            if inner is None:
                out.append("(")
                continue
            out.append("(" + _convert(inner[0], depth + 1) + ")")
            index = inner[1]
        elif token == "^":
            inner = _argument(text, index)
            if inner is None:
                out.append("^")
                continue
            out.append("^(" + _convert(inner[0], depth + 1) + ")")
            index = inner[1]
        elif match.group(1) == "sqrt":
            root = None
            rest = text[index:].lstrip()
            if rest.startswith("["):
                close = rest.find("]")
                if close < 0:
                    out.append(" sqrt")
                    continue
                root = _convert(rest[1:close], depth + 1)
                index = len(text) - len(rest) + close + 1
            inner = _argument(text, index)
            if inner is None:
                out.append(" sqrt")
                continue
            body = _convert(inner[0], depth + 1)
            out.append(f" sqrt({body})" if root is None else f" root({root},{body})")
            index = inner[1]
        else:  # fractions and binomials: two arguments
            first = _argument(text, index)
            second = None if first is None else _argument(text, first[1])
            if second is None:
                out.append(" " + match.group(1))
                continue
            a, b = _convert(first[0], depth + 1), _convert(second[0], depth + 1)
            if "binom" in match.group(1):
                out.append(f" binom({a},{b})")
            else:
                mixed = re.search(r"[0-9]\s*$", "".join(out)) is not None  # 2\frac{1}{2}: a mixed number
                out.append(f"{' & ' if mixed else ''}(({a})/({b}))")
            index = second[1]


def strip_text_macros(text: str) -> str:
    """``\\text{...}`` and similar wrappers replaced by their content."""
    previous = None
    while previous != text:
        previous, text = text, _TEXT_MACRO.sub(r" \1 ", text)
    return text


def to_plain(text: str) -> str:
    """Arithmetic LaTeX as plain arithmetic text (see the module docstring).

    A digit directly before a fraction marks a mixed number with ``&`` (``2\\frac{1}{2}`` -> ``2 & ((1)/(2))``),
    which the evaluator reads as 2 + 1/2 for a proper fraction. Other macros stay as they are.

    Raises:
        LatexTooDeep: for nesting deeper than any real answer.
    """
    text = strip_text_macros(text)
    text = _NOISE.sub(" ", text)
    for pattern, replacement in _SIMPLE:
        text = pattern.sub(replacement, text)
    text = re.sub(r"\{\s*([^{}]*?)\s*\\choose\s*([^{}]*?)\s*\}", r"\\binom{\1}{\2}", text)
    text = _convert(text, 0)
    return text.replace("$", " $ ").replace("  ", " ")
