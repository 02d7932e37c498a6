"""MathQA: the option letter a completion commits to.

Committing to an option means one of:

- a letter given as the answer: a ``####`` line, "answer : c", "the answer is (c)", "(c) is correct",
  ``\\boxed{C}``, "I would pick (d)", "option c" / "so c" as the closing words, a lone letter closing a
  MathQA-style rationale ("... = 12,500 e");
- a value stated explicitly as the final answer ("the answer is 30", ``#### 30``, ``\\boxed{30}``) that
  equals exactly one option's value (currency and units ignored).

The last such statement counts (a letter beats a value at the same place). Echoed option lists
(``a ) 12 , b ) 15 , ...``, one option per line, ``(A) 12 (B) 15``) are not answers: their labels are
blanked before reading. A bare number with no answer statement commits to nothing, and so does a
statement that offers two letters ("b or c", "a/b").
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from meml.mathqa_options import LETTERS, parse_options
from meml.rewards.arith import MAX_DIGITS, TooExpensive
from meml.rewards.clause import clause_end, parse_clause, read_clause
from meml.rewards.latex import last_boxed, strip_text_macros
from meml.rewards.text import retracted

_FLAGS = re.IGNORECASE
_TOLERANCE = Fraction(1, 10**6)

# ---------------------------------------------------------------------------------------------- letters

_LETTER_END = r"(?![A-Za-z0-9_']|\.[A-Za-z])"  # not a word, not "e.g" / "c.p"
# a letter: "(c)", "c )", "c"; a bare "a" only when punctuation or the end of text follows
_LETTER = (
    r"(?:[(\[{<]\s*(?P<p>[a-e])\s*[)\]}>]"
    r"|(?P<b>[b-e])" + _LETTER_END +
    r"|(?P<a>a)(?=\s*\)|\s*$|\s*[.,;:!?*\"'\]}\n/=\u2019\u201d>])(?!\.[A-Za-z]))"
)
_LETTER_AT = re.compile(r"[\s*:\"'=\[\{\-]*" + _LETTER, _FLAGS)
_FILLER = (
    r"(?:\s|[:=>.,*\-\"'\[]|\b(?:is|are|will|would|should|must|be|option|choice|correct|right"
    r"|final|then|hence|therefore|so|was|choose|select|pick|clearly|thus|definitely)\b)*"
)
_ANSWER_WORD = r"\b(?:answer|ans|anser|answe?wr|asnwer|answr)\b"  # MathQA's rationales carry these typos
_QUOTES = "'\"`\u2018\u2019\u201c\u201d"
_ANSWER_LETTER = re.compile(
    _ANSWER_WORD + r"(?:\s+to\s+(?:the|this)(?:\s+(?:above|given))?\s+(?:question|problem))?"
    r"(?:" + _FILLER + r"[" + _QUOTES + r"]?\s*" + _LETTER
    + r"|\s*[=:\-]?\s*(?P<eq>a)(?:\s+(?=[0-9])|\b(?=\s*$)))",  # "answer = a 2 * 2.45 ...", "answer a 2"
    _FLAGS,
)
_OPTION_LETTER = re.compile(
    r"\b(?:option|choice|solution)\b(?:\s*(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|no\.|number"
    r"|[:\-=*]))*[\s*" + _QUOTES + r"]*" + _LETTER, _FLAGS)
_IS_CORRECT_AFTER = re.compile(
    r"[^.!?\n]{0,40}?\b(?:is|are|looks|seems)\s+(?:the\s+)?(?:correct|right|answer|true|closest|best)\b", _FLAGS
)
_TRYING = re.compile(r"\b(?:check|checking|let|consider|considering|try|trying|test|testing|verify|examine|look"
                     r"|evaluate|evaluating|if|whether|eliminate|not)\b", _FLAGS)
_LETTER_IS_ANSWER = re.compile(
    r"(?<![A-Za-z0-9_'])(?:\(\s*(?P<p>[a-e])\s*\)\s*"
    r"|[" + _QUOTES + r"]?(?P<b>[a-e])[" + _QUOTES + r"]?(?:\s*\)\s*|\s+))"
    r"(?:is|was|should\s+be|must\s+be|will\s+be|would\s+be|seems|looks|as)\s+"
    r"(?:(?:thus|therefore|hence|clearly)\s+)?"
    r"(?:(?:the\s+)?(?:(?:correct|right|best|closest|final)\s+)?(?:answer|ans|option|choice)\b|(?:correct|right)\b"
    r"|the\s+only\s+(?:one|option|choice|[a-z]+\s+that)\b|the\s+one\b)",
    _FLAGS,
)
_PICK_LETTER = re.compile(
    r"\b(?:pick|choose|select|go\s+with|mark|opt\s+for|circle|go\s+for|i\s+mean|i\s+meant)\b"
    r"(?:\s+is)?[\s:*" + _QUOTES + r"]*(?:option\s*|choice\s*|answer\s*)?[\s*" + _QUOTES + r"]*" + _LETTER, _FLAGS
)
_OTHER_COMMITMENTS = re.compile(
    r"\banswer(?P<glued>[a-e])\b"  # "answerc"
    r"|\banswer\b[^.!?\n]{1,25}?\bis\s+(?P<late>[a-e])(?!\.[A-Za-z])(?=\s*[.!]?\s*$|\s*[.!,;])"  # "... m = 141 is d ."
    r"|\b(?:it|the\s+answer|that)\s+(?:should|must|would|will|has\s+to)\s+be\s+[(" + _QUOTES + r"]?\s*"
    r"(?P<should>[a-e])\s*[)" + _QUOTES + r"]?(?!\.[A-Za-z])(?=\s*(?:[.!,;:]|$))"  # "it should be c ."
    r"|(?<![A-Za-z0-9_'])[(" + _QUOTES + r"]?(?P<itis>[a-e])[)" + _QUOTES + r"]?\s+it\s+is\b",  # "b it is."
    _FLAGS,
)
_CONCLUDING = re.compile(
    r"\b(?:so|hence|thus|therefore|correct|right|best|final|answer|ans|=)\s*[:,]?\s*$", _FLAGS
)
_ELIMINATED = re.compile(r"\b(?:eliminate|eliminating|rule\s+out|ruling\s+out|remove|discard|reject)\b[^.]*$", _FLAGS)
_NEGATED = re.compile(r"\b(?:not|n't|isn't|wrong|incorrect|eliminate|rule\s+out)\b", _FLAGS)
_ANSWER_VALUE = re.compile(
    _ANSWER_WORD + r"(?:\s|[:=>*\"'\[.\u2013\u2014]|\b(?:is|are|will|would|should|must|be|correct|right|final"
    r"|then|hence|therefore|so)\b)*(?=(?P<rest>[^\n]{0,200}))",
    _FLAGS,
)
_SECOND_LETTER = re.compile(
    r"\s*(?:,\s*)?\(?\s*(?:or|and|/|&)\s*(?:option\s*|choice\s*|maybe\s*|possibly\s*|perhaps\s*)?"
    r"(?:\(\s*[a-e]\s*\)|[a-e](?![A-Za-z0-9_']))",
    _FLAGS,
)
_OFFERS_TWO = re.compile(
    r"^(?:[^\n.;]|\.(?=[0-9])){0,40}?\s(?:or|to)\s+(?:maybe\s+|possibly\s+|perhaps\s+)?(?:rs\.?\s*|\$\s*)?[0-9]", _FLAGS
)
_MAX_STATEMENTS = 50  # value statements read, the last ones (an earlier one can only lose to a later one)
_VALUE_SPAN = 200  # characters after an answer keyword that may hold its value
_EITHER = re.compile(r"\b(?:either|between|neither)\s*$", _FLAGS)

# ---------------------------------------------------------------------------------------------- echoes

_ECHO_LABEL = re.compile(  # "(a)" anywhere; "a )", "A.", "A:" at a line start, after a separator or a value
    r"(?<![A-Za-z0-9_'])(?:\(\s*(?P<p>[a-e])\s*\)"
    r"|(?:^|(?<=\n)|(?<=[,;|\u2022*\-])|(?<=\s\s)|(?<=[0-9%).:]\s)|(?<=\[))\s*(?P<l>[a-e])\s*[).:](?![0-9A-Za-z]))",
    _FLAGS | re.MULTILINE,
)
_ECHO_GAP = 120  # characters an option's value may take before the next label


def blank_echoes(text: str) -> str:
    """``text`` with the labels of echoed option lists replaced by spaces.

    An echo is a run of at least three labels in order (a, b, c, ...) with at most :data:`_ECHO_GAP`
    characters between consecutive labels: ``a ) 12 , b ) 15 , c ) 10``, ``(A) 12 (B) 15 (C) 10``, one
    option per line. The values stay, so a final pick after the list still reads.
    """
    labels = [(m.start(), m.end(), (m.group("p") or m.group("l")).lower()) for m in _ECHO_LABEL.finditer(text)]
    blank, run = [], []
    for label in labels:
        if run and LETTERS.index(label[2]) == LETTERS.index(run[-1][2]) + 1 and label[0] - run[-1][1] <= _ECHO_GAP:
            run.append(label)
            continue
        if len(run) >= 3:
            blank += run
        run = [label] if label[2] == "a" else []
    if len(run) >= 3:
        blank += run
    if not blank:
        return text
    out, previous = [], 0
    for start, end, _ in blank:
        out += [text[previous:start], " " * (end - start)]
        previous = end
    out.append(text[previous:])
    return "".join(out)


# ---------------------------------------------------------------------------------------------- values

_CURRENCY = r"(?:(?:rs|inr|usd|us|rupees?|dollars?)\s*\.?\s*|\\?\$\s*|[₹£€]\s*)"
_MINUS = "-\u2212\u2013"
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
    if len(digits) > MAX_DIGITS:
        return None
    value = Fraction(Decimal(digits))
    if match.group("den"):
        if len(match.group("den")) > MAX_DIGITS:
            return None
        denominator = Fraction(Decimal(match.group("den")))
        if denominator == 0:
            return None
        value /= denominator
    if match.group("sign1") or match.group("sign2"):
        value = -value
    return value, text[match.end():]


_UNICODE = str.maketrans({"\u2044": "/", "\u2215": "/", "\u2212": "-", "\u2013": "-", "\u00d7": "*"})


def _normalized_text(text: str) -> str:
    return " ".join(text.lower().translate(_UNICODE).split()).rstrip(" .")


def _compact(text: str) -> str:
    """Text without any spaces: ``4 π`` and ``4π``, ``16 : 00`` and ``16:00`` compare equal."""
    return "".join(_normalized_text(text).split())


@lru_cache(maxsize=4096)
def option_values(options: str) -> tuple[tuple[str, Fraction | None, str], ...]:
    """``((letter, numeric value or None, normalized text), ...)``; empty when unparseable."""
    try:
        parsed = parse_options(options)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return ()
    values = []
    for letter in LETTERS:
        text = parsed[letter].translate(_UNICODE)
        text = re.sub(r"^[a-z]\s*=\s*", "", text)  # "e = 20"
        text = re.sub(r"^[a-z]{1,3}\s*\.\s*(?=[0-9])", "", text)  # "s . 1300" (a garbled "rs ."), "rs . 400"
        text = re.sub(r"(^|[\s(])\.\s*(?=[0-9])", r"\g<1>0.", text)  # ". 09": MathQA's tokenised ".09"
        leading = _leading_value(text)
        value = None
        if leading is not None and not _UNITS.sub("", leading[1]).strip(" ,;"):
            value = leading[0]  # a number plus units only ("rs . 400", "15 / 8 ohms", "38 %")
        elif leading is not None and _CONTINUED.match(leading[1]):
            try:
                verdict = parse_clause(text)  # "6 2 / 3 days"
            except TooExpensive:
                verdict = None
            value = verdict.value if verdict is not None and verdict.kind == "value" else None
        values.append((letter, value, _normalized_text(parsed[letter])))
    return tuple(values)


def _letter_of_value(value: Fraction, options: str) -> str | None:
    """The unique option letter whose numeric value equals ``value``."""
    hits = [letter for letter, option, _ in option_values(options)
            if option is not None and abs(option - value) <= _TOLERANCE]
    return hits[0] if len(hits) == 1 else None


def _letter_of_text(segment: str, options: str) -> str | None:
    """The option whose text starts ``segment`` (longest wins: ``x + 2 x + 2`` over ``x + 2``), spaces ignored."""
    body = _compact(segment)
    hits = []
    for letter, _, text in option_values(options):
        text = "".join(text.split())
        if text and body.startswith(text) and not body[len(text):len(text) + 1].isalnum():
            hits.append((len(text), letter))
    if not hits:
        return None
    longest = max(hits)[0]
    letters = [letter for length, letter in hits if length == longest]
    return letters[0] if len(letters) == 1 else None


def _value_letter(segment: str, options: str | None) -> str | None:
    """The option a value at the start of ``segment`` names (its text, or its numeric value), else None."""
    if not options:
        return None
    body = segment.lstrip(" \t*:=\"'$").translate(_UNICODE)
    if _OFFERS_TWO.search(body):
        return None  # "625 or 720", "30, or possibly 40": a hedge
    whole = _compact(body[:clause_end(body)])
    exact = [letter for letter, _, text in option_values(options) if whole and "".join(text.split()) == whole]
    if len(exact) == 1:
        return exact[0]  # the whole statement is one option's text: "5 : 6", "4 π", "none of these"
    if re.search(r"[=\u2248]|[0-9.]\s*[-+*/x\u00d7\u00f7]\s*[0-9(]", body[:clause_end(body)]):
        return _exact_value_letter(body, options)  # "45 + 105 = 150": an equation by its result
    letter = _letter_of_text(body, options)  # "3 1 / 5 hours", "45 m east of ..."
    if letter is not None:
        return letter
    leading = _leading_value(body)
    if leading is None and "\\" in segment:
        return _exact_value_letter(segment, options, latex=True)
    if leading is not None and not _CONTINUED.match(leading[1]):
        letter = _letter_of_value(leading[0], options)
        if letter is None and re.match(r"-\s", body):  # "ans - 12 days": a dash, not a minus
            return _value_letter(body[2:], options)
        return letter
    return _exact_value_letter(body, options)  # "3 1/2 km/h", "four hundred dollars", "a total of 74 years"


def _exact_value_letter(segment: str, options: str, latex: bool = False) -> str | None:
    """The option a value names when read exactly (equations, mixed numbers, words, LaTeX), else None."""
    verdict = read_clause(segment, math=latex)
    return _letter_of_value(verdict.value, options) if verdict.kind == "value" else None


def _letter_of(match: re.Match) -> str:
    groups = match.groupdict()
    return next(groups[k] for k in ("p", "b", "a", "eq", "glued", "late", "should", "itis") if groups.get(k)).lower()


def _segment_letter(segment: str, options: str | None) -> str | None:
    """Letter at the start of an answer segment (``#### C) 30``, a boxed body), else the option its value names."""
    if "\\" in segment:
        inner = last_boxed(segment)
        segment = strip_text_macros(inner[1] if inner is not None else segment).replace("$", " ")
    match = _LETTER_AT.match(segment)
    if match is not None:
        return _letter_of(match)
    return _value_letter(segment, options)


# ---------------------------------------------------------------------------------------------- reading


def _sentence_before(text: str, end: int) -> str:
    """The part of the sentence that ends at ``end`` (at most 200 characters back)."""
    window = text[max(0, end - 200):end]
    cut = max(window.rfind(". "), window.rfind("! "), window.rfind("? "), window.rfind("\n"))
    return window[cut + 1:]


_FUNCTION_WORDS = {"and", "or", "of", "the", "to", "in", "for", "with", "by", "is", "are", "was", "not", "than", "as",
                   "at", "on", "if", "nor", "its", "it's", "be", "times"}


def _trailing_letter(text: str) -> tuple[int, str | None] | None:
    """A lone letter ending the text (``... = 10 e``, ``... so c .``, ``(C)``), not the tail of prose.

    Returns ``(position, letter)``, ``(position, None)`` for a hedge (``b or c``, ``b/e``), or None.
    """
    body = text.rstrip(" \t\n.\"')]*")
    if not body or body[-1].lower() not in LETTERS:
        return None
    if len(body) > 1 and (body[-2].isalnum() or body[-2] in "_'.\\"):
        return None  # the end of a word, a number or a macro
    before = body[:-1].rstrip(" \t*([")
    position = len(body) - 1
    if before.endswith(("/", "&")) or re.search(r"(?<![A-Za-z0-9])[a-e]\s*\)?\s*,?\s*or$", before, _FLAGS):
        return position, None  # "b/e", "b or c": a hedge
    previous = re.search(r"[A-Za-z']+$", before[-60:])
    sentence = _sentence_before(before, len(before))
    if previous is None:
        return position, body[-1].lower()  # "... = 10 e", "... both . c", "(C)"
    word = previous.group().lower()
    if re.search(r"\b(?:not|never|n't)\b[^.]{0,12}$", before[-30:], _FLAGS):
        return None  # "I would not pick (d)"
    closed = text[len(body):].lstrip().startswith(")")
    after_value = re.search(r"[0-9][0-9.,%]*(?:\s+[A-Za-z]{1,8}){1,2}$", before[-40:]) is not None
    if after_value and word not in _FUNCTION_WORDS:
        return position, body[-1].lower()  # "... = 144 pi b": a label after a value and its unit
    if closed and word not in ("not", "nor", "than", "except", "and", "or", "it's", "its", "if", "whether"):
        return position, body[-1].lower()  # "... = 60 kmph c )": a label
    if word not in ("so", "or", "thus", "hence", "therefore", "imo", "option", "choice", "answer", "ans"):
        return None  # "... the value of c", "not (b)": prose, not an answer label
    if _TRYING.search(sentence[-30:]):
        return None  # "let's check option a"
    return position, body[-1].lower()


_ECHO_ANSWER = re.compile(r"(?<![A-Za-z0-9_'])([a-e])\s*[.)]\s*([^\n]{1,60}?)[\s.]*$", _FLAGS)


def _letter_with_value(text: str, options: str | None) -> tuple[int, str] | None:
    """A closing ``d . 50 cents`` / ``C) 30``: a letter followed by exactly its own option's text."""
    match = _ECHO_ANSWER.search(text)
    if match is None or not options or not re.match(r"[\w$\u20b9\u00a3\u20ac]", match.group(2)):
        return None
    line = text[text.rfind("\n", 0, match.start()) + 1:match.start()]
    if line.count("(") > line.count(")") and not line.rstrip().endswith("("):
        return None  # "( 2 + a ) = 5": a variable closing a bracket (but "( a ) 40 %" is a label)
    letter = match.group(1).lower()
    named = _letter_of_text(match.group(2), options)
    if named is None:
        named = _value_letter(match.group(2), options)
    return (match.start(), letter) if named == letter else None


_OPENING = re.compile(  # "b 5050 ...", "d . 20 ...", "(c) 45 ..."; not "a train ...", not "c . p . = 102"
    r"^[\s\"'*]*(?:\(\s*)?(?!.\s*\.\s*[a-z]\s*\.)(?:(a)\s*[.):]|([b-e])\s*[.):]?)\s+(?=[^\s=+*/^<>])", _FLAGS
)


_OPENING_PICK = re.compile(
    r"^[\s\"'*]*(?:(?:option|answer|ans|choice)\s*[:\-.]?\s*[(" + _QUOTES + r"]?\s*([a-e])\s*[)" + _QUOTES + r"]?"
    r"(?=\s*[.:,\n]|\s+[0-9])"
    r"|\(\s*([a-e])\s*\)\s*(?=[.:\n]))",
    _FLAGS,
)


def _opening_letter(text: str, options: str | None) -> str | None:
    """A rationale that opens with its pick and that pick's own value (``b 5050 you must ...``)."""
    match = _OPENING.match(text)
    if match is None or not options:
        return None
    letter = (match.group(1) or match.group(2)).lower()
    named = _letter_of_text(text[match.end():match.end() + 60].split(" ")[0], options) \
        or _value_letter(text[match.end():match.end() + 60], options)
    if named != letter:  # "d 7429 - 4358 = 3071 ... x = 5526": the result at the end is the pick's value
        final = re.search(r"([0-9][0-9,]*(?:\.[0-9]+)?)\s*(?:[A-Za-z%.]{0,8}\s*)?[.\s]*$", text)
        named = None if final is None else _value_letter(final.group(1), options)
    return letter if named == letter else None


def _hedged(text: str, match: re.Match) -> bool:
    """Whether a letter statement offers a second letter (``b or c``) or sits in ``either``/``not``."""
    if _SECOND_LETTER.match(text, match.end()):
        return True
    before = text[max(0, match.start() - 40):match.start()]
    return _EITHER.search(before) is not None


def _candidates(text: str, options: str | None) -> list[tuple[int, int, str | None]]:
    """Every committed statement ``(position, rank, letter or None for a hedge)``: rank 1 (a letter)
    beats rank 0 (a value) at the same position."""
    found = []
    for match in re.finditer(r"####", text):
        line = text[match.end():].split("\n", 1)[0]
        if line.strip():
            letter = _segment_letter(line, options)
            if letter is not None:
                letter_match = _LETTER_AT.match(line)
                hedge = letter_match is not None and _SECOND_LETTER.match(line, letter_match.end())
                found.append((match.start(), 1, None if hedge else letter))
            elif re.search(r"[A-Za-z0-9]", line):
                found.append((match.start(), 1, None))  # a "####" line with an answer we cannot map
    for pattern in (_ANSWER_LETTER, _LETTER_IS_ANSWER, _PICK_LETTER, _OTHER_COMMITMENTS):
        for match in pattern.finditer(text):
            prefix = text[max(0, match.start() - 12):match.start()]
            if pattern in (_LETTER_IS_ANSWER, _PICK_LETTER) and re.search(
                    r"\b(?:if|whether|check|not|n't|never)\s*$", prefix, _FLAGS):
                continue  # "so I would not pick (d)"
            if pattern is _ANSWER_LETTER and (_NEGATED.search(text, match.start(), match.end())
                                              or _ELIMINATED.search(text[max(0, match.start() - 25):match.start()])):
                continue  # "the answer is not c", "we can eliminate the answer choice a"
            found.append((match.start(), 1, None if _hedged(text, match) else _letter_of(match)))
    for match in _OPTION_LETTER.finditer(text):
        sentence = _sentence_before(text, match.start())
        closing = not re.search(r"[A-Za-z0-9]", text[match.end():])
        confirmed = _IS_CORRECT_AFTER.match(text, match.end()) is not None  # "Option (c) 14 kmph is correct."
        if (closing or confirmed or _CONCLUDING.search(sentence)) and not _TRYING.search(sentence[-30:]):
            found.append((match.start(), 1, None if _hedged(text, match) else _letter_of(match)))
    box = last_boxed(text)
    if box is not None:
        letter = _segment_letter(strip_text_macros(box[1]), options)
        if letter is not None:
            found.append((box[0], 1, letter))
    if options:
        for match in list(_ANSWER_VALUE.finditer(text))[-_MAX_STATEMENTS:]:
            letter = _value_letter(match.group("rest")[:_VALUE_SPAN], options)
            if letter is not None:
                found.append((match.start(), 0, letter))
    trailing = _trailing_letter(text)
    if trailing is not None:
        found.append((trailing[0], 1, trailing[1]))
    echoed = _letter_with_value(text, options)
    if echoed is not None:
        found.append((echoed[0], 1, echoed[1]))
    opening = _opening_letter(text, options)
    if opening is not None:
        found.append((0, 1, opening))
    start = _OPENING_PICK.match(text)  # "option ' d ' 15 / 5 = 3 ...", "( b ) . 2 n / 108 ...", "answer c . ..."
    if start is not None:
        found.append((0, 1, next(g for g in start.groups() if g).lower()))
    return found


_LATEX_WRAPPERS = re.compile(r"\\(?:qquad|quad|[,;:! ])|(?<!\\)\$")


def extract(text: str, options: str | None) -> str | None:
    """The letter a MathQA completion commits to (see the module docstring), or None.

    ``options`` (the item's options string) lets a value stated as the answer name its option.
    """
    text = blank_echoes(_LATEX_WRAPPERS.sub(" ", strip_text_macros(text)))
    hashes = text.rfind("####")
    if hashes >= 0 and not text[hashes + 4:].strip():
        text = text[:hashes]  # an empty final marker ("... so d\n####") hides nothing: read what precedes it
    found = _candidates(text, options)
    if not found:
        return None
    position, _, letter = max(found, key=lambda item: (item[0], item[1]))
    return None if retracted(text, position + 1) else letter


def reference(text: str, options: str | None) -> str | None:
    """The gold letter of a reference (``"c"``, ``"(C)"``, or a rationale ending in its letter)."""
    body = text.strip().strip("()").strip().lower()
    return body if body in LETTERS else extract(text, options)
