"""MEMLGRPOTrainer: MEML-GRPO's RIEL stage as a subclass of TRL's GRPOTrainer.

Status (issue 4, in progress): multi-expert rollouts (every question sampled G times under every
expert prompt) and intra-expert advantages (Eq. 4, truncation of Eq. 5) are implemented; the
policy loss is TRL's sequence-mean loss over all rows, which with G rows per (question, expert)
is the mean over experts of the per-expert losses. Inter-expert mutual learning and the
hard-example buffer (``meml.losses``) are not wired in yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from baselines.grpo_trainers import SparsityGRPOTrainer
from meml.losses import intra_expert_advantages
from meml.prompts import prompt_messages
from meml.records import Record


def meml_rows(records: Sequence[Record]) -> list[dict]:
    """One TRL row per question; the trainer builds each expert's prompt from ``question``."""
    return [{"prompt": prompt_messages(r.question, None), "question": r.question, "answer": r.answer,
             "options": r.options or "", "slice": r.slice or "", "id": r.id} for r in records]


class MEMLGRPOTrainer(SparsityGRPOTrainer):
    """GRPO with N expert prompts per question and intra-expert advantages.

    Args (beyond ``GRPOTrainer``'s):
        expert_prompts: the N system prompts; each question of a batch is sampled
            ``num_generations`` times under each of them.
        scale_by_std: divide intra-expert advantages by the group's std (default off, Eq. 4).
        positive_only: keep ``max(A, 0)`` (default on, Eq. 5).
    """

    def __init__(self, *args, expert_prompts: Sequence[str], scale_by_std: bool = False,
                 positive_only: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if len(expert_prompts) < 1:
            raise ValueError("MEML-GRPO needs at least one expert prompt")
        self.expert_prompts = list(expert_prompts)
        self.scale_by_std = scale_by_std
        self.positive_only = positive_only

    def expand_to_experts(self, inputs: list[dict]) -> list[dict]:
        """Rows of G copies per question -> rows of G copies per (question, expert), question-major."""
        size = self.num_generations
        if len(inputs) % size:
            raise ValueError(f"{len(inputs)} rows do not split into groups of {size}")
        rows = []
        for start in range(0, len(inputs), size):
            row = inputs[start]
            if "question" not in row:
                raise ValueError("MEML-GRPO rows need a 'question' column (see meml.trainer.meml_rows)")
            for expert, system in enumerate(self.expert_prompts):
                expanded = {**row, "prompt": prompt_messages(row["question"], system), "expert": expert}
                rows.extend(dict(expanded) for _ in range(size))
        return rows

    def _generate_and_score_completions(self, inputs):
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        expanded = self.expand_to_experts(inputs)
        output, rows, rewards_per_func = self._score_round(expanded)
        self._log_sparsity(rows, rewards_per_func)
        rewards = (rewards_per_func * self.reward_weights.to(rewards_per_func.device)).nansum(dim=1)
        start = self.accelerator.process_index * len(expanded)
        local = rewards[start:start + len(expanded)]
        shape = (-1, len(self.expert_prompts), self.num_generations)
        advantages = intra_expert_advantages(local.view(shape), self.scale_by_std, self.positive_only)
        output["advantages"] = advantages.flatten().to(output["advantages"].device)
        return output
