"""The ``GRPOTrainer`` every RL trainer here builds on: sparsity metrics for every run.

:class:`SparsityGRPOTrainer` (GRPO and Dr.GRPO as they are; the base of DAPO's and MEML-GRPO's
trainers) logs, per step and from the accuracy reward, the fraction of groups that are all wrong,
all right, or of zero variance, and the mean reward and all-wrong fraction per expert prompt and per
slice.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from trl import GRPOTrainer

ACCURACY = 0  # index of the accuracy reward among the reward functions: always the first


def group_outcomes(rewards: torch.Tensor, group_size: int) -> dict[str, torch.Tensor]:
    """Per-group flags from a flat reward vector laid out group after group.

    Returns boolean tensors (one entry per group): ``all_zero`` (no reward anywhere), ``all_correct``
    (every reward equals the group's maximum possible, 1), ``zero_std`` (all rewards equal).
    """
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    grouped = rewards.view(-1, group_size)
    first = grouped[:, :1]
    return {
        "all_zero": (grouped == 0).all(dim=1),
        "all_correct": (grouped >= 1).all(dim=1),
        "zero_std": torch.isclose(grouped, first.expand_as(grouped)).all(dim=1),
    }


class SparsityGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` that logs how sparse the accuracy reward is, overall and per expert and slice.

    Dataset rows may carry an ``expert`` column (index of the expert prompt) and a ``slice``
    column; their metrics are logged as ``experts/<k>/...`` and ``slices/<s>/...``.
    """

    _last_scored: tuple[list[dict], torch.Tensor] | None = None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_scored = (inputs, rewards_per_func)
        return rewards_per_func

    def _score_round(self, inputs: list[dict]) -> tuple[dict, list[dict], torch.Tensor]:
        """One generation round through TRL: (its output batch, its rows, rewards per function)."""
        self._last_scored = None
        output = super()._generate_and_score_completions(inputs)
        if self._last_scored is None:
            raise RuntimeError("TRL did not call _calculate_rewards: this TRL version is not supported")
        rows, rewards_per_func = self._last_scored
        return output, rows, rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output, rows, rewards_per_func = self._score_round(inputs)
        self._log_sparsity(rows, rewards_per_func)
        return output

    def _group_size(self) -> int:
        return self.num_generations if self.model.training else self.num_generations_eval

    def _log_sparsity(self, rows: list[dict], rewards_per_func: torch.Tensor) -> None:
        """Append this round's sparsity metrics (accuracy reward; groups of ``num_generations``)."""
        mode = "train" if self.model.training else "eval"
        size = self._group_size()
        accuracy = torch.nan_to_num(rewards_per_func[:, ACCURACY].float(), nan=0.0).cpu()
        flags = group_outcomes(accuracy, size)
        metrics = self._metrics[mode]
        metrics["sparsity/accuracy_mean"].append(accuracy.mean().item())
        for name, flag in flags.items():
            metrics[f"sparsity/frac_{name}"].append(flag.float().mean().item())
        local = len(rows) == accuracy.numel()  # single process: rows align with the gathered rewards
        if not local:
            return
        for column, prefix in (("expert", "experts"), ("slice", "slices")):
            if column not in rows[0]:
                continue
            keys = [rows[g * size][column] for g in range(len(rows) // size)]
            by_key = defaultdict(list)
            for g, key in enumerate(keys):
                by_key[key].append(g)
            grouped = accuracy.view(-1, size)
            for key, groups in sorted(by_key.items(), key=lambda kv: str(kv[0])):
                index = torch.tensor(groups)
                metrics[f"{prefix}/{key}/reward"].append(grouped[index].mean().item())
                metrics[f"{prefix}/{key}/frac_all_zero"].append(flags["all_zero"][index].float().mean().item())
