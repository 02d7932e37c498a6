"""The RL baselines: ExpertX-SFT-<algo> and MoE-SFT-<algo> for algo in GRPO, Dr.GRPO, DAPO.

- ExpertX-SFT-<algo>: every RL question under expert X's system prompt.
- MoE-SFT-<algo> (the paper's multi-expert baseline): every RL question under every expert's
  prompt, each (question, expert) pair its own group of G samples; advantages are normalised
  within that group, so experts never share a baseline. See docs/method.md.

Training, checkpoints and resume are the shared :func:`meml.training.rl.train_rl`.
"""

from __future__ import annotations

from collections.abc import Sequence

from meml.prompts import prompt_messages
from meml.records import Record
from meml.training.grpo import SparsityGRPOTrainer
from meml.training.rl import trainer_kwargs


def rl_rows(records: Sequence[Record], experts: Sequence[int], prompts: Sequence[str]) -> list[dict]:
    """TRL rows: a conversational ``prompt`` per (question, expert) plus the reward's columns."""
    rows = []
    for record in records:
        for expert in experts:
            rows.append({
                "prompt": prompt_messages(record.question, prompts[expert]),
                "answer": record.answer,
                "options": record.options or "",
                "expert": expert,
                "slice": record.slice or "",
                "id": record.id,
            })
    return rows


def build_trainer(model_path, rows: list[dict], task: str, run, trainer_dir, callbacks: Sequence = (),
                  compute=None, reward_funcs=None):
    """The TRL trainer of ``run`` (an :class:`meml.training.rl_config.RLConfig`): DAPO's dynamic-sampling
    subclass when ``run.dynamic_sampling``, else the sparsity-logging ``GRPOTrainer``."""
    from baselines.dapo import DAPOTrainer

    kwargs = trainer_kwargs(model_path, rows, task, run, trainer_dir, callbacks, compute, reward_funcs)
    if run.dynamic_sampling:
        return DAPOTrainer(**kwargs, run=run)
    return SparsityGRPOTrainer(**kwargs)
