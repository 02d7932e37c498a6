"""What part of a completion is its own answer: the text before any invented next turn, after any think block.

:data:`STOP_SEQUENCES` are the lm-eval tasks' ``until`` strings; :func:`own_answer` cuts at each of them
(and at the same markers written with other spacing), so an evaluation that stopped generating at one
and a training reward that read the whole rollout grade the same text.
"""

from __future__ import annotations

import re

STOP_SEQUENCES = (
    "\nQuestion:", "\nQ:", "\nProblem:", "\nHuman:", "\nUser:", "\n### Question", "\n### Problem",
    "\n### Instruction", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>",
    "<|start_header_id|>", "<|user|>", "[INST]", "</s>",
)
"""Where a completion's own turn ends: an invented next question or turn, or a chat special token."""

_NEW_TURN = re.compile(
    r"\n[ \t]*(?:#{1,4}[ \t]*)?(?:\*\*)?(?:(?:Question|Problem)(?:[ \t]+[0-9]+)?|Q|Human|User|Instruction)(?:\*\*)?"
    r"[ \t]*:"
    r"|\n[ \t]*#{1,4}[ \t]*(?:Question|Problem|Instruction)\b"
    r"|\n[ \t]*(?:\*\*)?(?:Next|New|Another)[ \t]+(?:question|problem)(?:\*\*)?[ \t]*:"
    r"|\n[ \t]*\n[ \t]*(?:\*\*)?Next(?:\*\*)?[ \t]*:"
    r"|<\|(?:im_start|im_end|endoftext|eot_id|end_of_text|start_header_id|user)\|>|</s>|\[INST\]",
)
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)


_VULGAR = {"\u00bd": "1/2", "\u2153": "1/3", "\u2154": "2/3", "\u00bc": "1/4", "\u00be": "3/4", "\u2155": "1/5",
           "\u2156": "2/5", "\u2157": "3/5", "\u2158": "4/5", "\u2159": "1/6", "\u215a": "5/6", "\u2150": "1/7",
           "\u215b": "1/8", "\u215c": "3/8", "\u215d": "5/8", "\u215e": "7/8", "\u2151": "1/9", "\u2152": "1/10"}
_CHARACTERS = str.maketrans({
    **{chr(0xFF10 + d): str(d) for d in range(10)},  # full-width digits
    "\u2044": "/", "\u2215": "/", "\u2236": ":", "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u200b": "",
    **{k: " " + v + " " for k, v in _VULGAR.items()},
})
_STRUCK = re.compile(r"~~[^~\n]{0,200}~~|<del>.{0,200}?</del>", re.DOTALL)


def normalize(text: str) -> str:
    """Characters read alike: full-width digits, vulgar fractions (``2½`` -> ``2 1/2``), the fraction
    slash, non-breaking spaces; struck-through text (``~~16~~``, ``<del>``) is removed."""
    text = text.translate(_CHARACTERS)
    return _STRUCK.sub(" ", text) if "~~" in text or "<del>" in text else text


def cut_continuation(text: str) -> str:
    """``text`` up to the start of an invented next turn (a new line ``Question:``, ``Q:``, ``Problem:``,
    ``Human:``, ``User:``, or a chat special token); numbered ``Q1:`` lines are reasoning and stay.

    Every :data:`STOP_SEQUENCES` string is such a start, so the cut is never later than where lm-eval
    stops, and grading a full rollout equals grading what lm-eval returns for it.
    """
    match = _NEW_TURN.search(text)
    return text if match is None else text[:match.start()]


def own_answer(text: str) -> str | None:
    """The part of a completion that holds its answer, or None when it committed to nothing.

    The text is cut at an invented next turn; a ``<think>`` block is reasoning, so the answer is read
    after ``</think>``, and a think block that never closes holds no answer.
    """
    text = cut_continuation(normalize(text))
    close = None
    for close in _THINK_CLOSE.finditer(text):
        pass
    if close is not None:
        after = text[close.end():]
        return after if after.strip() else None
    if _THINK_OPEN.search(text):
        return None
    return text


RETRACTION = re.compile(
    r"\b(?:wait|hmm+|oops|actually)(?:[\s,.!:;\u2013\u2014-]|\bno\b)*(?:that['\u2019]?s|that\s+is|this\s+is|it['\u2019]?s)\s+"
    r"(?:not\s+(?:right|correct)|wrong|incorrect)"
    r"|\bthat\s+can['\u2019]?t\s+be\s+right|\bi\s+made\s+(?:a|an)\s+(?:mistake|error)|\bi\s+was\s+wrong"
    r"|\bscratch\s+that|\bwait,?\s+no\b|\bno,?\s+wait\b|\bcorrection\s*:",
    re.IGNORECASE,
)
"""Words that take back what came before ("Wait, that's not right", "I made a mistake", "Scratch that")."""


def retracted(text: str, start: int) -> bool:
    """Whether ``text`` takes back its answer somewhere after ``start`` (and so, unless a later answer
    follows, commits to nothing)."""
    return RETRACTION.search(text, start) is not None
