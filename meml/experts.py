"""Expert trajectory sources: where each expert's training answers come from.

The paper's expert 0 is the dataset's own reasoning and experts 1 and 2 are teacher LLMs
(DeepSeek-R1, Doubao-1.5-thinking). Here a source is anything that maps records to completions:
:class:`GoldSource` (expert 0) and :class:`ProgrammaticTeacher` (the tiny world's teachers, each
with its own style and its own wrong procedure on its own slice). A teacher-LLM source plugs in
through the same :class:`TrajectorySource` interface.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from meml.options import parse_options
from meml.records import Record
from meml.world.programs import FLAWS, Program
from meml.world.render import STYLES, gsm8k_solution, mathqa_solution, strategyqa_solution


class TrajectorySource(ABC):
    """Produces one expert's completion (reasoning ending in ``#### <answer>``) per record."""

    name: str = "source"

    @abstractmethod
    def trajectories(self, records: Sequence[Record]) -> list[str | None]:
        """One completion per record, or None where the source has none."""


class GoldSource(TrajectorySource):
    """Expert 0: the dataset's own reference reasoning (``Record.rationale``)."""

    name = "gold"

    def trajectories(self, records: Sequence[Record]) -> list[str | None]:
        return [r.rationale for r in records]


@dataclass
class ProgrammaticTeacher(TrajectorySource):
    """A synthetic teacher: writes in ``style`` and applies its wrong procedure ``flaw``.

    On an item whose program holds the operation the flaw corrupts (its slice), the teacher
    applies the flaw with probability ``error_rate``; elsewhere it is right. The draw is seeded
    per (seed, record id), so trajectories are reproducible and independent of order.
    """

    style: str
    flaw: str | None = None
    error_rate: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"teacher style {self.style!r} not in {STYLES}")
        if self.flaw is not None and self.flaw not in FLAWS:
            raise ValueError(f"teacher flaw {self.flaw!r} not in {tuple(FLAWS)}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"teacher error_rate must be in [0, 1], got {self.error_rate}")
        self.name = f"{self.style}" + (f"+{self.flaw}@{self.error_rate:g}" if self.flaw else "")

    def flaws_for(self, record: Record, program: Program) -> frozenset[str]:
        if self.flaw is None or not any(s.op == FLAWS[self.flaw] for s in program.steps):
            return frozenset()
        draw = random.Random(f"{self.seed}-{record.dataset}-{record.id}").random()
        return frozenset([self.flaw]) if draw < self.error_rate else frozenset()

    def trajectory(self, record: Record) -> str:
        if not record.meta:
            raise ValueError(
                f"record {record.id!r} of {record.dataset!r} has no synthetic program in 'meta': "
                "programmatic teachers only work on the synthetic datasets"
            )
        meta = json.loads(record.meta)
        program = Program.from_json(meta["program"])
        flaws = self.flaws_for(record, program)
        if record.task == "gsm8k":
            return gsm8k_solution(program, self.style, flaws)
        if record.task == "mathqa":
            return mathqa_solution(program, self.style, parse_options(record.options), flaws)
        return strategyqa_solution(program, self.style, meta["comparator"], int(meta["threshold"]), flaws)

    def trajectories(self, records: Sequence[Record]) -> list[str | None]:
        return [self.trajectory(r) for r in records]


def make_source(spec: Mapping, seed: int = 0) -> TrajectorySource:
    """Build a source from a config mapping ``{kind: gold}`` or ``{kind: programmatic, style, flaw, error_rate}``."""
    kind = spec.get("kind")
    if kind == "gold":
        return GoldSource()
    if kind == "programmatic":
        return ProgrammaticTeacher(style=spec["style"], flaw=spec.get("flaw"),
                                   error_rate=float(spec.get("error_rate", 1.0)), seed=seed)
    raise ValueError(f"expert source kind {kind!r} unknown: expected 'gold' or 'programmatic' "
                     "(teacher-LLM sources come with the paper setting)")
