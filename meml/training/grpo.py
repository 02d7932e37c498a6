"""The ``GRPOTrainer`` every RL trainer here builds on: sparsity metrics for every run.

:class:`SparsityGRPOTrainer` (GRPO and Dr.GRPO as they are; the base of DAPO's and MEML-GRPO's
trainers) logs, per step and from the accuracy reward, the fraction of groups that are all wrong,
all right, or of zero variance, and the mean reward and all-wrong fraction per expert prompt and per
slice.

It also carries per-process extra state through TRL's own checkpoint hooks: a subclass that names an
``extra_state_name`` and implements :meth:`~SparsityGRPOTrainer.extra_state` /
:meth:`~SparsityGRPOTrainer.load_extra_state` gets ``<extra_state_name>_<process index>.json`` written
by every process into each checkpoint (from transformers' ``_save_optimizer_and_scheduler``, which
every process calls while checkpointing) and read back by the same process on
``train(resume_from_checkpoint=...)`` (from ``_load_optimizer_and_scheduler``, which every process
calls before the first resumed step).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections import defaultdict
from pathlib import Path

import torch
from trl import GRPOTrainer

from meml.training.trl_compat import ensure_trl_surface

log = logging.getLogger(__name__)

def process_seed(seed: int, process_index: int, num_processes: int) -> int | str:
    """Seed of a per-process RNG (DAPO's refill sampler, MEML's buffer): ``seed`` itself with one process (the
    single-process stream), ``"<seed>-<process_index>"`` with several (distinct streams; ``random.Random`` hashes
    str seeds with SHA-512, the same in every run)."""
    return seed if num_processes == 1 else f"{seed}-{process_index}"


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
    extra_state_name: str | None = None  # file stem of the per-process checkpoint state (None: none)

    def __init__(self, *args, shared_prompt_logprobs: bool = False, **kwargs):
        """``shared_prompt_logprobs``: answer TRL's log-prob calls with :func:`meml.tiny.decoder.prompt_shared_logps`
        (each distinct prompt computed once per batch) where it applies; ``rollout_func`` (TRL's) may be the tiny
        decoder's (:mod:`meml.training.fast_paths`), whose experimental-feature warning is not repeated here."""
        ensure_trl_surface()  # one clear error up front when TRL's private members moved
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You are using 'rollout_func'", category=UserWarning)
            super().__init__(*args, **kwargs)
        self.shared_prompt_logprobs = shared_prompt_logprobs

    # ------------------------------------------------------------------ prompt-shared log-probs

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **multimodal):
        shared = (self.shared_prompt_logprobs and not compute_aux_loss
                  and all(value is None for value in multimodal.values())
                  and model is self.accelerator.unwrap_model(model))
        if shared:
            prompt_length = input_ids.size(1) - logits_to_keep
            distinct = torch.unique(torch.cat([input_ids[:, :prompt_length], attention_mask[:, :prompt_length]], 1),
                                    dim=0).size(0)
            shared = prompt_length > 0 and distinct < input_ids.size(0)
        if not shared:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, compute_aux_loss,
                **multimodal)
        from meml.tiny.decoder import prompt_shared_logps

        # the whole batch in one pass (TRL's batch_size chunking bounds the memory of models far larger than these)
        with self.accelerator.autocast():
            logps, entropies = prompt_shared_logps(model, input_ids, attention_mask, logits_to_keep,
                                                   temperature=self.args.temperature, compute_entropy=compute_entropy)
        return logps, entropies, None

    # ------------------------------------------------------------------ per-process checkpoint state

    def extra_state(self) -> dict | None:
        """This process's JSON-able state to checkpoint beside TRL's (None: nothing to save)."""
        return None

    def load_extra_state(self, state: dict) -> None:
        """Restore what :meth:`extra_state` returned, read back from a checkpoint by the same process."""

    def extra_state_path(self, checkpoint: str | Path, process_index: int | None = None) -> Path:
        """``<checkpoint>/<extra_state_name>_<process index>.json`` (this process's when no index is given)."""
        index = self.args.process_index if process_index is None else process_index
        return Path(checkpoint) / f"{self.extra_state_name}_{index}.json"

    def _save_optimizer_and_scheduler(self, output_dir):
        super()._save_optimizer_and_scheduler(output_dir)
        state = self.extra_state() if self.extra_state_name else None
        if state is not None:  # every process writes its own file: no two processes write the same path
            from meml.io import write_json_atomic

            write_json_atomic(self.extra_state_path(output_dir), state)  # creates the folder if rank 0 has not yet

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None or not self.extra_state_name or self.extra_state() is None:
            return  # nothing to resume, or no state kept by this trainer
        path = self.extra_state_path(checkpoint)
        legacy = Path(checkpoint) / f"{self.extra_state_name}.json"  # one file for all processes (before per-process files)
        if not path.exists() and self.args.world_size <= 1 and legacy.exists():
            path = legacy
        if not path.exists():
            log.warning("%s has no %s for process %d: its state starts afresh (was the run launched on another "
                        "number of processes?)", checkpoint, path.name, self.args.process_index)
            return
        self.load_extra_state(json.loads(path.read_text(encoding="utf-8")))

    # ------------------------------------------------------------------ sparsity metrics

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
