"""Arithmetic drills for the tiny base model's pretraining.

A pretrained hub model already knows its arithmetic; a tiny model has to learn it. Learning every
fact from whole word problems costs ~85 tokens for 2-3 facts; a drill row packs a dozen facts in
the same tokens, in every written form the experts use (``7+3=10``, ``7 + 3 = 10``,
``7+3 = <<7+3=10>>10``), so the base masters the computations cheaply and what separates the
experts later is only the procedure. Rows also hold comparisons of two numbers, equal or near misses
(``12 vs 12 yes``, ``12 vs 13 no``): the step MathQA's option scan and StrategyQA's "exactly N?" verdict
end on.
"""

from __future__ import annotations

import random

from meml.world.programs import Difficulty

DRILL_PROMPT = "Practice arithmetic."


def arithmetic_facts(difficulty: Difficulty) -> list[tuple[int, str, int, int]]:
    """Every (x, op, b, y) a right or flawed procedure can write in this world."""
    top = difficulty.max_value + difficulty.max_operand  # flawed procedures may overshoot max_value
    facts = []
    for x in range(1, top + 1):
        for b in range(1, max(difficulty.max_operand, 2) + 1):
            facts.append((x, "+", b, x + b))
            if x - b >= 1:
                facts.append((x, "-", b, x - b))
        for k in (2, 3):
            if x * k <= 3 * top:
                facts.append((x, "*", k, x * k))
            if x % k == 0:
                facts.append((x, "/", k, x // k))
    return facts


def comparison(rng: random.Random, top: int) -> str:
    """``x vs y yes`` (equal, half the time) or ``x vs y no`` with y a near miss of x."""
    x = rng.randint(1, top)
    if rng.random() < 0.5:
        return f"{x} vs {x} yes"
    y = x + rng.choice((-1, 1)) * rng.randint(1, 4)
    return f"{x} vs {y if y >= 1 else x + 1} no"


def _write(fact: tuple[int, str, int, int], form: int) -> str:
    x, op, b, y = fact
    if form == 0:
        return f"{x}{op}{b}={y}"
    if form == 1:
        return f"{x} {op} {b} = {y}"
    return f"{x}{op}{b} = <<{x}{op}{b}={y}>>{y}"


def drill_rows(difficulty: Difficulty, n_rows: int, seed: int, facts_per_row: int = 12) -> list[str]:
    """``n_rows`` drill texts, each ``facts_per_row`` facts in mixed written forms, one per line."""
    rng = random.Random(f"drills-{seed}")
    facts = arithmetic_facts(difficulty)
    top = difficulty.max_value + difficulty.max_operand
    rows = []
    for _ in range(n_rows):
        lines = [_write(rng.choice(facts), rng.randrange(3)) if rng.random() < 0.75 else comparison(rng, top)
                 for _ in range(facts_per_row)]
        rows.append("\n".join(lines))
    return rows
