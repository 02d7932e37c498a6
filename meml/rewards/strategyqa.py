"""StrategyQA: the yes/no a completion commits to.

Commitments are: a ``####`` line, an answer statement ("The answer is no", "Answer: False",
``\\boxed{\\text{Yes}}``), an opening answer ("Yes.", "No, ...", "Nope.", "Definitely not.",
"I don't think so."), a concluding sentence ("So, no." / "Therefore, yes, ..."), a closing standalone
answer ("... No."), and "I'd say yes". Informal answers count (Yep, Absolutely, Not at all, Probably not,
Unlikely). The last commitment is the answer, provided no earlier commitment says the opposite: a
completion that says both ("Yes and no", "Yes. ... So the answer is no.") commits to nothing, unless it
corrects itself explicitly in between ("Wait, that's wrong", "Actually", "On second thought").

"No" as a determiner ("No one ...", "No human ...", "There is no evidence") is not an answer, and
sub-answers inside step-by-step reasoning ("Q1: ...? Yes.") are reasoning, not commitments.
"""

from __future__ import annotations

import re

from meml.rewards.latex import last_boxed, strip_text_macros
from meml.rewards.text import retracted

_FLAGS = re.IGNORECASE

_NO_PHRASES = (
    r"i\s+(?:do\s*n[o'\u2019]?t|don['\u2019]t)\s+think\s+so|i\s+doubt\s+it|not\s+at\s+all|not\s+really|not\s+likely"
    r"|no\s+way(?!\s+to\b)|there['\u2019]?s\s+no\s+way(?!\s+to\b)|there\s+is\s+no\s+way(?!\s+to\b)"
    r"|(?:not\s+a|no)\s+chance|not\s+necessarily|not\s+in\s+the\s+slightest|certainly\s+not|never"
    r"|by\s+no\s+means|that(?:['\u2019]s|\s+is|\s+was)\s+(?:false|wrong|incorrect|not\s+(?:true|correct|right|so))"
    r"|(?:absolutely|definitely|certainly|probably|most\s+likely|very\s+likely|likely|surely|clearly|of\s+course)"
    r"(?:\s+not|,?\s+no(?![A-Za-z']))"
    r"|(?:highly\s+|very\s+|most\s+|quite\s+)?unlikely|nope|nah|false|incorrect|negative|no"
)
_YES_PHRASES = (
    r"that(?:['\u2019]s|\s+is|\s+was)\s+(?:correct|right|true)|for\s+sure|you\s+bet|obviously|undoubtedly"
    r"|100\s*%|without\s+(?:a\s+)?doubt"
    r"|(?:absolutely|definitely|certainly|probably|most\s+likely|very\s+likely|likely|surely|clearly|of\s+course)"
    r"(?:,?\s+(?:yes|true))?|yes|yeah|yep|yup|yea|true|correct|indeed|sure|affirmative"
)
_PHRASE = re.compile(
    r"(?P<idiom>no\s+doubt(?:\s+about\s+it)?|no\s+question(?:\s+about\s+it)?)|(?P<no>" + _NO_PHRASES + r")"
    r"|(?P<yes>" + _YES_PHRASES + r")",
    _FLAGS,
)
_WEAK_WORDS = {"true", "false", "correct", "incorrect", "indeed", "sure", "negative", "affirmative", "probably",
               "likely", "clearly", "surely", "definitely", "absolutely", "certainly", "of course",
               "most likely", "very likely", "obviously", "undoubtedly", "never", "100%", "100 %"}
# after an interjection "no": punctuation, the end, or a clause ("No it isn't", "No, because ...")
_AFTER_INTERJECTION = re.compile(
    r"[ \t]*(?:$|\n|[^\w\s]|(?:it|they|he|she|i|we|you|there|that|this|because|since|as|not"
    r"|never|wait|way|sir|ma'am|indeed)\b)",
    _FLAGS,
)
_LEAD = re.compile(r"[\s*_#>\"'`:\-\u2013\u2014(\[{$]*(?:\\(?:text|textbf|mathrm|boxed)\s*\{)?[\s*_\"'$]*")
_OPENING_LEAD = re.compile(  # markdown, emoji, "A:", "Oh,", "Ha,"
    r"[^A-Za-z0-9]*(?:A\s*:\s*|(?:oh|well|hmm+|ah|uh|um|ok(?:ay)?|ha(?:ha)*|lol|honestly|frankly)\b[^A-Za-z0-9]*)*",
    _FLAGS,
)
_SHORT_REPLY = re.compile(  # "It would not.", "He could not have.", "They do.", "so they couldn't"
    r"(?:it|he|she|they|you|we|i|that|this|there|one)\s+"
    r"(?P<aux>is|was|would|could|can|does|did|do|will|has|have|had|should|might|must|were|are|may|wo|ca)"
    r"(?P<neg>n['\u2019]t|\s+not|\s+never)?(?:\s+(?:be|have|do|go|fit|work|survive|happen|exist|need))*"
    r"\s*(?:[.!\u2026]|$)",
    _FLAGS,
)
_INTRO_CLAUSE = re.compile(r"[^,.!?\n]{3,60},\s*")
_SHORT_REPLY_CLAUSE = re.compile(  # the same reply, which may also end at a dash or colon
    _SHORT_REPLY.pattern.replace(r"(?:[.!\u2026]|$)", r"(?:[.!\u2026;:\u2013\u2014]|\s-|$)"), _FLAGS
)
_STATEMENT_FILLER = re.compile(
    r"(?:(?:simply|just|a|an|resounding|clear|firm|definite|final|emphatic|straightforward|that)\b\s*|[:\-]\s*)*",
    _FLAGS,
)
_ANSWER_STATEMENT = re.compile(
    r"\b(?:(?:final|short|my)\s+)?(?:answer|verdict|conclusion|bottom\s+line|tl;?\s*dr)"
    r"(?:\s+to\s+(?:the|this|your)\s+question)?[\"']?\**\s*"
    r"(?:(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be|remains|=|:|-|\*\*\s*:)\s*\**\s*:?\s*"
    r"|(?=\*\*))",
    _FLAGS,
)
_CONCLUDING = re.compile(
    r"^(?:so|thus|therefore|hence|overall|consequently|ultimately|in\s+conclusion|in\s+summary|in\s+short"
    r"|in\s+the\s+end|to\s+conclude|to\s+sum\s+up|all\s+in\s+all|conclusion|final\s+answer|short\s+answer)"
    r"\s*(?:[,:\-\u2013\u2014\u2026]|\.\.\.)?\s*(?:the\s+answer\s+is\s*:?\s*)?",
    _FLAGS,
)
_MID_CONCLUSION = re.compile(  # "..., so no, Disneyland Paris is not ...", "I'm not sure, but yes -"
    r"(?:^|[,;:\u2013\u2014]|\s-)\s*(?:and\s+)?(?:so|thus|therefore|hence|but|which\s+means)\s*,?\s*(?=\S)", _FLAGS
)
_TAIL = re.compile(r"[,:;\u2013\u2014]\s*(?=\**[A-Za-z][A-Za-z' ]{0,20}?[.!]*[\s*\"')]*$)")
_I_SAY = re.compile(
    r"\bI(?:['\u2019]d|\s+would|\s+will|\s+must|['\u2019]ll)?\s+(?:say|answer|conclude|go\s+with)\s*:?\s*"
    r"|\b(?:change|changing|switch|revise|revising)\s+my\s+answer\s+to\s*:?\s*",
    _FLAGS,
)
_HEDGE = re.compile(  # after the last commitment: it was not one
    r"\b(?:it['\u2019]?s\s+both|it\s+is\s+both|both\s+yes\s+and\s+no|yes\s+and\s+no|it\s+depends|hard\s+to\s+say"
    r"|impossible\s+to\s+say|can(?:['\u2019]t|not)\s+(?:say|tell)\s+(?:for\s+sure|either\s+way)"
    r"|(?:could|might|may)\s+(?:also\s+|well\s+|just\s+as\s+well\s+)?be\s+(?:yes|no|true|false))\b",
    _FLAGS,
)
_AFTERTHOUGHT = r"(?:\.\.\.|\u2026|[.!?,;:\u2013\u2014-])\s*well\b"  # "No... well, yes"
_CORRECTED = re.compile(  # "Actually, no", "Wait — correction: yes"
    r"(?:\b(?:actually|correction|on\s+second\s+thought|rather|wait|no\s+wait|(?:up)?on\s+reflection)|" + _AFTERTHOUGHT
    + r")(?:[\s,:;.\u2013\u2014\-]|\.\.\.)*"
    r"(?:(?:actually|correction|wait)(?:[\s,:;.\u2013\u2014\-]|\.\.\.)*)*",
    _FLAGS,
)
_CORRECTION = re.compile(
    r"\b(?:wait|actually|on\s+second\s+thought|correction|scratch\s+that|hold\s+on|i\s+was\s+wrong"
    r"|i\s+made\s+a\s+mistake|that['\u2019]?s\s+(?:not\s+right|wrong|incorrect)|that\s+is\s+(?:not\s+right|wrong|incorrect)"
    r"|let\s+me\s+(?:reconsider|re-?check|rethink|correct|re-?examine)|re-?considering|(?:up)?on\s+reflection"
    r"|i\s+need\s+to\s+revise|change\s+my\s+answer|i\s+mixed\s+up)\b|" + _AFTERTHOUGHT,
    _FLAGS,
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*|\n")
_STEP_LINE = re.compile(r"^\s*(?:\*\*)?(?:Q\s*\d+|\d+\s*[.)]|Step\s*\d+|Sub-?question\s*\d*|#\d+)", _FLAGS)
_OPPOSITE_FOLLOWS = re.compile(  # what may sit between "yes" and an opposite "no": "Yes and no", "yes/no", "yes no"
    r"[ \t]*(?:(?:,|\.|!|;|/|\band\b|\bor\b|\bbut\b|\bnor\b|&|-|\u2013|\u2014)+\s*\**\s*|(?=[A-Za-z]))", _FLAGS
)


def _phrase_at(text: str, start: int = 0, strict: bool = True, bare_no: bool = False) -> tuple[str, int] | None:
    """``(polarity, end)`` of an answer phrase right at ``start`` (after markdown and quotes), else None.

    ``strict`` (opening and concluding sentences): a weak word ("True", "Sure", "Definitely") counts only
    when punctuation or the end follows it. "No" always needs punctuation, the end or a clause after it,
    so the determiner in "No one ..." is not an answer.
    """
    lead = _LEAD.match(text, start)
    position = lead.end() if lead else start
    match = _PHRASE.match(text, position)
    if match is None or (match.end() < len(text) and (text[match.end()].isalnum() or text[match.end()] == "'")):
        return None
    word = " ".join(match.group().lower().split())
    after = text[match.end():match.end() + 40]
    if match.group("idiom"):
        return "yes", match.end()
    if word == "sure" and re.match(r"[\s,!.]*(?:let|here|i['\u2019]?ll|i\s+can|i\s+will|happy|no\s+problem|thing)\b",
                                   after, _FLAGS):
        return None  # "Sure, let me think": a filler, not an answer
    if word == "no" and not bare_no and not _AFTER_INTERJECTION.match(after):
        return None
    if strict and word in _WEAK_WORDS and not re.match(r"\s*(?:$|[,.!;:)\]*\"'\-\u2013\u2014])", after):
        return None
    return ("no" if match.group("no") else "yes"), match.end()


def _reply_at(text: str, start: int, strict: bool = True) -> tuple[str, int] | None:
    """An answer phrase, or a short echo reply closing its sentence ("so they couldn't.", "He did not.")."""
    found = _phrase_at(text, start, strict)
    if found is not None:
        return found
    lead = _LEAD.match(text, start)
    reply = _SHORT_REPLY.match(text, lead.end() if lead else start)
    if reply is None:
        return None
    return ("no" if reply.group("neg") else "yes"), reply.end()


def _statement(text: str, start: int, strict: bool) -> str | None:
    """Polarity of the answer phrase at ``start``; "hedge" when the opposite follows (``Yes and no``)."""
    found = _reply_at(text, start, strict)
    if found is None:
        return None
    polarity, end = found
    follow = _OPPOSITE_FOLLOWS.match(text, end)
    if follow is not None and follow.end() > end:
        linked = re.search(r"\b(?:and|or|nor)\b|/|&", follow.group()) is not None or not follow.group().strip()
        second = _phrase_at(text, follow.end(), strict=not linked, bare_no=linked)
        if second is not None and second[0] != polarity:
            return "hedge"
    return polarity


def _opening(text: str) -> str | None:
    """The answer a completion opens with: "Yes.", "A: No.", "Oh yeah, for sure.", "It would not."."""
    lead = _OPENING_LEAD.match(text)
    start = lead.end() if lead else 0
    polarity = _statement(text, start, strict=True)
    if polarity is not None:
        return polarity
    reply = _SHORT_REPLY.match(text, start)
    if reply is not None:
        return "no" if reply.group("neg") else "yes"
    intro = _INTRO_CLAUSE.match(text, start)  # "No matter how you line them up, you can't - ..."
    if intro is not None:
        reply = _SHORT_REPLY_CLAUSE.match(text, intro.end())
        if reply is not None:
            return "no" if reply.group("neg") else "yes"
    return None


def _marker_commitments(text: str) -> list[tuple[int, str]]:
    """Commitments by explicit marker: ``####`` lines, answer statements, ``\\boxed{}``, "I'd say", corrections."""
    found = []
    for match in re.finditer(r"####", text):
        line = text[match.end():].split("\n", 1)[0]
        polarity = _statement(line, 0, strict=False)
        if polarity is None:
            statement = _ANSWER_STATEMENT.search(line)
            polarity = None if statement is None else _statement(line, statement.end(), strict=False)
        if polarity is not None:
            found.append((match.start(), polarity))
    for match in _ANSWER_STATEMENT.finditer(text):
        filler = _STATEMENT_FILLER.match(text, match.end())
        polarity = _statement(text, filler.end(), strict=False)
        if polarity is not None:
            found.append((match.start(), polarity))
    box = last_boxed(text)
    if box is not None:
        polarity = _statement(strip_text_macros(box[1]), 0, strict=False)
        if polarity is not None:
            found.append((box[0], polarity))
    for pattern in (_I_SAY, _CORRECTED):
        for match in pattern.finditer(text):
            polarity = _statement(text, match.end(), strict=pattern is _CORRECTED)
            if polarity is not None:  # a correction counts from its answer, after the words that take back
                found.append((match.end() if pattern is _CORRECTED else match.start(), polarity))
    return found


def _concluding_commitment(text: str, sentences: list[re.Match]) -> tuple[int, str] | None:
    """The last sentence that concludes with an answer: "So, no.", "Therefore, yes, ...", "So ...: yes."."""
    concluding = None
    for sentence in sentences:
        body = sentence.group()
        stripped = body.lstrip(" *_#>\"'")
        lead = _CONCLUDING.match(stripped)
        if lead is None or not lead.group().strip():
            continue
        polarity = _statement(text, sentence.start() + len(body) - len(stripped) + lead.end(), strict=True)
        if polarity is None:
            tail = _TAIL.search(body)
            polarity = None if tail is None else _statement(text, sentence.start() + tail.end(), strict=True)
        if polarity is not None:
            concluding = (sentence.start(), polarity)
    return concluding


def _closing_commitments(text: str, sentences: list[re.Match]) -> list[tuple[int, str]]:
    """Answers in the last sentence: "... Yes, a week would be enough.", "..., so no, ...", "... = 174, yes."

    A last sentence that answers a sub-question (after a line "Q2: ...?" or a numbered step) is reasoning.
    """
    if not sentences:
        return []
    found = []
    last = sentences[-1]
    line_start = text.rfind("\n", 0, last.start()) + 1
    sub_answer = len(sentences) > 1 and sentences[-2].group().rstrip().endswith("?") \
        or _STEP_LINE.match(text[line_start:])
    if len(sentences) > 1 and not sub_answer:
        polarity = _statement(text, last.start(), strict=True)
        if polarity is not None:
            found.append((last.start(), polarity))
    for match in _MID_CONCLUSION.finditer(last.group()):
        polarity = _statement(text, last.start() + match.end(), strict=True)
        if polarity is not None:
            found.append((last.start() + match.start(), polarity))
    tail = _TAIL.search(last.group())
    if tail is not None and not sub_answer:
        polarity = _statement(text, last.start() + tail.end(), strict=True)
        if polarity is not None:
            found.append((last.start() + tail.end(), polarity))
    return found


def _commitments(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """``(strong, weak)`` commitments ``(position, polarity or "hedge")`` in text order.

    Weak ones count only when there is no strong one: the answer after a restated question
    ("Answer yes or no: is X? No.") could also be a sub-answer in unmarked step-by-step reasoning.
    """
    found, weak = [], []
    sentences = [m for m in _SENTENCE.finditer(text) if m.group().strip()]
    if not _STEP_LINE.match(text):
        opening = _opening(text)
        if opening is not None:
            found.append((0, opening))
        elif len(sentences) > 1 and sentences[0].group().rstrip().endswith("?"):
            second = _opening(text[sentences[1].start():])
            if second is not None:
                weak.append((sentences[1].start(), second))
    found += _marker_commitments(text)
    concluding = _concluding_commitment(text, sentences)
    if concluding is not None:
        found.append(concluding)
    found += _closing_commitments(text, sentences)
    return sorted(set(found)), weak


def extract(text: str) -> str | None:
    """``"yes"``/``"no"`` the completion commits to (see the module docstring), or None."""
    found, weak = _commitments(text)
    found = found or weak
    if not found:
        return None
    position, final = found[-1]
    if final == "hedge" or retracted(text, position + 1) or _HEDGE.search(text, position + 1):
        return None
    for earlier_position, earlier in reversed(found[:-1]):
        if earlier == final:
            continue
        if not _CORRECTION.search(text, earlier_position, position):
            return None  # it said both without taking one back
        break
    return final


_BOOLEAN = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}


def reference(text: str) -> str | None:
    """``"yes"``/``"no"`` of a reference: yes/no/true/false (a boolean column), or a full completion."""
    body = text.strip().strip(".").lower()
    return _BOOLEAN.get(body) or extract(text)
