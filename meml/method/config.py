"""Settings of one MEML-GRPO (RIEL) run, in the style of TRL's config dataclasses.

The policy-gradient side (steps, group size, lengths, learning rate, clip, beta) is the GRPO run of
the workflow's ``rl`` section (:class:`meml.training.rl_config.RLConfig`); this dataclass holds what
MEML adds. Table 5's switches (MoE, HSFT, IML) come from the method name (:class:`meml.methods.Method`),
so each ablation row is one method of ``meml.methods``. See docs/method.md for the reason behind
every default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from meml.fields import check_fields, setting
from meml.methods import Method


@dataclass
class MEMLConfig:
    """MEML-GRPO's RIEL stage on top of a GRPO run."""

    questions_per_step: int | None = setting(
        "Questions per optimizer step, each sampled under every expert prompt. None: ceil(rl.prompts_per_step / "
        "experts), so a step holds about as many (question, expert) groups as the multi-expert GRPO baseline.",
        None, ge=1)
    rollout_budget: Literal["per_expert", "shared"] = setting(
        "'per_expert': each expert samples rl.num_generations (G) answers per question (the paper); 'shared': the "
        "G answers are split evenly, G/N per expert (G must be a multiple of N).", "per_expert")
    scale_by_std: bool = setting("Divide intra-expert advantages by the expert group's std (Eq. 4 has none).", False)
    positive_only: bool = setting("Non-negative truncation max(A, 0) of Eq. 5: only better-than-mean answers "
                                  "are reinforced.", True)
    lambda1: float = setting("Weight of the inter-expert mutual-learning term (IML).", 1.0, ge=0)
    transfer: Literal["first", "all"] = setting(
        "Which correct answers of the best expert E+ are taught to the worst expert E-: 'first' (one) or 'all'.",
        "first")
    tie_break: Literal["lowest", "random"] = setting(
        "How E+ and E- are picked among experts tied on mean reward: 'lowest' expert index, or 'random' (uniform "
        "among the tied, a seeded stream per process, checkpointed).", "lowest")
    teacher_term: bool = setting("Add + log p(O+ | Q, P+) with stop-gradient to the mutual-learning term "
                                 "(changes its value, not its gradient; reuses the rollout's log-probs).", False)
    lambda2: float = setting("Weight of the hard-example buffer's SFT term (HSFT).", 1.0, ge=0)
    buffer_k: int = setting("An expert with more than K wrong of its G answers offers the question (K = 6 at "
                            "G = 8 reported).", 6, ge=0)
    buffer_rule: Literal["gt", "ge"] = setting("'gt': more than K wrong (the paper's wording); 'ge': at least K.",
                                               "gt")
    buffer_probability: Literal["k_over_g", "always"] = setting(
        "'k_over_g': an offered item enters with probability K/G (Eq. 10); 'always'.", "k_over_g")
    buffer_capacity: int = setting("Buffer size B: when it holds B items, one SFT update on them, then it is "
                                   "emptied (64 reported for 1.5B models and a full dataset; 4 here: a 15-step run "
                                   "fills it 4-8 times on GSM8K and MathQA, docs/method.md).", 4, ge=1)
    buffer_update: Literal["joint", "separate"] = setting(
        "How a full buffer is fitted: 'joint' adds lambda2 x its NLL to the loss of the step in which it fills (one "
        "optimizer step at the RL learning rate); 'separate' takes its own AdamW step on lambda2 x its NLL at "
        "buffer_learning_rate right after that step's RL update (one process only).", "joint")
    buffer_learning_rate: float | None = setting(
        "Learning rate of the 'separate' buffer step; null: the workflow's sft.learning_rate (an SFT-like rate).",
        None, gt=0)
    buffer_reference: Literal["rationale", "own_rollout"] = setting(
        "The answer the buffer trains on: 'rationale' (the dataset's reference solution) or 'own_rollout' (one of "
        "the expert's own correct answers of that step; the item is skipped when it has none).", "rationale")
    num_experts: int | None = setting(
        "With MoE on: RIEL samples under the first k expert prompts only (None: every expert). The start model is "
        "still the MoE-SFT model of all experts; mutual learning needs k >= 2.", None, ge=1)
    single_expert: int | None = setting("Set from the method name: None = MoE (every expert), k = expert k only.",
                                        None, setting=False)
    hsft: bool = setting("Set from the method name: the hard-example buffer is used.", True, setting=False)
    iml: bool = setting("Set from the method name: inter-expert mutual learning is used.", True, setting=False)

    def __post_init__(self):
        check_fields(self, "meml")

    def for_method(self, method: Method) -> MEMLConfig:
        """These settings with the switches of MEML-GRPO method ``method`` (a plain ``MEMLConfig``)."""
        if method.kind != "meml":
            raise ValueError(f"{method} is not a MEML-GRPO method (MEML-GRPO[-Expert<k>][-noHSFT][-noIML])")
        base = {k: getattr(self, k) for k in MEMLConfig.__dataclass_fields__}
        return MEMLConfig(**{**base, "single_expert": method.expert, "hsft": method.hsft, "iml": method.iml})

    @property
    def lambda1_used(self) -> float:
        """The mutual-learning weight the loss uses: ``lambda1``, or 0 for a -noIML method."""
        return self.lambda1 if self.iml else 0.0

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
        """The GRPO ``RLConfig`` TRL sees: ``questions`` prompts x G-per-expert rows before expansion."""
        n = len(self.experts(n_experts_total))
        if run.gradient_accumulation_steps != 1:
            raise ValueError("MEML-GRPO trains each step's rollouts in one batch (its mutual-learning and buffer terms "
                             "are per step): rl.gradient_accumulation_steps must be 1; spread the batch over GPUs "
                             "(compute.num_processes) instead")
        return replace(run, prompts_per_step=self.questions(run.prompts_per_step, n),
                       num_generations=self.generations_per_expert(run.num_generations, n))
