"""MEMLGRPOTrainer: MEML-GRPO's RIEL stage as a subclass of TRL's GRPOTrainer.

Status (issue 4, in progress): multi-expert rollouts (every question sampled G times under every
expert prompt), intra-expert advantages (Eq. 4, truncation of Eq. 5) and inter-expert mutual
learning (Eqs. 7-9: ``lambda1`` times the token-mean NLL of E+'s first correct response under E-'s
prompt) are implemented; the policy loss is TRL's sequence-mean loss over all rows, which with G
rows per (question, expert) is the mean over experts of the per-expert losses. The hard-example
buffer (``meml.losses.HardExampleBuffer``) is not wired in yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from baselines.grpo_trainers import SparsityGRPOTrainer
from meml.losses import best_and_worst_experts, intra_expert_advantages, token_mean_nll
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
        lambda1: weight of the mutual-learning term (0: off).
    """

    def __init__(self, *args, expert_prompts: Sequence[str], scale_by_std: bool = False,
                 positive_only: bool = True, lambda1: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        if len(expert_prompts) < 1:
            raise ValueError("MEML-GRPO needs at least one expert prompt")
        if lambda1 < 0:
            raise ValueError(f"lambda1 must be >= 0, got {lambda1}")
        if self.args.steps_per_generation != 1 or self.num_iterations != 1:
            raise ValueError("MEML-GRPO needs steps_per_generation == 1 and num_iterations == 1")
        self.expert_prompts = list(expert_prompts)
        self.scale_by_std = scale_by_std
        self.positive_only = positive_only
        self.lambda1 = lambda1
        self._transfer: dict | None = None  # mutual-learning batch of the current step

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
        self._transfer = self.transfer_batch(expanded, output, local.view(shape)) if self.lambda1 > 0 else None
        return output

    def transfer_batch(self, rows: list[dict], output: dict, rewards: torch.Tensor) -> dict | None:
        """Per question with a valid (E+, E-): E+'s first correct completion under E-'s prompt, as tensors."""
        from trl.trainer.utils import pad

        best, worst, valid = best_and_worst_experts(rewards.cpu())
        n_experts, size = rewards.shape[1], rewards.shape[2]
        prompts, completion_rows = [], []
        for q in torch.nonzero(valid).flatten().tolist():
            first = q * n_experts * size + best[q].item() * size
            correct = [i for i in range(size) if rewards[q, best[q], i] >= 1.0]
            prompts.append(prompt_messages(rows[first]["question"], self.expert_prompts[worst[q].item()]))
            completion_rows.append(first + correct[0])
        self._metrics["train"]["mutual/questions"].append(float(len(prompts)))
        if not prompts:
            return None
        prompt_ids, _, _ = self._tokenize_prompts(prompts)
        device = output["completion_ids"].device
        prompt_tensors = [torch.tensor(ids) for ids in prompt_ids]
        index = torch.tensor(completion_rows, device=device)
        return {
            "prompt_ids": pad(prompt_tensors, padding_value=self._tokenizer.pad_token_id, padding_side="left").to(device),
            "prompt_mask": pad([torch.ones_like(t) for t in prompt_tensors], padding_value=0,
                               padding_side="left").to(device),
            "completion_ids": output["completion_ids"][index],
            "completion_mask": output["completion_mask"][index],
        }

    def mutual_learning_loss(self, model, transfer: dict) -> torch.Tensor:
        """Token-mean NLL of the transferred responses under the weak experts' prompts."""
        input_ids = torch.cat([transfer["prompt_ids"], transfer["completion_ids"]], dim=1)
        attention_mask = torch.cat([transfer["prompt_mask"], transfer["completion_mask"]], dim=1)
        logps, _, _ = self._get_per_token_logps_and_entropies(model, input_ids, attention_mask,
                                                              transfer["completion_ids"].size(1))
        return token_mean_nll(logps, transfer["completion_mask"])

    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        if self.model.training and self.lambda1 > 0:
            if self._transfer is not None:
                mutual = self.mutual_learning_loss(model, self._transfer)
                self._metrics["train"]["mutual/loss"].append(mutual.item())
                loss = loss + self.lambda1 * mutual
            else:
                self._metrics["train"]["mutual/loss"].append(0.0)
        return loss
