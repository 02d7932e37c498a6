"""Settings of one RL run (GRPO, Dr.GRPO, DAPO, and the GRPO run under MEML-GRPO) and their TRL translation.

A field left at ``None`` among the algorithm-specific ones (``loss_type`` ... ``dynamic_sampling``)
takes the algorithm's published value (:data:`ALGORITHM_PRESETS`) once ``algorithm`` is set; any
value given wins. The workflow's ``rl`` section is this dataclass plus its method list and
per-algorithm overrides (:class:`meml.pipeline.settings.RLSettings`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from meml.fields import check_fields, setting
from meml.methods import RL_ALGORITHMS

ALGORITHM_PRESETS: dict[str, dict] = {
    # Shao et al. 2024: group mean and std, mean over each sequence's tokens, symmetric clip.
    "GRPO": {"loss_type": "grpo", "scale_rewards": "group", "epsilon": 0.2, "epsilon_high": 0.2,
             "mask_truncated_completions": False, "overlong_buffer_length": 0, "dynamic_sampling": False},
    # Liu et al. 2025 (Dr.GRPO): no std scaling, a constant length normaliser (max completion length).
    "Dr.GRPO": {"loss_type": "dr_grpo", "scale_rewards": "none", "epsilon": 0.2, "epsilon_high": 0.2,
                "mask_truncated_completions": False, "overlong_buffer_length": 0, "dynamic_sampling": False},
    # Yu et al. 2025 (DAPO): clip-higher, token-level loss, overlong shaping (a fifth of the maximum length,
    # DAPO's 4096 of 20480) and masking, dynamic sampling.
    "DAPO": {"loss_type": "dapo", "scale_rewards": "group", "epsilon": 0.2, "epsilon_high": 0.28,
             "mask_truncated_completions": True, "overlong_buffer_length": "fifth", "dynamic_sampling": True},
}
PRESET = "None: the algorithm's published value (ALGORITHM_PRESETS)."


@dataclass
class RLConfig:
    """One RL run. Field names follow TRL's ``GRPOConfig`` where one exists."""

    algorithm: Literal["GRPO", "Dr.GRPO", "DAPO"] | None = setting(
        "GRPO, Dr.GRPO or DAPO: fills the published settings below (set per run, not in the workflow config).",
        None, setting=False)
    steps: int = setting("Optimizer steps (one generation round of `prompts_per_step` groups each).", 15, ge=1)
    epochs: float | None = setting(
        "Train this many passes over the RL rows instead of `steps`: steps = ceil(epochs x rows / prompts_per_step), "
        "rows being (question, expert prompt) pairs (MEML-GRPO: questions). The paper: 1.", None, gt=0)
    prompts_per_step: int = setting("Prompts (groups) per optimizer step.", 6, ge=1)
    num_generations: int = setting("Completions sampled per prompt (the group size G).", 8, ge=2)
    max_completion_length: int = setting("Maximum generated tokens per completion.", 128, ge=1)
    temperature: float = setting("Sampling temperature of the rollouts.", 1.0, gt=0)
    decoder: Literal["auto", "fast", "exact", "trl"] = setting(
        "How rollouts are generated. 'fast': meml.tiny.decoder's KV-cached sampler (each distinct prompt prefilled "
        "once, finished rows leave the batch, inverse-CDF draws: the same distribution as transformers' sampling, "
        "another random stream); 'exact': the same decoder reproducing transformers' generate token for token; "
        "'trl': TRL's own generation (transformers generate, or vLLM with compute.vllm.rollouts); 'auto': 'fast' "
        "for a Qwen2/Llama model the decoder supports, on one CPU process, else 'trl'.", "auto")
    shared_prompt_logprobs: bool = setting(
        "Compute each distinct prompt once in the loss's forward pass and share its keys/values across the rows of "
        "its group (equal to TRL's per-row forward up to float rounding, gradients included); used for the models "
        "and processes where 'auto' would pick the fast decoder, TRL's forward elsewhere.", True)
    learning_rate: float = setting("Peak learning rate (AdamW).", 1e-4, gt=0)
    lr_scheduler_type: str = setting("transformers scheduler name.", "constant")
    warmup_steps: int = setting("Linear warm-up steps.", 0, ge=0)
    max_grad_norm: float = setting("Gradient clipping norm.", 1.0, gt=0)
    beta: float = setting("KL coefficient to the start model (0: no reference model is loaded).", 0.0, ge=0)
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] | None = setting(
        "TRL loss aggregation: grpo (sequence mean), dr_grpo (constant normaliser), dapo (token mean over the "
        "batch). " + PRESET, None)
    scale_rewards: Literal["group", "batch", "none"] | None = setting(
        "Advantage scaling: group (divide by the group std), batch, or none. " + PRESET, None)
    epsilon: float | None = setting("Lower clip range of the importance ratio. " + PRESET, None, ge=0)
    epsilon_high: float | None = setting("Upper clip range (DAPO clip-higher: 0.28). " + PRESET, None, ge=0)
    mask_truncated_completions: bool | None = setting(
        "Exclude completions cut at the maximum length from the loss. " + PRESET, None)
    overlong_buffer_length: int | None = setting(
        "DAPO overlong shaping: length of the soft-punishment buffer before `max_completion_length` (0: off). "
        + PRESET, None, ge=0)
    dynamic_sampling: bool | None = setting(
        "DAPO dynamic sampling: drop groups whose rewards are all equal and sample more prompts until the batch "
        "is full. " + PRESET, None)
    max_sampling_rounds: int = setting(
        "Dynamic sampling: generation rounds per step at most (the first included); when the bound is hit the "
        "step trains on the groups kept so far.", 3, ge=1)
    filter_metric: Literal["accuracy", "reward"] = setting(
        "Dynamic sampling: which reward must vary within a group: 'accuracy' (DAPO's acc) or 'reward' (the "
        "total, overlong shaping included).", "accuracy")
    gradient_accumulation_steps: int = setting(
        "Micro-batches per optimizer step: each step's rollouts are generated at once and trained in this many "
        "slices (GPU memory).", 1, ge=1)
    save_steps: int = setting("Checkpoint every this many steps (resume point after a crash).", 5, ge=1)
    logging_steps: int = setting("Write a metrics row every this many steps.", 1, ge=1)
    tensorboard: bool = setting("Also log to TensorBoard (needs the tensorboard package).", False)
    seed: int = setting("Seed of sampling, data order and initialisation of the run (the workflow's seed).", 0,
                        setting=False)
    threads: int = setting("torch CPU threads (the workflow's threads_per_job).", 1, setting=False, ge=1)

    def __post_init__(self):
        check_fields(self, "rl")
        if self.algorithm is not None:
            for name, value in ALGORITHM_PRESETS[self.algorithm].items():
                if getattr(self, name) is None:
                    setattr(self, name, self.max_completion_length // 5 if value == "fifth" else value)
        if self.overlong_buffer_length is not None and self.overlong_buffer_length >= self.max_completion_length:
            raise ValueError(f"rl.overlong_buffer_length must be in [0, max_completion_length), "
                             f"got {self.overlong_buffer_length}")
        if None not in (self.epsilon, self.epsilon_high) and self.epsilon_high < self.epsilon:
            raise ValueError(f"rl.epsilon_high ({self.epsilon_high}) must be >= rl.epsilon ({self.epsilon})")

    @property
    def completions_per_step(self) -> int:
        return self.prompts_per_step * self.num_generations

    def for_algorithm(self, algorithm: str, **overrides) -> RLConfig:
        """This run as ``algorithm``: its published settings fill what is left at None, ``overrides`` win."""
        if algorithm not in RL_ALGORITHMS:
            raise ValueError(f"rl: unknown algorithm {algorithm!r}; expected one of {RL_ALGORITHMS}")
        if self.algorithm is not None:  # its presets are filled in: re-targeting would keep the old ones
            raise ValueError(f"rl: this run is already resolved as {self.algorithm}; resolve {algorithm} from the "
                             "unresolved settings (the workflow's rl section, algorithm None)")
        base = {f: getattr(self, f) for f in RLConfig.__dataclass_fields__}  # a plain RLConfig, not a subclass
        return RLConfig(**{**base, **overrides, "algorithm": algorithm})

    def for_rows(self, n_rows: int) -> RLConfig:
        """This run with ``steps`` resolved from ``epochs`` over ``n_rows`` RL rows (unchanged without epochs)."""
        if self.epochs is None:
            return self
        return replace(self, steps=max(1, math.ceil(self.epochs * n_rows / self.prompts_per_step)))

    def with_seed(self, seed: int, threads: int | None = None) -> RLConfig:
        return replace(self, seed=seed, threads=threads or self.threads)

    def per_device_batch(self, num_processes: int = 1) -> int:
        """Completions each process trains on per micro-batch; errors name the settings that do not divide."""
        slices = num_processes * self.gradient_accumulation_steps
        if self.completions_per_step % slices:
            raise ValueError(f"rl: {self.completions_per_step} completions per step (prompts_per_step x "
                             f"num_generations) do not split over {num_processes} process(es) x "
                             f"gradient_accumulation_steps {self.gradient_accumulation_steps}")
        return self.completions_per_step // slices

    def grpo_config(self, output_dir: str | Path, compute=None, **extra):
        """TRL ``GRPOConfig`` for this run on ``compute`` (a :class:`meml.training.compute.ComputeConfig`; default:
        one CPU process). One generation round per optimizer step; checkpoints every ``save_steps`` in
        ``output_dir``."""
        from trl import GRPOConfig

        from meml.training.compute import ComputeConfig

        if self.algorithm is None:
            raise ValueError("rl: a run needs its algorithm (RLConfig.for_algorithm) before it can train")
        compute = compute or ComputeConfig()
        return GRPOConfig(
            output_dir=str(output_dir),
            max_steps=self.steps,
            per_device_train_batch_size=self.per_device_batch(compute.num_processes),
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            steps_per_generation=self.gradient_accumulation_steps,
            num_generations=self.num_generations,
            max_completion_length=self.max_completion_length,
            temperature=self.temperature,
            learning_rate=self.learning_rate,
            lr_scheduler_type=self.lr_scheduler_type,
            warmup_steps=self.warmup_steps,
            max_grad_norm=self.max_grad_norm,
            beta=self.beta,
            loss_type=self.loss_type,
            scale_rewards=self.scale_rewards,
            epsilon=self.epsilon,
            epsilon_high=self.epsilon_high,
            mask_truncated_completions=self.mask_truncated_completions,
            logging_steps=self.logging_steps,
            save_strategy="steps",
            save_steps=self.save_steps,
            save_total_limit=2,
            report_to="none",  # TensorBoard, when on, is attached by meml.training.rl.train_rl
            seed=self.seed,
            data_seed=self.seed,
            dataloader_num_workers=0,
            disable_tqdm=True,
            **compute.trainer_args(),
            **compute.grpo_args(),
            **extra,
        )
