"""Arithmetic programs behind every synthetic item, and the wrong procedures of the teachers.

A program is a start value and a chain of steps (add b, subtract b, double, triple, halve). All three
synthetic benchmarks render the same kind of program in their own format. The slices decide which
teacher errs where, symmetrically (issue 16):

- slice ``A`` holds add and at least one subtraction: flaw ``sub_as_add`` (expert 1) changes it;
- slice ``B`` holds add and at least one doubling: flaw ``double_as_plus2`` (expert 2) changes it;
- slice ``C`` holds add and at least one tripling: flaw ``triple_as_double`` (expert 0, the dataset-style
  rationale with a defect) changes it;
- slice ``H`` (hard) holds add and at least one halving, an operation whose cue appears in no pretraining
  or SFT item (those splits have no ``H`` items) while its arithmetic, ``x / 2``, does (the check lines of
  the ``verify`` style and the arithmetic drills). No expert's trajectories solve it: the hard-example
  buffer's territory.

So every expert is blind on one slice, right on the two others, and the experts' errors overlap only on
the hard slice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from meml.fields import check_fields, setting

OPS = ("add", "sub", "double", "triple", "halve")
SLICES = ("A", "B", "C", "H")
FLAWS = {
    "sub_as_add": "sub",  # writes 'gives away b' as x + b
    "double_as_plus2": "double",  # writes 'doubles' as x + 2
    "triple_as_double": "triple",  # writes 'triples' as x * 2
}
"""Wrong procedures a teacher may apply, and the operation each one corrupts."""

SLICE_OF_FLAW = {"sub_as_add": "A", "double_as_plus2": "B", "triple_as_double": "C"}
"""The slice each flaw corrupts: a flawed teacher's blind slice."""

HARD_SLICES: tuple[str, ...] = ("H",)
"""Slices no expert's trajectories solve (the hard-example buffer's territory)."""

SLICE_OP = {"A": "sub", "B": "double", "C": "triple", "H": "halve"}
"""The operation that defines each slice (every step is ``add`` or this one)."""

HARD_SUBSTITUTES = ("halve_as_double", "halve_as_triple", "halve_as_plus2")
"""What a model that never saw the hard cue may write instead (distractors of MathQA and StrategyQA's wrong
values on the hard slice, so a guess by analogy is graded wrong)."""


@dataclass(frozen=True)
class Step:
    """One operation; ``operand`` is b for add/sub and 2 or 3 for double/triple/halve (2)."""

    op: str
    operand: int

    def apply(self, x: int, flaws: frozenset[str] = frozenset()) -> tuple[str, int, int]:
        """Return (written operator, written operand, result) of this step under ``flaws``."""
        if self.op == "add":
            return "+", self.operand, x + self.operand
        if self.op == "sub":
            if "sub_as_add" in flaws:
                return "+", self.operand, x + self.operand
            return "-", self.operand, x - self.operand
        if self.op == "double":
            if "double_as_plus2" in flaws:
                return "+", 2, x + 2
            return "*", 2, x * 2
        if self.op == "triple":
            if "triple_as_double" in flaws:
                return "*", 2, x * 2
            return "*", 3, x * 3
        if self.op == "halve":
            if "halve_as_double" in flaws:
                return "*", 2, x * 2
            if "halve_as_triple" in flaws:
                return "*", 3, x * 3
            if "halve_as_plus2" in flaws:
                return "+", 2, x + 2
            return "/", 2, x // 2
        raise ValueError(f"unknown op {self.op!r}")


@dataclass(frozen=True)
class Program:
    """A start value and a chain of steps."""

    start: int
    steps: tuple[Step, ...]

    def trace(self, flaws: frozenset[str] = frozenset()) -> list[tuple[int, str, int, int]]:
        """Lines ``(x, written operator, written operand, result)`` of the computation."""
        lines, x = [], self.start
        for step in self.steps:
            op, b, y = step.apply(x, flaws)
            lines.append((x, op, b, y))
            x = y
        return lines

    def result(self, flaws: frozenset[str] = frozenset()) -> int:
        return self.trace(flaws)[-1][3]

    def slice(self) -> str:
        special = {s.op for s in self.steps} - {"add"}
        if len(special) == 1:
            op = special.pop()
            return next(s for s, o in SLICE_OP.items() if o == op)
        return "mixed"

    def to_json(self) -> dict:
        return {"start": self.start, "steps": [[s.op, s.operand] for s in self.steps]}

    @classmethod
    def from_json(cls, data: dict) -> "Program":
        return cls(int(data["start"]), tuple(Step(str(op), int(b)) for op, b in data["steps"]))


def wrong_procedures(program: Program) -> tuple[str, ...]:
    """The flaws (or, on the hard slice, substitutes) that touch ``program``: each changes its answer."""
    ops = {s.op for s in program.steps}
    if "halve" in ops:
        return HARD_SUBSTITUTES
    return tuple(flaw for flaw, op in FLAWS.items() if op in ops)


def _operand(op: str, rng: random.Random, difficulty: "Difficulty") -> int:
    if op in ("add", "sub"):
        return rng.randint(1, difficulty.max_operand)
    return 3 if op == "triple" else 2


@dataclass
class Difficulty:
    """The world's difficulty knob: chain length and size of numbers."""

    min_steps: int = setting("Fewest operations in a question's chain.", 2, ge=1)
    max_steps: int = setting("Most operations in a question's chain.", 3, ge=1)
    max_start: int = setting("Largest starting quantity.", 9, ge=1)
    max_operand: int = setting("Largest operand of an operation.", 5, ge=1)
    max_value: int = setting("Largest value any intermediate result may take.", 15, ge=1)
    min_answer: int = setting("Smallest final answer.", 2, ge=1)

    def __post_init__(self):
        check_fields(self, "world.difficulty")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"difficulty: need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}")
        if self.max_value < self.min_answer + 2:
            raise ValueError("difficulty: max_value too small")


@dataclass
class ProgramSampler:
    """Draws programs of a given slice with no answer shortcut.

    Every intermediate value stays in ``[1, max_value]``; every flaw that touches the program
    changes its final answer; final answers are spread evenly over ``[min_answer, max_value]``
    within each slice (each value capped near its uniform share), so no answer (0, 1, 10, ...)
    piles up for a policy to collapse onto.
    """

    difficulty: Difficulty
    rng: random.Random
    counts: dict = field(default_factory=dict)

    def _ops_for(self, slice_: str, n: int) -> list[str]:
        if slice_ not in SLICE_OP:
            raise ValueError(f"unknown slice {slice_!r}; expected one of {SLICES}")
        while True:
            ops = [self.rng.choice(("add", SLICE_OP[slice_])) for _ in range(n)]
            if SLICE_OP[slice_] in ops:
                return ops

    def _valid(self, program: Program) -> bool:
        d = self.difficulty
        x = program.start
        for step in program.steps:  # a halving needs an even number
            if step.op == "halve" and x % 2:
                return False
            x = step.apply(x)[2]
        for flaws in (frozenset(), *(frozenset([f]) for f in (*FLAWS, *HARD_SUBSTITUTES))):
            values = [y for *_, y in program.trace(flaws)]
            if any(v < 1 for v in values):
                return False
            if not flaws and any(v > d.max_value for v in values):
                return False
        answer = program.result()
        if answer < d.min_answer:
            return False
        for flaw in wrong_procedures(program):
            if program.result(frozenset([flaw])) == answer:
                return False
        return True

    def reachable_answers(self, slice_: str, tries: int = 3000) -> set[int]:
        """Final answers that valid programs of ``slice_`` reach (probed with a private RNG)."""
        probe = ProgramSampler(self.difficulty, random.Random(f"probe-{slice_}"))
        found = set()
        for _ in range(tries):
            n = probe.rng.randint(self.difficulty.min_steps, self.difficulty.max_steps)
            steps = tuple(Step(op, _operand(op, probe.rng, self.difficulty)) for op in probe._ops_for(slice_, n))
            program = Program(probe.rng.randint(2, self.difficulty.max_start), steps)
            if probe._valid(program):
                found.add(program.result())
        if not found:
            raise RuntimeError(f"no valid program for slice {slice_!r}: loosen the difficulty settings")
        return found

    def sample(self, slice_: str, capacity: int) -> Program:
        """Draw one valid program of ``slice_``; ``capacity`` caps how often one answer may recur."""
        d = self.difficulty
        for _ in range(100_000):
            n = self.rng.randint(d.min_steps, d.max_steps)
            ops = self._ops_for(slice_, n)
            steps = tuple(Step(op, _operand(op, self.rng, d)) for op in ops)
            program = Program(self.rng.randint(2, d.max_start), steps)
            if not self._valid(program):
                continue
            key = (slice_, program.result())
            if self.counts.get(key, 0) >= capacity:
                continue
            self.counts[key] = self.counts.get(key, 0) + 1
            return program
        raise RuntimeError(f"could not sample a valid program for slice {slice_!r}: loosen the difficulty settings")
