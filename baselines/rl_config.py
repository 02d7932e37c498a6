"""Settings of one RL run (GRPO, Dr.GRPO or DAPO) and their translation to TRL's ``GRPOConfig``.

Precedence, lowest first: the dataclass defaults, the algorithm's published settings
(:data:`ALGORITHM_PRESETS`), the workflow config's common ``rl`` keys, and the per-algorithm
overrides under ``rl.algorithms.<name>``. Every field can be overridden from the workflow config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from meml.paths import RL_ALGORITHMS as ALGORITHMS

ALGORITHM_PRESETS: dict[str, dict] = {
    # Shao et al. 2024: group mean and std, mean over each sequence's tokens, symmetric clip.
    "GRPO": {"loss_type": "grpo", "scale_rewards": "group", "epsilon": 0.2, "epsilon_high": 0.2,
             "mask_truncated_completions": False, "overlong_buffer_length": 0, "dynamic_sampling": False},
    # Liu et al. 2025 (Dr.GRPO): no std scaling, a constant length normaliser (max completion length).
    "Dr.GRPO": {"loss_type": "dr_grpo", "scale_rewards": "none", "epsilon": 0.2, "epsilon_high": 0.2,
                "mask_truncated_completions": False, "overlong_buffer_length": 0, "dynamic_sampling": False},
    # Yu et al. 2025 (DAPO): clip-higher, token-level loss, overlong shaping and masking, dynamic sampling.
    "DAPO": {"loss_type": "dapo", "scale_rewards": "group", "epsilon": 0.2, "epsilon_high": 0.28,
             "mask_truncated_completions": True, "overlong_buffer_length": None, "dynamic_sampling": True},
}


def _help(text: str, default=None, **kwargs):
    return field(default=default, metadata={"help": text}, **kwargs)


@dataclass
class RLRunConfig:
    """One RL run. Field names follow TRL's ``GRPOConfig`` where one exists."""

    algorithm: str = _help("GRPO, Dr.GRPO or DAPO: selects the published settings below.", "GRPO")
    steps: int = _help("Optimizer steps (one generation round of `prompts_per_step` groups each).", 40)
    epochs: float | None = _help("Train this many passes over the RL rows instead of `steps`: steps = "
                                 "ceil(epochs x rows / prompts_per_step), rows being (question, expert prompt) pairs "
                                 "(MEML-GRPO: questions). The paper: 1.", None)
    prompts_per_step: int = _help("Prompts (groups) per optimizer step.", 16)
    num_generations: int = _help("Completions sampled per prompt (the group size G).", 8)
    max_completion_length: int = _help("Maximum generated tokens per completion.", 64)
    temperature: float = _help("Sampling temperature of the rollouts.", 1.0)
    learning_rate: float = _help("Peak learning rate (AdamW).", 5e-5)
    lr_scheduler_type: str = _help("transformers scheduler name.", "constant")
    warmup_steps: int = _help("Linear warm-up steps.", 0)
    max_grad_norm: float = _help("Gradient clipping norm.", 1.0)
    beta: float = _help("KL coefficient to the start model (0: no reference model is loaded).", 0.0)
    loss_type: str = _help("TRL loss aggregation: grpo (sequence mean), dr_grpo (constant normaliser), "
                           "dapo (token mean over the batch).", "grpo")
    scale_rewards: str = _help("Advantage scaling: group (divide by the group std), batch, or none.", "group")
    epsilon: float = _help("Lower clip range of the importance ratio.", 0.2)
    epsilon_high: float = _help("Upper clip range (DAPO clip-higher: 0.28).", 0.2)
    mask_truncated_completions: bool = _help("Exclude completions cut at the maximum length from the loss.", False)
    overlong_buffer_length: int | None = _help(
        "DAPO overlong shaping: length of the soft-punishment buffer before `max_completion_length` "
        "(0: off; None: a fifth of the maximum, DAPO's 4096 of 20480).", 0)
    dynamic_sampling: bool = _help("DAPO dynamic sampling: drop groups whose rewards are all equal and sample "
                                   "more prompts until the batch is full.", False)
    max_sampling_rounds: int = _help("Dynamic sampling: generation rounds per step at most (the first included); "
                                     "when the bound is hit the step trains on the groups kept so far.", 3)
    filter_metric: str = _help("Dynamic sampling: which reward must vary within a group: 'accuracy' (DAPO's "
                               "acc) or 'reward' (the total, overlong shaping included).", "accuracy")
    gradient_accumulation_steps: int = _help("Micro-batches per optimizer step: each step's rollouts are generated "
                                             "at once and trained in this many slices (GPU memory).", 1)
    save_steps: int = _help("Checkpoint every this many steps (resume point after a crash).", 10)
    logging_steps: int = _help("Write a metrics row every this many steps.", 1)
    tensorboard: bool = _help("Also log to TensorBoard (needs the tensorboard package).", False)
    seed: int = _help("Seed of sampling, data order and initialisation of the run.", 0)
    threads: int = _help("torch CPU threads.", 1)

    def __post_init__(self):
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"rl: unknown algorithm {self.algorithm!r}; expected one of {ALGORITHMS}")
        for name in ("steps", "prompts_per_step", "max_completion_length", "save_steps", "logging_steps",
                     "max_sampling_rounds", "threads", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"rl.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ValueError(f"rl.num_generations must be >= 2 (a group needs two samples), got {self.num_generations}")
        if self.learning_rate <= 0:
            raise ValueError(f"rl.learning_rate must be > 0, got {self.learning_rate}")
        if self.loss_type not in ("grpo", "dr_grpo", "dapo", "bnpo"):
            raise ValueError(f"rl.loss_type: expected grpo, dr_grpo, dapo or bnpo, got {self.loss_type!r}")
        if self.scale_rewards not in ("group", "batch", "none"):
            raise ValueError(f"rl.scale_rewards: expected group, batch or none, got {self.scale_rewards!r}")
        if self.filter_metric not in ("accuracy", "reward"):
            raise ValueError(f"rl.filter_metric: expected accuracy or reward, got {self.filter_metric!r}")
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"rl.epochs must be > 0, got {self.epochs}")
        if self.overlong_buffer_length is None:
            self.overlong_buffer_length = self.max_completion_length // 5
        if not 0 <= self.overlong_buffer_length < self.max_completion_length:
            raise ValueError(f"rl.overlong_buffer_length must be in [0, max_completion_length), "
                             f"got {self.overlong_buffer_length}")
        if self.epsilon_high < self.epsilon:
            raise ValueError(f"rl.epsilon_high ({self.epsilon_high}) must be >= rl.epsilon ({self.epsilon})")

    @property
    def completions_per_step(self) -> int:
        return self.prompts_per_step * self.num_generations

    @classmethod
    def for_algorithm(cls, algorithm: str, settings: dict | None = None) -> RLRunConfig:
        """The algorithm's published settings, then ``settings`` (common and per-algorithm keys) on top.

        ``settings`` is the workflow config's ``rl`` section: its ``algorithms.<algorithm>`` mapping
        overrides everything else; keys that are not fields are an error naming the key.
        """
        if algorithm not in ALGORITHMS:
            raise ValueError(f"rl: unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")
        settings = dict(settings or {})
        overrides = dict((settings.pop("algorithms", None) or {}).get(algorithm) or {})
        settings.pop("methods", None)
        names = {f.name for f in fields(cls)}
        for where, mapping in (("rl", settings), (f"rl.algorithms.{algorithm}", overrides)):
            unknown = sorted(set(mapping) - names)
            if unknown:
                raise ValueError(f"{where}: unknown setting(s) {unknown}; known: {sorted(names)}")
        return cls(**{**ALGORITHM_PRESETS[algorithm], **settings, **overrides, "algorithm": algorithm})

    def for_rows(self, n_rows: int) -> RLRunConfig:
        """This run with ``steps`` resolved from ``epochs`` over ``n_rows`` RL rows (unchanged without epochs)."""
        if self.epochs is None:
            return self
        return replace(self, steps=max(1, math.ceil(self.epochs * n_rows / self.prompts_per_step)))

    def with_seed(self, seed: int, threads: int | None = None) -> RLRunConfig:
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
        """TRL ``GRPOConfig`` for this run on ``compute`` (a :class:`meml.compute.ComputeConfig`; default: one CPU
        process). One generation round per optimizer step; checkpoints every ``save_steps`` in ``output_dir``."""
        from trl import GRPOConfig

        from meml.compute import ComputeConfig

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
            report_to="none",  # TensorBoard, when on, is attached by baselines.rl.train_rl
            seed=self.seed,
            data_seed=self.seed,
            dataloader_num_workers=0,
            disable_tqdm=True,
            **compute.trainer_args(),
            **compute.grpo_args(),
            **extra,
        )
