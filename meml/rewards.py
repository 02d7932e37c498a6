"""Answer extraction and accuracy rewards: one extractor per benchmark family.

The same :func:`extract_answer` serves the RL training reward (:func:`make_reward_function`) and
the lm-eval tasks, so training and evaluation can never disagree on what counts as correct.

Normalized answers:

* ``gsm8k``: a canonical number string: no commas, no currency, no trailing zeros, ``"-0"`` is
  ``"0"`` (``"1,080"`` -> ``"1080"``, ``"$18.00"`` -> ``"18"``, ``"18.50"`` -> ``"18.5"``).
  A fraction of integers (``\\frac{1}{2}``, ``3/4`` after ``####``) becomes the reduced ``"p/q"``
  (``"1/2"``; an integral one becomes the integer). Any other LaTeX answer (``\\sqrt{2}``) is
  returned as cleaned LaTeX and compared with math-verify.
* ``mathqa``: a letter ``a``-``e`` (lower case).
* ``strategyqa``: ``"yes"`` or ``"no"``.

math-verify's default signal-based timeouts fail outside the main thread (dataloader workers,
threaded reward computation), so it is always called with its timeouts disabled; inputs that
could make sympy compute without bound (huge powers, factorials, very long expressions) are
refused before they reach it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache

from meml.options import LETTERS, parse_options
from meml.records import task_of

logger = logging.getLogger(__name__)

__all__ = ["extract_answer", "accuracy_reward", "make_reward_function"]

_FLAGS = re.IGNORECASE

# ---------------------------------------------------------------------------------------------
# numbers

_MINUS = "-\u2212\u2013"  # ASCII hyphen, unicode minus, en dash (all read as a sign before a number)
_NUMBER = re.compile(
    r"(?:(?<![0-9A-Za-z_)\]}.])(?P<sign>[" + _MINUS + r"])|(?<![0-9A-Za-z_.]))"  # a sign, not a minus
    r"(?:\\?\$\s?)?"
    r"(?P<int>[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)"
    r"(?P<frac>\.[0-9]+)?"
)
_ANSWER_SEGMENT = re.compile(
    r"\banswer\b\s*(?:is|was|would\s+be|will\s+be|should\s+be|=|:)?[\s:=*$]*(?P<rest>[^\n]*)", _FLAGS
)
_DENOMINATOR = re.compile(r"\s*/\s*([0-9]+(?:\.[0-9]+)?)(?![0-9.,])")
_TOLERANCE = Fraction(1, 10**6)
_MAX_DIGITS = 4000  # beyond this a "number" is noise; keeps Decimal/Fraction work bounded


def _canonical_number(negative: bool, integer: str, fraction: str = "") -> str | None:
    """Canonical decimal string from its parts: no commas, no leading/trailing zeros, no ``-0``."""
    integer = integer.replace(",", "").replace(" ", "").lstrip("0")
    fraction = fraction.lstrip(".").rstrip("0")
    if len(integer) + len(fraction) > _MAX_DIGITS:
        return None
    body = (integer or "0") + ("." + fraction if fraction else "")
    if not integer and not fraction:
        return "0"
    return "-" + body if negative else body


def _number_of(match: re.Match) -> str | None:
    """Canonical string of a :data:`_NUMBER` match."""
    return _canonical_number(bool(match.group("sign")), match.group("int"), match.group("frac") or "")


def _canonical_fraction(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


def _fraction_string(num: str, den: str) -> str | None:
    """Reduced ``p/q`` string (or integer) of ``num / den``; None when not a valid fraction."""
    num, den = num.replace(" ", ""), den.replace(" ", "")
    for ch in _MINUS[1:]:
        num = num.replace(ch, "-")
    if len(num) + len(den) > _MAX_DIGITS:
        return None
    try:
        denominator = Fraction(Decimal(den))
        if denominator == 0:
            return None
        return _canonical_fraction(Fraction(Decimal(num)) / denominator)
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


def _first_number(text: str) -> str | None:
    """Canonical first number of ``text``; a number followed by ``/ q`` counts as the fraction."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    number = _number_of(match)
    denominator = _DENOMINATOR.match(text, match.end())
    if number is not None and denominator is not None:
        return _fraction_string(number, denominator.group(1)) or number
    return number


def _last_number(text: str) -> str | None:
    last = None
    for last in _NUMBER.finditer(text):
        pass
    return None if last is None else _number_of(last)


def _as_fraction(answer: str) -> Fraction | None:
    """Exact value of a canonical number or ``p/q`` string; None for anything else."""
    if not re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?(?:/-?[0-9]+(?:\.[0-9]+)?)?", answer) or len(answer) > _MAX_DIGITS:
        return None
    num, _, den = answer.partition("/")
    try:
        value = Fraction(Decimal(num))
        if den:
            divisor = Fraction(Decimal(den))
            if divisor == 0:
                return None
            value /= divisor
        return value
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


def _numbers_equal(a: Fraction, b: Fraction) -> bool:
    """Equal up to a tiny absolute tolerance (1e-6): values are exact, only rounding is forgiven."""
    return abs(a - b) <= _TOLERANCE


# ---------------------------------------------------------------------------------------------
# LaTeX

_BOX = re.compile(r"\\(boxed|fbox)[ \t]*")


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces), else None."""
    limit = len(text)  # an unclosed later box means no earlier one closes past its opening brace
    for box in reversed(list(_BOX.finditer(text))):
        offset = box.end()
        if text.startswith("{", offset):
            depth = 0
            for index in range(offset, limit):
                if text[index] == "{":
                    depth += 1
                elif text[index] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[offset + 1:index]
            limit = offset
        elif offset > box.start() + len(box.group(1)) + 1 and offset < len(text):
            return text[offset:].split(None, 1)[0].rstrip("$.")  # "\\boxed 5"
    return None


_TEXT_MACRO = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|textrm|operatorname)\s*\{([^{}]*)\}")
_LATEX_NOISE = re.compile(
    r"\\[,;:! ()\[\]]|\\(?:left|right|displaystyle)\b|\\?\$|\\%|%|\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|°"
)
_LATEX_FRACTION = re.compile(
    r"^(?P<sign>[" + _MINUS + r"]?)\s*\\[dt]?frac\s*"
    r"(?:\{\s*(?P<num>[0-9]+(?:\.[0-9]+)?)\s*\}|(?P<num1>[0-9]))\s*"
    r"(?:\{\s*(?P<den>[0-9]+(?:\.[0-9]+)?)\s*\}|(?P<den1>[0-9]))$"
)
_PLAIN_NUMBER = re.compile(
    r"^(?P<sign>[" + _MINUS + r"]?)\s*(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?P<frac>\.[0-9]*)?$"
)
_PLAIN_FRACTION = re.compile(r"^[" + _MINUS + r"]?\s*[0-9]+(?:\.[0-9]+)?\s*/\s*[0-9]+(?:\.[0-9]+)?$")
_UNIT_WORDS = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}(?:\s*/\s*[A-Za-z]+)*\.?")


def _clean_latex(text: str) -> str:
    """Answer body without ``$``, spacing macros, ``\\text{..}`` wrappers, percent/degree signs."""
    previous = None
    while previous != text:
        previous, text = text, _TEXT_MACRO.sub(r" \1 ", text)
    return " ".join(_LATEX_NOISE.sub(" ", text).split()).strip(" .,;:")


def _math_answer(text: str) -> str | None:
    """Normalize one answer body (a ``\\boxed`` content, the rest of a ``####`` line, ...).

    Returns a canonical number, a ``p/q`` fraction, cleaned LaTeX for other math, or None.
    """
    body = _clean_latex(text)
    inner = _last_boxed(body)
    while inner is not None and inner != body:
        body = _clean_latex(inner)
        inner = _last_boxed(body)
    if not body:
        return None
    without_units = " ".join(_UNIT_WORDS.sub(" ", body).split()).strip(" .,;:")
    for candidate in (body, without_units):
        number = _PLAIN_NUMBER.match(candidate)
        if number is not None:
            return _canonical_number(bool(number.group("sign")), number.group("int"), number.group("frac") or "")
        fraction = _LATEX_FRACTION.match(candidate)
        if fraction is not None:
            num = fraction.group("num") or fraction.group("num1")
            den = fraction.group("den") or fraction.group("den1")
            return _fraction_string(("-" if fraction.group("sign") else "") + num, den)
        if _PLAIN_FRACTION.match(candidate):
            num, _, den = candidate.partition("/")
            return _fraction_string(num, den)
    if re.search(r"[\\^{}]", body):
        return body if len(body) <= 200 else None  # other math: compared by math-verify
    return _first_number(body)


# ---------------------------------------------------------------------------------------------
# math-verify (timeouts disabled: signal.alarm only works in the main thread)

_UNSAFE_FOR_SYMPY = re.compile(r"\^\s*\{?\s*[" + _MINUS + r"]?\s*[0-9]{3,}|\^[^$]*\^|!|\*\*")


def _math_verify_equal(reference: str, prediction: str) -> bool:
    """math-verify equivalence of two LaTeX/plain answers; False on any failure."""
    if len(prediction) > 200 or len(reference) > 200:
        return False
    if _UNSAFE_FOR_SYMPY.search(prediction) or _UNSAFE_FOR_SYMPY.search(reference):
        return False
    try:
        from math_verify import parse, verify

        gold = parse(f"${reference}$", parsing_timeout=None)
        target = parse(f"${prediction}$", parsing_timeout=None)
        if not gold or not target:
            return False
        return bool(verify(gold, target, timeout_seconds=None))
    except Exception:  # noqa: BLE001 - model text must never crash the reward
        logger.debug("math-verify failed on %r vs %r", reference, prediction, exc_info=True)
        return False


# ---------------------------------------------------------------------------------------------
# GSM8K


def _extract_gsm8k(text: str) -> str | None:
    """Last ``####`` line, else last ``\\boxed{}``, else last "answer is/Answer:", else last number."""
    hashes = text.rfind("####")
    if hashes >= 0:
        line = text[hashes + 4:].lstrip().split("\n", 1)[0]
        answer = _math_answer(line) if line.strip() else None
        if answer is None:
            answer = _first_number(line)
        if answer is not None:
            return answer
    boxed = _last_boxed(text)
    if boxed is not None:
        answer = _math_answer(boxed)
        if answer is not None:
            return answer
    for match in reversed(list(_ANSWER_SEGMENT.finditer(text))):
        rest = match.group("rest")
        answer = _math_answer(rest) if "\\" in rest else None
        if answer is None:
            answer = _first_number(rest)
        if answer is not None:
            return answer
    return _last_number(text)


def _gsm8k_reference(reference: str) -> str | None:
    answer = _math_answer(reference)
    return answer if answer is not None else _extract_gsm8k(reference)


def _gsm8k_equal(reference: str, prediction: str) -> bool:
    ref_value, pred_value = _as_fraction(reference), _as_fraction(prediction)
    if ref_value is not None and pred_value is not None:
        return _numbers_equal(ref_value, pred_value)
    if reference == prediction:
        return True
    return _math_verify_equal(reference, prediction)


# ---------------------------------------------------------------------------------------------
# MathQA

_LETTER_END = r"(?![A-Za-z0-9_']|\.[A-Za-z])"  # not a word, not "e.g" / "c.p"
# a letter: "(c)", "c )", "c"; a bare "a" only when punctuation or the end of text follows
_LETTER = (
    r"(?:\(\s*(?P<p>[a-e])\s*\)"
    r"|(?P<b>[b-e])" + _LETTER_END +
    r"|(?P<a>a)(?=\s*\)|\s*$|\s*[.,;:!?*\"'\]}\n])(?!\.[A-Za-z]))"
)
_LETTER_AT = re.compile(r"[\s*:\"'=\[\{]*" + _LETTER, _FLAGS)
_KEYWORD = r"(?:answer|ans|option|choice)"
_FILLER = (
    r"(?:\s|[:=>.,*\-\"'\[]|\b(?:is|are|will|would|should|must|be|option|choice|correct|right"
    r"|final|then|hence|therefore|so|was|choose|select|pick)\b)*"
)
_KEYWORD_LETTER = re.compile(r"\b" + _KEYWORD + r"\b" + _FILLER + _LETTER, _FLAGS)
_LETTER_KEYWORD = re.compile(
    r"(?<![A-Za-z0-9_'])(?:\(\s*(?P<p>[a-e])\s*\)\s*|(?P<b>[a-e])(?:\s*\)\s*|\s+))"
    r"(?:is|was|should\s+be|must\s+be|will\s+be|would\s+be)\s+(?:(?:thus|therefore|hence|clearly)\s+)?"
    r"(?:(?:the\s+)?(?:(?:correct|right|best|closest|final)\s+)?" + _KEYWORD + r"\b|(?:correct|right)\b)",
    _FLAGS,
)
_KEYWORD_VALUE = re.compile(  # like _FILLER but keeps a sign or decimal point for the value
    r"\b" + _KEYWORD + r"\b(?:\s|[:=>*\"'\[]|\b(?:is|are|will|would|should|must|be|correct|right|final"
    r"|then|hence|therefore|so)\b)*(?P<rest>[^\n]*)",
    _FLAGS,
)
_PAREN_LETTER = re.compile(r"(?<![A-Za-z0-9_)\]])(?:\(\s*([a-e])\s*\)|\[\s*([a-e])\s*\])", _FLAGS)
_PAREN_OR_NEWLINE = re.compile(r"[()\n]")
_SPACED_LETTER = re.compile(r"(?<![A-Za-z0-9_'.])([a-e])\s*\)", _FLAGS)

_CURRENCY = r"(?:(?:rs|inr|usd|us|rupees?|dollars?)\s*\.?\s*|\\?\$\s*|[₹£€]\s*)"
_VALUE = re.compile(
    r"^\s*(?P<sign1>[" + _MINUS + r"]\s*)?" + _CURRENCY + r"?(?P<sign2>[" + _MINUS + r"]\s*)?"
    r"(?P<int>[0-9]+(?:\s*,\s*[0-9]{3}(?![0-9]))*)(?P<frac>\.[0-9]+)?"
    r"(?:\s*/\s*(?P<den>[0-9]+(?:\.[0-9]+)?))?",
    _FLAGS,
)
_UNITS = re.compile(r"[a-z]+(?:\s*[23](?![0-9]))?(?:\s*\^\s*[0-9]+)?(?:\s*/\s*[a-z]+)*|[%°$₹£€.]", _FLAGS)


_CONTINUED = re.compile(r"\s*(?:[0-9/^√π×*]|\\sqrt|\\pi)")  # "3 1 / 5", "4 π": not a plain value


def _leading_value(text: str) -> tuple[Fraction, str] | None:
    """Numeric value at the start of ``text`` (currency, spaced thousands, ``p / q``) and the rest."""
    match = _VALUE.match(text)
    if match is None:
        return None
    digits = re.sub(r"[\s,]", "", match.group("int")) + (match.group("frac") or "")
    if len(digits) > _MAX_DIGITS:
        return None
    value = Fraction(Decimal(digits))
    if match.group("den"):
        denominator = Fraction(Decimal(match.group("den")))
        if denominator == 0:
            return None
        value /= denominator
    if match.group("sign1") or match.group("sign2"):
        value = -value
    return value, text[match.end():]


@lru_cache(maxsize=4096)
def _option_values(options: str) -> tuple[tuple[str, Fraction | None, str], ...]:
    """``((letter, numeric value or None, normalized text), ...)``; empty when unparseable."""
    try:
        parsed = parse_options(options)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return ()
    values = []
    for letter in LETTERS:
        leading = _leading_value(parsed[letter])
        value = None
        if leading is not None and not _UNITS.sub("", leading[1]).strip(" ,;"):
            value = leading[0]  # a number plus units only ("rs . 400", "15 / 8 ohms", "38 %")
        values.append((letter, value, _normalized_text(parsed[letter])))
    return tuple(values)


def _letter_of_value(value: Fraction, options: str | None) -> str | None:
    """The unique option letter whose numeric value equals ``value``."""
    if not options:
        return None
    hits = [
        letter for letter, option, _ in _option_values(options) if option is not None and _numbers_equal(option, value)
    ]
    return hits[0] if len(hits) == 1 else None


def _normalized_text(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(" .")


def _letter_of_text(segment: str, options: str) -> str | None:
    """The option whose text starts ``segment`` (longest wins: ``x + 2 x + 2`` over ``x + 2``)."""
    body = _normalized_text(segment)
    hits = [
        (len(text), letter)
        for letter, _, text in _option_values(options)
        if text and body.startswith(text) and not body[len(text):len(text) + 1].isalnum()
    ]
    if not hits:
        return None
    longest = max(hits)[0]
    letters = [letter for length, letter in hits if length == longest]
    return letters[0] if len(letters) == 1 else None


def _letter_of_segment(segment: str, options: str | None) -> str | None:
    """Letter at the start of an answer segment, else the letter of the value found there."""
    if "\\" in segment:
        inner = _last_boxed(segment)
        segment = _clean_latex(inner if inner is not None else segment)
    match = _LETTER_AT.match(segment)
    if match is not None:
        return (match.group("p") or match.group("b") or match.group("a")).lower()
    if options:
        body = segment.lstrip(" \t*:=\"'$")
        letter = _letter_of_text(body, options)  # "3 1 / 5", "4 π", "5 : 6", "none of these"
        if letter is not None:
            return letter
        leading = _leading_value(body)
        if leading is not None and not _CONTINUED.match(leading[1]):
            return _letter_of_value(leading[0], options)
    return None


_CONNECTIVES = frozenset({"so", "or", "thus", "hence", "therefore", "imo"})


def _trailing_letter(text: str) -> str | None:
    """A lone letter ending the text (``... = 10 e``, ``... $ 12,500 e .``), not the tail of prose."""
    body = text.rstrip(" \t\n.\"')*")
    if not body or body[-1].lower() not in LETTERS:
        return None
    if len(body) > 1 and (body[-2].isalnum() or body[-2] in "_'.\\"):
        return None  # the end of a word, a number or a macro
    before = body[:-1].rstrip()
    previous = re.search(r"[A-Za-z]+$", before)
    closed = text[len(body):].lstrip().startswith(")")
    if previous is not None and not closed and previous.group().lower() not in _CONNECTIVES:
        return None  # "... the value of c": prose, not an answer label
    return body[-1].lower()


def _label_letters(text: str) -> list[tuple[int, str]]:
    """``(position, letter)`` of each ``x )`` label that does not close an open ``(`` on its line."""
    found, depth, previous = [], 0, 0
    for match in _SPACED_LETTER.finditer(text):
        for char in _PAREN_OR_NEWLINE.findall(text, previous, match.start()):
            depth = depth + 1 if char == "(" else 0 if char == "\n" else max(0, depth - 1)
        if depth == 0:
            found.append((match.start(), match.group(1)))
        previous = match.start()
    return found


def _extract_mathqa(text: str, options: str | None) -> str | None:
    """Letter by priority: the last ``####`` line (a letter, or with ``options`` a value; an empty
    last ``####`` line is dropped, so the letter written before it counts); the last
    "answer/ans/option/choice ... x" or "x is the (correct) answer"; ``\\boxed{}``; with ``options``
    the value after the last answer keyword; a lone label ending the text (``... = 10 e``); the last
    ``(x)``/``[x]``/``x )`` label; with ``options`` the final number matched to an option value.
    A bare ``a`` counts only when punctuation or the end of the text follows it.
    """
    hashes = text.rfind("####")
    if hashes >= 0:
        letter = _letter_of_segment(text[hashes + 4:].split("\n", 1)[0], options)
        if letter is not None:
            return letter
        if not text[hashes + 4:].strip():
            text = text[:hashes]  # an empty final marker ("... so d\n####") hides nothing: read what precedes it
    candidates = [(m.start(), m) for m in _KEYWORD_LETTER.finditer(text)]
    candidates += [(m.start(), m) for m in _LETTER_KEYWORD.finditer(text)]
    if candidates:
        match = max(candidates, key=lambda item: item[0])[1]
        groups = match.groupdict()
        return next(groups[k] for k in ("p", "b", "a") if groups.get(k)).lower()
    boxed = _last_boxed(text)
    if boxed is not None:
        letter = _letter_of_segment(_clean_latex(boxed), options)
        if letter is not None:
            return letter
    if options:
        for match in reversed(list(_KEYWORD_VALUE.finditer(text))):
            letter = _letter_of_segment(match.group("rest"), options)
            if letter is not None:
                return letter
    letter = _trailing_letter(text)
    if letter is not None:
        return letter
    fallback = [(m.start(), m.group(1) or m.group(2)) for m in _PAREN_LETTER.finditer(text)]
    fallback += _label_letters(text)
    if fallback:
        return max(fallback)[1].lower()
    if options:
        last = None
        for last in _NUMBER.finditer(text):
            pass
        if last is not None:
            leading = _leading_value(text[last.start():])
            if leading is not None:
                return _letter_of_value(leading[0], options)
    return None


def _mathqa_reference(reference: str, options: str | None) -> str | None:
    body = reference.strip().strip("()").strip().lower()
    return body if body in LETTERS else _extract_mathqa(reference, options)


# ---------------------------------------------------------------------------------------------
# StrategyQA

_BOOLEAN = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}
_BOOL_WORD = re.compile(r"\b(yes|no|true|false)\b", _FLAGS)
_BOOL_AT = re.compile(r"^[\s*:=\"'\[{(]*(?:\\text\{|\\boxed\{)?\s*(yes|no|true|false)\b", _FLAGS)
_BOOL_ANSWER = re.compile(
    r"\banswer\b[\s*:=\"'\-]*(?:(?:is|would\s+be|will\s+be|should\s+be|must\s+be|:|=)[\s*:=\"'\-]*)?"
    r"(?:(?:definitely|simply|clearly|probably|likely|a)\s+)?(?:\\boxed\{|\\text\{)?\s*(yes|no|true|false)\b",
    _FLAGS,
)


def _extract_strategyqa(text: str) -> str | None:
    """``####`` line, else last "answer is/Answer:", else ``\\boxed{}``, else a leading word, else the
    last yes/no/true/false word."""
    hashes = text.rfind("####")
    if hashes >= 0:
        match = _BOOL_AT.match(text[hashes + 4:].split("\n", 1)[0])
        if match is not None:
            return _BOOLEAN[match.group(1).lower()]
    answers = list(_BOOL_ANSWER.finditer(text))
    if answers:
        return _BOOLEAN[answers[-1].group(1).lower()]
    boxed = _last_boxed(text)
    if boxed is not None:
        match = _BOOL_AT.match(_clean_latex(boxed))
        if match is not None:
            return _BOOLEAN[match.group(1).lower()]
    leading = re.match(r"^[\s*#>\"'\-]*(yes|no|true|false)\b", text, _FLAGS)
    if leading is not None:
        return _BOOLEAN[leading.group(1).lower()]
    last = None
    for last in _BOOL_WORD.finditer(text):
        pass
    return None if last is None else _BOOLEAN[last.group(1).lower()]


def _strategyqa_reference(reference: str) -> str | None:
    body = reference.strip().strip(".").lower()
    return _BOOLEAN.get(body) or _extract_strategyqa(reference)


# ---------------------------------------------------------------------------------------------
# public API


def extract_answer(task: str, text: str, options: str | None = None) -> str | None:
    """Normalized answer of ``text`` for ``task`` (see the module docstring), or None.

    ``options`` (MathQA only) lets a value answer ("the answer is 30") map to its letter.

    Raises:
        ValueError: for an unknown task.
    """
    family = task_of(task)
    if not isinstance(text, str) or not text.strip():
        return None
    if family == "gsm8k":
        return _extract_gsm8k(text)
    if family == "mathqa":
        return _extract_mathqa(text, options or None)
    return _extract_strategyqa(text)


def _normalize_reference(family: str, reference: str, options: str | None) -> str | None:
    if family == "gsm8k":
        return _gsm8k_reference(reference)
    if family == "mathqa":
        return _mathqa_reference(reference, options)
    return _strategyqa_reference(reference)


def accuracy_reward(task: str, completion: str, reference: str, options: str | None = None) -> float:
    """1.0 when the answer extracted from ``completion`` equals ``reference``, else 0.0.

    GSM8K compares numbers exactly up to a tiny tolerance and falls back to math-verify for other
    LaTeX; MathQA compares letters (``options`` lets a value answer count for its letter);
    StrategyQA compares yes/no. Never raises on model text (only on an unknown task).
    """
    family = task_of(task)
    try:
        prediction = extract_answer(family, completion, options)
        if prediction is None:
            return 0.0
        gold = _normalize_reference(family, str(reference), options or None)
        if gold is None:
            return 0.0
        if family == "gsm8k":
            return 1.0 if _gsm8k_equal(gold, prediction) else 0.0
        return 1.0 if gold == prediction else 0.0
    except Exception:  # noqa: BLE001 - a reward must never crash training on odd model text
        logger.warning("accuracy_reward failed; scoring 0.0", exc_info=True)
        return 0.0


def same_answer(task: str, a: str | None, b: str | None) -> bool:
    """Whether two extracted answers (see :func:`extract_answer`) say the same thing (majority voting)."""
    if a is None or b is None:
        return False
    family = task_of(task)
    if family == "gsm8k":
        try:
            return _gsm8k_equal(a, b)
        except Exception:  # noqa: BLE001 - odd model text is simply a different answer
            return a == b
    return a == b


def _completion_text(completion) -> str:
    """Text of a plain or conversational completion (the last assistant message's content)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role") == "assistant"] or messages
        if not assistant:
            return ""
        content = assistant[-1].get("content", "")
        if isinstance(content, str):
            return content
        if isinstance(content, Sequence):  # multimodal parts: [{"type": "text", "text": ...}]
            return "\n".join(
                str(part.get("text") or "") if isinstance(part, dict) else str(part) for part in content
            )
        return ""
    return "" if completion is None else str(completion)


def make_reward_function(task: str) -> Callable[..., list[float]]:
    """TRL ``GRPOTrainer`` reward function scoring accuracy for ``task``.

    The returned ``f(prompts, completions, answer, options=None, **kwargs)`` takes the dataset
    columns ``answer`` and (MathQA) ``options`` as lists; an options entry ``""``/None means none.
    """
    family = task_of(task)

    def reward(prompts, completions, answer, options=None, **kwargs) -> list[float]:
        if len(answer) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(answer)} answers")
        if options is None:
            options = [None] * len(completions)
        elif len(options) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(options)} options")
        return [
            accuracy_reward(family, _completion_text(completion), reference, option or None)
            for completion, reference, option in zip(completions, answer, options)
        ]

    reward.__name__ = reward.__qualname__ = f"accuracy_{task}"
    return reward
