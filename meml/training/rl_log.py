"""The per-step metrics log of an RL run (JSON Lines, one row per logged step) and its resume rules.

Each row holds fixed, readable names for the quantities the reports use, followed by every other
metric TRL and the trainers logged under their own names:

- ``step``, ``elapsed_s`` (wall seconds of training, summed across resumed attempts)
- ``reward``, ``reward_std`` (TRL: total reward, overlong shaping included)
- ``accuracy`` (mean accuracy reward of the freshly sampled groups)
- ``frac_all_zero``, ``frac_all_correct``, ``frac_zero_std`` (fractions of groups)
- ``completion_length``, ``truncated_ratio``, ``clip_ratio_low``, ``clip_ratio_high``, ``clip_ratio_region``
- ``loss``, ``learning_rate``, ``grad_norm``, ``entropy``, ``step_time``
- ``reward_over_budget`` (completions of the step, per process, whose grading the reward's budget cut off and
  scored 0: see :mod:`meml.rewards.budget`)
- ``reward_expert<k>``, ``frac_all_zero_expert<k>`` (multi-expert rollouts), ``reward_slice<s>``, ...
- ``dynamic_rounds``, ``dynamic_kept_groups``, ``dynamic_sampled_groups``, ``dynamic_bound_hit`` (DAPO)
- ``frac_questions_all_zero`` (questions every expert got wrong in all its samples), ``mutual_loss`` (lambda1's term, 0 when no question had a valid E+/E- pair), ``mutual_questions``,
  ``buffer_size`` (before a full buffer is emptied), ``buffer_sft_updates`` (so far), ``buffer_sft_loss``
  (steps with an SFT update) (MEML-GRPO)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from transformers import TrainerCallback

CANONICAL = {
    "reward": "reward",
    "reward_std": "reward_std",
    "sparsity/accuracy_mean": "accuracy",
    "sparsity/frac_all_zero": "frac_all_zero",
    "sparsity/frac_all_correct": "frac_all_correct",
    "sparsity/frac_zero_std": "frac_zero_std",
    "sparsity/frac_questions_all_zero": "frac_questions_all_zero",
    "completions/mean_length": "completion_length",
    "completions/clipped_ratio": "truncated_ratio",
    "clip_ratio/low_mean": "clip_ratio_low",
    "clip_ratio/high_mean": "clip_ratio_high",
    "clip_ratio/region_mean": "clip_ratio_region",
    "loss": "loss",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
    "entropy": "entropy",
    "step_time": "step_time",
    "dynamic/rounds": "dynamic_rounds",
    "dynamic/kept_groups": "dynamic_kept_groups",
    "dynamic/sampled_groups": "dynamic_sampled_groups",
    "dynamic/bound_hit": "dynamic_bound_hit",
    "mutual/loss": "mutual_loss",
    "mutual/questions": "mutual_questions",
    "buffer/size": "buffer_size",
    "buffer/sft_updates": "buffer_sft_updates",
    "buffer/sft_loss": "buffer_sft_loss",
    "judge/over_budget": "reward_over_budget",
}
REQUIRED = ("step", "reward", "reward_std", "frac_all_zero", "frac_zero_std", "completion_length",
            "clip_ratio_low", "clip_ratio_high", "loss", "learning_rate", "elapsed_s")


def canonical_row(step: int, elapsed_s: float, logs: dict) -> dict:
    """A log row with the fixed names first, then the remaining raw metrics."""
    row = {"step": step, "elapsed_s": round(elapsed_s, 3)}
    for raw, name in CANONICAL.items():
        if raw in logs:
            row[name] = logs[raw]
    for raw, value in logs.items():
        if raw in CANONICAL:
            continue
        parts = raw.split("/")
        if len(parts) == 3 and parts[0] in ("experts", "slices"):
            kind = "expert" if parts[0] == "experts" else "slice"
            row[f"{parts[2]}_{kind}{parts[1]}"] = value
        else:
            row[raw] = value
    return row


def read_log(path: str | Path) -> list[dict]:
    """Rows of a metrics log; a torn last line (a killed writer) is dropped, other bad lines are errors."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            if lineno == len(lines):
                break
            raise ValueError(f"{path}:{lineno}: corrupt metrics row: {err}") from err
    return rows


def is_main_process() -> bool:
    """Rank 0 of a multi-process launch (``RANK`` set by accelerate and torchrun), or a single process."""
    return int(os.environ.get("RANK", "0")) == 0


class StepLogCallback(TrainerCallback):
    """Appends one canonical row per ``on_log`` call with rollout metrics to ``path``.

    On construction the log is cut back to the rows at or before ``resume_step`` (rows written after
    the checkpoint a resumed run restarts from would otherwise appear twice).
    """

    def __init__(self, path: str | Path, resume_step: int = 0):
        self.path = Path(path)
        self.offset = 0.0
        if is_main_process():  # under accelerate/torchrun only rank 0 writes the log
            self.path.parent.mkdir(parents=True, exist_ok=True)
            rows = [r for r in read_log(self.path) if r["step"] <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            self.offset = rows[-1]["elapsed_s"] if rows else 0.0
        self.started = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "reward" not in logs or not state.is_world_process_zero:
            return
        row = canonical_row(state.global_step, self.offset + time.monotonic() - self.started, logs)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
