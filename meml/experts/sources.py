"""Expert trajectory sources: where each expert's training answers come from.

The paper's expert 0 is the dataset's own reasoning and experts 1 and 2 are teacher LLMs
(DeepSeek-R1, Doubao-1.5-thinking). Here a source is anything that maps records to completions:
:class:`GoldSource` (expert 0) and :class:`ProgrammaticTeacher` (the tiny world's teachers, each
with its own style and its own wrong procedure on its own slice). Teacher LLMs (``kind: openai``
or ``kind: local``, :mod:`meml.experts.teachers`) are asked once by ``meml teacher``; their source
(:class:`CachedTeacherSource`) reads the finished cache.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from meml.mathqa_options import parse_options
from meml.records import Record
from meml.world.programs import FLAWS, SLICE_OF_FLAW, Program
from meml.world.render import (
    STYLES,
    gsm8k_solution,
    mathqa_solution,
    strategyqa_solution,
)


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
        return strategyqa_solution(program, self.style, int(meta["target"]), flaws)

    def trajectories(self, records: Sequence[Record]) -> list[str | None]:
        return [self.trajectory(r) for r in records]


@dataclass
class CachedTeacherSource(TrajectorySource):
    """A teacher LLM's trajectories, read from the cache ``meml teacher`` wrote (:func:`meml.experts.teachers.run_teacher`).

    Every record must have a cached answer; a missing file or missing ids is an error that names the
    file and the command that fills it. An empty trajectory counts as none.
    """

    path: Path
    model: str
    dataset: str = "<dataset>"
    expert: int | str = "<k>"

    def __post_init__(self):
        self.path = Path(self.path)
        self.name = f"teacher:{self.model}"

    def trajectories(self, records: Sequence[Record]) -> list[str | None]:
        from meml.experts.teachers import read_cache

        command = f"run `meml teacher --dataset {self.dataset} --expert {self.expert}`"
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no teacher cache for expert {self.expert} of {self.dataset}; "
                                    f"{command} first")
        rows = read_cache(self.path, self.model)
        missing = [r.id for r in records if r.id not in rows]
        if missing:
            raise ValueError(f"{self.path}: no teacher answer for {len(missing)} of {len(records)} training item(s), "
                             f"e.g. {missing[:3]}; {command} (it asks only the missing ones)")
        return [rows[r.id]["completion"] or None for r in records]


def blind_slice(spec: Mapping) -> str | None:
    """The world slice where an ``experts.sources`` entry's trajectories apply a wrong procedure (None: none known:
    the gold rationale, a flawless programmatic teacher, or a teacher LLM)."""
    if spec.get("kind") == "programmatic" and spec.get("flaw"):
        return SLICE_OF_FLAW[spec["flaw"]]
    return None


def make_source(spec: Mapping, seed: int = 0, cache: str | Path | None = None, dataset: str = "<dataset>",
                expert: int | str = "<k>") -> TrajectorySource:
    """Build a source from an ``experts.sources`` entry.

    ``{kind: gold}``; ``{kind: programmatic, style, flaw, error_rate}``; or a teacher LLM
    ``{kind: openai, base_url, model, ...}`` / ``{kind: local, model, ...}`` (:mod:`meml.experts.teachers`),
    whose source reads its answer cache ``cache`` (:func:`meml.paths.teacher_file` of ``dataset`` and
    ``expert``, which also name the command in its errors).
    """
    kind = spec.get("kind")
    if kind == "gold":
        return GoldSource()
    if kind == "programmatic":
        return ProgrammaticTeacher(style=spec["style"], flaw=spec.get("flaw"),
                                   error_rate=float(spec.get("error_rate", 1.0)), seed=seed)
    if kind in ("openai", "local"):
        if cache is None:
            raise ValueError(f"a {kind} teacher source needs the path of its answer cache")
        return CachedTeacherSource(Path(cache), spec["model"], dataset, expert)
    raise ValueError(f"expert source kind {kind!r} unknown: expected 'gold', 'programmatic', 'openai' (an "
                     "OpenAI-compatible endpoint) or 'local' (a local model)")
