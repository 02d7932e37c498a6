"""GSM8K: the number a completion commits to, and whether it equals the gold number.

The final answer is the last explicit answer statement: a ``####`` line, a ``\\boxed{}``, or a sentence
such as "The answer is ...", "Answer: ...", "The final answer is ...". Its clause is read by
:func:`meml.rewards.arith.parse_clause` (an equation by its result, a hedge as nothing). Without any
statement the last number of the text is the answer, unless its sentence hedges between values.

Extracted answers are canonical strings: ``"1080"``, ``"18.5"``, ``"3/4"``, ``"-3"``; other math
(``\\sqrt{2}``) is kept as cleaned LaTeX and compared by math-verify under :mod:`meml.rewards.budget`.
"""

from __future__ import annotations

import re
from fractions import Fraction

from meml.rewards import budget
from meml.rewards.arith import TooExpensive, number_value
from meml.rewards.clause import clause_end, parse_clause, read_clause
from meml.rewards.latex import boxed, strip_text_macros, unbox
from meml.rewards.text import retracted

_TOLERANCE = Fraction(1, 10**6)
_ANSWER_STATEMENT = re.compile(
    r"\b(?:final\s+)?answer(?:\s+to\s+(?:the|this)\s+(?:question|problem))?\b[\"']?\**"
    r"(?:\s*(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|comes\s+(?:out\s+)?to|equals)\b"
    r"|\s*[:=]|\s*\*\*\s*:|\s*[-\u2013\u2014]\s|\s+(?=[$\\0-9.\u2212-]))"
    r"|(?:^|\n)[ \t*#]*(?:final\s+)?(?:result|final)\**\s*:"  # "Result: 96", "Final: 18" opening a line
    r"|\b(?:oops|sorry|wait|actually|correction|no)\b[,.:!\s\u2013\u2014-]*(?:that|it|this|the\s+answer)\s+"
    r"should\s+(?:be|have\s+been)\b|\bI\s+meant\b",  # "Oops, that should be 18"
    re.IGNORECASE,
)
_HASHES = re.compile(r"####")
_MAX_STATEMENTS = 50  # the last ones decide; earlier ones matter only if all of these are empty
_LAST_NUMBER = re.compile(
    r"(?:(?<![0-9A-Za-z_)\]}.])[-\u2212])?(?<![0-9A-Za-z_])"
    r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?(?:\s*/\s*[0-9]+(?![0-9]|[.,][0-9]))?"
    r"|(?<![0-9A-Za-z_.])\.[0-9]+"
)
_SENTENCE_START = re.compile(r"(?:^|\n|[.!?;](?=\s))[^\n.!?;]*$")


def _latex_answer(content: str) -> str | None:
    """A boxed or LaTeX answer that is not plain arithmetic, cleaned for math-verify (None if empty)."""
    body = " ".join(strip_text_macros(content).replace("$", " ").split()).strip(" .,;:")
    return body or None


def _statement_answer(kind: str, content: str) -> tuple[str, str | None]:
    """``(status, answer)`` of one explicit statement: status value, hedge or empty."""
    if kind == "boxed":
        content = unbox(content)
    verdict = read_clause(content, math=kind == "boxed")
    if verdict.kind == "value":
        return "value", verdict.canonical
    if verdict.kind in ("hedge", "refused"):
        return "hedge", None
    if verdict.kind == "other":
        latex = _latex_answer(content)
        return ("value", latex) if latex else ("empty", None)
    return "empty", None


def _statements(text: str) -> list[tuple[int, str, str]]:
    """Explicit answer statements ``(position, kind, content)``, in text order."""
    found = []
    for match in list(_HASHES.finditer(text))[-_MAX_STATEMENTS:]:
        line = text[match.end():match.end() + 8000].split("\n", 1)[0]
        found.append((match.start(), "hashes", line))
    for match in list(_ANSWER_STATEMENT.finditer(text))[-_MAX_STATEMENTS:]:
        rest = text[match.end():match.end() + 8000]
        found.append((match.start(), "statement", rest[:clause_end(rest, 0, math="\\" in rest[:200])]))
    found += [(position, "boxed", content) for position, content in boxed(text)]
    return sorted(found)[-_MAX_STATEMENTS:]


_NUMBER_WORD = (r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
                r"|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
                r"|hundred|thousand|million)")
_NUMBER_WORDS = re.compile(r"\b" + _NUMBER_WORD + r"(?:(?:[\s-]+|\s+and\s+)" + _NUMBER_WORD + r")*\b", re.IGNORECASE)


def _last_number(text: str) -> str | None:
    """The last number of the text (digits, ``3/4`` with its denominator, or words such as "one hundred
    and five"; a lone "one" is a pronoun), unless its sentence hedges or a retraction follows it."""
    last = None
    for last in _LAST_NUMBER.finditer(text):
        pass
    words = None
    for words in _NUMBER_WORDS.finditer(text):
        pass
    if words is not None and (words.group().lower() in ("one", "zero")
                              or re.match(r"(?i)hundred|thousand|million", words.group())):
        words = None  # a pronoun "one"; "12 thousand" is read from its digits
    if words is not None and (last is None or words.start() > last.start()):
        last = words
    if last is None or retracted(text, last.end()):
        return None
    sentence_start = _SENTENCE_START.search(text, 0, last.start())
    start = sentence_start.start() if sentence_start else 0
    end = clause_end(text, last.end())
    try:
        verdict = parse_clause(text[start:end].lstrip(".!?;\n "))
        if verdict.kind == "hedge":
            return None
        begin = last.start()
        mixed = re.search(r"(?<![0-9.,])[0-9]+\s+$", text[max(0, begin - 12):begin])
        if mixed is not None and "/" in last.group():
            begin -= len(mixed.group())  # "2 1/2"
        return read_clause(text[begin:end]).canonical
    except TooExpensive:
        budget.count("refused")
        return None


def extract(text: str) -> str | None:
    """The answer of a GSM8K completion (see the module docstring), or None."""
    for position, kind, content in reversed(_statements(text)):
        status, answer = _statement_answer(kind, content)
        if status == "value":
            return None if retracted(text, position + len(content)) else answer
        if status == "hedge":
            return None
    return _last_number(text)


def reference(text: str) -> str | None:
    """The gold of a reference: a bare value (``"1,080"``, ``"\\frac{1}{2}"``) or a full solution's ``####`` line."""
    if "####" in text:
        return extract(text)
    status, answer = _statement_answer("boxed", text.strip())
    return answer if status == "value" else extract(text)


def as_fraction(answer: str) -> Fraction | None:
    """Exact value of a canonical number or ``p/q`` string; None for anything else."""
    if not re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?(?:/[0-9]+)?", answer):
        return None
    num, _, den = answer.partition("/")
    try:
        value = number_value(num.lstrip("-"))
        if den:
            value /= number_value(den)
    except (TooExpensive, ZeroDivisionError):
        return None
    return -value if num.startswith("-") else value


def equal(gold: str, prediction: str) -> bool:
    """Same value (up to 1e-6: values are exact, only rounding is forgiven), else math-verify for other math."""
    a, b = as_fraction(gold), as_fraction(prediction)
    if a is not None and b is not None:
        return abs(a - b) <= _TOLERANCE
    if gold == prediction:
        return True
    return budget.math_verify_equal(gold, prediction)
