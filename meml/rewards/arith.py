"""Numbers and answer clauses: what value, if any, a stretch of text commits to.

:func:`parse_clause` reads the text after an answer marker (``####``, "The answer is", a ``\\boxed{}``)
and returns a :class:`Verdict`:

- a value when the clause commits to one: ``18``, ``$1,080.00``, ``3/4.``, ``.5``, ``2 1/2``, ``eighteen``,
  ``29 + 1 = 30`` (an equation counts by its result), ``16 - 3 - 4`` (an expression by its value);
- ``HEDGE`` when it offers several values or rejects one (``25 or 35``, ``between 4 and 24``,
  ``not 4, it's 8``, ``5, 6``): such a clause commits to nothing and scores 0;
- ``NONE`` when it holds no value; ``OTHER`` when it holds math this module cannot evaluate (``\\sqrt{2}``).

Evaluation is exact (fractions) and bounded: numbers over :data:`MAX_DIGITS` digits, exponents or
factorials whose results would exceed that, and deeper nesting raise :class:`TooExpensive`, which the
caller scores 0 and counts as over budget. No call does more than a few thousand digit operations.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_DIGITS = 4000
"""Largest number of digits any value may have (a literal or an intermediate result)."""
_MAX_TOKENS = 400
_MAX_EXPONENT = 10_000
_MAX_FACTORIAL = 1000
_MAX_BINOMIAL_N = 10_000


class TooExpensive(ValueError):
    """The clause asks for more arithmetic than any real answer needs (a bomb)."""


class NotArithmetic(ValueError):
    """The expression holds something other than numbers and the four operations (and friends)."""


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


def canonical_fraction(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


def canonical_decimal(text: str) -> str | None:
    """``"1,080.50"`` -> ``"1080.5"``, ``"-0"`` -> ``"0"``, ``".5"`` -> ``"0.5"``; None when too long."""
    negative = text.startswith("-")
    body = text.lstrip("-").replace(",", "")
    integer, _, fraction = body.partition(".")
    integer, fraction = integer.lstrip("0"), fraction.rstrip("0")
    if len(integer) + len(fraction) > MAX_DIGITS:
        return None
    if not integer and not fraction:
        return "0"
    out = (integer or "0") + ("." + fraction if fraction else "")
    return "-" + out if negative else out


def number_value(text: str) -> Fraction:
    """Exact value of a plain literal (``"1,080.5"``, ``".5"``).

    Raises:
        TooExpensive: for a literal over :data:`MAX_DIGITS` digits.
    """
    digits = text.replace(",", "")
    if len(digits) > MAX_DIGITS:
        raise TooExpensive(f"a {len(digits)}-digit number")
    integer, _, fraction = digits.partition(".")
    value = Fraction(int(integer or "0"))
    if fraction:
        value += Fraction(int(fraction), 10 ** len(fraction))
    return value


# ---------------------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"(?P<num>(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)"
    r"|(?P<macro>\\[A-Za-z]+)"
    r"|(?P<fn>sqrt|root|binom)(?=\s*\()"
    r"|(?P<word>[A-Za-z]+(?:['\u2019][A-Za-z]+)*)"
    r"|(?P<op>[-+*/^\u00d7\u00f7\u00b7\u2212\u22c5])"
    r"|(?P<range>[\u2013\u2014])"
    r"|(?P<eq>[=\u2248])"
    r"|(?P<lp>[(\[])|(?P<rp>[)\]])"
    r"|(?P<pct>%)|(?P<bang>!)|(?P<cur>[$\u20b9\u00a3\u20ac])|(?P<amp>&)|(?P<comma>,)"
    r"|(?P<space>\s+)|(?P<other>.)",
    re.DOTALL,
)
_OP_ALIASES = {"\u00d7": "*", "\u00b7": "*", "\u22c5": "*", "\u00f7": "/", "\u2212": "-"}
_WORD_OPS = {"x": "*", "times": "*", "plus": "+", "minus": "-"}


@dataclass
class Token:
    kind: str
    text: str
    start: int


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text`` (whitespace dropped); ``x``/``times``/``plus``/``minus`` between numbers are operators."""
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "space":
            continue
        value = match.group()
        if kind == "op":
            value = _OP_ALIASES.get(value, value)
        tokens.append(Token(kind, value, match.start()))
        if len(tokens) > _MAX_TOKENS:
            break
    for i in range(1, len(tokens) - 1):
        word = tokens[i]
        if word.kind == "word" and word.text.lower() in _WORD_OPS and tokens[i - 1].kind in ("num", "rp") \
                and tokens[i + 1].kind in ("num", "lp"):
            tokens[i] = Token("op", _WORD_OPS[word.text.lower()], word.start)
    for i in range(len(tokens) - 4, -1, -1):  # "2 1/2": a mixed number
        a, b, slash, c = tokens[i:i + 4]
        if a.kind == b.kind == c.kind == "num" and slash.kind == "op" and slash.text == "/" and "." not in a.text:
            tokens.insert(i + 1, Token("amp", "&", b.start))
    return tokens


# ---------------------------------------------------------------------------------------------- evaluation


def _digits(value: Fraction) -> int:
    return max(len(str(abs(value.numerator))), len(str(value.denominator)))


def _check(value: Fraction) -> Fraction:
    if abs(value.numerator).bit_length() > MAX_DIGITS * 3.33 or value.denominator.bit_length() > MAX_DIGITS * 3.33:
        raise TooExpensive("an intermediate result over the digit limit")
    return value


def _exact_root(value: Fraction, degree: int) -> Fraction:
    if degree > 64:
        raise TooExpensive(f"a root of degree {degree}")
    if degree < 1:
        raise NotArithmetic("root degree")
    if value < 0:
        if degree % 2 == 0:
            raise NotArithmetic("even root of a negative number")
        return -_exact_root(-value, degree)
    parts = []
    for part in (value.numerator, value.denominator):
        root = round(part ** (1 / degree)) if part.bit_length() < 1000 else None
        if root is None:
            raise TooExpensive("root of a huge number")
        for candidate in (root - 1, root, root + 1):
            if candidate >= 0 and candidate**degree == part:
                parts.append(candidate)
                break
        else:
            raise NotArithmetic("irrational root")
    return Fraction(parts[0], parts[1])


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        if exponent.denominator > 64:
            raise TooExpensive("a fractional exponent with a huge denominator")
        return _power(_exact_root(base, exponent.denominator), Fraction(exponent.numerator))
    power = exponent.numerator
    if abs(power) > _MAX_EXPONENT:
        raise TooExpensive(f"exponent {power}")
    if base == 0 and power < 0:
        raise NotArithmetic("division by zero")
    if base not in (0, 1, -1) and abs(power) * math.log10(max(abs(base.numerator), base.denominator, 2)) > MAX_DIGITS:
        raise TooExpensive("a power over the digit limit")
    return base**power


def _factorial(value: Fraction) -> Fraction:
    if value.denominator != 1 or value < 0:
        raise NotArithmetic("factorial of a non-integer")
    if value > _MAX_FACTORIAL:
        raise TooExpensive(f"{value}!")
    return Fraction(math.factorial(int(value)))


def _binomial(n: Fraction, k: Fraction) -> Fraction:
    if n.denominator != 1 or k.denominator != 1 or n < 0:
        raise NotArithmetic("binomial of non-integers")
    if n > _MAX_BINOMIAL_N:
        raise TooExpensive(f"binomial of {n}")
    return Fraction(math.comb(int(n), int(k))) if k >= 0 else Fraction(0)


class _Parser:
    """Recursive descent over arithmetic tokens: + - * / ^ ! ( ) sqrt root binom, mixed numbers with ``&``."""

    def __init__(self, tokens: list[Token]):
        self.tokens, self.index, self.depth = tokens, 0, 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> Fraction:
        value = self.expression()
        if self.peek() is not None:
            raise NotArithmetic(f"unexpected {self.peek().text!r}")
        return value

    def expression(self) -> Fraction:
        value = self.term()
        while (token := self.peek()) is not None and token.kind == "op" and token.text in "+-":
            self.take()
            value = _check(value + self.term() if token.text == "+" else value - self.term())
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while (token := self.peek()) is not None and (token.kind == "op" and token.text in "*/" or token.kind == "amp"):
            self.take()
            if token.kind == "amp":  # 2 & 1/2: a mixed number, only with a proper fraction
                right = self.atom()
                if self.peek() is not None and self.peek().kind == "op" and self.peek().text == "/":
                    self.take()
                    denominator = self.atom()
                    right = right / denominator if denominator else Fraction(-1)
                if not (0 < right < 1) or value.denominator != 1:
                    raise NotArithmetic("not a mixed number")
                value = value + right if value >= 0 else value - right
                continue
            right = self.unary()
            if token.text == "*":
                value = _check(value * right)
            else:
                if right == 0:
                    raise NotArithmetic("division by zero")
                value = _check(value / right)
        return value

    def unary(self) -> Fraction:
        token = self.peek()
        if token is not None and token.kind == "op" and token.text in "+-":
            self.take()
            value = self.unary()
            return -value if token.text == "-" else value
        return self.power()

    def power(self) -> Fraction:
        base = self.postfix()
        token = self.peek()
        if token is not None and token.kind == "op" and token.text == "^":
            self.take()
            return _check(_power(base, self.unary()))
        return base

    def postfix(self) -> Fraction:
        value = self.atom()
        while (token := self.peek()) is not None and token.kind in ("bang", "pct"):
            self.take()
            if token.kind == "bang":
                value = _factorial(value)
        return value

    def atom(self) -> Fraction:
        token = self.peek()
        if token is None:
            raise NotArithmetic("missing operand")
        if token.kind == "num":
            self.take()
            return number_value(token.text)
        if token.kind == "lp":
            self.take()
            self.depth += 1
            if self.depth > 60:
                raise TooExpensive("nesting")
            value = self.expression()
            if self.peek() is None or self.peek().kind != "rp":
                raise NotArithmetic("unbalanced parenthesis")
            self.take()
            self.depth -= 1
            return value
        if token.kind == "fn":
            self.take()
            args = self.arguments()
            if token.text == "sqrt" and len(args) == 1:
                return _exact_root(args[0], 2)
            if token.text == "root" and len(args) == 2 and args[0].denominator == 1:
                return _exact_root(args[1], int(args[0]))
            if token.text == "binom" and len(args) == 2:
                return _binomial(*args)
            raise NotArithmetic(f"{token.text} arguments")
        raise NotArithmetic(f"unexpected {token.text!r}")

    def arguments(self) -> list[Fraction]:
        if self.peek() is None or self.peek().kind != "lp":
            raise NotArithmetic("function without arguments")
        self.take()
        args = [self.expression()]
        while self.peek() is not None and self.peek().kind == "comma":
            self.take()
            args.append(self.expression())
        if self.peek() is None or self.peek().kind != "rp":
            raise NotArithmetic("unbalanced parenthesis")
        self.take()
        return args


def evaluate(tokens: list[Token]) -> Fraction:
    """Exact value of arithmetic tokens (currency signs and unit words must already be removed).

    Raises:
        NotArithmetic: for anything else in the tokens.
        TooExpensive: past the bounds of the module docstring.
    """
    if not tokens:
        raise NotArithmetic("empty")
    return _Parser(tokens).parse()


# ---------------------------------------------------------------------------------------------- number words

_UNITS_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS_WORDS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
               "ninety": 90}
_SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 10**6}


def _is_number_word(token: Token) -> bool:
    word = token.text.lower()
    return token.kind == "word" and (word in _UNITS_WORDS or word in _TENS_WORDS or word in _SCALE_WORDS)


def _number_words(tokens: list[Token], start: int) -> tuple[Fraction, int] | None:
    """Value of the number words from ``start`` (``twenty - five``, ``one hundred and five``) and the end index."""
    total = current = 0
    index, seen = start, False
    while index < len(tokens):
        token = tokens[index]
        word = token.text.lower()
        if token.kind == "word" and word in _UNITS_WORDS:
            current += _UNITS_WORDS[word]
        elif token.kind == "word" and word in _TENS_WORDS:
            current += _TENS_WORDS[word]
        elif token.kind == "word" and word in _SCALE_WORDS and seen:
            scale = _SCALE_WORDS[word]
            if scale == 100:
                current *= 100
            else:
                total, current = total + current * scale, 0
        elif seen and (token.kind == "op" and token.text == "-" or token.kind == "word" and word == "and") \
                and index + 1 < len(tokens) and _is_number_word(tokens[index + 1]):
            pass
        else:
            break
        seen = True
        index += 1
    return (Fraction(total + current), index) if seen else None


# ---------------------------------------------------------------------------------------------- clauses

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
            if run < len(tokens) and tokens[run].kind in ("op", "eq") and not _is_number_word(tokens[index]):
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
    words = _number_words(tokens, index) if index < len(tokens) else None
    return None if words is None else words[0]


def _is_list(tokens: list[Token]) -> bool:
    """``5, 6`` / ``5 and 6``: the clause is a list of several numbers (units allowed)."""
    numbers = [t for t in tokens if t.kind == "num"]
    separators = [t for t in tokens if t.kind == "comma" or t.kind == "word" and t.text.lower() == "and"]
    others = [t for t in tokens if t.kind not in ("num", "comma", "cur", "pct") and t not in separators]
    values = {number_value(t.text) for t in numbers}
    return len(numbers) >= 2 and bool(separators) and not others and len(values) > 1


def parse_clause(text: str, math: bool = False) -> Verdict:
    """What the answer clause ``text`` commits to (see the module docstring).

    ``math=True`` reads ``!`` as a factorial (inside ``\\boxed{}``); in prose it ends a sentence.

    Raises:
        TooExpensive: for a bomb (the caller scores it 0 and counts it).
    """
    text = expand_scales(text[:clause_end(text, 0, math)])
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
        if _is_number_word(token):
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
    words_value = _number_words(tokens, start) if _is_number_word(tokens[start]) else None
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
