"""Write the synthetic benchmarks: rows in the exact schemas of GSM8K, MathQA and StrategyQA.

Each row carries one extra key ``meta`` (slice, program, task extras) that the loader keeps in
``Record.meta``; programmatic teachers read it to write their trajectories.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meml.fields import check_fields, setting
from meml.io import write_jsonl_atomic
from meml.records import TASKS
from meml.world.programs import SLICES, Difficulty, Program, ProgramSampler
from meml.world.render import (
    gsm8k_row,
    mathqa_row,
    strategyqa_row,
    strategyqa_threshold,
)


@dataclass
class WorldConfig:
    """Sizes, seed and difficulty of the synthetic world."""

    seed: int = setting("Seed of the generated questions.", 0, ge=0)
    splits: dict[str, int] = setting(
        "Items per split and task (pretrain: the tiny base's pretraining; train: SFT; rl: the RL pool; test: the "
        "tables; dev: the world check and hyperparameter choices, never read by the tables).",
        factory=lambda: {"pretrain": 3000, "train": 1000, "rl": 1000, "test": 300, "dev": 300})
    difficulty: Difficulty = setting("Chain length and size of numbers.", factory=Difficulty)

    def __post_init__(self):
        if isinstance(self.difficulty, Mapping):
            self.difficulty = Difficulty(**self.difficulty)
        check_fields(self, "world")
        for split, n in self.splits.items():
            if not isinstance(n, int) or n < len(SLICES):
                raise ValueError(f"world.splits.{split}: need an integer >= {len(SLICES)}, got {n!r}")


def _row(task: str, program: Program, rng: random.Random, item_id: str) -> dict:
    if task == "gsm8k":
        row, extras = gsm8k_row(program, rng), {}
    elif task == "mathqa":
        row, extras = mathqa_row(program, rng), {}
    elif task == "strategyqa":
        comparator, threshold = strategyqa_threshold(program, rng)
        row = strategyqa_row(program, rng, item_id, comparator, threshold)
        extras = {"comparator": comparator, "threshold": threshold}
    else:
        raise ValueError(f"unknown task {task!r}")
    row["meta"] = {"slice": program.slice(), "program": program.to_json(), **extras}
    return row


def generate_task(task: str, config: WorldConfig) -> dict[str, list[dict]]:
    """Rows of every split of one task; no question text appears in two splits."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    rng = random.Random(f"{config.seed}-{task}")
    seen: set[str] = set()
    out: dict[str, list[dict]] = {}
    d = config.difficulty
    question_key = "Problem" if task == "mathqa" else "question"
    for split, size in config.splits.items():
        sampler = ProgramSampler(d, rng)
        per_slice = [size // len(SLICES) + (1 if i < size % len(SLICES) else 0) for i in range(len(SLICES))]
        rows = []
        for slice_, count in zip(SLICES, per_slice):
            capacity = max(2, math.ceil(1.5 * count / len(sampler.reachable_answers(slice_))))
            made, repeats = 0, 0
            while made < count:
                program = sampler.sample(slice_, capacity)
                row = _row(task, program, rng, f"synth-{task}-{split}-{len(rows)}")
                if row[question_key] in seen:
                    sampler.counts[(slice_, program.result())] -= 1
                    repeats += 1
                    if repeats > 50 * count + 10_000:
                        raise ValueError(
                            f"world: slice {slice_} of {task} has too few distinct questions for split {split!r} "
                            f"({made} of {count} made): shrink world.splits or widen world.difficulty")
                    continue
                seen.add(row[question_key])
                rows.append(row)
                made += 1
        order = list(range(len(rows)))
        rng.shuffle(order)
        rows = [rows[i] for i in order]
        if task == "strategyqa":  # qids follow the shuffled order
            for i, row in enumerate(rows):
                row["qid"] = f"synth-{task}-{split}-{i}"
        out[split] = rows
    return out


def write_world(out_dir: str | Path, config: WorldConfig, tasks=TASKS) -> list[Path]:
    """Write ``<out_dir>/<task>/<split>.jsonl`` for every task and split; returns the paths."""
    paths = []
    for task in tasks:
        for split, rows in generate_task(task, config).items():
            path = Path(out_dir) / task / f"{split}.jsonl"
            write_jsonl_atomic(path, rows)
            paths.append(path)
    return paths
