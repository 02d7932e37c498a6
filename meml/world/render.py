"""Render programs as benchmark rows (original schemas) and as solutions in three reasoning styles.

Styles (one per expert, as the paper's teachers differ in style):

- ``gold``: the dataset's own reference reasoning (GSM8K calculator lines, MathQA rationale,
  StrategyQA facts); expert 0.
- ``terse``: one short line of arithmetic, then the answer; expert 1 by default.
- ``verify``: numbered steps, then a check that works the last step backwards; expert 2.

Every solution ends with ``#### <answer>``.
"""

from __future__ import annotations

import random

from meml.mathqa_options import LETTERS, format_options
from meml.world.programs import FLAWS, Program

STYLES = ("gold", "terse", "verify")

NAMES = (("Mia", "She"), ("Tom", "He"), ("Ava", "She"), ("Leo", "He"), ("Zoe", "She"), ("Sam", "He"),
         ("Ivy", "She"), ("Max", "He"))
OBJECTS = ("marbles", "apples", "stickers", "coins", "cards", "shells", "pens", "books")

_GSM8K_CUES = {
    "add": ("{P} finds {b} more.", "{P} gets {b} more.", "{P} receives {b} more."),
    "sub": ("{P} gives away {b}.", "{P} loses {b}."),
    "double": ("{P} doubles the {obj}.",),
    "triple": ("{P} triples the {obj}.",),
}
_MATHQA_CONTEXTS = (
    # (category, opening, add cue, sub cue, double cue, triple cue, question)
    ("gain", "a shop has {x} {obj} in stock .", "it buys {b} more", "it sells {b}", "it doubles its stock",
     "it triples its stock", "how many {obj} does the shop have now ?"),
    ("gain", "a trader owns {x} {obj} .", "he receives {b} more", "he sells {b}", "he doubles his stock",
     "he triples his stock", "how many {obj} does the trader own now ?"),
    ("general", "a number starts at {x} .", "it is increased by {b}", "it is decreased by {b}", "it is doubled",
     "it is tripled", "what is the final number ?"),
    ("general", "a box holds {x} {obj} .", "{b} {obj} are added", "{b} {obj} are removed", "the count is doubled",
     "the count is tripled", "how many {obj} are in the box ?"),
    ("physics", "a tank holds {x} litres of water .", "{b} litres are added", "{b} litres leak out",
     "the amount of water is doubled", "the amount of water is tripled", "how many litres does the tank hold now ?"),
    ("physics", "a car has driven {x} km .", "it drives {b} km more", "it goes back {b} km",
     "the distance is doubled", "the distance is tripled", "how far from the start is the car now ?"),
)
_STRATEGY_TERMS = (
    ("Goat", "Domesticated mammal", "goats", "herd"), ("Library", "Collection of books", "books", "collection"),
    ("Orchard", "Planted area of fruit trees", "trees", "orchard"), ("Aquarium", "Tank for keeping fish", "fish", "tank"),
    ("Sheep", "Domesticated ruminant", "sheep", "flock"), ("Stamp collecting", "Hobby", "stamps", "album"),
    ("Bakery", "Shop that sells bread", "loaves", "stock"), ("Garden", "Planned outdoor space", "roses", "garden"),
)


def _inverse(x: int, op: str, b: int, y: int) -> str:
    inv = {"+": "-", "-": "+", "*": "/"}[op]
    return f"{y} {inv} {b} = {x}"


# --------------------------------------------------------------------------- GSM8K


def gsm8k_row(program: Program, rng: random.Random) -> dict:
    """A GSM8K-schema row (question, answer) with the gold calculator-annotated solution."""
    name, pronoun = rng.choice(NAMES)
    obj = rng.choice(OBJECTS)
    sentences = [f"{name} has {program.start} {obj}."]
    for step in program.steps:
        cue = rng.choice(_GSM8K_CUES[step.op])
        sentences.append(cue.format(P=pronoun, b=step.operand, obj=obj))
    sentences.append(f"How many {obj} does {name} have now?")
    return {"question": " ".join(sentences), "answer": gsm8k_solution(program, "gold")}


def gsm8k_solution(program: Program, style: str, flaws: frozenset[str] = frozenset()) -> str:
    trace = program.trace(flaws)
    answer = trace[-1][3]
    if style == "gold":
        lines = [f"{x}{op}{b} = <<{x}{op}{b}={y}>>{y}" for x, op, b, y in trace]
    elif style == "terse":
        lines = [", ".join(f"{x}{op}{b}={y}" for x, op, b, y in trace) + "."]
    elif style == "verify":
        lines = [f"Step {i}: {x} {op} {b} = {y}" for i, (x, op, b, y) in enumerate(trace, 1)]
        lines.append("Check: " + _inverse(*trace[-1]))
    else:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    return "\n".join(lines + [f"#### {answer}"])


# --------------------------------------------------------------------------- MathQA


def _mathqa_options(program: Program, rng: random.Random) -> tuple[dict[str, str], str]:
    """Five distinct positive options holding the answer, every flawed answer, and near misses.

    The correct letter is drawn uniformly, so no letter is a shortcut.
    """
    answer = program.result()
    values = [answer]
    for flaw in FLAWS:
        wrong = program.result(frozenset([flaw]))
        if wrong not in values:
            values.append(wrong)
    while len(values) < 5:
        candidate = answer + rng.choice((-1, 1)) * rng.randint(1, 6)
        if candidate >= 1 and candidate not in values:
            values.append(candidate)
    distractors = values[1:]
    rng.shuffle(distractors)
    correct_index = rng.randrange(5)
    ordered = distractors[:correct_index] + [answer] + distractors[correct_index:]
    return {letter: str(v) for letter, v in zip(LETTERS, ordered)}, LETTERS[correct_index]


def _mathqa_formulas(program: Program) -> tuple[str, str]:
    names = {"+": "add", "-": "subtract", "*": "multiply"}
    annotated, linear, operands = str(program.start), [], 0
    for i, (x, op, b, y) in enumerate(program.trace()):
        arg = f"const_{b}" if op == "*" else f"n{operands + 1}"
        if op != "*":
            operands += 1
        annotated = f"{names[op]}({annotated}, {b if op != '*' else f'const_{b}'})"
        first = "n0" if i == 0 else f"#{i - 1}"
        linear.append(f"{names[op]}({first},{arg})")
    return annotated, "|".join(linear) + "|"


def mathqa_row(program: Program, rng: random.Random) -> dict:
    """A MathQA-schema row (Problem, Rationale, options, correct, formulas, category)."""
    category, opening, *cues, question = rng.choice(_MATHQA_CONTEXTS)
    cue_of = dict(zip(("add", "sub", "double", "triple"), cues))
    obj = rng.choice(OBJECTS)
    clauses = [cue_of[s.op].format(b=s.operand, obj=obj) for s in program.steps]
    text = opening.format(x=program.start, obj=obj) + " first " + " , then ".join(clauses) + " . " + question.format(obj=obj)
    options, correct = _mathqa_options(program, rng)
    annotated, linear = _mathqa_formulas(program)
    rationale = '"' + " , ".join(f"{x} {op} {b} = {y}" for x, op, b, y in program.trace()) + f" . answer {correct}" + '"'
    return {"Problem": text, "Rationale": rationale, "options": format_options(options), "correct": correct,
            "annotated_formula": annotated, "linear_formula": linear, "category": category}


def mathqa_solution(program: Program, style: str, options: dict[str, str], flaws: frozenset[str] = frozenset()) -> str:
    trace = program.trace(flaws)
    value = str(trace[-1][3])
    letters = [k for k, v in options.items() if v == value]
    if not letters:
        raise ValueError(f"value {value} is not among the options {options}")
    letter = letters[0]
    if style == "gold":
        body = " , ".join(f"{x} {op} {b} = {y}" for x, op, b, y in trace) + f" . answer {letter}"
    elif style == "terse":
        body = " , ".join(f"{x}{op}{b}={y}" for x, op, b, y in trace) + f" , so {letter}"
    elif style == "verify":
        lines = [f"step {i} : {x} {op} {b} = {y}" for i, (x, op, b, y) in enumerate(trace, 1)]
        lines.append("check : " + _inverse(*trace[-1]))
        lines.append(f"{value} is option {letter}")
        body = "\n".join(lines)
    else:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    return f"{body}\n#### {letter}"


# --------------------------------------------------------------------------- StrategyQA


def _compare(value: int, comparator: str, threshold: int) -> bool:
    return value > threshold if comparator == "more" else value < threshold


def strategyqa_threshold(program: Program, rng: random.Random) -> tuple[str, int]:
    """Comparator and threshold; on slices A and B the flaw always flips the yes/no answer."""
    correct = program.result()
    comparator = rng.choice(("more", "fewer"))
    wrong = [program.result(frozenset([f])) for f, op in FLAWS.items() if any(s.op == op for s in program.steps)]
    if wrong:
        lo, hi = sorted((correct, wrong[0]))
        threshold = rng.randint(lo, hi - 1) if comparator == "more" else rng.randint(lo + 1, hi)
    else:
        threshold = rng.randint(max(1, correct - 6), correct + 6)
        while threshold == correct:
            threshold = rng.randint(max(1, correct - 6), correct + 6)
    return comparator, threshold


def strategyqa_row(program: Program, rng: random.Random, qid: str, comparator: str, threshold: int) -> dict:
    """A StrategyQA-schema row (qid, term, description, question, answer, facts, decomposition, evidence)."""
    term, description, obj, group = rng.choice(_STRATEGY_TERMS)
    verbs = {"add": "gains {b} more", "sub": "loses {b}", "double": f"doubles its {group}",
             "triple": f"triples its {group}"}
    events = " and then ".join(verbs[s.op].format(b=s.operand) for s in program.steps)
    question = f"Would a {group} of {program.start} {obj} that {events} have {comparator} than {threshold} {obj}?"
    answer = _compare(program.result(), comparator, threshold)
    decomposition = [f"How many {obj} are there after step {i}?" for i in range(1, len(program.steps) + 1)]
    decomposition.append(f"Is #{len(program.steps)} {comparator} than {threshold}?")
    return {"qid": qid, "term": term, "description": description, "question": question, "answer": answer,
            "facts": strategyqa_facts(program, comparator, threshold),
            "decomposition": decomposition,
            "evidence": [[["operation"] for _ in decomposition]]}


def strategyqa_facts(program: Program, comparator: str, threshold: int, flaws: frozenset[str] = frozenset()) -> list[str]:
    trace = program.trace(flaws)
    value = trace[-1][3]
    facts = [f"{x} {op} {b} = {y}." for x, op, b, y in trace]
    holds = _compare(value, comparator, threshold)
    facts.append(f"{value} is {'' if holds else 'not '}{comparator} than {threshold}.")
    return facts


def strategyqa_solution(program: Program, style: str, comparator: str, threshold: int,
                        flaws: frozenset[str] = frozenset()) -> str:
    trace = program.trace(flaws)
    value = trace[-1][3]
    answer = "yes" if _compare(value, comparator, threshold) else "no"
    if style == "gold":
        body = " ".join(strategyqa_facts(program, comparator, threshold, flaws))
    elif style == "terse":
        sign = ">" if comparator == "more" else "<"
        body = ", ".join(f"{x}{op}{b}={y}" for x, op, b, y in trace) + f", {value}{sign}{threshold}: {answer}"
    elif style == "verify":
        lines = [f"Q{i}: {x} {op} {b} = {y}" for i, (x, op, b, y) in enumerate(trace, 1)]
        lines.append(f"Q{len(trace) + 1}: is {value} {comparator} than {threshold}? {answer}")
        body = "\n".join(lines)
    else:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    return f"{body}\n#### {answer}"
