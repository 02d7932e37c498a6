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
from meml.world.programs import HARD_SLICES, SLICES, Difficulty, Program, ProgramSampler
from meml.world.render import gsm8k_row, mathqa_row, strategyqa_row, strategyqa_target


@dataclass
class WorldConfig:
    """Sizes, seed and difficulty of the synthetic world."""

    seed: int = setting("Seed of the generated questions.", 0, ge=0)
    splits: dict[str, int] = setting(
        "Items per split and task (pretrain: the tiny base's pretraining; train: SFT; rl: the RL pool; test: the "
        "tables; dev: the world check and hyperparameter choices, never read by the tables).",
        factory=lambda: {"pretrain": 3000, "train": 1000, "rl": 1000, "test": 300, "dev": 300})
    difficulty: Difficulty = setting("Chain length and size of numbers.", factory=Difficulty)
    hard_share: dict[str, float] = setting(
        "Share of hard-slice items (an operation no pretraining or SFT item shows) per split; a split not named "
        "has none. The RL pool over-represents them: the hard-example buffer's territory.",
        factory=lambda: {"rl": 0.3, "test": 0.1, "dev": 0.1})

    def __post_init__(self):
        if isinstance(self.difficulty, Mapping):
            self.difficulty = Difficulty(**self.difficulty)
        check_fields(self, "world")
        soft = len(SLICES) - len(HARD_SLICES)
        for split, n in self.splits.items():
            if not isinstance(n, int) or n < soft:
                raise ValueError(f"world.splits.{split}: need an integer >= {soft}, got {n!r}")
        for split, share in self.hard_share.items():
            if not isinstance(share, (int, float)) or not 0 <= share < 1:
                raise ValueError(f"world.hard_share.{split}: need a share in [0, 1), got {share!r}")
            if split in ("pretrain", "train") and share:
                raise ValueError(f"world.hard_share.{split}: the hard slice must stay out of pretraining and SFT "
                                 "data (its cue is what no expert has seen)")

    def slice_counts(self, split: str) -> dict[str, int]:
        """Items per slice of ``split``: the hard share, the rest spread evenly over the other slices."""
        size = self.splits[split]
        hard = round(size * self.hard_share.get(split, 0.0))
        soft = [s for s in SLICES if s not in HARD_SLICES]
        rest = size - hard
        counts = {s: rest // len(soft) + (1 if i < rest % len(soft) else 0) for i, s in enumerate(soft)}
        counts.update({s: hard // len(HARD_SLICES) + (1 if i < hard % len(HARD_SLICES) else 0)
                       for i, s in enumerate(HARD_SLICES)})
        return {s: n for s, n in counts.items() if n}


def _row(task: str, program: Program, rng: random.Random, item_id: str, says_yes: bool) -> dict:
    if task == "gsm8k":
        row, extras = gsm8k_row(program, rng), {}
    elif task == "mathqa":
        row, extras = mathqa_row(program, rng), {}
    elif task == "strategyqa":
        target = strategyqa_target(program, rng, says_yes)
        row = strategyqa_row(program, rng, item_id, target)
        extras = {"target": target}
    else:
        raise ValueError(f"unknown task {task!r}")
    row["meta"] = {"slice": program.slice(), "program": program.to_json(), **extras}
    return row


def generate_task(task: str, config: WorldConfig) -> dict[str, list[dict]]:
    """Rows of every split of one task; no question text appears in two splits. StrategyQA answers alternate
    yes/no within each slice (exactly balanced: no slice cue predicts them)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    rng = random.Random(f"{config.seed}-{task}")
    seen: set[str] = set()
    out: dict[str, list[dict]] = {}
    d = config.difficulty
    question_key = "Problem" if task == "mathqa" else "question"
    for split in config.splits:
        sampler = ProgramSampler(d, rng)
        rows = []
        for slice_, count in config.slice_counts(split).items():
            capacity = max(2, math.ceil(1.5 * count / len(sampler.reachable_answers(slice_))))
            made, repeats = 0, 0
            while made < count:
                program = sampler.sample(slice_, capacity)
                row = _row(task, program, rng, f"synth-{task}-{split}-{len(rows)}", says_yes=made % 2 == 0)
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
