"""Answer clauses: what value, if any, the text after an answer marker commits to.

:func:`parse_clause` reads the text after ``####``, "The answer is" or inside a ``\\boxed{}`` and returns
a :class:`Verdict`:

- a value when the clause commits to one: ``18``, ``$1,080.00``, ``3/4.``, ``.5``, ``2 1/2``, ``eighteen``,
  ``109.2 million``, ``29 + 1 = 30`` (an equation counts by its result), ``16 - 3 - 4`` (an expression by
  its value);
- ``HEDGE`` when it offers several values, rejects one or gives no exact value (``25 or 35``, ``between 4
  and 24``, ``not 4, it's 8``, ``5, 6``, ``at least 4``, ``30-ish``, ``18 ± 2``): it commits to nothing;
- ``NONE`` when it holds no value; ``OTHER`` when it holds math :mod:`meml.rewards.arith` cannot evaluate
  (``\\sqrt{2}``), which the caller hands to math-verify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from meml.rewards import budget
from meml.rewards.arith import (
    NotArithmetic,
    Token,
    TooExpensive,
    canonical_decimal,
    canonical_fraction,
    evaluate,
    is_number_word,
    number_value,
    number_words,
    tokenize,
)
from meml.rewards.latex import LatexTooDeep, to_plain

_MAX_TOKENS = 400


@dataclass(frozen=True)
class Verdict:
    """What a clause commits to: ``kind`` is value, hedge, none or other; ``value`` set for value."""

    kind: str
    value: Fraction | None = None
    decimal: str | None = None  # the literal's canonical decimal text when the value is one plain literal

    @property
    def canonical(self) -> str | None:
        """Canonical answer string: ``"1080"``, ``"18.5"``, ``"3/4"``; None unless a value."""
        if self.kind != "value":
            return None
        if self.decimal is not None:
            return self.decimal
        return canonical_fraction(self.value)


HEDGE = Verdict("hedge")
NONE = Verdict("none")
OTHER = Verdict("other")


_CLAUSE_END = re.compile(r"\n|[.](?![0-9])|[?;]|!(?=\s|$)")
_CLAUSE_END_MATH = re.compile(r"\n|[.](?![0-9])|[?;]")
_NEGATION_OR_BOUND = re.compile(
    r"\b(?:not|n['\u2019]t|neither|nor|at\s+(?:least|most)"
    r"|(?:more|less|fewer|greater|higher|lower)\s+than|up\s+to|almost|nearly)\b",
    re.IGNORECASE,
)
_JUST_BEFORE = re.compile(r"\b(?:over|under|above|below|a\s+little\s+(?:more|less)(?:\s+than)?)\s*\$?\s*$",
                          re.IGNORECASE)
_PAIRED = re.compile(r"\beither\b(?=.*\bor\b)|\bbetween\b(?=.*\band\b)", re.IGNORECASE)
_IMPRECISE = re.compile(  # "30-ish", "18 ± 2", "give or take", "or so": no exact value
    r"[0-9]\s*-?\s*ish\b|\u00b1|\+/-|\+-(?=\s*[0-9])|\bplus\s+or\s+minus\b|\bgive\s+or\s+take\b|\bor\s+so\b",
    re.IGNORECASE,
)
_UNIT_RATE = re.compile(  # "km/h", "m/s", "$/hr": a unit, not a division
    r"\b(km|m|cm|mm|mi|miles?|ft|feet|in|inch(?:es)?|kg|g|lbs?|oz|l|ml|h|hrs?|hours?|mins?|minutes?|s|secs?"
    r"|seconds?|days?|weeks?|months?|years?|dollars?|cents?|people|persons?|units?|items?|pages?|words?)"
    r"\s*/\s*([A-Za-z]+)\b",
    re.IGNORECASE,
)
_ALTERNATIVE = {"or", "to", "and", "nor", "versus", "vs"}
_SOFTENERS = {"maybe", "perhaps", "possibly", "even", "about", "around", "approximately", "roughly", "probably",
              "likely", "just", "exactly", "the", "a"}
_SEGMENT_KINDS = {"num", "op", "eq", "lp", "rp", "fn", "pct", "bang", "cur", "amp", "macro", "range"}
_MAX_WORDS_BEFORE_VALUE = 12
_MAX_UNIT_WORDS = 3


_SCALE = re.compile(r"(?<![0-9.,])([0-9]{1,3}(?:,[0-9]{3})*(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?)\s*"
                    r"(thousand|million|billion|trillion)\b", re.IGNORECASE)
_SCALES = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_POSSIBLY = re.compile(
    r"\b(?:could|might|may|can)\s+(?:also\s+|even\s+|well\s+)?be\s+(?:about\s+|around\s+|roughly\s+)?\$?\s*"
    r"([0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+(?:\.[0-9]+)?)",
    re.IGNORECASE,
)


_CONCLUSION = re.compile(
    r"(?:,\s*|\s)(?:so|thus|therefore|hence|giving|which\s+gives|that\s+gives|=>|\u21d2)\s+"
    r"(?:it(?:['\u2019]s|\s+is)\s+|the\s+answer\s+is\s+|we\s+get\s+|that['\u2019]?s\s+)?(?=[$\u2212-]?\s*[0-9.])",
    re.IGNORECASE,
)


def expand_scales(text: str) -> str:
    """``109.2 million`` -> ``109200000``, ``12 thousand`` -> ``12000`` (exactly, as digits)."""
    def expand(match: re.Match) -> str:
        digits = match.group(1).replace(",", "")
        if len(digits) > 30:
            return match.group()
        integer, _, fraction = digits.partition(".")
        shift = _SCALES[match.group(2).lower()]
        fraction = fraction.ljust(shift, "0")
        whole = (integer + fraction[:shift]).lstrip("0") or "0"
        rest = fraction[shift:].rstrip("0")
        return whole + ("." + rest if rest else "")

    return _SCALE.sub(expand, text) if _SCALE.search(text) else text


def clause_end(text: str, start: int = 0, math: bool = False) -> int:
    """End of the sentence that starts at ``start`` (a newline, ``.`` not before a digit, ``?``, ``;``, ``!``)."""
    match = (_CLAUSE_END_MATH if math else _CLAUSE_END).search(text, start)
    return len(text) if match is None else match.start()


def _segment_end(tokens: list[Token], start: int) -> int:
    """End of the arithmetic segment from ``start``: numbers, operators, ``=``, and unit words inside an equation."""
    index, depth = start, 0
    while index < len(tokens):
        token = tokens[index]
        depth += {"lp": 1, "rp": -1}.get(token.kind, 0)
        if token.kind == "comma" and depth > 0:  # binom(10,2)
            index += 1
            continue
        after_value = index > start and tokens[index - 1].kind in ("num", "rp", "pct")
        if token.kind in ("lp", "num", "fn") and after_value:
            return _trim(tokens, start, index)  # "18 (that is 3 * 6)": a remark after the value
        if token.kind in _SEGMENT_KINDS:
            if token.kind == "range":
                return _trim(tokens, start, index)
            index += 1
            continue
        if token.kind == "word" and index > start and tokens[index - 1].kind in ("num", "rp", "pct", "word"):
            run = index
            while run < len(tokens) and tokens[run].kind == "word" and run - index < _MAX_UNIT_WORDS:
                run += 1
            if run < len(tokens) and tokens[run].kind in ("op", "eq") and not is_number_word(tokens[index]):
                index = run  # "3 apples + 2 apples = 5 apples": unit words inside an equation
                continue
        return _trim(tokens, start, index)
    return _trim(tokens, start, index)


def _trim(tokens: list[Token], start: int, end: int) -> int:
    """``end`` moved back over dangling operators and brackets (``18 (``, ``3 + 4 =`` keeps ``3 + 4``)."""
    while end > start + 1 and tokens[end - 1].kind in ("lp", "op", "amp", "cur", "fn"):
        end -= 1
    depth = 0
    for index in range(start, end):
        depth += {"lp": 1, "rp": -1}.get(tokens[index].kind, 0)
        if depth < 0:
            return index  # "(... 18)": the clause sat inside a bracket that closes here
    return end


def _value_of(tokens: list[Token], math: bool = False) -> Fraction | None:
    """Value of an equation side, ignoring currency signs, units and a trailing percent sign.

    In ``math`` (LaTeX) a one-letter word is a variable (``2x``), not a unit: the side is not arithmetic.
    """
    if math and any(t.kind == "word" and len(t.text) == 1 for t in tokens):
        raise NotArithmetic("a variable")
    kept = [t for t in tokens if t.kind not in ("cur", "word", "pct")]  # "43 3/4 %": the sign is a unit here
    while kept and kept[-1].kind in ("op", "eq"):
        kept.pop()
    if not kept:
        return None
    if any(t.kind in ("macro", "range") for t in kept):
        raise NotArithmetic("other math")
    return evaluate(kept)


def _single_literal(tokens: list[Token]) -> str | None:
    """The literal's text when ``tokens`` are one number (with sign, currency, units or percent)."""
    kept = [t for t in tokens if t.kind not in ("cur", "word", "pct")]
    if len(kept) == 1 and kept[0].kind == "num":
        return kept[0].text
    if len(kept) == 2 and kept[0].kind == "op" and kept[0].text == "-" and kept[1].kind == "num":
        return "-" + kept[1].text
    return None


def _alternative_after(tokens: list[Token], index: int) -> Fraction | None:
    """A second value offered after the committed one (``or 35``, ``to 24``, ``– 35``, ``/ 6``), else None."""
    while index < len(tokens) and tokens[index].kind in ("comma", "lp", "cur"):
        index += 1
    if index >= len(tokens):
        return None
    token = tokens[index]
    if not (token.kind == "word" and token.text.lower() in _ALTERNATIVE or token.kind == "range"):
        return None
    index += 1
    while index < len(tokens) and (tokens[index].kind in ("cur", "lp")
                                   or tokens[index].kind == "word" and tokens[index].text.lower() in _SOFTENERS):
        index += 1
    if index < len(tokens) and tokens[index].kind == "num":
        end = index + 1
        if end + 1 < len(tokens) and tokens[end].kind == "op" and tokens[end].text == "/" \
                and tokens[end + 1].kind == "num":
            end += 2  # "or 1/2"
        try:
            return evaluate(tokens[index:end])
        except (NotArithmetic, TooExpensive):
            return None
    words = number_words(tokens, index) if index < len(tokens) else None
    return None if words is None else words[0]


def _is_list(tokens: list[Token]) -> bool:
    """``5, 6`` / ``5 and 6``: the clause is a list of several numbers (units allowed)."""
    numbers = [t for t in tokens if t.kind == "num"]
    separators = [t for t in tokens if t.kind == "comma" or t.kind == "word" and t.text.lower() == "and"]
    separator_ids = {id(t) for t in separators}
    others = [t for t in tokens if t.kind not in ("num", "comma", "cur", "pct") and id(t) not in separator_ids]
    values = {number_value(t.text) for t in numbers}
    return len(numbers) >= 2 and bool(separators) and not others and len(values) > 1


def parse_clause(text: str, math: bool = False) -> Verdict:
    """What the answer clause ``text`` commits to (see the module docstring).

    ``math=True`` reads ``!`` as a factorial (inside ``\\boxed{}``); in prose it ends a sentence.

    Raises:
        TooExpensive: for a bomb (the caller scores it 0 and counts it).
    """
    text = expand_scales(text[:clause_end(text, 0, math)])
    conclusion = None
    for conclusion in _CONCLUSION.finditer(text):
        pass
    if conclusion is not None:  # "10 women do 10/400 = 1/40 a day, so 40 days": the conclusion is the value
        text = text[conclusion.end():]
    if _IMPRECISE.search(text):
        return HEDGE
    text = _UNIT_RATE.sub(r"\1per\2", text)
    tokens = tokenize(text)
    if not math:  # "2(15) = 30": a bracket glued to a number multiplies; "18 (that is ...)" is a remark
        for index in range(len(tokens) - 1, 0, -1):
            left, right = tokens[index - 1], tokens[index]
            if left.kind in ("num", "rp") and right.kind == "lp" and right.start == left.start + len(left.text):
                tokens.insert(index, Token("op", "*", right.start))
    if math:  # 2\sqrt{2}, 3(4): juxtaposition multiplies
        for index in range(len(tokens) - 1, 0, -1):
            if tokens[index - 1].kind in ("num", "rp") and tokens[index].kind in ("lp", "fn", "macro"):
                tokens.insert(index, Token("op", "*", tokens[index].start))
    if len(tokens) > _MAX_TOKENS:
        raise TooExpensive("a clause of hundreds of tokens")
    if _is_list(tokens):
        return HEDGE
    start, words = None, 0
    for index, token in enumerate(tokens):
        if token.kind in ("num", "lp", "fn") or token.kind == "op" and token.text in "-+" \
                and index + 1 < len(tokens) and tokens[index + 1].kind in ("num", "lp", "cur"):
            start = index
            break
        if token.kind == "macro":
            return OTHER
        if is_number_word(token):
            start = index
            break
        if token.kind == "word":
            words += 1
            if words > _MAX_WORDS_BEFORE_VALUE:
                return NONE
    if start is None:
        return OTHER if math and tokens else NONE  # \boxed{x + y}: math without a number
    if _NEGATION_OR_BOUND.search(text, 0, tokens[start].start) or _PAIRED.search(text) \
            or _JUST_BEFORE.search(text, max(0, tokens[start].start - 24), tokens[start].start):
        return HEDGE
    words_value = number_words(tokens, start) if is_number_word(tokens[start]) else None
    if words_value is not None:
        value, end, decimal = words_value[0], words_value[1], None
    else:
        end = _segment_end(tokens, start)
        segment = tokens[start:end]
        sides, side = [], []
        for token in segment:
            if token.kind == "eq":
                sides.append(side)
                side = []
            else:
                side.append(token)
        sides.append(side)
        sides = [s for s in sides if any(t.kind == "num" for t in s)]
        if not sides:
            return OTHER if math else NONE
        try:
            value = _value_of(sides[-1], math)
        except NotArithmetic:
            return OTHER if math or any(t.kind == "macro" for t in segment) else NONE
        if value is None:
            return NONE
        literal = _single_literal(sides[-1])
        decimal = canonical_decimal(literal) if literal is not None and "/" not in literal else None
    second = _alternative_after(tokens, end)
    if second is None and end < len(tokens):
        possible = _POSSIBLY.search(text, tokens[end].start)  # "30, but it could also be 40"
        if possible is not None:
            try:
                second = number_value(possible.group(1))
            except TooExpensive:
                second = None
    if second is not None and second != value:
        return HEDGE
    if math and any(t.kind not in ("pct", "cur", "comma") and not (t.kind == "word" and len(t.text) > 1)
                    for t in tokens[end:]):
        return OTHER  # \\boxed{18 + x}: more math after the number
    return Verdict("value", value, decimal)


def read_clause(text: str, math: bool = False) -> Verdict:
    """:func:`parse_clause` of answer text that may hold LaTeX (rewritten as arithmetic first); a bomb
    is refused, counted as over budget, and read as a hedge (it commits to nothing)."""
    try:
        if math or re.search(r"[\\{}^]", text):
            return parse_clause(to_plain(text), math=True)
        return parse_clause(text)
    except (TooExpensive, LatexTooDeep, RecursionError):
        budget.count("refused")
        return Verdict("refused")
