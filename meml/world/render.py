"""Render programs as benchmark rows (original schemas) and as solutions in three reasoning styles.

Styles (one per expert, as the paper's teachers differ in style):

- ``gold``: the dataset's own reference reasoning (GSM8K calculator lines, MathQA rationale,
  StrategyQA facts); the rows' rationale (always right) and expert 0's style (with its defect on slice C).
- ``terse``: one short line of arithmetic, then the answer; expert 1 by default.
- ``verify``: numbered steps, then a check that works the last step backwards; expert 2.

MathQA solutions compute the value, then scan the (ascending) options for it in the style's own words
(``a ) 12 vs 15 no , b ) 15 vs 15 yes``), then name the letter: a lookup from value to letter is what a tiny model cannot
learn, a scan it can. StrategyQA asks "exactly N?", N the answer or a wrong procedure's value at 50/50; every
style writes its value and N side by side before the verdict, so the verdict compares two adjacent numbers.
Every solution ends with ``#### <answer>``.
"""

from __future__ import annotations

import random

from meml.mathqa_options import LETTERS, format_options
from meml.world.programs import Program, wrong_procedures

STYLES = ("gold", "terse", "verify")

NAMES = (("Mia", "She"), ("Tom", "He"), ("Ava", "She"), ("Leo", "He"), ("Zoe", "She"), ("Sam", "He"),
         ("Ivy", "She"), ("Max", "He"))
OBJECTS = ("marbles", "apples", "stickers", "coins", "cards", "shells", "pens", "books")

_GSM8K_CUES = {
    "add": ("{P} finds {b} more.", "{P} gets {b} more.", "{P} receives {b} more."),
    "sub": ("{P} gives away {b}.", "{P} loses {b}."),
    "double": ("{P} doubles the {obj}.",),
    "triple": ("{P} triples the {obj}.",),
    "halve": ("{P} halves the {obj}.",),
}
_MATHQA_CONTEXTS = (
    # (category, opening, add cue, sub cue, double cue, triple cue, halve cue, question)
    ("gain", "a shop has {x} {obj} in stock .", "it buys {b} more", "it sells {b}", "it doubles its stock",
     "it triples its stock", "it halves its stock", "how many {obj} does the shop have now ?"),
    ("gain", "a trader owns {x} {obj} .", "he receives {b} more", "he sells {b}", "he doubles his stock",
     "he triples his stock", "he halves his stock", "how many {obj} does the trader own now ?"),
    ("general", "a number starts at {x} .", "it is increased by {b}", "it is decreased by {b}", "it is doubled",
     "it is tripled", "it is halved", "what is the final number ?"),
    ("general", "a box holds {x} {obj} .", "{b} {obj} are added", "{b} {obj} are removed", "the count is doubled",
     "the count is tripled", "the count is halved", "how many {obj} are in the box ?"),
    ("gain", "a farm keeps {x} {obj} .", "it gets {b} more", "it sells {b}", "it doubles the {obj}",
     "it triples the {obj}", "it halves the {obj}", "how many {obj} does the farm keep now ?"),
    ("general", "a bag contains {x} {obj} .", "{b} {obj} are put in", "{b} {obj} are taken out",
     "the number of {obj} is doubled", "the number of {obj} is tripled", "the number of {obj} is halved",
     "how many {obj} does the bag contain ?"),
    ("general", "a club has {x} {obj} .", "members bring {b} {obj}", "{b} {obj} are lost",
     "the club doubles its {obj}", "the club triples its {obj}", "the club halves its {obj}",
     "how many {obj} does the club have now ?"),
    ("physics", "a tank holds {x} litres of water .", "{b} litres are added", "{b} litres leak out",
     "the amount of water is doubled", "the amount of water is tripled", "the amount of water is halved",
     "how many litres does the tank hold now ?"),
    ("physics", "a car has driven {x} km .", "it drives {b} km more", "it goes back {b} km",
     "the distance is doubled", "the distance is tripled", "the distance is halved",
     "how far from the start is the car now ?"),
)
_STRATEGY_TERMS = (
    ("Goat", "Domesticated mammal", "goats", "herd"), ("Library", "Collection of books", "books", "collection"),
    ("Orchard", "Planted area of fruit trees", "trees", "orchard"), ("Aquarium", "Tank for keeping fish", "fish", "tank"),
    ("Sheep", "Domesticated ruminant", "sheep", "flock"), ("Stamp collecting", "Hobby", "stamps", "album"),
    ("Bakery", "Shop that sells bread", "loaves", "stock"), ("Garden", "Planned outdoor space", "roses", "garden"),
    ("Hen house", "Shelter for chickens", "hens", "coop"), ("Bookshop", "Shop that sells books", "novels", "shelf"),
    ("Stable", "Building for horses", "horses", "stable"), ("Pond", "Small body of still water", "ducks", "pond"),
    ("Vineyard", "Plantation of grapevines", "vines", "vineyard"), ("Beehive", "Home of a bee colony", "frames",
                                                                      "hive"),
    ("Toy shop", "Shop that sells toys", "dolls", "display"), ("Zoo", "Park of kept animals", "zebras", "enclosure"),
    ("Florist", "Shop that sells flowers", "tulips", "bouquet"), ("Dairy farm", "Farm that keeps cows", "cows",
                                                                   "herd"),
    ("Bike shop", "Shop that sells bicycles", "bikes", "rack"), ("Pet shop", "Shop that sells pets", "rabbits",
                                                                  "hutch"),
)


def _inverse(x: int, op: str, b: int, y: int) -> str:
    inv = {"+": "-", "-": "+", "*": "/", "/": "*"}[op]
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
    """Five distinct positive values in ascending order (as most MathQA option lists are): the answer, the
    value of the wrong procedure that touches the program (a flawed expert finds its own value among them; on the
    hard slice, as many of the guesses by analogy as fit) and near misses. The answer's rank, and so its letter,
    is uniform over the ranks the flawed value leaves possible (four of five: ``sub_as_add`` always overshoots,
    the other flaws undershoot), so neither a letter nor "the middle value" is a shortcut."""
    answer = program.result()
    hard = "halve" in {s.op for s in program.steps}
    wrong = [program.result(frozenset([w])) for w in wrong_procedures(program)]
    wrong = sorted(set(wrong) - {answer}, key=wrong.index)
    forced = [] if hard else wrong
    below = sum(v < answer for v in forced)
    above = len(forced) - below
    low_pool = [v for v in range(max(1, answer - 8), answer) if v not in forced]
    high_pool = [v for v in range(answer + 1, answer + 9) if v not in forced]
    ranks = [r for r in range(5) if 0 <= r - below <= len(low_pool) and 0 <= 4 - r - above <= len(high_pool)]
    rank = rng.choice(ranks)
    if hard:  # guesses by analogy (all above the answer) where the rank leaves room
        forced = [v for v in wrong if v > answer][:4 - rank]
        above = len(forced)
        high_pool = [v for v in high_pool if v not in forced]
    lows = rng.sample(low_pool, rank - below)
    highs = rng.sample(high_pool, 4 - rank - above)
    values = sorted(forced + lows + highs + [answer])
    assert len(values) == 5 and values.index(answer) == rank, (values, answer, rank)
    return {letter: str(v) for letter, v in zip(LETTERS, values)}, LETTERS[rank]


def mathqa_scan(options: dict[str, str], value: str, style: str) -> str:
    """The option-by-option scan of ``style`` that finds ``value``. Every entry copies the option as the question
    writes it (``b ) 15``: the label pair, not a bare letter, points back at its value; the letter alone also
    occurs in the question's words) and writes the sought value beside it before its verdict, so each verdict
    compares two adjacent numbers (a tiny model learns that; it does not learn a lookup from a value to a
    letter)."""
    letters = list(options)
    stop = next((i for i, k in enumerate(letters) if options[k] == value), None)
    if stop is None:
        raise ValueError(f"value {value} is not among the options {options}")
    seen = letters[:stop + 1]
    if style == "gold":
        return " , ".join(f"{k} ) {options[k]} vs {value} {'yes' if k == seen[-1] else 'no'}" for k in seen)
    if style == "terse":
        return " ".join(f"{k} ) {options[k]}~{value}" for k in seen)
    return "scan : " + " ; ".join(f"{k} ) {options[k]} ? {value} {'yes' if k == seen[-1] else 'no'}" for k in seen)


def _mathqa_formulas(program: Program) -> tuple[str, str]:
    names = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
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
    cue_of = dict(zip(("add", "sub", "double", "triple", "halve"), cues))
    obj = rng.choice(OBJECTS)
    clauses = [cue_of[s.op].format(b=s.operand, obj=obj) for s in program.steps]
    text = opening.format(x=program.start, obj=obj) + " first " + " , then ".join(clauses) + " . " + question.format(obj=obj)
    options, correct = _mathqa_options(program, rng)
    annotated, linear = _mathqa_formulas(program)
    rationale = '"' + mathqa_solution(program, "gold", options).rsplit("\n", 1)[0] + '"'
    return {"Problem": text, "Rationale": rationale, "options": format_options(options), "correct": correct,
            "annotated_formula": annotated, "linear_formula": linear, "category": category}


def mathqa_solution(program: Program, style: str, options: dict[str, str], flaws: frozenset[str] = frozenset()) -> str:
    """The computation in ``style``, then the scan of the options for its value, then the letter."""
    trace = program.trace(flaws)
    value = str(trace[-1][3])
    letter = next((k for k, v in options.items() if v == value), None)
    if letter is None:
        raise ValueError(f"value {value} is not among the options {options}")
    scan = mathqa_scan(options, value, style)
    if style == "gold":
        body = " , ".join(f"{x} {op} {b} = {y}" for x, op, b, y in trace) + f" . {scan} . answer {letter}"
    elif style == "terse":
        body = " , ".join(f"{x}{op}{b}={y}" for x, op, b, y in trace) + f" ; {scan} so {letter}"
    elif style == "verify":
        lines = [f"step {i} : {x} {op} {b} = {y}" for i, (x, op, b, y) in enumerate(trace, 1)]
        lines.append("check : " + _inverse(*trace[-1]))
        lines.append(scan)
        body = "\n".join(lines)
    else:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    return f"{body}\n#### {letter}"


# --------------------------------------------------------------------------- StrategyQA


def strategyqa_target(program: Program, rng: random.Random, says_yes: bool) -> int:
    """The N of "exactly N?": the answer when ``says_yes``, else the value of a wrong procedure that touches the
    program (so the flawed expert answers yes where the truth is no, and no where it is yes)."""
    if says_yes:
        return program.result()
    return program.result(frozenset([rng.choice(wrong_procedures(program))]))


def strategyqa_row(program: Program, rng: random.Random, qid: str, target: int) -> dict:
    """A StrategyQA-schema row (qid, term, description, question, answer, facts, decomposition, evidence)."""
    term, description, obj, group = rng.choice(_STRATEGY_TERMS)
    verbs = {"add": "gains {b} more", "sub": "loses {b}", "double": f"doubles its {group}",
             "triple": f"triples its {group}", "halve": f"halves its {group}"}
    events = " and then ".join(verbs[s.op].format(b=s.operand) for s in program.steps)
    question = f"Would a {group} of {program.start} {obj} that {events} end up with exactly {target} {obj}?"
    decomposition = [f"How many {obj} are there after step {i}?" for i in range(1, len(program.steps) + 1)]
    decomposition.append(f"Is #{len(program.steps)} equal to {target}?")
    return {"qid": qid, "term": term, "description": description, "question": question,
            "answer": program.result() == target, "facts": strategyqa_facts(program, target),
            "decomposition": decomposition, "evidence": [[["operation"] for _ in decomposition]]}


def strategyqa_facts(program: Program, target: int, flaws: frozenset[str] = frozenset()) -> list[str]:
    trace = program.trace(flaws)
    value = trace[-1][3]
    facts = [f"{x} {op} {b} = {y}." for x, op, b, y in trace]
    facts.append(f"{value} and {target} {'are equal' if value == target else 'differ'}.")
    return facts


def strategyqa_solution(program: Program, style: str, target: int, flaws: frozenset[str] = frozenset()) -> str:
    trace = program.trace(flaws)
    value = trace[-1][3]
    answer = "yes" if value == target else "no"
    if style == "gold":
        body = " ".join(strategyqa_facts(program, target, flaws))
    elif style == "terse":
        body = ", ".join(f"{x}{op}{b}={y}" for x, op, b, y in trace) + f", {value} vs {target}: {answer}"
    elif style == "verify":
        lines = [f"Q{i}: {x} {op} {b} = {y}" for i, (x, op, b, y) in enumerate(trace, 1)]
        lines.append(f"Q{len(trace) + 1}: is {value} equal to {target}? {answer}")
        body = "\n".join(lines)
    else:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    return f"{body}\n#### {answer}"
