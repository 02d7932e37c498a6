"""Settings of one MEML-GRPO (RIEL) run, in the style of TRL's config dataclasses.

The policy-gradient side (steps, group size, lengths, learning rate, clip, beta) is the GRPO run of
the workflow's ``rl`` section (:class:`baselines.rl_config.RLRunConfig`); this dataclass holds what
MEML adds. Table 5's switches (MoE, HSFT, IML) come from the method name
(:func:`meml.paths.meml_variant`), so each ablation row is one method of ``meml.methods``.
See docs/method.md for the reason behind every default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from meml.paths import MEMLVariant, meml_variant

WORKFLOW_KEYS = ("methods", "report_expert")  # keys of the workflow's `meml` section that are not run settings


def _help(text: str, default=None, **kwargs):
    return field(default=default, metadata={"help": text}, **kwargs)


@dataclass
class MEMLConfig:
    """MEML-GRPO's RIEL stage on top of a GRPO run."""

    questions_per_step: int | None = _help(
        "Questions per optimizer step, each sampled under every expert prompt. None: ceil(rl.prompts_per_step / "
        "experts), so a step holds about as many (question, expert) groups as the multi-expert GRPO baseline.")
    rollout_budget: str = _help(
        "'per_expert': each expert samples rl.num_generations (G) answers per question (the paper); 'shared': the "
        "G answers are split evenly, G/N per expert (G must be a multiple of N).", "per_expert")
    scale_by_std: bool = _help("Divide intra-expert advantages by the expert group's std (Eq. 4 has none).", False)
    positive_only: bool = _help("Non-negative truncation max(A, 0) of Eq. 5: only better-than-mean answers "
                                "are reinforced.", True)
    lambda1: float = _help("Weight of the inter-expert mutual-learning term (IML).", 1.0)
    transfer: str = _help("Which correct answers of the best expert E+ are taught to the worst expert E-: "
                          "'first' (one) or 'all'.", "first")
    teacher_term: bool = _help("Add + log p(O+ | Q, P+) with stop-gradient to the mutual-learning term "
                               "(changes its value, not its gradient; reuses the rollout's log-probs).", False)
    lambda2: float = _help("Weight of the hard-example buffer's SFT term (HSFT).", 1.0)
    buffer_k: int = _help("An expert with more than K wrong of its G answers offers the question (K = 6 at "
                          "G = 8 reported).", 6)
    buffer_rule: str = _help("'gt': more than K wrong (the paper's wording); 'ge': at least K.", "gt")
    buffer_probability: str = _help("'k_over_g': an offered item enters with probability K/G (Eq. 10); "
                                    "'always'.", "k_over_g")
    buffer_capacity: int = _help("Buffer size B: when it holds B items, one SFT update on them, then it is "
                                 "emptied (64 reported for 1.5B models and a full dataset).", 16)
    buffer_reference: str = _help(
        "The answer the buffer trains on: 'rationale' (the dataset's reference solution) or 'own_rollout' (one "
        "of the expert's own correct answers of that step; the item is skipped when it has none).", "rationale")
    num_experts: int | None = _help(
        "With MoE on: RIEL samples under the first k expert prompts only (None: every configured expert). The "
        "start model is still the MoE-SFT model of all experts; mutual learning needs k >= 2.")
    single_expert: int | None = _help("Set from the method name: None = MoE (every expert), k = expert k only.")
    hsft: bool = _help("Set from the method name: the hard-example buffer is used.", True)
    iml: bool = _help("Set from the method name: inter-expert mutual learning is used.", True)

    def __post_init__(self):
        if self.questions_per_step is not None and self.questions_per_step < 1:
            raise ValueError(f"meml.questions_per_step must be >= 1 or null, got {self.questions_per_step}")
        choices = {"rollout_budget": ("per_expert", "shared"), "transfer": ("first", "all"),
                   "buffer_rule": ("gt", "ge"), "buffer_probability": ("k_over_g", "always"),
                   "buffer_reference": ("rationale", "own_rollout")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"meml.{name}: expected one of {allowed}, got {getattr(self, name)!r}")
        for name in ("lambda1", "lambda2"):
            if getattr(self, name) < 0:
                raise ValueError(f"meml.{name} must be >= 0, got {getattr(self, name)}")
        if self.num_experts is not None and self.num_experts < 1:
            raise ValueError(f"meml.num_experts must be >= 1 or null, got {self.num_experts}")
        if self.buffer_k < 0 or self.buffer_capacity < 1:
            raise ValueError(f"meml.buffer_k must be >= 0 and meml.buffer_capacity >= 1, got "
                             f"{self.buffer_k}, {self.buffer_capacity}")

    @classmethod
    def for_method(cls, method: str, settings: dict | None = None) -> MEMLConfig:
        """The workflow's ``meml`` section with the switches of ``method``; unknown keys name the key."""
        variant = meml_variant(method)
        if variant is None:
            raise ValueError(f"{method!r} is not a MEML-GRPO method (MEML-GRPO[-Expert<k>][-noHSFT][-noIML])")
        settings = {k: v for k, v in (settings or {}).items() if k not in WORKFLOW_KEYS}
        names = {f.name for f in fields(cls)} - {"single_expert", "hsft", "iml"}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise ValueError(f"meml: unknown setting(s) {unknown}; known: {sorted(names)}")
        return cls(**settings).with_variant(variant)

    def with_variant(self, variant: MEMLVariant) -> MEMLConfig:
        return replace(self, single_expert=variant.single_expert, hsft=variant.hsft, iml=variant.iml)

    def experts(self, n_experts: int) -> list[int]:
        """The expert prompts the rollouts use."""
        if self.single_expert is None:
            k = self.num_experts or n_experts
            if k > n_experts or (self.iml and k < 2):
                raise ValueError(f"meml.num_experts = {k}: needs {'2' if self.iml else '1'} to {n_experts} experts "
                                 f"(the configured expert prompts){'; mutual learning needs two' if self.iml else ''}")
            return list(range(k))
        if self.single_expert >= n_experts:
            raise ValueError(f"MEML single expert {self.single_expert}: only {n_experts} experts are configured")
        return [self.single_expert]

    def generations_per_expert(self, num_generations: int, n_experts: int) -> int:
        """G per expert: G, or G/N under the shared budget (an error names the keys when it does not divide)."""
        if self.rollout_budget == "per_expert":
            return num_generations
        if num_generations % n_experts or num_generations // n_experts < 2:
            raise ValueError(f"meml.rollout_budget 'shared' needs rl.num_generations ({num_generations}) to be a "
                             f"multiple of the number of experts ({n_experts}) with at least 2 per expert")
        return num_generations // n_experts

    def questions(self, prompts_per_step: int, n_experts: int) -> int:
        return self.questions_per_step or math.ceil(prompts_per_step / n_experts)

    def grpo_run(self, run, n_experts_total: int):
        """The ``RLRunConfig`` TRL sees: ``questions`` prompts x G-per-expert rows before expansion."""
        n = len(self.experts(n_experts_total))
        if run.gradient_accumulation_steps != 1:
            raise ValueError("MEML-GRPO trains each step's rollouts in one batch (its mutual-learning and buffer terms "
                             "are per step): rl.gradient_accumulation_steps must be 1; spread the batch over GPUs "
                             "(compute.num_processes) instead")
        return replace(run, prompts_per_step=self.questions(run.prompts_per_step, n),
                       num_generations=self.generations_per_expert(run.num_generations, n))
