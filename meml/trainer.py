"""MEMLGRPOTrainer: MEML-GRPO's RIEL stage as a subclass of TRL's GRPOTrainer.

Status (issue 4, in progress): multi-expert rollouts (every question sampled G times under every
expert prompt), intra-expert advantages (Eq. 4, truncation of Eq. 5) and inter-expert mutual
learning (Eqs. 7-9: ``lambda1`` times the token-mean NLL of E+'s first correct response under E-'s
prompt) are implemented; the policy loss is TRL's sequence-mean loss over all rows, which with G
rows per (question, expert) is the mean over experts of the per-expert losses. Hard-example buffer
(Eq. 10): an expert with more than K of its G answers wrong offers (question, its prompt, the
reference answer); when the buffer is full, ``lambda2`` times the token-mean NLL of its items is
added to that step's loss (one SFT update, shared with the RL step) and the buffer is emptied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from baselines.grpo_trainers import SparsityGRPOTrainer
from meml.losses import HardExampleBuffer, best_and_worst_experts, intra_expert_advantages, token_mean_nll
from meml.prompts import prompt_messages
from meml.records import Record


BUFFER_STATE = "hard_example_buffer.json"  # saved in every checkpoint


def meml_rows(records: Sequence[Record]) -> list[dict]:
    """One TRL row per question; the trainer builds each expert's prompt from ``question``."""
    return [{"prompt": prompt_messages(r.question, None), "question": r.question, "answer": r.answer,
             "reference": r.rationale or "", "options": r.options or "", "slice": r.slice or "", "id": r.id}
            for r in records]


class MEMLGRPOTrainer(SparsityGRPOTrainer):
    """GRPO with N expert prompts per question and intra-expert advantages.

    Args (beyond ``GRPOTrainer``'s):
        expert_prompts: the N system prompts; each question of a batch is sampled
            ``num_generations`` times under each of them.
        scale_by_std: divide intra-expert advantages by the group's std (default off, Eq. 4).
        positive_only: keep ``max(A, 0)`` (default on, Eq. 5).
        lambda1: weight of the mutual-learning term (0: off).
        lambda2: weight of the buffer's SFT term.
        buffer: a :class:`meml.losses.HardExampleBuffer`, or None for no buffer. Items carry the
            row's ``reference`` column (the dataset rationale in ``meml_rows``).
    """

    def __init__(self, *args, expert_prompts: Sequence[str], scale_by_std: bool = False,
                 positive_only: bool = True, lambda1: float = 0.0, lambda2: float = 1.0,
                 buffer: HardExampleBuffer | None = None, **kwargs):
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
        self.lambda2 = lambda2
        self.buffer = buffer
        self.sft_updates = 0
        self._transfer: dict | None = None  # mutual-learning batch of the current step
        self._buffer_batch: dict | None = None  # buffer contents to fit in the current step

    def _save_checkpoint(self, model, trial):
        """TRL's checkpoint plus the buffer's items, RNG and SFT-update count."""
        super()._save_checkpoint(model, trial)
        folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        if self.buffer is not None and folder.is_dir():
            from meml.io import write_json_atomic

            write_json_atomic(folder / BUFFER_STATE, {**self.buffer.state(), "sft_updates": self.sft_updates})

    def load_buffer_state(self, checkpoint: str | Path) -> None:
        """Restore the buffer saved with ``checkpoint`` (no-op when absent)."""
        path = Path(checkpoint) / BUFFER_STATE
        if self.buffer is not None and path.exists():
            state = json.loads(path.read_text(encoding="utf-8"))
            self.buffer.load_state(state)
            self.sft_updates = state["sft_updates"]

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
        self._buffer_batch = self.fill_buffer(expanded, local.view(shape)) if self.buffer is not None else None
        return output

    def fill_buffer(self, rows: list[dict], rewards: torch.Tensor) -> dict | None:
        """Offer every (question, expert) group to the buffer; when it is full, its items as a batch."""
        n_experts, size = rewards.shape[1], rewards.shape[2]
        for q in range(rewards.shape[0]):
            for expert in range(n_experts):
                row = rows[(q * n_experts + expert) * size]
                n_wrong = int((rewards[q, expert] < 1.0).sum().item())
                self.buffer.offer({"question": row["question"], "expert": expert, "reference": row["reference"]},
                                  n_wrong, size)
        metrics = self._metrics["train"]
        metrics["buffer/size"].append(float(len(self.buffer.items)))
        if not self.buffer.full:
            metrics["buffer/sft_updates"].append(float(self.sft_updates))
            return None
        items = self.buffer.drain()
        self.sft_updates += 1
        metrics["buffer/sft_updates"].append(float(self.sft_updates))
        return self.sft_batch(items)

    def sft_batch(self, items: list[dict]) -> dict:
        """Tensors of (question under the item's expert prompt, reference answer + end of turn)."""
        from trl.trainer.utils import pad

        prompts = [prompt_messages(i["question"], self.expert_prompts[i["expert"]]) for i in items]
        prompt_ids, _, _ = self._tokenize_prompts(prompts)
        eos = self._tokenizer.eos_token_id
        answers = [self._tokenizer(i["reference"], add_special_tokens=False)["input_ids"] + [eos] for i in items]
        device = self.accelerator.device
        prompt_tensors = [torch.tensor(ids) for ids in prompt_ids]
        answer_tensors = [torch.tensor(ids) for ids in answers]
        pad_id = self._tokenizer.pad_token_id
        return {
            "prompt_ids": pad(prompt_tensors, padding_value=pad_id, padding_side="left").to(device),
            "prompt_mask": pad([torch.ones_like(t) for t in prompt_tensors], padding_value=0,
                               padding_side="left").to(device),
            "completion_ids": pad(answer_tensors, padding_value=pad_id, padding_side="right").to(device),
            "completion_mask": pad([torch.ones_like(t) for t in answer_tensors], padding_value=0,
                                   padding_side="right").to(device),
        }

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
        """Token-mean NLL of ``transfer``'s completions given its prompts (mutual learning, buffer SFT)."""
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
        if self.model.training and self._buffer_batch is not None:
            sft = self.mutual_learning_loss(model, self._buffer_batch)
            self._metrics["train"]["buffer/sft_loss"].append(sft.item())
            loss = loss + self.lambda2 * sft
            self._buffer_batch = None
        return loss
