"""Exact, bounded arithmetic on answer text: numbers, tokens, an evaluator, number words.

:func:`tokenize` splits plain text (LaTeX already rewritten by :mod:`meml.rewards.latex`) into numbers,
operators, brackets, words; :func:`evaluate` computes ``+ - * / ^ ! sqrt root binom`` and mixed numbers
exactly with fractions. Every size is bounded: numbers over :data:`MAX_DIGITS` digits, exponents,
factorials and binomials whose results would exceed that, and deep nesting raise :class:`TooExpensive`,
which the caller scores 0 and counts as over budget. No call does more than a few thousand digit
operations. What a clause of text commits to is :mod:`meml.rewards.clause`'s job.
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


def is_number_word(token: Token) -> bool:
    word = token.text.lower()
    return token.kind == "word" and (word in _UNITS_WORDS or word in _TENS_WORDS or word in _SCALE_WORDS)


def number_words(tokens: list[Token], start: int) -> tuple[Fraction, int] | None:
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
                and index + 1 < len(tokens) and is_number_word(tokens[index + 1]):
            pass
        else:
            break
        seen = True
        index += 1
    return (Fraction(total + current), index) if seen else None
