"""DAPO's dynamic sampling on top of TRL's ``GRPOTrainer`` (TRL has none).

Groups whose rewards are all equal are dropped and new prompts are sampled (whole generation
batches, as the DAPO recipe does) until the batch is full of groups with reward variance, for at
most ``max_sampling_rounds`` rounds. When the bound is hit the step trains on the groups kept so far
(``dynamic/bound_hit`` is logged as 1). The token normaliser of the ``dapo`` loss is recomputed over
the kept completions of all processes, as TRL computes it over the unfiltered ones.

Each process draws its refill prompts from its own RNG (``sampling_seed`` alone with one process;
``"<sampling_seed>-<process index>"`` with several, so processes do not draw the same prompts), saved
per process in every checkpoint (``dynamic_sampling_rng_<process index>.json``) and restored by the
same process on resume.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from meml.training.grpo import (
    ACCURACY,
    SparsityGRPOTrainer,
    group_outcomes,
    process_seed,
)

REFILL_STATE = "dynamic_sampling_rng"  # file stem: <stem>_<process index>.json in every checkpoint of a DAPOTrainer

# Keys of TRL's rollout batch that dynamic sampling knows how to filter and concatenate.
_LEFT_PADDED = ("prompt_ids", "prompt_mask")
_RIGHT_PADDED = ("completion_ids", "completion_mask", "old_per_token_logps", "ref_per_token_logps",
                 "sampling_per_token_logps", "importance_sampling_ratio", "tool_mask")
_PER_ROW = ("advantages",)


def _pad_to(tensor: torch.Tensor, width: int, value, left: bool) -> torch.Tensor:
    missing = width - tensor.size(1)
    if missing <= 0:
        return tensor
    pad = tensor.new_full((tensor.size(0), missing, *tensor.shape[2:]), value)
    return torch.cat([pad, tensor] if left else [tensor, pad], dim=1)


def loss_token_count(batch: dict, gather: Callable | None = None) -> torch.Tensor:
    """``num_items_in_batch`` as TRL computes it: the loss tokens (completion mask times the tool mask when
    present) of this process's batch, summed over all processes through ``gather`` (``accelerator.gather``;
    None: this process alone). With several processes every process must call it (a collective)."""
    mask = batch["completion_mask"]
    if "tool_mask" in batch:
        mask = mask * batch["tool_mask"]
    count = mask.sum()
    return gather(count).sum() if gather is not None else count


def merge_rollouts(parts: list[dict], pad_token_id: int, gather: Callable | None = None) -> dict:
    """Concatenate filtered rollout batches row-wise, padding prompts on the left and completions on the right.

    ``num_items_in_batch`` (the ``dapo`` loss normaliser) is recomputed over the kept tokens only
    (:func:`loss_token_count`): of every process when ``gather`` is ``accelerator.gather`` (what the
    trainer passes, as TRL does), of ``parts`` alone without it.
    """
    keys = set(parts[0])
    for part in parts[1:]:
        if set(part) != keys:
            raise ValueError(f"rollout batches disagree on keys: {sorted(keys)} vs {sorted(part)}")
    unsupported = keys - set(_LEFT_PADDED) - set(_RIGHT_PADDED) - set(_PER_ROW) - {"num_items_in_batch"}
    if unsupported:
        raise ValueError(f"dynamic sampling cannot merge rollout fields {sorted(unsupported)} "
                         "(multimodal or tool-use rollouts are not supported)")
    merged = {}
    for key in keys - {"num_items_in_batch"}:
        tensors = [p[key] for p in parts]
        if key in _PER_ROW or tensors[0].dim() < 2:
            merged[key] = torch.cat(tensors)
            continue
        width = max(t.size(1) for t in tensors)
        value = pad_token_id if key in ("prompt_ids", "completion_ids") else (1 if key == "tool_mask" else 0)
        merged[key] = torch.cat([_pad_to(t, width, value, left=key in _LEFT_PADDED) for t in tensors])
    merged["num_items_in_batch"] = loss_token_count(merged, gather)
    return merged


def select_rows(batch: dict, rows: torch.Tensor) -> dict:
    """The rollout batch restricted to ``rows`` (a 1-D index tensor); scalars are kept as they are."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() >= 1:
            out[key] = value[rows.to(value.device)]
        else:
            out[key] = value
    return out


class DAPOTrainer(SparsityGRPOTrainer):
    """``GRPOTrainer`` with DAPO's dynamic sampling (TRL has none).

    Args (beyond ``GRPOTrainer``'s):
        run: the run's :class:`meml.training.rl_config.RLConfig`: ``max_sampling_rounds`` (generation rounds per
            step at most, the first included) and ``filter_metric`` (``"accuracy"``: the first reward function must
            vary within a group, DAPO's ``acc``; ``"reward"``: the weighted total must vary). The prompts drawn
            for the extra rounds come from a per-process stream seeded from the run's seed (module notes).
    """

    extra_state_name = REFILL_STATE

    def __init__(self, *args, run: RLConfig, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.steps_per_generation != 1 or self.num_iterations != 1:
            raise ValueError("dynamic sampling needs steps_per_generation == 1 and num_iterations == 1 "
                             "(one optimizer step per generation batch)")
        self.max_sampling_rounds = run.max_sampling_rounds
        self.filter_metric = run.filter_metric
        self._refill_rng = random.Random(process_seed(run.seed, self.accelerator.process_index,
                                                     self.accelerator.num_processes))

    def extra_state(self) -> dict:
        """The refill sampler's state (checkpointed per process, so a resumed run draws the same prompts)."""
        version, internal, gauss = self._refill_rng.getstate()
        return {"state": [version, list(internal), gauss]}

    def load_extra_state(self, state: dict) -> None:
        version, internal, gauss = state["state"]
        self._refill_rng.setstate((version, tuple(internal), gauss))

    def _refill_inputs(self, n_prompts: int) -> list[dict]:
        """``n_prompts`` fresh prompts from the training set, each repeated ``num_generations`` times."""
        dataset = self.train_dataset
        rows = []
        for index in (self._refill_rng.randrange(len(dataset)) for _ in range(n_prompts)):
            row = dataset[index]
            rows.extend(dict(row) for _ in range(self.num_generations))
        return rows

    def _varied_groups(self, rewards_per_func: torch.Tensor, size: int) -> torch.Tensor:
        """Local group indices whose filter reward is not constant."""
        if self.filter_metric == "accuracy":
            rewards = rewards_per_func[:, ACCURACY]
        else:
            rewards = (rewards_per_func * self.reward_weights.to(rewards_per_func.device)).nansum(dim=1)
        flags = group_outcomes(torch.nan_to_num(rewards.float(), nan=0.0).cpu(), size)
        n_local = rewards.numel() // size // self.accelerator.num_processes
        start = self.accelerator.process_index * n_local
        return torch.nonzero(~flags["zero_std"][start:start + n_local]).flatten()

    def _equalize_across_processes(self, kept: list[dict], kept_groups: int, size: int) -> tuple[list[dict], int]:
        """Cut every process's kept groups to the fewest any process kept (when the round bound was hit).

        The training step gathers per-row tensors across processes, which must then have one length;
        with one process nothing changes.
        """
        counts = self.accelerator.gather(torch.tensor([float(kept_groups)], device=self.accelerator.device))
        common = int(counts.min().item())
        if common >= kept_groups:
            return kept, kept_groups
        cut, left = [], common
        for part in kept:
            groups = part["advantages"].numel() // size
            if left <= 0:
                break
            take = min(groups, left)
            cut.append(part if take == groups else select_rows(part, torch.arange(take * size)))
            left -= take
        return cut, common

    def _generate_and_score_completions(self, inputs):
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        size = self.num_generations
        target = len(inputs) // size
        kept, kept_groups, rounds, sampled = [], 0, 0, 0
        first = None
        while True:
            rounds += 1
            round_inputs = inputs if rounds == 1 else self._refill_inputs(target)
            output, rows, rewards_per_func = self._score_round(round_inputs)
            sampled += len(round_inputs) // size
            if first is None:
                first = output
                self._log_sparsity(rows, rewards_per_func)
            groups = self._varied_groups(rewards_per_func, size)[: target - kept_groups]
            if len(groups):
                index = (groups[:, None] * size + torch.arange(size)[None, :]).flatten()
                kept.append(select_rows(output, index))
                kept_groups += len(groups)
            # Every process must run the same number of rounds (TRL gathers inside each round).
            done = torch.tensor([float(kept_groups >= target)], device=self.accelerator.device)
            if self.accelerator.gather(done).min().item() == 1.0 or rounds >= self.max_sampling_rounds:
                break
        kept, kept_groups = self._equalize_across_processes(kept, kept_groups, size)
        metrics = self._metrics["train"]
        metrics["dynamic/rounds"].append(float(rounds))
        metrics["dynamic/sampled_groups"].append(float(sampled))
        metrics["dynamic/kept_groups"].append(float(kept_groups))
        metrics["dynamic/bound_hit"].append(float(kept_groups < target))
        # Either every process kept groups or none did (equalised above), so every process gathers the
        # token count once, as TRL does.
        if kept:
            return merge_rollouts(kept, self._tokenizer.pad_token_id, gather=self.accelerator.gather)
        # Nothing varied in any round: train on nothing (every completion masked out of the loss).
        empty = select_rows(first, torch.arange(size))
        empty["completion_mask"] = torch.zeros_like(empty["completion_mask"])
        empty["advantages"] = torch.zeros_like(empty["advantages"])
        empty["num_items_in_batch"] = loss_token_count(empty, self.accelerator.gather)
        return empty
